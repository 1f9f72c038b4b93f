"""The migration runner: in order, once each, all-or-nothing per file, with named failures; changed files refused."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from etl.migrate import MigrationError, applied, changed, discover, migrate, verify
from gridwatch.cluster import free_port
from tests.conftest import ROOT


def test_running_the_migrations_again_applies_nothing(db_url):
    with psycopg.connect(db_url) as conn:
        before = applied(conn)
        conn.commit()
        assert migrate(conn) == []
        assert applied(conn) == before
    assert len(before) == len(discover())


def test_migrations_apply_in_number_order_and_are_recorded_in_the_ledger(db_url, tmp_path):
    (tmp_path / "0002-second.sql").write_text("CREATE TABLE t_second (id int REFERENCES t_first (id));")
    (tmp_path / "0001-first.sql").write_text("CREATE TABLE t_first (id int PRIMARY KEY);\n-- a comment; with a semicolon\n")
    with psycopg.connect(db_url) as conn:
        conn.execute("DELETE FROM schema_migration")
        conn.commit()
        assert migrate(conn, tmp_path) == ["0001-first", "0002-second"]
        assert migrate(conn, tmp_path) == []
        assert list(applied(conn).values()) == ["0001-first", "0002-second"]


def test_a_failing_migration_is_rolled_back_whole_and_named_with_its_statement(db_url, tmp_path):
    (tmp_path / "0001-good.sql").write_text("CREATE TABLE t_good (id int);")
    (tmp_path / "0002-bad.sql").write_text(
        "CREATE TABLE t_half (id int);\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;\n"
        "INSERT INTO no_such_table VALUES (1);\n"
    )
    with psycopg.connect(db_url) as conn:
        conn.execute("DELETE FROM schema_migration")
        conn.commit()
        with pytest.raises(MigrationError) as err:
            migrate(conn, tmp_path)
        message = str(err.value)
        assert "0002-bad.sql" in message and "statement 3" in message and "no_such_table" in message
        assert list(applied(conn).values()) == ["0001-good"]
        assert conn.execute("SELECT to_regclass('t_half')").fetchone()[0] is None
        assert conn.execute("SELECT to_regclass('t_good')").fetchone()[0] == "t_good"


def test_two_migrations_with_the_same_number_are_refused(tmp_path):
    (tmp_path / "0001-a.sql").write_text("SELECT 1;")
    (tmp_path / "0001-b.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="share the number"):
        discover(tmp_path)


def test_a_migration_changed_after_it_was_applied_is_refused_by_name_with_what_to_do(db_url, tmp_path):
    first = tmp_path / "0001-first.sql"
    first.write_text("CREATE TABLE t_first (id int);")
    with psycopg.connect(db_url) as conn:
        conn.execute("DELETE FROM schema_migration")
        conn.commit()
        assert migrate(conn, tmp_path) == ["0001-first"]
        first.write_text("CREATE TABLE t_first (id int, extra text);")
        (tmp_path / "0002-second.sql").write_text("CREATE TABLE t_second (id int);")
        with pytest.raises(MigrationError) as err:
            migrate(conn, tmp_path)
        message = str(err.value)
        assert "migration 0001-first.sql was applied with checksum" in message
        assert "restore the file as it was applied" in message and "new numbered migration" in message
        assert "0002" not in message
        with pytest.raises(MigrationError, match="0001-first.sql"):
            verify(conn, tmp_path)
        assert list(applied(conn).values()) == ["0001-first"]          # the new one waits
        assert conn.execute("SELECT to_regclass('t_second')").fetchone()[0] is None


def test_unchanged_migrations_pass_the_check_and_a_database_without_a_ledger_has_nothing_to_check(db_url, tmp_path):
    with psycopg.connect(db_url) as conn:
        verify(conn)
        assert changed(conn) == []
        conn.commit()
        assert migrate(conn) == []
        conn.execute("DROP TABLE schema_migration")
        conn.commit()
        verify(conn)
        assert conn.execute("SELECT to_regclass('schema_migration')").fetchone()[0] is None


def test_a_ledger_kept_before_checksums_is_backfilled_and_guarded_from_then_on(db_url, tmp_path):
    first = tmp_path / "0001-first.sql"
    first.write_text("CREATE TABLE t_first (id int);")
    with psycopg.connect(db_url) as conn:
        conn.execute("DELETE FROM schema_migration")
        conn.commit()
        migrate(conn, tmp_path)
        conn.execute("ALTER TABLE schema_migration DROP COLUMN checksum")   # the ledger of an older runner
        conn.commit()
        (tmp_path / "0002-second.sql").write_text("CREATE TABLE t_second (id int);")
        assert migrate(conn, tmp_path) == ["0002-second"]
        stored = dict(conn.execute("SELECT name, checksum FROM schema_migration").fetchall())
        assert stored == {m.name: m.checksum for m in discover(tmp_path)}
        first.write_text("CREATE TABLE t_first (id bigint);")
        with pytest.raises(MigrationError, match="0001-first.sql was applied with checksum"):
            verify(conn, tmp_path)


def test_gridwatch_migrate_and_serve_refuse_a_database_whose_applied_migration_file_changed(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_migration SET checksum = %s WHERE name = '0020-categories-grades'", ("0" * 64,))
    env = {**os.environ, "DATABASE_URL": db_url, "GRIDWATCH_PORT": str(free_port())}
    for command in (["migrate"], ["serve"]):
        proc = subprocess.run([sys.executable, "-m", "gridwatch.cli", *command], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1, (command, proc.stdout, proc.stderr)
        out = proc.stdout + proc.stderr
        assert "migration 0020-categories-grades.sql was applied with checksum 000000000000" in out, out
        assert "git log -p -- etl/migrations/0020-categories-grades.sql" in out, out
