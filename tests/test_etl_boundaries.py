"""The generic boundary loader (etl/boundaries.py): GeoJSON / GeoPackage / Shapefile into PostGIS.

Most tests run on the constructed tiny hierarchy (tests/factories.py: exact rectangles), so the
expected answers can be worked out by hand; one runs on the real Gansu copy.
"""

from __future__ import annotations

import os
import subprocess
import sys

import geopandas as gpd
import numpy as np
import psycopg
import pytest
import shapely
from psycopg.rows import dict_row
from shapely.geometry import Polygon, box

from etl.boundaries import BoundaryError, load_boundaries
from tests.conftest import ROOT

DRIVERS = {"geojson": "GeoJSON", "gpkg": "GPKG", "shp": "ESRI Shapefile"}


def write_file(tmp_path, rows, ext="geojson", crs="EPSG:4326", name="townships"):
    """Write features {code, name, [parent], geometry} to a file and return its path."""
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)
    path = tmp_path / f"{name}.{ext}"
    gdf.to_file(path, driver=DRIVERS[ext], engine="pyogrio")
    return path


def snapshot(conn) -> dict:
    """Everything a refused load must leave as it was."""
    row = conn.execute(
        """SELECT count(*) AS n,
                  md5(string_agg(code || name || level || coalesce(parent_code, '') || source || encode(ST_AsBinary(geom), 'hex')
                      || coalesce(sort_key::text, ''), ',' ORDER BY code)) AS digest,
                  (SELECT version FROM data_version WHERE name = 'region') AS version,
                  (SELECT count(*) FROM etl_load) AS ledger
           FROM region"""
    ).fetchone()
    return dict(row)


def region(conn, code):
    return conn.execute("SELECT code, name, level, kind, parent_code, source, geom::text AS wkb, ST_AsBinary(geom) AS g "
                        "FROM region WHERE code = %s", (code,)).fetchone()


def shape_of(conn, code):
    row = conn.execute("SELECT ST_AsBinary(geom) AS g FROM region WHERE code = %s", (code,)).fetchone()
    return shapely.from_wkb(row["g"]) if row else None


def children(conn, code):
    rows = conn.execute("SELECT code, name, source, ST_AsBinary(geom) AS g FROM region WHERE parent_code = %s ORDER BY code", (code,)).fetchall()
    return [(r["code"], r["name"], r["source"], shapely.from_wkb(r["g"])) for r in rows]


def assert_children_cover(conn, code):
    """The guarantees of test_etl_gansu.py, with its stated tolerances."""
    from tests.test_etl_gansu import AREA_SUM, OVERLAP, STICK_OUT

    parent = shape_of(conn, code)
    kids = [k[3] for k in children(conn, code)]
    assert kids, f"{code} has no children"
    total = sum(k.area for k in kids)
    union = shapely.union_all(kids).area
    assert abs(total - parent.area) <= AREA_SUM * parent.area, f"children of {code} do not add up to it"
    assert total - union <= OVERLAP * parent.area, f"children of {code} overlap"
    assert abs(union - parent.area) <= AREA_SUM * parent.area, f"children of {code} leave gaps"
    for k in kids:
        assert k.is_valid and not k.is_empty
        assert shapely.difference(k, parent).area <= STICK_OUT * k.area, f"a child of {code} sticks out of it"


def load(conn_url, path, level="township", code="code", name="name", parent=None, **kw):
    with psycopg.connect(conn_url) as c:
        return load_boundaries(c, path, level, code, name, parent, progress=False, seed=1, **kw)


@pytest.fixture
def tiny_url(db_url, tiny):
    return db_url


# 620702 张掖市甘州区 is box(102, 35, 104, 39); its townships 620702100 (north, y 37–39) and
# 620702200 (south, y 35–37); each township has villages …200 (west) and …201 (east).
SURVEYED_XINDUN = box(102.0, 37.5, 104.0, 39.0)   # 新墩镇 surveyed smaller than the generated one


@pytest.mark.parametrize("ext", ["geojson", "gpkg", "shp"])
def test_a_surveyed_township_replaces_the_generated_one_and_what_hangs_below_is_generated_again(conn, tiny_url, tmp_path, ext):
    path = write_file(tmp_path, [{"code": "620702100", "name": "新墩镇", "geometry": SURVEYED_XINDUN}], ext=ext)
    stats = load(tiny_url, path)
    assert stats["replaced"] == ["620702100"] and stats["new"] == []
    row = region(conn, "620702100")
    assert row["source"] == f"file:{path.name}"
    assert row["name"] == "新墩镇" and row["kind"] == "镇" and row["parent_code"] == "620702"
    assert shape_of(conn, "620702100").symmetric_difference(SURVEYED_XINDUN).area < 1e-9
    # the generated sibling takes the strip the survey no longer covers
    assert "620702200" in stats["adjusted"]
    assert shape_of(conn, "620702200").symmetric_difference(box(102, 35, 104, 37.5)).area < 1e-9
    # villages and grids below both keep their codes and names, with new polygons inside the new outlines
    assert [(c, n) for c, n, _, _ in children(conn, "620702100")] == [("620702100200", "新墩镇浅河村"), ("620702100201", "新墩镇长城村")]
    for code in ("620702", "620702100", "620702200", "620702100200", "620702100201", "620702200200", "620702200201"):
        assert_children_cover(conn, code)
    assert {s for _, _, s, _ in children(conn, "620702100")} == {"generated"}
    ledger = conn.execute("SELECT stats FROM etl_load WHERE name = %s", (f"boundaries:{path.name}:township",)).fetchone()
    assert ledger["stats"]["replaced"] == ["620702100"]


def test_the_file_is_reprojected_from_its_own_crs(conn, tiny_url, tmp_path):
    utm = gpd.GeoSeries([SURVEYED_XINDUN], crs="EPSG:4326").to_crs("EPSG:32648").iloc[0]   # UTM zone 48N, metres
    assert utm.bounds[0] > 1000  # really in metres
    path = write_file(tmp_path, [{"code": "620702100", "name": "新墩镇", "geometry": utm}], crs="EPSG:32648")
    stats = load(tiny_url, path)
    assert any("reprojected" in n and "32648" in n for n in stats["notes"])
    loaded = shape_of(conn, "620702100")
    np.testing.assert_allclose(loaded.bounds, SURVEYED_XINDUN.bounds, atol=1e-6)


def test_gcj02_coordinates_are_converted_to_wgs84_when_asked(conn, tiny_url, tmp_path):
    from geo.coords import wgs84_to_gcj02_geometry

    path = write_file(tmp_path, [{"code": "620702100", "name": "新墩镇", "geometry": wgs84_to_gcj02_geometry(SURVEYED_XINDUN)}])
    load(tiny_url, path, gcj02=True)
    # the GCJ-02 offset here is hundreds of metres; after conversion the outline is back within 1 cm
    np.testing.assert_allclose(shape_of(conn, "620702100").bounds, SURVEYED_XINDUN.bounds, atol=2e-7)


def test_an_invalid_geometry_is_repaired_and_the_repair_is_reported_by_feature(conn, tiny_url, tmp_path):
    # a bow-tie: two triangles touching at (103, 38.25); GEOS calls it a self-intersection
    bowtie = Polygon([(102.0, 37.5), (104.0, 39.0), (104.0, 37.5), (102.0, 39.0)])
    assert not bowtie.is_valid
    path = write_file(tmp_path, [{"code": "620702100", "name": "新墩镇", "geometry": bowtie}])
    stats = load(tiny_url, path)
    assert len(stats["repairs"]) == 1
    assert "feature #1" in stats["repairs"][0] and "620702100" in stats["repairs"][0] and "Self-intersection" in stats["repairs"][0]
    assert conn.execute("SELECT ST_IsValid(geom) AS ok FROM region WHERE code = '620702100'").fetchone()["ok"]
    assert_children_cover(conn, "620702")


def test_a_new_village_gets_a_grid_and_takes_its_area_from_its_neighbours(conn, tiny_url, tmp_path):
    # village 620702100201 (east half of 新墩镇) is box(103, 37, 104, 39); a new one takes its north-east corner
    corner = box(103.5, 38.5, 104.0, 39.0)
    path = write_file(tmp_path, [{"code": "620702100202", "name": "新村", "geometry": corner}], name="villages")
    stats = load(tiny_url, path, level="村")
    assert stats["new"] == ["620702100202"] and "620702100201" in stats["adjusted"]
    assert [(c, n) for c, n, _, _ in children(conn, "620702100202")] == [("620702100202001", "新村第1网格")]
    assert shape_of(conn, "620702100201").symmetric_difference(box(103, 37, 104, 39).difference(corner)).area < 1e-9
    for code in ("620702100", "620702100201", "620702100202"):
        assert_children_cover(conn, code)


def test_grids_with_a_parent_field_replace_the_grids_of_their_village(conn, tiny_url, tmp_path):
    # village 620702100200 is box(102, 37, 103, 39): survey it as three grids from west to east
    rows = [{"code": f"620702100200{k:03d}", "name": f"浅河村第{k}网格", "village": "620702100200",
             "geometry": box(102 + (k - 1) / 3, 37, 102 + k / 3, 39)} for k in (1, 2, 3)]
    path = write_file(tmp_path, rows, name="grids")
    stats = load(tiny_url, path, level="grid", parent="village")
    assert stats["replaced"] == ["620702100200001", "620702100200002"] and stats["new"] == ["620702100200003"]
    kids = children(conn, "620702100200")
    assert [c for c, _, _, _ in kids] == ["620702100200001", "620702100200002", "620702100200003"]
    sort_keys = conn.execute("SELECT code, sort_key FROM region WHERE parent_code = '620702100200' ORDER BY code").fetchall()
    assert [r["sort_key"] for r in sort_keys] == [1, 2, 3]  # west → east
    assert_children_cover(conn, "620702100200")
    # intake's point-in-polygon table follows the new grids
    n = conn.execute("SELECT count(DISTINCT code) AS n FROM region_subdivided WHERE code LIKE '620702100200%'").fetchone()["n"]
    assert n == 3


# -- refusals: each names the feature, the value and the fix, and leaves the database exactly as it was

REFUSALS = [
    pytest.param({"level": "county-ish"}, [{"code": "620702100", "name": "新墩镇", "geometry": SURVEYED_XINDUN}],
                 ["level 'county-ish' is unknown", "township"], id="unknown-level"),
    pytest.param({}, [{"code": "6207021", "name": "新墩镇", "geometry": SURVEYED_XINDUN}],
                 ["feature #1", "'6207021'", "7 digits", "9"], id="code-does-not-fit-the-level"),
    pytest.param({}, [{"code": "62070210A", "name": "新墩镇", "geometry": SURVEYED_XINDUN}],
                 ["feature #1", "not all digits"], id="code-not-digits"),
    pytest.param({}, [{"code": "620799100", "name": "无主镇", "geometry": SURVEYED_XINDUN}],
                 ["feature #1", "'620799100'", "no parent", "'620799'"], id="child-without-parent"),
    pytest.param({}, [{"code": "620702100", "name": "新墩镇", "geometry": box(100.2, 37.5, 101.8, 39.0)}],
                 ["feature #1", "outside its parent 620702", "100%"], id="far-outside-its-parent"),
    pytest.param({}, [{"code": "620702100", "name": "新墩镇", "geometry": box(37.5, 102.0, 39.0, 104.0)}],
                 ["feature #1", "swap lat/long"], id="lat-long-swapped"),
    pytest.param({}, [{"code": "620702100", "name": "新墩镇", "geometry": SURVEYED_XINDUN},
                      {"code": "620702100", "name": "新墩镇二", "geometry": box(102, 35, 103, 36)}],
                 ["feature #2", "used already by feature #1"], id="duplicate-codes"),
    pytest.param({}, [{"code": "620702100", "name": "新墩镇", "geometry": box(102, 37, 104, 39)},
                      {"code": "620702200", "name": "乌江乡", "geometry": box(102, 35, 104, 38)}],
                 ["overlap by 50.0%"], id="overlapping-features"),
    pytest.param({"code": "XZQDM"}, [{"code": "620702100", "name": "新墩镇", "geometry": SURVEYED_XINDUN}],
                 ["--code-field 'XZQDM'", "no such field", "code, name"], id="missing-field"),
    pytest.param({}, [{"code": "620702100", "name": None, "geometry": SURVEYED_XINDUN}],
                 ["feature #1", "name is empty"], id="missing-name"),
]


@pytest.mark.parametrize("options, rows, words", REFUSALS)
def test_a_refused_file_is_named_with_the_reason_and_leaves_the_database_unchanged(conn, tiny_url, tmp_path, options, rows, words):
    path = write_file(tmp_path, rows)
    before = snapshot(conn)
    with pytest.raises(BoundaryError) as refused:
        load(tiny_url, path, level=options.get("level", "township"), code=options.get("code", "code"))
    message = str(refused.value)
    for word in words:
        assert word in message, f"{word!r} missing from: {message}"
    assert "Nothing was written" in message
    assert snapshot(conn) == before


def test_a_unit_still_referenced_by_a_case_is_removed_and_the_case_is_restamped_into_the_unit_that_took_its_place(conn, tiny_url, tmp_path):
    from tests.factories import make_case

    make_case(conn, lon=102.5, lat=36.5)  # stamped into grid 620702200200001 of 乌江乡
    assert conn.execute("SELECT grid_code FROM cases").fetchone()["grid_code"] == "620702200200001"
    # a survey of 新墩镇 as the whole county leaves no room for 乌江乡: it goes, and its case moves to 新墩镇
    path = write_file(tmp_path, [{"code": "620702100", "name": "新墩镇", "geometry": box(102, 35, 104, 39)}])
    stats = load(tiny_url, path)
    assert "620702200" in stats["deleted"]
    case = conn.execute("SELECT id, township_code, grid_code, county_code FROM cases").fetchone()
    assert case["township_code"] == "620702100" and case["grid_code"].startswith("620702100")
    assert case["county_code"] == "620702"
    assert stats["restamped"]["case"] == 1
    assert stats["moves"] == [{"kind": "case", "from": "620702200", "to": "620702100", "n": 1}]
    history = conn.execute("SELECT old_codes, new_codes FROM region_restamp WHERE kind = 'case' AND row_id = %s",
                           (case["id"],)).fetchone()
    assert history["old_codes"]["grid_code"] == "620702200200001"
    reported = conn.execute("SELECT grid_code, township_code FROM reported_codes WHERE kind = 'case' AND row_id = %s",
                            (case["id"],)).fetchone()
    assert reported == {"grid_code": "620702200200001", "township_code": "620702200"}


def test_a_case_of_a_removed_unit_whose_point_no_new_unit_holds_is_refused_as_an_orphan(conn, tiny_url, tmp_path):
    from tests.factories import make_case

    make_case(conn, lon=102.5, lat=36.5)
    # the case's point drifts outside every unit (a region outline edited by hand): no new unit can take it
    conn.execute("UPDATE cases SET geom = ST_SetSRID(ST_MakePoint(110, 30), 4326)")
    before = snapshot(conn)
    path = write_file(tmp_path, [{"code": "620702100", "name": "新墩镇", "geometry": box(102, 35, 104, 39)}])
    with pytest.raises(BoundaryError, match="orphans") as refused:
        load(tiny_url, path)
    assert "620702200200001" in str(refused.value) and "Nothing was written" in str(refused.value)
    assert snapshot(conn) == before
    assert conn.execute("SELECT count(*) AS n FROM boundary_adjustment").fetchone()["n"] == 0


def test_the_cli_loads_a_file_and_refuses_a_bad_one_with_exit_code_1(conn, tiny_url, tmp_path):
    env = {**os.environ, "DATABASE_URL": tiny_url}
    good = write_file(tmp_path, [{"XZQDM": "620702100", "XZQMC": "新墩镇", "geometry": SURVEYED_XINDUN}], ext="gpkg")
    done = subprocess.run([sys.executable, "-m", "gridwatch.cli", "etl", "boundaries", str(good), "--level", "township",
                           "--code-field", "XZQDM", "--name-field", "XZQMC", "--seed", "1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "loaded 1 township unit(s)" in done.stderr
    assert region(conn, "620702100")["source"] == "file:townships.gpkg"
    before = snapshot(conn)
    bad = write_file(tmp_path, [{"XZQDM": "6207021", "XZQMC": "新墩镇", "geometry": SURVEYED_XINDUN}], ext="gpkg", name="bad")
    refused = subprocess.run([sys.executable, "-m", "gridwatch.cli", "etl", "boundaries", str(bad), "--level", "township",
                              "--code-field", "XZQDM", "--name-field", "XZQMC"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1
    assert "feature #1" in refused.stderr and "'6207021'" in refused.stderr
    assert snapshot(conn) == before


@pytest.mark.gansu
def test_a_surveyed_township_in_real_gansu_fits_between_its_generated_neighbours(gansu_copy_url, tmp_path):
    with psycopg.connect(gansu_copy_url, autocommit=True, row_factory=dict_row) as conn:
        code = conn.execute("SELECT code FROM region WHERE name = '新墩镇' AND parent_code = '620702'").fetchone()["code"]
        old = shape_of(conn, code)
        surveyed = old.buffer(-0.004).simplify(0.001)   # a survey 400 m inside the generated outline
        neighbours_before = {c: g for c, _, _, g in children(conn, "620702") if c != code}
        path = write_file(tmp_path, [{"code": code, "name": "新墩镇", "geometry": surveyed}])
        stats = load(gansu_copy_url, path)
        assert stats["replaced"] == [code]
        # the ring the survey gave up went to several neighbours, each the side next to it
        assert len(stats["adjusted"]) >= 2
        for c in stats["adjusted"]:
            assert shape_of(conn, c).area > neighbours_before[c].area
        assert_children_cover(conn, "620702")
        for village, *_ in children(conn, code):
            assert_children_cover(conn, village)
        assert_children_cover(conn, code)


def test_stored_coverage_follows_a_boundary_change(conn, tiny_url, tmp_path):
    from gridwatch.coverage.figures import recompute
    from tests.factories import make_centre

    make_centre(conn, "620702100", "township", 103.0, 38.0)
    make_centre(conn, "620702200", "township", 103.0, 36.0)
    with psycopg.connect(tiny_url, row_factory=dict_row) as c:
        recompute(c)
        c.commit()
    assert {r["township_code"] for r in conn.execute("SELECT township_code FROM township_coverage").fetchall()} >= {"620702100", "620702200"}
    # 新墩镇 takes the whole county: 乌江乡's coverage goes with it, 新墩镇's is computed for its new outline
    path = write_file(tmp_path, [{"code": "620702100", "name": "新墩镇", "geometry": box(102, 35, 104, 39)}])
    stats = load(tiny_url, path)
    assert stats["coverage"] is not None and stats["coverage"]["townships"] >= 1
    rows = {r["township_code"]: r for r in conn.execute("SELECT township_code, area_km2 FROM township_coverage").fetchall()}
    assert "620702200" not in rows
    area = conn.execute("SELECT area_km2 FROM region WHERE code = '620702100'").fetchone()["area_km2"]
    assert abs(rows["620702100"]["area_km2"] - area) < 1e-6 * area
    grids = conn.execute("""SELECT count(*) AS n FROM region g LEFT JOIN grid_coverage c ON c.grid_code = g.code
                            WHERE g.level = 'grid' AND g.code LIKE '620702%' AND c.grid_code IS NULL""").fetchone()["n"]
    assert grids == 0, "every grid of the county has its coverage"
