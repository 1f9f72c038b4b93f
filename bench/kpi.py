"""Drill-down KPI latency: ``kpi.region_kpis`` / ``kpi.children_ranking`` at each level vs a naive
spatial join at read time, on a large synthetic case table, same run.

``run(database_url)`` fills the cases table with ``CASES`` (1,000,000) synthetic cases generated in
SQL (``generate_series``, in statements of 20,000 like intake batches, oldest first; a year of
history, skewed over the grids, stamped with the grid's lineage codes like intake does; the
``case_day`` rollup triggers run as they do in production), then for a sample of regions per
level times:

- **region_kpis** (what the drill-down panel calls: stamped-code scope, the ``due_at`` index, a few
  aggregate queries), p95 over the sample × repeats;
- **children_ranking** (the drill-down ranking);
- **core figures**: exactly the baseline's five figures, scoped by the stamped code column (like for like);
- the **baseline**: the same period figures (due, closed, on time, open, overdue) computed the naive
  way — the region's polygon joined to the case points with ``ST_Intersects`` at read time — p95
  over fewer repeats (it is slow). ratio = ours ÷ naive.

Use a throwaway database: ``gridwatch bench --only kpi`` gives this module its own copy.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime, timedelta, timezone
from datetime import time as dtime
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

__all__ = ["run", "seed_cases"]

CASES = 1_000_000
BATCH = 20_000   # the intake API's largest batch
REPEAT = 5
BASELINE_REPEAT = 2
SAMPLE = {"province": 1, "prefecture": 4, "county": 8, "township": 12, "village": 12, "grid": 12}


def _row(name, seconds, baseline, baseline_seconds, n, note):
    return {"name": name, "seconds": seconds, "baseline": baseline, "baseline_seconds": baseline_seconds,
            "ratio": seconds / baseline_seconds if baseline_seconds else float("nan"), "n": n, "note": note}


def _p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(0.95 * (len(xs) - 1))))]


def seed_cases(conn: psycopg.Connection, cases: int = CASES) -> float:
    """Insert ``cases`` synthetic cases in INSERT … SELECT statements of ``BATCH``; returns the seconds it took."""
    conn.execute("""INSERT INTO category (code, family, name_zh, name_en, department_kind, time_limit_hours)
                    VALUES ('bench', 'dispute', '基准纠纷', 'Benchmark dispute', 'justice', 72),
                           ('bench_event', 'event', '基准事件', 'Benchmark event', 'urban', 72)
                    ON CONFLICT DO NOTHING""")
    t0 = time.perf_counter()
    conn.execute("SELECT setseed(0.42)")
    for lo in range(1, cases + 1, BATCH):   # in intake-sized statements, oldest first (the heap in time order)
        _seed_batch(conn, lo, min(cases, lo + BATCH - 1), cases)
    conn.execute("ANALYZE cases")
    conn.execute("ANALYZE case_day")
    conn.commit()
    return time.perf_counter() - t0


def _seed_batch(conn: psycopg.Connection, lo: int, hi: int, cases: int) -> None:
    conn.execute("""
        WITH lineage AS (
            SELECT g.code, g.label_point, v.code AS village, t.code AS township,
                   CASE WHEN k.level = 'county' THEN k.code END AS county, left(g.code, 4) AS prefecture,
                   row_number() OVER (ORDER BY g.code) AS i
            FROM region g JOIN region v ON v.code = g.parent_code JOIN region t ON t.code = v.parent_code
            JOIN region k ON k.code = t.parent_code
            WHERE g.level = 'grid'
        ), n AS (SELECT count(*) AS n FROM lineage),
        s AS (
            SELECT k, 1 + floor(power(random(), 2) * n.n)::int AS gi, random() AS r1, random() AS r2, random() AS r3
            FROM generate_series(%(lo)s::int, %(hi)s::int) k, n
        ), c AS (
            SELECT s.*, l.*, now() - interval '365 days' * (1 - k::float8 / %(cases)s) - s.r1 * interval '6 hours' AS rep
            FROM s JOIN lineage l ON l.i = s.gi
        )
        INSERT INTO cases (category_code, family, title, state, grade, geom, grid_code, village_code, township_code,
                           county_code, prefecture_code, handling_level, deadline, reported_at, closed_at, closed_level,
                           closed_on_time, reworks, extensions, escalations, resolved)
        SELECT CASE WHEN k %% 2 = 0 THEN 'bench' ELSE 'bench_event' END,
               CASE WHEN k %% 2 = 0 THEN 'dispute' ELSE 'event' END,
               'bench', st, (ARRAY['yellow','yellow','yellow','orange','red'])[1 + k %% 5], label_point,
               code, village, township, county, prefecture, lvl,
               rep + interval '72 hours', rep, closed, CASE WHEN closed IS NOT NULL THEN lvl END,
               CASE WHEN closed IS NOT NULL THEN closed <= rep + interval '72 hours' END,
               (r3 < 0.03)::int, (r2 < 0.05)::int, (lvl <> 'village')::int,
               CASE WHEN closed IS NOT NULL AND k %% 2 = 0 THEN r3 < 0.9 END
        FROM (
            SELECT c.*,
                   CASE WHEN r2 < 0.93 AND rep + r3 * interval '96 hours' < now() THEN 'closed'
                        WHEN r2 < 0.97 THEN 'in_progress' ELSE 'dispatched' END AS st,
                   CASE WHEN r2 < 0.93 AND rep + r3 * interval '96 hours' < now() THEN rep + r3 * interval '96 hours' END AS closed,
                   CASE WHEN r3 < 0.7 THEN 'village' WHEN r3 < 0.9 THEN 'township' WHEN r3 < 0.98 THEN 'county'
                        ELSE 'prefecture' END AS lvl
            FROM c
        ) x
        ORDER BY rep   -- cases arrive in time order, so the heap is laid out by reported_at as in real use
    """, {"cases": cases, "lo": lo, "hi": hi})


NAIVE = """
    SELECT count(*) FILTER (WHERE LEAST(c.closed_at, c.deadline) >= %(start)s AND LEAST(c.closed_at, c.deadline) < %(now)s) AS due,
           count(*) FILTER (WHERE LEAST(c.closed_at, c.deadline) >= %(start)s AND LEAST(c.closed_at, c.deadline) < %(now)s
                            AND c.state = 'closed' AND c.closed_at < %(now)s) AS closed,
           count(*) FILTER (WHERE LEAST(c.closed_at, c.deadline) >= %(start)s AND LEAST(c.closed_at, c.deadline) < %(now)s
                            AND c.state = 'closed' AND c.closed_at < %(now)s AND c.closed_at <= c.deadline) AS closed_on_time,
           count(*) FILTER (WHERE c.state NOT IN ('closed', 'rejected')) AS open,
           count(*) FILTER (WHERE c.state NOT IN ('closed', 'rejected') AND c.deadline < %(now)s) AS overdue
    FROM region r JOIN cases c ON ST_Intersects(r.geom, c.geom)
    WHERE r.code = %(code)s AND c.duplicate_of IS NULL AND c.state <> 'rejected'
"""


def _core(column: str | None):
    """The naive query's five figures, scoped by the stamped code column instead (like for like)."""
    from psycopg import sql

    where = sql.SQL("TRUE") if column is None else sql.SQL("{} = %(code)s").format(sql.Identifier("c", column))
    return sql.SQL(NAIVE.replace("FROM region r JOIN cases c ON ST_Intersects(r.geom, c.geom)", "FROM cases c")
                   .replace("WHERE r.code = %(code)s AND", "WHERE {where} AND")).format(where=where)


def run(database_url: str, cases: int = CASES) -> list[dict]:
    from gridwatch import kpi

    out: list[dict] = []
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        seeded = seed_cases(conn, cases)
        total = conn.execute("SELECT count(*) AS n FROM cases").fetchone()["n"]
        conn.commit()
        print(f"  seeded {total:,} cases in {seeded:.1f} s", flush=True)
        conn.autocommit = True
        now = datetime.now(timezone.utc)
        local = now.astimezone(ZoneInfo(kpi.LOCAL_TZ))
        start = datetime.combine(local.date(), dtime(0), ZoneInfo(kpi.LOCAL_TZ)) - timedelta(days=29)  # kpi's window
        for level, k in SAMPLE.items():
            codes = [r["code"] for r in conn.execute(
                "SELECT code FROM region WHERE level = %s ORDER BY md5(code) LIMIT %s", (level, k)).fetchall()]
            ours, ranking, naive, core = [], [], [], []
            core_sql = _core(kpi.LEVEL_COLUMN[level])
            check, same = None, None
            for _ in range(REPEAT):
                for code in codes:
                    t0 = time.perf_counter()
                    figures = kpi.region_kpis(conn, code, now=now)
                    ours.append(time.perf_counter() - t0)
                    if level != "grid":
                        t0 = time.perf_counter()
                        kpi.children_ranking(conn, code, now=now)
                        ranking.append(time.perf_counter() - t0)
                    check = (code, figures)
            for _ in range(BASELINE_REPEAT):
                for code in codes:
                    t0 = time.perf_counter()
                    row = conn.execute(NAIVE, {"code": code, "start": start, "now": now}).fetchone()
                    naive.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    conn.execute(core_sql, {"code": code, "start": start, "now": now}).fetchone()
                    core.append(time.perf_counter() - t0)
                    if code == check[0]:
                        same = (row["due"], row["closed"], row["open"]) == (check[1]["due"], check[1]["closed"], check[1]["open"])
            note = (f"{total:,} cases; {len(codes)} {level} region(s) × {REPEAT}; naive × {BASELINE_REPEAT}; "
                    f"naive and ours agree on due/closed/open: {same}")
            out.append(_row(f"region_kpis {level} (p95)", _p95(ours), "spatial join at read time (p95)", _p95(naive),
                            len(ours), note))
            out.append(_row(f"core figures {level}, stamped codes (p95)", _p95(core), "spatial join at read time (p95)",
                            _p95(naive), len(core), "like for like: due, closed, on time, open, overdue"))
            if ranking:
                out.append(_row(f"children_ranking {level} (p95)", _p95(ranking), "spatial join at read time (p95)",
                                _p95(naive), len(ranking), f"median {statistics.median(ranking) * 1000:.1f} ms"))
            print(f"  {level:10s} region_kpis p95 {_p95(ours) * 1000:8.1f} ms   naive p95 {_p95(naive) * 1000:9.1f} ms", flush=True)
    return out
