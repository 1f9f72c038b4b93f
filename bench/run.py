"""Run gridwatch's benchmarks against a throwaway PostGIS cluster and report ratios.

Each benchmark module in ``MODULES`` exposes ``run(database_url) -> list[dict]``; every dict has
``name``, ``seconds``, ``baseline``, ``baseline_seconds``, ``ratio`` (= seconds / baseline_seconds),
``n`` and ``note``. The machines are shared and noisy, so absolute times drift: the ratio against a
baseline measured in the same run is the figure that counts. Each module gets its own copy of a
database holding the Gansu hierarchy (loaded once per run).

    gridwatch bench                 # all
    gridwatch bench --only tiles    # one area
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from psycopg import sql

MODULES: tuple[str, ...] = (
    "bench.tiles",
    "bench.coverage",
    "bench.intake",
    "bench.kpi",
    "bench.regions",
    "bench.load",
)

RESULTS = Path(__file__).resolve().parent / "results"


def _clone(cluster, template: str, name: str) -> str:
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    return cluster.url(name)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--only", default="", help="comma-separated benchmark areas (default: all of %s)" % ", ".join(m.split(".")[-1] for m in MODULES))
    p.add_argument("--out", default=str(RESULTS / "latest.json"), help="where to write the JSON results (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    from etl.gansu import load_gansu
    from etl.migrate import migrate
    from gridwatch.cluster import Cluster, ensure_postgis, free_port

    wanted = {w.strip() for w in args.only.split(",") if w.strip()}
    modules = [m for m in MODULES if not wanted or m.split(".")[-1] in wanted]
    unknown = wanted - {m.split(".")[-1] for m in MODULES}
    if unknown:
        print(f"gridwatch bench: unknown area(s) {sorted(unknown)}; choose from {[m.split('.')[-1] for m in MODULES]}")
        return 2
    root = Path(tempfile.mkdtemp(prefix="gw-bench-", dir="/tmp"))
    os.chmod(root, 0o755)
    cluster = Cluster(root, free_port(), fast=False)
    results: list[dict] = []
    try:
        print(f"starting a throwaway PostgreSQL in {root} …", flush=True)
        cluster.start()
        ensure_postgis(cluster.url())
        with psycopg.connect(cluster.url()) as conn:
            migrate(conn)
            t0 = time.perf_counter()
            load_gansu(conn, progress=True)
            print(f"Gansu hierarchy loaded in {time.perf_counter() - t0:.1f} s", flush=True)
        for module in modules:
            area = module.split(".")[-1]
            url = _clone(cluster, "gridwatch", f"bench_{area}")
            print(f"\n== {area}", flush=True)
            for row in importlib.import_module(module).run(url):
                row = {"area": area, **row}
                results.append(row)
                print(f"  {row['name']:<48} {row['seconds'] * 1000:10.2f} ms   vs {row['baseline']:<36} "
                      f"{row['baseline_seconds'] * 1000:10.2f} ms   ratio {row['ratio']:.3f}   (n={row['n']}) {row.get('note', '')}",
                      flush=True)
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "when": datetime.now(timezone.utc).isoformat(), "machine": platform.platform(), "cpus": os.cpu_count(),
        "results": results,
    }, ensure_ascii=False, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    raise SystemExit(run(parser.parse_args()))
