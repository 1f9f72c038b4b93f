"""Batched intake (gridwatch.intake.create_cases) against the tiny hierarchy: the set-based path keeps
what one-at-a-time intake does — duplicates (now also inside a batch), idempotent replays, region
stamps, respond_by, refs, the 'report' events, the case_day rollup, one data-version bump — and row-level
security as the app role signed in as a township operator.

Tiny geometry (tests/factories.py): township 620702100 is lon 102–104, lat 37–39 (its grid …001 holds
(102.5, 38.5)); township 620702200 is lon 102–104, lat 35–37.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg.rows import dict_row

from gridwatch import auth, intake
from gridwatch.db import transaction

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def app_url(db_url: str) -> str:
    return db_url.replace("postgresql://gridwatch@", "postgresql://gridwatch_app@", 1)


def version(conn) -> int:
    return conn.execute("SELECT version FROM data_version WHERE name = 'cases'").fetchone()["version"]


def counts(conn) -> tuple[int, int]:
    return (conn.execute("SELECT count(*) AS n FROM cases").fetchone()["n"],
            conn.execute("SELECT count(*) AS n FROM case_event").fetchone()["n"])


# A pattern of reports around an origin: (dx, dy) in degrees, hours after T0, category.
# 1 is ~33 m from 0; 2 is ~33 m from 1 and ~65 m from 0 (a match of 1 only, so flagged with 1's first
# report, 0); 3 is ~87 m from all (none); 4 is another category at 0 (none); 5 sits at 0 but was
# reported before 1 and 2 (it matches 0 only); 6 is at 0, 80 h later (past the 72 h of every other: none).
PATTERN = [((0, 0), 0, "neighbour"), ((0.0003, 0.0002), 5, "neighbour"), ((0.0006, 0.0004), 6, "neighbour"),
           ((0.0010, 0.0), 7, "neighbour"), ((0, 0), 1, "labour"), ((0.00001, 0), 2, "neighbour"),
           ((0, 0), 80, "neighbour")]


def pattern_items(lon: float, lat: float) -> list[dict]:
    return [{"category": cat, "lon": round(lon + dx, 7), "lat": round(lat + dy, 7), "reported_at": T0 + timedelta(hours=h)}
            for (dx, dy), h, cat in PATTERN]


def shape(cases: list[dict]) -> list[int | None]:
    """Each case's possible duplicate as a position in the list (None: not flagged)."""
    pos = {c["id"]: k for k, c in enumerate(cases)}
    return [None if c["possible_duplicate_of"] is None else pos.get(c["possible_duplicate_of"], -1) for c in cases]


def test_cases_near_each_other_in_one_batch_are_flagged_as_they_would_be_one_at_a_time(conn, tiny):
    one_by_one = [intake.create_case(conn, item)[0] for item in pattern_items(102.5, 38.5)]
    batch = [c for c, created in intake.create_cases(conn, pattern_items(102.3, 38.3)) if created]
    assert shape(one_by_one) == [None, 0, 0, None, None, 0, None]
    assert shape(batch) == shape(one_by_one)
    # every case still counts and carries its flag in the trail
    events = {r["case_id"]: r["data"] for r in conn.execute(
        "SELECT case_id, data FROM case_event WHERE action = 'report' AND case_id = ANY(%s)", ([c["id"] for c in batch],))}
    assert [events[c["id"]]["possible_duplicate_of"] for c in batch] == [c["possible_duplicate_of"] for c in batch]
    assert all(c["state"] == "reported" and c["duplicate_of"] is None for c in batch)


def test_a_batch_case_near_an_earlier_case_is_flagged_with_that_cases_first_report(conn, tiny):
    first = intake.create_case(conn, {"category": "neighbour", "lon": 102.6, "lat": 38.6, "reported_at": T0})[0]
    second = intake.create_case(conn, {"category": "neighbour", "lon": 102.6003, "lat": 38.6, "reported_at": T0 + timedelta(hours=1)})[0]
    assert second["possible_duplicate_of"] == first["id"]
    out = intake.create_cases(conn, [
        {"category": "neighbour", "lon": 102.6008, "lat": 38.6, "reported_at": T0 + timedelta(hours=2)},      # near second only
        {"category": "neighbour", "lon": 102.6, "lat": 38.6, "reported_at": T0 + timedelta(hours=100)},        # too late
    ])
    assert [c["possible_duplicate_of"] for c, _ in out] == [first["id"], None]


def test_a_replayed_batch_writes_nothing_and_answers_the_same_cases_in_order(conn, tiny):
    items = [{"category": "street_order", "lon": 102.2 + k * 0.01, "lat": 38.2, "client_request_id": f"r-{k}"} for k in range(6)]
    first = intake.create_cases(conn, items)
    assert all(created for _, created in first)
    before, v = counts(conn), version(conn)
    again = intake.create_cases(conn, list(reversed(items)))
    assert [c["id"] for c, _ in again] == [c["id"] for c, _ in reversed(first)]
    assert not any(created for _, created in again)
    assert counts(conn) == before and version(conn) == v        # nothing written, no notification
    # a key used twice inside one batch is one case; a new case at a replayed case's place is its duplicate
    mixed = intake.create_cases(conn, [
        {"category": "street_order", "lon": 102.7, "lat": 38.7, "client_request_id": "twice"},
        {"category": "street_order", "lon": 102.7, "lat": 38.7, "client_request_id": "twice"},
        {"category": "street_order", "lon": 102.2, "lat": 38.2, "client_request_id": "r-0"},
        {"category": "street_order", "lon": 102.2, "lat": 38.2, "client_request_id": "r-new"},
    ])
    assert [created for _, created in mixed] == [True, False, False, True]
    assert mixed[1][0]["id"] == mixed[0][0]["id"] and mixed[2][0]["id"] == first[0][0]["id"]
    assert mixed[3][0]["possible_duplicate_of"] == first[0][0]["id"] and mixed[0][0]["possible_duplicate_of"] is None
    assert counts(conn) == (before[0] + 2, before[1] + 2)


def test_a_batch_is_stamped_timed_and_rolled_up_like_single_cases_with_one_version_bump(conn, tiny):
    v = version(conn)
    at = datetime(2026, 3, 2, 3, 0, tzinfo=timezone.utc)
    out = intake.create_cases(conn, [
        {"category": "emergency", "lon": 102.5, "lat": 38.5, "reported_at": at},          # red: county, 1 h
        {"category": "labour", "lon": 102.5, "lat": 36.5, "reported_at": at},             # orange: township, same day
        {"category": "neighbour", "lon": 100.5, "lat": 38.5, "reported_at": at, "handling_level": "county"},
    ])
    red, orange, yellow = (c for c, _ in out)
    assert version(conn) == v + 1
    assert (red["grid_code"], red["township_code"], red["county_code"], red["prefecture_code"]) == (
        "620702100200001", "620702100", "620702", "6207")
    assert orange["township_code"] == "620702200" and yellow["county_code"] == "620102"
    assert [c["handling_level"] for c in (red, orange, yellow)] == ["county", "township", "county"]
    for c in (red, orange, yellow):
        expected = conn.execute("SELECT grade_respond_by(%s, %s) AS r", (c["grade"], c["reported_at"])).fetchone()["r"]
        assert c["respond_by"] == expected
        assert c["ref"] == f"GW20260302-{c['id']}"
    assert orange["respond_by"] == datetime(2026, 3, 2, 16, 0, tzinfo=timezone.utc)     # midnight China time
    trail = conn.execute("SELECT case_id, actor, action, level FROM case_event WHERE case_id = ANY(%s) ORDER BY case_id",
                         ([c["id"] for c in (red, orange, yellow)],)).fetchall()
    assert [(e["action"], e["level"]) for e in trail] == [("report", "county"), ("report", "township"), ("report", "county")]
    day = {r["unit"]: (r["reported"], r["open"]) for r in conn.execute(
        "SELECT unit, reported, open FROM case_day WHERE day = '2026-03-02'").fetchall()}
    assert day == {"620702": (2, 0), "620102": (1, 0)}
    opened = {r["unit"]: r["open"] for r in conn.execute("SELECT unit, open FROM case_day WHERE day = 'infinity'").fetchall()}
    assert opened == {"620702": 2, "620102": 1}


@pytest.fixture
def xindun(conn, tiny):
    """A township operator of 620702100 with a session, and an app-role connection."""
    uid = auth.add_user(conn, "xindun", "operator", region_code="620702100")
    return uid, auth.create_session(conn, uid)


def test_a_township_operators_batch_is_written_as_that_user_under_row_level_security(conn, db_url, xindun):
    uid, session = xindun
    v = version(conn)
    with psycopg.connect(app_url(db_url), row_factory=dict_row) as app:
        with transaction(app, credential=session) as c:
            out = intake.create_cases(c, [{"category": "neighbour", "lon": 102.5 + k * 0.001, "lat": 38.5,
                                           "client_request_id": f"x-{k}"} for k in range(5)], actor="somebody")
        with transaction(app, credential=session) as c:     # a replay answers this user's cases
            again = intake.create_cases(c, [{"category": "neighbour", "lon": 102.5, "lat": 38.5, "client_request_id": "x-0"}])
    ids = [c["id"] for c, _ in out]
    assert again == [(out[0][0], False)]
    assert version(conn) == v + 1
    rows = conn.execute("SELECT created_by FROM cases WHERE id = ANY(%s)", (ids,)).fetchall()
    assert [r["created_by"] for r in rows] == [uid] * 5
    actors = conn.execute("SELECT DISTINCT actor FROM case_event WHERE case_id = ANY(%s)", (ids,)).fetchall()
    assert [a["actor"] for a in actors] == ["xindun"]        # the signed-in user, whatever the caller said
    # the same key from the owner (no user) is another creator's key: a new case
    assert intake.create_case(conn, {"category": "neighbour", "lon": 102.5, "lat": 38.5, "client_request_id": "x-0"})[1] is True


def test_a_batch_reaching_into_another_township_is_refused_whole_under_a_township_scope(conn, db_url, xindun):
    _, session = xindun
    before, v = counts(conn), version(conn)
    with psycopg.connect(app_url(db_url), row_factory=dict_row) as app:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with transaction(app, credential=session) as c:
                intake.create_cases(c, [{"category": "neighbour", "lon": 102.5, "lat": 38.5},    # 620702100: its own
                                        {"category": "neighbour", "lon": 102.5, "lat": 36.5}])   # 620702200: not
    assert counts(conn) == before and version(conn) == v


def test_the_batch_actor_hint_cannot_put_another_name_on_the_trail(conn, db_url, xindun):
    _, session = xindun
    case = intake.create_case(conn, {"category": "neighbour", "lon": 102.5, "lat": 38.5})[0]
    with psycopg.connect(app_url(db_url), row_factory=dict_row) as app:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="signed-in user"):
            with transaction(app, credential=session) as c:
                c.execute("SELECT set_config('gridwatch.trail_actor', '省委书记', true)")
                c.execute("INSERT INTO case_event (case_id, actor, action, to_state) VALUES (%s, '省委书记', 'note', 'reported')",
                          (case["id"],))
        with transaction(app, credential=session) as c:      # the hint naming the user is allowed, and others rewritten
            c.execute("SELECT set_config('gridwatch.trail_actor', 'xindun', true)")
            c.execute("INSERT INTO case_event (case_id, actor, action, to_state) VALUES (%s, 'xindun', 'note', 'reported'),"
                      " (%s, '别人', 'note', 'reported')", (case["id"], case["id"]))
    notes = conn.execute("SELECT actor FROM case_event WHERE case_id = %s AND action = 'note'", (case["id"],)).fetchall()
    assert [n["actor"] for n in notes] == ["xindun", "xindun"]


def test_points_on_grid_borders_and_corners_get_the_grid_a_single_lookup_gives(conn, tiny):
    # inside; on the border of two grids (lat 38 between …001 and …002); on a village border (lon 103);
    # on a corner of four grids; on the county border (lon 102)
    points = [(102.5, 38.5), (102.5, 38.0), (103.0, 38.5), (103.0, 38.0), (102.0, 37.5)]
    out = intake.create_cases(conn, [{"category": "construction", "lon": lon, "lat": lat} for lon, lat in points])
    expected = [conn.execute("SELECT region_leaf(ST_SetSRID(ST_MakePoint(%s, %s), 4326)) AS g", p).fetchone()["g"] for p in points]
    assert [c["grid_code"] for c, _ in out] == expected
    assert expected[1] == expected[3] == "620702100200001"       # the lowest code of the grids meeting there


def test_a_batch_racing_another_transaction_of_the_same_client_flags_against_the_case_that_won(conn, db_url, tiny):
    import threading

    from tests.conftest import wait_until

    x = {"category": "neighbour", "lon": 102.8, "lat": 38.8, "client_request_id": "race-x"}
    y = {"category": "neighbour", "lon": 102.8002, "lat": 38.8001, "client_request_id": "race-y"}     # ~20 m from x
    result: dict = {}
    with psycopg.connect(db_url, row_factory=dict_row) as first, psycopg.connect(db_url, row_factory=dict_row) as second:
        pid = second.execute("SELECT pg_backend_pid() AS p").fetchone()["p"]
        second.commit()
        with first.transaction():
            won = intake.create_case(first, x)[0]               # not committed yet

            def other():
                try:
                    with second.transaction():
                        result["out"] = intake.create_cases(second, [x, y])
                except Exception as exc:  # noqa: BLE001 - asserted below
                    result["error"] = exc

            t = threading.Thread(target=other)
            t.start()
            wait_until(lambda: conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                                            (pid,)).fetchone()["wait_event_type"] == "Lock",
                       timeout=20, message="the second batch to wait on the first's client_request_id")
        t.join(timeout=30)                                          # the first committed on leaving its block
    assert "error" not in result, result.get("error")
    (got_x, created_x), (got_y, created_y) = result["out"]
    assert got_x["id"] == won["id"] and created_x is False
    assert created_y is True and got_y["possible_duplicate_of"] == won["id"]


def test_every_field_of_a_mixed_batch_arrives_as_sent(conn, tiny):
    # the batch's columns travel as binary arrays: whole numbers as coordinates, a GCJ-02 point, Chinese
    # text and parties, columns that are empty in every case but one, a time on one case only
    items = [
        {"category": "neighbour", "lon": 102, "lat": 38, "title": "楼上漏水", "description": "邻居说“不关我事”, 请协调",
         "reporter_name": "张三", "reporter_phone": "13800000000", "address": "张掖市甘州区某路 1 号",
         "parties": [{"name": "李四", "role": "respondent"}], "client_request_id": "mixed-0", "coord_system": "cgcs2000"},
        {"category": "labour", "lon": 102.6, "lat": 38.6, "reported_at": T0, "channel": "hotline"},
        {"category": "street_order", "lon": 102.7, "lat": 38.7, "coord_system": "gcj02"},
    ]
    out = [c for c, created in intake.create_cases(conn, items) if created]
    assert len(out) == 3
    stored = {r["id"]: r for r in conn.execute(
        "SELECT id, title, description, reporter_name, reporter_phone, address, parties, client_request_id, channel,"
        " reported_at, coord_system, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM cases WHERE id = ANY(%s)",
        ([c["id"] for c in out],)).fetchall()}
    first, second, third = (stored[c["id"]] for c in out)
    assert (first["title"], first["description"], first["reporter_name"], first["reporter_phone"], first["address"]) == (
        "楼上漏水", "邻居说“不关我事”, 请协调", "张三", "13800000000", "张掖市甘州区某路 1 号")
    assert first["parties"] == [{"name": "李四", "role": "respondent"}] and first["client_request_id"] == "mixed-0"
    assert (first["lon"], first["lat"], first["coord_system"]) == (102.0, 38.0, "cgcs2000")
    assert second["reported_at"] == T0 and second["channel"] == "hotline" and second["client_request_id"] is None
    assert second["parties"] == [] and second["title"] and second["description"] is None
    # the GCJ-02 point is stored converted to WGS84 (a few hundred metres off in this part of China)
    assert third["coord_system"] == "gcj02" and 0.001 < abs(third["lon"] - 102.7) + abs(third["lat"] - 38.7) < 0.02
    events = conn.execute("SELECT case_id, at, data FROM case_event WHERE action = 'report' AND case_id = ANY(%s)"
                          " ORDER BY case_id", ([c["id"] for c in out],)).fetchall()
    assert [e["data"]["channel"] for e in events] == [c["channel"] for c in out]
    assert [e["at"] for e in events] == [c["reported_at"] for c in out]
