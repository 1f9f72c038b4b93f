"""Check-ins over real HTTP: daily report or all-clear, idempotent, refusals, silent grids, the roster."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from gridwatch import checkins
from tests.apiserver import ApiWorld
from tests.conftest import account_token, bearer


@pytest.fixture(scope="module")
def world(cluster):
    w = ApiWorld(cluster)
    yield w
    w.close()


def test_checkins_are_recorded_once_and_grids_without_any_for_n_days_are_silent(world):
    grids = world.codes["grid"]          # 16 grids
    with world.connect() as conn:
        today = checkins.today(conn)
    worker = {i: bearer(account_token(world.db_url, f"worker{i}", "grid_worker", grids[i])) for i in range(3)}  # check-ins are grid workers'
    with httpx.Client(base_url=world.url, timeout=30) as http:
        first = http.post("/api/v1/checkins", json={"grid_code": grids[0], "worker": "王网格", "kind": "all_clear"}, headers=worker[0])
        again = http.post("/api/v1/checkins", json={"grid_code": grids[0], "worker": "王网格", "kind": "all_clear"}, headers=worker[0])
        assert first.status_code == 201 and again.status_code == 200 and again.json()["id"] == first.json()["id"]
        # grid 1 reported two days ago, grid 2 five days ago; the other 13 never
        http.post("/api/v1/checkins", json={"grid_code": grids[1], "worker": "赵", "kind": "report",
                                            "day": (today - timedelta(days=2)).isoformat(), "note": "院墙倒塌"}, headers=worker[1])
        http.post("/api/v1/checkins", json={"grid_code": grids[2], "worker": "钱", "kind": "all_clear",
                                            "day": (today - timedelta(days=5)).isoformat()}, headers=worker[2])
        silent3 = http.get("/api/v1/checkins/silent", params={"days": 3}).json()
        codes3 = {g["grid_code"] for g in silent3["grids"]}
        assert silent3["count"] == 14 and grids[0] not in codes3 and grids[1] not in codes3 and grids[2] in codes3
        assert {g["days_silent"] for g in silent3["grids"] if g["grid_code"] == grids[2]} == {5}
        silent1 = http.get("/api/v1/checkins/silent", params={"days": 1}).json()
        assert silent1["count"] == 15       # only today's all-clear counts for one day
        under = http.get("/api/v1/checkins/silent", params={"days": 3, "under": "6201"}).json()
        # grids 0–2 are the first three of 6201's eight; 0 and 1 checked in within three days
        assert under["count"] == 6 and all(g["grid_code"].startswith("6201") for g in under["grids"])
        assert http.get("/api/v1/checkins/silent", params={"days": 3, "under": "6207"}).json()["count"] == 8
        listed = http.get("/api/v1/checkins", params={"grid": grids[1]}).json()
        assert [c["note"] for c in listed] == ["院墙倒塌"]
        roster = http.get("/api/v1/checkins/grids", params={"under": "620702"}).json()
        assert len(roster) == 8 and all(102 <= g["lon"] <= 104 for g in roster)
        assert {g["township_kind"] for g in roster} == {"镇", "乡"}
        before = world.count("checkin")
        for body, field in (({"grid_code": "620702100200", "worker": "x", "kind": "report"}, "grid_code"),
                            ({"grid_code": "620702100200001", "worker": "x", "kind": "report",
                              "day": (today + timedelta(days=1)).isoformat()}, "day"),
                            ({"grid_code": "620702100200001", "worker": "x", "kind": "bored"}, "kind"),
                            ({"grid_code": "999999999999999", "worker": "x", "kind": "report"}, "grid_code")):
            r = http.post("/api/v1/checkins", json=body, headers=worker[0])
            assert r.status_code == 422 and r.json()["error"]["field"] == field, r.text
        assert world.count("checkin") == before
