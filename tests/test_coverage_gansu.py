"""Coverage on the full Gansu demo: the reported figures computed from the data, the drill to the
three counties without an entity centre, and a what-if on real (generated) townships and grids."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.rows import dict_row

from etl.centres import DEMO_ESTABLISHED_ONLY, load_demo
from gridwatch import coverage
from gridwatch.coverage import Hypothetical
from tests.conftest import clone_database, drop_database, wait_until

pytestmark = pytest.mark.gansu


@pytest.fixture(scope="module")
def centres_url(cluster, gansu_template):
    """A copy of the Gansu database with the demo centres and the stored coverage (once per module)."""
    name = clone_database(cluster, gansu_template)
    url = cluster.url(name)
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        load_demo(conn)
    yield url
    drop_database(cluster, name)


@pytest.fixture
def gconn(centres_url):
    with psycopg.connect(centres_url, row_factory=dict_row, autocommit=True) as c:
        yield c


def test_the_demo_registry_has_a_centre_for_the_province_every_prefecture_county_and_township(gconn):
    counts = {r["level"]: r["n"] for r in gconn.execute(
        "SELECT level, count(*) AS n FROM centre WHERE scenario IS NULL GROUP BY level").fetchall()}
    regions = {r["level"]: r["n"] for r in gconn.execute(
        "SELECT level, count(*) AS n FROM region WHERE level IN ('province', 'prefecture', 'county', 'township') GROUP BY level").fetchall()}
    assert counts == regions
    assert (regions["prefecture"], regions["county"], regions["township"]) == (14, 86, 1351)
    lanzhou = gconn.execute(
        """SELECT r.code FROM centre c JOIN region r ON r.level = 'county' AND ST_Intersects(r.geom, c.geom)
           WHERE c.level = 'province'""").fetchone()
    assert lanzhou["code"] == "620102"                                           # 城关区, 兰州


def test_ninety_six_and_a_half_percent_of_counties_have_an_entity_centre_and_the_drill_names_the_three(gconn):
    rows = {r["level"]: r for r in coverage.institutional(gconn, "62")}
    county = rows["county"]
    assert (county["with_entity"], county["children"]) == (83, 86)
    assert round(county["share_entity"] * 100, 1) == 96.5
    assert county["with_centre"] == 86
    assert [(m["code"], m["status"]) for m in county["missing"]] == [(c, "established") for c in DEMO_ESTABLISHED_ONLY]
    names = [m["name"] for m in county["missing"]]
    assert names == ["肃北蒙古族自治县", "阿克塞哈萨克族自治县", "玛曲县"]
    assert (rows["prefecture"]["with_entity"], rows["prefecture"]["children"]) == (14, 14)
    assert (rows["township"]["with_centre"], rows["township"]["children"]) == (1351, 1351)
    assert rows["township"]["share_centre"] == 1.0 and rows["township"]["missing"] == []
    jiuquan = {r["level"]: r for r in coverage.institutional(gconn, "6209")}["county"]   # the drill one level down
    assert [m["code"] for m in jiuquan["missing"]] == ["620923", "620924"]


def test_the_stored_spatial_coverage_accounts_for_every_grid_and_every_square_kilometre(gconn):
    n_grids = gconn.execute("SELECT count(*) AS n FROM region WHERE level = 'grid'").fetchone()["n"]
    assert n_grids >= 25_000
    assert gconn.execute("SELECT count(*) AS n FROM grid_coverage").fetchone()["n"] == n_grids
    assert gconn.execute("SELECT count(*) AS n FROM grid_coverage WHERE township_m IS NULL OR county_m IS NULL").fetchone()["n"] == 0
    f = coverage.evaluate(gconn, "62").figures
    province_km2 = gconn.execute("SELECT area_km2 FROM region WHERE code = '62'").fetchone()["area_km2"]
    assert f["area_km2"] == pytest.approx(province_km2, rel=5e-3)                # townships partition the province
    assert f["any"]["area_km2"] + f["gap_km2"] == pytest.approx(f["area_km2"], rel=1e-9)
    assert 0 < f["township"]["area_share"] < f["any"]["area_share"] < 1
    # the stored nearest distances agree with a brute-force scan of every centre (a sample of grids)
    wrong = gconn.execute(
        """WITH sample AS (SELECT code, label_point FROM (
                               SELECT code, label_point, row_number() OVER (ORDER BY code) AS rn FROM region WHERE level = 'grid') n
                           WHERE rn % 100 = 0 ORDER BY code LIMIT 300)
           SELECT count(*) AS checked,
                  count(*) FILTER (WHERE abs(gc.township_m - brute.tw) > 1e-6 OR abs(gc.county_m - brute.co) > 1e-6) AS wrong
           FROM sample s JOIN grid_coverage gc ON gc.grid_code = s.code,
           LATERAL (SELECT min(ST_Distance(c.geom::geography, s.label_point::geography)) FILTER (WHERE c.level = 'township') AS tw,
                           min(ST_Distance(c.geom::geography, s.label_point::geography)) FILTER (WHERE c.level <> 'township') AS co
                    FROM centre c WHERE c.scenario IS NULL AND c.status IN ('established', 'entity')) brute""").fetchone()
    assert wrong["checked"] == 300 and wrong["wrong"] == 0


def test_a_what_if_in_a_real_county_fills_part_of_its_gap_and_matches_adding_the_centre_for_real(gconn, centres_url):
    far = gconn.execute(
        """SELECT gc.grid_code, left(gc.grid_code, 6) AS county, ST_X(r.label_point) AS lon, ST_Y(r.label_point) AS lat
           FROM grid_coverage gc JOIN region r ON r.code = gc.grid_code
           WHERE NOT gc.covered_township AND NOT gc.covered_county
             AND left(gc.grid_code, 6) IN (SELECT code FROM region WHERE level = 'county')
           ORDER BY gc.grid_code LIMIT 1""").fetchone()
    assert far is not None, "the demo has grids beyond every centre's reach"
    before = coverage.evaluate(gconn, far["county"])
    what_if = coverage.evaluate(gconn, far["county"], extra=[Hypothetical(far["lon"], far["lat"], "township")])
    assert 1 <= what_if.recomputed_townships <= 10
    assert what_if.figures["any"]["grids"] > before.figures["any"]["grids"]
    assert what_if.figures["gap_km2"] < before.figures["gap_km2"]
    gained = before.figures["gap_km2"] - what_if.figures["gap_km2"]
    assert 0 < gained <= 3.1214 * 25 * 1.01                                      # at most one 5 km circle (32-gon)

    with psycopg.connect(centres_url, row_factory=dict_row) as tx:                # add it for real, then roll back
        with tx.transaction(force_rollback=True):
            township = far["grid_code"][:9]
            tx.execute("""INSERT INTO centre (name, level, region_code, status, geom)
                          VALUES ('假设', 'township', %s, 'entity', ST_SetSRID(ST_MakePoint(%s, %s), 4326))""",
                       (township, far["lon"], far["lat"]))
            new_id = tx.execute("SELECT id FROM centre WHERE name = '假设'").fetchone()["id"]
            coverage.refresh(tx, [(far["lon"], far["lat"], "township")], [new_id])
            real = coverage.evaluate(tx, far["county"])
            assert real.recomputed_townships == 0
            assert real.figures["any"]["grids"] == what_if.figures["any"]["grids"]
            assert real.figures["gap_km2"] == pytest.approx(what_if.figures["gap_km2"], rel=1e-9)
    assert coverage.evaluate(gconn, far["county"]).figures["gap_km2"] == before.figures["gap_km2"]


def test_the_api_answers_the_province_with_the_drill_and_a_county_what_if_page_loads(centres_url, serve, browser_page):
    import httpx

    server = serve(centres_url)
    body = httpx.get(server.url + "/api/v1/coverage/62", timeout=60).json()
    county = next(r for r in body["institutional"] if r["level"] == "county")
    assert round(county["share_entity"] * 100, 1) == 96.5
    assert [m["code"] for m in county["missing"]] == list(DEMO_ESTABLISHED_ONLY)
    assert body["grids"] >= 25_000

    page = browser_page
    page.goto(server.url + "/coverage")
    page.wait_for_selector("#coverage-share-county")
    assert page.inner_text("#coverage-share-county") == "96.5%"
    page.click("#coverage-missing-toggle-county")
    assert [page.inner_text(f"#coverage-missing-{c}") for c in DEMO_ESTABLISHED_ONLY] == ["肃北蒙古族自治县", "阿克塞哈萨克族自治县", "玛曲县"]
    page.click("#coverage-missing-623025")
    # the page re-renders after the address changes: wait for the county's own view, not the province's
    wait_until(lambda: page.inner_text("#coverage-crumb-current") == "玛曲县", timeout=20, message="玛曲县's coverage view")
    page.wait_for_selector("#coverage-fig-gap")
    page.screenshot_to("coverage-gansu-maqu")
