"""The demo history: consistent trails through the real transition table, KPI columns that agree with
the trails, rhythm and mix, check-ins and silent grids, hazards graded by rule, the three stories, idempotency."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from etl.demo import load_demo
from gridwatch.cases import PREVIOUS, STAY, TRANSITIONS
from tests.conftest import clone_database, drop_database


def replay_errors(conn, limit: int = 20) -> list[str]:
    """Walk every case's trail through TRANSITIONS; return the problems found."""
    events = conn.execute("SELECT case_id, action, from_state, to_state, at FROM case_event ORDER BY case_id, at, id").fetchall()
    final = {r["id"]: r["state"] for r in conn.execute("SELECT id, state FROM cases").fetchall()}
    problems, state, seen = [], {}, set()
    parked_from = {}
    for e in events:
        cid = e["case_id"]
        if cid not in seen:
            seen.add(cid)
            if e["action"] != "report" or e["from_state"] is not None or e["to_state"] != "reported":
                problems.append(f"case {cid} starts with {e['action']}")
            state[cid] = "reported"
            continue
        t = TRANSITIONS.get(e["action"])
        cur = state[cid]
        if t is None or cur not in t.sources or e["from_state"] != cur:
            problems.append(f"case {cid}: {e['action']} from {cur} (event says {e['from_state']})")
        expected = cur if t and t.target == STAY else (parked_from.get(cid) if t and t.target == PREVIOUS else (t.target if t else None))
        if e["to_state"] != expected:
            problems.append(f"case {cid}: {e['action']} led to {e['to_state']}, the table says {expected}")
        if e["action"] == "park":
            parked_from[cid] = cur
        state[cid] = e["to_state"]
    for cid, s in final.items():
        if state.get(cid) != s:
            problems.append(f"case {cid} is {s} but its trail ends in {state.get(cid)}")
    return problems[:limit]


KPI_CHECK = """
SELECT c.id FROM cases c
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE action = 'escalate') AS esc, count(*) FILTER (WHERE action = 'return') AS ret,
           count(*) FILTER (WHERE action = 'rework') AS rew, count(*) FILTER (WHERE action = 'approve_extension') AS ext,
           max(at) FILTER (WHERE action = 'verify') AS verified, min(at) FILTER (WHERE action = 'dispatch') AS first_dispatch,
           (array_agg(department_id ORDER BY at DESC, id DESC) FILTER (WHERE action = 'dispatch'))[1] AS last_dept
    FROM case_event e WHERE e.case_id = c.id) e ON true
JOIN category k ON k.code = c.category_code
WHERE c.escalations <> e.esc OR c.returns <> e.ret OR c.reworks <> e.rew OR c.extensions <> e.ext
   OR c.closed_at IS DISTINCT FROM e.verified
   OR (c.state = 'closed' AND c.closed_on_time IS DISTINCT FROM (c.closed_at <= c.deadline))
   OR (e.first_dispatch IS NOT NULL AND abs(extract(epoch FROM c.deadline - e.first_dispatch)
        - 3600 * (k.time_limit_hours + 48 * c.extensions)) > 1)
   OR (e.last_dept IS NOT NULL AND c.department_id IS DISTINCT FROM e.last_dept AND c.state <> 'accepted')
LIMIT 10
"""


@pytest.fixture(scope="module")
def tiny_demo_template(cluster, tiny_template):
    """(database, stats): the tiny hierarchy with a 4,000-case demo, loaded once for this module."""
    name = clone_database(cluster, tiny_template[0])
    with psycopg.connect(cluster.url(name), row_factory=dict_row) as conn:
        stats = load_demo(conn, n_cases=4000, checkin_days=10)
    yield name, stats
    drop_database(cluster, name)


DATABASE_TEMPLATES = {"tiny_demo": "tiny_demo_template"}   # db_url of a test using tiny_demo is a copy of it


@pytest.fixture
def tiny_demo(db_url, tiny_demo_template):
    """The stats of the demo loaded into this test's copy of the template."""
    return tiny_demo_template[1]


def test_the_demo_trails_walk_the_real_transition_table_and_the_kpi_columns_agree_with_them(tiny_demo, conn):
    assert tiny_demo["counts"]["cases"] == 4000
    assert replay_errors(conn) == []
    assert conn.execute(KPI_CHECK).fetchall() == []
    n = conn.execute("""SELECT count(*) FILTER (WHERE state NOT IN ('closed', 'rejected')) AS open,
                               count(*) FILTER (WHERE state NOT IN ('closed', 'rejected') AND deadline < now()) AS overdue,
                               count(*) FILTER (WHERE escalations > 0) AS escalated,
                               count(*) FILTER (WHERE state = 'closed' AND NOT closed_on_time) AS late,
                               count(*) FILTER (WHERE state = 'parked') AS parked,
                               count(*) FILTER (WHERE state = 'rejected') AS rejected
                        FROM cases""").fetchone()
    assert all(v > 0 for v in n.values()), n
    assert n["overdue"] < n["open"]


def test_the_demo_has_a_weekly_and_daily_rhythm_a_category_mix_and_more_cases_in_towns(tiny_demo, conn):
    rows = conn.execute("""SELECT extract(isodow FROM reported_at AT TIME ZONE 'Asia/Shanghai')::int AS dow,
                                  extract(hour FROM reported_at AT TIME ZONE 'Asia/Shanghai')::int AS hour,
                                  category_code, t.kind FROM cases c JOIN region t ON t.code = c.township_code""").fetchall()
    dow = Counter(r["dow"] for r in rows)
    assert min(dow[d] for d in range(1, 6)) > max(dow[6], dow[7])
    office = sum(1 for r in rows if 8 <= r["hour"] < 18)
    assert office > 0.65 * len(rows)
    cats = Counter(r["category_code"] for r in rows)
    assert len(cats) >= 15 and cats["neighbour"] > cats["emergency"]
    kind = Counter(r["kind"] for r in rows)
    assert kind["镇"] > 1.2 * kind["乡"]          # weights 1.2 vs 0.8 over equal numbers of grids


def test_the_demo_writes_checkins_and_hazards_graded_by_the_rules(tiny_demo, conn):
    days = conn.execute("SELECT count(DISTINCT day) AS d, count(*) AS n FROM checkin").fetchone()
    assert days["d"] >= 9 and days["n"] > 16 * 9 * 0.8
    red_by_rule = conn.execute("SELECT count(*) AS n FROM hazard WHERE grade_reasons @> '[{\"rule\": \"power_line_near_building\"}]'").fetchone()["n"]
    assert red_by_rule > 0
    assert conn.execute("SELECT count(*) AS n FROM hazard h WHERE NOT EXISTS (SELECT 1 FROM hazard_event e WHERE e.hazard_id = h.id)").fetchone()["n"] == 0


def test_the_three_seed_stories_are_real_records_through_the_lifecycle(tiny_demo, conn):
    stories = {s["who"]: s for s in tiny_demo["stories"]}
    assert set(stories) == {"陈殿清", "常建新", "石全爱"}
    for who, s in stories.items():
        case = conn.execute("SELECT * FROM cases WHERE id = %s", (s["case_id"],)).fetchone()
        assert case["reporter_name"] == who and case["state"] == "closed" and case["resolved"] is True
        agreement = conn.execute("SELECT agreement FROM mediation WHERE case_id = %s AND outcome = 'agreed'", (s["case_id"],)).fetchone()
        assert agreement is not None
    chen = conn.execute("SELECT agreement FROM mediation WHERE case_id = %s", (stories["陈殿清"]["case_id"],)).fetchone()
    assert "维修养护经费" in chen["agreement"] and "5万元" in chen["agreement"]
    shi = stories["石全爱"]
    trail = [e["action"] for e in conn.execute("SELECT action FROM case_event WHERE case_id = %s ORDER BY at, id", (shi["case_id"],))]
    assert trail[:3] == ["report", "accept", "hand_down"]
    case = conn.execute("SELECT channel, handling_level, closed_level FROM cases WHERE id = %s", (shi["case_id"],)).fetchone()
    assert case == {"channel": "petition", "handling_level": "township", "closed_level": "township"}
    line = conn.execute("SELECT state, grade, base_grade, case_id FROM hazard WHERE id = %s", (shi["hazards"]["line"],)).fetchone()
    assert shi["hazards"]["line_grade"] == "red" and line["base_grade"] == "orange"
    assert line["state"] == "closed" and line["case_id"] == shi["case_id"]


def test_loading_the_demo_twice_changes_nothing(tiny_demo, db_url, conn):
    before = conn.execute("SELECT (SELECT count(*) FROM cases) AS c, (SELECT count(*) FROM case_event) AS e").fetchone()
    with psycopg.connect(db_url, row_factory=dict_row) as c2:
        again = load_demo(c2, n_cases=4000)
    assert again["unchanged"] is True
    assert conn.execute("SELECT (SELECT count(*) FROM cases) AS c, (SELECT count(*) FROM case_event) AS e").fetchone() == before


def test_a_demo_without_a_hierarchy_is_refused_and_writes_nothing(db_url, conn):
    with psycopg.connect(db_url, row_factory=dict_row) as c2, pytest.raises(RuntimeError, match="gridwatch etl gansu"):
        load_demo(c2, n_cases=100)
    assert conn.execute("SELECT count(*) AS n FROM department").fetchone()["n"] == 0


def test_demo_times_are_in_the_past_and_trails_in_time_order(tiny_demo, conn):
    row = conn.execute("""SELECT max(at) AS last, min(at) AS first FROM case_event""").fetchone()
    now = conn.execute("SELECT now() AS t").fetchone()["t"]
    assert row["last"] <= now and now - row["first"] <= timedelta(days=400)


@pytest.mark.gansu
def test_the_full_demo_on_gansu_places_the_stories_by_name_and_is_consistent(gansu_copy_url):
    with psycopg.connect(gansu_copy_url, row_factory=dict_row) as conn:
        stats = load_demo(conn, checkin_days=14)
    print(f"\nfull demo on Gansu: {stats['seconds']} s, timings {stats['timings']}, counts {stats['counts']}")
    places = {s["who"]: s["place"] for s in stats["stories"]}
    assert places["陈殿清"]["county"] == "甘州区" and "新墩" in places["陈殿清"]["township"]
    assert places["常建新"]["county"] == "山丹县" and "清泉" in places["常建新"]["township"] and "长城" in places["常建新"]["village"]
    assert places["石全爱"]["county"] == "陇西县" and "菜子" in places["石全爱"]["township"] and "浅河" in places["石全爱"]["village"]
    assert stats["counts"]["cases"] == 80_000 and stats["counts"]["overdue"] > 0 and stats["counts"]["escalated"] > 0
    with psycopg.connect(gansu_copy_url, row_factory=dict_row, autocommit=True) as conn:
        assert conn.execute(KPI_CHECK).fetchall() == []
        by_kind = {r["kind"]: r["per_grid"] for r in conn.execute(
            """SELECT t.kind, count(c.id)::float / count(DISTINCT g.code) AS per_grid
               FROM region g JOIN region v ON v.code = g.parent_code JOIN region t ON t.code = v.parent_code
               LEFT JOIN cases c ON c.grid_code = g.code WHERE g.level = 'grid' AND t.kind IN ('街道', '镇', '乡')
               GROUP BY t.kind""").fetchall()}
        assert by_kind["街道"] > by_kind["镇"] > by_kind["乡"]
        silent = conn.execute("SELECT count(*) AS n FROM region g WHERE g.level = 'grid' AND NOT EXISTS "
                              "(SELECT 1 FROM checkin c WHERE c.grid_code = g.code AND c.day > (now() AT TIME ZONE 'Asia/Shanghai')::date - 3)").fetchone()["n"]
        assert silent > 0
        jiayuguan = conn.execute("SELECT count(*) AS n, count(county_code) AS with_county FROM cases WHERE prefecture_code = '6202'").fetchone()
        assert jiayuguan["n"] > 0 and jiayuguan["with_county"] == 0


@pytest.mark.gansu
@pytest.mark.browser
def test_the_three_stories_are_found_by_place_and_shi_quanais_shed_is_on_his_village_map(gansu_demo_copy_url, serve, browser_page):
    """Each story is found by its village (through the API and in the village page's case register,
    closed cases included), opens with its timeline, is found by searching the province's register
    by name, and the still-standing cattle shed of 石全爱 (an open hazard) is on his village's map."""
    import httpx

    from tests.conftest import wait_until

    gansu_copy_url = gansu_demo_copy_url
    with psycopg.connect(gansu_copy_url, row_factory=dict_row) as conn:
        stats = load_demo(conn)       # loaded in the template already: the ledger's stats, the stories included
        assert stats["unchanged"] and len(stats["stories"]) == 3
        villages = {s["who"]: conn.execute("SELECT v.code, v.name, c.name AS county FROM cases k JOIN region v ON v.code = k.village_code "
                                           "JOIN region c ON c.code = k.county_code WHERE k.id = %s", (s["case_id"],)).fetchone()
                    for s in stats["stories"]}
    stories = {s["who"]: s for s in stats["stories"]}
    server = serve(gansu_copy_url)
    page = browser_page

    def on_map(kind):
        return page.evaluate(
            """(kind) => { const gd = document.querySelector('#region-map .js-plotly-plot');
                 return gd && gd.data ? gd.data.flatMap(t => (t.customdata || []).filter(c => c && c[0] === kind).map(c => c[1])) : []; }""",
            kind)

    with httpx.Client(base_url=server.url, timeout=30) as http:
        for who, village in villages.items():
            found = http.get("/api/v1/cases", params={"region": village["code"], "state": "closed"}).json()
            assert stories[who]["case_id"] in [c["id"] for c in found] and who in {c["title"][:3] for c in found}
            page.goto(server.url + f"/region/{village['code']}")
            wait_until(lambda: page.inner_text("#region-crumb-current") == village["name"], timeout=30,
                       message=f"the page of {village['name']}")
            assert village["county"] in page.inner_text("#region-breadcrumb")
            # The village's case register lists the (closed) story; a click opens its timeline.
            title = page.locator("#region-cases-table button", has_text=who)
            wait_until(lambda: title.count() == 1, timeout=30, message=f"{who}'s case in the register of {village['name']}")
            title.click()
            wait_until(lambda: who in page.inner_text("#region-detail-title"), timeout=30, message=f"{who}'s case details")
            assert page.locator("#region-detail-timeline li").count() >= 4
    shed = stories["石全爱"]["hazards"]["shed"]
    wait_until(lambda: shed in on_map("hazard"), timeout=30, message="石全爱's cattle shed on the map of 浅河村")
    page.screenshot_to("story-shi-quanai")
    # Searching the province's register by the party's name finds the story too.
    page.goto(server.url + "/region/62")
    page.fill("#region-case-search", "石全爱")
    page.press("#region-case-search", "Enter")
    wait_until(lambda: page.locator("#region-cases-table button", has_text="石全爱").count() == 1, timeout=30,
               message="石全爱's case found by searching the province's register")
