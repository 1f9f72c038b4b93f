"""行政区划调整: which boundary changes a period's figures straddle, and what the units of the time said.

A boundary load (``gridwatch etl boundaries``) re-stamps live rows to today's units and records an
adjustment with its effective date (table ``boundary_adjustment``); each re-stamped row keeps the
codes it had (``region_restamp``; view ``reported_codes``).

**Default: KPIs use today's units**, for every period, also one before an adjustment: a merged
township's old cases count in the township that took it over, so a region's series stays
comparable over time. :func:`units_note` says so for a period and lists the adjustments since its
start; :func:`reported_counts` gives the count by the units of that time beside it.
"""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import psycopg

from gridwatch.db import fetch_all, load_sql

__all__ = ["DEFAULT_UNITS", "adjustments_touching", "units_note", "reported_counts"]

DEFAULT_UNITS = "current"
LOCAL = ZoneInfo("Asia/Shanghai")
_HERE = __file__.rsplit("/", 1)[0]


def _instant(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=LOCAL)
    return datetime.combine(value, time(0), LOCAL)


def adjustments_touching(conn: psycopg.Connection, code: str, after: date) -> list[dict]:
    """Adjustments effective after ``after`` whose changed units lie inside ``code`` or contain it."""
    rows = fetch_all(conn, load_sql(_HERE, "boundary-adjustments-touching"), {"code": code, "start": after})
    return [{**r, "effective_date": r["effective_date"].isoformat()} for r in rows]


def units_note(conn: psycopg.Connection, code: str, start: date | datetime) -> dict:
    """Which units the figures of a period starting at ``start`` use, and the adjustments since.

    >>> # units_note(conn, "620702", date(2025, 1, 1))
    >>> # {"units": "current", "adjustments": [...], "note_en": "...", "note_zh": "..."}
    """
    day = start.date() if isinstance(start, datetime) else start
    found = adjustments_touching(conn, code, day)
    if not found:
        return {"units": DEFAULT_UNITS, "adjustments": [],
                "note_en": "today's units (no boundary change since the start of the period)",
                "note_zh": "按现行区划统计（期初以来无区划调整）"}
    dates = ", ".join(sorted({a["effective_date"] for a in found}))
    return {"units": DEFAULT_UNITS,
            "adjustments": [{k: a[k] for k in ("id", "effective_date", "level", "source", "deleted", "new_codes")} for a in found],
            "note_en": f"today's units: cases reported before the boundary change(s) of {dates} are counted in the units "
                       "that hold them now; their units of the time are kept (reported_codes)",
            "note_zh": f"按现行区划统计：{dates} 区划调整前上报的案件计入现辖单位；原属单位另存（reported_codes）"}


def reported_counts(conn: psycopg.Connection, code: str, start: date | datetime, end: date | datetime) -> dict:
    """Cases reported in [start, end) in ``code``: {"today": n by today's units, "at_the_time": n by the units of their time}."""
    row = fetch_all(conn, load_sql(_HERE, "boundary-reported-counts"),
                    {"code": code, "start": _instant(start), "end": _instant(end)})[0]
    return {"today": int(row["today"]), "at_the_time": int(row["at_the_time"])}
