"""Boundary changes in a live system (行政区划调整): a county's surveyed townships loaded into the
running Gansu demo through the CLI re-stamp its cases, hazards and check-ins, print what moved,
keep the codes of the time, and leave the county's KPIs unchanged in total."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import geopandas as gpd
import psycopg
import pytest
import shapely
from psycopg.rows import dict_row
from shapely.geometry import box

from tests.conftest import ROOT
from tests.test_upgrade import assert_rollup_is_exact



@pytest.fixture
def live_demo_url(gansu_copy_url):
    """A private Gansu copy with a small demo history (cases, hazards, check-ins, departments) and the centre registry."""
    from etl.centres import load_demo as load_centres
    from etl.demo import load_demo

    with psycopg.connect(gansu_copy_url, row_factory=dict_row) as conn:
        load_demo(conn, n_cases=6000, months=3, checkin_days=5)
    with psycopg.connect(gansu_copy_url, row_factory=dict_row) as conn:
        load_centres(conn, recompute=False)
        conn.commit()
    return gansu_copy_url


def _townships(conn, county) -> dict[str, tuple[str, object]]:
    rows = conn.execute("SELECT code, name, ST_AsBinary(geom) AS g FROM region WHERE parent_code = %s AND level = 'township' "
                        "ORDER BY code", (county,)).fetchall()
    return {r["code"]: (r["name"], shapely.from_wkb(r["g"])) for r in rows}


def _count(conn, query, params=()):
    return conn.execute(query, params).fetchone()["n"]


def _counts_by_township(conn, table, county):
    rows = conn.execute(f"SELECT township_code AS t, count(*) AS n FROM {table} WHERE county_code = %s GROUP BY 1", (county,))  # noqa: S608 - fixed table names
    return {r["t"]: r["n"] for r in rows.fetchall()}


def _pick(conn):
    """A county with two neighbouring townships to merge (holding cases, one of them hazards and
    check-ins) and a third township with cases to split; the county with the most cases first."""
    counties = [r["county_code"] for r in conn.execute(
        "SELECT county_code, count(*) AS n FROM cases WHERE county_code IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 40").fetchall()]
    for county in counties:
        towns = _townships(conn, county)
        held = _counts_by_township(conn, "cases", county)
        hazards = _counts_by_township(conn, "hazard", county)
        codes = [c for c in towns if held.get(c, 0) >= 3]
        for a in codes:
            for b in codes:
                if a < b and hazards.get(b, 0) >= 1 and shapely.intersection(towns[a][1], towns[b][1]).length > 0.01:
                    for c in codes:
                        if c not in (a, b) and c[6] == "1":
                            return county, towns, a, b, c
    raise AssertionError("no county with two neighbouring townships holding cases and hazards")


def test_a_surveyed_township_file_for_one_county_loaded_into_the_live_demo_restamps_its_rows_and_keeps_the_county_kpis(
        live_demo_url, tmp_path):
    from gridwatch.kpi import period_kpis, region_kpis

    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    with psycopg.connect(live_demo_url, autocommit=True, row_factory=dict_row) as conn:
        COUNTY, towns, merge_into, merged_away, split = _pick(conn)
        before_cases = _counts_by_township(conn, "cases", COUNTY)
        before_hazards = _counts_by_township(conn, "hazard", COUNTY)
        county_cases = _count(conn, "SELECT count(*) AS n FROM cases WHERE county_code = %s", (COUNTY,))
        county_hazards = _count(conn, "SELECT count(*) AS n FROM hazard WHERE county_code = %s", (COUNTY,))
        county_checkins = _count(conn, "SELECT count(*) AS n FROM checkin WHERE grid_code LIKE %s", (COUNTY + "%",))
        merged_checkins = _count(conn, "SELECT count(*) AS n FROM checkin WHERE grid_code LIKE %s", (merged_away + "%",))
        kpis_before = region_kpis(conn, COUNTY, now=now)
        period_before = period_kpis(conn, COUNTY, date.today() - timedelta(days=60), date.today())
        case_ids_merged = {r["id"] for r in conn.execute("SELECT id FROM cases WHERE township_code = %s", (merged_away,)).fetchall()}
        assert case_ids_merged and county_checkins and merged_checkins

        # the surveyed file: merge two neighbours, split a third west/east into itself and a new 镇
        merged = shapely.union(towns[merge_into][1], towns[merged_away][1])
        split_geom = towns[split][1]
        x0, y0, x1, y1 = split_geom.bounds
        xm = (x0 + x1) / 2
        west = shapely.intersection(split_geom, box(x0 - 1, y0 - 1, xm, y1 + 1))
        east = shapely.intersection(split_geom, box(xm, y0 - 1, x1 + 1, y1 + 1))
        new_code = COUNTY + str(max(int(c[6:]) for c in towns if c[6] == "1") + 1)
        assert new_code not in towns
        rows = [{"code": merge_into, "name": towns[merge_into][0], "geometry": merged},
                {"code": split, "name": towns[split][0], "geometry": west},
                {"code": new_code, "name": "新设镇", "geometry": east}]
        path = tmp_path / "surveyed-townships.geojson"
        gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326").to_file(path, driver="GeoJSON", engine="pyogrio")
        east_cases = _count(conn, "SELECT count(*) AS n FROM cases WHERE township_code = %s AND ST_X(geom) > %s", (split, xm))

    env = {**os.environ, "DATABASE_URL": live_demo_url}
    done = subprocess.run([sys.executable, "-m", "gridwatch.cli", "etl", "boundaries", str(path), "--level", "township",
                           "--code-field", "code", "--name-field", "name", "--effective", "2026-01-01", "--quiet"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    printed = done.stdout
    print(f"county {COUNTY}: merge {merged_away} into {merge_into}, split {split} into {split} + {new_code}")
    print(printed)   # the note: what moved, from each old unit to each new one
    assert "行政区划调整" in printed and "effective 2026-01-01" in printed
    assert f"case       {merged_away} → {merge_into}: {before_cases[merged_away]}" in printed
    assert f"hazard     {merged_away} → {merge_into}: {before_hazards[merged_away]}" in printed
    assert f"case       {split} → {new_code}: {east_cases}" in printed
    assert f"checkin    {merged_away} → {merge_into}: {merged_checkins}" in printed

    with psycopg.connect(live_demo_url, autocommit=True, row_factory=dict_row) as conn:
        assert conn.execute("SELECT count(*) AS n FROM region WHERE code LIKE %s", (merged_away + "%",)).fetchone()["n"] == 0
        # every case, hazard and check-in of the county re-stamped into existing units that hold its point
        assert _count(conn, "SELECT count(*) AS n FROM cases WHERE county_code = %s", (COUNTY,)) == county_cases
        assert _count(conn, "SELECT count(*) AS n FROM hazard WHERE county_code = %s", (COUNTY,)) == county_hazards
        merged = _count(conn, "SELECT count(*) AS n FROM region_restamp WHERE kind = 'checkin' AND new_codes ? 'merged_into_existing'")
        assert _count(conn, "SELECT count(*) AS n FROM checkin WHERE grid_code LIKE %s", (COUNTY + "%",)) + merged == county_checkins
        assert _count(conn, "SELECT count(*) AS n FROM checkin WHERE grid_code LIKE %s", (merged_away + "%",)) == 0
        for table in ("cases", "hazard"):
            assert _count(conn, f"SELECT count(*) AS n FROM {table} WHERE township_code = %s OR grid_code LIKE %s",  # noqa: S608
                          (merged_away, merged_away + "%")) == 0
        misplaced = _count(conn, """SELECT count(*) AS n FROM cases c JOIN region g ON g.code = c.grid_code
                                    WHERE c.county_code = %s AND NOT ST_Intersects(g.geom, c.geom)""", (COUNTY,))
        assert misplaced == 0
        lineage_ok = _count(conn, """SELECT count(*) AS n FROM cases c, region_lineage(c.grid_code) l
                                     WHERE c.county_code = %s AND (l.village_code, l.township_code, l.county_code)
                                           IS DISTINCT FROM (c.village_code, c.township_code, c.county_code)""", (COUNTY,))
        assert lineage_ok == 0
        after_cases = _counts_by_township(conn, "cases", COUNTY)
        after_hazards = _counts_by_township(conn, "hazard", COUNTY)
        assert after_hazards[merge_into] == before_hazards.get(merge_into, 0) + before_hazards[merged_away]
        assert sum(after_hazards.values()) == sum(before_hazards.values())
        assert after_cases[merge_into] == before_cases[merge_into] + before_cases[merged_away]
        assert after_cases[new_code] == east_cases and after_cases[split] == before_cases[split] - east_cases
        assert sum(after_cases.values()) == sum(before_cases.values())
        # the codes of the time are kept: every case of the merged township still reports it
        reported = conn.execute("SELECT row_id, township_code FROM reported_codes WHERE kind = 'case' AND row_id = ANY(%s)",
                                (list(case_ids_merged),)).fetchall()
        assert {r["township_code"] for r in reported} == {merged_away} and len(reported) == len(case_ids_merged)
        # the adjustment is recorded with its date and moves
        adj = conn.execute("SELECT effective_date, level, deleted, moves FROM boundary_adjustment").fetchall()
        assert len(adj) == 1 and adj[0]["effective_date"] == date(2026, 1, 1) and merged_away in adj[0]["deleted"]
        assert {"kind": "case", "from": merged_away, "to": merge_into, "n": before_cases[merged_away]} in adj[0]["moves"]
        # centres and departments of the merged township now belong to the township that took it over
        assert _count(conn, "SELECT count(*) AS n FROM department WHERE region_code LIKE %s", (merged_away + "%",)) == 0
        assert _count(conn, "SELECT count(*) AS n FROM centre WHERE region_code LIKE %s", (merged_away + "%",)) == 0
        # the county's KPIs are unchanged in total, and the case_day rollup keyed by county stays exact
        kpis_after = region_kpis(conn, COUNTY, now=now)
        # centre coverage is about the units, not the cases: the new 镇 has no centre yet, the merged one's moved over
        coverage_before, coverage_after = kpis_before.pop("centre_coverage"), kpis_after.pop("centre_coverage")
        assert coverage_after["children"] == coverage_before["children"]
        assert coverage_after["with_entity_centre"] == coverage_before["with_entity_centre"] - 1
        kpis_before.pop("as_of", None), kpis_after.pop("as_of", None)   # when each was computed
        assert kpis_after == kpis_before
        period_after = period_kpis(conn, COUNTY, date.today() - timedelta(days=60), date.today())
        period_after.pop("as_of", None), period_before.pop("as_of", None)
        assert period_after == period_before
        assert_rollup_is_exact(conn)
        # the KPIs of the new units: the county's open cases split over its new townships exactly
        opened = sum(region_kpis(conn, t, now=now)["open"] for t in after_cases)
        assert opened == kpis_before["open"]
        json.dumps(adj[0]["moves"])


def test_kpis_of_a_period_before_a_boundary_change_say_they_use_todays_units_and_the_units_of_the_time_are_kept(
        db_url, tiny, tmp_path, serve_in_process):
    from gridwatch.boundary_changes import reported_counts, units_note
    from tests.factories import make_case
    from tests.test_etl_boundaries import load, write_file

    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        make_case(conn, lon=102.5, lat=36.5)    # in 乌江乡 620702200
        assert units_note(conn, "620702", date(2020, 1, 1))["adjustments"] == []
    # 新墩镇 takes the whole county from 2026-01-01: 乌江乡 is merged into it
    path = write_file(tmp_path, [{"code": "620702100", "name": "新墩镇", "geometry": box(102, 35, 104, 39)}])
    load(db_url, path, effective=date(2026, 1, 1))
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        note = units_note(conn, "620702", date(2025, 12, 1))
        assert note["units"] == "current" and [a["effective_date"] for a in note["adjustments"]] == ["2026-01-01"]
        assert "620702200" in note["adjustments"][0]["deleted"] and "2026-01-01" in note["note_zh"]
        assert units_note(conn, "620702", date(2026, 2, 1))["adjustments"] == []      # a period after it: nothing to say
        assert units_note(conn, "6201", date(2025, 12, 1))["adjustments"] == []       # another prefecture: untouched
        # days in China time, as reported_counts reads them (date.today() is UTC here: from 16:00 UTC
        # it is already tomorrow in Gansu, and a period ending "tomorrow" UTC missed a case of now)
        today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
        start, end = today - timedelta(days=3), today + timedelta(days=1)
        assert reported_counts(conn, "620702100", start, end) == {"today": 1, "at_the_time": 0}
        assert reported_counts(conn, "620702200", start, end) == {"today": 0, "at_the_time": 1}
        assert reported_counts(conn, "620702", start, end) == {"today": 1, "at_the_time": 1}
    server = serve_in_process(db_url)
    with urllib.request.urlopen(f"{server.url}/api/v1/kpi/620702?start=2025-12-01&end=2026-02-01", timeout=30) as r:
        body = json.loads(r.read())
    assert body["units"]["units"] == "current" and body["units"]["adjustments"][0]["effective_date"] == "2026-01-01"
