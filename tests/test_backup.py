"""Backup and restore: `gridwatch db backup` / `restore` / `backup --verify` through the CLI against
real PostgreSQL, and point-in-time recovery of an embedded cluster from its WAL archive."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from gridwatch.backup import manifest_of, with_dbname
from gridwatch.cluster import free_port
from tests.conftest import ROOT, drop_database, wait_until

KEY_TABLES = ("region", "cases", "case_event", "hazard", "checkin", "centre", "department", "schema_migration", "case_day")


def cli(*argv, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "gridwatch.cli", *argv], cwd=ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def filled(db_url, tiny):
    """The tiny hierarchy with a small history: cases through the real lifecycle, a hazard, check-ins, a centre."""
    from etl.demo import load_demo

    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        load_demo(conn, n_cases=300, months=1, checkin_days=3)
    return db_url


def test_a_backup_restored_into_a_new_database_has_equal_row_counts_and_checksums(filled, cluster, tmp_path):
    dump = tmp_path / "gw.dump"
    made = cli("db", "backup", str(dump), env={"DATABASE_URL": filled})
    assert made.returncode == 0, made.stderr
    assert "backup written" in made.stderr and dump.stat().st_size > 0
    manifest = json.loads(Path(str(dump) + ".manifest.json").read_text())
    assert manifest["tables"]["cases"]["rows"] > 0 and manifest["tables"]["case_event"]["rows"] > 0
    with psycopg.connect(filled, autocommit=True) as conn:   # the source keeps changing after the backup
        conn.execute("DELETE FROM checkin")
    restored = cli("db", "restore", str(dump), "--database", "gw_restored_copy", env={"DATABASE_URL": filled})
    try:
        assert restored.returncode == 0, restored.stderr
        assert "match" in restored.stderr or "equal the backup's manifest" in restored.stderr
        after = manifest_of(cluster.url("gw_restored_copy"))
        for table in KEY_TABLES:
            assert after["tables"][table] == manifest["tables"][table], table
        assert after["tables"]["checkin"]["rows"] > 0   # the backup's, not the changed source's
        assert after["migrations"] == manifest["migrations"]
        with psycopg.connect(cluster.url("gw_restored_copy"), autocommit=True) as conn:   # usable: PostGIS and triggers work
            assert conn.execute("SELECT count(*) FROM cases c JOIN region g ON g.code = c.grid_code "
                                "WHERE ST_Intersects(g.geom, c.geom)").fetchone()[0] == manifest["tables"]["cases"]["rows"]
    finally:
        drop_database(cluster, "gw_restored_copy")


def test_a_restore_over_a_database_that_is_not_empty_is_refused_unless_forced(filled, tmp_path):
    dump = tmp_path / "gw.dump"
    assert cli("db", "backup", str(dump), env={"DATABASE_URL": filled}).returncode == 0
    with psycopg.connect(filled, autocommit=True) as conn:
        conn.execute("DELETE FROM checkin")
    refused = cli("db", "restore", str(dump), env={"DATABASE_URL": filled})
    assert refused.returncode == 1
    assert "is not empty" in refused.stderr and "--force" in refused.stderr
    with psycopg.connect(filled, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM checkin").fetchone()[0] == 0   # untouched
    forced = cli("db", "restore", str(dump), "--force", env={"DATABASE_URL": filled})
    assert forced.returncode == 0, forced.stderr
    with psycopg.connect(filled, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM checkin").fetchone()[0] > 0


def test_verify_restores_a_backup_into_a_scratch_database_and_names_what_differs(filled, cluster, tmp_path):
    dump = tmp_path / "gw.dump"
    assert cli("db", "backup", str(dump), env={"DATABASE_URL": filled}).returncode == 0
    good = cli("db", "backup", "--verify", str(dump), env={"DATABASE_URL": filled})
    assert good.returncode == 0, good.stderr
    assert "is good" in good.stderr
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:   # the scratch database is gone
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'gw\\_verify\\_%'").fetchone()[0] == 0
    manifest_file = Path(str(dump) + ".manifest.json")
    manifest = json.loads(manifest_file.read_text())
    manifest["tables"]["cases"]["rows"] += 1
    manifest_file.write_text(json.dumps(manifest))
    bad = cli("db", "backup", "--verify", str(dump), env={"DATABASE_URL": filled})
    assert bad.returncode == 1 and "table cases" in bad.stderr and "rows" in bad.stderr
    truncated = tmp_path / "cut.dump"
    truncated.write_bytes(dump.read_bytes()[:2000])
    broken = cli("db", "backup", "--verify", str(truncated), env={"DATABASE_URL": filled})
    assert broken.returncode == 1 and "cut.dump" in broken.stderr
    assert "Traceback" not in broken.stderr


@pytest.fixture
def embedded_dir():
    """A data folder for an embedded cluster of its own (reachable by the postgres user); stopped and removed after."""
    root = Path(tempfile.mkdtemp(prefix="gw-embedded-", dir="/tmp"))
    os.chmod(root, 0o755)
    env = {"GRIDWATCH_DATA_DIR": str(root / "data"), "GRIDWATCH_PG_PORT": str(free_port()), "DATABASE_URL": ""}
    yield root, env
    cli("db", "stop", env=env, timeout=120)
    shutil.rmtree(root, ignore_errors=True)


def _embedded_url(env, db="gridwatch"):
    return f"postgresql://gridwatch@127.0.0.1:{env['GRIDWATCH_PG_PORT']}/{db}"


def test_a_backup_restores_into_the_embedded_cluster_created_from_scratch(filled, embedded_dir, tmp_path):
    root, env = embedded_dir
    dump = tmp_path / "gw.dump"
    assert cli("db", "backup", str(dump), env={"DATABASE_URL": filled}).returncode == 0
    assert not (root / "data").exists()
    done = cli("db", "restore", str(dump), env=env)
    assert done.returncode == 0, done.stderr
    manifest = json.loads(Path(str(dump) + ".manifest.json").read_text())
    after = manifest_of(_embedded_url(env))
    assert after["tables"] == manifest["tables"]


def test_point_in_time_recovery_brings_the_embedded_cluster_back_to_a_moment_between_two_writes(embedded_dir):
    root, env = embedded_dir
    started = cli("db", "start", env=env)
    assert started.returncode == 0, started.stderr
    url = _embedded_url(env)
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SHOW archive_mode").fetchone()[0] == "on"
        conn.execute("CREATE TABLE ledger_probe (id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())")
        conn.execute("INSERT INTO ledger_probe (id) SELECT generate_series(1, 100)")
        conn.execute("SELECT pg_switch_wal()")
    archive = root / "data" / "wal-archive"
    assert list(archive.iterdir()) == [], "no WAL is archived before a base backup exists"
    base = cli("db", "backup", "--base", env=env)
    assert base.returncode == 0, base.stderr
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO ledger_probe (id) SELECT generate_series(101, 200)")   # after the base backup: from the archive
        moment = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        wait_until(lambda: conn.execute("SELECT clock_timestamp() > %s + interval '50 ms'", (moment,)).fetchone()[0],
                   timeout=5, message="the clock to pass the recovery moment")
        conn.execute("INSERT INTO ledger_probe (id) SELECT generate_series(201, 300)")    # after the moment: must not come back
        conn.execute("DELETE FROM ledger_probe WHERE id <= 50")
    recovered = cli("db", "restore", "--to-time", moment.isoformat(), env=env)
    assert recovered.returncode == 0, recovered.stderr
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*), min(id), max(id) FROM ledger_probe").fetchone() == (200, 1, 200)
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
        conn.execute("INSERT INTO ledger_probe (id) VALUES (1000)")   # writable again
    assert list(root.glob("data/pgdata.before-*")), "the replaced data folder is kept"
    assert list(archive.iterdir()), "WAL after the base backup was archived"


def test_only_the_two_newest_base_backups_are_kept_with_the_wal_they_need(embedded_dir):
    root, env = embedded_dir
    assert cli("db", "start", env=env).returncode == 0
    url = _embedded_url(env)
    folders = []
    for k in range(3):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_switch_wal()")
        done = cli("db", "backup", "--base", env=env)
        assert done.returncode == 0, done.stderr
        folders = sorted(p.name for p in (root / "data" / "backups").iterdir())
        # base-backup folders are named to the second: the next one starts in a later second
        wait_until(lambda: f"base-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}" > folders[-1], timeout=3)
    assert len(folders) == 2
    archived = sorted(p.name for p in (root / "data" / "wal-archive").iterdir() if len(p.name) == 24)
    from gridwatch.backup import _start_wal_file

    first_needed = _start_wal_file(root / "data" / "backups" / folders[0])
    assert archived and min(archived) >= first_needed


def test_recovery_to_a_time_before_the_first_base_backup_is_refused_with_the_reason(embedded_dir):
    root, env = embedded_dir
    assert cli("db", "start", env=env).returncode == 0
    assert cli("db", "backup", "--base", env=env).returncode == 0
    refused = cli("db", "restore", "--to-time", "2020-01-01T00:00:00+08:00", env=env)
    assert refused.returncode == 1 and "no base backup was taken before" in refused.stderr
    with psycopg.connect(_embedded_url(env), autocommit=True) as conn:   # still running, untouched
        assert conn.execute("SELECT 1").fetchone()[0] == 1


def test_attachments_live_in_postgresql_and_come_back_byte_for_byte_from_a_backup(db_url, tiny, cluster, tmp_path):
    from gridwatch import attachments
    from gridwatch.db import transaction
    from tests.factories import make_case

    document = b"%PDF-1.7\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        case_id = make_case(conn, lon=102.5, lat=36.5)
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        with transaction(conn):
            meta, created = attachments.add(conn, document, filename="调解协议.pdf", uploaded_by="窗口", case_id=case_id)
    assert created
    dump = tmp_path / "gw.dump"
    assert cli("db", "backup", str(dump), env={"DATABASE_URL": db_url}).returncode == 0
    assert json.loads(Path(str(dump) + ".manifest.json").read_text())["tables"]["attachment"]["rows"] == 1
    restored = cli("db", "restore", str(dump), "--database", "gw_restored_attachment", env={"DATABASE_URL": db_url})
    try:
        assert restored.returncode == 0, restored.stderr
        with psycopg.connect(cluster.url("gw_restored_attachment"), row_factory=dict_row) as conn:
            back = attachments.get(conn, meta["id"])
        assert back["content"] == document and back["filename"] == "调解协议.pdf"
    finally:
        drop_database(cluster, "gw_restored_attachment")


def test_a_backup_without_a_file_name_goes_to_the_data_folders_dumps_and_prints_its_path(db_url, tiny, tmp_path):
    done = cli("db", "backup", env={"DATABASE_URL": db_url, "GRIDWATCH_DATA_DIR": str(tmp_path / "data")})
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip())
    assert path.parent == tmp_path / "data" / "dumps" and path.name.startswith("gridwatch-") and path.suffix == ".dump"
    assert path.stat().st_size > 0 and Path(str(path) + ".manifest.json").exists()
