"""The migration runner: in order, once each, all-or-nothing per file, with named failures."""

from __future__ import annotations

import psycopg
import pytest

from etl.migrate import MigrationError, applied, discover, migrate


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
