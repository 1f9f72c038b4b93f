"""The demo history looks like a working province: few open cases past their deadline, parked
(挂账) cases only recent ones, late handlers mostly chased inside their limit."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from etl.demo import PARK_DAYS, load_demo


def test_the_demo_keeps_overdue_cases_to_a_working_provinces_share_and_parks_only_recent_cases(db_url, tiny):
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        load_demo(conn, n_cases=6000, checkin_days=5)
        n = conn.execute("""SELECT count(*) FILTER (WHERE state NOT IN ('closed', 'rejected')) AS open,
                                   count(*) FILTER (WHERE state NOT IN ('closed', 'rejected') AND deadline < now()) AS overdue,
                                   count(*) FILTER (WHERE state = 'parked') AS parked,
                                   count(*) FILTER (WHERE state = 'parked' AND reported_at < now() - make_interval(days => %s)) AS old_parked,
                                   count(*) FILTER (WHERE closed_on_time) AS on_time, count(closed_at) AS closed
                            FROM cases""", (PARK_DAYS + 1,)).fetchone()
    assert n["open"] > 0 and n["parked"] > 0, n
    assert n["overdue"] <= 0.25 * n["open"], n          # it was 46% (1,215 of 2,627) before
    assert n["old_parked"] == 0, n
    assert n["on_time"] >= 0.75 * n["closed"], n
