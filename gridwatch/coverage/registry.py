"""The centre registry (综治中心): validation, writes and reads. Loaders, the API and the dashboard all call here.

A centre row is checked field by field by :class:`gridwatch.models.CentreIn` (:func:`parse_row`, the
model the API declares too), then against the database in one
set-based query (:func:`validate`: a known region code, a level matching the region's, a point
inside Gansu — with a hint when lat/long look swapped — and inside its region or within 2 km of it,
known departments). :func:`write_centres` upserts a batch all-or-nothing; the CRUD functions below
refresh the stored coverage of the townships a change touches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence, get_args

from pydantic import ValidationError

from gridwatch.coverage.figures import refresh, stored_thresholds
from gridwatch.coverage.reach import (
    CENTRE_LEVELS, CoverageError, Thresholds, _check_scenario_name, _margin_deg, _rows, _sql, _x,
)
from gridwatch.db import transaction
from gridwatch.errors import Invalid, NotFound
from gridwatch.models import FIX_BY_TYPE, CentreIn, CentreLevel, CentreStatus
from gridwatch.regions import check_code

__all__ = [
    "CentreRow", "CentreLoadError", "LEVELS", "STATUSES", "NEAR_M", "parse_row", "validate", "write_centres",
    "list_centres", "get_centre", "create_centre", "update_centre", "delete_centre", "centres_near",
]

LEVELS = get_args(CentreLevel)                      # province … village (gridwatch.models: one definition)
STATUSES = get_args(CentreStatus)
NEAR_M = 2_000.0                 # a centre may sit this far outside its region (a seat on the boundary)
LOCK_KEY = 620_000_040           # advisory lock: two registry writes never interleave
MAX_MESSAGES = 30
_SPLIT_DEPTS = re.compile(r"[;；、|]")


class CentreLoadError(Invalid):
    """The file (or request) was refused and nothing was written; names every bad row.

    ``str()`` lists every problem (for the command line); the API body gives the first as its
    message and all of them as ``details``. ``status=409`` marks a clash with a stored centre.
    """

    code = "invalid_centre"

    def __init__(self, problems: Sequence[str], *, status: int | None = None):
        self.problems = list(problems)
        shown = self.problems[:MAX_MESSAGES]
        more = len(self.problems) - len(shown)
        text = "\n".join(f"  {p}" for p in shown) + (f"\n  … and {more} more" if more > 0 else "")
        self.text = f"{len(self.problems)} problem(s), nothing was written:\n{text}"
        first = str(self.problems[0]) + (f" (and {len(self.problems) - 1} more, see details)" if len(self.problems) > 1 else "")
        super().__init__(first, message_zh="综治中心数据有误，未写入", fix="correct the fields named and send again",
                         details=[{"problem": p} for p in self.problems], status=status,
                         code="conflict" if status == 409 else None)

    def __str__(self) -> str:
        return self.text


@dataclass
class CentreRow:
    """One centre to write, with where it came from (``where``: 'row 3', 'feature 2', 'request')."""

    where: str
    name: str
    level: str
    region_code: str
    lon: float
    lat: float
    status: str = "established"
    staff: int | None = None
    address: str | None = None
    phone: str | None = None
    departments: tuple[str, ...] = field(default_factory=tuple)


# ------------------------------------------------------------------------- reading files

def _text(value) -> str | None:
    if value is None:
        return None
    s = str(value).strip()
    return s or None


# How a loader names what the model refused, per field ({v}: the value as given).
_SAYS = {
    "name": "name is empty; every centre needs a name (e.g. 城关区综治中心)",
    "level": "level {v!r} is not known; use one of " + ", ".join(LEVELS),
    "region_code": "region_code {v!r} is not a region code; use digits such as 620102",
    "status": "status {v!r} is not known; use planned, established or entity (实体化)",
    "staff": "staff {v!r} is not a whole number of people (0 or more)",
    "lon": "lon {v!r} is not a number; give decimal degrees (e.g. 103.834)",
    "lat": "lat {v!r} is not a number; give decimal degrees (e.g. 36.061)",
}
_EMPTY = {"lon": "lon is empty; give decimal degrees (e.g. 103.834)", "lat": "lat is empty; give decimal degrees (e.g. 36.061)"}


def parse_row(where: str, props: dict, lon, lat, problems: list[str]) -> CentreRow | None:
    """A CentreRow from raw values (a file row or a request), checked by :class:`gridwatch.models.CentreIn`;
    None after appending what is wrong (one line per field, naming ``where``) to ``problems``."""
    raw = {k: _text(props.get(k)) for k in ("name", "level", "region_code", "status", "staff", "address", "phone")}
    for k in ("level", "status"):
        raw[k] = raw[k].lower() if raw[k] else raw[k]
    depts = props.get("departments")
    raw["departments"] = ([str(d).strip() for d in depts if str(d).strip()] if isinstance(depts, (list, tuple))
                          else [d.strip() for d in _SPLIT_DEPTS.split(_text(depts) or "") if d.strip()])
    raw["lon"], raw["lat"] = (v.strip() if isinstance(v, str) else v for v in (lon, lat))
    data = {k: v for k, v in raw.items() if v is not None and v != ""}
    try:
        centre = CentreIn.model_validate(data)
    except ValidationError as exc:
        seen = set()
        for e in exc.errors(include_url=False):
            key = str(e["loc"][0]) if e.get("loc") else "row"
            if key in seen:
                continue
            seen.add(key)
            value = raw.get(key)
            if e["type"] == "missing":
                says = _EMPTY.get(key) or _SAYS.get(key, f"{key} is missing")
            elif key in _SAYS and key != "name":
                says = _SAYS[key].format(v=props.get(key, value) if key not in ("lon", "lat") else value)
            else:
                fix = FIX_BY_TYPE.get(e["type"], "correct the value")
                says = f"{key} {value!r}: {e['msg']}; {fix}"
            problems.append(f"{where}: {says}")
        return None
    return CentreRow(where, centre.name, centre.level, centre.region_code, centre.lon, centre.lat, centre.status,
                     centre.staff, centre.address, centre.phone, tuple(centre.departments))


def _label(row: CentreRow) -> str:
    return f"{row.where} ({row.name})"


def validate(conn, rows: Sequence[CentreRow], *, ignore_ids: Iterable[int] = ()) -> list[str]:
    """Everything wrong with ``rows`` against the database (one set-based query); [] when all is well."""
    problems: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    for r in rows:
        key = (r.region_code, r.name)
        if key in seen:
            problems.append(f"{_label(r)}: the same name and region_code as {seen[key]}; a region's centres need different names")
        seen.setdefault(key, r.where)
    if not rows:
        return problems
    cur = conn
    found = _x(cur, _sql("centres-validate"), {
        "nos": list(range(len(rows))), "codes": [r.region_code for r in rows], "lons": [r.lon for r in rows],
        "lats": [r.lat for r in rows], "near_m": NEAR_M,
    }).fetchall()
    for f in found:
        r = rows[f["no"]]
        if f["region_level"] is None:
            problems.append(f"{_label(r)}: region_code {r.region_code} is not a known region; check the code "
                            f"(load the hierarchy first: gridwatch etl gansu)")
            continue
        if f["region_level"] != r.level:
            problems.append(f"{_label(r)}: level {r.level!r} does not match region {r.region_code} ({f['region_name']}), "
                            f"which is a {f['region_level']}; use level {f['region_level']} or the code of a {r.level}")
        if not f["in_gansu"]:
            hint = "; did you swap lat/long?" if f["swapped_in_gansu"] else "; check the coordinates (WGS84/CGCS2000 degrees)"
            problems.append(f"{_label(r)}: longitude {r.lon} latitude {r.lat} is outside Gansu{hint}")
        elif f["outside_m"] is not None and f["outside_m"] > NEAR_M:
            problems.append(f"{_label(r)}: the point ({r.lon}, {r.lat}) is {f['outside_m'] / 1000:.1f} km outside its region "
                            f"{r.region_code} ({f['region_name']}); move it inside, or within {NEAR_M / 1000:.0f} km of its boundary")
    wanted = [(i, d) for i, r in enumerate(rows) for d in r.departments]
    if wanted:
        known = _x(cur, 
            """SELECT w.no, w.dept, d.id FROM unnest(%s::int[], %s::text[], %s::text[]) AS w(no, code, dept)
               LEFT JOIN LATERAL (SELECT id FROM department d WHERE d.region_code = w.code AND d.name = w.dept
                                  ORDER BY id LIMIT 1) d ON true""",
            ([i for i, _ in wanted], [rows[i].region_code for i, _ in wanted], [d for _, d in wanted])).fetchall()
        for k in known:
            if k["id"] is None:
                r = rows[k["no"]]
                problems.append(f"{_label(r)}: department {k['dept']!r} is not a department of region {r.region_code}; "
                                f"load the departments first or correct the name")
    return problems


def write_centres(conn, rows: Sequence[CentreRow], *, replace: bool = False) -> dict:
    """Validate and upsert ``rows`` into the real registry in one transaction; all-or-nothing.

    Rows match registry centres by (region_code, name). ``replace`` also deletes registry centres the
    rows do not name. Returns {"written": n, "deleted": n, "ids": [...]} (ids in row order).
    """
    with transaction(conn) as c:
        c.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        problems = validate(c, rows)
        if problems:
            raise CentreLoadError(problems)
        cur = c
        got = _x(cur, _sql("centres-upsert"), {
            "nos": list(range(len(rows))), "names": [r.name for r in rows], "levels": [r.level for r in rows],
            "codes": [r.region_code for r in rows], "statuses": [r.status for r in rows], "staff": [r.staff for r in rows],
            "addresses": [r.address for r in rows], "phones": [r.phone for r in rows],
            "lons": [r.lon for r in rows], "lats": [r.lat for r in rows],
        }).fetchall()
        by_key = {(g["region_code"], g["name"]): g["id"] for g in got}
        ids = [by_key[(r.region_code, r.name)] for r in rows]
        _x(cur, "DELETE FROM centre_department WHERE centre_id = ANY(%s)", (ids,))
        pairs = [(ids[i], r.region_code, d) for i, r in enumerate(rows) for d in r.departments]
        if pairs:
            _x(cur, 
                """INSERT INTO centre_department (centre_id, department_id)
                   SELECT DISTINCT p.id, d.id FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS p(id, code, dept)
                   JOIN department d ON d.region_code = p.code AND d.name = p.dept
                   ON CONFLICT DO NOTHING""",
                ([p[0] for p in pairs], [p[1] for p in pairs], [p[2] for p in pairs]))
        deleted = 0
        if replace:
            deleted = _x(cur, "DELETE FROM centre WHERE scenario IS NULL AND NOT (id = ANY(%s))", (ids,)).rowcount
    return {"written": len(ids), "deleted": deleted, "ids": ids}


# ---------------------------------------------------------------- the registry (centre CRUD)

_CENTRE_SELECT = """
    SELECT c.id, c.name, c.level, c.region_code, r.name AS region_name, c.status, c.staff, c.address, c.phone,
           ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, c.scenario, c.created_at, c.updated_at,
           COALESCE((SELECT json_agg(json_build_object('id', d.id, 'name', d.name, 'kind', d.kind) ORDER BY d.id)
                     FROM centre_department cd JOIN department d ON d.id = cd.department_id
                     WHERE cd.centre_id = c.id), '[]'::json) AS departments
    FROM centre c LEFT JOIN region r ON r.code = c.region_code
"""


def list_centres(conn, *, region: str | None = None, level: str | None = None, status: str | None = None,
                 scenario: str | None = None, limit: int = 5000) -> list[dict]:
    """Registry centres (or one scenario's) under ``region`` (a code prefix), by level and status."""
    if level is not None and level not in CENTRE_LEVELS:
        raise CoverageError(f"level {level!r} is not a centre level; use one of {', '.join(CENTRE_LEVELS)}")
    if status is not None and status not in ("planned", "established", "entity"):
        raise CoverageError(f"status {status!r} is not known: use planned, established or entity")
    if region is not None:
        region = check_code(region)     # the one parser (620000 → 62)
    if scenario is not None:
        _check_scenario_name(scenario)
    q = _CENTRE_SELECT + """
        WHERE (c.scenario IS NOT DISTINCT FROM %(scenario)s)
          AND (%(pattern)s::text IS NULL OR c.region_code LIKE %(pattern)s)
          AND (%(level)s::text IS NULL OR c.level = %(level)s)
          AND (%(status)s::text IS NULL OR c.status = %(status)s)
        ORDER BY c.region_code, c.id LIMIT %(limit)s"""
    return _rows(_x(conn, q, {"scenario": scenario, "pattern": None if region is None else region + "%",
                              "level": level, "status": status, "limit": int(limit)}))


def get_centre(conn, centre_id: int) -> dict:
    row = _x(conn, _CENTRE_SELECT + " WHERE c.id = %s", (centre_id,)).fetchone()
    if row is None:
        raise NotFound(f"centre {centre_id} does not exist; GET /api/v1/centres lists the registry")
    return dict(row)


def _centre_row(fields: dict, where: str = "request"):
    problems: list[str] = []
    props = {k: fields.get(k) for k in ("name", "level", "region_code", "status", "staff", "address", "phone")}
    depts = fields.get("departments") or []
    props["departments"] = ";".join(depts) if isinstance(depts, (list, tuple)) else depts
    row = parse_row(where, props, fields.get("lon"), fields.get("lat"), problems)
    if problems:
        raise CentreLoadError(problems)
    return row


def create_centre(conn, fields: dict) -> dict:
    """Add a centre to the real registry (validated like a loaded file) and refresh the stored coverage."""
    row = _centre_row(fields)
    with transaction(conn) as c:
        clash = _x(c, "SELECT id FROM centre WHERE scenario IS NULL AND region_code = %s AND name = %s",
                   (row.region_code, row.name)).fetchone()
        if clash:
            raise CentreLoadError([f"request ({row.name}): region {row.region_code} already has a centre of that name "
                                   f"(id {clash['id']}); PATCH /api/v1/centres/{clash['id']} to change it"], status=409)
        new_id = write_centres(c, [row])["ids"][0]
        refresh(c, [(row.lon, row.lat, row.level)], [new_id])
        return get_centre(c, new_id)


def update_centre(conn, centre_id: int, patch: dict) -> dict:
    """Change some fields of a registry centre (validated as a whole) and refresh the stored coverage."""
    with transaction(conn) as c:
        old = get_centre(c, centre_id)
        merged = {k: old[k] for k in ("name", "level", "region_code", "status", "staff", "address", "phone", "lon", "lat")}
        merged["departments"] = [d["name"] for d in old["departments"]]
        merged.update({k: v for k, v in patch.items()})
        row = _centre_row(merged, f"centre {centre_id}")
        problems = validate(c, [row])
        clash = None
        if old["scenario"] is None:
            clash = _x(c, "SELECT id FROM centre WHERE scenario IS NULL AND region_code = %s AND name = %s AND id <> %s",
                       (row.region_code, row.name, centre_id)).fetchone()
            if clash:
                problems.append(f"centre {centre_id} ({row.name}): region {row.region_code} already has a centre of that name (id {clash['id']})")
        if problems:
            raise CentreLoadError(problems, status=409 if clash and len(problems) == 1 else None)
        _x(c, """UPDATE centre SET name = %s, level = %s, region_code = %s, status = %s, staff = %s, address = %s, phone = %s,
                                  geom = ST_SetSRID(ST_MakePoint(%s, %s), 4326), updated_at = now() WHERE id = %s""",
           (row.name, row.level, row.region_code, row.status, row.staff, row.address, row.phone, row.lon, row.lat, centre_id))
        if "departments" in patch:
            _x(c, "DELETE FROM centre_department WHERE centre_id = %s", (centre_id,))
            _x(c, """INSERT INTO centre_department (centre_id, department_id)
                     SELECT %s, d.id FROM department d WHERE d.region_code = %s AND d.name = ANY(%s) ON CONFLICT DO NOTHING""",
               (centre_id, row.region_code, list(row.departments)))
        if old["scenario"] is None:
            refresh(c, [(old["lon"], old["lat"], old["level"]), (row.lon, row.lat, row.level)], [centre_id])
        return get_centre(c, centre_id)


def delete_centre(conn, centre_id: int) -> dict:
    """Remove a centre (registry or scenario) and refresh the stored coverage."""
    with transaction(conn) as c:
        old = get_centre(c, centre_id)
        _x(c, "DELETE FROM centre WHERE id = %s", (centre_id,))
        if old["scenario"] is None:
            refresh(c, [(old["lon"], old["lat"], old["level"])], [centre_id])
    return old


def centres_near(conn, code: str, *, scenario: str | None = None, thresholds: Thresholds | None = None) -> list[dict]:
    """Centres to draw with a region: those serving regions under ``code`` and those whose reach
    touches it (a neighbour's centre near the boundary), real registry plus ``scenario``'s."""
    th = thresholds or (stored_thresholds(conn) or (Thresholds(), None))[0]
    return _rows(_x(conn, """
        WITH reg AS (SELECT geom FROM region WHERE code = %(code)s)
        SELECT c.id, c.name, c.level, c.region_code, c.status, c.staff, c.scenario, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat
        FROM centre c, reg
        WHERE (c.scenario IS NULL OR c.scenario = %(scenario)s)
          AND c.geom && ST_Expand(reg.geom, %(margin_deg)s)
          AND (c.region_code LIKE %(pattern)s
               OR (c.status IN ('established', 'entity') OR c.scenario IS NOT NULL)
                  AND ST_Intersects(reg.geom, ST_Buffer(c.geom::geography,
                        CASE WHEN c.level IN ('township', 'village') THEN %(township_m)s ELSE %(county_m)s END)::geometry))
        ORDER BY c.scenario NULLS FIRST, c.region_code, c.id""",
        {"code": code, "pattern": code + "%", "scenario": scenario, "margin_deg": _margin_deg(th),
         "township_m": th.township_m, "county_m": th.county_m}))
