"""Coverage of the centre registry: recompute the stored figures, or print a region's coverage.

  gridwatch coverage recompute [--township-km 5] [--county-km 15]
      recompute every grid's distance to its nearest township and county centre, the covered
      areas and the gap polygons (stored; the dashboard and API read them)
  gridwatch coverage show CODE [--scenario NAME]
      the JSON of /api/v1/coverage/CODE: institutional coverage per level, spatial figures
"""

from __future__ import annotations

import argparse
import json
import sys

import psycopg
from psycopg.rows import dict_row

from gridwatch import coverage, db
from gridwatch.regions import region_code_arg


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = p.add_subparsers(dest="coverage_command", metavar="ACTION")
    sub.required = True
    rc = sub.add_parser("recompute", help="recompute the stored coverage of every grid and township")
    rc.add_argument("--township-km", type=float, default=None, help="reach of township centres, km (default: the stored one, else 5)")
    rc.add_argument("--county-km", type=float, default=None, help="reach of county, prefecture, province centres, km (default: stored, else 15)")
    sh = sub.add_parser("show", help="print a region's coverage as JSON")
    sh.add_argument("code", type=region_code_arg,
                    help="region code: 62, a prefecture (6201), county (620102) or township (9 digits); 620000/620700 work too")
    sh.add_argument("--scenario", default=None, help="include the centres of this what-if scenario")


def run(args: argparse.Namespace) -> int:
    with psycopg.connect(db.database_url(), row_factory=dict_row) as conn:
        try:
            if args.coverage_command == "recompute":
                out = coverage.recompute(
                    conn,
                    township_m=None if args.township_km is None else args.township_km * 1000,
                    county_m=None if args.county_km is None else args.county_km * 1000)
                print(f"coverage recomputed for {out['grids']:,} grids and {out['townships']:,} townships in "
                      f"{out['seconds']:.1f} s (reach: township {out['township_m'] / 1000:g} km, county {out['county_m'] / 1000:g} km)")
            else:
                print(json.dumps(coverage.region_coverage(conn, args.code, scenario=args.scenario),
                                 ensure_ascii=False, indent=2, default=str))
        except (coverage.CoverageError, LookupError) as exc:
            print(f"gridwatch coverage: {exc}", file=sys.stderr)
            return 1
    return 0
