"""The alerts, KPI and statistics JSON API over real HTTP against a served database."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import httpx
import pytest

from etl.stats import load_stats
from gridwatch.alerts import run_rules
from gridwatch.kpi import period_kpis
from tests.test_alerts import NOW, everything, plant
from tests.test_stats import demo_rows


@pytest.fixture
def serve(serve_in_process):
    """The API needs no server process of its own here: the app is served from this process."""
    return serve_in_process


@pytest.fixture
def served(conn, tiny, serve, db_url):
    everything(conn)
    run_rules(conn, now=NOW)
    return serve(db_url)


def test_alerts_of_a_region_come_as_json_with_rule_explanation_numbers_and_times(served, conn):
    r = httpx.get(f"{served.url}/api/v1/alerts", params={"region": "6201"}, timeout=30)
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == len(body["alerts"]) > 0
    for a in body["alerts"]:
        assert a["region_code"].startswith("6201")
        assert a["rule"] in body["rules"]
        assert a["explanation_zh"] and a["explanation_en"] and isinstance(a["numbers"], dict)
        assert datetime.fromisoformat(a["raised_at"]) == NOW
        assert a["acknowledged_at"] is None and a["acknowledged_by"] is None
    everywhere = httpx.get(f"{served.url}/api/v1/alerts", params={"region": "62"}, timeout=30).json()
    assert everywhere["count"] == conn.execute("SELECT count(*) AS n FROM alert").fetchone()["n"] > body["count"]
    spikes = httpx.get(f"{served.url}/api/v1/alerts", params={"rule": "spike"}, timeout=30).json()
    assert spikes["count"] >= 1 and {a["rule"] for a in spikes["alerts"]} == {"spike"}


def test_an_operator_acknowledges_an_alert_over_http(served):
    alert = httpx.get(f"{served.url}/api/v1/alerts", params={"rule": "red"}, timeout=30).json()["alerts"][0]
    r = httpx.post(f"{served.url}/api/v1/alerts/{alert['id']}/ack", json={"by": "值班员王五"}, timeout=30)
    # the signed-in user acknowledges (issue 11): a name in the body is ignored
    assert r.status_code == 200 and r.json()["acknowledged_by"] == "test_operator"
    acked = httpx.get(f"{served.url}/api/v1/alerts", params={"acknowledged": "true"}, timeout=30).json()["alerts"]
    assert [a["id"] for a in acked] == [alert["id"]] and acked[0]["acknowledged_at"] is not None
    missing = httpx.post(f"{served.url}/api/v1/alerts/987654/ack", json={"by": "x"}, timeout=30)
    assert missing.status_code == 404 and "987654" in missing.json()["error"]["message"]
    anonymous = httpx.post(f"{served.url}/api/v1/alerts/{alert['id']}/ack", json={}, headers={"Authorization": "none"}, timeout=30)
    assert anonymous.status_code == 401          # no signed-in user, no acknowledgement (issue 11)


def test_bad_alert_filters_are_refused_naming_the_value(served):
    r = httpx.get(f"{served.url}/api/v1/alerts", params={"rule": "nonsense"}, timeout=30)
    assert r.status_code == 422 and r.json()["error"]["value"] == "nonsense"
    r = httpx.get(f"{served.url}/api/v1/alerts", params={"region": "6299"}, timeout=30)
    assert r.status_code == 404 and "6299" in r.json()["error"]["message"]
    r = httpx.get(f"{served.url}/api/v1/alerts", params={"region": "62x"}, timeout=30)
    assert r.status_code == 400


def test_kpi_and_stats_endpoints_answer_with_the_library_figures(conn, tiny, serve, db_url):
    plant(conn, [
        {"lon": 100.5, "lat": 38.5, "reported_at": NOW - timedelta(days=5), "deadline": NOW - timedelta(days=2),
         "closed_at": NOW - timedelta(days=3)},
        {"lon": 100.5, "lat": 38.4, "reported_at": NOW - timedelta(days=5), "deadline": NOW - timedelta(days=2),
         "closed_at": NOW - timedelta(days=1)},
        {"lon": 100.5, "lat": 38.3, "state": "in_progress", "reported_at": NOW - timedelta(days=5),
         "deadline": NOW - timedelta(days=2)},
    ])
    load_stats(conn, text=demo_rows("62"))
    server = serve(db_url)
    r = httpx.get(f"{server.url}/api/v1/kpi/6201", params={"start": "2025-06-01", "end": "2025-07-01"}, timeout=30)
    assert r.status_code == 200
    k = r.json()["kpi"]
    assert (k["due"], k["closed"], k["closed_on_time"], k["open_overdue"]) == (3, 2, 1, 1)
    assert k == {**period_kpis(conn, "6201", date(2025, 6, 1), date(2025, 7, 1)), "as_of": k["as_of"]}
    assert "score" in r.json()["score_formula"]
    live = httpx.get(f"{server.url}/api/v1/kpi/6201", timeout=30).json()
    assert live["kpi"]["open"] == 1 and {c["code"] for c in live["children"]} == {"620102"}
    half = httpx.get(f"{server.url}/api/v1/kpi/6201", params={"start": "2025-06-01"}, timeout=30)
    assert half.status_code == 422 and half.json()["error"]["field"] == "end"
    stats = httpx.get(f"{server.url}/api/v1/stats/62", timeout=30).json()
    assert [y["change_pct"] for y in stats["yoy"]] == [-30.0, -46.1, -50.0, -3.1]
    assert len(stats["series"]) == 4 * 24
