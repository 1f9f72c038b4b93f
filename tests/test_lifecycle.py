"""The case lifecycle against hand-worked examples on the tiny hierarchy (tests/factories.py).

Tiny grid geometry: county 620702 (甘州区) is lon 102–104; its township 620702100 is lat 37–39,
village 620702100200 is lon 102–103, its grid …001 is lat 38–39. So (102.5, 38.5) lies in grid
620702100200001, and (102.5, 38.5) is 3 hops from the prefecture 6207.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gridwatch import cases, intake
from gridwatch.cases import TRANSITIONS, IllegalTransition, allowed_actions, apply
from gridwatch.intake import InputError, create_case
from tests.factories import make_department

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def report(conn, category="neighbour", lon=102.5, lat=38.5, **extra):
    case, created = create_case(conn, {"category": category, "lon": lon, "lat": lat, **extra})
    assert created
    return case


def events(conn, case_id):
    return [(e["action"], e["from_state"], e["to_state"]) for e in cases.case_events(conn, case_id)]


def test_a_case_is_stamped_with_its_grid_and_every_ancestor_at_intake(conn, tiny):
    case = report(conn)
    assert case["grid_code"] == "620702100200001"
    assert (case["village_code"], case["township_code"], case["county_code"], case["prefecture_code"]) == (
        "620702100200", "620702100", "620702", "6207")
    assert case["state"] == "reported" and case["handling_level"] == "village"
    assert events(conn, case["id"]) == [("report", None, "reported")]


def test_the_full_happy_path_writes_one_event_per_step_and_closes_on_time(conn, tiny):
    dept = make_department(conn, "620702100", "justice", "新墩镇司法所")
    case = report(conn, reported_at=T0)
    cid = case["id"]
    apply(conn, cid, "accept", "网格员甲", at=T0 + timedelta(minutes=30))
    out = apply(conn, cid, "dispatch", "综治中心", at=T0 + timedelta(hours=1), department_id=dept)
    # neighbour disputes have a 72 h limit from dispatch: 10:00 + 72 h
    assert out["case"]["deadline"] == T0 + timedelta(hours=73)
    apply(conn, cid, "start", "司法所", at=T0 + timedelta(hours=2))
    apply(conn, cid, "feedback", "司法所", at=T0 + timedelta(hours=20), note="双方和解", resolved=True)
    closed = apply(conn, cid, "verify", "网格员甲", at=T0 + timedelta(hours=24))["case"]
    assert closed["state"] == "closed" and closed["closed_at"] == T0 + timedelta(hours=24)
    assert closed["closed_on_time"] is True and closed["resolved"] is True
    assert closed["closed_level"] == "village" and closed["department_id"] == dept
    assert events(conn, cid) == [
        ("report", None, "reported"), ("accept", "reported", "accepted"), ("dispatch", "accepted", "dispatched"),
        ("start", "dispatched", "in_progress"), ("feedback", "in_progress", "feedback"), ("verify", "feedback", "closed"),
    ]
    visited = apply(conn, cid, "visit", "回访员", at=T0 + timedelta(days=3), satisfaction=5)["case"]
    assert visited["satisfaction"] == 5 and visited["state"] == "closed"


def test_return_redispatch_rework_and_an_approved_extension_are_counted_and_move_the_deadline(conn, tiny):
    a = make_department(conn, "620702100", "justice", "司法所")
    b = make_department(conn, "620702", "land", "自然资源局")
    cid = report(conn, category="housing_homestead", reported_at=T0)["id"]   # 360 h limit
    apply(conn, cid, "accept", "x", at=T0)
    apply(conn, cid, "dispatch", "x", at=T0, department_id=a)
    returned = apply(conn, cid, "return", "司法所", at=T0 + timedelta(hours=1), note="不属本所职责")["case"]
    assert returned["state"] == "returned" and returned["returns"] == 1
    again = apply(conn, cid, "dispatch", "x", at=T0 + timedelta(hours=2), department_id=b)["case"]
    assert again["department_id"] == b and again["deadline"] == T0 + timedelta(hours=360)  # first deadline kept
    apply(conn, cid, "start", "y", at=T0 + timedelta(hours=3))
    apply(conn, cid, "request_extension", "y", at=T0 + timedelta(hours=4), hours=48, note="需现场测量")
    with pytest.raises(InputError, match="already has an extension request of 48 h"):
        apply(conn, cid, "request_extension", "y", at=T0 + timedelta(hours=4), hours=24, note="again")
    ext = apply(conn, cid, "approve_extension", "z", at=T0 + timedelta(hours=5))["case"]
    assert ext["extensions"] == 1 and ext["deadline"] == T0 + timedelta(hours=408)
    apply(conn, cid, "feedback", "y", at=T0 + timedelta(hours=100), note="done")
    rework = apply(conn, cid, "rework", "grid", at=T0 + timedelta(hours=101), note="未量清界址")["case"]
    assert rework["state"] == "in_progress" and rework["reworks"] == 1
    apply(conn, cid, "feedback", "y", at=T0 + timedelta(hours=420), note="done again", resolved=False)
    closed = apply(conn, cid, "verify", "grid", at=T0 + timedelta(hours=421))["case"]
    # 421 h > 408 h deadline → late; the last feedback said not resolved
    assert closed["closed_on_time"] is False and closed["resolved"] is False


def test_an_illegal_transition_is_refused_naming_the_state_and_the_allowed_actions_and_writes_nothing(conn, tiny):
    cid = report(conn)["id"]
    before = events(conn, cid)
    with pytest.raises(IllegalTransition) as err:
        apply(conn, cid, "verify", "someone")
    message = str(err.value)
    assert "is reported" in message and "verify is not allowed" in message
    assert "accept, reject, merge, escalate, hand_down" in message
    assert "已上报" in err.value.message_zh
    assert events(conn, cid) == before
    assert cases.get_case(conn, cid)["state"] == "reported"


def test_escalation_climbs_village_township_county_and_hand_down_returns_with_instructions(conn, tiny):
    cid = report(conn, reported_at=T0)["id"]
    levels = []
    for k in range(3):
        levels.append(apply(conn, cid, "escalate", "centre", at=T0 + timedelta(hours=k), note="超出本级能力")["case"]["handling_level"])
    assert levels == ["township", "county", "prefecture"]
    down = apply(conn, cid, "hand_down", "county centre", at=T0 + timedelta(hours=5), level="township", note="请菜子镇牵头调处")["case"]
    assert down["handling_level"] == "township" and down["escalations"] == 3 and down["state"] == "accepted"
    last = cases.case_events(conn, cid)[-1]
    assert last["data"]["instructions"] == "请菜子镇牵头调处" and last["data"]["from_level"] == "prefecture"
    with pytest.raises(InputError, match="can be handed down to: village"):
        apply(conn, cid, "hand_down", "x", level="county", note="up is not down")


def test_escalation_skips_a_missing_county_the_way_jiayuguan_townships_hang_under_the_prefecture(conn):
    from shapely.geometry import box

    from tests.factories import make_region

    make_region(conn, "62", "甘肃省", "province", box(96, 38, 100, 41))
    make_region(conn, "6202", "嘉峪关市", "prefecture", box(96, 38, 100, 41), "62")
    make_region(conn, "620200001", "雄关街道", "township", box(96, 38, 100, 41), "6202")
    make_region(conn, "620200001001", "某社区", "village", box(96, 38, 100, 41), "620200001")
    make_region(conn, "620200001001001", "某网格", "grid", box(96, 38, 100, 41), "620200001001")
    case = report(conn, lon=98.3, lat=39.8)
    assert case["county_code"] is None and case["township_code"] == "620200001" and case["prefecture_code"] == "6202"
    apply(conn, case["id"], "escalate", "x", note="n")
    up = apply(conn, case["id"], "escalate", "x", note="n")["case"]
    assert up["handling_level"] == "prefecture"
    red = report(conn, lon=98.31, lat=39.81, grade="red", category="emergency")
    assert red["handling_level"] == "prefecture"     # red starts at county; there is none here


def test_parking_and_resuming_returns_to_the_state_it_was_parked_from(conn, tiny):
    dept = make_department(conn, "620702100", "justice")
    cid = report(conn)["id"]
    apply(conn, cid, "accept", "x")
    apply(conn, cid, "dispatch", "x", department_id=dept)
    apply(conn, cid, "start", "x")
    parked = apply(conn, cid, "park", "x", note="历史遗留，待政策明确")["case"]
    assert parked["state"] == "parked"
    assert apply(conn, cid, "resume", "x")["case"]["state"] == "in_progress"


def test_mediation_attempts_are_recorded_with_kind_mediator_outcome_and_agreement(conn, tiny):
    cid = report(conn)["id"]
    apply(conn, cid, "accept", "x")
    apply(conn, cid, "mediate", "centre", kind="people", mediator="老杨调解室")
    apply(conn, cid, "mediation_result", "centre", outcome="failed")
    apply(conn, cid, "mediate", "centre", kind="judicial", mediator="甘州区人民法院")
    with pytest.raises(InputError, match="needs the agreement text"):
        apply(conn, cid, "mediation_result", "centre", outcome="agreed")
    apply(conn, cid, "mediation_result", "centre", outcome="agreed", agreement="赔偿 3000 元")
    ms = cases.case_mediations(conn, cid)
    assert [(m["kind"], m["outcome"], m["agreement"]) for m in ms] == [
        ("people", "failed", None), ("judicial", "agreed", "赔偿 3000 元")]
    with pytest.raises(InputError, match="mediation kind 'court'"):
        apply(conn, cid, "mediate", "centre", kind="court", mediator="x")


def test_grades_start_at_their_tier_and_set_their_response_clock(conn, tiny):
    at = datetime(2026, 3, 2, 3, 0, tzinfo=timezone.utc)   # 11:00 in China
    red = report(conn, grade="red", reported_at=at)
    orange = report(conn, grade="orange", lon=102.6, reported_at=at)
    yellow = report(conn, grade="yellow", lon=102.7, reported_at=at)
    assert (red["handling_level"], orange["handling_level"], yellow["handling_level"]) == ("county", "township", "village")
    assert red["respond_by"] == at + timedelta(hours=1)
    assert orange["respond_by"] == datetime(2026, 3, 2, 16, 0, tzinfo=timezone.utc)   # midnight China time
    assert yellow["respond_by"] == at + timedelta(hours=24)


def test_every_state_has_a_way_forward_except_the_final_ones():
    for state in cases.STATES:
        if state in ("rejected",):
            assert allowed_actions(state) == []
        else:
            assert allowed_actions(state), state
    targets = {t.target for t in TRANSITIONS.values()} - {"=", "<"}
    assert targets <= set(cases.STATES)


def test_a_batch_with_one_bad_case_writes_nothing(conn, tiny):
    good = {"category": "neighbour", "lon": 102.5, "lat": 38.5}
    with pytest.raises(InputError) as err:
        intake.create_cases(conn, [good, good, {"category": "neighbour", "lon": 116.4, "lat": 39.9}])
    assert err.value.field == "cases[2].lon" and "outside Gansu" in str(err.value)
    assert conn.execute("SELECT count(*) AS n FROM cases").fetchone()["n"] == 0


def test_a_retry_with_the_same_client_request_id_returns_the_same_case(conn, tiny):
    first, created = create_case(conn, {"category": "neighbour", "lon": 102.5, "lat": 38.5, "client_request_id": "abc"})
    again, created_again = create_case(conn, {"category": "neighbour", "lon": 102.5, "lat": 38.5, "client_request_id": "abc"})
    assert created and not created_again and again["id"] == first["id"]
    assert conn.execute("SELECT count(*) AS n FROM case_event").fetchone()["n"] == 1


def test_the_same_category_within_50_m_in_72_h_is_flagged_as_a_possible_duplicate(conn, tiny):
    first = report(conn, lon=102.5, lat=38.5, reported_at=T0)
    near = report(conn, lon=102.5003, lat=38.5002, reported_at=T0 + timedelta(hours=5))       # ~33 m
    far = report(conn, lon=102.5010, lat=38.5, reported_at=T0 + timedelta(hours=6))           # ~87 m
    late = report(conn, lon=102.5, lat=38.5, reported_at=T0 + timedelta(hours=80))            # 80 h after first
    other = report(conn, category="labour", lon=102.5, lat=38.5, reported_at=T0 + timedelta(hours=1))
    assert near["possible_duplicate_of"] == first["id"] and near["duplicate_of"] is None   # flagged, still counted
    assert far["possible_duplicate_of"] is None and other["possible_duplicate_of"] is None
    assert late["possible_duplicate_of"] is None   # 75 h after `near`, 80 h after `first`
    merged = apply(conn, near["id"], "merge", "综治中心", at=T0 + timedelta(hours=90))["case"]
    assert merged["state"] == "rejected" and merged["duplicate_of"] == first["id"]
    with pytest.raises(InputError, match="has no flagged possible duplicate"):
        apply(conn, far["id"], "merge", "综治中心", at=T0 + timedelta(hours=90))


def test_gcj02_input_from_amap_clients_is_converted_to_wgs84(conn, tiny):
    from geo.coords import wgs84_to_gcj02

    glon, glat = wgs84_to_gcj02(102.5, 38.5)
    case = report(conn, lon=glon, lat=glat, coord_system="gcj02")
    row = conn.execute("SELECT ST_X(geom) AS x, ST_Y(geom) AS y FROM cases WHERE id = %s", (case["id"],)).fetchone()
    assert abs(row["x"] - 102.5) < 1e-7 and abs(row["y"] - 38.5) < 1e-7
    assert case["coord_system"] == "gcj02"


def test_a_hand_down_sets_the_deadline_and_report_up_returns_the_case_to_the_level_that_handed_it_down(conn, tiny):
    cid = report(conn, reported_at=T0, handling_level="county")["id"]
    apply(conn, cid, "accept", "县中心", at=T0 + timedelta(hours=1))
    down = apply(conn, cid, "hand_down", "县中心", at=T0 + timedelta(hours=2), level="township", hours=168, note="7日内报县中心")["case"]
    assert down["deadline"] == T0 + timedelta(hours=170) and down["handling_level"] == "township"
    assert cases.report_back_to(conn, down) == "county"
    late = T0 + timedelta(hours=200)                                     # after the deadline: recorded, not refused
    up = apply(conn, cid, "report_up", "镇中心", at=late, note="调解不成，已引导诉讼", resolved=False)
    assert (up["case"]["state"], up["case"]["handling_level"]) == ("feedback", "county")
    assert up["event"]["data"] == {"from_level": "township", "to_level": "county", "resolved": False,
                                   "result": "调解不成，已引导诉讼", "on_time": False}
    assert cases.report_back_to(conn, up["case"]) is None
    with pytest.raises(IllegalTransition, match="not handed down"):       # nothing waits for a second report
        apply(conn, cid, "report_up", "镇中心", at=late, note="again")
    closed = apply(conn, cid, "verify", "县中心", at=late + timedelta(hours=1))["case"]
    assert (closed["closed_level"], closed["resolved"], closed["closed_on_time"]) == ("county", False, False)
    assert events(conn, cid)[-2:] == [("report_up", "accepted", "feedback"), ("verify", "feedback", "closed")]
