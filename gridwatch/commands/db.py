"""Manage the embedded PostgreSQL + PostGIS cluster (ignored when DATABASE_URL is set).

  gridwatch db start    start it (or reuse the running one); creates the database and PostGIS
  gridwatch db stop     stop it
  gridwatch db status   say whether it runs, where, and on which port
  gridwatch db url      print the connection URL gridwatch uses (DATABASE_URL if set)
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from gridwatch import db


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("action", choices=["start", "stop", "status", "url"], help="what to do")
    p.add_argument("--json", action="store_true", help="status as JSON")


def run(args: argparse.Namespace) -> int:
    if args.action == "url":
        print(db.database_url())
        return 0
    if os.environ.get("DATABASE_URL"):
        if args.action == "status":
            from gridwatch.cluster import ensure_postgis

            version = ensure_postgis(os.environ["DATABASE_URL"])
            print(f"external database (DATABASE_URL) reachable, PostGIS {version}")
            return 0
        print(f"DATABASE_URL is set: gridwatch uses that server and does not {args.action} its own.", file=sys.stderr)
        return 0
    cluster = db.embedded_cluster()
    if args.action == "start":
        what = cluster.start()
        print(f"embedded PostgreSQL {what}: {cluster.url()} (data in {cluster.pgdata})")
    elif args.action == "stop":
        print(f"embedded PostgreSQL: {cluster.stop()}")
    else:
        status = cluster.status()
        if args.json:
            print(json.dumps(status))
        else:
            state = "running" if status["running"] else ("stopped" if status["initialized"] else "not created yet")
            print(f"embedded PostgreSQL {state}; data {status['data_dir']}; port {status['port']}; url {status['url']}")
        return 0 if status["running"] else 3
    return 0
