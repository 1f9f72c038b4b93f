"""Key performance indicators per region and period, aggregated in PostgreSQL.

Every function takes an open connection and answers with a few aggregate queries (``FILTER``
clauses over the cases table, scoped by the region codes stamped on each case at intake); no
function loops over case rows in Python.

Definitions (also in the README, "KPI definitions"):

- A case *counts* unless it was rejected (``state = 'rejected'``) or merged as a duplicate
  (``duplicate_of IS NOT NULL``).
- A case *falls due* at ``due_at = LEAST(closed_at, deadline)``: its deadline, or the moment it
  was closed if that came first (a case closed early has done what was due). An open case with no
  deadline never falls due.
- **due** (应结案数) in a period ``[start, end)``, seen at ``now``: counted cases with
  ``start <= due_at < cut`` where ``cut = min(end, now)``.
- **closed** (已结案数): due cases in state ``closed`` with ``closed_at < cut`` (as of the end of
  the period, so a past period's figures do not change later).
- **closed_on_time** (按期结案数): closed cases with ``closed_on_time`` true (when the lifecycle
  recorded it) else ``closed_at <= deadline`` (no deadline: on time).
- **结案率 closure_rate** = closed ÷ due; **按期结案率 on_time_rate** = closed_on_time ÷ due;
  both ``None`` when nothing was due.
- **open_overdue** (逾期未结): due cases not closed by ``cut`` (their deadline passed in the
  period and they were still open at its end) = due − closed.
- **返工率 rework_rate** = closed cases with ``reworks > 0`` ÷ closed;
  **延期率 extension_rate** = due cases with ``extensions > 0`` ÷ due;
  **退回率 return_rate** = due cases with ``returns > 0`` ÷ due.
- **化解率 resolution_rate** (disputes only) = closed disputes with ``resolved`` true ÷ closed disputes.
- **funnel / closed_by_level**: closed cases by the level that closed them
  (``closed_level``, else ``handling_level``): village, township, county, beyond (prefecture or
  province) — 小事不出村、大事不出镇、矛盾不上交.
- **escalations**: due cases escalated at least once (``escalations > 0``).
- Snapshot figures are as of ``now``: **open** = counted cases not closed; **overdue** = open cases
  whose deadline has passed; **new_today** = cases reported since local midnight (Asia/Shanghai).
- ``region_kpis`` and ``children_ranking`` use the window of the last ``days`` (default 30) local
  days: from local midnight ``days − 1`` days ago up to ``now``.
- For the province, prefectures and counties seen at the present moment, whole past days are
  summed from the ``case_day`` rollup (migration 0053, kept exact by statement-level triggers on
  cases) and only today is read from the cases table; ``rollup=False`` forces the cases table.

Region scope: the province sees every case; any other region filters on the column stamped for
its level (``prefecture_code``, ``county_code``, ``township_code``, ``village_code``,
``grid_code``), so 嘉峪关's townships (no county) roll up through ``prefecture_code``.
"""

from __future__ import annotations

import contextlib
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from gridwatch.db import execute

__all__ = [
    "UnknownRegion", "LEVEL_COLUMN", "LOCAL_TZ", "RETURN_ACTIONS", "SCORE_FORMULA",
    "region_scope", "region_kpis", "children_ranking", "period_kpis", "department_ranking",
    "returned_trail",
]

LOCAL_TZ = "Asia/Shanghai"

# The cases/hazard column stamped for each level (the province sees everything).
LEVEL_COLUMN: dict[str, str | None] = {
    "province": None,
    "prefecture": "prefecture_code",
    "county": "county_code",
    "township": "township_code",
    "village": "village_code",
    "grid": "grid_code",
}

# case_event actions that mean "a department sent the case back" (see gridwatch/cases.py).
RETURN_ACTIONS: tuple[str, ...] = ("return",)

SCORE_FORMULA = (
    "score = 100 × (0.4 × on_time_rate + 0.3 × closure_rate + 0.2 × (1 − return_share) "
    "+ 0.1 × satisfaction_share); return_share = returns ÷ (handled + returns); "
    "satisfaction_share = (mean satisfaction − 1) ÷ 4, 0.5 when no case was rated; "
    "no score when nothing was due"
)

_COUNTED = sql.SQL("c.duplicate_of IS NULL AND c.state <> 'rejected'")
_DUE = sql.SQL("case_is_due_in(c.closed_at, c.deadline, %(start)s, %(cut)s)")   # migration 0024, inlined
_CLOSED = sql.SQL("c.state = 'closed' AND c.closed_at < %(cut)s")
_ON_TIME = sql.SQL("COALESCE(c.closed_on_time, c.deadline IS NULL OR c.closed_at <= c.deadline)")
_LEVEL = sql.SQL("COALESCE(c.closed_level, c.handling_level)")
_OPEN = sql.SQL("case_is_open(c.state)")   # migration 0024: inlined, so the partial indexes still serve
# For a township or smaller region, windows that start at local midnight are tested on the local day:
# the same rows, but the planner reads the region's few hundred cases through its code's index
# instead of ANDing it with an index range covering a twelfth of the table. (A county can hold tens
# of thousands of cases over the year: there the AND of both indexes reads fewer pages.)
SMALL_LEVELS = ("township", "village", "grid")
_DUE_BY_DAY = sql.SQL("(LEAST(c.closed_at, c.deadline) AT TIME ZONE 'Asia/Shanghai')::date >= %(start_day)s "
                      "AND LEAST(c.closed_at, c.deadline) < %(cut)s")
_REPORTED_SINCE = sql.SQL("c.reported_at >= %(today)s")
_REPORTED_SINCE_BY_DAY = sql.SQL("(c.reported_at AT TIME ZONE 'Asia/Shanghai')::date >= %(today_day)s")


class UnknownRegion(LookupError):
    """The region code is not in the region table."""


_q = execute   # dict rows whatever the connection's row factory (gridwatch.db.execute, the one helper)


def region_scope(conn: psycopg.Connection, code: str) -> dict:
    """``{code, name, level, column}`` of a region; raises :class:`UnknownRegion` naming the code."""
    row = _q(conn, "SELECT code, name, level, population FROM region WHERE code = %s", (code,)).fetchone()
    if row is None:
        raise UnknownRegion(
            f"region code {code!r} is not in the region table; use a loaded code such as '62' (甘肃省) "
            "or a prefecture/county/township/village/grid code (GET /api/v1/regions lists them)"
        )
    return {**row, "column": LEVEL_COLUMN[row["level"]]}


@contextlib.contextmanager
def _no_jit(conn: psycopg.Connection):
    """One transaction (a savepoint inside the caller's) tuned for short aggregates: JIT off (its compile,
    triggered by cost estimates on big tables, costs seconds, not milliseconds) and custom plans only
    (psycopg prepares a query run five times; PostgreSQL's generic plan for it ignores which region
    and which dates, and read a small county's cases 6× slower in the benchmark)."""
    with conn.transaction():
        conn.execute("SELECT set_config('jit', 'off', true), set_config('plan_cache_mode', 'force_custom_plan', true)")
        yield


def _serial(conn: psycopg.Connection) -> None:
    """No parallel workers for the rest of this transaction: for the few thousand rows a rollup
    read or a small region touches, starting workers costs more than it saves."""
    conn.execute("SELECT set_config('max_parallel_workers_per_gather', '0', true)")


def _where(column: str | None, alias: str = "c") -> sql.Composable:
    if column is None:
        return sql.SQL("TRUE")
    return sql.SQL("{} = %(code)s").format(sql.Identifier(alias, column))


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise ValueError(f"now={now!r} has no time zone; pass an aware datetime (e.g. datetime.now(timezone.utc))")
    return now


def _aware(name: str, value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{name}={value!r} has no time zone; pass an aware datetime or a date (local midnight, {LOCAL_TZ})")
        return value
    return datetime.combine(value, time(0), ZoneInfo(LOCAL_TZ))


def _rate(num: int, den: int) -> float | None:
    return None if not den else num / den


_PERIOD_SELECT = sql.SQL("""
    count(*) FILTER (WHERE {due}) AS due,
    count(*) FILTER (WHERE {due} AND {closed}) AS closed,
    count(*) FILTER (WHERE {due} AND {closed} AND {on_time}) AS closed_on_time,
    count(*) FILTER (WHERE {due} AND {closed} AND c.reworks > 0) AS reworked,
    count(*) FILTER (WHERE {due} AND c.extensions > 0) AS extended,
    count(*) FILTER (WHERE {due} AND c.returns > 0) AS returned,
    count(*) FILTER (WHERE {due} AND c.escalations > 0) AS escalations,
    count(*) FILTER (WHERE {due} AND {closed} AND c.family = 'dispute') AS disputes_closed,
    count(*) FILTER (WHERE {due} AND {closed} AND c.family = 'dispute' AND c.resolved) AS disputes_resolved,
    count(*) FILTER (WHERE {due} AND {closed} AND {level} = 'village') AS closed_village,
    count(*) FILTER (WHERE {due} AND {closed} AND {level} = 'township') AS closed_township,
    count(*) FILTER (WHERE {due} AND {closed} AND {level} = 'county') AS closed_county,
    count(*) FILTER (WHERE {due} AND {closed} AND {level} IN ('prefecture', 'province')) AS closed_beyond
""").format(due=_DUE, closed=_CLOSED, on_time=_ON_TIME, level=_LEVEL)


def _period_figures(r: dict) -> dict:
    due, closed = r["due"], r["closed"]
    return {
        "due": due,
        "closed": closed,
        "closed_on_time": r["closed_on_time"],
        "closure_rate": _rate(closed, due),
        "on_time_rate": _rate(r["closed_on_time"], due),
        "open_overdue": due - closed,
        "disputes_closed": r["disputes_closed"],
        "disputes_resolved": r["disputes_resolved"],
        "resolution_rate": _rate(r["disputes_resolved"], r["disputes_closed"]),
        "escalations": r["escalations"],
        "closed_by_level": {
            "village": r["closed_village"], "township": r["closed_township"],
            "county": r["closed_county"], "beyond": r["closed_beyond"],
        },
    }


def _period_row(conn, scope: dict, start: datetime, cut: datetime, now: datetime, today: datetime) -> dict:
    """The period and snapshot figures from the cases table; ``start`` and ``today`` are local midnights."""
    small = scope["level"] in SMALL_LEVELS
    # Two index-friendly halves: the period's due cases (range on due_at) and the open snapshot.
    query = sql.SQL("""
        WITH period AS (
            SELECT {select}
            FROM cases c
            WHERE {where} AND {counted} AND {due}
        ), snapshot AS (
            SELECT count(*) AS open,
                   count(*) FILTER (WHERE c.deadline < %(now)s) AS overdue
            FROM cases c
            WHERE {where} AND {counted} AND {open}
        ), today AS (
            SELECT count(*) AS new_today FROM cases c
            WHERE {where} AND {counted} AND {since_today} AND c.reported_at <= %(now)s
        )
        SELECT * FROM period, snapshot, today
    """).format(select=_PERIOD_SELECT, where=_where(scope["column"]), counted=_COUNTED, open=_OPEN,
                due=_DUE_BY_DAY if small else _DUE, since_today=_REPORTED_SINCE_BY_DAY if small else _REPORTED_SINCE)
    return _q(conn, query, {"code": scope["code"], "start": start, "cut": cut, "now": now, "today": today,
                            "start_day": start.date(), "today_day": today.date()}).fetchone()


LIVE_SECONDS = 300          # a ``now`` this close to the clock is "the present": the rollup may answer
ROLLUP_LEVELS = ("province", "prefecture", "county")

_ROLLUP_SUMS = sql.SQL(", ").join(
    sql.SQL("COALESCE(sum(d.{src}) FILTER (WHERE d.day >= %(first)s AND d.day < %(today)s), 0)::bigint AS {dst}").format(
        src=sql.Identifier(src), dst=sql.Identifier(dst))
    for src, dst in (("due", "due"), ("due_closed", "closed"), ("due_on_time", "closed_on_time"), ("reworked", "reworked"),
                     ("extended", "extended"), ("returned", "returned"), ("escalated", "escalations"),
                     ("disputes_closed", "disputes_closed"), ("disputes_resolved", "disputes_resolved"),
                     ("closed_village", "closed_village"), ("closed_township", "closed_township"),
                     ("closed_county", "closed_county"), ("closed_beyond", "closed_beyond"))
)


def _rollup_units(conn: psycopg.Connection, scope: dict, now: datetime, rollup: bool | None) -> list[str] | None:
    """The ``case_day`` units of ``scope`` ([] = all), or None when the rollup cannot answer."""
    if rollup is False or scope["level"] not in ROLLUP_LEVELS:
        return None
    if rollup is None and abs((now - datetime.now(timezone.utc)).total_seconds()) > LIVE_SECONDS:
        return None   # a past (or future) ``now``: the rollup holds today's state, not that moment's
    if scope["level"] == "province":
        return []
    if scope["level"] == "county":
        return [scope["code"]]
    kids = _q(conn, "SELECT code, level FROM region WHERE parent_code = %s", (scope["code"],)).fetchall()
    # a prefecture's units: its counties, and itself for townships hanging directly under it (嘉峪关)
    return [scope["code"]] + [k["code"] for k in kids if k["level"] == "county"]


def _rollup_figures(conn, scope: dict, units: list[str], first_day: datetime, today: datetime, now: datetime):
    """(period row, per-day new/closed) from whole past days of ``case_day`` plus today from ``cases``."""
    unit_filter = sql.SQL("TRUE") if not units else sql.SQL("d.unit = ANY(%(units)s)")
    params = {"units": units, "first": first_day.date(), "today": today.date(), "code": scope["code"],
              "start": today, "cut": now, "now": now}
    past = _q(conn, sql.SQL("""
        SELECT {sums}, COALESCE(sum(d.open), 0)::bigint AS open,
               COALESCE(sum(d.open) FILTER (WHERE d.day < %(today)s), 0)::bigint AS overdue_past
        FROM case_day d WHERE {units}
    """).format(sums=_ROLLUP_SUMS, units=unit_filter), params).fetchone()
    per_day = {}
    for row in _q(conn, sql.SQL("""
        SELECT d.day, sum(d.reported)::bigint AS new, sum(d.closed)::bigint AS closed
        FROM case_day d WHERE {units} AND d.day >= %(first)s AND d.day < %(today)s GROUP BY d.day
    """).format(units=unit_filter), params).fetchall():
        per_day[(row["day"], "new")] = row["new"]
        per_day[(row["day"], "closed")] = row["closed"]
    where = _where(scope["column"])
    live = _q(conn, sql.SQL("""
        WITH due_today AS (SELECT {select} FROM cases c WHERE {where} AND {counted} AND {due}),
        overdue_today AS (
            SELECT count(*) AS overdue_today FROM cases c
            WHERE {where} AND {counted} AND {open} AND c.deadline >= %(start)s AND c.deadline < %(now)s
        ), flow AS (
            SELECT (SELECT count(*) FROM cases c WHERE {where} AND {counted}
                      AND c.reported_at >= %(start)s AND c.reported_at <= %(now)s) AS new_today,
                   (SELECT count(*) FROM cases c WHERE {where} AND {counted} AND c.state = 'closed'
                      AND c.closed_at >= %(start)s AND c.closed_at <= %(now)s) AS closed_today
        )
        SELECT * FROM due_today, overdue_today, flow
    """).format(select=_PERIOD_SELECT, where=where, counted=_COUNTED, due=_DUE, open=_OPEN), params).fetchone()
    r = {k: int(past[k]) + int(live[k]) for k in (
        "due", "closed", "closed_on_time", "reworked", "extended", "returned", "escalations", "disputes_closed",
        "disputes_resolved", "closed_village", "closed_township", "closed_county", "closed_beyond")}
    r.update(open=int(past["open"]), overdue=int(past["overdue_past"]) + int(live["overdue_today"]),
             new_today=int(live["new_today"]))
    per_day[(today.date(), "new")] = int(live["new_today"])
    per_day[(today.date(), "closed")] = int(live["closed_today"])
    return r, per_day


def region_kpis(conn: psycopg.Connection, code: str, now: datetime | None = None, days: int = 30,
                rollup: bool | None = None) -> dict:
    """The headline figures of region ``code`` as of ``now`` (rolling ``days``-day window).

    Keys: open, new_today, overdue, due, closed, closed_on_time, closure_rate, on_time_rate,
    open_overdue, disputes_closed, disputes_resolved, resolution_rate, escalations,
    closed_by_level {village, township, county, beyond}, hazards_open_by_grade {red, orange,
    yellow}, centre_coverage {with_entity_centre, children, share}, sparkline (``days`` × {day,
    new, closed}, oldest first, ending today), as_of (ISO), plus code, name, level, window_start.

    The window is the last ``days`` local days: from local midnight ``days − 1`` days ago to ``now``.
    For the province, prefectures and counties, asked about the present (``now`` within
    ``LIVE_SECONDS`` of the clock), whole past days come from the ``case_day`` rollup and only today
    from the cases table (``rollup=False`` forces the cases table; the figures are the same).
    """
    now = _now(now)
    with _no_jit(conn):
        return _region_kpis(conn, code, now, days, rollup)


def _region_kpis(conn: psycopg.Connection, code: str, now: datetime, days: int, rollup: bool | None = None) -> dict:
    scope = region_scope(conn, code)
    local_now = now.astimezone(ZoneInfo(LOCAL_TZ))
    today = datetime.combine(local_now.date(), time(0), ZoneInfo(LOCAL_TZ))
    first_day = today - timedelta(days=days - 1)
    start = first_day
    units = _rollup_units(conn, scope, now, rollup)
    if units is not None or scope["level"] in SMALL_LEVELS:
        _serial(conn)
    if units is not None:
        r, per_day = _rollup_figures(conn, scope, units, first_day, today, now)
    else:
        r = _period_row(conn, scope, start, now, now, today)
        per_day = None

    params = {"code": code, "now": now}
    hz = _q(conn, sql.SQL("""
        SELECT count(*) FILTER (WHERE c.grade = 'red') AS red,
               count(*) FILTER (WHERE c.grade = 'orange') AS orange,
               count(*) FILTER (WHERE c.grade = 'yellow') AS yellow
        FROM hazard c WHERE {where} AND hazard_is_open(c.state)
    """).format(where=_where(scope["column"])), params).fetchone()

    cov = _q(conn, """
        SELECT count(*) AS children,
               count(*) FILTER (WHERE EXISTS (
                   SELECT 1 FROM centre ce WHERE ce.region_code = k.code AND ce.status = 'entity' AND ce.scenario IS NULL
               )) AS with_entity_centre
        FROM region k WHERE k.parent_code = %(code)s
    """, params).fetchone()

    # new and closed per local day: one grouped pass over each index range; empty days filled here
    # A small region (township and below) has few cases: read them through its code's index alone and
    # test the day on each (an indexed time range would make the planner AND it with ~1/12 of the table).
    small = scope["level"] in SMALL_LEVELS
    since = {col: sql.SQL("(c.{} AT TIME ZONE %(tz)s)::date >= %(from_day)s" if small else "c.{} >= %(from)s").format(
        sql.Identifier(col)) for col in ("reported_at", "closed_at")}
    per_day = per_day if per_day is not None else {(row["day"], row["kind"]): row["n"] for row in _q(conn, sql.SQL("""
        SELECT (c.reported_at AT TIME ZONE %(tz)s)::date AS day, 'new' AS kind, count(*) AS n
        FROM cases c WHERE {where} AND {counted} AND {rep_since} AND c.reported_at <= %(now)s
        GROUP BY 1
        UNION ALL
        SELECT (c.closed_at AT TIME ZONE %(tz)s)::date, 'closed', count(*)
        FROM cases c WHERE {where} AND {counted} AND c.state = 'closed' AND {clo_since} AND c.closed_at <= %(now)s
        GROUP BY 1
    """).format(where=_where(scope["column"]), counted=_COUNTED, rep_since=since["reported_at"],
                clo_since=since["closed_at"]), {
        **params, "from": first_day, "from_day": first_day.date(), "tz": LOCAL_TZ,
    }).fetchall()}
    spark = []
    for i in range(days):
        d = (first_day + timedelta(days=i)).date()
        spark.append({"day": d.isoformat(), "new": per_day.get((d, "new"), 0), "closed": per_day.get((d, "closed"), 0)})

    return {
        "code": code, "name": scope["name"], "level": scope["level"],
        "open": r["open"], "new_today": r["new_today"], "overdue": r["overdue"],
        **_period_figures(r),
        "hazards_open_by_grade": {"red": hz["red"], "orange": hz["orange"], "yellow": hz["yellow"]},
        "centre_coverage": {
            "with_entity_centre": cov["with_entity_centre"], "children": cov["children"],
            "share": _rate(cov["with_entity_centre"], cov["children"]),
        },
        "sparkline": spark,
        "window_start": start.isoformat(),
        "as_of": now.isoformat(),
    }


def children_ranking(conn: psycopg.Connection, code: str, now: datetime | None = None, days: int = 30,
                     rollup: bool | None = None) -> list[dict]:
    """One row per child region of ``code`` (all children, zeros included), worst first.

    Row keys: code, name, level, open, overdue, due, closed, closure_rate, on_time_rate,
    hazards_open, grids, reported (cases reported in the window), cases_per_grid (reported ÷ grids,
    None without grids). Rates use the same rolling ``days`` window as :func:`region_kpis`.
    Order: overdue desc, open desc, code.
    """
    now = _now(now)
    with _no_jit(conn):
        return _children_ranking(conn, code, now, days, rollup)


_BASE_CHILD_COUNTS = """
            opened AS (   -- three index-friendly passes (open cases, the window's due cases, its reports)
                SELECT {child} AS child, count(*) AS open, count(*) FILTER (WHERE c.deadline < %(now)s) AS overdue
                FROM cases c WHERE {where} AND {counted} AND {open} GROUP BY 1
            ), dued AS (
                SELECT {child} AS child, count(*) AS due, count(*) FILTER (WHERE {closed}) AS closed,
                       count(*) FILTER (WHERE {closed} AND {on_time}) AS closed_on_time
                FROM cases c WHERE {where} AND {counted} AND {due} GROUP BY 1
            ), reports AS (
                SELECT {child} AS child, count(*) AS reported
                FROM cases c WHERE {where} AND {counted} AND {reported_since} AND c.reported_at <= %(now)s
                GROUP BY 1
            )"""

# The same three figures from the case_day rollup (whole past days) plus today's cases.
_ROLLUP_CHILD_COUNTS = """
            opened AS (
                SELECT x.child, sum(x.open) AS open, sum(x.overdue) AS overdue FROM (
                    SELECT {rchild} AS child, d.open, CASE WHEN d.day < %(today_d)s THEN d.open ELSE 0 END AS overdue
                    FROM case_day d WHERE {units}
                    UNION ALL
                    SELECT {child}, 0, 1 FROM cases c
                    WHERE {where} AND {counted} AND {open} AND c.deadline >= %(today)s AND c.deadline < %(now)s
                ) x GROUP BY 1
            ), dued AS (
                SELECT x.child, sum(x.due) AS due, sum(x.closed) AS closed, sum(x.on_time) AS closed_on_time FROM (
                    SELECT {rchild} AS child, d.due, d.due_closed AS closed, d.due_on_time AS on_time
                    FROM case_day d WHERE {units} AND d.day >= %(first_d)s AND d.day < %(today_d)s
                    UNION ALL
                    SELECT {child}, 1, ({closed})::int, ({closed} AND {on_time})::int FROM cases c
                    WHERE {where} AND {counted} AND LEAST(c.closed_at, c.deadline) >= %(today)s
                      AND LEAST(c.closed_at, c.deadline) < %(cut)s
                ) x GROUP BY 1
            ), reports AS (
                SELECT x.child, sum(x.n) AS reported FROM (
                    SELECT {rchild} AS child, d.reported AS n
                    FROM case_day d WHERE {units} AND d.day >= %(first_d)s AND d.day < %(today_d)s
                    UNION ALL
                    SELECT {child}, 1 FROM cases c
                    WHERE {where} AND {counted} AND c.reported_at >= %(today)s AND c.reported_at <= %(now)s
                ) x GROUP BY 1
            )"""


def _children_ranking(conn: psycopg.Connection, code: str, now: datetime, days: int,
                      rollup: bool | None = None) -> list[dict]:
    scope = region_scope(conn, code)
    local_now = now.astimezone(ZoneInfo(LOCAL_TZ))
    today = datetime.combine(local_now.date(), time(0), ZoneInfo(LOCAL_TZ))
    start = today - timedelta(days=days - 1)
    units = _rollup_units(conn, scope, now, rollup)
    if units is not None or scope["level"] in SMALL_LEVELS:
        _serial(conn)
    levels = [r["level"] for r in _q(conn, 
        "SELECT DISTINCT level FROM region WHERE parent_code = %s", (code,)).fetchall()]
    rows: list[dict] = []
    for level in levels:
        child_col = LEVEL_COLUMN[level]
        by_rollup = units is not None and (scope["level"], level) in (("province", "prefecture"), ("prefecture", "county"))
        if by_rollup:
            counts = sql.SQL(_ROLLUP_CHILD_COUNTS).format(
                rchild=sql.SQL("left(d.unit, 4)" if level == "prefecture" else "d.unit"),
                units=sql.SQL("d.unit <> ''") if not units else sql.SQL("d.unit = ANY(%(units)s)"),
                child=sql.Identifier("c", child_col), open=_OPEN, closed=_CLOSED, on_time=_ON_TIME,
                where=_where(scope["column"]), counted=_COUNTED)
        else:
            small = scope["level"] in SMALL_LEVELS
            counts = sql.SQL(_BASE_CHILD_COUNTS).format(
                child=sql.Identifier("c", child_col), open=_OPEN, closed=_CLOSED, on_time=_ON_TIME,
                due=_DUE_BY_DAY if small else _DUE, where=_where(scope["column"]), counted=_COUNTED,
                reported_since=sql.SQL("(c.reported_at AT TIME ZONE 'Asia/Shanghai')::date >= %(first_d)s")
                if small else sql.SQL("c.reported_at >= %(start)s"))
        query = sql.SQL("""
            WITH kids AS (
                SELECT code, name, level, length(code) AS len FROM region WHERE parent_code = %(code)s AND level = %(level)s
            ), {counts}, hz AS (
                SELECT {child} AS child, count(*) AS hazards_open
                FROM hazard c WHERE {where} AND hazard_is_open(c.state) GROUP BY 1
            ), grids AS (
                SELECT left(g.code, %(len)s) AS child, count(*) AS grids
                -- grid codes under ``code`` are exactly the 15-digit codes between code000… and code999…: a
                -- range the index serves in generic plans too (a LIKE with a parameter would not)
                FROM region g WHERE g.level = 'grid' AND g.code BETWEEN %(grid_lo)s AND %(grid_hi)s GROUP BY 1
            )
            SELECT kids.code, kids.name, kids.level,
                   COALESCE(opened.open, 0) AS open, COALESCE(opened.overdue, 0) AS overdue,
                   COALESCE(dued.due, 0) AS due, COALESCE(dued.closed, 0) AS closed,
                   COALESCE(dued.closed_on_time, 0) AS closed_on_time,
                   COALESCE(reports.reported, 0) AS reported,
                   COALESCE(hz.hazards_open, 0) AS hazards_open, COALESCE(grids.grids, 0) AS grids
            FROM kids
            LEFT JOIN opened ON opened.child = kids.code
            LEFT JOIN dued ON dued.child = kids.code
            LEFT JOIN reports ON reports.child = kids.code
            LEFT JOIN hz ON hz.child = kids.code
            LEFT JOIN grids ON grids.child = kids.code
        """).format(counts=counts, child=sql.Identifier("c", child_col), where=_where(scope["column"]))
        child_len = {"prefecture": 4, "county": 6, "township": 9, "village": 12, "grid": 15}[level]
        for r in _q(conn, query, {"code": code, "level": level, "now": now, "start": start, "cut": now,
                                  "len": child_len, "grid_lo": code.ljust(15, "0"), "grid_hi": code.ljust(15, "9"),
                                  "units": units, "today": today,
                                  "today_d": today.date(), "first_d": start.date(), "start_day": start.date()}).fetchall():
            r["closure_rate"] = _rate(r["closed"], r["due"])
            r["on_time_rate"] = _rate(r["closed_on_time"], r["due"])
            r["cases_per_grid"] = _rate(r["reported"], r["grids"])
            r.update({k: int(r[k]) for k in ("open", "overdue", "due", "closed", "closed_on_time", "reported")})
            rows.append(r)
    rows.sort(key=lambda r: (-r["overdue"], -r["open"], r["code"]))
    return rows


def period_kpis(conn: psycopg.Connection, code: str, start: datetime | date, end: datetime | date,
                now: datetime | None = None) -> dict:
    """The period figures of region ``code`` for ``[start, end)`` (dates mean local midnight).

    Keys: code, name, level, start, end, as_of, due, closed, closed_on_time, closure_rate,
    on_time_rate, open_overdue, reworked, rework_rate (返工率), extended, extension_rate (延期率),
    returned, return_rate, escalations, disputes_closed, disputes_resolved, resolution_rate (化解率),
    closed_by_level and funnel (the same counts with shares of closed: village, township, county,
    beyond). See the module docstring for the exact definitions.
    """
    now = _now(now)
    start, end = _aware("start", start), _aware("end", end)
    if end <= start:
        raise ValueError(f"end={end.isoformat()} is not after start={start.isoformat()}; give a period with start < end")
    scope = region_scope(conn, code)
    cut = min(end, now)
    query = sql.SQL("SELECT {select} FROM cases c WHERE {where} AND {counted} AND {due}").format(
        select=_PERIOD_SELECT, where=_where(scope["column"]), counted=_COUNTED, due=_DUE)
    with _no_jit(conn):
        r = _q(conn, query, {"code": code, "start": start, "cut": cut}).fetchone()
    fig = _period_figures(r)
    closed = fig["closed"]
    return {
        "code": code, "name": scope["name"], "level": scope["level"],
        "start": start.isoformat(), "end": end.isoformat(), "as_of": now.isoformat(),
        **fig,
        "reworked": r["reworked"], "rework_rate": _rate(r["reworked"], closed),
        "extended": r["extended"], "extension_rate": _rate(r["extended"], fig["due"]),
        "returned": r["returned"], "return_rate": _rate(r["returned"], fig["due"]),
        "funnel": [
            {"level": lvl, "closed": n, "share": _rate(n, closed)}
            for lvl, n in fig["closed_by_level"].items()
        ],
    }


def department_ranking(conn: psycopg.Connection, code: str, start: datetime | date, end: datetime | date,
                       now: datetime | None = None) -> list[dict]:
    """Departments of region ``code`` ranked by a composite score over ``[start, end)``, best first.

    A department belongs to the region when its ``region_code`` starts with ``code``. Per department:
    handled (due cases assigned to it, scoped to the region), closed, closed_on_time, closure_rate,
    on_time_rate, returns (its ``return`` events in the trail during the period), return_share,
    satisfaction (mean 1–5 or None), score and rank. ``SCORE_FORMULA`` states the formula;
    departments with nothing due have no score and come last.
    """
    now = _now(now)
    start, end = _aware("start", start), _aware("end", end)
    scope = region_scope(conn, code)
    cut = min(end, now)
    query = sql.SQL("""
        WITH deps AS (
            SELECT d.id, d.name, d.kind, d.region_code FROM department d WHERE d.region_code LIKE %(prefix)s
        ), handled AS (
            SELECT c.department_id AS id,
                   count(*) AS handled,
                   count(*) FILTER (WHERE {closed}) AS closed,
                   count(*) FILTER (WHERE {closed} AND {on_time}) AS closed_on_time,
                   avg(c.satisfaction) FILTER (WHERE {closed}) AS satisfaction
            FROM cases c
            WHERE c.department_id IS NOT NULL AND {where} AND {counted} AND {due}
            GROUP BY 1
        ), ret AS (
            SELECT e.department_id AS id, count(*) AS returns
            FROM case_event e JOIN cases c ON c.id = e.case_id
            WHERE e.action = ANY(%(actions)s) AND e.department_id IS NOT NULL
              AND e.at >= %(start)s AND e.at < %(cut)s AND {where}
            GROUP BY 1
        )
        SELECT deps.id, deps.name, deps.kind, deps.region_code,
               COALESCE(h.handled, 0) AS handled, COALESCE(h.closed, 0) AS closed,
               COALESCE(h.closed_on_time, 0) AS closed_on_time, h.satisfaction::float8 AS satisfaction,
               COALESCE(ret.returns, 0) AS returns
        FROM deps LEFT JOIN handled h ON h.id = deps.id LEFT JOIN ret ON ret.id = deps.id
    """).format(closed=_CLOSED, on_time=_ON_TIME, where=_where(scope["column"]), counted=_COUNTED, due=_DUE)
    with _no_jit(conn):
        rows = [dict(r) for r in _q(conn, query, {
            "prefix": ("" if scope["level"] == "province" else code) + "%", "code": code,
            "start": start, "cut": cut, "actions": list(RETURN_ACTIONS),
        }).fetchall()]
    for r in rows:
        r["closure_rate"] = _rate(r["closed"], r["handled"])
        r["on_time_rate"] = _rate(r["closed_on_time"], r["handled"])
        r["return_share"] = _rate(r["returns"], r["handled"] + r["returns"])
        sat = 0.5 if r["satisfaction"] is None else (r["satisfaction"] - 1) / 4
        if r["handled"]:
            r["score"] = round(100 * (0.4 * r["on_time_rate"] + 0.3 * r["closure_rate"]
                                      + 0.2 * (1 - (r["return_share"] or 0)) + 0.1 * sat), 2)
        else:
            r["score"] = None
    rows.sort(key=lambda r: (r["score"] is None, -(r["score"] or 0), -r["handled"], r["id"]))
    for i, r in enumerate(rows, 1):
        r["rank"] = i if r["score"] is not None else None
    return rows


def returned_trail(conn: psycopg.Connection, code: str, start: datetime | date, end: datetime | date,
                   limit: int = 200) -> list[dict]:
    """Who returned what, and why: the ``return`` events of cases in region ``code`` in ``[start, end)``.

    Newest first; keys: event_id, at (ISO), case_id, ref, title, department_id, department, actor,
    from_state, to_state, note (the reason given).
    """
    start, end = _aware("start", start), _aware("end", end)
    scope = region_scope(conn, code)
    query = sql.SQL("""
        SELECT e.id AS event_id, e.at, c.id AS case_id, c.ref, c.title, e.department_id, d.name AS department,
               e.actor, e.from_state, e.to_state, e.note
        FROM case_event e
        JOIN cases c ON c.id = e.case_id
        LEFT JOIN department d ON d.id = e.department_id
        WHERE e.action = ANY(%(actions)s) AND e.at >= %(start)s AND e.at < %(end)s AND {where}
        ORDER BY e.at DESC, e.id DESC
        LIMIT %(limit)s
    """).format(where=_where(scope["column"]))
    out = []
    for r in _q(conn, query, {"actions": list(RETURN_ACTIONS), "start": start, "end": end, "code": code,
                                  "limit": limit}).fetchall():
        r["at"] = r["at"].isoformat()
        out.append(r)
    return out
