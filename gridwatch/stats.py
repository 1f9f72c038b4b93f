"""Year-on-year and month-on-month figures per region from the monthly ``stat_figure`` table.

Indicators: criminal cases (刑事案件), public-security cases (治安案件), homicides (命案) and
petitions (信访). All sums happen in SQL; this module only turns the sums into changes and rates.

- **Year on year** compares the latest year that has data with the year before, over the *same
  months* (if the latest year has only January–June, both years are summed over January–June;
  ``months`` says which). change = (this − last) ÷ last; ``change_pct`` rounded to 0.1.
- **Month on month** compares the latest month with the month before.
- **Rates** per 10,000 residents = value ÷ population × 10,000, where the rows carry a population;
  otherwise ``None`` and only counts are shown.
- **Small numbers**: a comparison where either side is below ``SMALL`` (10) is flagged
  ``small = True``: its percentage swings on a handful of cases and is not reliable.
"""

from __future__ import annotations

from datetime import date

import psycopg

from gridwatch.db import execute
from gridwatch.kpi import region_scope

__all__ = ["INDICATORS", "SMALL", "yoy", "mom", "series", "region_stats"]

INDICATORS: dict[str, dict[str, str]] = {
    "criminal_cases": {"zh": "刑事案件", "en": "Criminal cases"},
    "public_security_cases": {"zh": "治安案件", "en": "Public-security cases"},
    "homicides": {"zh": "命案", "en": "Homicides"},
    "petitions": {"zh": "信访量", "en": "Petitions"},
}
SMALL = 10


_q = execute   # dict rows whatever the connection's row factory (gridwatch.db.execute, the one helper)


def _change(value: int | None, previous: int | None) -> tuple[float | None, float | None]:
    if value is None or not previous:
        return None, None
    ratio = (value - previous) / previous
    return ratio, round(ratio * 100, 1)


def _rate(value, population):
    return None if value is None or not population else round(value / population * 10_000, 3)


def yoy(conn: psycopg.Connection, code: str, year: int | None = None) -> list[dict]:
    """Year-on-year rows for region ``code``, one per indicator that has data (INDICATORS order).

    Keys: indicator, name_zh, name_en, year, previous_year, months [1..12 covered], value,
    previous, change (ratio), change_pct, population, rate_per_10k, previous_rate_per_10k, small.
    """
    region_scope(conn, code)  # refuses unknown codes, naming them
    if year is None:
        row = _q(conn, "SELECT max(extract(year FROM period))::int AS y FROM stat_figure WHERE region_code = %s",
                 (code,)).fetchone()
        year = row["y"]
        if year is None:
            return []
    rows = _q(conn, """
        WITH months AS (   -- the months of the latest year that have data, per indicator
            SELECT indicator, array_agg(DISTINCT extract(month FROM period)::int ORDER BY extract(month FROM period)::int) AS months
            FROM stat_figure WHERE region_code = %(code)s AND extract(year FROM period) = %(year)s
            GROUP BY indicator
        )
        SELECT s.indicator, m.months,
               sum(s.value) FILTER (WHERE extract(year FROM s.period) = %(year)s) AS value,
               sum(s.value) FILTER (WHERE extract(year FROM s.period) = %(year)s - 1) AS previous,
               count(*) FILTER (WHERE extract(year FROM s.period) = %(year)s - 1) AS previous_months,
               max(s.population) FILTER (WHERE extract(year FROM s.period) = %(year)s) AS population,
               max(s.population) FILTER (WHERE extract(year FROM s.period) = %(year)s - 1) AS previous_population
        FROM stat_figure s JOIN months m USING (indicator)
        WHERE s.region_code = %(code)s AND extract(year FROM s.period) IN (%(year)s, %(year)s - 1)
          AND extract(month FROM s.period)::int = ANY(m.months)
        GROUP BY s.indicator, m.months
    """, {"code": code, "year": year}).fetchall()
    out = []
    by = {r["indicator"]: r for r in rows}
    for ind, names in INDICATORS.items():
        r = by.get(ind)
        if r is None:
            continue
        value = int(r["value"]) if r["value"] is not None else None
        complete = r["previous_months"] == len(r["months"])
        previous = int(r["previous"]) if r["previous"] is not None and complete else None
        change, pct = _change(value, previous)
        out.append({
            "indicator": ind, "name_zh": names["zh"], "name_en": names["en"], "year": year, "previous_year": year - 1,
            "months": r["months"], "value": value, "previous": previous, "change": change, "change_pct": pct,
            "population": r["population"],
            "rate_per_10k": _rate(value, r["population"]),
            "previous_rate_per_10k": _rate(previous, r["previous_population"]),
            "small": value is None or previous is None or value < SMALL or previous < SMALL,
        })
    return out


def mom(conn: psycopg.Connection, code: str, month: date | None = None) -> list[dict]:
    """Month-on-month rows for region ``code``: the latest month (or ``month``) against the one before.

    Keys: indicator, name_zh, name_en, month ('YYYY-MM'), previous_month, value, previous, change,
    change_pct, rate_per_10k, small.
    """
    region_scope(conn, code)
    if month is None:
        row = _q(conn, "SELECT max(period) AS m FROM stat_figure WHERE region_code = %s", (code,)).fetchone()
        month = row["m"]
        if month is None:
            return []
    month = date(month.year, month.month, 1)
    prev = date(month.year - 1, 12, 1) if month.month == 1 else date(month.year, month.month - 1, 1)
    rows = {r["indicator"]: r for r in _q(conn, """
        SELECT indicator,
               max(value) FILTER (WHERE period = %(m)s) AS value,
               max(value) FILTER (WHERE period = %(p)s) AS previous,
               max(population) FILTER (WHERE period = %(m)s) AS population
        FROM stat_figure WHERE region_code = %(code)s AND period IN (%(m)s, %(p)s)
        GROUP BY indicator
    """, {"code": code, "m": month, "p": prev}).fetchall()}
    out = []
    for ind, names in INDICATORS.items():
        r = rows.get(ind)
        if r is None or r["value"] is None:
            continue
        change, pct = _change(r["value"], r["previous"])
        out.append({
            "indicator": ind, "name_zh": names["zh"], "name_en": names["en"],
            "month": f"{month:%Y-%m}", "previous_month": f"{prev:%Y-%m}",
            "value": r["value"], "previous": r["previous"], "change": change, "change_pct": pct,
            "rate_per_10k": _rate(r["value"], r["population"]),
            "small": r["previous"] is None or r["value"] < SMALL or r["previous"] < SMALL,
        })
    return out


def series(conn: psycopg.Connection, code: str) -> list[dict]:
    """Every monthly figure of region ``code``: [{indicator, month 'YYYY-MM', value, rate_per_10k}], oldest first."""
    region_scope(conn, code)
    return [
        {"indicator": r["indicator"], "month": f"{r['period']:%Y-%m}", "value": r["value"],
         "rate_per_10k": _rate(r["value"], r["population"])}
        for r in _q(conn, "SELECT indicator, period, value, population FROM stat_figure WHERE region_code = %s "
                          "ORDER BY indicator, period", (code,)).fetchall()
    ]


def region_stats(conn: psycopg.Connection, code: str) -> dict:
    """Everything the API and the briefing show: {code, name, yoy, mom, series, small_threshold}."""
    scope = region_scope(conn, code)
    return {"code": code, "name": scope["name"], "yoy": yoy(conn, code), "mom": mom(conn, code),
            "series": series(conn, code), "small_threshold": SMALL}
