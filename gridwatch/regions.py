"""Regions: one region, its ancestry, children, descendants, map features, points and registers.

The core of what ``/api/v1/regions`` answers and what the dashboard reads (drill-down map, KPI
panel, wall, alerts, briefing), so other systems and the wall show the same numbers. Each function
takes a connection and answers with a few aggregate queries; nothing loops over case rows in
Python. Region codes are parsed here (:func:`check_code`, on :func:`geo.codes.parse_region_code`).
"""

from __future__ import annotations

import argparse
from datetime import datetime

import psycopg
from psycopg import sql

from geo.codes import BadRegionCodeText, parse_region_code
from gridwatch import kpi
from gridwatch.db import execute
from gridwatch.intake import InputError

__all__ = [
    "LEVELS", "LEVEL_OF_LENGTH", "MEASURES", "POINT_LIMIT", "BadRegionCode", "check_code", "canonical_or_raw", "region_code_arg", "region_row", "ancestry",
    "children", "descendant_counts", "region_detail", "children_features", "view_points", "case_register",
    "case_detail", "hazard_detail", "prefectures", "recent_red_alerts", "list_regions", "region_features",
]

LEVELS = ("province", "prefecture", "county", "township", "village", "grid")
LEVEL_OF_LENGTH = {2: "province", 4: "prefecture", 6: "county", 9: "township", 12: "village", 15: "grid"}
# Measures the drill-down map can colour children by (keys of children_features' properties).
MEASURES = ("open", "overdue", "cases_per_grid", "hazards_open", "coverage")
POINT_LIMIT = 1000  # clickable case/hazard markers per view (newest first); tiles draw them all


class BadRegionCode(InputError):
    """A region code that is malformed (400) or not loaded (404)."""


_q = execute   # dict rows whatever the connection's row factory (gridwatch.db.execute, the one helper)


def check_code(code: str) -> str:
    """The canonical code of ``code`` (GB/T 2260 ``620700`` → ``6207``), else BadRegionCode (400)
    naming the value and the fix. Every face (API, dashboard URL, CLI) parses codes through here."""
    try:
        return parse_region_code(code)
    except BadRegionCodeText as exc:
        raise BadRegionCode(
            str(exc),
            message_zh=f"区划代码 {code!r} 格式不对：应为 2/4/6/9/12/15 位数字，如 62、620702（也可用 620000、620700）",
            field="code", value=code, fix="use a code such as 62 (甘肃省) or 6207 (张掖市)", code="bad_code",
            status=400) from None


def region_code_arg(text: str) -> str:
    """``argparse`` type of a region-code argument: the canonical code, or a usage error naming the fix.

    >>> region_code_arg("620700")
    '6207'
    """
    try:
        return parse_region_code(text)
    except BadRegionCodeText as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def canonical_or_raw(code: str) -> str:
    """The canonical code of ``code`` if it parses, else ``code`` unchanged (for a page URL that
    shows its own error once it reads the region)."""
    try:
        return parse_region_code(code)
    except BadRegionCodeText:
        return code


def region_row(conn: psycopg.Connection, code: str) -> dict:
    """code, name, name_en, level, kind, source, parent_code, area_km2, population, bbox, centre (lon/lat).

    ``code`` may be any accepted spelling (``620700``); the row carries the canonical code."""
    code = check_code(code)
    row = _q(conn, """
        SELECT code, name, name_en, level, kind, source, parent_code, round(area_km2::numeric, 2)::float AS area_km2,
               population, ST_XMin(b) AS xmin, ST_YMin(b) AS ymin, ST_XMax(b) AS xmax, ST_YMax(b) AS ymax,
               ST_X(label_point) AS lon, ST_Y(label_point) AS lat
        FROM region, LATERAL (SELECT geom::box2d AS b) bb WHERE code = %s""", (code,)).fetchone()
    if row is None:
        raise BadRegionCode(
            f"region code {code!r} is not loaded; GET /api/v1/regions lists the province, "
            "and each region lists its children",
            message_zh=f"区划 {code} 不存在", field="code", value=code,
            fix="use a loaded code, e.g. 62 (甘肃省), or load the hierarchy with `gridwatch etl gansu`",
            code="not_found", status=404)
    out = dict(row)
    out["bbox"] = [out.pop("xmin"), out.pop("ymin"), out.pop("xmax"), out.pop("ymax")]
    return out


def ancestry(conn: psycopg.Connection, code: str) -> list[dict]:
    """The chain from the province down to ``code`` itself: [{code, name, level}, …]."""
    rows = _q(conn, """
        WITH RECURSIVE up AS (
            SELECT code, name, level, parent_code, 0 AS depth FROM region WHERE code = %s
            UNION ALL
            SELECT r.code, r.name, r.level, r.parent_code, up.depth + 1 FROM region r JOIN up ON r.code = up.parent_code
        )
        SELECT code, name, level FROM up ORDER BY depth DESC""", (code,)).fetchall()
    return [dict(r) for r in rows]


def children(conn: psycopg.Connection, code: str) -> list[dict]:
    """The children of ``code``: [{code, name, level, source}], west→east/north→south order."""
    return [dict(r) for r in _q(conn, """
        SELECT code, name, level, source FROM region WHERE parent_code = %s
        ORDER BY sort_key NULLS LAST, code""", (code,)).fetchall()]


_DESCENDANTS: dict[tuple, dict[str, int]] = {}   # (database, code, region version) → counts: regions are public and rarely change


def descendant_counts(conn: psycopg.Connection, code: str) -> dict[str, int]:
    """How many regions lie below ``code`` at each level (codes of descendants start with ``code``).
    Remembered per region data version (the province's count scans every region: ~0.1 s)."""
    # (not inside a transaction that wrote: its version number is not committed and could be reused)
    row = _q(conn, """SELECT version, pg_current_xact_id_if_assigned() IS NULL AS clean
                      FROM data_version WHERE name = 'region'""").fetchone()
    key = (conn.info.host, conn.info.port, conn.info.dbname, code, row["version"]) if row and row["clean"] else None
    if key in _DESCENDANTS:
        return dict(_DESCENDANTS[key])
    rows = _q(conn, """
        SELECT level, count(*)::int AS n FROM region
        WHERE code LIKE %s AND code <> %s GROUP BY level""", (code + "%", code)).fetchall()
    got = {r["level"]: r["n"] for r in rows}
    counts = {level: got.get(level, 0) for level in LEVELS[1:]}
    if key is not None:
        if len(_DESCENDANTS) > 4096:
            _DESCENDANTS.clear()
        _DESCENDANTS[key] = counts
    return dict(counts)


def region_detail(conn: psycopg.Connection, code: str, now: datetime | None = None) -> dict:
    """Everything /api/v1/regions/{code} answers: the region, ancestry, children, descendants, KPIs."""
    region = region_row(conn, code)
    code = region["code"]
    return {
        **region,
        "ancestry": ancestry(conn, code)[:-1],
        "children": children(conn, code),
        "descendants": descendant_counts(conn, code),
        "kpis": kpi.region_kpis(conn, code, now=now),
    }


def children_features(conn: psycopg.Connection, code: str, now: datetime | None = None, *, geometry: bool = True) -> dict:
    """The children of ``code`` as a GeoJSON FeatureCollection of their display outlines, each with
    the map's measures: open, overdue, cases_per_grid, hazards_open (from :func:`kpi.children_ranking`)
    and coverage (share of the child's own children with an entity 综治中心). A region without
    children (a grid) is returned as its own single feature. ``geometry=False`` leaves the outlines
    out (``"geometry": null``): the live refresh of a map that already has them.
    """
    rows = _q(conn, """
        WITH kids AS (
            SELECT code, name, level, source, coalesce(geom_simple, geom) AS g, label_point, sort_key
            FROM region WHERE parent_code = %(code)s
        ), shown AS (
            SELECT * FROM kids
            UNION ALL
            SELECT code, name, level, source, coalesce(geom_simple, geom), label_point, sort_key
            FROM region WHERE code = %(code)s AND NOT EXISTS (SELECT 1 FROM kids)
        )
        SELECT s.code, s.name, s.level, s.source, CASE WHEN %(geometry)s THEN ST_AsGeoJSON(s.g, 5)::json END AS geometry,
               ST_X(s.label_point) AS lon, ST_Y(s.label_point) AS lat, cov.children, cov.covered
        FROM shown s
        LEFT JOIN LATERAL (
            SELECT count(*)::int AS children,
                   count(*) FILTER (WHERE EXISTS (SELECT 1 FROM centre ce WHERE ce.region_code = g.code
                                                  AND ce.status = 'entity' AND ce.scenario IS NULL))::int AS covered
            FROM region g WHERE g.parent_code = s.code
        ) cov ON true
        ORDER BY s.sort_key NULLS LAST, s.code""", {"code": code, "geometry": geometry}).fetchall()
    ranking = {r["code"]: r for r in kpi.children_ranking(conn, code, now=now)} if rows and rows[0]["code"] != code else {}
    features = []
    for r in rows:
        k = ranking.get(r["code"], {})
        features.append({
            "type": "Feature", "id": r["code"], "geometry": r["geometry"],
            "properties": {
                "code": r["code"], "name": r["name"], "level": r["level"], "source": r["source"],
                "lon": r["lon"], "lat": r["lat"],
                "open": k.get("open", 0), "overdue": k.get("overdue", 0),
                "cases_per_grid": k.get("cases_per_grid"), "hazards_open": k.get("hazards_open", 0),
                "closure_rate": k.get("closure_rate"), "on_time_rate": k.get("on_time_rate"),
                "coverage": (r["covered"] / r["children"]) if r["children"] else None,
            },
        })
    return {"type": "FeatureCollection", "features": features}


def _scope(conn: psycopg.Connection, code: str) -> sql.Composable:
    column = kpi.region_scope(conn, code)["column"]
    return sql.SQL("TRUE") if column is None else sql.SQL("{} = %(code)s").format(sql.Identifier(column))


def view_points(conn: psycopg.Connection, code: str, limit: int = POINT_LIMIT) -> dict[str, list[dict]]:
    """Open cases and hazards of ``code`` as clickable points (newest first, at most ``limit`` each).

    Hazards that are lines or areas are placed at a point on them (ST_PointOnSurface); the tiles
    draw their shapes.
    """
    where = _scope(conn, code)
    cases = _q(conn, sql.SQL("""
        SELECT id, ref, title, grade, state, ST_X(geom) AS lon, ST_Y(geom) AS lat,
               coalesce(deadline < now(), false) AS overdue
        FROM cases WHERE {where} AND case_is_open(state)
        ORDER BY reported_at DESC LIMIT %(limit)s""").format(where=where), {"code": code, "limit": limit}).fetchall()
    hazards = _q(conn, sql.SQL("""
        SELECT id, title, kind, grade, state, GeometryType(geom) AS shape,
               ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat
        FROM hazard WHERE {where} AND hazard_is_open(state)
        ORDER BY reported_at DESC LIMIT %(limit)s""").format(where=where), {"code": code, "limit": limit}).fetchall()
    return {"cases": [dict(r) for r in cases], "hazards": [dict(r) for r in hazards]}


def case_register(conn: psycopg.Connection, code: str, query: str | None = None, limit: int = 20) -> list[dict]:
    """The region's cases in every state, newest first: the register an operator searches by place.

    ``query`` matches the title, the description, the reporter's name or the case reference
    (case-insensitive substring).
    """
    where = _scope(conn, code)
    text = (query or "").strip()
    rows = _q(conn, sql.SQL("""
        SELECT c.id, c.ref, c.title, c.grade, c.state, c.reported_at, c.closed_at, c.reporter_name,
               coalesce(case_is_overdue(c.state, c.deadline, now()), false) AS overdue,
               v.name AS village_name
        FROM cases c LEFT JOIN region v ON v.code = c.village_code
        WHERE {where}
          AND (%(q)s = '' OR c.title ILIKE %(like)s OR c.description ILIKE %(like)s
               OR c.reporter_name ILIKE %(like)s OR c.ref ILIKE %(like)s)
        ORDER BY c.reported_at DESC, c.id DESC LIMIT %(limit)s""").format(where=where),
        {"code": code, "q": text, "like": f"%{text}%", "limit": limit}).fetchall()
    return [dict(r) for r in rows]


def case_detail(conn: psycopg.Connection, case_id: int) -> dict | None:
    """A case with its category name, place names and event timeline; None if there is no such case."""
    row = _q(conn, """
        SELECT c.id, c.ref, c.title, c.description, c.grade, c.state, c.channel, c.handling_level,
               c.reported_at, c.deadline, c.closed_at, c.escalations, c.category_code,
               cat.name_zh AS category_zh, cat.name_en AS category_en,
               g.name AS grid_name, t.name AS township_name, k.name AS county_name,
               coalesce(case_is_overdue(c.state, c.deadline, now()), false) AS overdue
        FROM cases c
        LEFT JOIN category cat ON cat.code = c.category_code
        LEFT JOIN region g ON g.code = c.grid_code
        LEFT JOIN region t ON t.code = c.township_code
        LEFT JOIN region k ON k.code = c.county_code
        WHERE c.id = %s""", (case_id,)).fetchone()
    if row is None:
        return None
    events = _q(conn, """
        SELECT at, actor, action, from_state, to_state, level, note
        FROM case_event WHERE case_id = %s ORDER BY at, id""", (case_id,)).fetchall()
    return {**dict(row), "events": [dict(e) for e in events]}


def hazard_detail(conn: psycopg.Connection, hazard_id: int) -> dict | None:
    """A hazard with its place names and timeline (reported, deadline, closed, re-inspected)."""
    row = _q(conn, """
        SELECT h.id, h.title, h.description, h.kind, h.grade, h.grade_reason, h.state, GeometryType(h.geom) AS shape,
               h.reported_at, h.deadline, h.closed_at, h.reinspected_at, h.recurrence,
               g.name AS grid_name, t.name AS township_name, k.name AS county_name
        FROM hazard h
        LEFT JOIN region g ON g.code = h.grid_code
        LEFT JOIN region t ON t.code = h.township_code
        LEFT JOIN region k ON k.code = h.county_code
        WHERE h.id = %s""", (hazard_id,)).fetchone()
    if row is None:
        return None
    d = dict(row)
    steps = [("reported", d["reported_at"]), ("deadline", d["deadline"]), ("closed", d["closed_at"]),
             ("reinspected", d["reinspected_at"])]
    d["events"] = [{"at": at, "action": action} for action, at in steps if at is not None]
    return d


def prefectures(conn: psycopg.Connection, province: str | None = None) -> list[dict]:
    """The prefectures (the wall's tour), west→east order: [{code, name}]."""
    return [dict(r) for r in _q(conn, """
        SELECT code, name FROM region WHERE level = 'prefecture' AND (%(p)s::text IS NULL OR parent_code = %(p)s)
        ORDER BY sort_key NULLS LAST, code""", {"p": province}).fetchall()]


def recent_red_alerts(conn: psycopg.Connection, minutes: int, limit: int = 5) -> list[dict]:
    """Red-grade cases and hazards reported in the last ``minutes`` and still open, newest first."""
    rows = _q(conn, """
        SELECT * FROM (
            SELECT 'case' AS kind, c.id, c.title, c.reported_at, coalesce(g.name, k.name, '') AS place,
                   coalesce(k.name, '') AS county
            FROM cases c LEFT JOIN region g ON g.code = c.village_code LEFT JOIN region k ON k.code = c.county_code
            WHERE c.grade = 'red' AND case_is_open(c.state)
              AND c.reported_at >= now() - make_interval(mins => %(m)s)
            UNION ALL
            SELECT 'hazard', h.id, h.title, h.reported_at, coalesce(g.name, k.name, ''), coalesce(k.name, '')
            FROM hazard h LEFT JOIN region g ON g.code = h.village_code LEFT JOIN region k ON k.code = h.county_code
            WHERE h.grade = 'red' AND hazard_is_open(h.state)
              AND h.reported_at >= now() - make_interval(mins => %(m)s)
        ) a ORDER BY reported_at DESC, id DESC LIMIT %(limit)s""", {"m": int(minutes), "limit": int(limit)}).fetchall()
    return [dict(r) for r in rows]


def list_regions(conn: psycopg.Connection, parent: str | None = None, level: str | None = None) -> list[dict]:
    """Regions under ``parent`` (default: the top of the hierarchy), optionally of one ``level`` only."""
    if parent is not None:
        parent = check_code(parent)
    return [dict(r) for r in _q(conn, """
        SELECT code, name, level, source FROM region
        WHERE (%(parent)s::text IS NULL AND parent_code IS NULL OR parent_code = %(parent)s)
          AND (%(level)s::text IS NULL OR level = %(level)s)
        ORDER BY sort_key NULLS LAST, code""", {"parent": parent, "level": level}).fetchall()]


def region_features(conn: psycopg.Connection, code: str) -> dict:
    """The children of region ``code`` (any accepted spelling) as GeoJSON; BadRegionCode if not loaded."""
    code = region_row(conn, code)["code"]
    return children_features(conn, code)
