"""Load the centre registry (综治中心): the Gansu demo, or your own CSV / GeoJSON file. All-or-nothing.

  gridwatch etl centres --demo             one centre per province, prefecture, county and township,
                                           generated from the loaded hierarchy (deterministic)
  gridwatch etl centres FILE [--replace]   CSV with lon/lat columns, or GeoJSON points

Demo: the provincial centre in 兰州 (城关区), each prefecture's at its seat, each county's at its
seat township, each township's at its label point. Counties 肃北 (620923), 阿克塞 (620924) and
玛曲 (623025) have an established centre that is not yet an entity (实体化): 83 of 86 counties with
an entity centre, the 96.5 % the province reports. Every township has an entity centre. The demo
fills an empty registry; --replace regenerates it (what-if scenarios are kept).

File columns / GeoJSON properties: name, level (province | prefecture | county | township | village),
region_code, status (planned | established | entity; default established), staff, address, phone,
departments (names of departments of that region, separated by ; or 、), and lon, lat (CSV; also
longitude/latitude) or a Point geometry (GeoJSON). Each row is checked: a known region code, a
level matching the region's, a point inside Gansu (with a hint when lat/long look swapped) and
inside its region or within 2 km of it, a known status. Any bad row refuses the whole file with a
message naming the row; rows are matched to the registry by (region_code, name) and updated.
The stored coverage is recomputed after every load (``--no-recompute`` skips it).

Examples:
  gridwatch etl centres --demo
  gridwatch etl centres centres.csv
  gridwatch etl centres centres.geojson --replace
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import psycopg
from psycopg.rows import dict_row

from gridwatch.db import load_sql, transaction

__all__ = [
    "CentreRow", "CentreLoadError", "LEVELS", "STATUSES", "NEAR_M", "DEMO_ESTABLISHED_ONLY",
    "read_file", "read_csv", "read_geojson", "validate", "write_centres", "load_file", "load_demo",
    "add_arguments", "run",
]

HERE = Path(__file__).resolve().parent
LEVELS = ("province", "prefecture", "county", "township", "village")
STATUSES = ("planned", "established", "entity")
NEAR_M = 2_000.0                 # a centre may sit this far outside its region (a seat on the boundary)
DEMO_ESTABLISHED_ONLY = ("620923", "620924", "623025")   # 肃北, 阿克塞, 玛曲: established, not yet entity
LOCK_KEY = 620_000_040           # advisory lock: two registry loads never interleave
MAX_MESSAGES = 30
_SPLIT_DEPTS = re.compile(r"[;；、|]")


class CentreLoadError(ValueError):
    """The file (or request) was refused and nothing was written; the message names every bad row."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        shown = self.problems[:MAX_MESSAGES]
        more = len(self.problems) - len(shown)
        text = "\n".join(f"  {p}" for p in shown) + (f"\n  … and {more} more" if more > 0 else "")
        super().__init__(f"{len(self.problems)} problem(s), nothing was written:\n{text}")


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


def _number(where: str, name: str, value, problems: list[str]) -> float | None:
    s = _text(value)
    if s is None:
        problems.append(f"{where}: {name} is empty; give decimal degrees (e.g. 103.834)")
        return None
    try:
        x = float(s)
    except ValueError:
        problems.append(f"{where}: {name} {s!r} is not a number; give decimal degrees (e.g. 103.834)")
        return None
    if not math.isfinite(x):
        problems.append(f"{where}: {name} {s!r} is not a finite number")
        return None
    return x


def parse_row(where: str, props: dict, lon, lat, problems: list[str]) -> CentreRow | None:
    """A CentreRow from raw values, or None after appending what is wrong to ``problems``."""
    before = len(problems)
    name = _text(props.get("name"))
    if name is None:
        problems.append(f"{where}: name is empty; every centre needs a name (e.g. 城关区综治中心)")
    level = (_text(props.get("level")) or "").lower()
    if level not in LEVELS:
        problems.append(f"{where}: level {props.get('level')!r} is not known; use one of {', '.join(LEVELS)}")
    code = _text(props.get("region_code"))
    if code is None or not code.isdigit():
        problems.append(f"{where}: region_code {props.get('region_code')!r} is not a region code; use digits such as 620102")
    status = (_text(props.get("status")) or "established").lower()
    if status not in STATUSES:
        problems.append(f"{where}: status {props.get('status')!r} is not known; use planned, established or entity (实体化)")
    staff_text = _text(props.get("staff"))
    staff = None
    if staff_text is not None:
        try:
            staff = int(float(staff_text))
            if staff < 0 or staff != float(staff_text):
                raise ValueError
        except ValueError:
            problems.append(f"{where}: staff {staff_text!r} is not a whole number of people (0 or more)")
    x = _number(where, "lon", lon, problems)
    y = _number(where, "lat", lat, problems)
    depts = tuple(d.strip() for d in _SPLIT_DEPTS.split(_text(props.get("departments")) or "") if d.strip())
    if len(problems) > before:
        return None
    return CentreRow(where, name, level, code, x, y, status, staff, _text(props.get("address")), _text(props.get("phone")), depts)


_LON = ("lon", "longitude", "lng", "经度")
_LAT = ("lat", "latitude", "纬度")


def read_csv(text: str, source: str = "CSV") -> list[CentreRow]:
    """Rows of a CSV (header line first, UTF-8, lon/lat columns); CentreLoadError names every bad row."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    problems: list[str] = []
    lon_col = next((h for h in reader.fieldnames or [] if h.strip().lower() in _LON), None)
    lat_col = next((h for h in reader.fieldnames or [] if h.strip().lower() in _LAT), None)
    missing = [c for c in ("name", "level", "region_code") if c not in header]
    if lon_col is None:
        missing.append("lon")
    if lat_col is None:
        missing.append("lat")
    if missing:
        raise CentreLoadError([f"{source}: the header lacks column(s) {', '.join(missing)}; "
                               f"expected name, level, region_code, lon, lat (and optionally status, staff, address, phone, departments)"])
    rows: list[CentreRow] = []
    for line, raw in enumerate(reader, start=2):
        props = {k.strip().lower(): v for k, v in raw.items() if k is not None}
        row = parse_row(f"row {line}", props, raw.get(lon_col), raw.get(lat_col), problems)
        if row:
            rows.append(row)
    if problems:
        raise CentreLoadError(problems)
    if not rows:
        raise CentreLoadError([f"{source}: no rows under the header; nothing to load"])
    return rows


def read_geojson(text: str, source: str = "GeoJSON") -> list[CentreRow]:
    """Rows of a GeoJSON FeatureCollection of Points; CentreLoadError names every bad feature."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CentreLoadError([f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}); save it as GeoJSON"]) from exc
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list):
        raise CentreLoadError([f"{source}: expected a FeatureCollection with a features list"])
    problems: list[str] = []
    rows: list[CentreRow] = []
    for i, feat in enumerate(features, start=1):
        where = f"feature {i}"
        geom = (feat or {}).get("geometry") or {}
        props = {str(k).lower(): v for k, v in ((feat or {}).get("properties") or {}).items()}
        if geom.get("type") != "Point" or not isinstance(geom.get("coordinates"), list) or len(geom["coordinates"]) < 2:
            problems.append(f"{where}: geometry is {geom.get('type')!r}, not a Point; a centre is one point (lon, lat)")
            continue
        row = parse_row(where, props, geom["coordinates"][0], geom["coordinates"][1], problems)
        if row:
            rows.append(row)
    if problems:
        raise CentreLoadError(problems)
    if not rows:
        raise CentreLoadError([f"{source}: the FeatureCollection has no features; nothing to load"])
    return rows


def read_file(path: Path | str) -> list[CentreRow]:
    """Rows of a .csv or .geojson/.json file."""
    path = Path(path)
    if not path.exists():
        raise CentreLoadError([f"{path}: no such file"])
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CentreLoadError([f"{path.name}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"]) from exc
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv(text, path.name)
    if suffix in (".geojson", ".json"):
        return read_geojson(text, path.name)
    raise CentreLoadError([f"{path.name}: unknown file type {suffix!r}; give a .csv (with lon/lat columns) or a .geojson"])


# ------------------------------------------------------------------------- checking against the database

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
    cur = conn.cursor(row_factory=dict_row)
    found = cur.execute(load_sql(HERE, "centres-validate"), {
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
        known = cur.execute(
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
        cur = c.cursor(row_factory=dict_row)
        got = cur.execute(load_sql(HERE, "centres-upsert"), {
            "nos": list(range(len(rows))), "names": [r.name for r in rows], "levels": [r.level for r in rows],
            "codes": [r.region_code for r in rows], "statuses": [r.status for r in rows], "staff": [r.staff for r in rows],
            "addresses": [r.address for r in rows], "phones": [r.phone for r in rows],
            "lons": [r.lon for r in rows], "lats": [r.lat for r in rows],
        }).fetchall()
        by_key = {(g["region_code"], g["name"]): g["id"] for g in got}
        ids = [by_key[(r.region_code, r.name)] for r in rows]
        cur.execute("DELETE FROM centre_department WHERE centre_id = ANY(%s)", (ids,))
        pairs = [(ids[i], r.region_code, d) for i, r in enumerate(rows) for d in r.departments]
        if pairs:
            cur.execute(
                """INSERT INTO centre_department (centre_id, department_id)
                   SELECT DISTINCT p.id, d.id FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS p(id, code, dept)
                   JOIN department d ON d.region_code = p.code AND d.name = p.dept
                   ON CONFLICT DO NOTHING""",
                ([p[0] for p in pairs], [p[1] for p in pairs], [p[2] for p in pairs]))
        deleted = 0
        if replace:
            deleted = cur.execute("DELETE FROM centre WHERE scenario IS NULL AND NOT (id = ANY(%s))", (ids,)).rowcount
    return {"written": len(ids), "deleted": deleted, "ids": ids}


def _registry_count(conn) -> int:
    return conn.cursor(row_factory=dict_row).execute("SELECT count(*) AS n FROM centre WHERE scenario IS NULL").fetchone()["n"]


def _coverage_missing(conn) -> bool:
    return conn.cursor(row_factory=dict_row).execute("SELECT NOT EXISTS (SELECT 1 FROM coverage_params) AS x").fetchone()["x"]


def load_file(conn, path: Path | str, *, replace: bool = False, recompute: bool = True) -> dict:
    """Read, validate and write a CSV/GeoJSON registry file, then recompute the stored coverage (one transaction)."""
    from gridwatch import coverage

    started = time.perf_counter()
    rows = read_file(path)
    with transaction(conn) as c:
        result = write_centres(c, rows, replace=replace)
        if recompute:
            result["coverage"] = coverage.recompute(c)
    result["seconds"] = time.perf_counter() - started
    return result


def load_demo(conn, *, replace: bool = False, recompute: bool = True) -> dict:
    """Generate the demo registry from the loaded hierarchy (only into an empty registry unless ``replace``)."""
    from gridwatch import coverage

    started = time.perf_counter()
    with transaction(conn) as c:
        c.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        cur = c.cursor(row_factory=dict_row)
        if not cur.execute("SELECT EXISTS (SELECT 1 FROM region WHERE level = 'province') AS x").fetchone()["x"]:
            raise CentreLoadError(["the region table has no province: load the hierarchy first (gridwatch etl gansu)"])
        existing = _registry_count(c)
        result: dict = {"unchanged": False, "deleted": 0}
        if existing and not replace:
            result.update(unchanged=True, written=0)
        else:
            if existing:
                result["deleted"] = cur.execute("DELETE FROM centre WHERE scenario IS NULL").rowcount
            result["written"] = cur.execute(load_sql(HERE, "centres-demo"), {"established_only": list(DEMO_ESTABLISHED_ONLY)}).rowcount
            cur.execute(
                """INSERT INTO centre_department (centre_id, department_id)
                   SELECT c.id, d.id FROM centre c JOIN department d ON d.region_code = c.region_code
                   WHERE c.scenario IS NULL ON CONFLICT DO NOTHING""")
        counts = cur.execute(
            """SELECT level, status, count(*) AS n FROM centre WHERE scenario IS NULL GROUP BY level, status ORDER BY level, status""").fetchall()
        result["counts"] = {f"{r['level']}/{r['status']}": r["n"] for r in counts}
        if recompute and (not result["unchanged"] or _coverage_missing(c)):
            result["coverage"] = coverage.recompute(c)
    result["seconds"] = time.perf_counter() - started
    return result


# ------------------------------------------------------------------------- CLI

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", help="a .csv (name, level, region_code, lon, lat, …) or .geojson of points")
    p.add_argument("--demo", action="store_true", help="generate the demo registry from the loaded hierarchy")
    p.add_argument("--replace", action="store_true",
                   help="with --demo: regenerate a non-empty registry; with FILE: also delete registry centres the file does not name")
    p.add_argument("--no-recompute", action="store_true", help="do not recompute the stored coverage afterwards")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from gridwatch import db
    from gridwatch.coverage import CoverageError

    if bool(args.file) == bool(args.demo):
        print("gridwatch etl centres: give either FILE or --demo (see --help)", file=sys.stderr)
        return 2
    with psycopg.connect(db.database_url(), row_factory=dict_row) as conn:
        try:
            if args.demo:
                result = load_demo(conn, replace=args.replace, recompute=not args.no_recompute)
            else:
                result = load_file(conn, args.file, replace=args.replace, recompute=not args.no_recompute)
        except (CentreLoadError, CoverageError) as exc:
            print(f"gridwatch etl centres: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2, default=str))
    elif args.demo and result["unchanged"]:
        print(f"the registry already holds {sum(result['counts'].values())} centres: nothing to do (use --replace to regenerate)",
              file=sys.stderr)
    else:
        cov = result.get("coverage")
        extra = f"; coverage recomputed in {cov['seconds']:.1f} s ({cov['grids']} grids)" if cov else ""
        print(f"{result['written']} centre(s) written, {result['deleted']} deleted in {result['seconds']:.1f} s{extra}", file=sys.stderr)
    return 0
