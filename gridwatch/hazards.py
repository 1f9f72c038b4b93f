"""Hazards (安全隐患): register point/line/polygon hazards, grade them by spatial rules, rectify, close out, re-inspect.

A hazard keeps the grade its reporter gave (``base_grade``); :func:`regrade` raises ``grade`` by
the rules in the ``hazard_rule`` table, evaluated in PostGIS (``ST_DWithin`` on geography, with a
bounding-box prefilter so the GiST index is used), and says why in ``grade_reason`` (Chinese) and
``grade_reasons`` (each rule hit: rule, other feature, distance, both languages). A hazard that
recurred twice or more (``recurrence`` ≥ 2) is raised one step. Closed hazards raise nothing.

Actions (``HAZARD_TRANSITIONS``): start_rectification (open/reopened → rectifying), close_out 销号
(open/rectifying/reopened → closed), reinspect (closed → closed when fixed, → reopened with
recurrence + 1 when not). Each writes one ``hazard_event``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from shapely.geometry import mapping, shape
from shapely.validation import explain_validity

from geo.coords import gcj02_to_wgs84_geometry
from gridwatch import models
from gridwatch.db import load_sql
from gridwatch.intake import GANSU_EXTENT, InputError, NotFound

__all__ = ["KINDS", "KIND_NAMES", "HAZARD_TRANSITIONS", "create_hazard", "regrade", "act", "get_hazard",
           "hazard_events", "HAZARD_COLUMNS", "hazard_select"]

HERE = Path(__file__).resolve().parent
KIND_NAMES = {
    "power_line": "电力线路", "dilapidated_house": "危房", "gas": "燃气", "fire": "消防", "flood": "洪涝",
    "geological": "地质灾害", "traffic": "交通", "building": "建筑物", "livestock_shed": "畜棚", "other": "其他",
}
KINDS = tuple(KIND_NAMES)
RANK = {"yellow": 1, "orange": 2, "red": 3}
BY_RANK = {v: k for k, v in RANK.items()}
HAZARD_TRANSITIONS = {
    "start_rectification": (("open", "reopened"), "rectifying"),
    "close_out": (("open", "rectifying", "reopened"), "closed"),
    "reinspect": (("closed",), None),   # closed (fixed) or reopened (recurred)
}
HAZARD_COLUMNS = ("id", "client_request_id", "kind", "title", "description", "base_grade", "grade", "grade_reason",
                  "grade_reasons", "state", "grid_code", "village_code", "township_code", "county_code",
                  "prefecture_code", "owner_department_id", "case_id", "deadline", "reported_at", "rectified_at",
                  "closed_at", "reinspected_at", "recurrence", "updated_at")
GEOMETRY_TYPES = ("Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon")


def hazard_select(where: sql.Composable) -> sql.Composed:
    return sql.SQL("SELECT {cols}, ST_AsGeoJSON(geom, 7)::jsonb AS geometry FROM hazard {where}").format(
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in HAZARD_COLUMNS), where=where)


def get_hazard(conn: psycopg.Connection, hazard_id: int, *, lock: bool = False) -> dict:
    row = conn.execute(hazard_select(sql.SQL("WHERE id = %s" + (" FOR UPDATE" if lock else ""))), (hazard_id,)).fetchone()
    if row is None:
        raise NotFound(f"there is no hazard {hazard_id}", message_zh=f"隐患 {hazard_id} 不存在", field="id",
                       value=hazard_id, fix="use an id from GET /api/v1/hazards", code="not_found")
    return dict(row)


def hazard_events(conn: psycopg.Connection, hazard_id: int) -> list[dict]:
    return [dict(r) for r in conn.execute(
        "SELECT id, at, actor, action, from_state, to_state, note, data FROM hazard_event WHERE hazard_id = %s ORDER BY at, id",
        (hazard_id,)).fetchall()]


def _geometry(item: dict):
    raw = item.get("geometry")
    if not isinstance(raw, dict) or raw.get("type") not in GEOMETRY_TYPES:
        raise InputError(f"geometry must be a GeoJSON {', '.join(GEOMETRY_TYPES)}, got {str(raw)[:80]!r}",
                         message_zh="geometry 须为 GeoJSON 点、线或面", field="geometry", value=raw,
                         fix='send e.g. {"type": "LineString", "coordinates": [[lon, lat], [lon, lat]]}')
    try:
        geom = shape(raw)
    except Exception as exc:  # noqa: BLE001 - shapely raises several kinds for bad coordinates
        raise InputError(f"geometry could not be read: {exc}", message_zh="无法解析 geometry", field="geometry",
                         value=raw, fix="check the GeoJSON coordinates (lon, lat pairs)") from exc
    if geom.is_empty or not geom.is_valid:
        raise InputError(f"geometry is not valid: {explain_validity(geom) if not geom.is_empty else 'empty'}",
                         message_zh="geometry 无效（自相交或为空）", field="geometry", value=raw,
                         fix="send a simple, non-self-intersecting geometry")
    if item.get("coord_system") == "gcj02":
        geom = gcj02_to_wgs84_geometry(geom)
    return geom


def create_hazard(conn: psycopg.Connection, item: dict, *, actor: str = "intake") -> tuple[dict, bool]:
    """Register a hazard (idempotent on client_request_id); returns (hazard, created).

    Keys: kind, title, geometry (GeoJSON, WGS84 unless coord_system = gcj02), grade (base),
    description, owner_department_id, deadline (datetime) or deadline_days, client_request_id,
    case_id, reported_at (datetime, Python callers only).
    """
    checked = models.validate(models.HazardIn, {k: v for k, v in item.items() if not (k == "reported_at" and isinstance(v, datetime))})
    item = {**checked.model_dump(exclude_none=True), "reported_at": item.get("reported_at")}
    kind, grade = checked.kind, checked.grade
    title = checked.title or KIND_NAMES[kind]
    geom = _geometry(item)
    point = geom.representative_point()
    found = conn.execute(load_sql(HERE, "intake_locate"), {"lon": [point.x], "lat": [point.y]}).fetchone()
    if not found["inside"]:
        x0, y0, x1, y1 = GANSU_EXTENT
        swapped = " — latitude and longitude look swapped" if found["swapped_inside"] else ""
        raise InputError(f"the hazard at lon {point.x:.6f}, lat {point.y:.6f} is outside Gansu (roughly lon {x0}–{x1}, "
                         f"lat {y0}–{y1}){swapped}", message_zh="隐患位置不在甘肃省内" + ("（经纬度似乎填反了）" if swapped else ""),
                         field="geometry", value=mapping(geom),
                         fix="send [lon, lat] pairs inside Gansu" + (" (longitude first)" if swapped else ""),
                         code="swapped_coordinates" if swapped else "outside_gansu")
    reported_at = item.get("reported_at")
    deadline = item.get("deadline")
    if deadline is None and item.get("deadline_days") is not None:
        deadline = (reported_at or conn.execute("SELECT now() AS t").fetchone()["t"]) + timedelta(days=int(item["deadline_days"]))
    department = item.get("owner_department_id")
    if department is not None and conn.execute("SELECT 1 FROM department WHERE id = %s", (department,)).fetchone() is None:
        raise InputError(f"there is no department {department}", message_zh=f"部门 {department} 不存在",
                         field="owner_department_id", value=department, fix="use an id from GET /api/v1/departments")
    row = conn.execute(
        """INSERT INTO hazard (client_request_id, kind, title, description, base_grade, grade, geom, grid_code, village_code,
                               township_code, county_code, prefecture_code, owner_department_id, case_id, deadline,
                               reported_at, updated_at, created_by)
           SELECT %(crid)s, %(kind)s, %(title)s, %(description)s, %(grade)s, %(grade)s, g.geom, l.grid_code, l.village_code,
                  l.township_code, l.county_code, l.prefecture_code, %(department)s, %(case_id)s, %(deadline)s,
                  coalesce(%(at)s, now()), coalesce(%(at)s, now()), gridwatch_user_id()
           FROM (SELECT ST_SetSRID(ST_GeomFromGeoJSON(%(geom)s), 4326) AS geom) g
           LEFT JOIN LATERAL region_lineage(%(leaf)s) l ON true
           ON CONFLICT ((coalesce(created_by, 0)), client_request_id) DO NOTHING RETURNING id""",
        {"crid": item.get("client_request_id"), "kind": kind, "title": title, "description": item.get("description"),
         "grade": grade, "geom": json.dumps(mapping(geom)), "leaf": found["leaf"], "department": department,
         "case_id": item.get("case_id"), "deadline": deadline, "at": reported_at}).fetchone()
    if row is None:
        # a retry of this very client (the key is per creator, 0085): never another client's hazard
        existing = conn.execute("SELECT id FROM hazard WHERE client_request_id = %s"
                                " AND coalesce(created_by, 0) = coalesce(gridwatch_user_id(), 0)",
                                (item.get("client_request_id"),)).fetchone()
        return get_hazard(conn, existing["id"]), False
    hid = row["id"]
    conn.execute("INSERT INTO hazard_event (hazard_id, at, actor, action, from_state, to_state, data) "
                 "VALUES (%s, coalesce(%s, now()), %s, 'report', NULL, 'open', %s)",
                 (hid, reported_at, actor, json.dumps({"grade": grade}, ensure_ascii=False)))
    regrade(conn, [hid, *_neighbours(conn, hid)])
    return get_hazard(conn, hid), True


def _neighbours(conn: psycopg.Connection, hazard_id: int) -> list[int]:
    """Hazards whose grade could depend on this one (within the widest rule distance)."""
    rows = conn.execute(
        """SELECT n.id FROM hazard h, hazard n, (SELECT max(within_m) AS m FROM hazard_rule) r
           WHERE h.id = %s AND n.id <> h.id AND n.geom && ST_Expand(h.geom, r.m / 50000.0 + 1e-9)
             AND ST_DWithin(h.geom::geography, n.geom::geography, r.m)""", (hazard_id,)).fetchall()
    return [r["id"] for r in rows]


def regrade(conn: psycopg.Connection, ids: list[int] | None = None) -> int:
    """Recompute grade and reasons of hazards ``ids`` (None: all open ones); update the changed ones.

    Returns how many changed. One UPDATE at most, and none when nothing changed.
    """
    hits = conn.execute(load_sql(HERE, "hazard_rule_hits"), {"ids": ids}).fetchall()
    targets = conn.execute(
        "SELECT id, base_grade, grade, grade_reasons, recurrence, state FROM hazard "
        "WHERE (%(ids)s::bigint[] IS NULL AND hazard_is_open(state)) OR id = ANY(%(ids)s)", {"ids": ids}).fetchall()
    by_target: dict[int, list[dict]] = {}
    for h in hits:
        by_target.setdefault(h["id"], []).append(h)
    changed = []
    for t in targets:
        rank = RANK[t["base_grade"]]
        reasons = []
        if t["state"] != "closed":
            for h in sorted(by_target.get(t["id"], []), key=lambda h: (-RANK[h["grade"]], h["distance_m"], h["near_id"])):
                fmt = {"near": h["near_title"], "distance": f"{h['distance_m']:.1f}"}
                reasons.append({"rule": h["rule"], "grade": h["grade"], "near_id": h["near_id"], "near_title": h["near_title"],
                                "distance_m": round(float(h["distance_m"]), 1), "zh": h["reason_zh"].format(**fmt),
                                "en": h["reason_en"].format(**fmt)})
                rank = max(rank, RANK[h["grade"]])
            if t["recurrence"] >= 2 and rank < 3:
                rank += 1
                reasons.append({"rule": "recurrence", "grade": BY_RANK[rank], "recurrence": t["recurrence"],
                                "zh": f"整改后复发 {t['recurrence']} 次，升一级", "en": f"recurred {t['recurrence']} times after rectification: raised one step"})
        grade = BY_RANK[rank]
        if t["state"] == "closed":
            continue
        if grade != t["grade"] or reasons != t["grade_reasons"]:
            changed.append((t["id"], grade, "；".join(r["zh"] for r in reasons) or None,
                            json.dumps(reasons, ensure_ascii=False)))
    if changed:
        conn.execute(
            """UPDATE hazard h SET grade = c.grade, grade_reason = c.reason, grade_reasons = c.reasons
               FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::jsonb[]) AS c(id, grade, reason, reasons)
               WHERE h.id = c.id""",
            ([c[0] for c in changed], [c[1] for c in changed], [c[2] for c in changed], [c[3] for c in changed]))
    return len(changed)


def act(conn: psycopg.Connection, hazard_id: int, action: str, actor: str, *, at: datetime | None = None,
        note: str | None = None, ok: bool | None = None) -> dict:
    """Apply a hazard action; ``reinspect`` needs ``ok`` (True: still fixed; False: it recurred)."""
    if action not in HAZARD_TRANSITIONS:
        raise InputError(f"unknown hazard action {action!r}; actions are: {', '.join(HAZARD_TRANSITIONS)}",
                         message_zh="未知的隐患操作", field="action", value=action,
                         fix=f"use one of: {', '.join(HAZARD_TRANSITIONS)}")
    if not actor:
        raise InputError("actor is required", message_zh="缺少操作人", field="actor", value=actor, fix="send actor")
    hazard = get_hazard(conn, hazard_id, lock=True)
    sources, target = HAZARD_TRANSITIONS[action]
    state = hazard["state"]
    if state not in sources:
        allowed = [a for a, (src, _) in HAZARD_TRANSITIONS.items() if state in src]
        raise InputError(f"hazard {hazard_id} is {state}: {action} is not allowed there; allowed now: {', '.join(allowed) or 'nothing'}",
                         message_zh=f"隐患当前状态为 {state}，不能执行该操作", field="action", value=action,
                         fix=f"from {state} use one of: {', '.join(allowed) or 'none'}", code="illegal_transition",
                         status=409, details=[{"state": state, "allowed": allowed}])
    at = at or conn.execute("SELECT now() AS t").fetchone()["t"]
    sets: dict[str, Any] = {"updated_at": at}
    if action == "start_rectification":
        sets["rectified_at"] = None
    elif action == "close_out":
        sets.update(closed_at=at, rectified_at=at)
    elif action == "reinspect":
        if ok is None:
            raise InputError("reinspect needs ok: true (still fixed) or false (it recurred)", message_zh="复查须填写 ok",
                             field="ok", value=None, fix="send ok: true or ok: false")
        if ok:
            target = "closed"
            sets["reinspected_at"] = at
        else:
            target = "reopened"
            sets.update(reinspected_at=at, closed_at=None, recurrence=hazard["recurrence"] + 1)
    sets["state"] = target
    assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in sets)
    conn.execute(sql.SQL("UPDATE hazard SET {} WHERE id = %s").format(assignments), [*sets.values(), hazard_id])
    conn.execute("INSERT INTO hazard_event (hazard_id, at, actor, action, from_state, to_state, note, data) "
                 "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                 (hazard_id, at, actor, action, state, target, note, json.dumps({"ok": ok} if ok is not None else {})))
    regrade(conn, [hazard_id, *_neighbours(conn, hazard_id)])
    return get_hazard(conn, hazard_id)
