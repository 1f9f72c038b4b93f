"""Alert triage on constructed alerts in a real PostGIS database: grouping by rule × region,
inhibition on the same subject, silences with their history, and escalation up the hierarchy."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from gridwatch import triage
from gridwatch.alerts import acknowledge, run_rules
from tests.factories import make_case, make_hazard

T0 = datetime(2026, 6, 1, 2, 0, tzinfo=timezone.utc)
# tiny hierarchy: 兰州市 6201 → 城关区 620102 → 620102100 → 620102100200 → grids …001/…002; 张掖市 6207 likewise
LZ_GRID = "620102100200001"
LZ_GRID2 = "620102200201002"
ZY_GRID = "620702100200001"


def make_alert(conn, rule: str, region: str, severity: str, *, subject: dict | None = None,
               raised_at: datetime = T0, key: str | None = None) -> int:
    key = key or f"{rule}:{region}:{json.dumps(subject or {}, sort_keys=True)}:{severity}"
    row = conn.execute(
        """INSERT INTO alert (rule, region_code, subject, explanation_zh, explanation_en, numbers, severity, dedup_key,
                              raised_at, last_seen_at, geom)
           SELECT %s, %s, %s, '说明', 'explanation', '{}', %s, %s, %s, %s, ST_PointOnSurface(geom) FROM region WHERE code = %s
           RETURNING id""",
        (rule, region, json.dumps(subject or {}), severity, key, raised_at, raised_at, region)).fetchone()
    return row["id"]


def test_alerts_are_grouped_by_rule_and_the_region_below_the_one_asked_for_worst_first(conn, tiny):
    for i in range(3):
        make_alert(conn, "silent_grid", LZ_GRID, "yellow", subject={"grid": LZ_GRID}, key=f"s{i}",
                   raised_at=T0 + timedelta(hours=i))
    make_alert(conn, "silent_grid", LZ_GRID2, "orange", subject={"grid": LZ_GRID2}, key="s9")
    make_alert(conn, "silent_grid", ZY_GRID, "yellow", subject={"grid": ZY_GRID}, key="s10")
    make_alert(conn, "red_case", ZY_GRID, "red", subject={"case_id": 1}, raised_at=T0 + timedelta(hours=5))
    groups = triage.grouped_alerts(conn, "62", now=T0 + timedelta(hours=6))
    assert [(g["rule"], g["region_code"], g["count"], g["worst_severity"]) for g in groups] == [
        ("red_case", "6207", 1, "red"),
        ("silent_grid", "6201", 4, "orange"),
        ("silent_grid", "6207", 1, "yellow"),
    ]
    lz = groups[1]
    assert lz["region_name"] == "兰州市" and lz["oldest_raised_at"] == T0.isoformat()
    assert lz["silenced_until"] is None and lz["lon"] is not None
    # one level down: 兰州市's counties, then the county's townships
    assert [(g["region_code"], g["count"]) for g in triage.grouped_alerts(conn, "6201")] == [("620102", 4)]
    assert sorted((g["region_code"], g["count"]) for g in triage.grouped_alerts(conn, "620102")) == [
        ("620102100", 3), ("620102200", 1)]


def test_an_overdue_red_hazards_alert_and_its_red_hazard_alert_are_one_item(conn, tiny):
    hz = {"hazard_id": 7, "title": "燃气管线"}
    red = make_alert(conn, "red_hazard", LZ_GRID, "red", subject=hz)
    overdue = make_alert(conn, "hazard_overdue", LZ_GRID, "red", subject=hz, raised_at=T0 + timedelta(days=8))
    other = make_alert(conn, "red_hazard", LZ_GRID, "red", subject={"hazard_id": 8})
    # a red case past its deadline: deadline_past inhibits red_case; a red case near its deadline: red_case wins
    past = make_alert(conn, "deadline_past", LZ_GRID, "red", subject={"case_id": 1})
    red_case = make_alert(conn, "red_case", LZ_GRID, "red", subject={"case_id": 1})
    near = make_alert(conn, "deadline_near", LZ_GRID, "orange", subject={"case_id": 2})
    red_case2 = make_alert(conn, "red_case", LZ_GRID, "red", subject={"case_id": 2})
    tri = {r["alert_id"]: r["inhibited_by"] for r in conn.execute("SELECT * FROM alert_triage(now())")}
    assert tri[red] == overdue and tri[overdue] is None and tri[other] is None
    assert tri[red_case] == past and tri[past] is None
    assert tri[near] == red_case2 and tri[red_case2] is None
    groups = {g["rule"]: g for g in triage.grouped_alerts(conn, "62")}
    assert groups["hazard_overdue"]["count"] == 1
    assert groups["red_hazard"]["count"] == 1 and groups["red_hazard"]["inhibited"] == 1
    assert groups["red_case"]["count"] == 1 and groups["red_case"]["inhibited"] == 1
    assert "deadline_near" not in groups
    # once the stronger alert resolves, the lesser one stands on its own again
    conn.execute("UPDATE alert SET resolved_at = now() WHERE id = %s", (overdue,))
    assert {g["rule"]: g["count"] for g in triage.grouped_alerts(conn, "62")}["red_hazard"] == 2


def test_the_rules_themselves_make_an_overdue_red_hazard_one_item(conn, tiny):
    make_hazard(conn, kind="gas", grade="red", title="燃气泄漏", reported_at=T0 - timedelta(days=20),
                deadline=T0 - timedelta(days=13))
    run_rules(conn, now=T0, rules=["red", "hazard_overdue"])
    groups = triage.grouped_alerts(conn, "62", now=T0)
    assert conn.execute("SELECT count(*) AS n FROM alert WHERE resolved_at IS NULL").fetchone()["n"] == 2
    assert [(g["rule"], g["count"], g["worst_severity"]) for g in groups] == [("hazard_overdue", 1, "red")]


def test_an_operator_silences_a_group_for_a_set_time_with_a_reason_and_the_history_stays(conn, tiny):
    for i in range(2):
        make_alert(conn, "silent_grid", LZ_GRID, "yellow", key=f"a{i}")
    make_alert(conn, "silent_grid", ZY_GRID, "yellow", key="b")
    s = triage.create_silence(conn, rule="silent_grid", region="6201", minutes=120, reason="基站检修，网格员无法签到",
                              actor="值班员张三", now=T0)
    assert s["active"] and s["ends_at"] == (T0 + timedelta(hours=2)).isoformat() and s["created_by"] == "值班员张三"
    groups = {g["region_code"]: g for g in triage.grouped_alerts(conn, "62", now=T0 + timedelta(minutes=1))}
    assert groups["6201"]["silenced_until"] == (T0 + timedelta(hours=2)).isoformat() and groups["6201"]["silenced"] == 2
    assert groups["6207"]["silenced_until"] is None
    # past its end the group is loud again, without anybody doing anything
    later = {g["region_code"]: g for g in triage.grouped_alerts(conn, "62", now=T0 + timedelta(hours=3))}
    assert later["6201"]["silenced_until"] is None
    # ended early: kept, with who ended it
    ended = triage.expire_silence(conn, s["id"], "值班员李四", now=T0 + timedelta(minutes=30))
    assert not ended["active"] and ended["expired_by"] == "值班员李四"
    assert triage.grouped_alerts(conn, "62", now=T0 + timedelta(minutes=31))[0]["silenced_until"] is None
    history = triage.list_silences(conn, "620102", now=T0 + timedelta(minutes=31))
    assert [h["id"] for h in history] == [s["id"]] and history[0]["reason"] == "基站检修，网格员无法签到"
    assert triage.list_silences(conn, "6207") == []


@pytest.mark.parametrize("kwargs, field", [
    ({"rule": "no_such_rule"}, "rule"), ({"minutes": 0}, "minutes"), ({"minutes": 60 * 24 * 31}, "minutes"),
    ({"reason": "  "}, "reason"), ({"actor": ""}, "actor"), ({"region": "6299"}, "region"),
])
def test_a_bad_silence_is_refused_naming_the_field_and_nothing_is_written(conn, tiny, kwargs, field):
    args = {"rule": "silent_grid", "region": "6201", "minutes": 60, "reason": "检修", "actor": "值班员", **kwargs}
    with pytest.raises(Exception) as err:
        triage.create_silence(conn, **args)
    assert getattr(err.value, "field", None) == field
    assert conn.execute("SELECT count(*) AS n FROM alert_silence").fetchone()["n"] == 0


def test_an_unacknowledged_red_alert_escalates_level_by_level_and_the_trail_says_so(conn, tiny):
    red = make_alert(conn, "red_case", LZ_GRID, "red", subject={"case_id": 11})
    acked = make_alert(conn, "red_case", LZ_GRID, "red", subject={"case_id": 12})
    orange = make_alert(conn, "spike", "620102", "orange", key="spike")
    silenced = make_alert(conn, "red_hazard", ZY_GRID, "red", subject={"hazard_id": 3})
    acknowledge(conn, acked, "值班员", now=T0 + timedelta(minutes=5))
    triage.create_silence(conn, rule="red_hazard", region="6207", minutes=600, reason="已派员处置", actor="值班员", now=T0)
    assert triage.escalate(conn, now=T0 + timedelta(minutes=29), after_minutes=30) == []
    steps = triage.escalate(conn, now=T0 + timedelta(minutes=30), after_minutes=30)
    assert [(s["id"], s["from_region"], s["escalated_to"], s["escalation_level"]) for s in steps] == [
        (red, "620102100", "620102", 1)]
    assert steps[0]["to_name"] == "城关区"
    # not again before another period has passed; then on to the prefecture, the province, and no further
    assert triage.escalate(conn, now=T0 + timedelta(minutes=45), after_minutes=30) == []
    assert [s["escalated_to"] for s in triage.escalate(conn, now=T0 + timedelta(minutes=60), after_minutes=30)] == ["6201"]
    assert [s["escalated_to"] for s in triage.escalate(conn, now=T0 + timedelta(minutes=90), after_minutes=30)] == ["62"]
    assert triage.escalate(conn, now=T0 + timedelta(minutes=200), after_minutes=30) == []
    row = conn.execute("SELECT escalation_level, escalated_to FROM alert WHERE id = %s", (red,)).fetchone()
    assert row == {"escalation_level": 3, "escalated_to": "62"}
    trail = triage.alert_trail(conn, red)
    assert [(e["action"], e["from_region"], e["to_region"], e["level"]) for e in trail] == [
        ("escalate", "620102100", "620102", 1), ("escalate", "620102", "6201", 2), ("escalate", "6201", "62", 3)]
    assert "30 分钟未确认" in trail[0]["note"] and trail[0]["actor"]
    for other in (acked, orange, silenced):
        assert conn.execute("SELECT escalation_level FROM alert WHERE id = %s", (other,)).fetchone()["escalation_level"] == 0
    # shown to that level: the prefecture's list names what was escalated to it
    groups = {g["rule"]: g for g in triage.grouped_alerts(conn, "6201", now=T0 + timedelta(minutes=91))}
    assert groups["red_case"]["escalated"] == 1


def test_the_wall_takes_over_only_for_fresh_red_items_of_its_scope_not_silenced_or_acknowledged(conn, tiny):
    now = datetime.now(timezone.utc)
    fresh = make_case(conn, lon=101.0, lat=38.5, grade="red", title="群体性聚集", reported_at=now - timedelta(minutes=2))
    make_case(conn, lon=101.0, lat=38.5, grade="red", title="旧的红色案件", reported_at=now - timedelta(minutes=30))
    make_case(conn, lon=101.0, lat=38.5, grade="yellow", title="普通纠纷", reported_at=now - timedelta(minutes=1))
    zy = make_case(conn, lon=103.0, lat=38.5, grade="red", title="张掖红色案件", reported_at=now - timedelta(minutes=1))
    hz = make_hazard(conn, kind="gas", grade="red", title="燃气泄漏", reported_at=now - timedelta(minutes=3))
    items = triage.wall_items(conn, "62", minutes=10, limit=5, now=now)
    assert [(i["kind"], i["id"]) for i in items] == [("case", zy), ("case", fresh), ("hazard", hz)]
    assert items[0]["county"] == "甘州区"
    assert [i["id"] for i in triage.wall_items(conn, "6201", minutes=10, limit=5, now=now)] == [fresh, hz]
    assert len(triage.wall_items(conn, "62", minutes=10, limit=2, now=now)) == 2
    # acknowledged or silenced red items leave the takeover
    run_rules(conn, now=now, rules=["red"])
    alert_id = conn.execute("SELECT id FROM alert WHERE dedup_key = %s", (f"red_case:{zy}",)).fetchone()["id"]
    acknowledge(conn, alert_id, "值班员", now=now)
    triage.create_silence(conn, rule="red_hazard", region="62", minutes=60, reason="已处置", actor="值班员", now=now)
    assert [(i["kind"], i["id"]) for i in triage.wall_items(conn, "62", minutes=10, limit=5, now=now)] == [("case", fresh)]


def test_gridwatch_alerts_run_escalates_and_says_so(db_url, conn, tiny):
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    red = make_alert(conn, "red_case", LZ_GRID, "red", subject={"case_id": 99}, raised_at=T0)
    proc = subprocess.run([sys.executable, "-m", "gridwatch.cli", "alerts", "run", "--rule", "spike", "--json",
                           "--now", (T0 + timedelta(minutes=45)).isoformat(), "--escalate-after", "40"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "DATABASE_URL": db_url})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [(e["id"], e["escalated_to"]) for e in out["escalated"]] == [(red, "620102")]
    assert triage.alert_trail(conn, red)[0]["to_name"] == "城关区"
