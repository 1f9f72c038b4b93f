"""Accounts: add, list, disable, enable, reset a password.

  gridwatch users add NAME --role ROLE [--region CODE] [--department ID] [--password-stdin]
      roles: province_leader, operator (--region: prefecture, county or township), department
      (--department ID), grid_worker (--region: a grid), planner, wall, open311_client, admin.
      Without --password-stdin a password is generated and printed once.
  gridwatch users list [--json]
  gridwatch users disable NAME      (ends its sessions; its tokens stop working)
  gridwatch users enable NAME
  gridwatch users reset-password NAME [--password-stdin]

Region codes: the project's codes (6207, 620702, 620702100, …); a six-digit GB/T 2260 code of a
province or prefecture (620000, 620700) is accepted too. Runs as the database owner.
"""

from __future__ import annotations

import argparse
import json
import sys

import psycopg
from psycopg.rows import dict_row

from gridwatch import auth
from gridwatch.db import database_url


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("action", choices=["add", "list", "disable", "enable", "reset-password"], help="what to do")
    p.add_argument("name", nargs="?", help="the username")
    p.add_argument("--role", choices=auth.ROLES, metavar="ROLE", help="add: one of " + ", ".join(auth.ROLES))
    p.add_argument("--region", metavar="CODE", help="add: the region (operator, grid worker)")
    p.add_argument("--department", type=int, metavar="ID", help="add: the department (role department)")
    p.add_argument("--display-name", metavar="TEXT", help="add: a display name, e.g. 甘州区值班员")
    p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    p.add_argument("--json", action="store_true", help="list: as JSON")


def _password(args) -> tuple[str, bool]:
    if args.password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        return line, False
    return auth.generate_password(), True


def _err(message: str) -> int:
    print(f"gridwatch users: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    if args.action != "list" and not args.name:
        return _err(f"{args.action} needs a username: gridwatch users {args.action} NAME")
    try:
        with psycopg.connect(database_url(), row_factory=dict_row) as conn:
            if args.action == "list":
                users = auth.list_users(conn)
                if args.json:
                    print(json.dumps(users, ensure_ascii=False, default=str, indent=1))
                else:
                    for u in users:
                        where = u["region_code"] and f"{u['region_code']} {u['region_name'] or ''}".strip()
                        dept = u["department_id"] and f"dept {u['department_id']} {u['department_name'] or ''}".strip()
                        state = "disabled" if u["disabled"] else ("locked" if u["locked_until"] else "active")
                        print("\t".join(str(x) for x in (u["username"], u["role"], where or dept or "-", state)))
                return 0
            if args.action == "add":
                if not args.role:
                    return _err(f"add needs --role, one of: {', '.join(auth.ROLES)}")
                password, generated = _password(args)
                auth.add_user(conn, args.name, args.role, password=password, region_code=args.region,
                              department_id=args.department, display_name=args.display_name)
                conn.commit()
                print(f"added {args.name} ({args.role})")
                if generated:
                    print(f"password: {password}   (shown once; change it with `gridwatch users reset-password {args.name}`)")
                return 0
            if args.action in ("disable", "enable"):
                auth.set_disabled(conn, args.name, args.action == "disable")
                conn.commit()
                print(f"{args.name} {args.action}d")
                return 0
            password, generated = _password(args)
            auth.set_password(conn, args.name, password)
            conn.commit()
            print(f"password of {args.name} reset; its sessions ended")
            if generated:
                print(f"password: {password}   (shown once)")
            return 0
    except auth.AuthError as exc:
        return _err(str(exc))
