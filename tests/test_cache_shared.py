"""Shared answers (issue 13): pages asking for the same view, register or tile at the same moment
share one computation, in a process and across workers through Redis; and a shared answer never
crosses a scope: two operators of different townships asking for the same county page each get
their own township's cases, however the requests interleave."""

from __future__ import annotations

import json
import math
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from gridwatch.cache import LocalCache, RedisCache, cache_key, cached_json, single_flight
from tests.apiserver import ApiWorld
from tests.conftest import account_token, bearer, wait_until
from tests.factories import make_case
from tests.services import redis_server  # noqa: F401  (fixture)


def _users_of(cache, key: str) -> int:
    """How many askers are inside ``key``'s flight right now (the one computing and those waiting)."""
    entry = cache.flights._locks.get(key)
    return entry[1] if entry else 0


def test_eight_pages_asking_at_once_for_a_missing_view_share_one_computation():
    cache, key, calls = LocalCache(), cache_key("region-view", "620702", "scope-a", 1), []
    release = threading.Event()

    def compute():
        calls.append(1)
        release.wait(30)                    # hold the computation until every other asker is waiting for it
        return {"open": 3}

    with ThreadPoolExecutor(8) as pool:
        answers = [pool.submit(cached_json, cache, key, compute) for _ in range(8)]
        wait_until(lambda: _users_of(cache, key) == 8, timeout=20, message="all eight askers in the flight")
        release.set()
        values = [a.result(30) for a in answers]
    assert values == [{"open": 3}] * 8
    assert len(calls) == 1
    assert cache.stats()["flights_shared"] == 7 and cache.stats()["flights_led"] == 1


def test_a_computation_that_fails_fails_only_its_own_asker_and_the_next_one_computes():
    cache, key = LocalCache(), cache_key("region-view", "62", "scope-a", 2)
    started, release, calls = threading.Event(), threading.Event(), []

    def failing():
        calls.append("failing")
        started.set()
        release.wait(30)
        raise RuntimeError("database went away")

    def working():
        calls.append("working")
        return {"open": 1}

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(cached_json, cache, key, failing)
        assert started.wait(20)
        second = pool.submit(cached_json, cache, key, working)
        wait_until(lambda: _users_of(cache, key) == 2, timeout=20, message="the second asker waiting")
        release.set()
        with pytest.raises(RuntimeError, match="database went away"):
            first.result(30)
        assert second.result(30) == {"open": 1}
    assert calls == ["failing", "working"]
    assert cache.get(key) is not None            # the working answer is cached; the failure is not


def test_different_keys_never_wait_for_each_other():
    cache = LocalCache()
    a, b = cache_key("tile", "case_counts", "scope-a", "5", 9, 1, 1), cache_key("tile", "case_counts", "scope-b", "5", 9, 1, 1)
    with single_flight(cache, a) as hit_a:
        assert hit_a is None
        with single_flight(cache, b) as hit_b:          # another scope's key: computed alongside, not after
            assert hit_b is None
            cache.set(b, b"tile of b")
        cache.set(a, b"tile of a")
    assert cache.get(a) == b"tile of a" and cache.get(b) == b"tile of b"


def test_a_second_worker_waits_for_the_first_workers_answer_through_redis(redis_server):  # noqa: F811
    first, second = RedisCache(redis_server.url), RedisCache(redis_server.url)
    key = cache_key("region-view", "620702", "scope-a", 3)
    inside, release = threading.Event(), threading.Event()
    computed = []

    def worker_one():
        with single_flight(first, key) as hit:
            assert hit is None
            computed.append("one")
            inside.set()
            release.wait(30)
            first.set(key, b'{"open":4}')

    def worker_two():
        with single_flight(second, key) as hit:
            if hit is None:                       # only if the first worker's claim were not seen
                computed.append("two")
                second.set(key, b'{"open":4}')
            return hit

    with ThreadPoolExecutor(2) as pool:
        one = pool.submit(worker_one)
        assert inside.wait(20)
        two = pool.submit(worker_two)
        wait_until(lambda: redis_server.client.exists("gw-lock:" + key), timeout=10, message="the first worker's claim")
        release.set()
        one.result(30)
        assert two.result(30) == b'{"open":4}'
    assert computed == ["one"]
    assert not redis_server.client.exists("gw-lock:" + key)        # the claim is released with the answer
    assert second.stats()["flights_shared"] == 1


# -- scopes: real app, real PostGIS, row-level security ------------------------------------------

@pytest.fixture(scope="module")
def world(cluster):
    # a server process of its own: Dash hands page callbacks to the first app built in a process, so
    # an in-process app's pages answer from whichever app a worker built first (tests/apiserver.py)
    w = ApiWorld(cluster, process=True)
    with w.connect() as conn:
        make_case(conn, 103.0, 38.0, title="新墩镇的案件甲")                      # township 620702100 (north)
        make_case(conn, 103.0, 36.0, title="乌江乡的案件乙")                      # township 620702200 (south)
        make_case(conn, 103.5, 36.5, title="乌江乡的案件丙")
    w.tokens = {"north": account_token(w.db_url, "op_north", "operator", "620702100"),
                "south": account_token(w.db_url, "op_south", "operator", "620702200")}
    yield w
    w.close()


def _versions(world) -> dict:
    with world.connect() as conn:
        return {r["name"]: r["version"] for r in conn.execute("SELECT name, version FROM data_version")}


def _view(http, world, who: str, code: str) -> dict:
    versions = _versions(world)
    live = {t: versions.get(t, 0) for t in ("cases", "hazard", "centre", "region", "checkin", "township_coverage")}
    body = {"output": "..region-data.data...region-error.children...region-error.hidden...region-retry.disabled..",
            "outputs": [{"id": "region-data", "property": "data"}, {"id": "region-error", "property": "children"},
                        {"id": "region-error", "property": "hidden"}, {"id": "region-retry", "property": "disabled"}],
            "inputs": [{"id": "region-code", "property": "data", "value": code},
                       {"id": "region-live", "property": "data", "value": live},
                       {"id": "region-retry", "property": "n_intervals", "value": None}],
            "changedPropIds": ["region-live.data"],
            "state": [{"id": "shell-versions", "property": "data", "value": versions},
                      {"id": "shell-lang", "property": "data", "value": "zh"}]}
    r = http.post("/_dash-update-component", json=body, headers=bearer(world.tokens[who]))
    assert r.status_code == 200, r.text
    return r.json()["response"]["region-data"]["data"]


def _register(http, world, who: str, code: str) -> str:
    versions = _versions(world)
    body = {"output": "region-cases.children", "outputs": {"id": "region-cases", "property": "children"},
            "inputs": [{"id": "region-code", "property": "data", "value": code},
                       {"id": "region-case-search", "property": "value", "value": None},
                       {"id": "region-cases-live", "property": "data", "value": {"cases": versions.get("cases", 0)}},
                       {"id": "shell-lang", "property": "data", "value": "zh"}],
            "changedPropIds": ["region-cases-live.data"],
            "state": [{"id": "shell-versions", "property": "data", "value": versions}]}
    r = http.post("/_dash-update-component", json=body, headers=bearer(world.tokens[who]))
    assert r.status_code == 200, r.text
    # decoded: Dash writes Chinese as \u escapes unless orjson happens to be installed
    return json.dumps(r.json(), ensure_ascii=False)


def _tile(http, world, who: str) -> bytes:
    """The z9 case_counts tile holding the north township's label point, as ``who`` sees it."""
    r = http.get(_tile_path(http, world, who), headers=bearer(world.tokens[who]))
    assert r.status_code == 200, r.text
    return r.content


def _tile_path(http, world, who: str) -> str:
    """The path (current version) of the z9 case_counts tile holding the north township's label point."""
    with world.connect() as conn:
        p = conn.execute("SELECT ST_X(label_point) AS lon, ST_Y(label_point) AS lat FROM region WHERE code = '620702100'").fetchone()
    n = 1 << 9
    x = int((p["lon"] + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(p["lat"]))) / math.pi) / 2.0 * n)
    index = http.get("/tiles/index.json", headers=bearer(world.tokens[who])).json()
    layer = next(layer for layer in index["layers"] if layer["name"] == "case_counts")
    return layer["tiles"][0].replace("{z}", "9").replace("{x}", str(x)).replace("{y}", str(y)).replace(world.url, "")


def _sees(view: dict) -> set[str]:
    """The case titles a view's map shows (its points: cases under row-level security)."""
    return {c["title"] for c in view["points"]["cases"]}


def test_two_township_operators_asking_for_the_same_county_page_each_get_their_own_townships_answer(world):
    with httpx.Client(base_url=world.url, timeout=60) as http:
        def a_round() -> None:
            for who, mine, theirs, n in (("north", "新墩镇的案件甲", "乌江乡", {"新墩镇的案件甲"}), ("south", "乌江乡的案件乙", "新墩镇", set())):
                assert _sees(_view(http, world, who, "620702100")) == n     # the north township's page, as each sees it
                register = _register(http, world, who, "620702")
                assert mine in register and theirs not in register

        a_round()

        def answered_from_the_cache() -> bool:                  # a later round (keys also name the minute)
            before = _cache_stats(http)["hits"]
            a_round()
            return _cache_stats(http)["hits"] >= before + 4     # both scopes' view and register

        wait_until(answered_from_the_cache, timeout=30, interval=0.1, message="a round answered from the cache")


def _cache_stats(http) -> dict:
    """The server's cache counters (its /healthz)."""
    return http.get("/healthz").json()["worker"]["cache"]


def test_township_operators_asking_at_the_same_moment_never_get_each_others_shared_answer(world):
    with world.connect() as conn:
        make_case(conn, 102.5, 38.5, title="新墩镇的案件丁")      # a new version: nothing cached for it yet
    expected = {"north": {"新墩镇的案件甲", "新墩镇的案件丁"}, "south": set()}
    with httpx.Client(base_url=world.url, timeout=60) as http, ThreadPoolExecutor(8) as pool:
        asks = [pool.submit(lambda who=who: (who, _sees(_view(http, world, who, "620702100")), _register(http, world, who, "620702")))
                for who in ["north", "south"] * 6]
        for ask in asks:
            who, seen, register = ask.result(60)
            assert seen == expected[who]
            assert ("乌江乡" in register) == (who == "south") and ("新墩镇" in register) == (who == "north")


def test_case_count_tiles_are_cached_per_scope(world):
    with httpx.Client(base_url=world.url, timeout=60) as http:
        north, south = _tile(http, world, "north"), _tile(http, world, "south")
        assert north != south                                    # each township's own counts
        assert _tile(http, world, "north") == north and _tile(http, world, "south") == south


def test_an_older_tile_url_after_a_change_gets_the_current_tile_not_the_cached_old_one(world):
    with httpx.Client(base_url=world.url, timeout=60) as http:
        before = _tile(http, world, "north")
        old = "{cases}-{region}".format(**_versions(world))            # the layer's version: cases-region
        with world.connect() as conn:
            make_case(conn, 102.4, 38.6, title="新墩镇的案件戊")
        now = _versions(world)
        new = "{cases}-{region}".format(**now)
        path = _tile_path(http, world, "north").replace(f"v={new}", f"v={old}")
        assert f"v={old}" in path

        def fresh():
            r = http.get(path, headers=bearer(world.tokens["north"]))
            return r if r.status_code == 200 and r.headers["x-data-version"] == new else None

        r = wait_until(fresh, timeout=30, message="the old URL to be answered at the new version")
        assert r.content != before and "no-cache" in r.headers["cache-control"]
        again = http.get(path, headers=bearer(world.tokens["north"]))           # the shared current tile, still no-cache
        assert again.content == r.content and "no-cache" in again.headers["cache-control"]
        ahead = http.get(path.replace(f"v={old}", f"v={now['cases'] + 5}-{now['region']}"), headers=bearer(world.tokens["north"]))
        assert ahead.status_code == 200 and ahead.headers["x-cache"] == "miss"    # newer than the server knows: rendered


def test_remembered_descendant_counts_follow_a_change_of_the_regions(conn, tiny):
    from shapely.geometry import box

    from gridwatch.regions import descendant_counts
    from tests.factories import make_region

    assert descendant_counts(conn, "620702100")["village"] == 2
    assert descendant_counts(conn, "620702100")["village"] == 2            # remembered for this region version
    make_region(conn, "620702100202", "新墩镇新村", "village", box(102.0, 37.0, 102.5, 37.5), "620702100", kind="村委会")
    assert descendant_counts(conn, "620702100")["village"] == 3            # a new version: counted again
    with conn.transaction():                                                # inside a transaction that writes regions:
        conn.execute("""INSERT INTO region (code, name, level, kind, parent_code, source, geom)
                        SELECT c, '又一村', 'village', '村委会', '620702100', 'generated', geom FROM region, unnest(%s::text[]) c
                        WHERE code = '620702100202'""", (["620702100203", "620702100204"],))
        assert descendant_counts(conn, "620702100")["village"] == 5        # its own rows, never remembered
        raise psycopg.Rollback()
    assert descendant_counts(conn, "620702100")["village"] == 3            # rolled back: the committed regions again
    make_region(conn, "620702100205", "新墩镇三村", "village", box(102.5, 37.5, 103.0, 38.0), "620702100", kind="村委会")
    assert descendant_counts(conn, "620702100")["village"] == 4            # the next committed version, whatever its number
