"""Case intake: validate, convert coordinates, stamp region codes, de-duplicate, insert — all or nothing.

Every case enters here, one at a time (:func:`create_case`) or in batches (:func:`create_cases`),
from the API, the Open311 façade, the simulator and the demo's stories:

- validated by :class:`gridwatch.models.CaseIn` (the API's model too), then: known category, finite coordinates inside Gansu (the province pieces of
  ``region_subdivided``), swapped lat/long detected and explained; GCJ-02 input (AMap/Tencent
  clients) converted to WGS84 with ``geo.coords``;
- stamped with grid, village, township, county and prefecture codes (``region_leaf`` →
  ``region_lineage`` in SQL: point-in-polygon on subdivided grids, then up ``parent_code``);
- idempotent on ``client_request_id`` (INSERT … ON CONFLICT DO NOTHING, then the existing row);
- flagged ``possible_duplicate_of`` an earlier case of the same category within 50 m in the last
  72 h, or an earlier case of the same batch, as if reported one at a time (it still counts; an operator's ``merge`` action sets ``duplicate_of`` and rejects it).

A batch is a few statements whatever its size — one locating every point (a join with the grid
pieces), one INSERT … SELECT of every case (region codes, duplicate check and creator looked up
for the whole set), one INSERT of every 'report' event — so the cases table's statement trigger
sends one notification per batch; nothing of ours runs once per case (foreign keys still check each row).
The batch's columns travel as binary arrays (``%(x)b``): psycopg writes a text array element by element
in Python, quoting each, which cost a 5,000 batch about 60 ms of client CPU.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import get_args

import psycopg
from psycopg import sql

from geo.coords import gcj02_to_wgs84
from gridwatch import models
from gridwatch.db import execute, fetch_all, load_sql
from gridwatch.errors import DomainError, NotFound

__all__ = [
    "InputError", "NotFound", "COORD_SYSTEMS", "CHANNELS", "GRADES", "LEVELS", "GANSU_EXTENT",
    "DUPLICATE_METRES", "DUPLICATE_HOURS", "MAX_BATCH", "categories", "prepare", "create_case", "create_cases",
    "stamp_point", "CASE_COLUMNS", "case_select",
]

HERE = Path(__file__).resolve().parent
COORD_SYSTEMS = get_args(models.CoordSystem)      # the allowed values are the models' (one definition)
CHANNELS = get_args(models.Channel)
GRADES = get_args(models.Grade)
LEVELS = get_args(models.Level)
GANSU_EXTENT = (92.1, 32.6, 108.8, 42.8)  # lon min, lat min, lon max, lat max (rough; the outline decides)
DUPLICATE_METRES = 50
DUPLICATE_HOURS = 72
MAX_BATCH = models.MAX_BATCH

# Columns the API shows for a case (also what create_* return).
CASE_COLUMNS = (
    "id", "ref", "client_request_id", "category_code", "family", "title", "description", "channel", "grade", "state",
    "grid_code", "village_code", "township_code", "county_code", "prefecture_code", "handling_level",
    "department_id", "deadline", "respond_by", "reported_at", "accepted_at", "dispatched_at", "closed_at",
    "closed_level", "closed_on_time", "escalations", "returns", "reworks", "extensions", "resolved",
    "satisfaction", "duplicate_of", "possible_duplicate_of", "coord_system", "address", "updated_at",
)


# The core's error types (gridwatch.errors); InputError is the old name of their base, kept for callers.
InputError = DomainError


def categories(conn: psycopg.Connection) -> dict[str, dict]:
    """{code: category row} (a small table, read per call; nothing cached at import)."""
    rows = fetch_all(conn, "SELECT code, family, name_zh, name_en, department_kind, time_limit_hours, default_grade "
                           "FROM category ORDER BY sort_key NULLS LAST, code")
    return {r["code"]: r for r in rows}


def prepare(conn: psycopg.Connection, items: list[dict], *, default_channel: str = "online") -> list[dict]:
    """Check and normalise raw case dicts (before any write); raise :class:`InputError` on the first bad one.

    Each item is checked by :class:`gridwatch.models.CaseIn` (the model the API declares), plus
    ``reported_at`` (a datetime; Python callers only); then the category must be known.
    """
    if not isinstance(items, list) or not items:
        raise InputError("a batch needs at least one case", message_zh="批量提交至少需要一件案件",
                         field="cases", value=items if not isinstance(items, list) else [], fix="send a non-empty list of cases")
    if len(items) > MAX_BATCH:
        raise InputError(f"a batch holds at most {MAX_BATCH} cases, got {len(items)}",
                         message_zh=f"每批最多 {MAX_BATCH} 件，收到 {len(items)} 件", field="cases", value=len(items),
                         fix=f"split it into batches of {MAX_BATCH} or fewer", status=413, code="batch_too_large")
    cats = categories(conn)
    many = len(items) > 1
    out = []
    for k, item in enumerate(items):
        where = f"cases[{k}]." if many else ""
        reported_at = None
        if isinstance(item, dict) and isinstance(item.get("reported_at"), datetime):
            item = dict(item)
            reported_at = item.pop("reported_at")
        case = models.validate(models.CaseIn, item, prefix=where)
        if case.category not in cats:
            raise InputError(
                f"{where}category {case.category!r} is unknown; known categories: {', '.join(cats)} (GET /api/v1/categories)",
                message_zh=f"未知的案件类别 {case.category!r}；可用类别见 GET /api/v1/categories",
                field=f"{where}category", value=case.category, fix="use a code from GET /api/v1/categories",
                code="unknown_category")
        cat = cats[case.category]
        out.append({
            "category": case.category, "family": cat["family"],
            "title": case.title or cat["name_zh"],
            "description": case.description,
            "channel": case.channel or default_channel,
            "grade": case.grade or cat["default_grade"],
            "client_request_id": case.client_request_id,
            "reporter_name": case.reporter_name,
            "reporter_phone": case.reporter_phone,
            "address": case.address,
            "handling_level": case.handling_level,
            "parties": json.dumps(case.parties, ensure_ascii=False),
            "coord_system": case.coord_system, "input_lon": case.lon, "input_lat": case.lat, "reported_at": reported_at,
            "_where": where,
        })
    _convert(out)
    return out


def _convert(rows: list[dict]) -> None:
    """WGS84 lon/lat for each row (GCJ-02 converted; CGCS2000 is taken as WGS84, within a metre)."""
    gcj = [r for r in rows if r["coord_system"] == "gcj02"]
    if gcj:
        lons, lats = gcj02_to_wgs84([r["input_lon"] for r in gcj], [r["input_lat"] for r in gcj])
        for r, lo, la in zip(gcj, lons, lats):
            r["lon"], r["lat"] = float(lo), float(la)
    for r in rows:
        if r["coord_system"] != "gcj02":
            r["lon"], r["lat"] = r["input_lon"], r["input_lat"]


def _locate(conn: psycopg.Connection, rows: list[dict]) -> None:
    """Stamp each row's leaf region code, or refuse the batch naming the first point outside Gansu."""
    found = conn.execute(load_sql(HERE, "intake_locate"),
                         {"lon": [float(r["lon"]) for r in rows], "lat": [float(r["lat"]) for r in rows]}).fetchall()
    for r, f in zip(rows, found):
        r["leaf"] = f["leaf"]
        if f["inside"]:
            continue
        where = r["_where"]
        lon, lat = r["input_lon"], r["input_lat"]
        if f["swapped_inside"]:
            raise InputError(
                f"{where}lon {lon}, lat {lat} is outside Gansu, but lon {lat}, lat {lon} is inside: "
                f"latitude and longitude look swapped",
                message_zh=f"经度 {lon}、纬度 {lat} 不在甘肃省内，而经度 {lat}、纬度 {lon} 在省内：经纬度似乎填反了",
                field=f"{where}lon", value={"lon": lon, "lat": lat},
                fix=f"send lon={lat}, lat={lon} (longitude is x, east; latitude is y, north)", code="swapped_coordinates")
        if not f["province_loaded"]:
            raise InputError(
                "no Gansu outline is loaded, so no point can be placed", message_zh="尚未加载甘肃省边界，无法定位案件",
                field=f"{where}lon", value={"lon": lon, "lat": lat}, fix="run `gridwatch etl gansu` first",
                code="no_boundaries", status=503)
        x0, y0, x1, y1 = GANSU_EXTENT
        system = "" if r["coord_system"] == "wgs84" else f" ({r['coord_system']})"
        raise InputError(
            f"{where}lon {lon}, lat {lat}{system} is outside Gansu (roughly lon {x0}–{x1}, lat {y0}–{y1})",
            message_zh=f"经度 {lon}、纬度 {lat} 不在甘肃省范围内（约东经 {x0}–{x1}°，北纬 {y0}–{y1}°）",
            field=f"{where}lon", value={"lon": lon, "lat": lat},
            fix="send a point inside Gansu in WGS84 degrees; AMap/Tencent coordinates need coord_system=gcj02",
            code="outside_gansu")


def case_select(where: sql.Composable) -> sql.Composed:
    """``SELECT <CASE_COLUMNS>, lon, lat FROM cases <where>`` (identifiers quoted by psycopg)."""
    return sql.SQL("SELECT {cols}, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM cases {where}").format(
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in CASE_COLUMNS), where=where)


def stamp_point(conn: psycopg.Connection, lon: float, lat: float) -> dict:
    """Region codes of a WGS84 point (all None outside every region)."""
    row = conn.execute(
        "SELECT l.* FROM region_lineage(region_leaf(ST_SetSRID(ST_MakePoint(%s, %s), 4326))) l", (lon, lat)).fetchone()
    keys = ("grid_code", "village_code", "township_code", "county_code", "prefecture_code")
    return {k: (row[k] if row else None) for k in keys}


def create_cases(conn: psycopg.Connection, items: list[dict], *, actor: str = "intake",
                 default_channel: str = "online") -> list[tuple[dict, bool]]:
    """Validate and insert ``items`` (all or nothing); return [(case, created)] in input order.

    ``created`` is False where the ``client_request_id`` was already known (to this creator, or
    earlier in the same batch): the existing case is returned and nothing new is written for it.
    Run inside ``gridwatch.db.transaction``. Whatever the batch size: one statement locates every
    point, one inserts every case (one notification), one writes every 'report' event.
    """
    rows = prepare(conn, items, default_channel=default_channel)
    _locate(conn, rows)
    ids = conn.execute("SELECT array(SELECT nextval('cases_id_seq') FROM generate_series(1, %s)) AS ids",
                       (len(rows),)).fetchone()["ids"]
    params = {
        "id": ids,
        "crid": _column(r["client_request_id"] for r in rows),
        "category": [r["category"] for r in rows],
        "family": [r["family"] for r in rows],
        "title": [r["title"] for r in rows],
        "description": _column(r["description"] for r in rows),
        "channel": [r["channel"] for r in rows],
        "reporter_name": _column(r["reporter_name"] for r in rows),
        "reporter_phone": _column(r["reporter_phone"] for r in rows),
        "parties": [r["parties"] for r in rows],
        "grade": [r["grade"] for r in rows],
        "lon": [float(r["lon"]) for r in rows],
        "lat": [float(r["lat"]) for r in rows],
        "leaf": _column(r["leaf"] for r in rows),
        "coord_system": [r["coord_system"] for r in rows],
        "address": _column(r["address"] for r in rows),
        "level": _column(r["handling_level"] for r in rows),
        "reported_at": _column(r["reported_at"] for r in rows),
    }
    try:
        new_rows = _write(conn, params, actor)
    except psycopg.errors.ForeignKeyViolation:
        # A case of this batch was flagged as a duplicate of an earlier case of the batch whose
        # client_request_id another transaction of the same client wrote meanwhile (so that case
        # was skipped): once more, now seeing that transaction's cases.
        new_rows = _write(conn, params, actor)
    by_id = {r["id"]: r for r in new_rows}
    by_crid: dict = {}
    crids = params["crid"] or [None] * len(ids)
    known = [c for i, c in zip(ids, crids) if i not in by_id and c]
    if known:
        found = conn.execute(
            # a retry is recognised only for the client that sent it (the key is per creator, 0085)
            case_select(sql.SQL("WHERE client_request_id = ANY(%s) AND coalesce(created_by, 0) = coalesce(gridwatch_user_id(), 0)")),
            (known,)).fetchall()
        by_crid = {r["client_request_id"]: r for r in found}
    for r in new_rows:
        if r["client_request_id"]:
            by_crid.setdefault(r["client_request_id"], r)
    return [(dict(by_id[i]), True) if i in by_id else (dict(by_crid[c]), False) for i, c in zip(ids, crids)]


def _column(values) -> list | None:
    """A batch column as a list, or None where every value is None: SQL's multi-argument unnest() pads a
    NULL array with NULLs, and psycopg need not write thousands of NULLs (an all-None list cannot go binary)."""
    out = list(values)
    return None if all(v is None for v in out) else out


def _write(conn: psycopg.Connection, params: dict, actor: str) -> list[dict]:
    """Insert the located batch and its 'report' events in a savepoint (a failure leaves nothing of
    the batch, whatever the caller does next); return the new cases."""
    with conn.transaction():
        new_rows = execute(conn, _insert_sql(), params).fetchall()
        if new_rows:
            # the signed-in user's name as the trail's actor for the whole batch (0110), else the caller's
            who = execute(conn, "SELECT set_config('gridwatch.trail_actor', coalesce(gridwatch_username(), %s), true) AS actor",
                          (actor,)).fetchone()["actor"]
            execute(conn, load_sql(HERE, "intake_events"), {
                "actor": who, "case_id": [r["id"] for r in new_rows], "at": [r["reported_at"] for r in new_rows],
                "level": _column(r["handling_level"] for r in new_rows), "channel": [r["channel"] for r in new_rows],
                "grade": [r["grade"] for r in new_rows], "dup": _column(r["possible_duplicate_of"] for r in new_rows)})
    return new_rows


def _insert_sql() -> sql.Composed:
    """intake_insert.sql with its RETURNING list: the columns of :data:`CASE_COLUMNS` (one definition)."""
    return sql.SQL(load_sql(HERE, "intake_insert")).format(
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in CASE_COLUMNS))


def create_case(conn: psycopg.Connection, item: dict, *, actor: str = "intake",
                default_channel: str = "online") -> tuple[dict, bool]:
    """One case (see :func:`create_cases`): returns (case, created)."""
    return create_cases(conn, [item], actor=actor, default_channel=default_channel)[0]
