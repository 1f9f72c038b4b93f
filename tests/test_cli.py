"""The gridwatch command line, run as a user would run it (real subprocesses)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from gridwatch.cli import COMMANDS
from tests.conftest import drop_database, free_port

ROOT = Path(__file__).resolve().parent.parent


def gridwatch(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "gridwatch.cli", *args], capture_output=True, text=True,
                          env=environment, cwd=ROOT, timeout=timeout)


def test_help_lists_every_command_and_each_command_has_its_own_help():
    top = gridwatch("--help")
    assert top.returncode == 0
    for name, _, help_text in COMMANDS:
        assert name in top.stdout
        sub = gridwatch(name, "--help")
        assert sub.returncode == 0, sub.stderr
        assert "usage: gridwatch " + name in sub.stdout


def test_with_database_url_set_gridwatch_migrates_that_server_and_starts_no_cluster_of_its_own(cluster, tmp_path):
    name = "gw_external_" + str(free_port())
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = cluster.url(name)
    data_dir = tmp_path / "embedded"
    env = {"DATABASE_URL": url, "GRIDWATCH_DATA_DIR": str(data_dir)}
    try:
        assert gridwatch("db", "url", env=env).stdout.strip() == url
        started = gridwatch("db", "start", env=env)
        assert started.returncode == 0 and "does not start its own" in started.stderr
        migrated = gridwatch("migrate", env=env)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        assert "applied 0001-regions" in migrated.stdout
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM schema_migration").fetchone()[0] >= 5
            assert conn.execute("SELECT postgis_lib_version()").fetchone()[0].startswith("3.")
        assert gridwatch("migrate", env=env).stdout.strip() == "database schema is up to date"
        assert not data_dir.exists()
    finally:
        drop_database(cluster, name)


def test_an_unreachable_database_gets_a_message_saying_how_to_start_one():
    port = free_port()
    result = gridwatch("migrate", env={"DATABASE_URL": f"postgresql://nobody:hunter2@127.0.0.1:{port}/none"})
    assert result.returncode == 2
    assert f"127.0.0.1:{port}" in result.stderr and "gridwatch db start" in result.stderr
    assert "hunter2" not in result.stderr


def test_db_start_status_and_stop_manage_the_embedded_cluster_in_its_data_folder(tmp_path):
    data_dir = Path("/tmp") / f"gw-cli-{free_port()}"
    env = {"GRIDWATCH_DATA_DIR": str(data_dir), "GRIDWATCH_PG_PORT": str(free_port())}
    try:
        assert gridwatch("db", "status", env=env).returncode == 3
        first = gridwatch("db", "start", env=env)
        assert first.returncode == 0 and "started" in first.stdout, first.stderr
        assert "reused" in gridwatch("db", "start", env=env).stdout
        status = gridwatch("db", "status", env=env)
        assert status.returncode == 0 and "running" in status.stdout
        assert "stopped" in gridwatch("db", "stop", env=env).stdout
    finally:
        gridwatch("db", "stop", env=env)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_bootstrap_without_root_or_sudo_names_the_packages_to_install():
    tmp_path = Path(tempfile.mkdtemp(prefix="gw-bootstrap-", dir="/tmp"))  # readable by 'nobody'
    # A machine where nothing is installed: dpkg-query knows no package; we are 'nobody' with no sudo.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for tool, body in (("dpkg-query", "exit 1"), ("sudo", "exit 1")):
        path = fake_bin / tool
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IEXEC | stat.S_IXGRP | stat.S_IXOTH)
    os.chmod(tmp_path, 0o755)
    copy = tmp_path / "checkout"
    (copy / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "bootstrap.sh", copy / "scripts" / "bootstrap.sh")
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    for path in [tmp_path, *tmp_path.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IROTH | stat.S_IXOTH)
    result = subprocess.run(
        ["runuser", "-u", "nobody", "--", "env", f"PATH={fake_bin}:/usr/bin:/bin", "PYTHON=/usr/bin/python3",
         "bash", str(copy / "scripts" / "bootstrap.sh"), "test"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "neither root nor allowed to sudo" in result.stderr
    for package in ("postgis-3", "chromium", "chromium-driver", "fonts-noto-cjk"):
        assert package in result.stderr
    assert "apt-get install" in result.stderr
    shutil.rmtree(tmp_path)
