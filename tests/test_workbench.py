"""The workbench core on real PostGIS (tiny hierarchy): queues by stage, the actions a user may take
now, convening departments (一吹哨、部门报到), notifications — as the owner for the logic and as the
app role (row-level security) where scope matters."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from gridwatch import auth, intake, notifications, workbench
from gridwatch import cases as lifecycle
from gridwatch.db import transaction
from tests.factories import make_department
from tests.test_rls import app_url

XINDUN = (103.0, 38.5)      # 甘州区新墩镇 of the tiny hierarchy (township 620702100)
WUJIANG = (103.0, 35.5)     # 甘州区乌江乡 (620702200)


def principal(conn, user_id: int) -> auth.Principal:
    sid = auth.create_session(conn, user_id)
    return auth.resolve(conn, sid)


@pytest.fixture
def people(conn, tiny):
    water = make_department(conn, "620702", "water", "甘州区水务局")
    town_gov = make_department(conn, "620702100", "township_gov", "新墩镇人民政府")
    station = make_department(conn, "620702100", "water", "新墩镇水管站")
    ids = {
        "county": auth.add_user(conn, "ganzhou", "operator", region_code="620702", display_name="甘州区综治中心"),
        "xindun": auth.add_user(conn, "xindun", "operator", region_code="620702100"),
        "wujiang": auth.add_user(conn, "wujiang", "operator", region_code="620702200"),
        "water": auth.add_user(conn, "water", "department", department_id=water),
        "towngov": auth.add_user(conn, "towngov", "department", department_id=town_gov),
        "station": auth.add_user(conn, "station", "department", department_id=station),
        "grid": auth.add_user(conn, "grid1", "grid_worker", region_code="620702100201001"),
    }
    return {"p": {k: principal(conn, v) for k, v in ids.items()}, "water": water, "town_gov": town_gov, "station": station}


def report(conn, lon_lat=XINDUN, **extra) -> dict:
    item = {"category": "project_contract", "lon": lon_lat[0], "lat": lon_lat[1], "channel": "window", **extra}
    with transaction(conn):
        return intake.create_case(conn, item, actor="窗口")[0]


def test_a_county_operator_queues_county_cases_by_stage_and_a_township_operator_does_not_see_them(conn, people):
    p = people["p"]
    county_case = report(conn, handling_level="county", title="县级受理的案件")
    township_case = report(conn, handling_level="township", title="镇级受理的案件")
    other_town = report(conn, WUJIANG, handling_level="township", title="乌江乡的案件")
    county_q = workbench.queue(conn, p["county"])
    assert [r["id"] for r in county_q] == [county_case["id"]]
    row = county_q[0]
    assert row["stage"] == "to_accept" and row["due"] == county_case["respond_by"] and row["seconds_left"] > 0
    assert [r["id"] for r in workbench.queue(conn, p["xindun"])] == [township_case["id"]]
    assert [r["id"] for r in workbench.queue(conn, p["wujiang"])] == [other_town["id"]]
    # accepting moves it to 待分派; the stage filter and counts follow
    workbench.act(conn, p["county"], county_case["id"], "accept")
    assert workbench.queue(conn, p["county"], stage="to_accept") == []
    assert [r["stage"] for r in workbench.queue(conn, p["county"], stage="to_dispatch")] == ["to_dispatch"]
    assert workbench.queue_counts(workbench.queue(conn, p["county"]))["to_dispatch"] == 1


def test_the_actions_offered_follow_the_lifecycle_state_and_who_is_asking(conn, people):
    p = people["p"]
    case = report(conn, handling_level="county")
    fresh = lifecycle.get_case(conn, case["id"])
    offered = workbench.actions_for(conn, p["county"], fresh)
    assert offered[:2] == ["accept", "reject"] and offered[-2:] == ["merge", "register_hazard"]   # no flagged duplicate: merge late
    assert workbench.actions_for(conn, p["xindun"], fresh) == []     # not handled at the township
    assert workbench.actions_for(conn, p["water"], fresh) == []
    workbench.act(conn, p["county"], case["id"], "accept")
    out = workbench.act(conn, p["county"], case["id"], "dispatch", department_id=people["water"], note="核实欠款")
    assert out["case"]["state"] == "dispatched" and "dispatch" not in out["allowed_actions"]
    dispatched = out["case"]
    assert workbench.actions_for(conn, p["water"], dispatched) == ["return", "start", "request_extension", "register_hazard"]
    assert workbench.actions_for(conn, p["towngov"], dispatched) == []
    # the department's queue shows it to accept, with the category's time limit as the deadline
    q = workbench.queue(conn, p["water"])
    assert [(r["id"], r["stage"]) for r in q] == [(case["id"], "to_accept")]
    assert q[0]["due"] - dispatched["dispatched_at"] == timedelta(hours=360)


def test_an_action_the_user_may_not_take_is_refused_with_403_and_nothing_is_written(conn, people):
    p = people["p"]
    case = report(conn, handling_level="county")
    events = len(lifecycle.case_events(conn, case["id"]))
    with pytest.raises(workbench.Forbidden) as refused:
        workbench.act(conn, p["xindun"], case["id"], "accept")
    assert refused.value.status == 403 and "accept" in str(refused.value)
    with pytest.raises(workbench.Forbidden):
        workbench.act(conn, p["county"], case["id"], "feedback", note="不是中心的操作")
    assert lifecycle.get_case(conn, case["id"])["state"] == "reported"
    assert len(lifecycle.case_events(conn, case["id"])) == events


def test_convening_three_departments_dispatches_the_lead_and_each_reports_in_and_finishes_its_part(conn, db_url, people):
    p = people["p"]
    case = report(conn, handling_level="county", title="陈殿清反映渠道工程款未付")
    workbench.act(conn, p["county"], case["id"], "accept")
    parts = [{"department_id": people["water"], "part": "核实工程量并从维修养护经费中支付", "hours": 240, "lead": True},
             {"department_id": people["town_gov"], "part": "协调施工方与村组", "hours": 120},
             {"department_id": people["station"], "part": "提供渠道工程验收资料", "hours": 72}]
    out = workbench.act(conn, p["county"], case["id"], "convene", parts=parts, note="一吹哨：三部门报到")
    assert out["case"]["state"] == "dispatched" and out["case"]["department_id"] == people["water"]
    assert [(a["role"], a["department_name"], a["state"]) for a in out["assignments"]] == [
        ("lead", "甘州区水务局", "convened"), ("co", "新墩镇人民政府", "convened"), ("co", "新墩镇水管站", "convened")]
    assert out["case"]["deadline"] == max(a["deadline"] for a in out["assignments"])
    with pytest.raises(workbench.Invalid):    # one lead only, and a department once
        workbench.convene(conn, p["county"], case["id"], [{"department_id": people["station"], "part": "再来", "hours": 5, "lead": True}])
    # a co-handler sees the case only by being convened: as the app role, under row-level security
    sid = auth.create_session(conn, p["station"].user_id)
    with psycopg.connect(app_url(db_url), row_factory=dict_row) as app:
        with transaction(app, credential=sid) as tx:
            q = workbench.queue(tx, p["station"])
            assert [(r["id"], r["stage"], r["assignment_part"]) for r in q] == [(case["id"], "convened", "提供渠道工程验收资料")]
            assert workbench.actions_for(tx, p["station"], lifecycle.get_case(tx, case["id"])) == ["report_in", "decline",
                                                                                                     "register_hazard"]
            workbench.act(tx, p["station"], case["id"], "report_in", note="已报到")
            done = workbench.act(tx, p["station"], case["id"], "part_done", note="验收资料已提交")
            assert done["allowed_actions"] == ["register_hazard"]
        with transaction(app, credential=auth.create_session(conn, p["wujiang"].user_id)) as tx:
            assert tx.execute("SELECT count(*) AS n FROM case_assignment").fetchone()["n"] == 0
    trail = [(e["action"], e["actor"]) for e in lifecycle.case_events(conn, case["id"])]
    assert ("convene", "ganzhou") in trail and ("report_in", "station") in trail and ("part_done", "station") in trail
    assert workbench.queue(conn, p["station"]) == []     # finished: off its queue


def test_notifications_tell_of_new_cases_deadlines_returns_and_escalations_and_remember_what_was_read(conn, people):
    p = people["p"]
    township = report(conn, handling_level="township", title="镇里的新案件")
    news = notifications.for_user(conn, p["xindun"])
    assert [(n["kind"], n["case_id"], n["read"]) for n in news] == [("new_case", township["id"], False)]
    # escalated to the county: the county hears of it, at its level
    workbench.act(conn, p["xindun"], township["id"], "accept")
    workbench.act(conn, p["xindun"], township["id"], "escalate", note="涉及县直部门")
    kinds = {n["kind"] for n in notifications.for_user(conn, p["county"])}
    assert kinds == {"escalated"}
    # dispatched and returned: the centre hears of the return; a deadline under two hours is announced
    workbench.act(conn, p["county"], township["id"], "dispatch", department_id=people["water"], hours=1)
    assert {n["kind"] for n in notifications.for_user(conn, p["water"])} == {"new_case", "deadline_soon"}
    workbench.act(conn, p["water"], township["id"], "return", note="不属本局职责")
    county_news = notifications.for_user(conn, p["county"])
    assert {"returned", "escalated"} <= {n["kind"] for n in county_news}
    assert notifications.unread_count(county_news) == len(county_news)
    with transaction(conn):
        assert notifications.mark_read(conn, p["county"], [n["key"] for n in county_news]) == len(county_news)
        assert notifications.mark_read(conn, p["county"], [county_news[0]["key"]]) == 0
    assert notifications.unread_count(notifications.for_user(conn, p["county"])) == 0


def test_a_grid_worker_records_a_follow_up_check_on_a_case_of_the_grid(conn, people):
    p = people["p"]
    case = report(conn, (103.5, 38.5), title="网格内的案件")          # grid 620702100201001
    assert lifecycle.get_case(conn, case["id"])["grid_code"] == "620702100201001"
    assert workbench.actions_for(conn, p["grid"], lifecycle.get_case(conn, case["id"])) == ["follow_up"]
    out = workbench.act(conn, p["grid"], case["id"], "follow_up", note="回访：养殖场已搬迁，无异味")
    assert out["checkin"]["case_id"] == case["id"] and out["checkin"]["kind"] == "report"
    with pytest.raises(workbench.Invalid):
        workbench.act(conn, p["grid"], case["id"], "follow_up", note="  ")


def test_departments_serving_a_place_list_the_categorys_kind_first(conn, people):
    case = lifecycle.get_case(conn, report(conn)["id"])
    names = [d["name"] for d in workbench.departments_serving(conn, case)]
    assert set(names) == {"甘州区水务局", "新墩镇人民政府", "新墩镇水管站"}


def test_a_hazard_registered_on_a_case_is_closed_out_by_its_owner_and_only_while_open(conn, people):
    p = people["p"]
    case = report(conn, handling_level="township", title="牛棚上方低压线")
    workbench.act(conn, p["xindun"], case["id"], "accept")
    out = workbench.act(conn, p["xindun"], case["id"], "register_hazard", hazard_kind="power_line", title="低压线路",
                        deadline_days=15, owner_department_id=people["station"], note="线路距牛棚顶不足2米")
    hazard = out["hazard"]
    assert (hazard["case_id"], hazard["owner_department_id"], hazard["state"]) == (case["id"], people["station"], "open")
    assert "close_out_hazard" in out["allowed_actions"]
    with pytest.raises(workbench.Invalid):
        workbench.act(conn, p["xindun"], case["id"], "register_hazard", hazard_kind="volcano")
    workbench.act(conn, p["xindun"], case["id"], "dispatch", department_id=people["station"])
    station_can = workbench.actions_for(conn, p["station"], lifecycle.get_case(conn, case["id"]))
    assert "close_out_hazard" in station_can
    done = workbench.act(conn, p["station"], case["id"], "close_out_hazard", hazard_id=hazard["id"], note="线路已迁改，销号")
    assert done["hazard"]["state"] == "closed" and "close_out_hazard" not in done["allowed_actions"]
    with pytest.raises(workbench.Forbidden):
        workbench.act(conn, p["station"], case["id"], "close_out_hazard", hazard_id=hazard["id"])


def test_a_case_handed_down_with_a_deadline_is_reported_up_by_the_township_and_closed_by_the_county(conn, people):
    p = people["p"]
    cid = report(conn, handling_level="county", title="县中心交办新墩镇的案件")["id"]
    workbench.act(conn, p["county"], cid, "accept")
    with pytest.raises(workbench.Invalid) as no_deadline:          # a hand-down names the time for the report back
        workbench.act(conn, p["county"], cid, "hand_down", level="township", note="请新墩镇调处并报县中心")
    assert no_deadline.value.field == "hours" and lifecycle.get_case(conn, cid)["handling_level"] == "county"
    out = workbench.act(conn, p["county"], cid, "hand_down", level="township", hours=168, note="请新墩镇7日内调处并报县中心")
    down = out["case"]
    event = lifecycle.case_events(conn, cid)[-1]
    assert (down["handling_level"], down["state"]) == ("township", "accepted")
    assert down["deadline"] == event["at"] + timedelta(hours=168) and event["data"]["hours"] == 168
    assert event["actor"] == "ganzhou" and event["data"]["instructions"].startswith("请新墩镇")
    # the township may report up but not close it; the county may do nothing while it is down there
    township_offer = workbench.actions_for(conn, p["xindun"], down)
    assert "report_up" in township_offer and "verify" not in township_offer
    assert workbench.actions_for(conn, p["county"], down) == []
    assert workbench.actions_for(conn, p["wujiang"], down) == []
    assert [r["id"] for r in workbench.queue(conn, p["xindun"])] == [cid]
    assert workbench.queue(conn, p["xindun"])[0]["due"] == down["deadline"]
    workbench.act(conn, p["xindun"], cid, "mediate", kind="people", mediator="新墩镇调委会")
    workbench.act(conn, p["xindun"], cid, "mediation_result", outcome="agreed", agreement="镇政府30日内结清工程款")
    up = workbench.act(conn, p["xindun"], cid, "report_up", note="已调解达成协议，工程款结清")
    assert (up["case"]["state"], up["case"]["handling_level"]) == ("feedback", "county")
    assert up["allowed_actions"] == []                                 # the township is done with it
    assert [n["kind"] for n in notifications.for_user(conn, p["county"]) if n["case_id"] == cid][0] == "reported_up"
    # the county sends it back once (rework goes down to the township), then closes it at county level
    county_offer = workbench.actions_for(conn, p["county"], up["case"])
    assert "verify" in county_offer and "rework" in county_offer and "report_up" not in county_offer
    back = workbench.act(conn, p["county"], cid, "rework", note="请补充付款凭证")["case"]
    assert (back["state"], back["handling_level"], back["reworks"]) == ("in_progress", "township", 1)
    assert "report_up" in workbench.actions_for(conn, p["xindun"], back)
    workbench.act(conn, p["xindun"], cid, "report_up", note="付款凭证已补充")
    closed = workbench.act(conn, p["county"], cid, "verify", note="县中心核查办结")["case"]
    assert (closed["state"], closed["closed_level"], closed["resolved"], closed["closed_on_time"]) == ("closed", "county", True, True)
    trail = [(e["action"], e["actor"], e["level"]) for e in lifecycle.case_events(conn, cid)][1:]
    assert trail == [("accept", "ganzhou", "county"), ("hand_down", "ganzhou", "township"), ("mediate", "xindun", "township"),
                     ("mediation_result", "xindun", "township"), ("report_up", "xindun", "county"),
                     ("rework", "ganzhou", "township"), ("report_up", "xindun", "county"), ("verify", "ganzhou", "county")]


def test_only_a_case_handed_down_can_be_reported_up_and_nothing_is_written_when_refused(conn, people):
    p = people["p"]
    cid = report(conn, handling_level="township", title="镇级自办的案件")["id"]
    workbench.act(conn, p["xindun"], cid, "accept")
    case = lifecycle.get_case(conn, cid)
    assert "report_up" not in workbench.actions_for(conn, p["xindun"], case)
    before = lifecycle.case_events(conn, cid)
    with pytest.raises(workbench.Forbidden):
        workbench.act(conn, p["xindun"], cid, "report_up", note="无人交办")
    with pytest.raises(lifecycle.IllegalTransition) as refused:
        lifecycle.apply(conn, cid, "report_up", "xindun", note="无人交办")
    assert refused.value.status == 409 and "not handed down" in str(refused.value)
    assert lifecycle.case_events(conn, cid) == before and lifecycle.get_case(conn, cid)["handling_level"] == "township"


def test_a_task_handed_down_to_the_grid_is_in_the_grid_workers_queue_with_its_deadline_and_reported_up_by_the_worker(conn, people):
    p = people["p"]
    cid = report(conn, (103.5, 38.5), handling_level="township", title="交办网格核查")["id"]    # grid 620702100201001
    workbench.act(conn, p["xindun"], cid, "accept")
    down = workbench.act(conn, p["xindun"], cid, "hand_down", level="village", hours=48, note="请网格员两日内入户核查")["case"]
    q = workbench.queue(conn, p["grid"])
    assert [(r["id"], r["due"]) for r in q] == [(cid, down["deadline"])]
    assert workbench.actions_for(conn, p["grid"], down) == ["follow_up", "report_up"]
    assert "report_up" not in workbench.actions_for(conn, p["xindun"], down)   # the township waits for the grid
    up = workbench.act(conn, p["grid"], cid, "report_up", note="已入户核查，情况属实")["case"]
    assert (up["state"], up["handling_level"]) == ("feedback", "township") and workbench.queue(conn, p["grid"]) == []
    assert "verify" in workbench.actions_for(conn, p["xindun"], up)
