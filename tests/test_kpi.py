"""KPI formulas against hand-worked examples on the constructed tiny hierarchy (real PostGIS)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from gridwatch.kpi import (SCORE_FORMULA, UnknownRegion, children_ranking, department_ranking, period_kpis,
                           region_kpis, returned_trail)
from tests.factories import make_category, make_centre, make_department, make_hazard

CST = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 6, 30, 12, 0, tzinfo=CST)
JUNE = (date(2025, 6, 1), date(2025, 7, 1))
GRID_LZ = "620102100200001"   # 兰州 城关区 新墩镇 浅河村 grid 1: box(100, 38, 101, 39)
GRID_ZY = "620702200201002"   # 张掖 甘州区 乌江乡 长城村 grid 2: box(103, 35, 104, 36)

COLUMNS = ("category_code", "family", "title", "state", "grade", "geom", "grid_code", "village_code", "township_code",
           "county_code", "prefecture_code", "handling_level", "department_id", "deadline", "reported_at", "closed_at",
           "closed_level", "closed_on_time", "reworks", "extensions", "returns", "escalations", "resolved", "satisfaction")


def case_row(grid: str, *, state="closed", family="dispute", deadline=None, closed_at=None, reported_at=None,
             closed_level=None, reworks=0, extensions=0, returns=0, escalations=0, resolved=None, department_id=None,
             satisfaction=None, grade="yellow"):
    lon, lat = (100.5, 38.5) if grid == GRID_LZ else (103.5, 35.5)
    category = "neighbour" if family == "dispute" else "road"
    reported_at = reported_at or (deadline or closed_at) - timedelta(days=3)
    return (category, family, "手算案件", state, grade, f"SRID=4326;POINT({lon} {lat})", grid, grid[:12], grid[:9],
            grid[:6], grid[:4], closed_level or "village", department_id, deadline, reported_at, closed_at,
            closed_level, None, reworks, extensions, returns, escalations, resolved, satisfaction)


def copy_cases(conn, rows) -> None:
    """All rows in one COPY (fast, and one statement)."""
    make_category(conn, "neighbour")
    make_category(conn, "road", family="event", name_zh="道路损坏", name_en="Road damage", department_kind="urban")
    cols = ", ".join(COLUMNS)
    with conn.cursor().copy(f"COPY cases ({cols}) FROM STDIN") as cp:  # noqa: S608 - constant column list
        for r in rows:
            cp.write_row(r)


def june(day: int, hour: int = 10) -> datetime:
    return datetime(2025, 6, day, hour, tzinfo=CST)


def hand_worked_june(dept_id=None) -> list[tuple]:
    """972 cases fall due in June in 兰州 of which 911 are closed; see the arithmetic in the asserts."""
    rows = []
    levels = ["village"] * 600 + ["township"] * 200 + ["county"] * 90 + ["prefecture"] * 15 + ["province"] * 6
    for i in range(911):
        late = i < 61                                   # 61 closed after their deadline (late)
        early_july_deadline = 61 <= i < 161             # 100 closed early whose deadline is in July
        deadline = june(10) if not early_july_deadline else datetime(2025, 7, 5, tzinfo=CST)
        closed_at = june(12) if late else june(8)
        family = "dispute" if i < 500 else "event"      # 500 closed disputes …
        resolved = (i < 430) if family == "dispute" else None   # … 430 of them resolved (化解)
        rows.append(case_row(GRID_LZ, deadline=deadline, closed_at=closed_at, closed_level=levels[i], family=family,
                             resolved=resolved, reworks=1 if i % 20 == 0 else 0,      # 46 reworked (i = 0, 20, …, 900)
                             extensions=1 if i < 30 else 0, escalations=1 if levels[i] != "village" else 0,
                             department_id=dept_id))
    for _ in range(61):                                  # due in June, still open: open-overdue
        rows.append(case_row(GRID_LZ, state="in_progress", deadline=june(20), department_id=dept_id))
    # noise that must not count as due in June:
    rows += [case_row(GRID_LZ, state="in_progress", deadline=datetime(2025, 7, 3, tzinfo=CST)) for _ in range(40)]
    rows += [case_row(GRID_LZ, state="rejected", deadline=june(15)) for _ in range(5)]
    rows += [case_row(GRID_LZ, deadline=datetime(2025, 5, 20, tzinfo=CST), closed_at=datetime(2025, 5, 19, tzinfo=CST))
             for _ in range(20)]
    rows += [case_row(GRID_ZY, deadline=june(15), closed_at=june(14)) for _ in range(7)]   # the other prefecture
    return rows


def test_a_region_with_911_of_972_due_cases_closed_has_a_closure_rate_of_93_72_percent(conn, tiny):
    copy_cases(conn, hand_worked_june())
    k = period_kpis(conn, "6201", *JUNE, now=NOW)
    assert (k["due"], k["closed"]) == (972, 911)
    assert round(k["closure_rate"] * 100, 2) == 93.72
    # on time: 911 closed − 61 closed late = 850 → 850 / 972
    assert k["closed_on_time"] == 850
    assert k["on_time_rate"] == pytest.approx(850 / 972)
    assert k["open_overdue"] == 61


def test_the_funnel_resolution_rework_and_extension_rates_match_hand_counts(conn, tiny):
    copy_cases(conn, hand_worked_june())
    k = period_kpis(conn, "6201", *JUNE, now=NOW)
    assert k["closed_by_level"] == {"village": 600, "township": 200, "county": 90, "beyond": 21}
    assert [f["level"] for f in k["funnel"]] == ["village", "township", "county", "beyond"]
    assert k["funnel"][0]["share"] == pytest.approx(600 / 911)
    assert (k["disputes_closed"], k["disputes_resolved"]) == (500, 430)
    assert k["resolution_rate"] == pytest.approx(0.86)
    assert k["reworked"] == 46 and k["rework_rate"] == pytest.approx(46 / 911)
    assert k["extended"] == 30 and k["extension_rate"] == pytest.approx(30 / 972)
    assert k["escalations"] == 311


def test_figures_are_scoped_by_the_stamped_code_of_the_regions_level(conn, tiny):
    copy_cases(conn, hand_worked_june())
    assert period_kpis(conn, "62", *JUNE, now=NOW)["due"] == 972 + 7
    assert period_kpis(conn, "6207", *JUNE, now=NOW)["due"] == 7
    assert period_kpis(conn, "620102100", *JUNE, now=NOW)["due"] == 972
    assert period_kpis(conn, GRID_LZ, *JUNE, now=NOW)["closed"] == 911
    assert period_kpis(conn, "620102200", *JUNE, now=NOW)["due"] == 0


def test_a_past_period_is_judged_as_of_its_end_not_as_of_today(conn, tiny):
    # due 20 June, closed 3 July: open-overdue in June, and still so when looked at in August
    copy_cases(conn, [case_row(GRID_LZ, deadline=june(20), closed_at=datetime(2025, 7, 3, tzinfo=CST))])
    k = period_kpis(conn, "6201", *JUNE, now=datetime(2025, 8, 1, tzinfo=CST))
    assert (k["due"], k["closed"], k["open_overdue"]) == (1, 0, 1)
    assert k["closure_rate"] == 0.0


def test_a_region_with_nothing_due_has_no_rates_rather_than_zero(conn, tiny):
    k = period_kpis(conn, "6207", *JUNE, now=NOW)
    assert k["due"] == 0 and k["closure_rate"] is None and k["on_time_rate"] is None and k["resolution_rate"] is None


def test_region_kpis_snapshot_counts_open_overdue_new_today_hazards_and_centre_coverage(conn, tiny):
    now = NOW
    rows = [
        case_row(GRID_LZ, state="in_progress", deadline=now - timedelta(hours=1), reported_at=now - timedelta(days=2)),
        case_row(GRID_LZ, state="dispatched", deadline=now + timedelta(hours=5), reported_at=now - timedelta(hours=2)),
        case_row(GRID_LZ, state="reported", deadline=now + timedelta(hours=50), reported_at=now - timedelta(hours=13)),
        case_row(GRID_LZ, deadline=now - timedelta(days=1), closed_at=now - timedelta(days=2)),
        case_row(GRID_ZY, state="in_progress", deadline=now - timedelta(days=3), reported_at=now - timedelta(days=4)),
    ]
    copy_cases(conn, rows)
    make_hazard(conn, grade="red")                                   # default point is in 兰州
    make_hazard(conn, grade="red", state="closed")
    make_hazard(conn, grade="orange")
    make_centre(conn, "620102", "county", 101, 37, status="entity")
    make_centre(conn, "6207", "prefecture", 103, 37, status="planned")
    make_centre(conn, "6207", "prefecture", 103, 36, status="entity", scenario="what-if", name="假设中心")
    k = region_kpis(conn, "6201", now=now)
    assert (k["open"], k["overdue"]) == (3, 1)
    assert k["new_today"] == 1   # reported 10:00 today local; the one reported at 23:00 yesterday is not today
    assert (k["due"], k["closed"]) == (2, 1)
    assert k["hazards_open_by_grade"] == {"red": 1, "orange": 1, "yellow": 0}
    assert k["centre_coverage"] == {"with_entity_centre": 1, "children": 1, "share": 1.0}
    assert region_kpis(conn, "62", now=now)["centre_coverage"] == {"with_entity_centre": 0, "children": 2, "share": 0.0}
    assert len(k["sparkline"]) == 30 and k["sparkline"][-1]["day"] == "2025-06-30"
    assert sum(d["new"] for d in k["sparkline"]) == 4 and sum(d["closed"] for d in k["sparkline"]) == 1
    assert k["sparkline"][-1]["new"] == 1 and k["sparkline"][-3]["closed"] == 1
    assert k["as_of"] == now.isoformat()


def test_children_ranking_lists_every_child_even_without_cases_worst_first(conn, tiny):
    copy_cases(conn, [
        case_row(GRID_ZY, state="in_progress", deadline=NOW - timedelta(hours=1)),
        case_row(GRID_ZY, state="in_progress", deadline=NOW - timedelta(hours=2)),
        case_row(GRID_LZ, state="in_progress", deadline=NOW + timedelta(hours=2)),
    ])
    rows = children_ranking(conn, "62", now=NOW)
    assert [r["code"] for r in rows] == ["6207", "6201"]
    assert rows[0]["overdue"] == 2 and rows[1]["overdue"] == 0 and rows[1]["open"] == 1
    assert rows[0]["grids"] == 8 and rows[0]["cases_per_grid"] == pytest.approx(2 / 8)
    townships = children_ranking(conn, "620102", now=NOW)
    assert sorted(r["code"] for r in townships) == ["620102100", "620102200"]
    assert next(r for r in townships if r["code"] == "620102200")["open"] == 0


def test_department_ranking_scores_with_the_stated_formula_and_the_trail_names_who_returned_what(conn, tiny):
    good = make_department(conn, "620102", "justice", "城关区司法局")
    slow = make_department(conn, "620102", "water", "城关区水务局")
    make_department(conn, "620102", "power", "城关区供电所")   # nothing handled: no score
    rows = [case_row(GRID_LZ, deadline=june(10), closed_at=june(8), department_id=good, satisfaction=5) for _ in range(4)]
    rows += [case_row(GRID_LZ, deadline=june(10), closed_at=june(12), department_id=slow) for _ in range(2)]
    rows += [case_row(GRID_LZ, state="in_progress", deadline=june(10), department_id=slow) for _ in range(2)]
    copy_cases(conn, rows)
    case_id = conn.execute("SELECT min(id) AS id FROM cases WHERE department_id = %s", (slow,)).fetchone()["id"]
    conn.execute("""INSERT INTO case_event (case_id, at, actor, action, from_state, to_state, department_id, note)
                    VALUES (%s, %s, '水务局张三', 'return', 'dispatched', 'returned', %s, '不属于本部门职责')""",
                 (case_id, june(5), slow))
    ranking = department_ranking(conn, "6201", *JUNE, now=NOW)
    by = {r["id"]: r for r in ranking}
    # good: on time 4/4, closed 4/4, no returns, satisfaction 5 → 100 × (0.4 + 0.3 + 0.2 + 0.1) = 100
    assert by[good]["score"] == 100.0 and by[good]["rank"] == 1
    # slow: on time 0/4, closed 2/4, return_share 1/(4+1), no rating (0.5)
    expected = round(100 * (0.4 * 0 + 0.3 * 0.5 + 0.2 * (1 - 1 / 5) + 0.1 * 0.5), 2)
    assert by[slow]["score"] == expected and by[slow]["rank"] == 2
    assert ranking[-1]["score"] is None and ranking[-1]["rank"] is None
    assert "0.4 × on_time_rate" in SCORE_FORMULA
    trail = returned_trail(conn, "6201", *JUNE)
    assert len(trail) == 1
    assert (trail[0]["department"], trail[0]["actor"], trail[0]["note"]) == ("城关区水务局", "水务局张三", "不属于本部门职责")
    assert returned_trail(conn, "6207", *JUNE) == []


def test_an_unknown_region_or_a_backwards_period_is_refused_with_the_value_named(conn, tiny):
    with pytest.raises(UnknownRegion, match="'6299'"):
        region_kpis(conn, "6299")
    with pytest.raises(ValueError, match="end=.*not after start"):
        period_kpis(conn, "62", date(2025, 7, 1), date(2025, 6, 1))
    with pytest.raises(ValueError, match="no time zone"):
        region_kpis(conn, "62", now=datetime(2025, 6, 30, 12))
    assert region_kpis(conn, "62", now=datetime.now(timezone.utc))["open"] == 0


def test_a_return_made_through_the_real_lifecycle_shows_in_the_trail_and_the_department_ranking(conn, tiny):
    from gridwatch.cases import apply
    from tests.factories import make_case

    water = make_department(conn, "620102", "water", "城关区水务局")
    justice = make_department(conn, "620102", "justice", "城关区司法局")
    start = datetime.now(timezone.utc) - timedelta(days=1)
    case_id = make_case(conn, lon=100.5, lat=38.5, title="渠道漏水纠纷")
    with conn.transaction():
        apply(conn, case_id, "accept", "受理员")
        apply(conn, case_id, "dispatch", "受理员", department_id=water)
        apply(conn, case_id, "return", "水务局李四", note="属于司法调解范围")
        apply(conn, case_id, "dispatch", "受理员", department_id=justice)
    end = datetime.now(timezone.utc) + timedelta(days=1)
    trail = returned_trail(conn, "620102", start, end)
    assert [(r["case_id"], r["department"], r["actor"], r["note"]) for r in trail] == [
        (case_id, "城关区水务局", "水务局李四", "属于司法调解范围")]
    assert conn.execute("SELECT returns FROM cases WHERE id = %s", (case_id,)).fetchone()["returns"] == 1
    ranking = {r["id"]: r for r in department_ranking(conn, "6201", start, end)}
    assert ranking[water]["returns"] == 1 and ranking[justice]["returns"] == 0


def _mixed_cases_around_now(conn):
    """Cases in every situation the KPIs distinguish, relative to the real clock, in both prefectures."""
    from tests.test_alerts import plant

    now = datetime.now(timezone.utc)
    rows = []
    for i in range(120):
        lon, lat = (100.3 + (i % 7) * 0.5, 35.2 + (i % 5) * 0.7)      # all 16 tiny grids, both prefectures
        reported = now - timedelta(hours=3 + i * 7)                   # from a few hours to ~35 days ago
        deadline = None if i % 17 == 0 else reported + timedelta(hours=24 + (i % 9) * 12)
        if i % 3 == 0:
            state, closed = "in_progress", None
        elif i % 11 == 0:
            state, closed = "rejected", None
        else:
            state, closed = "closed", min(now - timedelta(minutes=5), reported + timedelta(hours=6 + (i % 13) * 9))
        rows.append({"lon": lon, "lat": lat, "reported_at": reported, "deadline": deadline, "closed_at": closed,
                     "state": state, "category": "neighbour" if i % 2 else "road"})
    ids = plant(conn, rows)
    conn.execute("UPDATE cases SET closed_level = (ARRAY['village','township','county','prefecture'])[1 + id % 4], "
                 "reworks = (id % 5 = 0)::int, extensions = (id % 7 = 0)::int, returns = (id % 4 = 0)::int, "
                 "escalations = (id % 6 = 0)::int, resolved = (id % 3 <> 0) WHERE state = 'closed'")
    return ids


def _both_paths_agree(conn):
    for code in ("62", "6201", "6207", "620102", "620702"):
        now = datetime.now(timezone.utc)
        fast = region_kpis(conn, code, now=now, rollup=True)
        slow = region_kpis(conn, code, now=now, rollup=False)
        assert fast == slow, code
        assert children_ranking(conn, code, now=now, rollup=True) == children_ranking(conn, code, now=now, rollup=False), code


def _rollup_is_exact(conn):
    """case_day equals a recomputation from scratch (what the migration's backfill does)."""
    snapshot = "SELECT * FROM case_day WHERE (reported, closed, due, due_closed, due_on_time, reworked, extended, returned, " \
               "escalated, disputes_closed, disputes_resolved, closed_village, closed_township, closed_county, " \
               "closed_beyond, open) <> (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) ORDER BY unit, day"
    kept = conn.execute(snapshot).fetchall()
    with conn.transaction(force_rollback=True):   # recompute, compare, and leave the kept rows as they were
        conn.execute("DELETE FROM case_day")
        conn.execute("DO $$ BEGIN EXECUTE format(case_day_sql(), 1, 'cases'); END $$")
        fresh = conn.execute(snapshot).fetchall()
    assert kept == fresh and kept
    assert conn.execute(snapshot).fetchall() == kept


def test_the_rollup_answers_exactly_what_the_cases_table_answers_through_inserts_updates_and_deletes(conn, tiny):
    ids = _mixed_cases_around_now(conn)
    assert conn.execute("SELECT count(*) AS n FROM case_day").fetchone()["n"] > 0
    _both_paths_agree(conn)
    now = datetime.now(timezone.utc)
    # close open cases (some late), reject one, merge a duplicate, move deadlines, delete some
    conn.execute("UPDATE cases SET state = 'closed', closed_at = %s, closed_level = 'township' "
                 "WHERE state = 'in_progress' AND id %% 2 = 0", (now - timedelta(minutes=1),))
    conn.execute("UPDATE cases SET state = 'rejected' WHERE id = %s", (ids[1],))
    conn.execute("UPDATE cases SET duplicate_of = %s WHERE id = %s", (ids[4], ids[5]))
    conn.execute("UPDATE cases SET deadline = deadline + interval '3 days' WHERE state = 'in_progress'")
    conn.execute("DELETE FROM cases WHERE id = ANY(%s)", (ids[-10:],))
    _both_paths_agree(conn)
    _rollup_is_exact(conn)
    # a case taken through the real lifecycle keeps the rollup exact too
    from gridwatch.cases import apply
    from tests.factories import make_case

    dep = make_department(conn, "620102", "justice", "城关区司法局")
    case_id = make_case(conn, lon=100.5, lat=38.5, reported_at=now - timedelta(days=2))
    with conn.transaction():
        for action, fields in (("accept", {}), ("dispatch", {"department_id": dep}), ("start", {}),
                               ("feedback", {"note": "已调解"}), ("verify", {})):
            apply(conn, case_id, action, "测试员", **fields)
    _both_paths_agree(conn)
    _rollup_is_exact(conn)
    conn.execute("TRUNCATE case_event, mediation, cases CASCADE")
    assert conn.execute("SELECT count(*) AS n FROM case_day").fetchone()["n"] == 0


def test_a_past_now_is_answered_from_the_cases_table_not_the_rollup(conn, tiny):
    from gridwatch.kpi import LIVE_SECONDS, _rollup_units, region_scope

    past = datetime.now(timezone.utc) - timedelta(seconds=LIVE_SECONDS + 60)
    assert _rollup_units(conn, region_scope(conn, "62"), past, None) is None
    assert _rollup_units(conn, region_scope(conn, "62"), datetime.now(timezone.utc), None) == []
    assert _rollup_units(conn, region_scope(conn, "6201"), datetime.now(timezone.utc), None) == ["6201", "620102"]
    assert _rollup_units(conn, region_scope(conn, "620102100"), datetime.now(timezone.utc), None) is None
