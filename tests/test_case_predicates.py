"""The shared predicates of migration 0024 (open, overdue, due in a period): one definition, same answers, same indexes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import layers
from gridwatch.cases import STATES
from layers.render import tile_query
from tests.factories import make_case, make_hazard

HAZARD_STATES = ("open", "rectifying", "closed", "reopened")


def _plan(conn, query, params=None) -> str:
    """The plan of ``query`` as JSON text, with sequential scans discouraged so an index choice is visible."""
    conn.execute("SET enable_seqscan = off")
    try:
        row = conn.execute(b"EXPLAIN (FORMAT JSON) " + (query.as_bytes(conn) if hasattr(query, "as_bytes") else query.encode()),
                           params).fetchone()
    finally:
        conn.execute("RESET enable_seqscan")
    return json.dumps(row["QUERY PLAN"])


def test_the_predicates_answer_like_the_state_lists_they_replace(conn):
    now = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
    for state in STATES:
        r = conn.execute(
            """SELECT case_is_open(%(s)s) AS open, case_is_overdue(%(s)s, %(past)s, %(now)s) AS late,
                      case_is_overdue(%(s)s, %(future)s, %(now)s) AS early, case_is_overdue(%(s)s, NULL, %(now)s) AS nodeadline""",
            {"s": state, "now": now, "past": now - timedelta(hours=1), "future": now + timedelta(hours=1)}).fetchone()
        is_open = state not in ("closed", "rejected")
        assert r["open"] is is_open, state
        assert r["late"] is is_open and r["early"] is False, state
        assert not r["nodeadline"], state
    for state in HAZARD_STATES:
        r = conn.execute("SELECT hazard_is_open(%s) AS open, hazard_is_overdue(%s, %s, %s) AS late",
                         (state, state, now - timedelta(days=1), now)).fetchone()
        assert r["open"] is (state != "closed") and r["late"] is (state != "closed"), state
    due = conn.execute(
        "SELECT case_is_due_in(%(closed)s, %(deadline)s, %(start)s, %(end)s) AS due, case_due_at(%(closed)s, %(deadline)s) AS at",
        {"closed": now - timedelta(days=3), "deadline": now + timedelta(days=1), "start": now - timedelta(days=7), "end": now}).fetchone()
    assert due["due"] is True and due["at"] == now - timedelta(days=3)      # due when it closed, before its deadline


def test_a_query_through_case_is_open_still_reads_the_partial_open_case_indexes(conn, tiny):
    for i in range(30):
        make_case(conn, lon=101.0 + i * 0.001, lat=38.0, state="closed" if i % 3 else "dispatched")
    make_hazard(conn)
    conn.execute("ANALYZE cases")
    conn.execute("ANALYZE hazard")
    county = conn.execute("SELECT county_code FROM cases LIMIT 1").fetchone()["county_code"]
    plan = _plan(conn, "SELECT count(*) FROM cases c WHERE c.county_code = %s AND case_is_open(c.state)", (county,))
    # inlined into the partial indexes' own predicate: a partial open-case index serves, no state filter is left
    assert '"Index Name": "cases_open_' in plan and "state" not in plan, plan
    plan = _plan(conn, "SELECT count(*) FROM cases c WHERE case_is_overdue(c.state, c.deadline, now())")
    assert '"Index Name": "cases_open_' in plan and "case_is_overdue" not in plan, plan
    plan = _plan(conn, "SELECT count(*) FROM hazard h WHERE h.county_code = %s AND hazard_is_open(h.state)", (county,))
    assert '"Index Name": "hazard_open_' in plan and "state" not in plan, plan
    # a tile at zoom 8 counts open cases per township through a partial open-case index
    plan = _plan(conn, tile_query(layers.get("case_counts")), {"z": 8, "x": 200, "y": 97, "layer": "case_counts"})
    assert '"Index Name": "cases_open_' in plan and "case_is_open" not in plan, plan


def test_due_in_a_period_reads_the_department_due_index_like_the_spelled_out_least(conn, tiny):
    dept = conn.execute("INSERT INTO department (name, kind, region_code) VALUES ('城关区司法局', 'justice', '620102') "
                        "RETURNING id").fetchone()["id"]
    now = datetime.now(timezone.utc)
    for i in range(20):
        make_case(conn, lon=101.0 + i * 0.001, lat=38.0, state="dispatched", department_id=dept,
                  deadline=now - timedelta(days=i))
    conn.execute("ANALYZE cases")
    params = {"d": dept, "start": now - timedelta(days=7), "cut": now}
    plan = _plan(conn, "SELECT count(*) FROM cases c WHERE c.department_id = %(d)s "
                       "AND case_is_due_in(c.closed_at, c.deadline, %(start)s, %(cut)s)", params)
    assert '"Index Name": "cases_department_due"' in plan and "case_is_due_in" not in plan, plan
    due = conn.execute("SELECT count(*) AS n FROM cases c WHERE case_is_due_in(c.closed_at, c.deadline, %(start)s, %(cut)s)",
                       params).fetchone()["n"]
    assert due == 7                      # deadlines 1…7 days ago; the one at the cut itself is not yet due
