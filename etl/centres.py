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
import sys
import time
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from gridwatch import coverage
from gridwatch.coverage.registry import (
    LEVELS, LOCK_KEY, NEAR_M, STATUSES, CentreLoadError, CentreRow, parse_row, validate, write_centres,
)
from gridwatch.db import database_url, execute, load_sql, transaction
from gridwatch.errors import DomainError

__all__ = [
    "CentreRow", "CentreLoadError", "LEVELS", "STATUSES", "NEAR_M", "DEMO_ESTABLISHED_ONLY",
    "read_file", "read_csv", "read_geojson", "validate", "write_centres", "load_file", "load_demo",
    "add_arguments", "run",
]
# Validation and writes live in the core (gridwatch.coverage.registry); this module reads files and
# generates the demo, then calls it. The names above stay importable from here for callers.

HERE = Path(__file__).resolve().parent
DEMO_ESTABLISHED_ONLY = ("620923", "620924", "623025")   # 肃北, 阿克塞, 玛曲: established, not yet entity


# ------------------------------------------------------------------------- reading files (rows → gridwatch.coverage.registry)


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


def _registry_count(conn) -> int:
    return execute(conn, "SELECT count(*) AS n FROM centre WHERE scenario IS NULL").fetchone()["n"]


def _coverage_missing(conn) -> bool:
    return execute(conn, "SELECT NOT EXISTS (SELECT 1 FROM coverage_params) AS x").fetchone()["x"]


def load_file(conn, path: Path | str, *, replace: bool = False, recompute: bool = True) -> dict:
    """Read, validate and write a CSV/GeoJSON registry file, then recompute the stored coverage (one transaction)."""
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
    started = time.perf_counter()
    with transaction(conn) as c:
        c.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        cur = c.cursor(row_factory=dict_row)   # a cursor: several statements below
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
    if bool(args.file) == bool(args.demo):
        print("gridwatch etl centres: give either FILE or --demo (see --help)", file=sys.stderr)
        return 2
    with psycopg.connect(database_url(), row_factory=dict_row) as conn:
        try:
            if args.demo:
                result = load_demo(conn, replace=args.replace, recompute=not args.no_recompute)
            else:
                result = load_file(conn, args.file, replace=args.replace, recompute=not args.no_recompute)
        except DomainError as exc:   # CentreLoadError, CoverageError, NotFound: the message says what to fix
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
