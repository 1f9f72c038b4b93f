"""Grid workers' check-ins: a daily report or all-clear per grid (有事早报告，无事报平安), and silent grids.

A grid is *silent* for N days when it has neither a report nor an all-clear on any of the last N
days up to ``as_of`` (China date). Grids under a region are found by code prefix: a child's code
always starts with its parent's (a schema constraint), so every grid under 6202 starts with 6202.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import get_args

import psycopg

from gridwatch import models
from gridwatch.intake import InputError

__all__ = ["KINDS", "checkin", "silent_grids", "today"]

KINDS = get_args(models.CheckinIn.model_fields["kind"].annotation)   # report, all_clear


def today(conn: psycopg.Connection) -> date:
    """Today's date in China (the database's clock)."""
    return conn.execute("SELECT (now() AT TIME ZONE 'Asia/Shanghai')::date AS d").fetchone()["d"]


def checkin(conn: psycopg.Connection, grid_code: str, worker: str, kind: str, *, day: date | None = None,
            note: str | None = None, case_id: int | None = None) -> tuple[dict, bool]:
    """Record a check-in (idempotent per grid, worker, day and kind); returns (row, created)."""
    fields = {"grid_code": grid_code, "worker": worker, "kind": kind, "day": day, "note": note, "case_id": case_id}
    models.validate(models.CheckinIn, {k: v for k, v in fields.items() if v is not None})   # the API's model
    grid = conn.execute("SELECT level FROM region WHERE code = %s", (grid_code,)).fetchone()
    if grid is None or grid["level"] != "grid":
        raise InputError(f"grid_code {grid_code!r} is not a grid" + (f" (it is a {grid['level']})" if grid else ""),
                         message_zh=f"{grid_code} 不是网格编码", field="grid_code", value=grid_code,
                         fix="send a 15-digit grid code (GET /api/v1/checkins/grids lists them)")
    now_day = today(conn)
    day = day or now_day
    if day > now_day or day < now_day - timedelta(days=7):
        raise InputError(f"day {day.isoformat()} is outside the last seven days (today is {now_day.isoformat()})",
                         message_zh="只能补报最近 7 天内的日期", field="day", value=day.isoformat(),
                         fix=f"send a day between {(now_day - timedelta(days=7)).isoformat()} and {now_day.isoformat()}")
    if case_id is not None and conn.execute("SELECT 1 FROM cases WHERE id = %s", (case_id,)).fetchone() is None:
        raise InputError(f"there is no case {case_id}", message_zh=f"案件 {case_id} 不存在", field="case_id", value=case_id,
                         fix="report the case first (POST /api/v1/cases) and send its id")
    row = conn.execute(
        """INSERT INTO checkin (grid_code, worker, day, kind, note, case_id) VALUES (%s, %s, %s, %s, %s, %s)
           ON CONFLICT (grid_code, worker, day, kind) DO NOTHING
           RETURNING id, grid_code, worker, day, kind, note, case_id, at""",
        (grid_code, worker, day, kind, note, case_id)).fetchone()
    if row is not None:
        return dict(row), True
    row = conn.execute("SELECT id, grid_code, worker, day, kind, note, case_id, at FROM checkin "
                       "WHERE grid_code = %s AND worker = %s AND day = %s AND kind = %s",
                       (grid_code, worker, day, kind)).fetchone()
    return dict(row), False


def silent_grids(conn: psycopg.Connection, days: int = 3, *, as_of: date | None = None, under: str | None = None,
                 limit: int = 1000) -> list[dict]:
    """Grids with no check-in on any of the ``days`` days up to ``as_of``: code, name, last day, days silent."""
    if not 1 <= days <= 365:
        raise InputError(f"days must be 1–365, got {days}", message_zh="天数须在 1–365 之间", field="days", value=days,
                         fix="send days between 1 and 365")
    as_of = as_of or today(conn)
    rows = conn.execute(
        """SELECT g.code AS grid_code, g.name, l.last_day,
                  CASE WHEN l.last_day IS NULL THEN NULL ELSE %(as_of)s::date - l.last_day END AS days_silent
           FROM region g
           LEFT JOIN LATERAL (SELECT max(c.day) AS last_day FROM checkin c
                              WHERE c.grid_code = g.code AND c.day <= %(as_of)s) l ON true
           WHERE g.level = 'grid' AND (%(under)s::text IS NULL OR starts_with(g.code, %(under)s))
             AND (l.last_day IS NULL OR l.last_day <= %(as_of)s::date - %(days)s)
           ORDER BY l.last_day NULLS FIRST, g.code LIMIT %(limit)s""",
        {"as_of": as_of, "under": under, "days": days, "limit": limit}).fetchall()
    return [dict(r) for r in rows]
