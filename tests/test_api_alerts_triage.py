"""Alert triage over real HTTP: grouped alerts, silences (create, list, expire, refused when bad)
and an alert's escalation trail, against a served database."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from gridwatch import triage
from gridwatch.alerts import run_rules
from tests.test_alerts import NOW, everything


@pytest.fixture
def serve(serve_in_process):
    return serve_in_process


@pytest.fixture
def served(conn, tiny, serve, db_url):
    everything(conn)
    run_rules(conn, now=NOW)
    return serve(db_url)


def test_grouped_alerts_come_as_rule_and_region_with_count_worst_severity_oldest_and_silence(served, conn):
    r = httpx.get(f"{served.url}/api/v1/alerts", params={"region": "62", "grouped": "true"}, timeout=30)
    assert r.status_code == 200
    body = r.json()
    groups = body["groups"]
    assert body["region"] == "62" and body["count"] == len(groups) > 0
    for g in groups:
        assert {"rule", "region_code", "region_name", "count", "worst_severity", "oldest_raised_at", "silenced_until"} <= set(g)
        assert len(g["region_code"]) == 4 and g["count"] > 0
    ranks = [("red", "orange", "yellow").index(g["worst_severity"]) for g in groups]
    assert ranks == sorted(ranks)
    live = conn.execute("SELECT count(*) AS n FROM alert_triage() WHERE inhibited_by IS NULL").fetchone()["n"]
    assert sum(g["count"] for g in groups) == live
    spikes = httpx.get(f"{served.url}/api/v1/alerts", params={"region": "6201", "grouped": "true", "rule": "spike"},
                       timeout=30).json()["groups"]
    assert spikes and {g["rule"] for g in spikes} == {"spike"} and all(g["region_code"].startswith("6201") for g in spikes)


def test_an_operator_silences_a_group_over_http_and_ends_it_and_the_history_stays(served, conn):
    g = httpx.get(f"{served.url}/api/v1/alerts", params={"grouped": "true"}, timeout=30).json()["groups"][0]
    r = httpx.post(f"{served.url}/api/v1/alerts/silences", json={
        "rule": g["rule"], "region": g["region_code"], "minutes": 90, "reason": "已派人现场处置", "actor": "值班员张三"}, timeout=30)
    assert r.status_code == 201, r.text
    silence = r.json()
    assert silence["active"] and silence["created_by"]          # the actor (phase 2: the signed-in user)
    again = httpx.get(f"{served.url}/api/v1/alerts", params={"grouped": "true"}, timeout=30).json()["groups"]
    same = next(x for x in again if (x["rule"], x["region_code"]) == (g["rule"], g["region_code"]))
    assert same["silenced_until"] == silence["ends_at"]
    listed = httpx.get(f"{served.url}/api/v1/alerts/silences", params={"region": g["region_code"], "active": "true"}, timeout=30).json()
    assert [s["id"] for s in listed["silences"]] == [silence["id"]]
    r = httpx.post(f"{served.url}/api/v1/alerts/silences/{silence['id']}/expire", json={"actor": "值班员李四"}, timeout=30)
    assert r.status_code == 200 and r.json()["expired_by"] and not r.json()["active"]
    history = httpx.get(f"{served.url}/api/v1/alerts/silences", timeout=30).json()["silences"]
    assert [(s["id"], s["reason"], s["expired_by"]) for s in history] == [(silence["id"], "已派人现场处置", r.json()["expired_by"])]


@pytest.mark.parametrize("body, field, status", [
    ({"rule": "nope"}, "rule", 422), ({"minutes": -5}, "minutes", 422), ({"reason": ""}, "reason", 422),
    ({"region": "6299"}, "code", 404),
])
def test_a_bad_silence_is_refused_with_the_usual_error_body_and_nothing_is_written(served, conn, body, field, status):
    payload = {"rule": "spike", "region": "6201", "minutes": 60, "reason": "检修", "actor": "值班员", **body}
    r = httpx.post(f"{served.url}/api/v1/alerts/silences", json=payload, timeout=30)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["field"] in (field, "region") and err["message"] and err.get("fix")
    assert conn.execute("SELECT count(*) AS n FROM alert_silence").fetchone()["n"] == 0
    missing = httpx.post(f"{served.url}/api/v1/alerts/silences/999999/expire", json={"actor": "值班员"}, timeout=30)
    assert missing.status_code == 404


def test_an_escalated_alerts_trail_is_served(served, conn):
    red = conn.execute("SELECT id, raised_at FROM alert WHERE severity = 'red' AND resolved_at IS NULL "
                       "AND id IN (SELECT alert_id FROM alert_triage() WHERE inhibited_by IS NULL) ORDER BY id LIMIT 1").fetchone()
    steps = triage.escalate(conn, now=red["raised_at"] + timedelta(minutes=31), after_minutes=30)
    assert red["id"] in [s["id"] for s in steps]
    trail = httpx.get(f"{served.url}/api/v1/alerts/{red['id']}/trail", timeout=30).json()["events"]
    assert trail[0]["action"] == "escalate" and trail[0]["level"] == 1 and trail[0]["to_region"]
    alert = next(a for a in httpx.get(f"{served.url}/api/v1/alerts", params={"limit": 5000}, timeout=30).json()["alerts"]
                 if a["id"] == red["id"])
    assert alert["escalation_level"] == 1 and alert["escalated_to"] == trail[0]["to_region"]
    assert httpx.get(f"{served.url}/api/v1/alerts/999999/trail", timeout=30).status_code == 404
