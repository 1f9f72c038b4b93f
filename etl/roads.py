"""Load a road network, so coverage also reports travel times over the roads. All-or-nothing.

  gridwatch etl roads FILE [--speed-field maxspeed] [--default-speed 30] [--append]
  gridwatch etl roads --clear                 back to straight-line coverage only

FILE: GeoJSON, GeoPackage or Shapefile of lines (LineString / MultiLineString), in any CRS it
declares (transformed to WGS84/CGCS2000) or in lon/lat degrees. Lines meet where they share a
vertex (a noded network). Each line's speed comes from ``--speed-field`` (km/h, 1–150) or
``--default-speed``. Every feature is checked — a line, inside Gansu (with a hint when lat/long
look swapped), a usable speed — and a bad one refuses the file naming the feature. The load
replaces the roads (``--append`` adds to them), then computes every grid's minutes to its nearest
township-tier and county-tier centre: along the roads, and at 15 km/h between a point and its
nearest road vertex (or straight to the centre when that is quicker).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import psycopg
import shapely
from psycopg.rows import dict_row

from gridwatch import coverage, db
from gridwatch.db import transaction

__all__ = ["RoadLoadError", "read_roads", "load_roads", "clear_roads", "add_arguments", "run"]

MAX_SPEED = 150.0
GANSU_BOX = (92.0, 32.0, 109.0, 43.0)
MAX_MESSAGES = 30


class RoadLoadError(ValueError):
    """The road file was refused; nothing was written. The message names every bad feature."""

    def __init__(self, problems):
        self.problems = list(problems)
        shown = self.problems[:MAX_MESSAGES]
        more = len(self.problems) - len(shown)
        super().__init__(f"{len(self.problems)} problem(s), nothing was written:\n" + "\n".join(f"  {p}" for p in shown)
                         + (f"\n  … and {more} more" if more > 0 else ""))


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def read_roads(path: Path | str, *, speed_field: str | None = None, default_speed: float = 30.0):
    """(LineStrings, speeds km/h, names) from a line file, in EPSG:4326; RoadLoadError names bad features."""
    import geopandas as gpd   # heavy (geopandas, pyogrio/GDAL): loaded only when a road file is read

    path = Path(path)
    if not path.exists():
        raise RoadLoadError([f"{path}: no such file"])
    if not (0 < default_speed <= MAX_SPEED):
        raise RoadLoadError([f"--default-speed {default_speed}: give km/h between 1 and {MAX_SPEED:.0f}"])
    try:
        with warnings.catch_warnings():      # mixed-type attributes (a speed of "fast") are reported below, per feature
            warnings.simplefilter("ignore", UserWarning)
            frame = gpd.read_file(path, engine="pyogrio")
    except Exception as exc:  # noqa: BLE001 - any reader failure is the file's problem, reported plainly
        raise RoadLoadError([f"{path.name}: cannot be read as GeoJSON, GeoPackage or Shapefile ({str(exc).strip().splitlines()[0]})"]) from exc
    if len(frame) == 0:
        raise RoadLoadError([f"{path.name}: holds no features"])
    if frame.crs is not None and frame.crs.to_epsg() not in (4326, 4490):
        frame = frame.to_crs(4326)
    problems: list[str] = []
    if speed_field is not None and speed_field not in frame.columns:
        raise RoadLoadError([f"{path.name}: no column {speed_field!r} for --speed-field; columns are {', '.join(map(str, frame.columns))}"])
    kinds = frame.geometry.geom_type.to_numpy()
    bad = np.nonzero(~np.isin(kinds, ["LineString", "MultiLineString"]))[0]
    problems += [f"feature {i + 1}: geometry is {kinds[i]!r}, not a line; a road file holds LineStrings" for i in bad[:MAX_MESSAGES]]
    bounds = frame.geometry.bounds.to_numpy()
    x0, y0, x1, y1 = GANSU_BOX
    outside = np.nonzero(~((bounds[:, 2] >= x0) & (bounds[:, 0] <= x1) & (bounds[:, 3] >= y0) & (bounds[:, 1] <= y1)))[0]
    for i in outside[:MAX_MESSAGES]:
        if i in bad:
            continue
        swapped = (bounds[i, 3] >= x0) and (bounds[i, 1] <= x1) and (bounds[i, 2] >= y0) and (bounds[i, 0] <= y1)
        problems.append(f"feature {i + 1}: the line at lon {bounds[i, 0]:.4f}..{bounds[i, 2]:.4f}, lat {bounds[i, 1]:.4f}..{bounds[i, 3]:.4f} "
                        f"is outside Gansu" + ("; did you swap lat/long?" if swapped else "; check the coordinates and the file's CRS"))
    if speed_field is not None:
        raw = frame[speed_field].to_numpy()
        speeds = np.full(len(frame), np.nan)
        for i, v in enumerate(raw):
            try:
                speeds[i] = float(v) if v is not None and str(v).strip() != "" else default_speed
            except (TypeError, ValueError):
                speeds[i] = np.nan
        wrong = np.nonzero(~(np.isfinite(speeds) & (speeds > 0) & (speeds <= MAX_SPEED)))[0]
        problems += [f"feature {i + 1}: {speed_field} {_plain(raw[i])!r} is not a speed in km/h between 1 and {MAX_SPEED:.0f}"
                     for i in wrong[:MAX_MESSAGES]]
    else:
        speeds = np.full(len(frame), float(default_speed))
    if problems:
        raise RoadLoadError(problems)
    names = frame["name"].astype(str).to_numpy() if "name" in frame.columns else np.full(len(frame), None, dtype=object)
    parts, index = shapely.get_parts(frame.geometry.to_numpy(), return_index=True)
    keep = ~shapely.is_empty(parts)
    return parts[keep], speeds[index][keep], names[index][keep]


def load_roads(conn, path: Path | str, *, speed_field: str | None = None, default_speed: float = 30.0,
               append: bool = False) -> dict:
    """Read, check and write the roads, then recompute the grids' travel times (one transaction)."""
    started = time.perf_counter()
    lines, speeds, names = read_roads(path, speed_field=speed_field, default_speed=default_speed)
    with transaction(conn) as c:
        cur = c.cursor(row_factory=dict_row)
        deleted = 0 if append else cur.execute("DELETE FROM road").rowcount
        cur.execute(
            """INSERT INTO road (name, speed_kmh, source, geom)
               SELECT n, s, %s, ST_SetSRID(ST_GeomFromWKB(w), 4326)
               FROM unnest(%s::text[], %s::float8[], %s::bytea[]) AS u(n, s, w)""",
            (f"file:{Path(path).name}", [None if n in (None, "None") else str(n) for n in names],
             [float(s) for s in speeds], [bytes(b) for b in shapely.to_wkb(lines)]))
        travel = coverage.recompute_travel(c)
    return {"roads": int(len(lines)), "deleted": deleted, "travel": travel, "seconds": time.perf_counter() - started}


def clear_roads(conn) -> int:
    with transaction(conn) as c:
        n = c.cursor().execute("DELETE FROM road").rowcount
        coverage.recompute_travel(c)
    return n


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", help="GeoJSON / GeoPackage / Shapefile of road lines")
    p.add_argument("--speed-field", default=None, help="attribute holding each line's speed in km/h")
    p.add_argument("--default-speed", type=float, default=30.0, help="km/h for lines without one (default %(default)s)")
    p.add_argument("--append", action="store_true", help="add to the loaded roads instead of replacing them")
    p.add_argument("--clear", action="store_true", help="remove every road: coverage is straight-line only again")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    if bool(args.file) == bool(args.clear):
        print("gridwatch etl roads: give either FILE or --clear (see --help)", file=sys.stderr)
        return 2
    with psycopg.connect(db.database_url(), row_factory=dict_row) as conn:
        try:
            if args.clear:
                result = {"deleted": clear_roads(conn)}
            else:
                result = load_roads(conn, args.file, speed_field=args.speed_field, default_speed=args.default_speed,
                                    append=args.append)
        except RoadLoadError as exc:
            print(f"gridwatch etl roads: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2, default=str))
    elif args.clear:
        print(f"{result['deleted']} road(s) removed; coverage is straight-line only", file=sys.stderr)
    else:
        t = result["travel"] or {}
        print(f"{result['roads']} road line(s) loaded in {result['seconds']:.1f} s; travel times for {t.get('grids', 0):,} grids "
              f"over {t.get('nodes', 0):,} road vertices", file=sys.stderr)
    return 0
