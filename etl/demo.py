"""Demo history: departments, twelve months of cases with consistent event trails, check-ins, hazards, three true stories.

  gridwatch etl demo [--cases N] [--months M] [--checkin-days D] [--seed S]

Needs the Gansu hierarchy (``gridwatch etl gansu``). One transaction, recorded in the ``etl_load``
ledger as 'demo': a second run does nothing. Fast because nothing is done row by row in Python:

- departments: one INSERT … SELECT per level (region × department kinds);
- cases: sampled with numpy (grids weighted by township kind — 街道 more than 镇 more than 乡;
  a weekly and daily rhythm; a category mix; grades), points generated inside their grids by
  PostGIS (``ST_GeneratePoints``, seeded); each case's lifecycle is a walk through
  ``gridwatch.cases.TRANSITIONS`` laid out as fixed slots (report, accept, escalate ×2, dispatch,
  return, re-dispatch, start, mediate, mediation result, extension request and approval, park,
  feedback, rework, feedback again, verify, visit) whose presence and delays are drawn per case;
  events later than now have not happened yet, so recent cases are open and some are overdue.
  Cases, events and mediations are loaded with COPY (one notification per table);
- check-ins and hazards: set-based SQL and numpy; hazard grades by the real rules;
- the seed's three stories (陈殿清, 常建新, 石全爱) go through the real intake and lifecycle
  functions, placed by name in 甘州区新墩镇, 山丹县清泉镇长城社区 and 陇西县菜子镇浅河村.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from gridwatch import cases as lifecycle
from gridwatch import config, hazards, intake
from gridwatch.casemix import MIX_RURAL, MIX_URBAN, TITLES, TOWNSHIP_WEIGHT
from gridwatch.db import database_url

__all__ = ["load_demo", "add_arguments", "run", "SLOTS", "DEPARTMENTS", "STORIES"]

LEDGER_NAME = "demo"
LOCK_KEY = 620_000_005
CHINA = timedelta(hours=8)
LEVELS = intake.LEVELS

# (level of the region, kind, name suffix): department.kind values match category.department_kind.
DEPARTMENTS = (
    ("county", "water", "水务局"), ("county", "power", "供电公司"), ("county", "police", "公安局"),
    ("county", "justice", "司法局"), ("county", "letters", "信访局"), ("county", "land", "自然资源局"),
    ("county", "environment", "生态环境分局"), ("county", "housing", "住建局"), ("county", "labour", "人社局"),
    ("county", "market", "市场监管局"), ("county", "urban", "城市管理局"), ("county", "emergency", "应急管理局"),
    ("county", "civil", "民政局"),
    ("township", "township_gov", "人民政府"), ("township", "justice", "司法所"), ("township", "police", "派出所"),
    ("township", "power", "供电所"), ("township", "water", "水利站"),
    ("village", "village_committee", "委员会"),
)

# The lifecycle as fixed slots: (action, to_state). Each case uses a subset, in this order.
SLOTS = (
    ("report", "reported"), ("reject", "rejected"), ("accept", "accepted"), ("escalate", "accepted"),
    ("escalate", "accepted"), ("dispatch", "dispatched"), ("return", "returned"), ("dispatch", "dispatched"),
    ("start", "in_progress"), ("mediate", "in_progress"), ("mediation_result", "in_progress"),
    ("request_extension", "in_progress"), ("approve_extension", "in_progress"), ("park", "parked"),
    ("feedback", "feedback"), ("rework", "in_progress"), ("feedback", "feedback"), ("verify", "closed"),
    ("visit", "closed"),
)
(S_REPORT, S_REJECT, S_ACCEPT, S_ESC1, S_ESC2, S_DISPATCH, S_RETURN, S_DISPATCH2, S_START, S_MEDIATE, S_MEDRESULT,
 S_REQEXT, S_APPEXT, S_PARK, S_FEEDBACK, S_REWORK, S_FEEDBACK2, S_VERIFY, S_VISIT) = range(len(SLOTS))

NOTES = {
    "reject": "不属于综治中心受理范围，已告知当事人依法向有关部门反映",
    "escalate": "超出本级处置能力，提请上级综治中心协调",
    "return": "不属本单位职责，退回综治中心重新派遣",
    "request_extension": "涉及多个部门协调，申请延期",
    "park": "历史遗留问题，政策待明确，暂时挂账",
    "feedback": "已按要求办理完毕",
    "rework": "网格员核查未通过，要求返工",
}
ACTORS = {
    "report": "网格员", "reject": "综治中心", "accept": "综治中心", "escalate": "综治中心", "dispatch": "综治中心",
    "return": "承办部门", "start": "承办部门", "mediate": "综治中心", "mediation_result": "综治中心",
    "request_extension": "承办部门", "approve_extension": "综治中心", "park": "综治中心", "feedback": "承办部门",
    "rework": "网格员", "verify": "网格员", "visit": "回访员",
}


# Demo rates (README "Demo rates"): what a working province shows, not a backlog.
PARK_SHARE = 0.012            # of accepted cases parked (挂账) …
PARK_DAYS = 45                # … among those reported in the last 45 days (older ones were resumed)
SUPERVISED_SHARE = 0.85       # of handlers heading past the time limit who are chased (督办) and finish in time
SILENT_PER_MILLE = 6          # grids (‰) whose worker has not checked in for their last 2–10 days
HAZARD_CLOSED_SHARE = 0.96    # hazards past their fix time that were closed out (销号)

# ---------------------------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cases", type=int, default=80_000, help="cases in the history (default %(default)s)")
    p.add_argument("--months", type=int, default=12, help="months of history (default %(default)s)")
    p.add_argument("--checkin-days", type=int, default=21, help="days of check-ins (default %(default)s)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default GRIDWATCH_SEED)")
    p.add_argument("--database-url", default=None, help="override DATABASE_URL / the embedded cluster")


def run(args: argparse.Namespace) -> int:
    with psycopg.connect(args.database_url or database_url()) as conn:
        stats = load_demo(conn, seed=args.seed, n_cases=args.cases, months=args.months,
                          checkin_days=args.checkin_days, progress=True)
    if not stats.get("unchanged"):
        print(f"demo history loaded in {stats['seconds']:.1f} s: " + ", ".join(f"{v:,} {k}" for k, v in stats["counts"].items()))
    return 0


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


# -------------------------------------------------------------------------------------------- main
def load_demo(conn: psycopg.Connection, *, seed: int | None = None, n_cases: int = 80_000, months: int = 12,
              checkin_days: int = 21, now: datetime | None = None, progress: bool = False) -> dict:
    """Load the demo history once (all or nothing); returns {"counts", "seconds", "timings", "stories", …}.

    ``conn`` is a normal (non-autocommit) dict-row or tuple-row connection; it is committed here.
    """

    started = time.perf_counter()
    seed = int(config.get("GRIDWATCH_SEED")) if seed is None else int(seed)
    conn.row_factory = dict_row
    with conn.transaction():
        done = conn.execute("SELECT stats FROM etl_load WHERE name = %s", (LEDGER_NAME,)).fetchone()
    if done:
        _say(progress, "demo history already loaded (etl_load 'demo'): nothing to do")
        return {**done["stats"], "unchanged": True}
    timings: dict[str, float] = {}
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        grids = conn.execute("SELECT count(*) AS n FROM region WHERE level = 'grid'").fetchone()["n"]
        if not grids:
            raise RuntimeError("no grids are loaded: run `gridwatch etl gansu` before `gridwatch etl demo`")
        now = now or conn.execute("SELECT now() AS t").fetchone()["t"]
        rng = np.random.default_rng(seed)
        t = time.perf_counter()
        n_departments = _departments(conn)
        timings["departments"] = time.perf_counter() - t
        t = time.perf_counter()
        case_counts = _cases(conn, rng, n_cases, months, now, seed, progress)
        timings["cases"] = time.perf_counter() - t
        t = time.perf_counter()
        n_checkins = _checkins(conn, checkin_days, now, seed)
        timings["checkins"] = time.perf_counter() - t
        t = time.perf_counter()
        n_hazards = _hazards(conn, rng, now, max(200, n_cases // 40))
        timings["hazards"] = time.perf_counter() - t
        t = time.perf_counter()
        stories = _stories(conn, now)
        timings["stories"] = time.perf_counter() - t
        counts = {"departments": n_departments, **case_counts, "checkins": n_checkins, "hazards": n_hazards}
        seconds = time.perf_counter() - started
        stats = {"counts": counts, "seed": seed, "months": months, "timings": {k: round(v, 2) for k, v in timings.items()},
                 "stories": stories, "seconds": round(seconds, 2)}
        conn.execute(
            """INSERT INTO etl_load (name, checksum, seed, stats, seconds) VALUES (%s, %s, %s, %s, %s)""",
            (LEDGER_NAME, f"cases={n_cases};months={months};checkin_days={checkin_days}", seed,
             json.dumps(stats, ensure_ascii=False, default=str), seconds))
    _say(progress, f"demo: {json.dumps(stats['timings'])}")
    return {**stats, "unchanged": False}


# ------------------------------------------------------------------------------------- departments
def _departments(conn: psycopg.Connection) -> int:
    """Departments for every county (and county-less prefecture), township and village, set-based."""
    kinds = [(lv, k, s) for lv, k, s in DEPARTMENTS]
    before = conn.execute("SELECT count(*) AS n FROM department").fetchone()["n"]
    conn.execute(
        """INSERT INTO department (name, kind, region_code)
           SELECT CASE WHEN d.kind = 'village_committee'
                       THEN r.name || CASE WHEN r.kind = '居委会' OR r.name LIKE '%%社区' THEN '居民' ELSE '村民' END || d.suffix
                       ELSE r.name || d.suffix END,
                  d.kind, r.code
           FROM unnest(%s::text[], %s::text[], %s::text[]) AS d(level, kind, suffix)
           JOIN region r ON r.level = d.level
                         OR (d.level = 'county' AND r.level = 'prefecture'
                             AND NOT EXISTS (SELECT 1 FROM region c WHERE c.parent_code = r.code AND c.level = 'county'))
           ON CONFLICT (region_code, kind, name) DO NOTHING""",
        ([k[0] for k in kinds], [k[1] for k in kinds], [k[2] for k in kinds]))
    return conn.execute("SELECT count(*) AS n FROM department").fetchone()["n"] - before


# ------------------------------------------------------------------------------------------- cases
def _grids(conn: psycopg.Connection) -> pd.DataFrame:
    rows = conn.execute(
        """SELECT g.code, l.village_code, l.township_code, l.county_code, l.prefecture_code, t.kind AS township_kind
           FROM region g CROSS JOIN LATERAL region_lineage(g.code) l LEFT JOIN region t ON t.code = l.township_code
           WHERE g.level = 'grid' ORDER BY g.code""").fetchall()
    return pd.DataFrame(rows)


def _points(conn: psycopg.Connection, codes: np.ndarray, counts: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``counts[i]`` random points inside grid ``codes[i]`` (PostGIS, seeded), in the same grid order."""
    rows = conn.execute(
        """SELECT c.ord, ST_X(p.geom) AS x, ST_Y(p.geom) AS y
           FROM unnest(%s::text[], %s::int[]) WITH ORDINALITY AS c(code, n, ord)
           JOIN region r ON r.code = c.code
           CROSS JOIN LATERAL ST_Dump(ST_GeneratePoints(r.geom, c.n, %s + c.ord::int)) AS p
           ORDER BY c.ord""", (list(codes), [int(n) for n in counts], seed % 1_000_000)).fetchall()
    got = np.array([r["ord"] for r in rows]) - 1
    x = np.array([r["x"] for r in rows])
    y = np.array([r["y"] for r in rows])
    if len(x) != int(counts.sum()):
        raise RuntimeError(f"PostGIS generated {len(x)} points for {int(counts.sum())} cases")
    order = np.argsort(got, kind="stable")
    return x[order], y[order]


def _cases(conn, rng: np.random.Generator, n: int, months: int, now: datetime, seed: int, progress: bool) -> dict:
    cats = intake.categories(conn)
    grids = _grids(conn)
    weights = grids["township_kind"].map(TOWNSHIP_WEIGHT).fillna(1.0).to_numpy()
    grid_idx = np.sort(rng.choice(len(grids), size=n, p=weights / weights.sum()))
    uniq, counts = np.unique(grid_idx, return_counts=True)
    x, y = _points(conn, grids["code"].to_numpy()[uniq], counts, seed)
    g = grids.iloc[grid_idx].reset_index(drop=True)
    urban = (g["township_kind"] == "街道").to_numpy()

    # when: a weekly rhythm (fewer on weekends), a daily one (office hours), a gentle upward trend
    days = int(round(months * 30.44))
    start_local = (now + CHINA).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    day_index = np.arange(days)
    weekday = np.array([(start_local + timedelta(days=int(d))).weekday() for d in day_index])
    day_w = np.where(weekday == 5, 0.7, np.where(weekday == 6, 0.6, 1.0)) * (0.85 + 0.3 * day_index / days)
    hour_w = np.array([0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 1.2, 2.5, 3.5, 3.6, 3.0, 1.8, 1.8, 3.0, 3.4, 3.2, 2.6, 1.6,
                       1.2, 1.0, 0.8, 0.6, 0.4])
    day = rng.choice(days, n, p=day_w / day_w.sum())
    hour = rng.choice(24, n, p=hour_w / hour_w.sum())
    local_s = day * 86400.0 + hour * 3600.0 + rng.uniform(0, 3600, n)
    base = (start_local - CHINA).timestamp()
    now_s = now.timestamp()
    reported = base + local_s
    late = reported > now_s - 60
    reported[late] = now_s - rng.uniform(60, 6 * 3600, late.sum())

    # what: category mix, grade, channel
    codes = list(cats)
    mix_r = np.array([MIX_RURAL.get(c, 1.0) for c in codes])
    mix_u = np.array([MIX_URBAN.get(c, 1.0) for c in codes])
    cat_i = np.where(urban, rng.choice(len(codes), n, p=mix_u / mix_u.sum()), rng.choice(len(codes), n, p=mix_r / mix_r.sum()))
    cat_code = np.array(codes)[cat_i]
    family = np.array([cats[c]["family"] for c in codes])[cat_i]
    limit_h = np.array([cats[c]["time_limit_hours"] for c in codes], dtype=float)[cat_i]
    dept_kind = np.array([cats[c]["department_kind"] for c in codes])[cat_i]
    default_grade = np.array([cats[c]["default_grade"] for c in codes])[cat_i]
    roll = rng.random(n)
    grade = np.where(roll < 0.04, "red", np.where(roll < 0.16, np.where(default_grade == "red", "red", "orange"), default_grade))
    channel = rng.choice(["grid_worker", "window", "hotline", "online", "petition", "referral"], n,
                         p=[0.45, 0.2, 0.15, 0.12, 0.04, 0.04])

    # where handled: the grade's start level fitted to the codes the case has, then escalations
    has = np.stack([g["village_code"].notna().to_numpy(), g["township_code"].notna().to_numpy(),
                    g["county_code"].notna().to_numpy(), g["prefecture_code"].notna().to_numpy(), np.ones(n, bool)], axis=1)
    start = np.select([grade == "red", grade == "orange"], [2, 1], 0)
    level0 = _fit_up(start, has)
    rejected = rng.random(n) < 0.03
    e1 = ~rejected & (rng.random(n) < 0.06) & (level0 < 4)
    level1 = np.where(e1, _fit_up(level0 + 1, has), level0)
    e2 = e1 & (rng.random(n) < 0.2) & (level1 < 4)
    level2 = np.where(e2, _fit_up(level1 + 1, has), level1)

    # which slots each case has
    present = np.zeros((n, len(SLOTS)), bool)
    present[:, S_REPORT] = True
    present[:, S_REJECT] = rejected
    ok = ~rejected
    present[:, S_ACCEPT] = ok
    present[:, S_ESC1] = e1
    present[:, S_ESC2] = e2
    present[:, S_DISPATCH] = ok
    ret = ok & (rng.random(n) < 0.07)
    present[:, S_RETURN] = ret
    present[:, S_DISPATCH2] = ret
    present[:, S_START] = ok
    med = ok & (family == "dispute") & (rng.random(n) < 0.3)
    present[:, S_MEDIATE] = med
    present[:, S_MEDRESULT] = med
    ext = ok & (rng.random(n) < 0.06)
    present[:, S_REQEXT] = ext
    present[:, S_APPEXT] = ext
    # 挂账 (parked) cases: a working centre resumes them within weeks, so only recent ones are still
    # parked (older ones were resumed and finished); a year of parked cases left open was most of
    # the 1,215 overdue of 2,627 open the demo used to show (README: "Demo rates").
    park = ok & (rng.random(n) < PARK_SHARE) & (reported > now_s - PARK_DAYS * 86400.0)
    present[:, S_PARK] = park
    go = ok & ~park
    present[:, S_FEEDBACK] = go
    rework = go & (rng.random(n) < 0.05)
    present[:, S_REWORK] = rework
    present[:, S_FEEDBACK2] = rework
    present[:, S_VERIFY] = go
    present[:, S_VISIT] = go & (rng.random(n) < 0.6)

    # delays (hours) of each slot after the previous one
    exp = rng.exponential
    accept_mean = np.select([grade == "red", grade == "orange"], [0.3, 2.0], 8.0)
    handle = limit_h * np.exp(np.log(0.45) + 0.8 * rng.standard_normal(n))
    # supervision (督办): most handlers running late are chased and finish inside their time limit
    chased = (handle > 0.9 * limit_h) & (rng.random(n) < SUPERVISED_SHARE)
    handle = np.where(chased, limit_h * rng.uniform(0.5, 0.9, n), handle)
    delay = np.zeros((n, len(SLOTS)))
    delay[:, S_REJECT] = exp(1.0, n) * accept_mean
    delay[:, S_ACCEPT] = exp(1.0, n) * accept_mean
    delay[:, S_ESC1] = exp(6.0, n)
    delay[:, S_ESC2] = exp(12.0, n)
    delay[:, S_DISPATCH] = exp(1.5, n)
    delay[:, S_RETURN] = exp(8.0, n)
    delay[:, S_DISPATCH2] = exp(4.0, n)
    delay[:, S_START] = exp(3.0, n)
    delay[:, S_MEDIATE] = exp(12.0, n)
    delay[:, S_MEDRESULT] = exp(48.0, n)
    delay[:, S_REQEXT] = 0.5 * limit_h * rng.random(n)
    delay[:, S_APPEXT] = exp(4.0, n)
    delay[:, S_PARK] = exp(48.0, n)
    delay[:, S_FEEDBACK] = handle
    delay[:, S_REWORK] = exp(10.0, n)
    delay[:, S_FEEDBACK2] = 0.3 * limit_h * rng.random(n) + 1
    delay[:, S_VERIFY] = exp(10.0, n) + 0.2
    delay[:, S_VISIT] = 24 + exp(72.0, n)
    delay[:, 1:] += 1 / 60            # at least a minute between steps: the trail's order is its time order
    at = reported[:, None] + np.cumsum(np.where(present, delay, 0.0), axis=1) * 3600.0
    happened = present & (at <= now_s)

    # per-case columns from the slots that happened
    def when(slot):
        return np.where(happened[:, slot], at[:, slot], np.nan)

    last_slot = len(SLOTS) - 1 - np.argmax(happened[:, ::-1], axis=1)
    to_state = np.array([s for _, s in SLOTS])
    state = to_state[last_slot]
    deadline = np.where(happened[:, S_DISPATCH], at[:, S_DISPATCH] + limit_h * 3600.0, np.nan)
    deadline = np.where(happened[:, S_APPEXT], deadline + 48 * 3600.0, deadline)
    closed = happened[:, S_VERIFY]
    closed_at = when(S_VERIFY)
    on_time = closed & (closed_at <= deadline)
    med_failed = rng.random(n) < 0.2
    res_flag = ~(happened[:, S_MEDRESULT] & med_failed)     # a failed mediation leaves the dispute unresolved
    resolved = closed & res_flag
    sat = rng.choice([5, 4, 3, 2, 1], n, p=[0.55, 0.28, 0.1, 0.04, 0.03])
    sat = np.where(~on_time & (rng.random(n) < 0.4), np.maximum(sat - 1, 1), sat)
    level_final = np.where(happened[:, S_ESC2], level2, np.where(happened[:, S_ESC1], level1, level0))
    # departments: the category's kind in the handling region, falling back up the hierarchy
    dept1 = _department_for(conn, g, dept_kind, level2)
    dept2 = _department_for(conn, g, np.full(n, "township_gov"), np.zeros(n, int))
    dept2 = np.where(dept2 == dept1, _department_for(conn, g, dept_kind, np.full(n, 2)), dept2)
    department = np.where(happened[:, S_DISPATCH2], dept2, np.where(happened[:, S_DISPATCH], dept1, -1))

    ids = np.array([r["id"] for r in conn.execute(
        "SELECT nextval('cases_id_seq') AS id FROM generate_series(1, %s)", (n,)).fetchall()], dtype=np.int64)
    title_choice = rng.random(n)
    titles = np.array([TITLES.get(c, [cats[c]["name_zh"]])[int(r * len(TITLES.get(c, [c])))] for c, r in zip(cat_code, title_choice)])
    respond_by = np.select([grade == "red", grade == "orange"],
                           [reported + 3600.0, _end_of_china_day(reported)], reported + 86400.0)
    last_at = at[np.arange(n), last_slot]
    level_names = np.array(LEVELS)
    frame = pd.DataFrame({
        "id": ids, "category_code": cat_code, "family": family, "title": titles, "channel": channel, "grade": grade,
        "state": state, "geom": [f"SRID=4326;POINT({a:.7f} {b:.7f})" for a, b in zip(x, y)],
        "grid_code": g["code"], "village_code": g["village_code"], "township_code": g["township_code"],
        "county_code": g["county_code"], "prefecture_code": g["prefecture_code"],
        "handling_level": level_names[level_final], "department_id": _nullable(department, department >= 0),
        "deadline": _ts(deadline), "reported_at": _ts(reported), "accepted_at": _ts(when(S_ACCEPT)),
        "dispatched_at": _ts(np.where(happened[:, S_DISPATCH2], at[:, S_DISPATCH2], when(S_DISPATCH))),
        "closed_at": _ts(closed_at), "closed_level": np.where(closed, level_names[level_final], None),
        "closed_on_time": np.where(closed, on_time, None),
        "escalations": happened[:, S_ESC1].astype(int) + happened[:, S_ESC2].astype(int),
        "returns": happened[:, S_RETURN].astype(int), "reworks": happened[:, S_REWORK].astype(int),
        "extensions": happened[:, S_APPEXT].astype(int), "resolved": np.where(closed, resolved, None),
        "satisfaction": _nullable(sat, happened[:, S_VISIT]), "updated_at": _ts(last_at), "respond_by": _ts(respond_by),
    })
    _copy(conn, "cases", frame)

    # events: one row per slot that happened, in time order per case
    ci, si = np.nonzero(happened)
    actions = np.array([a for a, _ in SLOTS])
    prev_state = np.empty(len(ci), dtype=object)
    first = np.r_[True, ci[1:] != ci[:-1]]
    prev_state[first] = None
    prev_state[~first] = to_state[si[:-1][~first[1:]]]
    level_at = np.where(si >= S_ESC2, np.where(happened[ci, S_ESC2], level2[ci], np.where(happened[ci, S_ESC1], level1[ci], level0[ci])),
                        np.where(si >= S_ESC1, np.where(happened[ci, S_ESC1], level1[ci], level0[ci]), level0[ci]))
    ev_dept = np.select([si == S_DISPATCH, si == S_DISPATCH2, si == S_RETURN], [dept1[ci], dept2[ci], dept1[ci]], -1)
    med_kind = rng.choice(["people", "administrative", "judicial"], n, p=[0.7, 0.2, 0.1])
    med_ids = np.full(n, -1, dtype=np.int64)
    n_med = int(happened[:, S_MEDIATE].sum())
    if n_med:
        med_ids[happened[:, S_MEDIATE]] = [r["id"] for r in conn.execute(
            "SELECT nextval('mediation_id_seq') AS id FROM generate_series(1, %s)", (n_med,)).fetchall()]
    data = np.full(len(ci), "{}", dtype=object)
    a = actions[si]
    data[a == "report"] = [json.dumps({"channel": c, "grade": gr}) for c, gr in zip(channel[ci[a == "report"]], grade[ci[a == "report"]])]
    data[(a == "dispatch") & (si == S_DISPATCH)] = [json.dumps({"hours": int(h)}) for h in limit_h[ci[(a == "dispatch") & (si == S_DISPATCH)]]]
    data[si == S_DISPATCH2] = '{"redispatch": true}'
    esc = a == "escalate"
    data[esc] = [json.dumps({"from_level": LEVELS[f], "to_level": LEVELS[t]}) for f, t in
                 zip(np.where(si[esc] == S_ESC1, level0[ci[esc]], level1[ci[esc]]), np.where(si[esc] == S_ESC1, level1[ci[esc]], level2[ci[esc]]))]
    data[np.isin(a, ["request_extension", "approve_extension"])] = '{"hours": 48}'
    fb = np.isin(a, ["feedback", "verify"])
    data[fb] = np.where(res_flag[ci[fb]], '{"resolved": true}', '{"resolved": false}')
    vis = a == "visit"
    data[vis] = [f'{{"satisfaction": {s}}}' for s in sat[ci[vis]]]
    md = a == "mediate"
    data[md] = [json.dumps({"mediation_id": int(m), "kind": k, "mediator": "人民调解委员会"}) for m, k in zip(med_ids[ci[md]], med_kind[ci[md]])]
    mr = a == "mediation_result"
    data[mr] = [json.dumps({"mediation_id": int(m), "outcome": "failed" if f else "agreed"}) for m, f in zip(med_ids[ci[mr]], med_failed[ci[mr]])]
    notes = np.array([NOTES.get(x) for x in actions], dtype=object)
    actors = np.array([ACTORS[x] for x in actions], dtype=object)
    events = pd.DataFrame({
        "case_id": ids[ci], "at": _ts(at[ci, si]), "actor": actors[si], "action": a, "from_state": prev_state,
        "to_state": to_state[si], "level": level_names[level_at], "department_id": _nullable(ev_dept, ev_dept >= 0),
        "note": notes[si], "data": data,
    })
    _copy(conn, "case_event", events)

    mi = np.nonzero(happened[:, S_MEDIATE])[0]
    if len(mi):
        done = happened[mi, S_MEDRESULT]
        _copy(conn, "mediation", pd.DataFrame({
            "id": med_ids[mi], "case_id": ids[mi], "kind": med_kind[mi], "mediator": "人民调解委员会",
            "started_at": _ts(at[mi, S_MEDIATE]), "ended_at": _ts(np.where(done, at[mi, S_MEDRESULT], np.nan)),
            "outcome": np.where(done, np.where(med_failed[mi], "failed", "agreed"), "ongoing"),
            "agreement": np.where(done & ~med_failed[mi], "双方达成调解协议并履行", None),
        }))
    _say(progress, f"demo: {n:,} cases, {len(events):,} events, {len(mi):,} mediations")
    return {"cases": n, "case_events": len(events), "mediations": len(mi),
            "open": int((~np.isin(state, ["closed", "rejected"])).sum()),
            "overdue": int((~np.isin(state, ["closed", "rejected"]) & (deadline < now_s)).sum()),
            "escalated": int((happened[:, S_ESC1]).sum())}


def _fit_up(level: np.ndarray, has: np.ndarray) -> np.ndarray:
    """The first level at or above ``level`` that the case has a region code for (province always)."""
    out = np.full(level.shape, 4)
    for k in range(4, -1, -1):
        out = np.where((level <= k) & has[:, k], k, out)
    return out


def _department_for(conn, g: pd.DataFrame, kind: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Department id of ``kind`` for each case: in its village, township, county or prefecture, by level."""
    deps = conn.execute("SELECT id, kind, region_code FROM department").fetchall()
    lookup = {(d["region_code"], d["kind"]): d["id"] for d in deps}
    columns = ["village_code", "township_code", "county_code", "prefecture_code"]
    regions = g[columns].to_numpy()
    out = np.full(len(g), -1, dtype=np.int64)
    for start in range(4):
        rows = np.nonzero(level == start)[0]
        for k in range(start, 4):
            pending = rows[out[rows] < 0]
            if not len(pending):
                break
            out[pending] = [lookup.get((regions[i, k], kind[i]), -1) for i in pending]
    rows = np.nonzero(out < 0)[0]
    for k in range(4):       # anywhere up the chain, whatever the level
        pending = rows[out[rows] < 0]
        out[pending] = [lookup.get((regions[i, k], kind[i]), -1) for i in pending]
    return out


def _end_of_china_day(ts: np.ndarray) -> np.ndarray:
    local = ts + CHINA.total_seconds()
    return (np.floor(local / 86400.0) + 1) * 86400.0 - CHINA.total_seconds()


def _ts(seconds: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(seconds, unit="s", utc=True)).dt.strftime("%Y-%m-%d %H:%M:%S.%f+00").where(~np.isnan(seconds), None)


def _nullable(values: np.ndarray, keep: np.ndarray) -> pd.Series:
    return pd.Series(values).astype("Int64").where(keep, pd.NA)


def _copy(conn: psycopg.Connection, table: str, frame: pd.DataFrame) -> None:
    buf = io.StringIO()
    frame.to_csv(buf, index=False, header=False, na_rep="\\N")
    query = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, NULL '\\N')").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in frame.columns))
    with conn.cursor().copy(query) as copy:
        copy.write(buf.getvalue())


# ---------------------------------------------------------------------------------------- check-ins
def _checkins(conn: psycopg.Connection, days: int, now: datetime, seed: int) -> int:
    """Daily check-ins for the last ``days`` days: ~93 % of grid-days, 12 % of them reports; 0.6 % of
    grids (``SILENT_PER_MILLE``) have gone silent for their last 2–10 days. Deterministic (hashes, not random())."""
    if days <= 0:
        return 0
    row = conn.execute(
        """INSERT INTO checkin (grid_code, worker, day, kind, at)
           SELECT code, worker, day, kind, at FROM (
               SELECT g.code, '网格员' || right(g.code, 5) AS worker, d.day,
                      CASE WHEN abs(hashtext(g.code || d.day::text || 'k')) %% 100 < 12 THEN 'report' ELSE 'all_clear' END AS kind,
                      (d.day + time '08:00' + (abs(hashtext(d.day::text || g.code)) %% 36000) * interval '1 second')
                          AT TIME ZONE 'Asia/Shanghai' AS at,
                      g.h, abs(hashtext(g.code || '/' || d.day::text || %(seed)s::text)) %% 100 AS roll
               FROM (SELECT code, abs(hashtext(code || %(seed)s::text)) %% 1000 AS h FROM region WHERE level = 'grid') g
               CROSS JOIN (SELECT generate_series(%(today)s::date - (%(days)s - 1), %(today)s::date, interval '1 day')::date AS day) d
           ) x
           WHERE roll < 93 AND at <= %(now)s
             AND NOT (h < %(silent)s AND day > %(today)s::date - (2 + h %% 9))
           ON CONFLICT DO NOTHING
           RETURNING 1""",
        {"seed": str(seed), "today": (now + CHINA).date(), "days": days, "now": now,
         "silent": SILENT_PER_MILLE}).fetchall()
    return len(row)


# ------------------------------------------------------------------------------------------ hazards
HAZARD_MIX = {"power_line": 0.27, "dilapidated_house": 0.2, "gas": 0.1, "fire": 0.1, "flood": 0.08, "geological": 0.07,
              "traffic": 0.08, "building": 0.05, "livestock_shed": 0.05}
HAZARD_OWNER = {"power_line": "power", "dilapidated_house": "housing", "gas": "emergency", "fire": "emergency",
                "flood": "water", "geological": "land", "traffic": "police", "building": "village_committee",
                "livestock_shed": "village_committee", "other": "township_gov"}
HAZARD_TITLES = {"power_line": "10kV 线路隐患", "dilapidated_house": "农村危房", "gas": "燃气管线隐患", "fire": "消防通道堵塞",
                 "flood": "山洪易发区", "geological": "滑坡隐患点", "traffic": "急弯陡坡路段", "building": "民房",
                 "livestock_shed": "养殖圈舍"}


def _hazards(conn: psycopg.Connection, rng: np.random.Generator, now: datetime, count: int) -> int:
    grids = _grids(conn)
    idx = np.sort(rng.choice(len(grids), count))
    uniq, counts = np.unique(idx, return_counts=True)
    x, y = _points(conn, grids["code"].to_numpy()[uniq], counts, 7919)
    g = grids.iloc[idx].reset_index(drop=True)
    kinds = rng.choice(list(HAZARD_MIX), count, p=np.array(list(HAZARD_MIX.values())) / sum(HAZARD_MIX.values()))
    mlat = 1 / 110_996.0
    mlon = mlat / np.cos(np.radians(y))
    bearing = rng.uniform(0, np.pi, count)
    length = rng.uniform(150, 400, count)
    dx, dy = np.cos(bearing) * length * mlon, np.sin(bearing) * length * mlat
    geoms, extra_rows = [], []
    for i in range(count):
        if kinds[i] == "power_line":
            geoms.append(f"SRID=4326;LINESTRING({x[i]:.7f} {y[i]:.7f},{x[i] + dx[i]:.7f} {y[i] + dy[i]:.7f})")
            if rng.random() < 0.35:       # a shed or house next to the line: some inside 10 m, some not
                d = rng.uniform(2, 8) if rng.random() < 0.6 else rng.uniform(15, 40)
                nx, ny = -np.sin(bearing[i]) * d * mlon[i], np.cos(bearing[i]) * d * mlat
                cx, cy = x[i] + dx[i] / 2 + nx, y[i] + dy[i] / 2 + ny
                s = 3.0
                poly = (f"SRID=4326;POLYGON(({cx - s * mlon[i]:.7f} {cy - s * mlat:.7f},{cx + s * mlon[i]:.7f} {cy - s * mlat:.7f},"
                        f"{cx + s * mlon[i]:.7f} {cy + s * mlat:.7f},{cx - s * mlon[i]:.7f} {cy + s * mlat:.7f},"
                        f"{cx - s * mlon[i]:.7f} {cy - s * mlat:.7f}))")
                extra_rows.append((i, "livestock_shed" if rng.random() < 0.5 else "building", poly))
        elif kinds[i] in ("flood", "geological"):
            h = length[i] / 2
            geoms.append(f"SRID=4326;POLYGON(({x[i] - h * mlon[i]:.7f} {y[i] - h * mlat:.7f},{x[i] + h * mlon[i]:.7f} {y[i] - h * mlat:.7f},"
                         f"{x[i] + h * mlon[i]:.7f} {y[i] + h * mlat:.7f},{x[i] - h * mlon[i]:.7f} {y[i] + h * mlat:.7f},"
                         f"{x[i] - h * mlon[i]:.7f} {y[i] - h * mlat:.7f}))")
        else:
            geoms.append(f"SRID=4326;POINT({x[i]:.7f} {y[i]:.7f})")
    rows_i = np.r_[np.arange(count), np.array([e[0] for e in extra_rows], dtype=int)]
    kinds_all = np.r_[kinds, np.array([e[1] for e in extra_rows], dtype=object)].astype(str)
    geoms_all = geoms + [e[2] for e in extra_rows]
    m = len(rows_i)
    gg = g.iloc[rows_i].reset_index(drop=True)
    now_s = now.timestamp()
    reported = now_s - rng.uniform(0, 365 * 86400.0, m)
    base_grade = rng.choice(["yellow", "orange", "red"], m, p=[0.7, 0.24, 0.06])
    feature = np.isin(kinds_all, ["building", "livestock_shed"])
    base_grade[feature] = "yellow"
    deadline = reported + np.where(base_grade == "red", 7, 30) * 86400.0
    fix_time = reported + rng.exponential(25 * 86400.0, m)
    closed = ~feature & (fix_time < now_s) & (rng.random(m) < HAZARD_CLOSED_SHARE)
    reopened = closed & (rng.random(m) < 0.06)
    recurrence = np.where(reopened, rng.choice([1, 2], m, p=[0.8, 0.2]), 0)
    state = np.where(reopened, "reopened", np.where(closed, "closed", np.where(~feature & (rng.random(m) < 0.3), "rectifying", "open")))
    owners = _department_for(conn, gg, np.array([HAZARD_OWNER[k] for k in kinds_all]), np.ones(m, int))
    ids = np.array([r["id"] for r in conn.execute(
        "SELECT nextval('hazard_id_seq') AS id FROM generate_series(1, %s)", (m,)).fetchall()], dtype=np.int64)
    closed_at = np.where(closed & ~reopened, fix_time, np.nan)
    _copy(conn, "hazard", pd.DataFrame({
        "id": ids, "kind": kinds_all, "title": [HAZARD_TITLES.get(k, k) for k in kinds_all], "base_grade": base_grade,
        "grade": base_grade, "state": state, "geom": geoms_all, "grid_code": gg["code"], "village_code": gg["village_code"],
        "township_code": gg["township_code"], "county_code": gg["county_code"], "prefecture_code": gg["prefecture_code"],
        "owner_department_id": _nullable(owners, owners >= 0), "deadline": _ts(np.where(feature, np.nan, deadline)),
        "reported_at": _ts(reported), "rectified_at": _ts(np.where(closed, fix_time, np.nan)), "closed_at": _ts(closed_at),
        "reinspected_at": _ts(np.where(reopened, np.minimum(fix_time + 20 * 86400.0, now_s), np.nan)),
        "recurrence": recurrence, "updated_at": _ts(np.where(closed, fix_time, reported)),
    }))
    conn.execute(
        """INSERT INTO hazard_event (hazard_id, at, actor, action, from_state, to_state, data)
           SELECT id, reported_at, '网格员', 'report', NULL, 'open', jsonb_build_object('grade', base_grade)
           FROM hazard WHERE id = ANY(%(ids)s)
           UNION ALL
           SELECT id, rectified_at, '责任单位', 'close_out', 'open', 'closed', '{}'::jsonb
           FROM hazard WHERE id = ANY(%(ids)s) AND rectified_at IS NOT NULL
           UNION ALL
           SELECT id, reinspected_at, '复查组', 'reinspect', 'closed', 'reopened', '{"ok": false}'::jsonb
           FROM hazard WHERE id = ANY(%(ids)s) AND state = 'reopened'""", {"ids": list(map(int, ids))})
    hazards.regrade(conn, None)
    return m


# ------------------------------------------------------------------------------------------ stories
STORIES = ("陈殿清", "常建新", "石全爱")


def _place(conn: psycopg.Connection, county: str, township: str, village: str | None) -> dict:
    """The first grid of the named village (falling back to the township, then the county); its point."""
    attempts = [(county, township, village or ""), (county, township, ""), (county, "", ""), ("", "", "")]
    for exact, (c, t, v) in enumerate(attempts):
        row = conn.execute(
            """SELECT gr.code AS grid_code, ST_X(ST_PointOnSurface(gr.geom)) AS lon, ST_Y(ST_PointOnSurface(gr.geom)) AS lat,
                      vi.name AS village, tw.name AS township, co.name AS county
               FROM region co JOIN region tw ON tw.parent_code = co.code JOIN region vi ON vi.parent_code = tw.code
               JOIN region gr ON gr.parent_code = vi.code
               WHERE co.level = 'county' AND co.name LIKE %s AND tw.name LIKE %s AND vi.name LIKE %s
               ORDER BY vi.code, gr.code LIMIT 1""", (f"%{c}%", f"%{t}%", f"%{v}%")).fetchone()
        if row:
            return {**row, "matched": ["village", "township", "county", "anywhere"][exact if village else max(exact, 1)]}
    raise RuntimeError("no grid found for the demo stories")


def _dept(conn: psycopg.Connection, region_code: str, kind: str, name: str) -> int:
    row = conn.execute("SELECT id FROM department WHERE region_code = %s AND kind = %s ORDER BY id LIMIT 1",
                       (region_code, kind)).fetchone()
    if row:
        return row["id"]
    return conn.execute("INSERT INTO department (name, kind, region_code) VALUES (%s, %s, %s) RETURNING id",
                        (name, kind, region_code)).fetchone()["id"]


def _stories(conn: psycopg.Connection, now: datetime) -> list[dict]:
    """The seed's three stories, through the real intake and lifecycle functions."""
    out = []
    hour = timedelta(hours=1)
    day = timedelta(days=1)

    # 1. 陈殿清: 5万元 unpaid for channel works in 甘州区新墩镇; the county centre convenes 水务局, 新墩镇 and
    #    the water station; paid from the channel maintenance funds.
    p = _place(conn, "甘州", "新墩", None)
    t0 = now - 270 * day
    case, _ = intake.create_case(conn, {
        "category": "project_contract", "lon": p["lon"], "lat": p["lat"], "grade": "orange", "channel": "window",
        "handling_level": "county", "reported_at": t0, "reporter_name": "陈殿清", "client_request_id": "story-chen-dianqing",
        "title": "陈殿清反映新墩镇渠道工程款5万元长期未付",
        "description": "陈殿清承建新墩镇农田渠道工程，工程款5万元多年未结清，多次讨要无果，到甘州区综治中心求助。",
        "address": f"{p['county']}{p['township']}"}, actor="甘州区综治中心窗口")
    cid = case["id"]
    water = _dept(conn, case["county_code"], "water", "甘州区水务局")
    _dept(conn, case["township_code"], "township_gov", f"{p['township']}人民政府")
    _dept(conn, case["township_code"], "water", f"{p['township']}水利站")
    steps = [
        ("accept", "甘州区综治中心", t0 + 2 * hour, None, {}),
        ("mediate", "甘州区综治中心", t0 + 1 * day, "中心召集区水务局、新墩镇、水管站联合会商",
         {"kind": "administrative", "mediator": "甘州区综治中心（区水务局、新墩镇、水管站）"}),
        ("dispatch", "甘州区综治中心", t0 + 1 * day + 3 * hour, "由区水务局牵头核实工程量与欠款", {"department_id": water}),
        ("start", "甘州区水务局", t0 + 2 * day, None, {}),
        ("mediation_result", "甘州区综治中心", t0 + 6 * day, "三方核实欠款属实",
         {"outcome": "agreed", "agreement": "从渠道维修养护经费中支付陈殿清工程款5万元"}),
        ("feedback", "甘州区水务局", t0 + 9 * day, "5万元已从维修养护经费中拨付到位", {"resolved": True}),
        ("verify", "新墩镇网格员", t0 + 10 * day, "电话核实陈殿清已收到工程款", {}),
        ("visit", "甘州区综治中心", t0 + 15 * day, "回访满意", {"satisfaction": 5}),
    ]
    for action, actor, at, note, fields in steps:
        lifecycle.apply(conn, cid, action, actor, at=at, note=note, **fields)
    out.append({"who": "陈殿清", "case_id": cid, "ref": case["ref"], "place": p})

    # 2. 常建新: pollution from a sheep farm in 山丹县清泉镇长城社区; joint mediation; resolved.
    p = _place(conn, "山丹", "清泉", "长城")
    t0 = now - 180 * day
    case, _ = intake.create_case(conn, {
        "category": "pollution", "lon": p["lon"], "lat": p["lat"], "grade": "orange", "channel": "grid_worker",
        "reported_at": t0, "reporter_name": "常建新", "client_request_id": "story-chang-jianxin",
        "title": "常建新反映长城社区养羊场粪污异味扰民",
        "description": "常建新反映社区旁养羊场粪污随意堆放、异味严重，与养殖户多次争执。",
        "address": f"{p['county']}{p['township']}{p['village']}"}, actor="长城社区网格员")
    cid = case["id"]
    env = _dept(conn, case["county_code"], "environment", "山丹县生态环境分局")
    steps = [
        ("accept", "清泉镇综治中心", t0 + 3 * hour, None, {}),
        ("dispatch", "清泉镇综治中心", t0 + 5 * hour, "生态环境部门现场核查", {"department_id": env}),
        ("start", "山丹县生态环境分局", t0 + 1 * day, None, {}),
        ("mediate", "清泉镇综治中心", t0 + 3 * day, "镇综治中心、司法所、长城社区联合调解",
         {"kind": "people", "mediator": "清泉镇人民调解委员会、长城社区"}),
        ("mediation_result", "清泉镇综治中心", t0 + 5 * day, None,
         {"outcome": "agreed", "agreement": "养殖户限期建设粪污处理设施、圈舍外迁，常建新认可处理方案"}),
        ("feedback", "山丹县生态环境分局", t0 + 20 * day, "粪污处理设施已建成，异味问题解决", {"resolved": True}),
        ("verify", "长城社区网格员", t0 + 21 * day, "现场核查无异味", {}),
        ("visit", "清泉镇综治中心", t0 + 30 * day, None, {"satisfaction": 5}),
    ]
    for action, actor, at, note, fields in steps:
        lifecycle.apply(conn, cid, action, actor, at=at, note=note, **fields)
    out.append({"who": "常建新", "case_id": cid, "ref": case["ref"], "place": p})

    # 3. 石全爱: a calf dead beside a steel cattle shed under a low power line in 陇西县菜子镇浅河村; from the
    #    petition bureau to the county centre, handed down to 菜子镇, compensation agreed, the line rectified.
    p = _place(conn, "陇西", "菜子", "浅河")
    t0 = now - 90 * day
    case, _ = intake.create_case(conn, {
        "category": "damage_compensation", "lon": p["lon"], "lat": p["lat"], "grade": "orange", "channel": "petition",
        "handling_level": "county", "reported_at": t0, "reporter_name": "石全爱", "client_request_id": "story-shi-quanai",
        "title": "石全爱家牛犊死于钢架牛棚旁，牛棚上方低压线路过低",
        "description": "石全爱到县信访局反映：自家钢架牛棚上方低压线路垂落过低，牛犊死于棚旁，疑似触电，要求赔偿。",
        "address": f"{p['county']}{p['township']}{p['village']}"}, actor="陇西县信访局")
    cid = case["id"]
    gov = _dept(conn, case["township_code"], "township_gov", f"{p['township']}人民政府")
    power = _dept(conn, case["township_code"], "power", f"{p['township']}供电所")
    steps = [
        ("accept", "陇西县综治中心", t0 + 4 * hour, "县信访局转县综治中心", {}),
        ("hand_down", "陇西县综治中心", t0 + 1 * day, None,
         {"level": "township", "note": "请菜子镇牵头，会同供电所查明牛犊死亡原因，依法调处赔偿并排除线路隐患"}),
        ("dispatch", "菜子镇综治中心", t0 + 1 * day + 2 * hour, "镇政府牵头", {"department_id": gov}),
        ("start", "菜子镇人民政府", t0 + 2 * day, None, {}),
        ("mediate", "菜子镇综治中心", t0 + 4 * day, "镇综治中心组织石全爱与供电所调解",
         {"kind": "administrative", "mediator": "菜子镇综治中心"}),
        ("mediation_result", "菜子镇综治中心", t0 + 7 * day, None,
         {"outcome": "agreed", "agreement": "供电所一次性赔偿石全爱牛犊损失，并抬高迁改牛棚上方线路"}),
        ("feedback", "菜子镇人民政府", t0 + 12 * day, "赔偿款已付清，线路已迁改", {"resolved": True}),
        ("verify", "浅河村网格员", t0 + 13 * day, "现场核查线路已迁改", {}),
        ("visit", "陇西县综治中心", t0 + 20 * day, None, {"satisfaction": 4}),
    ]
    hazard_ids = {}
    for action, actor, at, note, fields in steps:
        fields = dict(fields)
        note = fields.pop("note", note)
        lifecycle.apply(conn, cid, action, actor, at=at, note=note, **fields)
        if action == "start":
            # the shed and the line above it, registered as hazards: the rule raises the line to red
            mlat = 1 / 110_996.0
            mlon = mlat / np.cos(np.radians(p["lat"]))
            x, y = p["lon"], p["lat"]
            shed = {"type": "Polygon", "coordinates": [[[x, y], [x + 12 * mlon, y], [x + 12 * mlon, y + 6 * mlat],
                                                        [x, y + 6 * mlat], [x, y]]]}
            line = {"type": "LineString", "coordinates": [[x - 60 * mlon, y + 8 * mlat], [x + 80 * mlon, y + 8 * mlat]]}
            shed_h, _ = hazards.create_hazard(conn, {"kind": "livestock_shed", "title": "石全爱家钢架牛棚", "geometry": shed,
                                                     "reported_at": at, "case_id": cid,
                                                     "client_request_id": "story-shi-quanai-shed"}, actor="浅河村网格员")
            line_h, _ = hazards.create_hazard(conn, {
                "kind": "power_line", "title": "浅河村低压线路（石全爱牛棚上方）", "geometry": line, "grade": "orange",
                "reported_at": at, "case_id": cid, "owner_department_id": power, "deadline": at + 15 * day,
                "client_request_id": "story-shi-quanai-line"}, actor="浅河村网格员")
            hazards.act(conn, line_h["id"], "start_rectification", f"{p['township']}供电所", at=at + 3 * day)
            hazard_ids = {"shed": shed_h["id"], "line": line_h["id"], "line_grade": line_h["grade"]}
        if action == "feedback":
            hazards.act(conn, hazard_ids["line"], "close_out", f"{p['township']}供电所", at=at,
                        note="线路已抬高迁改，与牛棚安全距离符合要求，销号")
    out.append({"who": "石全爱", "case_id": cid, "ref": case["ref"], "place": p, "hazards": hazard_ids})
    return out
