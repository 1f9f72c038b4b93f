"""Manage the embedded PostgreSQL + PostGIS cluster (ignored when DATABASE_URL is set).

  gridwatch db start    start it (or reuse the running one); creates the database and PostGIS
  gridwatch db stop     stop it
  gridwatch db status   say whether it runs, where, and on which port
  gridwatch db url      print the connection URL gridwatch uses (DATABASE_URL if set)
  gridwatch db init     create the data folder and initdb it if new, clear a stale pid file (the systemd
                        unit runs this before starting PostgreSQL in the foreground)
  gridwatch db url --role app   the URL of the app role gridwatch_app (row-level security applies)
  gridwatch db replica start|stop|status   a streaming hot standby beside it (GRIDWATCH_READ_URL)
  gridwatch db backup [FILE]     dump the database (pg_dump custom format) + FILE.manifest.json
                                 (row counts and checksums of every table, same snapshot)
  gridwatch db backup --verify FILE   restore FILE into a scratch database and check it against its manifest
  gridwatch db backup --base     base backup of the embedded cluster (pg_basebackup) for point-in-time recovery
  gridwatch db restore FILE [--database NAME] [--force]
                                 restore a dump into a new database (default: gridwatch's own, the embedded
                                 cluster created from scratch if need be); a non-empty one only with --force
  gridwatch db restore --to-time TS   recover the embedded cluster to a moment (base backup + WAL archive)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime

from gridwatch import backup, db
from gridwatch.cluster import ensure_postgis
from gridwatch.replica import run_cli


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("action", choices=["start", "stop", "status", "url", "init", "replica", "backup", "restore"], help="what to do")
    p.add_argument("replica_action", nargs="?", metavar="ARG",
                   help="for `replica`: start | stop | status; for `backup` / `restore`: the dump FILE")
    p.add_argument("--verify", default=None, metavar="FILE", help="backup: check the dump FILE by restoring it into a scratch database")
    p.add_argument("--base", nargs="?", const="", default=None, metavar="DIR",
                   help="backup: a base backup of the embedded cluster; restore --to-time: the base backup to start from")
    p.add_argument("--to-time", default=None, metavar="TS", help="restore: recover the embedded cluster to this moment "
                   "(ISO 8601 with zone, e.g. 2026-11-30T14:05:00+08:00)")
    p.add_argument("--database", default=None, metavar="NAME", help="restore: into this database (created) on the same server")
    p.add_argument("--force", action="store_true", help="restore: replace a database that is not empty")
    p.add_argument("--json", action="store_true", help="status as JSON")
    p.add_argument("--role", choices=["owner", "app"], default="owner",
                   help="url: owner (default, what migrations and ETL use) or app (gridwatch_app, scoped by row-level security)")


def _backup_or_restore(args: argparse.Namespace) -> int:
    try:
        if args.action == "backup":
            if args.base is not None:
                if os.environ.get("DATABASE_URL"):
                    print("gridwatch db backup --base: only for the embedded cluster; with DATABASE_URL use your server's "
                          "own base backups (pg_basebackup) and WAL archive.", file=sys.stderr)
                    return 2
                backup.base_backup(db.embedded_cluster())
                return 0
            if args.verify:
                backup.verify(args.verify, db.database_url())
                return 0
            path = args.replica_action or str(backup.default_backup_path())
            result = backup.backup(db.database_url(), path)
            print(result["file"])
            return 0
        # restore
        if args.to_time:
            if os.environ.get("DATABASE_URL"):
                print("gridwatch db restore --to-time: only for the embedded cluster.", file=sys.stderr)
                return 2
            try:
                when = datetime.fromisoformat(args.to_time)
            except ValueError:
                print(f"gridwatch db restore: --to-time {args.to_time!r} is not an ISO 8601 time "
                      "(e.g. 2026-11-30T14:05:00+08:00).", file=sys.stderr)
                return 2
            backup.restore_to_time(db.embedded_cluster(), when, base=args.base or None)
            return 0
        if not args.replica_action:
            print("gridwatch db restore FILE: name the backup to restore.", file=sys.stderr)
            return 2
        if not os.environ.get("DATABASE_URL"):
            db.embedded_cluster().start()   # creates the embedded cluster from scratch if it does not exist
        url = db.database_url()
        if args.database:
            url = backup.with_dbname(url, args.database)
        backup.restore(args.replica_action, url, force=args.force)
        return 0
    except backup.BackupError as exc:
        print(f"gridwatch db {args.action}: {exc}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    if args.action in ("backup", "restore"):
        return _backup_or_restore(args)
    if args.action == "replica" and args.replica_action not in (None, "start", "stop", "status"):
        print(f"gridwatch db replica: {args.replica_action!r} is not start, stop or status.", file=sys.stderr)
        return 2
    if args.action == "replica":
        return run_cli(args.replica_action or "status", as_json=args.json)
    if args.action == "url":
        if args.role == "app":
            try:
                print(db.app_database_url())
            except ValueError as exc:
                print(f"gridwatch db url --role app: {exc}", file=sys.stderr)
                return 2
            return 0
        print(db.database_url())
        return 0
    if os.environ.get("DATABASE_URL"):
        if args.action == "status":
            version = ensure_postgis(os.environ["DATABASE_URL"])
            print(f"external database (DATABASE_URL) reachable, PostGIS {version}")
            return 0
        print(f"DATABASE_URL is set: gridwatch uses that server and does not {args.action} its own.", file=sys.stderr)
        return 0
    cluster = db.embedded_cluster()
    if args.action == "init":
        print(f"embedded PostgreSQL {cluster.prepare()}: data in {cluster.pgdata}")
        return 0
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
