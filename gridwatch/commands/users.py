"""Accounts: add, list, disable, enable, reset a password.

  gridwatch users add NAME --role ROLE [--region CODE] [--department ID] [--password-stdin]
      roles: province_leader, operator (--region: prefecture, county or township), department
      (--department ID), grid_worker (--region: a grid), planner, wall, open311_client, admin.
      Without --password-stdin a password is generated and printed once.
  gridwatch users list [--json]
  gridwatch users disable NAME      (ends its sessions; its tokens stop working)
  gridwatch users enable NAME
  gridwatch users reset-password NAME [--password-stdin]
  gridwatch users demo              one demo account per role (what `gridwatch up` runs): created once,
                                    passwords generated once and kept in the data folder
                                    (demo-accounts.json, mode 0600), printed every time

Region codes: the project's codes (6207, 620702, 620702100, …); a six-digit GB/T 2260 code of a
province or prefecture (620000, 620700) is accepted too. Runs as the database owner.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import psycopg
from psycopg.rows import dict_row

from gridwatch import auth
from gridwatch.config import data_dir
from gridwatch.db import database_url


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("action", choices=["add", "list", "disable", "enable", "reset-password", "demo"], help="what to do")
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
    if args.action == "demo":
        return _demo()
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


# The demo accounts: (username, role, display name, how to find its region or department).
DEMO_ACCOUNTS: tuple[tuple[str, str, str, str | None], ...] = (
    ("leader", "province_leader", "省综治中心领导", None),
    ("ganzhou", "operator", "甘州区综治中心值班员", "county:620702"),
    ("xindun", "operator", "新墩镇综治中心值班员", "township:620702:新墩镇"),
    ("caizi", "operator", "菜子镇综治中心值班员", "township::菜子镇"),
    ("lanzhou_grid", "grid_worker", "兰州市网格员", "grid:6201"),
    ("ganzhou_water", "department", "甘州区水务局", "department:620702:water"),
    ("planner", "planner", "规划人员", None),
    ("wall", "wall", "大屏", None),
    ("open311", "open311_client", "Open311 客户端", None),
    ("admin", "admin", "系统管理员", None),
    ("simulator", "operator", "演示模拟器（省级值班）", "province:62"),   # `gridwatch up`'s simulator acts with its token
)
TOKEN_ROLES = ("wall", "open311_client")
TOKEN_USERS = ("simulator",)


def _demo_place(conn, spec: str | None) -> tuple[str | None, int | None]:
    if spec is None:
        return None, None
    kind, _, rest = spec.partition(":")
    if kind in ("county", "province"):
        found = conn.execute("SELECT 1 FROM region WHERE code = %s", (rest,)).fetchone()
        return (rest if found else None), None
    if kind == "township":
        under, _, name = rest.partition(":")
        row = conn.execute("""SELECT code FROM region WHERE level = 'township' AND name LIKE %s AND starts_with(code, %s)
                              ORDER BY code LIMIT 1""", ("%" + name, under)).fetchone()
        return (row["code"] if row else None), None
    if kind == "grid":
        row = conn.execute("SELECT code FROM region WHERE level = 'grid' AND starts_with(code, %s) ORDER BY code LIMIT 1",
                           (rest,)).fetchone()
        return (row["code"] if row else None), None
    region, _, dkind = rest.partition(":")
    row = conn.execute("SELECT id FROM department WHERE region_code = %s AND kind = %s ORDER BY id LIMIT 1",
                       (region, dkind)).fetchone()
    return None, (row["id"] if row else None)


def demo_accounts(conn, store) -> list[dict]:
    """Create the demo accounts that are missing; passwords and kiosk/api tokens are generated once and
    kept in ``store`` (a JSON file); returns [{username, role, display_name, password | token}]."""
    saved = json.loads(store.read_text(encoding="utf-8")) if store.exists() else {}
    out = []
    for username, role, display, spec in DEMO_ACCOUNTS:
        region, dept = _demo_place(conn, spec)
        if spec is not None and region is None and dept is None:
            out.append({"username": username, "role": role, "display_name": display, "skipped": f"no {spec} in the loaded data"})
            continue
        entry = saved.get(username, {})
        user = auth.get_user(conn, username)
        if user is None:
            entry = {"password": auth.generate_password()}
            auth.add_user(conn, username, role, password=entry["password"], region_code=region, department_id=dept,
                          display_name=display)
        elif "password" not in entry or not auth.verify_password(user["password_hash"], entry["password"]):
            entry = {**entry, "password": auth.generate_password()}
            auth.set_password(conn, username, entry["password"])
        if (role in TOKEN_ROLES or username in TOKEN_USERS) and (not entry.get("token") or auth.resolve(conn, entry["token"]) is None):
            _, entry["token"] = auth.create_token(conn, username, f"demo {role}")
        saved[username] = entry
        out.append({"username": username, "role": role, "display_name": display, **entry})
    store.parent.mkdir(parents=True, exist_ok=True)
    tmp = store.with_suffix(".tmp")
    tmp.write_text(json.dumps(saved, ensure_ascii=False, indent=1), encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(store)
    return out


def _demo() -> int:
    store = data_dir() / "demo-accounts.json"
    with psycopg.connect(database_url(), row_factory=dict_row) as conn:
        accounts = demo_accounts(conn, store)
        conn.commit()
    print(f"Demo accounts (demo only; passwords kept in {store}):")
    for a in accounts:
        if "skipped" in a:
            print(f"  {a['username']:<14} {a['role']:<16} skipped: {a['skipped']}")
            continue
        extra = f"  token {a['token']}" if a.get("token") else ""
        print(f"  {a['username']:<14} {a['role']:<16} password {a['password']}{extra}   {a['display_name']}")
    wall = next((a for a in accounts if a["role"] == "wall" and a.get("token")), None)
    if wall:
        print(f"  wall kiosk: /wall?kiosk={wall['token']}")
    return 0
