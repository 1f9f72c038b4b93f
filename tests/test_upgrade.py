"""Upgrades: a database made by the previous release (tests/fixtures/gridwatch-1aeed0e-tiny.dump, the
schema as of commit 1aeed0e, built by that release's own code: see make_previous_release.py)
restores, migrates to the current schema, and keeps its data and invariants."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from etl.migrate import discover, migrate
from gridwatch.backup import restore
from tests.conftest import ROOT, drop_database

FIXTURE = ROOT / "tests" / "fixtures" / "gridwatch-1aeed0e-tiny.dump"
MANIFEST = json.loads(Path(str(FIXTURE) + ".manifest.json").read_text())
LIVE_TABLES = ("region", "cases", "case_event", "mediation", "hazard", "hazard_event", "checkin", "centre", "department",
               "category", "alert", "grid_coverage", "township_coverage", "etl_load")


def assert_rollup_is_exact(conn):
    """case_day equals a recomputation from scratch (the backfill of migration 0053), row for row as text."""
    snapshot = "SELECT t::text AS row FROM case_day t ORDER BY unit, day"
    kept = [r["row"] if isinstance(r, dict) else r[0] for r in conn.execute(snapshot).fetchall()]
    with conn.transaction(force_rollback=True):
        conn.execute("DELETE FROM case_day")
        conn.execute("DO $$ BEGIN EXECUTE format(case_day_sql(), 1, 'cases'); END $$")
        fresh = [r["row"] if isinstance(r, dict) else r[0] for r in conn.execute(snapshot).fetchall()]
    zero = ",0" * 16
    assert [r for r in kept if not r.endswith(zero + ")")] == [r for r in fresh if not r.endswith(zero + ")")] and kept


@pytest.fixture
def previous_release_url(cluster):
    name = f"gw_upgrade_from_1aeed0e_{os.getpid()}"    # one per xdist worker: the cluster is shared
    drop_database(cluster, name)
    url = cluster.url(name)
    result = restore(FIXTURE, url, progress=False)
    assert result["checked"] and not result["problems"]   # the fixture restores exactly as it was dumped
    yield url
    drop_database(cluster, name)


def test_the_fixture_is_a_database_of_the_previous_release():
    numbers = MANIFEST["migrations"]
    assert numbers[-1] == 53 and 70 not in numbers
    assert MANIFEST["tables"]["cases"]["rows"] > 100 and MANIFEST["tables"]["case_event"]["rows"] > 1000
    assert FIXTURE.stat().st_size < 1_000_000


def test_a_database_of_the_previous_release_migrates_to_the_current_schema_with_its_data_and_invariants(previous_release_url):
    
    with psycopg.connect(previous_release_url) as conn:
        applied = migrate(conn)
    current = [m.number for m in discover()]
    assert applied and all(int(name[:4]) > 53 or int(name[:4]) not in MANIFEST["migrations"] for name in applied)
    with psycopg.connect(previous_release_url, autocommit=True, row_factory=dict_row) as conn:
        ledger = [r["number"] for r in conn.execute("SELECT number FROM schema_migration ORDER BY number").fetchall()]
        assert ledger == current
        # R3's ledger keeps a checksum for every applied migration, the old ones included
        assert conn.execute("SELECT count(*) AS n FROM schema_migration WHERE coalesce(checksum, '') = ''").fetchone()["n"] == 0
        # the data is all there
        for table in LIVE_TABLES:
            n = conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"]  # noqa: S608 - fixed names
            assert n == MANIFEST["tables"][table]["rows"], table
        # invariants: every case stamped with the units that hold its point, ancestry by parent_code
        bad = conn.execute("""SELECT count(*) AS n FROM cases c JOIN region g ON g.code = c.grid_code
                              LEFT JOIN LATERAL region_lineage(c.grid_code) l ON true
                              WHERE NOT ST_Intersects(g.geom, c.geom)
                                 OR (l.village_code, l.township_code, l.county_code, l.prefecture_code)
                                    IS DISTINCT FROM (c.village_code, c.township_code, c.county_code, c.prefecture_code)""").fetchone()
        assert bad["n"] == 0
        assert conn.execute("SELECT count(*) AS n FROM cases WHERE grid_code IS NULL").fetchone()["n"] == 0
        # every event trail still starts with its report, and the trail stays append-only
        assert conn.execute("""SELECT count(*) AS n FROM cases c WHERE NOT EXISTS
                               (SELECT 1 FROM case_event e WHERE e.case_id = c.id)""").fetchone()["n"] == 0
        with pytest.raises(psycopg.errors.RaiseException):
            conn.execute("UPDATE case_event SET note = 'x' WHERE id = (SELECT min(id) FROM case_event)")
        # the KPI rollup is exact after the upgrade, and the new tables are there and empty
        assert_rollup_is_exact(conn)
        assert conn.execute("SELECT count(*) AS n FROM boundary_adjustment").fetchone()["n"] == 0
        assert conn.execute("SELECT count(*) AS n FROM reported_codes").fetchone()["n"] == \
            MANIFEST["tables"]["cases"]["rows"] + MANIFEST["tables"]["hazard"]["rows"]
        # the upgraded database takes new work: a case through intake, stamped like the old ones
        category = conn.execute("SELECT code FROM category ORDER BY code LIMIT 1").fetchone()["code"]
        grid = conn.execute("SELECT code, ST_X(label_point) AS x, ST_Y(label_point) AS y FROM region "
                            "WHERE level = 'grid' ORDER BY code LIMIT 1").fetchone()
    from gridwatch.db import transaction
    from gridwatch.intake import create_cases

    with psycopg.connect(previous_release_url, row_factory=dict_row) as conn:
        with transaction(conn):
            made = create_cases(conn, [{"category": category, "lon": grid["x"], "lat": grid["y"], "title": "升级后新案件",
                                        "client_request_id": "after-upgrade-1"}])
    assert made and made[0][1] is True
    with psycopg.connect(previous_release_url, autocommit=True, row_factory=dict_row) as conn:
        row = conn.execute("SELECT grid_code FROM cases WHERE client_request_id = 'after-upgrade-1'").fetchone()
        assert row["grid_code"] == grid["code"]
    # migrating again applies nothing
    with psycopg.connect(previous_release_url) as conn:
        assert migrate(conn) == []


def test_the_cli_migrates_a_restored_previous_release(previous_release_url):
    env = {**os.environ, "DATABASE_URL": previous_release_url}
    done = subprocess.run([sys.executable, "-m", "gridwatch.cli", "migrate"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with psycopg.connect(previous_release_url, autocommit=True) as conn:
        assert conn.execute("SELECT max(number) FROM schema_migration").fetchone()[0] == discover()[-1].number
