"""Early-warning rules: each rule is one SQL aggregate that finds conditions; the runner raises,
updates and resolves alerts in one transaction.

Every alert carries a plain-language explanation in Chinese and English that cites every figure
in its ``numbers`` (the test suite checks this), the rule's stated method and threshold, the
region it belongs to, what it is about (``subject``: case/hazard/grid/department/category ids and
names), a severity, and a geometry for the map.

The rules (also in the README's alert rules table; thresholds in ``DEFAULTS``):

=====================  =======================================================================
deadline_near          open case with ≤ 25 % of its time limit (deadline − reported_at) left
deadline_past          open case past its deadline
red_case / red_hazard  open case / hazard graded red
spike                  a category in a county-level unit (county; 嘉峪关: the prefecture): the
                       last 7 days' count x against the unit's own baseline, the 8 weeks before,
                       λ = max(baseline ÷ 8, 0.5) per week; raised when the Poisson upper tail
                       P(X ≥ x | λ) < 0.001 and x ≥ 5
hotspot                Getis-Ord Gi* over every grid's count of cases reported in the last 7 days,
                       binary queen-contiguity weights with the grid itself included (neighbours:
                       grids within 1e-6° of each other, computed in PostGIS); raised at the local
                       peak of grids with z > 2.58 (99 %) whose neighbourhood holds ≥ 5 cases and
                       that were not hot over the 8 weeks before (z ≤ 2.58 then): an *emerging* hotspot
repeat_place           ≥ 3 cases within 100 m of one another in 30 days (ST_ClusterDBSCAN, eps 100 m,
                       minpoints 3, in an azimuthal equidistant projection centred on Gansu)
repeat_party           ≥ 3 cases from the same reporter phone in 30 days (phone shown masked)
silent_grid            a grid with check-ins before but none in the last 3 full days (grids that never
                       checked in are a coverage gap, not silence, and are not raised)
hazard_overdue         open hazard past its rectification deadline
department_returns     a department that returned ≥ 3 cases in 30 days (``return`` events in case_event)
=====================  =======================================================================

Re-running never duplicates: a live alert (``resolved_at IS NULL``) is unique per ``dedup_key``;
a run updates the figures of alerts whose condition still holds and resolves those whose
condition no longer does. Acknowledging is separate from resolving.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from gridwatch.db import execute, transaction
from gridwatch.kpi import LOCAL_TZ, RETURN_ACTIONS, UnknownRegion

__all__ = [
    "Rule", "RULES", "RULE_NAMES", "DEFAULTS", "AlertNotFound", "poisson_sf", "fmt_value", "explain",
    "refresh_neighbours", "run_rules", "list_alerts", "acknowledge", "ALERT_LOCK",
]

ALERT_LOCK = 620_000_007  # advisory lock: two runs never interleave

# Azimuthal equidistant projection centred on Gansu: distances within the province are true to < 0.5 %.
GANSU_AEQD = "+proj=aeqd +lat_0=37.5 +lon_0=101.5 +datum=WGS84 +units=m +no_defs"

DEFAULTS: dict[str, float | int] = {
    "near_share": 0.25,          # deadline_near: share of the time limit left
    "spike_days": 7,             # spike / hotspot: the recent window
    "baseline_weeks": 8,         # spike / hotspot: the baseline before it
    "spike_p": 0.001,            # spike: Poisson upper-tail threshold
    "spike_min": 5,              # spike: at least this many cases in the recent window
    "spike_floor": 0.5,          # spike: baseline rate floor (cases per week)
    "hotspot_z": 2.58,           # hotspot: Gi* z threshold (99 %)
    "hotspot_min": 5,            # hotspot: cases in the neighbourhood in the recent window
    "repeat_days": 30,           # repeat place / party / department returns window
    "repeat_radius_m": 100,
    "repeat_min": 3,
    "silent_days": 3,
    "returns_min": 3,
}


class AlertNotFound(LookupError):
    """No alert with that id."""


# -- numbers and texts -----------------------------------------------------------------------------

def fmt_value(v) -> str:
    """How a figure is written in an explanation (and must appear there).

    >>> fmt_value(21), fmt_value(2.5), fmt_value(3.0), fmt_value(0.001), fmt_value(0.000172), fmt_value(None)
    ('21', '2.5', '3', '0.001', '1.72e-04', '—')
    """
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:d}"
    if v != 0 and abs(v) < 0.01:   # thresholds such as 0.001 as written; tiny p-values in scientific notation
        short = f"{v:.4f}".rstrip("0").rstrip(".")
        return short if float(short) == v else f"{v:.2e}"
    return f"{v:.2f}".rstrip("0").rstrip(".")


def poisson_sf(x: int, lam: float) -> float:
    """P(X ≥ x) for X ~ Poisson(lam), summed in log space (exact enough for p down to 1e-300).

    >>> round(poisson_sf(5, 0.5), 7)
    0.0001721
    """
    if x <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    if x <= lam:  # the tail is large: 1 − P(X < x)
        term = math.exp(-lam)
        below = term
        for k in range(1, x):
            term *= lam / k
            below += term
        return max(0.0, 1.0 - below)
    term = math.exp(-lam + x * math.log(lam) - math.lgamma(x + 1))
    total, k = 0.0, x
    while term > 1e-17 * max(total, 1e-300):
        total += term
        k += 1
        term *= lam / k
    return min(1.0, total)


TEMPLATES: dict[str, tuple[str, str]] = {
    "deadline_near": (
        "案件{ref}「{title}」距办理期限仅剩 {hours_left} 小时（时限 {limit_hours} 小时，剩余 {share_left_pct}%，"
        "预警线 {threshold_pct}%）。",
        "Case {ref} “{title}” has {hours_left} h left before its deadline (time limit {limit_hours} h, "
        "{share_left_pct}% left; warning at {threshold_pct}%).",
    ),
    "deadline_past": (
        "案件{ref}「{title}」已超过办理期限 {hours_overdue} 小时（时限 {limit_hours} 小时），仍未办结。",
        "Case {ref} “{title}” is {hours_overdue} h past its deadline (time limit {limit_hours} h) and still open.",
    ),
    "red_case": (
        "红色等级案件{ref}「{title}」尚未办结，受理至今 {hours_open} 小时。",
        "Red-grade case {ref} “{title}” is still open, {hours_open} h after it was reported.",
    ),
    "red_hazard": (
        "红色等级隐患「{title}」尚未销号，登记至今 {days_open} 天。",
        "Red-grade hazard “{title}” is not closed out, {days_open} days after it was registered.",
    ),
    "spike": (
        "{region}「{category}」近 {window_days} 天 {count} 件，本地区此前 {baseline_weeks} 周共 {baseline_count} 件"
        "（基线每周 {baseline_weekly} 件）。泊松上尾检验 P(X≥{count}) = {p_value}，低于阈值 {p_threshold}，"
        "且不少于 {min_count} 件：异常增多。",
        "{region}: {count} “{category}” cases in the last {window_days} days against {baseline_count} in the "
        "{baseline_weeks} weeks before (baseline {baseline_weekly} a week). Poisson upper tail P(X≥{count}) = "
        "{p_value}, below the threshold {p_threshold}, with at least {min_count} cases: a spike.",
    ),
    "hotspot": (
        "以{grid}为中心的 {hot_grids} 个相邻网格形成新出现的热点：近 {window_days} 天邻域共 {cases} 件，"
        "Getis-Ord Gi* z = {z}，高于 {z_threshold}（99% 置信）；此前 {baseline_weeks} 周 z = {baseline_z}。",
        "An emerging hotspot of {hot_grids} adjacent grids centred on {grid}: {cases} cases in its neighbourhood "
        "in the last {window_days} days, Getis-Ord Gi* z = {z}, above {z_threshold} (99% confidence); "
        "over the {baseline_weeks} weeks before, z = {baseline_z}.",
    ),
    "repeat_place": (
        "{grid}同一地点（{radius_m} 米范围内）{days} 天内发生 {cases} 件案件（预警线 {min_cases} 件）。",
        "{cases} cases within {radius_m} m of one another in {grid} in {days} days (warning at {min_cases}).",
    ),
    "repeat_party": (
        "同一报告人（{phone}）{days} 天内反映 {cases} 件（预警线 {min_cases} 件），可能为重复诉求。",
        "The same reporter ({phone}) raised {cases} cases in {days} days (warning at {min_cases}): a repeat party.",
    ),
    "silent_grid": (
        "{grid}已连续 {days_silent} 天无网格员签到或报平安（预警线 {threshold_days} 天），最后一次为 {last_day}。",
        "{grid} has had no check-in or all-clear for {days_silent} full days (warning at {threshold_days}); "
        "the last was on {last_day}.",
    ),
    "hazard_overdue": (
        "隐患「{title}」已超过整改期限 {days_overdue} 天仍未销号。",
        "Hazard “{title}” is {days_overdue} days past its rectification deadline and not closed out.",
    ),
    "department_returns": (
        "{department}近 {days} 天退回案件 {returns} 次，涉及 {cases} 件（预警线 {min_returns} 次）。",
        "{department} returned cases {returns} times in {days} days, {cases} cases in all (warning at {min_returns}).",
    ),
}


def explain(rule: str, numbers: dict, labels: dict) -> tuple[str, str]:
    """The (Chinese, English) explanation of a finding; labels may hold ``{"zh": …, "en": …}`` pairs."""
    zh_t, en_t = TEMPLATES[rule]
    figures = {k: fmt_value(v) for k, v in numbers.items()}

    def pick(lang):
        return {k: (v.get(lang) or v.get("zh") if isinstance(v, dict) else v) for k, v in labels.items()}

    return zh_t.format(**figures, **pick("zh")), en_t.format(**figures, **pick("en"))


# -- rules -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    name: str
    title_zh: str
    title_en: str
    method: str
    find: Callable[..., list[dict]] = field(repr=False)


_q = execute   # dict rows whatever the connection's row factory (gridwatch.db.execute, the one helper)


# Constant SQL fragments composed with psycopg.sql (never values: those are always parameters).
_FRAGMENTS = {
    "counted": sql.SQL("c.duplicate_of IS NULL AND c.state <> 'rejected'"),
    "open": sql.SQL("case_is_open(c.state)"),
    "case_region": sql.SQL("COALESCE(c.grid_code, c.village_code, c.township_code, c.county_code, c.prefecture_code, %(province)s)"),
}


def _sql(text: str) -> sql.Composed:
    """A query whose ``{counted}``, ``{open}`` and ``{case_region}`` name the fragments above."""
    return sql.SQL(text).format(**{k: v for k, v in _FRAGMENTS.items() if "{" + k + "}" in text})


def _finding(rule: str, key: str, region: str, severity: str, numbers: dict, labels: dict, subject: dict,
             geom_hex: str | None) -> dict:
    zh, en = explain(rule, numbers, labels)
    return {"rule": rule, "dedup_key": key, "region_code": region, "severity": severity, "numbers": numbers,
            "subject": subject, "explanation_zh": zh, "explanation_en": en, "geom": geom_hex}


def _case_ref(r) -> str:
    return r["ref"] or f"#{r['id']}"


def find_deadlines(conn, now: datetime, p: dict) -> list[dict]:
    rows = _q(conn, _sql("""
        SELECT c.id, c.ref, c.title, c.grade, {case_region} AS region,
               extract(epoch FROM c.deadline - %(now)s) / 3600 AS hours_left,
               extract(epoch FROM c.deadline - c.reported_at) / 3600 AS limit_hours,
               encode(ST_AsEWKB(c.geom), 'hex') AS geom
        FROM cases c
        WHERE {open} AND c.duplicate_of IS NULL AND c.deadline IS NOT NULL AND c.deadline > c.reported_at
          AND (c.deadline <= %(now)s OR c.deadline - %(now)s <= (c.deadline - c.reported_at) * %(share)s)
    """), {"now": now, "share": p["near_share"], "province": p["province"]}).fetchall()
    out = []
    for r in rows:
        subject = {"case_id": r["id"], "ref": r["ref"], "title": r["title"]}
        labels = {"ref": _case_ref(r), "title": r["title"]}
        limit_h = round(float(r["limit_hours"]), 1)
        if r["hours_left"] <= 0:
            numbers = {"hours_overdue": round(-float(r["hours_left"]), 1), "limit_hours": limit_h}
            sev = "red" if r["grade"] == "red" else "orange"
            out.append(_finding("deadline_past", f"deadline_past:{r['id']}", r["region"], sev, numbers, labels, subject, r["geom"]))
        else:
            numbers = {"hours_left": round(float(r["hours_left"]), 1), "limit_hours": limit_h,
                       "share_left_pct": round(100 * float(r["hours_left"]) / float(r["limit_hours"]), 1),
                       "threshold_pct": round(100 * p["near_share"], 1)}
            sev = "orange" if r["grade"] == "red" else "yellow"
            out.append(_finding("deadline_near", f"deadline_near:{r['id']}", r["region"], sev, numbers, labels, subject, r["geom"]))
    return out


def find_red(conn, now: datetime, p: dict) -> list[dict]:
    out = []
    for r in _q(conn, _sql("""
        SELECT c.id, c.ref, c.title, {case_region} AS region, extract(epoch FROM %(now)s - c.reported_at) / 3600 AS hours,
               encode(ST_AsEWKB(c.geom), 'hex') AS geom
        FROM cases c WHERE c.grade = 'red' AND {open} AND c.duplicate_of IS NULL AND c.reported_at <= %(now)s
    """), {"now": now, "province": p["province"]}).fetchall():
        out.append(_finding("red_case", f"red_case:{r['id']}", r["region"], "red",
                            {"hours_open": round(float(r["hours"]), 1)}, {"ref": _case_ref(r), "title": r["title"]},
                            {"case_id": r["id"], "ref": r["ref"], "title": r["title"]}, r["geom"]))
    for r in _q(conn, _sql("""
        SELECT c.id, c.title, c.kind, {case_region} AS region, extract(epoch FROM %(now)s - c.reported_at) / 86400 AS days,
               encode(ST_AsEWKB(c.geom), 'hex') AS geom
        FROM hazard c WHERE c.grade = 'red' AND hazard_is_open(c.state) AND c.reported_at <= %(now)s
    """), {"now": now, "province": p["province"]}).fetchall():
        out.append(_finding("red_hazard", f"red_hazard:{r['id']}", r["region"], "red",
                            {"days_open": round(float(r["days"]), 1)}, {"title": r["title"]},
                            {"hazard_id": r["id"], "title": r["title"], "kind": r["kind"]}, r["geom"]))
    return out


def find_hazards_overdue(conn, now: datetime, p: dict) -> list[dict]:
    out = []
    for r in _q(conn, _sql("""
        SELECT c.id, c.title, c.kind, c.grade, {case_region} AS region,
               extract(epoch FROM %(now)s - c.deadline) / 86400 AS days, encode(ST_AsEWKB(c.geom), 'hex') AS geom
        FROM hazard c WHERE hazard_is_overdue(c.state, c.deadline, %(now)s)
    """), {"now": now, "province": p["province"]}).fetchall():
        sev = "red" if r["grade"] == "red" else "orange"
        out.append(_finding("hazard_overdue", f"hazard_overdue:{r['id']}", r["region"], sev,
                            {"days_overdue": round(float(r["days"]), 1)}, {"title": r["title"]},
                            {"hazard_id": r["id"], "title": r["title"], "kind": r["kind"]}, r["geom"]))
    return out


def find_spikes(conn, now: datetime, p: dict) -> list[dict]:
    recent_from = now - timedelta(days=p["spike_days"])
    base_from = recent_from - timedelta(weeks=p["baseline_weeks"])
    rows = _q(conn, _sql("""
        WITH agg AS (
            SELECT COALESCE(c.county_code, c.prefecture_code) AS unit, c.category_code,
                   count(*) FILTER (WHERE c.reported_at > %(recent_from)s) AS x,
                   count(*) FILTER (WHERE c.reported_at <= %(recent_from)s) AS base
            FROM cases c
            WHERE {counted} AND c.reported_at > %(base_from)s AND c.reported_at <= %(now)s
              AND COALESCE(c.county_code, c.prefecture_code) IS NOT NULL
            GROUP BY 1, 2
        )
        SELECT agg.*, r.name, r.name_en, cat.name_zh AS cat_zh, cat.name_en AS cat_en,
               encode(ST_AsEWKB(r.label_point), 'hex') AS geom
        FROM agg JOIN region r ON r.code = agg.unit JOIN category cat ON cat.code = agg.category_code
        WHERE agg.x >= %(min)s
    """), {"now": now, "recent_from": recent_from, "base_from": base_from, "min": p["spike_min"]}).fetchall()
    out = []
    weeks = p["baseline_weeks"]
    for r in rows:  # candidate (unit, category) aggregates only, never case rows
        lam = max(r["base"] / weeks * p["spike_days"] / 7, p["spike_floor"])
        pv = poisson_sf(int(r["x"]), lam)
        if pv >= p["spike_p"]:
            continue
        numbers = {"count": int(r["x"]), "window_days": int(p["spike_days"]), "baseline_count": int(r["base"]),
                   "baseline_weeks": int(weeks), "baseline_weekly": round(r["base"] / weeks, 2),
                   "p_value": float(f"{pv:.2e}"), "p_threshold": p["spike_p"], "min_count": int(p["spike_min"])}
        labels = {"region": {"zh": r["name"], "en": r["name_en"] or r["name"]},
                  "category": {"zh": r["cat_zh"], "en": r["cat_en"]}}
        sev = "red" if pv < 1e-6 else "orange"
        out.append(_finding("spike", f"spike:{r['unit']}:{r['category_code']}", r["unit"], sev, numbers, labels,
                            {"category": r["category_code"], "category_zh": r["cat_zh"], "category_en": r["cat_en"],
                             "region_code": r["unit"], "baseline_rate_per_window": round(lam, 3)}, r["geom"]))
    return out


def refresh_neighbours(conn, force: bool = False) -> dict:
    """(Re)compute queen-contiguity pairs of grids when the region table changed since last time.

    Pairs come from the subdivided grid pieces (``region_subdivided``) within 1e-6° of each other, so
    generated partitions with sub-metre slivers still count as neighbours. Returns the state row.
    """
    version = _q(conn, "SELECT version FROM data_version WHERE name = 'region'").fetchone()["version"]
    state = _q(conn, "SELECT * FROM grid_neighbour_state").fetchone()
    if state and state["region_version"] == version and not force:
        return dict(state)
    conn.execute("DELETE FROM grid_neighbour")
    conn.execute("""
        INSERT INTO grid_neighbour (code, neighbour)
        SELECT DISTINCT a.code, b.code
        FROM region_subdivided a JOIN region_subdivided b
          ON a.level = 'grid' AND b.level = 'grid' AND a.code <> b.code AND ST_DWithin(a.geom, b.geom, 1e-6)
    """)
    row = _q(conn, """
        INSERT INTO grid_neighbour_state (id, region_version, grids, pairs, computed_at)
        VALUES (true, %s, (SELECT count(*) FROM region WHERE level = 'grid'), (SELECT count(*) FROM grid_neighbour), now())
        ON CONFLICT (id) DO UPDATE SET region_version = EXCLUDED.region_version, grids = EXCLUDED.grids,
            pairs = EXCLUDED.pairs, computed_at = EXCLUDED.computed_at
        RETURNING *
    """, (version,)).fetchone()
    return dict(row)


def find_hotspots(conn, now: datetime, p: dict) -> list[dict]:
    refresh_neighbours(conn)
    recent_from = now - timedelta(days=p["spike_days"])
    base_from = recent_from - timedelta(weeks=p["baseline_weeks"])
    rows = _q(conn, _sql("""
        WITH g AS (SELECT code FROM region WHERE level = 'grid'),
        cnt AS (
            SELECT c.grid_code AS code,
                   count(*) FILTER (WHERE c.reported_at > %(recent_from)s) AS x_now,
                   count(*) FILTER (WHERE c.reported_at <= %(recent_from)s) AS x_base
            FROM cases c
            WHERE {counted} AND c.grid_code IS NOT NULL AND c.reported_at > %(base_from)s AND c.reported_at <= %(now)s
            GROUP BY 1
        ),
        x AS (SELECT g.code, COALESCE(cnt.x_now, 0)::float8 AS x_now, COALESCE(cnt.x_base, 0)::float8 AS x_base
              FROM g LEFT JOIN cnt USING (code)),
        s AS (SELECT count(*)::float8 AS n, avg(x_now) AS m_now, stddev_pop(x_now) AS sd_now,
                     avg(x_base) AS m_base, stddev_pop(x_base) AS sd_base FROM x),
        nb AS (SELECT code, neighbour FROM grid_neighbour UNION ALL SELECT code, code FROM g),
        w AS (
            SELECT nb.code, count(*)::float8 AS wi, sum(xn.x_now) AS lag_now, sum(xn.x_base) AS lag_base
            FROM nb JOIN x xn ON xn.code = nb.neighbour
            GROUP BY nb.code
        ),
        z AS (
            SELECT w.code, w.lag_now, w.wi,
                   (w.lag_now - s.m_now * w.wi) / NULLIF(s.sd_now * sqrt((s.n * w.wi - w.wi * w.wi) / NULLIF(s.n - 1, 0)), 0) AS z_now,
                   (w.lag_base - s.m_base * w.wi) / NULLIF(s.sd_base * sqrt((s.n * w.wi - w.wi * w.wi) / NULLIF(s.n - 1, 0)), 0) AS z_base
            FROM w, s
        ),
        hot AS (
            SELECT * FROM z
            WHERE z_now > %(zt)s AND lag_now >= %(min)s AND (z_base IS NULL OR z_base <= %(zt)s)
        ),
        peak AS (  -- local maxima among hot grids: one alert per cluster
            SELECT h.* FROM hot h
            WHERE NOT EXISTS (
                SELECT 1 FROM grid_neighbour gn JOIN hot o ON o.code = gn.neighbour
                WHERE gn.code = h.code AND (o.z_now > h.z_now OR (o.z_now = h.z_now AND o.code < h.code))
            )
        )
        SELECT peak.code, peak.z_now, peak.z_base, peak.lag_now::int AS cases, r.name, r.name_en,
               array_agg(o.code ORDER BY o.code) AS hot_codes,
               encode(ST_AsEWKB(ST_Multi(ST_Union(rg.geom))), 'hex') AS geom
        FROM peak
        JOIN region r ON r.code = peak.code
        JOIN hot o ON o.code = peak.code OR EXISTS (SELECT 1 FROM grid_neighbour gn WHERE gn.code = peak.code AND gn.neighbour = o.code)
        JOIN region rg ON rg.code = o.code
        GROUP BY peak.code, peak.z_now, peak.z_base, peak.lag_now, r.name, r.name_en
    """), {"now": now, "recent_from": recent_from, "base_from": base_from, "zt": p["hotspot_z"],
          "min": p["hotspot_min"]}).fetchall()
    out = []
    for r in rows:
        numbers = {"hot_grids": len(r["hot_codes"]), "cases": int(r["cases"]), "window_days": int(p["spike_days"]),
                   "z": round(float(r["z_now"]), 2), "z_threshold": p["hotspot_z"],
                   "baseline_weeks": int(p["baseline_weeks"]),
                   "baseline_z": None if r["z_base"] is None else round(float(r["z_base"]), 2)}
        labels = {"grid": {"zh": r["name"], "en": r["name_en"] or r["name"]}}
        out.append(_finding("hotspot", f"hotspot:{r['code']}", r["code"], "orange", numbers, labels,
                            {"grid_code": r["code"], "grid_name": r["name"], "grid_codes": r["hot_codes"]}, r["geom"]))
    return out


def find_repeat_places(conn, now: datetime, p: dict) -> list[dict]:
    rows = _q(conn, _sql("""
        WITH recent AS (
            SELECT c.id, c.geom, c.grid_code,
                   ST_ClusterDBSCAN(ST_Transform(c.geom, %(proj)s::text), eps := %(eps)s, minpoints := %(min)s) OVER () AS cid
            FROM cases c
            WHERE {counted} AND c.reported_at > %(from)s AND c.reported_at <= %(now)s
        ), clusters AS (
            SELECT cid, count(*) AS cases, array_agg(id ORDER BY id) AS ids, min(id) AS first_id,
                   mode() WITHIN GROUP (ORDER BY grid_code) AS grid, ST_Centroid(ST_Collect(geom)) AS centre
            FROM recent WHERE cid IS NOT NULL GROUP BY cid
        )
        SELECT k.*, COALESCE(k.grid, %(province)s) AS region, r.name, r.name_en, encode(ST_AsEWKB(k.centre), 'hex') AS geom
        FROM clusters k LEFT JOIN region r ON r.code = k.grid
    """), {"proj": GANSU_AEQD, "eps": float(p["repeat_radius_m"]), "min": int(p["repeat_min"]), "now": now,
          "from": now - timedelta(days=p["repeat_days"]), "province": p["province"]}).fetchall()
    out = []
    for r in rows:
        numbers = {"cases": int(r["cases"]), "radius_m": int(p["repeat_radius_m"]), "days": int(p["repeat_days"]),
                   "min_cases": int(p["repeat_min"])}
        labels = {"grid": {"zh": r["name"] or "", "en": r["name_en"] or r["name"] or ""}}
        out.append(_finding("repeat_place", f"repeat_place:{r['first_id']}", r["region"], "yellow", numbers, labels,
                            {"case_ids": r["ids"], "grid_code": r["grid"]}, r["geom"]))
    return out


def find_repeat_parties(conn, now: datetime, p: dict) -> list[dict]:
    rows = _q(conn, _sql("""
        SELECT md5(c.reporter_phone) AS who,
               CASE WHEN length(c.reporter_phone) >= 7
                    THEN left(c.reporter_phone, 3) || '****' || right(c.reporter_phone, 4) ELSE '****' END AS phone,
               count(*) AS cases, array_agg(c.id ORDER BY c.reported_at, c.id) AS ids,
               (array_agg({case_region} ORDER BY c.reported_at DESC, c.id DESC))[1] AS region,
               (array_agg(encode(ST_AsEWKB(c.geom), 'hex') ORDER BY c.reported_at DESC, c.id DESC))[1] AS geom
        FROM cases c
        WHERE c.reporter_phone IS NOT NULL AND c.reporter_phone <> '' AND c.duplicate_of IS NULL
          AND c.reported_at > %(from)s AND c.reported_at <= %(now)s
        GROUP BY c.reporter_phone
        HAVING count(*) >= %(min)s
    """), {"now": now, "from": now - timedelta(days=p["repeat_days"]), "min": int(p["repeat_min"]),
          "province": p["province"]}).fetchall()
    return [
        _finding("repeat_party", f"repeat_party:{r['who']}", r["region"], "yellow",
                 {"cases": int(r["cases"]), "days": int(p["repeat_days"]), "min_cases": int(p["repeat_min"])},
                 {"phone": r["phone"]}, {"case_ids": r["ids"], "phone_masked": r["phone"]}, r["geom"])
        for r in rows
    ]


def find_silent_grids(conn, now: datetime, p: dict) -> list[dict]:
    today = now.astimezone(ZoneInfo(LOCAL_TZ)).date()
    rows = _q(conn, """
        SELECT g.code, g.name, g.name_en, last.day AS last_day, (%(today)s::date - last.day - 1) AS days_silent,
               encode(ST_AsEWKB(g.label_point), 'hex') AS geom
        FROM region g
        CROSS JOIN LATERAL (SELECT k.day FROM checkin k WHERE k.grid_code = g.code AND k.day <= %(today)s
                            ORDER BY k.day DESC LIMIT 1) last
        WHERE g.level = 'grid' AND last.day < %(today)s::date - %(n)s::int
    """, {"today": today, "n": int(p["silent_days"])}).fetchall()
    out = []
    for r in rows:
        numbers = {"days_silent": int(r["days_silent"]), "threshold_days": int(p["silent_days"])}
        sev = "orange" if r["days_silent"] >= 7 else "yellow"
        labels = {"grid": {"zh": r["name"], "en": r["name_en"] or r["name"]}, "last_day": r["last_day"].isoformat()}
        out.append(_finding("silent_grid", f"silent_grid:{r['code']}", r["code"], sev, numbers, labels,
                            {"grid_code": r["code"], "grid_name": r["name"], "last_checkin": r["last_day"].isoformat()},
                            r["geom"]))
    return out


def find_department_returns(conn, now: datetime, p: dict) -> list[dict]:
    rows = _q(conn, """
        SELECT d.id, d.name, d.region_code, count(*) AS returns, count(DISTINCT e.case_id) AS cases,
               array_agg(DISTINCT e.case_id) AS case_ids, encode(ST_AsEWKB(r.label_point), 'hex') AS geom
        FROM case_event e JOIN department d ON d.id = e.department_id JOIN region r ON r.code = d.region_code
        WHERE e.action = ANY(%(actions)s) AND e.at > %(from)s AND e.at <= %(now)s
        GROUP BY d.id, d.name, d.region_code, r.label_point
        HAVING count(*) >= %(min)s
    """, {"actions": list(RETURN_ACTIONS), "now": now, "from": now - timedelta(days=p["repeat_days"]),
          "min": int(p["returns_min"])}).fetchall()
    return [
        _finding("department_returns", f"department_returns:{r['id']}", r["region_code"], "orange",
                 {"returns": int(r["returns"]), "cases": int(r["cases"]), "days": int(p["repeat_days"]),
                  "min_returns": int(p["returns_min"])},
                 {"department": r["name"]}, {"department_id": r["id"], "department": r["name"], "case_ids": r["case_ids"]},
                 r["geom"])
        for r in rows
    ]


RULES: tuple[Rule, ...] = (
    Rule("deadline", "临期/超期案件", "Cases near or past their deadline",
         "open case with ≤ 25% of its time limit left (deadline_near) or past its deadline (deadline_past)", find_deadlines),
    Rule("red", "红色等级案件与隐患", "Red-grade cases and hazards", "open case or hazard graded red", find_red),
    Rule("spike", "类别异常增多", "Spike of a category in a region",
         "Poisson upper tail of the last 7 days vs the county's own 8-week baseline, p < 0.001 and ≥ 5 cases", find_spikes),
    Rule("hotspot", "新出现的热点网格", "Emerging hotspot of grids",
         "Getis-Ord Gi* on grid counts of the last 7 days, queen contiguity, z > 2.58 (99%), ≥ 5 cases, "
         "not hot in the 8 weeks before", find_hotspots),
    Rule("repeat_place", "重复发生地点", "Repeat place", "≥ 3 cases within 100 m in 30 days (DBSCAN)", find_repeat_places),
    Rule("repeat_party", "重复诉求人", "Repeat party", "≥ 3 cases from the same reporter phone in 30 days", find_repeat_parties),
    Rule("silent_grid", "静默网格", "Silent grid", "a grid that checked in before but not in the last 3 full days",
         find_silent_grids),
    Rule("hazard_overdue", "隐患逾期未整改", "Hazard past its rectification deadline",
         "open hazard past its rectification deadline", find_hazards_overdue),
    Rule("department_returns", "部门频繁退回", "Department that keeps returning cases",
         "≥ 3 returns by one department in 30 days", find_department_returns),
)

# rule group → the alert.rule values it raises
RULE_NAMES: dict[str, tuple[str, ...]] = {
    "deadline": ("deadline_near", "deadline_past"),
    "red": ("red_case", "red_hazard"),
    **{r.name: (r.name,) for r in RULES if r.name not in ("deadline", "red")},
}
ALERT_RULES: tuple[str, ...] = tuple(n for names in RULE_NAMES.values() for n in names)


def _now(now):
    if now is None:
        return datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise ValueError(f"now={now!r} has no time zone; pass an aware datetime")
    return now


def run_rules(conn: psycopg.Connection, now: datetime | None = None, rules: list[str] | None = None,
              params: dict | None = None) -> dict:
    """Run the rules (all, or the named groups) in ONE transaction; returns per alert rule
    ``{found, raised, updated, resolved}``. Unknown rule names are refused before anything is written.
    """
    now = _now(now)
    wanted = list(RULE_NAMES) if rules is None else list(rules)
    unknown = [r for r in wanted if r not in RULE_NAMES]
    if unknown:
        raise ValueError(f"rule {unknown[0]!r} is not known; choose from {', '.join(RULE_NAMES)}")
    p = {**DEFAULTS, **(params or {})}
    bad = [k for k in (params or {}) if k not in DEFAULTS]
    if bad:
        raise ValueError(f"parameter {bad[0]!r} is not known; choose from {', '.join(DEFAULTS)}")
    summary: dict[str, dict] = {}
    with transaction(conn):
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (ALERT_LOCK,))
        prov = _q(conn, "SELECT code FROM region WHERE level = 'province' ORDER BY code LIMIT 1").fetchone()
        if prov is None:
            return {name: {"found": 0, "raised": 0, "updated": 0, "resolved": 0} for g in wanted for name in RULE_NAMES[g]}
        p["province"] = prov["code"]
        conn.execute("""CREATE TEMP TABLE IF NOT EXISTS alert_in (
            rule text, dedup_key text, region_code text, severity text, numbers jsonb, subject jsonb,
            explanation_zh text, explanation_en text, geom text) ON COMMIT DROP""")
        for group in wanted:
            rule = next(r for r in RULES if r.name == group)
            findings = rule.find(conn, now, p)
            conn.execute("TRUNCATE alert_in")
            with conn.cursor().copy("COPY alert_in FROM STDIN") as cp:
                for f in findings:
                    cp.write_row((f["rule"], f["dedup_key"], f["region_code"], f["severity"],
                                  json.dumps(f["numbers"], ensure_ascii=False), json.dumps(f["subject"], ensure_ascii=False),
                                  f["explanation_zh"], f["explanation_en"], f["geom"]))
            counts = _q(conn, """
                WITH up AS (
                    INSERT INTO alert (rule, dedup_key, region_code, severity, numbers, subject, explanation_zh,
                                       explanation_en, geom, raised_at, last_seen_at)
                    SELECT rule, dedup_key, region_code, severity, numbers, subject, explanation_zh, explanation_en,
                           geom::geometry, %(now)s, %(now)s
                    FROM alert_in
                    ON CONFLICT (dedup_key) WHERE resolved_at IS NULL DO UPDATE SET
                        severity = EXCLUDED.severity, numbers = EXCLUDED.numbers, subject = EXCLUDED.subject,
                        explanation_zh = EXCLUDED.explanation_zh, explanation_en = EXCLUDED.explanation_en,
                        geom = EXCLUDED.geom, region_code = EXCLUDED.region_code, last_seen_at = EXCLUDED.last_seen_at
                    RETURNING rule, (xmax = 0) AS inserted
                )
                SELECT rule, count(*) FILTER (WHERE inserted) AS raised, count(*) FILTER (WHERE NOT inserted) AS updated
                FROM up GROUP BY rule
            """, {"now": now}).fetchall()
            resolved = _q(conn, """
                UPDATE alert a SET resolved_at = %(now)s
                WHERE a.rule = ANY(%(rules)s) AND a.resolved_at IS NULL
                  AND NOT EXISTS (SELECT 1 FROM alert_in i WHERE i.dedup_key = a.dedup_key)
                RETURNING a.rule
            """, {"now": now, "rules": list(RULE_NAMES[group])}).fetchall()
            for name in RULE_NAMES[group]:
                c = next((c for c in counts if c["rule"] == name), {"raised": 0, "updated": 0})
                summary[name] = {"found": sum(1 for f in findings if f["rule"] == name), "raised": c["raised"],
                                 "updated": c["updated"], "resolved": sum(1 for r in resolved if r["rule"] == name)}
    return summary


_ALERT_COLUMNS = """
    a.id, a.rule, a.region_code, r.name AS region_name, r.name_en AS region_name_en, a.subject,
    a.explanation_zh, a.explanation_en, a.numbers, a.severity, a.raised_at, a.last_seen_at, a.resolved_at,
    a.acknowledged_at, a.acknowledged_by, a.escalation_level, a.escalated_to,
    (SELECT e.name FROM region e WHERE e.code = a.escalated_to) AS escalated_to_name,
    ST_X(ST_PointOnSurface(a.geom)) AS lon, ST_Y(ST_PointOnSurface(a.geom)) AS lat
"""


def _iso(row: dict) -> dict:
    for k in ("raised_at", "last_seen_at", "resolved_at", "acknowledged_at", "escalated_at"):
        if row.get(k) is not None:
            row[k] = row[k].isoformat()
    return row


def list_alerts(conn: psycopg.Connection, region: str | None = None, rule: str | None = None,
                include_resolved: bool = False, acknowledged: bool | None = None, limit: int = 500) -> list[dict]:
    """Alerts in region ``region`` (its code and everything under it), newest and most severe first.

    ``rule`` filters by an alert rule (e.g. ``spike``) or a rule group (``deadline``, ``red``);
    ``acknowledged`` True/False filters by acknowledgement; resolved alerts only with ``include_resolved``.
    Times are ISO strings; ``lon``/``lat`` is a point on the alert's geometry (None without one).
    """
    conds = [sql.SQL("TRUE")]
    params: dict = {"limit": int(limit)}
    if region:
        if _q(conn, "SELECT 1 FROM region WHERE code = %s", (region,)).fetchone() is None:
            raise UnknownRegion(f"region code {region!r} is not in the region table; use e.g. '62' (甘肃省) or a prefecture code such as '6201'")
        conds.append(sql.SQL("a.region_code LIKE %(prefix)s"))
        params["prefix"] = region + "%"
    if rule:
        names = RULE_NAMES.get(rule) or ((rule,) if rule in ALERT_RULES else None)
        if names is None:
            raise ValueError(f"rule {rule!r} is not known; choose from {', '.join(ALERT_RULES)} or a group ({', '.join(RULE_NAMES)})")
        conds.append(sql.SQL("a.rule = ANY(%(rules)s)"))
        params["rules"] = list(names)
    if not include_resolved:
        conds.append(sql.SQL("a.resolved_at IS NULL"))
    if acknowledged is True:
        conds.append(sql.SQL("a.acknowledged_at IS NOT NULL"))
    elif acknowledged is False:
        conds.append(sql.SQL("a.acknowledged_at IS NULL"))
    query = sql.SQL("""
        SELECT {cols} FROM alert a JOIN region r ON r.code = a.region_code
        WHERE {where}
        ORDER BY (a.acknowledged_at IS NOT NULL), CASE a.severity WHEN 'red' THEN 0 WHEN 'orange' THEN 1 ELSE 2 END,
                 a.raised_at DESC, a.id DESC
        LIMIT %(limit)s
    """).format(cols=sql.SQL(_ALERT_COLUMNS), where=sql.SQL(" AND ").join(conds))
    return [_iso(dict(r)) for r in _q(conn, query, params).fetchall()]


def acknowledge(conn: psycopg.Connection, alert_id: int, by: str, now: datetime | None = None) -> dict:
    """Mark alert ``alert_id`` acknowledged by operator ``by``; acknowledging twice keeps the first."""
    by = (by or "").strip()
    if not by:
        raise ValueError("acknowledged_by is empty; give the operator's name or id (e.g. 'duty-officer-1')")
    if len(by) > 100:
        raise ValueError(f"acknowledged_by is {len(by)} characters long; keep it to 100 or fewer")
    at = _now(now)
    with transaction(conn):
        row = _q(conn, """
            UPDATE alert SET acknowledged_at = COALESCE(acknowledged_at, %(now)s),
                             acknowledged_by = COALESCE(acknowledged_by, %(by)s)
            WHERE id = %(id)s RETURNING id, acknowledged_at = %(now)s AND acknowledged_by = %(by)s AS first
        """, {"id": alert_id, "by": by, "now": at}).fetchone()
        if row is None:
            raise AlertNotFound(f"alert id {alert_id} does not exist; list alerts with GET /api/v1/alerts")
        if row["first"]:    # the alert's trail (gridwatch.triage): who took it, when
            conn.execute("INSERT INTO alert_event (alert_id, at, actor, action) VALUES (%s, %s, %s, 'acknowledge')",
                         (alert_id, at, by))
        out = _q(conn, sql.SQL("SELECT {cols} FROM alert a JOIN region r ON r.code = a.region_code WHERE a.id = %s").format(
            cols=sql.SQL(_ALERT_COLUMNS)), (alert_id,)).fetchone()
    return _iso(dict(out))
