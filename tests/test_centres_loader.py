"""The centre registry loader: the demo from the hierarchy, CSV and GeoJSON files, and every refusal
leaving the database exactly as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from etl.centres import CentreLoadError, load_demo, load_file, read_csv
from tests.conftest import ROOT
from tests.factories import make_centre, make_department

HEADER = "name,level,region_code,status,staff,address,phone,departments,lon,lat\n"
GOOD = (
    HEADER
    + "城关区综治中心,county,620102,entity,15,城关区人民政府院内,0931-1234567,城关区司法局;城关区信访局,101.0,36.0\n"
    + "新墩镇综治中心,township,620102100,established,6,,,,100.5,38.5\n"
)


def snapshot(conn):
    """Everything a refused load must leave untouched."""
    return (
        conn.execute("SELECT id, name, level, region_code, status, staff, ST_AsText(geom) AS g, scenario FROM centre ORDER BY id").fetchall(),
        conn.execute("SELECT * FROM centre_department ORDER BY 1, 2").fetchall(),
        conn.execute("SELECT township_code, gap_km2 FROM township_coverage ORDER BY 1").fetchall(),
        conn.execute("SELECT * FROM coverage_params").fetchall(),
    )


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def depts(conn, tiny):
    return {
        "justice": make_department(conn, "620102", "justice", "城关区司法局"),
        "letters": make_department(conn, "620102", "letters", "城关区信访局"),
    }


def test_the_demo_puts_one_entity_centre_in_every_region_and_computes_coverage(conn, tiny):
    result = load_demo(conn)
    assert result["written"] == 1 + 2 + 2 + 4
    rows = conn.execute(
        "SELECT level, region_code, status, ST_X(geom) AS x, ST_Y(geom) AS y FROM centre WHERE scenario IS NULL ORDER BY region_code").fetchall()
    assert [(r["level"], r["region_code"]) for r in rows] == [
        ("province", "62"), ("prefecture", "6201"), ("county", "620102"), ("township", "620102100"), ("township", "620102200"),
        ("prefecture", "6207"), ("county", "620702"), ("township", "620702100"), ("township", "620702200")]
    assert {r["status"] for r in rows} == {"entity"}
    by = {r["region_code"]: r for r in rows}
    # townships at their label points (rectangle centres); a county at its first township's; the
    # prefecture 0.004° east and the province (in 城关区) 0.004° west of 城关区's seat
    assert (by["620102200"]["x"], by["620102200"]["y"]) == pytest.approx((101.0, 36.0))
    assert (by["620102"]["x"], by["620102"]["y"]) == pytest.approx((101.0, 38.0))
    assert (by["6201"]["x"], by["6201"]["y"]) == pytest.approx((101.004, 38.0))
    assert (by["62"]["x"], by["62"]["y"]) == pytest.approx((100.996, 38.0))
    assert conn.execute("SELECT count(*) AS n FROM grid_coverage").fetchone()["n"] == 16
    assert result["coverage"]["grids"] == 16


def test_the_demo_fills_only_an_empty_registry_unless_asked_to_replace_and_keeps_scenarios(conn, tiny):
    load_demo(conn)
    make_centre(conn, "620102100", "township", 101.5, 38.5, scenario="plan")
    conn.execute("UPDATE centre SET staff = 99 WHERE region_code = '620102' AND scenario IS NULL")
    again = load_demo(conn)
    assert again["unchanged"] and again["written"] == 0
    assert conn.execute("SELECT staff FROM centre WHERE region_code = '620102' AND scenario IS NULL").fetchone()["staff"] == 99
    replaced = load_demo(conn, replace=True)
    assert replaced["deleted"] == 9 and replaced["written"] == 9
    assert conn.execute("SELECT staff FROM centre WHERE region_code = '620102' AND scenario IS NULL").fetchone()["staff"] != 99
    assert conn.execute("SELECT count(*) AS n FROM centre WHERE scenario = 'plan'").fetchone()["n"] == 1


def test_the_demo_needs_a_hierarchy(conn):
    with pytest.raises(CentreLoadError, match="no province: load the hierarchy first"):
        load_demo(conn)


def test_a_csv_is_loaded_with_departments_linked_and_coverage_recomputed(conn, depts, tmp_path):
    result = load_file(conn, write(tmp_path, "c.csv", GOOD))
    assert result["written"] == 2
    rows = conn.execute("SELECT id, name, level, status, staff, address, phone FROM centre ORDER BY level").fetchall()
    assert [(r["name"], r["status"], r["staff"]) for r in rows] == [("城关区综治中心", "entity", 15), ("新墩镇综治中心", "established", 6)]
    links = conn.execute("SELECT department_id FROM centre_department WHERE centre_id = %s ORDER BY 1", (rows[0]["id"],)).fetchall()
    assert [r["department_id"] for r in links] == sorted(depts.values())
    assert conn.execute("SELECT count(*) AS n FROM grid_coverage WHERE covered_township").fetchone()["n"] == 1  # T1 at a label point, 5 km


def test_loading_the_same_file_again_updates_the_centres_instead_of_duplicating_them(conn, depts, tmp_path):
    load_file(conn, write(tmp_path, "c.csv", GOOD))
    ids = [r["id"] for r in conn.execute("SELECT id FROM centre ORDER BY id").fetchall()]
    load_file(conn, write(tmp_path, "c2.csv", GOOD.replace(",entity,15,", ",entity,20,")))
    rows = conn.execute("SELECT id, staff FROM centre ORDER BY id").fetchall()
    assert [r["id"] for r in rows] == ids and rows[0]["staff"] == 20


def test_replace_deletes_registry_centres_the_file_does_not_name(conn, depts, tmp_path):
    make_centre(conn, "620702", "county", 103.0, 37.0, name="甘州区综治中心")
    make_centre(conn, "620702", "county", 103.0, 37.0, name="方案中心", scenario="plan")
    result = load_file(conn, write(tmp_path, "c.csv", GOOD), replace=True)
    assert result["deleted"] == 1
    names = [r["name"] for r in conn.execute("SELECT name FROM centre ORDER BY name").fetchall()]
    assert names == sorted(["城关区综治中心", "新墩镇综治中心", "方案中心"])


def test_a_geojson_of_points_is_loaded(conn, tiny, tmp_path):
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [103.0, 36.0]},
         "properties": {"name": "甘州区综治中心", "level": "county", "region_code": "620702", "status": "entity", "staff": 12}},
    ]}
    result = load_file(conn, write(tmp_path, "c.geojson", json.dumps(doc, ensure_ascii=False)))
    assert result["written"] == 1
    row = conn.execute("SELECT region_code, staff, ST_X(geom) AS x FROM centre").fetchone()
    assert (row["region_code"], row["staff"], row["x"]) == ("620702", 12, 103.0)


@pytest.mark.parametrize("line, message", [
    ("错区中心,county,620199,entity,,,,,101.0,36.0", "row 3 (错区中心): region_code 620199 is not a known region"),
    ("错级中心,township,620102,entity,,,,,101.0,36.0",
     "row 3 (错级中心): level 'township' does not match region 620102 (城关区), which is a county; use level county"),
    ("颠倒中心,county,620102,entity,,,,,36.0,101.0",
     "row 3 (颠倒中心): longitude 36.0 latitude 101.0 is outside Gansu; did you swap lat/long?"),
    # 1° of longitude at 36°N on the WGS84 ellipsoid: N·cos φ·π/180 = 6385.5 km · 0.8090 · 0.017453 = 90.2 km
    ("远方中心,county,620102,entity,,,,,103.0,36.0",
     "row 3 (远方中心): the point (103.0, 36.0) is 90.2 km outside its region 620102 (城关区); move it inside, or within 2 km"),
    ("状态中心,county,620102,built,,,,,101.0,36.0", "row 3: status 'built' is not known; use planned, established or entity"),
    ("人数中心,county,620102,entity,many,,,,101.0,36.0", "row 3: staff 'many' is not a whole number"),
    ("坐标中心,county,620102,entity,,,,,east,36.0", "row 3: lon 'east' is not a number"),
    (",county,620102,entity,,,,,101.0,36.0", "row 3: name is empty"),
    ("城关区综治中心,county,620102,entity,,,,,101.1,36.0", "row 3 (城关区综治中心): the same name and region_code as row 2"),
    ("部门中心,county,620102,entity,,,,水务局,101.0,36.0", "row 3 (部门中心): department '水务局' is not a department of region 620102"),
])
def test_a_bad_row_refuses_the_whole_file_naming_the_row_and_leaves_the_database_unchanged(conn, depts, tmp_path, line, message):
    load_file(conn, write(tmp_path, "first.csv", GOOD))
    before = snapshot(conn)
    text = HEADER + "城关区综治中心,county,620102,entity,16,,,,101.0,36.0\n" + line + "\n"
    with pytest.raises(CentreLoadError) as err:
        load_file(conn, write(tmp_path, "bad.csv", text))
    assert message in str(err.value)
    assert "nothing was written" in str(err.value)
    assert snapshot(conn) == before


def test_every_bad_row_is_listed_not_only_the_first(conn, tiny):
    text = HEADER + "a,county,620199,entity,,,,,101,36\n" + "b,county,620102,bogus,,,,,101,36\n"
    with pytest.raises(CentreLoadError) as err:
        read_csv(text)
    assert "row 3: status 'bogus'" in str(err.value)   # parsing problems are found before the database is asked
    from etl.centres import validate
    rows = read_csv(text.replace("bogus", "entity"))
    problems = validate(conn, rows)
    assert [p.split(":")[0] for p in problems] == ["row 2 (a)"]


def test_files_of_the_wrong_shape_are_refused_with_what_to_do(conn, tiny, tmp_path):
    with pytest.raises(CentreLoadError, match="header lacks column.*lon, lat"):
        load_file(conn, write(tmp_path, "h.csv", "name,level,region_code\nx,county,620102\n"))
    with pytest.raises(CentreLoadError, match="feature 1: geometry is 'Polygon', not a Point"):
        load_file(conn, write(tmp_path, "p.geojson", json.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": []}, "properties": {}}]})))
    with pytest.raises(CentreLoadError, match="unknown file type '.xlsx'"):
        load_file(conn, write(tmp_path, "c.xlsx", "x"))
    assert conn.execute("SELECT count(*) AS n FROM centre").fetchone()["n"] == 0


def _cli(db_url, *args):
    env = {**os.environ, "DATABASE_URL": db_url}
    return subprocess.run([sys.executable, "-m", "gridwatch.cli", "etl", "centres", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def test_the_command_line_loads_a_file_and_refuses_a_bad_one_with_exit_status_1(conn, depts, db_url, tmp_path):
    ok = _cli(db_url, str(write(tmp_path, "c.csv", GOOD)))
    assert ok.returncode == 0, ok.stderr
    assert "2 centre(s) written" in ok.stderr
    before = snapshot(conn)
    bad = _cli(db_url, str(write(tmp_path, "bad.csv", HEADER + "颠倒中心,county,620102,entity,,,,,36.0,101.0\n")))
    assert bad.returncode == 1
    assert "row 2 (颠倒中心): longitude 36.0 latitude 101.0 is outside Gansu; did you swap lat/long?" in bad.stderr
    assert snapshot(conn) == before
    both = _cli(db_url, "--demo", str(tmp_path / "c.csv"))
    assert both.returncode == 2 and "either FILE or --demo" in both.stderr


def test_the_command_line_demo_runs_once_and_then_reports_nothing_to_do(conn, tiny, db_url):
    first = _cli(db_url, "--demo")
    assert first.returncode == 0, first.stderr
    assert "9 centre(s) written" in first.stderr
    second = _cli(db_url, "--demo")
    assert second.returncode == 0 and "nothing to do" in second.stderr
