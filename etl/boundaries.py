"""Load your own surveyed boundaries for one level (GeoJSON, GeoPackage, Shapefile), all-or-nothing.

  gridwatch etl boundaries FILE --level LEVEL --code-field F --name-field F [--parent-field F]

LEVEL is province, prefecture, county, township, village or grid (or 省/市/县/乡镇/村/网格).
The file is reprojected from its own CRS to WGS84 (--gcj02: its coordinates are GCJ-02, e.g.
traced on AMap). Invalid geometries are repaired (make_valid) and each repair is reported.

Each feature replaces the unit with its code (or joins its parent as a new unit). Siblings not in
the file give up the area the file's units now cover, small gaps next to the parent's edge go to
a neighbour, and the generated levels below every changed unit are generated again (keeping
their codes and names).

A live system takes the change (行政区划调整): in the same transaction every case, hazard and
check-in under a changed unit is re-stamped to the new units (a case by its point, a hazard by
ST_PointOnSurface, a check-in of a removed grid by that grid's representative point), centres and departments of
removed units move to the unit of their level at their point, each changed row's codes before
are kept (table region_restamp; view reported_codes gives the codes when reported), and the
change is recorded in boundary_adjustment with its effective date (--effective, default today)
and what moved: counts from each old unit to each new one, printed at the end. The file is refused — and nothing is written — with a message naming the
feature for: an unknown level, codes that do not fit the level, children without a parent,
geometries far outside their parent, lat/long swapped, missing or duplicate codes and names, and
rows of removed units whose point lies in no new unit (orphans).

Examples:
  gridwatch etl boundaries townships.gpkg --level township --code-field XZQDM --name-field XZQMC
  gridwatch etl boundaries grids.shp --level grid --code-field code --name-field name --parent-field village
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import psycopg
import shapely
from psycopg.rows import tuple_row
from zoneinfo import ZoneInfo

from etl.gansu import LoadError, Unit, _sql, finish_units, generate_below, progress_bar, write_units
from etl.migrate import migrate
from geo.codes import CODE_LENGTH, LEVELS, code_problem, county_kind, normalise_level, prefecture_kind, township_kind, village_kind
from geo.coords import gcj02_to_wgs84_geometry
from geo.partition import GRID, split_by_nearest, to_multipolygon
from gridwatch import config, db
from gridwatch.cluster import ensure_postgis
from gridwatch.coverage.figures import refresh
from gridwatch.db import transaction

__all__ = ["BoundaryError", "Feature", "read_features", "load_boundaries", "restamp", "format_moves", "add_arguments", "run",
           "FAR_OUTSIDE_SHARE", "OVERLAP_SHARE"]

FAR_OUTSIDE_SHARE = 0.05   # a feature with more than 5 % of its area outside its parent is refused
OVERLAP_SHARE = 0.01       # two features overlapping by more than 1 % of the smaller one are refused
SWAP_MARGIN = 0.5          # degrees around the province's extent still counted as "inside"
MAX_LISTED = 12            # refusals list at most this many features, then "… and N more"


class BoundaryError(LoadError):
    """The file cannot be loaded as it is; nothing was written. The message names the features."""


@dataclass
class Feature:
    """One feature of the file: its position (1-based), code, name, parent code, WGS84 geometry."""

    number: int
    code: str
    name: str
    parent_code: str | None
    geom: object
    repairs: list[str] = field(default_factory=list)

    def label(self) -> str:
        return f"feature #{self.number} (code {self.code!r}, name {self.name!r})"


def _refuse(problems: list[str], header: str) -> None:
    if not problems:
        return
    shown = problems[:MAX_LISTED]
    more = f"\n  … and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    raise BoundaryError(header + "\n  " + "\n  ".join(shown) + more + "\nNothing was written.")


def _as_code(value) -> str | None:
    """A code cell as text: numbers from a Shapefile's numeric field lose their '.0'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def _field(columns: list[str], wanted: str, option: str) -> str:
    if wanted in columns:
        return wanted
    folded = {c.lower(): c for c in columns}
    if wanted.lower() in folded:
        return folded[wanted.lower()]
    raise BoundaryError(f"{option} {wanted!r}: the file has no such field. Its fields are: {', '.join(columns) or '(none)'}. "
                        "Nothing was written.")


def read_features(path: Path | str, code_field: str, name_field: str, parent_field: str | None = None, *,
                  gcj02: bool = False, layer: str | None = None) -> tuple[list[Feature], list[str]]:
    """Features of a GeoJSON / GeoPackage / Shapefile in WGS84, repaired, on the 1 cm grid; and notes.

    Refuses (BoundaryError) a file it cannot read, missing fields, missing values and non-polygons.
    """
    # heavy optional dependency (GDAL underneath), loaded only when a boundary file is read
    import pyogrio

    path = Path(path)
    notes: list[str] = []
    if not path.exists():
        raise BoundaryError(f"file {str(path)!r} does not exist. Nothing was written.")
    try:
        gdf = pyogrio.read_dataframe(path, layer=layer)
    except Exception as exc:  # noqa: BLE001 - pyogrio raises several types; the message is what matters
        raise BoundaryError(f"cannot read {path.name} as GeoJSON, GeoPackage or Shapefile: {exc}. Nothing was written.") from exc
    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    code_col = _field(columns, code_field, "--code-field")
    name_col = _field(columns, name_field, "--name-field")
    parent_col = _field(columns, parent_field, "--parent-field") if parent_field else None
    if len(gdf) == 0:
        raise BoundaryError(f"{path.name} holds no features. Nothing was written.")
    if gdf.crs is None:
        xmin, ymin, xmax, ymax = gdf.total_bounds
        if -180 <= xmin and xmax <= 180 and -90 <= ymin and ymax <= 90:
            notes.append(f"{path.name} names no CRS; its numbers look like degrees, so they are read as WGS84 (EPSG:4326)")
        else:
            raise BoundaryError(f"{path.name} names no CRS and its coordinates ({xmin:.0f}…{xmax:.0f}, {ymin:.0f}…{ymax:.0f}) "
                                "are not degrees: add the .prj / CRS to the file. Nothing was written.")
    elif gdf.crs.to_epsg() != 4326:
        notes.append(f"reprojected from {gdf.crs.name} ({gdf.crs.to_string()}) to WGS84")
        gdf = gdf.to_crs(4326)
    problems: list[str] = []
    features: list[Feature] = []
    for number, (code_v, name_v, parent_v, geom) in enumerate(
            zip(gdf[code_col], gdf[name_col], gdf[parent_col] if parent_col else [None] * len(gdf), gdf.geometry), 1):
        code = _as_code(code_v)
        name = None if name_v is None or (isinstance(name_v, float) and math.isnan(name_v)) else str(name_v).strip()
        where = f"feature #{number} (code {code!r}, name {name!r})"
        if not code:
            problems.append(f"{where}: {code_col} is empty — every feature needs its region code")
            continue
        if not name:
            problems.append(f"{where}: {name_col} is empty — every feature needs a name")
            continue
        if geom is None or geom.is_empty:
            problems.append(f"{where}: has no geometry")
            continue
        if geom.geom_type not in ("Polygon", "MultiPolygon", "GeometryCollection"):
            problems.append(f"{where}: is a {geom.geom_type}; boundaries must be polygons")
            continue
        feature = Feature(number, code, name, _as_code(parent_v) if parent_col else None, geom)
        if gcj02:
            feature.geom = gcj02_to_wgs84_geometry(feature.geom)
        if not feature.geom.is_valid:
            reason = shapely.is_valid_reason(feature.geom)
            feature.geom = to_multipolygon(shapely.make_valid(feature.geom))
            feature.repairs.append(f"{feature.label()}: repaired an invalid geometry ({reason})")
        feature.geom = to_multipolygon(shapely.set_precision(to_multipolygon(feature.geom), GRID))
        if feature.geom.is_empty:
            problems.append(f"{where}: nothing polygonal is left after repairing its geometry")
            continue
        features.append(feature)
    _refuse(problems, f"{path.name}: {len(problems)} feature(s) cannot be read:")
    return features, notes


def _rows(conn, query: str, params=()) -> list[tuple]:
    return conn.cursor(row_factory=tuple_row).execute(query, params).fetchall()


def _region_units(conn, query: str, params=()) -> list[Unit]:
    """Units from a query selecting code, name, level, kind, parent_code, source, ST_AsBinary(geom)."""
    rows = _rows(conn, query, params)
    return [Unit(code, name, level, kind, parent, source, to_multipolygon(shapely.from_wkb(wkb)))
            for code, name, level, kind, parent, source, wkb in rows]


def _kind(level: str, name: str) -> str | None:
    try:
        if level == "prefecture":
            return prefecture_kind(name)
        if level == "county":
            return county_kind(name)
        if level == "township":
            return township_kind(name)
        if level == "village":
            return village_kind(name)
        if level == "grid":
            return "网格"
        return "省"
    except ValueError:
        return None


def _check_codes(features: list[Feature], level: str, source_name: str) -> None:
    problems = []
    seen: dict[str, int] = {}
    for f in features:
        why = code_problem(f.code, level, f.parent_code)
        if why:
            problems.append(f"{f.label()}: {why}")
        if f.parent_code is not None and level != "province":
            lengths = {CODE_LENGTH[lv] for lv in LEVELS[: LEVELS.index(level)]}
            if not f.parent_code.isdigit() or len(f.parent_code) not in lengths:
                problems.append(f"{f.label()}: parent code {f.parent_code!r} is not the code of a level above {level} "
                                f"({' or '.join(str(n) for n in sorted(lengths))} digits)")
        if f.code in seen:
            problems.append(f"{f.label()}: code {f.code!r} is used already by feature #{seen[f.code]} — codes must be unique")
        seen.setdefault(f.code, f.number)
    _refuse(problems, f"{source_name}: {len(problems)} code(s) do not fit the level {level!r}:")


def _check_swapped(conn, features: list[Feature], source_name: str) -> None:
    row = _rows(conn, "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM region "
                      "WHERE level = 'province') x")
    if not row or row[0][0] is None:
        row = _rows(conn, "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM region) x")
    if not row or row[0][0] is None:
        return
    x0, y0, x1, y1 = (v for v in row[0])
    m = SWAP_MARGIN

    def inside(b) -> bool:
        return b[0] >= x0 - m and b[2] <= x1 + m and b[1] >= y0 - m and b[3] <= y1 + m

    problems = []
    for f in features:
        b = f.geom.bounds
        if not inside(b) and inside((b[1], b[0], b[3], b[2])):
            problems.append(f"{f.label()}: lies at longitude {b[0]:.2f}…{b[2]:.2f}, latitude {b[1]:.2f}…{b[3]:.2f}, "
                            f"outside the province ({x0:.1f}…{x1:.1f} E, {y0:.1f}…{y1:.1f} N) — but inside it with "
                            "latitude and longitude swapped: did you swap lat/long? Write x = longitude, y = latitude "
                            "(or give the file its real CRS).")
    _refuse(problems, f"{source_name}: coordinates look swapped:")


def _find_parents(conn, features: list[Feature], level: str, source_name: str) -> dict[str, Unit]:
    """The parent unit of every feature (explicit, else the longest existing code prefix above it)."""
    above = LEVELS[: LEVELS.index(level)]
    candidates: set[str] = set()
    for f in features:
        if f.parent_code:
            candidates.add(f.parent_code)
        else:
            candidates.update(f.code[:n] for n in (CODE_LENGTH[lv] for lv in above))
    found = {u.code: u for u in _region_units(conn, "SELECT code, name, level, kind, parent_code, source, ST_AsBinary(geom) FROM region WHERE code = ANY(%s)", (sorted(candidates),))}
    child_levels = {code: set(levels) for code, levels in _rows(
        conn, "SELECT parent_code, array_agg(DISTINCT level) FROM region WHERE parent_code = ANY(%s) GROUP BY parent_code",
        (sorted(found),))}

    def skips_a_level(parent: Unit) -> bool:
        """True if ``level`` is not the level right below ``parent`` and the parent has units in between
        (a township may hang under a city only if that city has no counties, like 嘉峪关市)."""
        between = set(LEVELS[LEVELS.index(parent.level) + 1: LEVELS.index(level)])
        return bool(between & child_levels.get(parent.code, set()))
    problems = []
    for f in features:
        if level == "province":
            continue
        if f.parent_code:
            parent = found.get(f.parent_code)
            if parent is None:
                problems.append(f"{f.label()}: its parent {f.parent_code!r} is not in the database — load the level above first")
                continue
            if parent.level not in above:
                problems.append(f"{f.label()}: its parent {f.parent_code!r} is a {parent.level}, not a level above {level}")
                continue
            if skips_a_level(parent):
                problems.append(f"{f.label()}: its parent {f.parent_code!r} ({parent.name}) is a {parent.level} that has "
                                f"units between it and a {level}: give the code of the level right above")
                continue
        else:
            prefixes = [f.code[: CODE_LENGTH[lv]] for lv in reversed(above)]
            parent = next((found[p] for p in prefixes if p in found), None)
            if parent is None or skips_a_level(parent):
                direct = prefixes[0]
                problems.append(f"{f.label()}: no parent — the {above[-1]} {direct!r} is not in the database"
                                + (f" (and {parent.code} {parent.name} has its own {above[-1]} units)" if parent else "")
                                + ". Load the level above first, fix the code, or give --parent-field")
                continue
            f.parent_code = parent.code
    _refuse(problems, f"{source_name}: {len(problems)} feature(s) have no parent:")
    return {f.code: found[f.parent_code] for f in features if f.parent_code}


def _check_inside(features: list[Feature], parents: dict[str, Unit], notes: list[str], source_name: str) -> None:
    problems = []
    for f in features:
        parent = parents.get(f.code)
        if parent is None:
            continue
        area = f.geom.area
        outside = shapely.difference(f.geom, parent.geom, grid_size=GRID).area
        share = outside / area if area else 1.0
        if share > FAR_OUTSIDE_SHARE:
            distance_km = shapely.distance(f.geom.centroid, parent.geom) * 111.0
            problems.append(f"{f.label()}: {share:.0%} of it lies outside its parent {parent.code} {parent.name} "
                            f"(its centre is {distance_km:.1f} km from the parent) — check its code or parent, and the file's CRS")
        elif outside > 0:
            f.geom = to_multipolygon(shapely.intersection(f.geom, parent.geom, grid_size=GRID))
            if share > 1e-6:
                notes.append(f"{f.label()}: clipped to its parent {parent.code} {parent.name} ({share:.3%} of it lay outside)")
    _refuse(problems, f"{source_name}: {len(problems)} feature(s) lie far outside their parent:")


def _check_overlaps(features: list[Feature], notes: list[str], source_name: str) -> None:
    geoms = np.array([f.geom for f in features], dtype=object)
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    problems = []
    for i, j in zip(a.tolist(), b.tolist()):
        if i >= j:
            continue
        overlap = shapely.intersection(features[i].geom, features[j].geom, grid_size=GRID).area
        if overlap <= 0:
            continue
        smaller = min(features[i].geom.area, features[j].geom.area)
        if overlap > OVERLAP_SHARE * smaller:
            problems.append(f"{features[i].label()} and {features[j].label()} overlap by {overlap / smaller:.1%} of the smaller one")
        else:
            features[j].geom = to_multipolygon(shapely.difference(features[j].geom, features[i].geom, grid_size=GRID))
            notes.append(f"{features[j].label()}: gave its {overlap / smaller:.4%} overlap with {features[i].label()} to that one")
    _refuse(problems, f"{source_name}: {len(problems)} pair(s) of features overlap:")


def _fill_gaps(parent: Unit, children: list[Unit], prefer_not: set[str], seed: int, notes: list[str]) -> None:
    """Hand each piece of ``parent`` that no child covers to the children around it, each the side
    nearest to it. Children whose codes are in ``prefer_not`` (the file's surveyed units) take a
    gap only when no other child touches it."""
    covered = shapely.union_all([c.geom for c in children], grid_size=GRID)
    gaps = shapely.get_parts(to_multipolygon(shapely.difference(parent.geom, covered, grid_size=GRID)))
    for k, gap in enumerate(gaps):
        touching = [c for c in children if shapely.distance(c.geom, gap) <= 2 * GRID]
        takers = [c for c in touching if c.code not in prefer_not] or touching
        if not takers:  # a piece of the parent away from every child (an exclave): the nearest takes it
            takers = [min(children, key=lambda c: shapely.distance(c.geom, gap))]
        pieces = split_by_nearest(gap, [c.geom for c in takers], seed=[int(seed), int(parent.code), k])
        for taker, piece in zip(takers, pieces):
            if piece.is_empty:
                continue
            taker.geom = to_multipolygon(shapely.union(taker.geom, piece, grid_size=GRID))
            if taker.code in prefer_not and piece.area > 1e-6 * parent.geom.area:
                notes.append(f"{taker.code} {taker.name}: took a gap of {piece.area / parent.geom.area:.4%} of "
                             f"{parent.name} that no other unit touched")


def _snapshot_digest(features: list[Feature], level: str) -> str:
    h = hashlib.sha256(level.encode())
    for f in features:
        h.update(f"{f.code}|{f.name}|{f.parent_code}".encode())
        h.update(shapely.to_wkb(shapely.normalize(f.geom)))
    return h.hexdigest()


def load_boundaries(conn: psycopg.Connection, path: Path | str, level: str, code_field: str, name_field: str,
                    parent_field: str | None = None, *, progress: bool = True, seed: int | None = None,
                    gcj02: bool = False, layer: str | None = None, effective: date | None = None) -> dict:
    """Load one level of boundaries from ``path`` in ONE transaction (see the module doc).

    Returns {"level", "loaded": n, "replaced": [...], "new": [...], "adjusted": [...],
    "regenerated": n, "deleted": [...], "repairs": [...], "notes": [...], "seconds",
    "adjustment": {"id", "effective_date"}, "restamped": {kind: n}, "moves": [{"kind", "from", "to", "n"}]}.
    Raises BoundaryError (nothing written) when the file is refused.
    """
    started = time.perf_counter()
    path = Path(path)
    source_name = path.name
    try:
        level = normalise_level(level)
    except ValueError as exc:
        raise BoundaryError(f"--level: {exc}. Nothing was written.") from exc
    seed = int(config.get("GRIDWATCH_SEED")) if seed is None else int(seed)
    if effective is None:
        effective = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    features, notes = read_features(path, code_field, name_field, parent_field, gcj02=gcj02, layer=layer)
    _check_codes(features, level, source_name)
    source = f"file:{source_name}"
    with transaction(conn):
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (620_000_010,))
        _check_swapped(conn, features, source_name)
        parents = _find_parents(conn, features, level, source_name)
        _check_inside(features, parents, notes, source_name)
        _check_overlaps(features, notes, source_name)

        by_parent: dict[str | None, list[Feature]] = {}
        for f in features:
            by_parent.setdefault(f.parent_code, []).append(f)
        all_units: list[Unit] = []
        deleted: list[str] = []
        replaced: list[str] = []
        new_codes: list[str] = []
        adjusted: list[str] = []
        changed: list[Unit] = []
        for parent_code, group in progress_bar(list(by_parent.items()), progress, f"fitting {level} units into their parents"):
            file_codes = {f.code for f in group}
            siblings = _region_units(conn, "SELECT code, name, level, kind, parent_code, source, ST_AsBinary(geom) FROM region WHERE parent_code IS NOT DISTINCT FROM %s "
                                           "AND level = %s ORDER BY code", (parent_code, level))
            old = {s.code: s for s in siblings}
            mine = [Unit(f.code, f.name, level, _kind(level, f.name), parent_code, source, f.geom) for f in group]
            for u in mine:
                (replaced if u.code in old else new_codes).append(u.code)
                if u.code in old and old[u.code].source != "generated":
                    notes.append(f"{u.code} {u.name}: replaces a {old[u.code].source} outline")
            covered = shapely.union_all([u.geom for u in mine], grid_size=GRID)
            others: list[Unit] = []
            for s in siblings:
                if s.code in file_codes:
                    continue
                rest = to_multipolygon(shapely.difference(s.geom, covered, grid_size=GRID))
                if rest.is_empty or rest.area <= 1e-6 * s.geom.area:
                    deleted.append(s.code)
                    notes.append(f"{s.code} {s.name}: entirely covered by the file's units — removed with what hangs below it")
                    continue
                if rest.area < s.geom.area * (1 - 1e-9):
                    s.geom = rest
                    adjusted.append(s.code)
                    changed.append(s)
                others.append(s)
            group_units = mine + others
            if parent_code is not None:
                before = {u.code: u.geom for u in group_units}
                _fill_gaps(parents[group[0].code], group_units, file_codes, seed, notes)
                changed_codes = {u.code for u in changed}
                for u in others:
                    if u.geom is not before[u.code] and u.code not in changed_codes:
                        changed.append(u)
                        adjusted.append(u.code)
            changed.extend(mine)
            all_units.extend(finish_units(group_units))

        # the levels below every changed unit: generated ones again, surveyed/real ones kept
        patterns = [u.code + "%" for u in changed]
        below = _region_units(conn, "SELECT code, name, level, kind, parent_code, source, ST_AsBinary(geom) FROM region WHERE code LIKE ANY(%s) ORDER BY code", (patterns,)) if patterns else []
        existing: dict[str, list[Unit]] = {}
        for u in below:
            if u.parent_code is not None:
                existing.setdefault(u.parent_code, []).append(u)
        regenerated: list[Unit] = []
        for u in progress_bar(changed, progress, "generating the levels below"):
            units_below, gone = generate_below(u, existing, seed, notes)
            regenerated.extend(units_below)
            deleted.extend(gone)
        all_units.extend(finish_units(regenerated))
        gone = sorted(set(deleted))
        touched = sorted({u.code for u in changed} | set(gone))
        if touched:
            conn.execute(_sql("boundary_old_points"), {"patterns": [c + "%" for c in touched]})
        result = write_units(conn, all_units, progress=progress)
        adjustment = _record_adjustment(conn, level, source_name, effective, replaced, new_codes, gone)
        moves = restamp(conn, adjustment, touched, gone, level, source_name) if touched else _no_moves()
        if deleted:
            try:
                with conn.transaction():
                    conn.execute("DELETE FROM region WHERE code = ANY(%s)", (gone,))
            except psycopg.errors.ForeignKeyViolation as exc:
                raise BoundaryError(f"units the file replaces are still referenced ({exc.diag.message_detail}) by rows the "
                                    "new units could not take. Nothing was written.") from exc
        coverage = _refresh_coverage(conn, touched) if touched else None
        repairs = [r for f in features for r in f.repairs]
        stats = {"level": level, "file": str(path), "loaded": len(features), "replaced": replaced, "new": new_codes,
                 "adjusted": sorted(set(adjusted)), "regenerated": len(regenerated), "deleted": sorted(set(deleted)),
                 "repairs": repairs, "notes": notes, "written": result["written"], "seed": seed,
                 "adjustment": {"id": adjustment, "effective_date": effective.isoformat()}, "coverage": coverage, **moves}
        seconds = time.perf_counter() - started
        conn.execute(
            """INSERT INTO etl_load (name, checksum, seed, stats, seconds) VALUES (%s, %s, %s, %s, %s)
               ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, seed = EXCLUDED.seed,
                   stats = EXCLUDED.stats, seconds = EXCLUDED.seconds, loaded_at = now()""",
            (f"boundaries:{source_name}:{level}", _snapshot_digest(features, level), seed,
             json.dumps(stats, ensure_ascii=False), seconds),
        )
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.commit()
    stats["seconds"] = time.perf_counter() - started
    if progress:
        print(f"loaded {len(features)} {level} unit(s) from {source_name} in {stats['seconds']:.1f} s: "
              f"{len(replaced)} replaced, {len(new_codes)} new, {len(stats['adjusted'])} neighbours adjusted, "
              f"{len(regenerated)} generated below, {len(stats['deleted'])} removed", file=sys.stderr)
        for line in repairs + notes:
            print(f"  {line}", file=sys.stderr)
    return stats


KINDS = ("case", "hazard", "checkin", "centre", "department")
KIND_ZH = {"case": "案件", "hazard": "隐患", "checkin": "报平安/报告", "centre": "综治中心", "department": "部门"}


def _no_moves() -> dict:
    return {"restamped": {k: 0 for k in KINDS}, "moves": [], "checkins_merged": 0}


def _record_adjustment(conn, level: str, source_name: str, effective: date, replaced: list[str], new_codes: list[str],
                       gone: list[str]) -> int:
    """The 行政区划调整 this load makes, with its effective date; its moves are filled in by restamp()."""
    return conn.execute(
        """INSERT INTO boundary_adjustment (effective_date, level, source, replaced, new_codes, deleted)
           VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
        (effective, level, source_name, replaced, new_codes, gone)).fetchone()[0]


def restamp(conn, adjustment: int, touched: list[str], gone: list[str], level: str, source_name: str) -> dict:
    """Give every case and hazard under the ``touched`` units the codes of the new units at its point
    (cases) or its ST_PointOnSurface (hazards), and every check-in of a removed grid the new grid at
    its old grid's representative point (a check-in stays with its grid while the grid exists); move the centres and departments of removed units (``gone``) to the unit of their
    level at their point. Each changed row's codes before are kept in region_restamp under
    ``adjustment``. Inside the caller's transaction, after the new units are written and before the
    removed ones are deleted. Returns {"restamped": {kind: n}, "moves": [{"kind", "from", "to", "n"}]}.

    Refuses (BoundaryError) when a row under a removed unit lies in no new unit (an orphan)."""
    params = {"patterns": [c + "%" for c in touched], "gone": gone}
    conn.execute(_sql("boundary_restamp_stage"), params)
    orphans = _rows(conn, """SELECT kind, row_id, old_finest FROM gw_restamp
                             WHERE leaf IS NULL AND EXISTS (SELECT 1 FROM unnest(%s::text[]) g WHERE starts_with(old_finest, g))
                             ORDER BY kind, row_id LIMIT %s""", (gone, MAX_LISTED + 1))
    if orphans:
        _refuse([f"{kind} {row_id} in {code}: its point lies in none of the new units" for kind, row_id, code in orphans],
                f"{source_name}: rows of units the file removes would have no unit (orphans); "
                "close or move them first, or fix the file:")
    try:
        with conn.transaction():
            conn.execute(_sql("boundary_restamp_apply"), {"adjustment": adjustment})
            conn.execute(_sql("boundary_restamp_checkins"))
            merged = conn.execute(_sql("boundary_restamp_checkins_merge"), {"adjustment": adjustment}).rowcount
    except psycopg.errors.UniqueViolation as exc:
        raise BoundaryError(f"{source_name}: two check-ins would land on the same grid, worker, day and kind after the "
                            f"change ({exc.diag.message_detail}). Nothing was written.") from exc
    if gone:
        conn.execute(_sql("boundary_restamp_orgs"), {"gone": gone})
        stuck = _rows(conn, "SELECT kind, row_id, old_code FROM gw_restamp_org WHERE new_code IS NULL ORDER BY 1, 2 LIMIT %s",
                      (MAX_LISTED + 1,))
        _refuse([f"{kind} {row_id} of {code}: no new unit of its level holds it" for kind, row_id, code in stuck],
                f"{source_name}: centres/departments of removed units would have no unit:")
        try:
            with conn.transaction():
                conn.execute("""INSERT INTO region_restamp (adjustment_id, kind, row_id, old_code, new_code, old_codes, new_codes)
                                SELECT %s, kind, row_id, old_code, new_code, jsonb_build_object('region_code', old_code),
                                       jsonb_build_object('region_code', new_code) FROM gw_restamp_org""", (adjustment,))
                conn.execute("UPDATE centre x SET region_code = m.new_code, updated_at = now() FROM gw_restamp_org m "
                             "WHERE m.kind = 'centre' AND m.row_id = x.id")
                conn.execute("UPDATE department x SET region_code = m.new_code FROM gw_restamp_org m "
                             "WHERE m.kind = 'department' AND m.row_id = x.id")
        except psycopg.errors.UniqueViolation as exc:
            raise BoundaryError(f"{source_name}: a centre or department of a removed unit has a namesake in the unit that "
                                f"takes it over ({exc.diag.message_detail}); rename one first. Nothing was written.") from exc
    counts = dict(_rows(conn, "SELECT kind, count(*) FROM region_restamp WHERE adjustment_id = %s GROUP BY kind", (adjustment,)))
    moves = [{"kind": kind, "from": a, "to": b, "n": n}
             for kind, a, b, n in _rows(conn, _sql("boundary_moves"), {"adjustment": adjustment, "n": CODE_LENGTH[level]})
             if a != b]
    conn.execute("UPDATE boundary_adjustment SET moves = %s WHERE id = %s", (json.dumps(moves), adjustment))
    return {"restamped": {k: int(counts.get(k, 0)) for k in KINDS}, "moves": moves, "checkins_merged": merged}


def _refresh_coverage(conn, touched: list[str]) -> dict | None:
    """Stored centre coverage of the townships the change touched, computed again (when coverage is stored)."""
    if not _rows(conn, "SELECT 1 FROM coverage_params"):
        return None
    points = _rows(conn, """SELECT ST_X(label_point), ST_Y(label_point) FROM region
                            WHERE level = 'township' AND (code LIKE ANY(%s) OR code = ANY(%s))""",
                   ([c + "%" for c in touched], [c[:9] for c in touched if len(c) >= 9]))
    return refresh(conn, [(x, y, "township") for x, y in points])


def format_moves(stats: dict) -> str:
    """The 行政区划调整 report: re-stamped rows per kind and counts from each old unit to each new one."""
    adj = stats.get("adjustment") or {}
    lines = [f"行政区划调整 #{adj.get('id')} effective {adj.get('effective_date')}: re-stamped "
             + ", ".join(f"{n} {kind}(s)" for kind, n in stats["restamped"].items())]
    for m in stats["moves"]:
        lines.append(f"  {m['kind']:<10} {m['from']} → {m['to']}: {m['n']}")
    if not stats["moves"]:
        lines.append("  no row changed unit at this level")
    if stats.get("checkins_merged"):
        lines.append(f"  {stats['checkins_merged']} check-in(s) of removed grids merged into the same worker's check-in "
                     "of that day in the new grid (kept whole in region_restamp)")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="GeoJSON, GeoPackage or Shapefile with one feature per unit")
    p.add_argument("--level", required=True, help=f"level of the units: {', '.join(LEVELS)} (or 省/市/县/乡镇/村/网格)")
    p.add_argument("--code-field", required=True, help="field holding each unit's region code")
    p.add_argument("--name-field", required=True, help="field holding each unit's name")
    p.add_argument("--parent-field", default=None, help="field holding the parent's code (default: from the code's prefix)")
    p.add_argument("--layer", default=None, help="layer of a GeoPackage holding several")
    p.add_argument("--gcj02", action="store_true", help="coordinates are GCJ-02 (AMap/Tencent): convert to WGS84")
    p.add_argument("--seed", type=int, default=None, help="seed for the levels generated below (default: GRIDWATCH_SEED)")
    p.add_argument("--effective", type=date.fromisoformat, default=None,
                   help="date the change takes effect (行政区划调整), YYYY-MM-DD; default today (Asia/Shanghai)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")


def run(args: argparse.Namespace) -> int:
    url = db.database_url()
    ensure_postgis(url)
    with psycopg.connect(url) as conn:
        migrate(conn)
        try:
            stats = load_boundaries(conn, args.file, args.level, args.code_field, args.name_field, args.parent_field,
                                    progress=not args.quiet, seed=args.seed, gcj02=args.gcj02, layer=args.layer,
                                    effective=args.effective)
        except LoadError as exc:
            print(f"gridwatch etl boundaries: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(stats, ensure_ascii=False, indent=2, default=str))
    else:
        print(format_moves(stats))
    return 0
