"""Region loading speed, each against a naive baseline measured in the same run.

1. writing one county's generated hierarchy (townships, villages, grids of 甘州区, ~1,000 rows):
   COPY into a staging table + one INSERT … SELECT (``etl.gansu.write_units``) vs one INSERT per
   row (what a loop over rows would do; the data_version trigger then fires once per row too);
2. ``gridwatch etl gansu`` run again on a loaded database (ledger checksum says nothing changed)
   vs the full reload it avoids (``replace=True``: generate every polygon again and upsert).

``run(database_url)`` rewrites regions of that database (use a throwaway copy holding the Gansu
hierarchy: ``gridwatch bench`` gives each module its own).
"""

from __future__ import annotations

import time

import psycopg
import shapely
from psycopg.rows import tuple_row

__all__ = ["run"]

COUNTY = "620702"


def _units(conn):
    from etl.gansu import Unit

    rows = conn.cursor(row_factory=tuple_row).execute(
        """SELECT code, name, level, kind, parent_code, source, ST_AsBinary(geom), ST_AsBinary(geom_simple), sort_key
           FROM region WHERE starts_with(code, %s) AND code <> %s ORDER BY code""", (COUNTY, COUNTY)).fetchall()
    return [Unit(c, n, lv, k, p, s, shapely.from_wkb(g), geom_simple=shapely.from_wkb(gs), sort_key=sk)
            for c, n, lv, k, p, s, g, gs, sk in rows]


def _clear(conn) -> None:
    conn.execute("DELETE FROM region WHERE starts_with(code, %s) AND code <> %s", (COUNTY, COUNTY))


def _bulk(conn, units) -> float:
    from etl.gansu import write_units

    with conn.transaction():
        _clear(conn)
    t0 = time.perf_counter()
    with conn.transaction():
        write_units(conn, units)
    return time.perf_counter() - t0


def _row_by_row(conn, units) -> float:
    with conn.transaction():
        _clear(conn)
    t0 = time.perf_counter()
    with conn.transaction():
        for u in sorted(units, key=lambda u: (len(u.code), u.code)):
            conn.execute(
                """INSERT INTO region (code, name, level, kind, parent_code, source, geom, geom_simple, sort_key)
                   VALUES (%s, %s, %s, %s, %s, %s, ST_SetSRID(ST_GeomFromWKB(%s), 4326), ST_SetSRID(ST_GeomFromWKB(%s), 4326), %s)""",
                (u.code, u.name, u.level, u.kind, u.parent_code, u.source, shapely.to_wkb(u.geom), shapely.to_wkb(u.geom_simple), u.sort_key))
    return time.perf_counter() - t0


def run(database_url: str) -> list[dict]:
    from etl.gansu import load_gansu

    out: list[dict] = []
    with psycopg.connect(database_url) as conn:
        units = _units(conn)
        conn.commit()
        conn.execute("SET jit = off")
        conn.commit()
        bulk = min(_bulk(conn, units) for _ in range(3))
        naive = min(_row_by_row(conn, units) for _ in range(2))
        _bulk(conn, units)  # leave the county as it was
        out.append({"name": f"write {COUNTY}'s generated hierarchy (COPY + one upsert)", "seconds": bulk,
                    "baseline": "one INSERT per row", "baseline_seconds": naive, "ratio": bulk / naive, "n": len(units),
                    "note": "rows per second: %.0f vs %.0f" % (len(units) / bulk, len(units) / naive)})

        t0 = time.perf_counter()
        again = load_gansu(conn, progress=False)
        rerun = time.perf_counter() - t0
        assert again["unchanged"], "the database given to bench.regions is not a loaded Gansu hierarchy"
        t0 = time.perf_counter()
        full = load_gansu(conn, progress=False, replace=True)
        reload_s = time.perf_counter() - t0
        n = sum(full["counts"].values())
        out.append({"name": "etl gansu on a loaded database (ledger: nothing changed)", "seconds": rerun,
                    "baseline": "full reload (--replace: generate and upsert everything)", "baseline_seconds": reload_s,
                    "ratio": rerun / reload_s, "n": n,
                    "note": f"full reload computed for {full['compute_seconds']} s and rewrote {full['written']} rows (byte-identical)"})
    return out
