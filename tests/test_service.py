"""Running as a service: `gridwatch service install` writes systemd units that systemd-analyze
accepts, and their command lines really run (the database in the foreground as its unit runs it,
migrations, the server); `gridwatch health` tells monitoring ok / degraded / unreachable."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from gridwatch.cluster import free_port
from tests.conftest import ROOT, wait_until

UNITS = ("gridwatch-db.service", "gridwatch-server.service", "gridwatch-alerts.service")


def cli(*argv, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "gridwatch.cli", *argv], cwd=ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def staged():
    """A staging prefix and an embedded cluster folder of their own (reachable by the postgres user)."""
    root = Path(tempfile.mkdtemp(prefix="gw-service-", dir="/tmp"))
    os.chmod(root, 0o755)
    env = {"GRIDWATCH_DATA_DIR": str(root / "data"), "GRIDWATCH_PG_PORT": str(free_port()), "DATABASE_URL": ""}
    yield root, env
    cli("db", "stop", env=env, timeout=120)
    shutil.rmtree(root, ignore_errors=True)


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str
    parser.read(path)
    return parser


def _command(line: str) -> list[str]:
    """An Exec line as argv: without systemd's '+' prefix, %% back to %."""
    return [a.replace("%%", "%") for a in shlex.split(line.lstrip("+-@!"))]


def _env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def test_install_writes_the_units_with_this_checkouts_paths_and_systemd_accepts_them(staged):
    root, env = staged
    done = cli("service", "install", "--prefix", str(root / "stage"), env=env)
    assert done.returncode == 0, done.stderr
    units = root / "stage" / "etc" / "systemd" / "system"
    for name in UNITS:
        text = (units / name).read_text()
        assert not re.search(r"@[A-Z_]+@", text), f"a placeholder is left in {name}"
        assert str(ROOT) in text
    db_unit = _unit(units / "gridwatch-db.service")
    assert db_unit["Service"]["Type"] == "notify" and db_unit["Service"]["User"] == "postgres"
    start = _command(db_unit["Service"]["ExecStart"])
    assert start[0].endswith("/postgres") and start[start.index("-D") + 1] == str(root / "data" / "pgdata")
    assert f"port={env['GRIDWATCH_PG_PORT']}" in start and "archive_mode=on" in start
    server = _unit(units / "gridwatch-server.service")
    assert server["Service"]["ExecStart"].endswith(" serve") and server["Service"]["Restart"] == "always"
    assert "gridwatch-db.service" in server["Unit"]["After"]
    assert _unit(units / "gridwatch-alerts.service")["Service"]["ExecStart"].endswith("alerts run --every 60")
    rotate = (root / "stage" / "etc" / "logrotate.d" / "gridwatch").read_text()
    assert f"{root / 'data'}/postgres.log {{" in rotate and "rotate 8" in rotate and "copytruncate" in rotate
    settings = _env_file(root / "stage" / "etc" / "gridwatch" / "gridwatch.env")
    assert settings["GRIDWATCH_DATA_DIR"] == str(root / "data") and settings["GRIDWATCH_PG_PORT"] == env["GRIDWATCH_PG_PORT"]
    verified = subprocess.run(["systemd-analyze", "verify", *[str(units / n) for n in UNITS]],
                              capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # the same check catches a broken unit (so a pass above means something)
    broken = root / "broken.service"
    broken.write_text((units / "gridwatch-server.service").read_text().replace("Type=simple", "Type=simplex"))
    assert "Failed to parse service type" in subprocess.run(["systemd-analyze", "verify", str(broken)],
                                                             capture_output=True, text=True, timeout=120).stderr
    # an external database: no cluster unit, nothing waits for one
    external = cli("service", "install", "--prefix", str(root / "ext"), "--no-db", env=env)
    assert external.returncode == 0
    assert not (root / "ext" / "etc" / "systemd" / "system" / "gridwatch-db.service").exists()
    assert "gridwatch-db" not in (root / "ext" / "etc" / "systemd" / "system" / "gridwatch-server.service").read_text()


def test_the_units_command_lines_run_for_real_and_gridwatch_health_reports_ok_degraded_unreachable(staged):
    root, env = staged
    assert cli("service", "install", "--prefix", str(root / "stage"), env=env).returncode == 0
    units = root / "stage" / "etc" / "systemd" / "system"
    settings = _env_file(root / "stage" / "etc" / "gridwatch" / "gridwatch.env")
    port = free_port()
    run_env = {**os.environ, **settings, "GRIDWATCH_PORT": str(port), "DATABASE_URL": ""}
    db_unit = _unit(units / "gridwatch-db.service")["Service"]
    server_unit = _unit(units / "gridwatch-server.service")["Service"]
    health = ["health", "--url", f"http://127.0.0.1:{port}", "--timeout", "10"]

    assert cli(*health, env=run_env).returncode == 2   # nothing runs yet: unreachable
    # gridwatch-db.service: ExecStartPre (as root), ExecStart in the foreground as its User, ExecStartPost (as root)
    pre = subprocess.run(_command(db_unit["ExecStartPre"]), env=run_env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert pre.returncode == 0, pre.stderr
    # as systemd does with User=: the server process itself runs as that user (it is the unit's main process)
    postgres = subprocess.Popen(_command(db_unit["ExecStart"]), user=db_unit["User"], group=db_unit["User"], extra_groups=[],
                                env=run_env, cwd=root, stdout=subprocess.DEVNULL, stderr=(root / "pg.log").open("w"))
    server = None
    try:
        post = subprocess.run(_command(db_unit["ExecStartPost"]), env=run_env, cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        assert post.returncode == 0, post.stderr + (root / "pg.log").read_text()
        assert "reused" in post.stdout   # it found the unit's server running and only made the database
        # gridwatch-server.service: migrate, then serve
        migrated = subprocess.run(_command(server_unit["ExecStartPre"]), env=run_env, cwd=server_unit["WorkingDirectory"],
                                  capture_output=True, text=True, timeout=300)
        assert migrated.returncode == 0, migrated.stderr
        server = subprocess.Popen(_command(server_unit["ExecStart"]), env=run_env, cwd=server_unit["WorkingDirectory"],
                                  stdout=(root / "server.log").open("w"), stderr=subprocess.STDOUT)
        wait_until(lambda: cli(*health, env=run_env).returncode == 0, timeout=90, interval=0.5, message="health ok")
        ok = cli(*health, env=run_env)
        assert ok.stdout.startswith("OK: server and database up")
        # the database stops (systemd's KillSignal=SIGINT: fast shutdown): degraded, and the server keeps answering
        postgres.send_signal(signal.SIGINT)
        postgres.wait(60)
        wait_until(lambda: cli(*health, env=run_env).returncode == 1, timeout=60, interval=0.5, message="health degraded")
        assert cli(*health, env=run_env).stdout.startswith("DEGRADED")
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        if postgres.poll() is None:
            postgres.send_signal(signal.SIGINT)
            postgres.wait(60)
    gone = cli(*health, env=run_env)
    assert gone.returncode == 2 and gone.stdout.startswith("UNREACHABLE")
