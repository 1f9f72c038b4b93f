"""Bearer tokens (API clients, the wall's kiosk, Open311 api_key): create, list, revoke.

  gridwatch tokens create NAME [--expires-days N] [--label TEXT]
      a token for user NAME, printed once (only its sha256 is stored); send it as
      `Authorization: Bearer TOKEN` (the wall: /wall?kiosk=TOKEN)
  gridwatch tokens list [--json]
  gridwatch tokens revoke ID
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
    p.add_argument("action", choices=["create", "list", "revoke"], help="what to do")
    p.add_argument("target", nargs="?", help="create: the username; revoke: the token id")
    p.add_argument("--expires-days", type=float, metavar="N", help="create: the token stops working after N days")
    p.add_argument("--label", metavar="TEXT", help="create: what the token is for")
    p.add_argument("--json", action="store_true", help="list: as JSON")


def _err(message: str) -> int:
    print(f"gridwatch tokens: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    try:
        with psycopg.connect(database_url(), row_factory=dict_row) as conn:
            if args.action == "list":
                rows = auth.list_tokens(conn)
                if args.json:
                    print(json.dumps(rows, ensure_ascii=False, default=str, indent=1))
                else:
                    for t in rows:
                        state = "revoked" if t["revoked_at"] else f"expires {t['expires_at']}" if t["expires_at"] else "no expiry"
                        print("\t".join(str(x) for x in (t["id"], t["username"], t["name"], state)))
                return 0
            if not args.target:
                return _err(f"{args.action} needs {'a username' if args.action == 'create' else 'a token id'}")
            if args.action == "create":
                token_id, token = auth.create_token(conn, args.target, args.label, expires_days=args.expires_days)
                conn.commit()
                print(f"token {token_id} for {args.target} (shown once; revoke with `gridwatch tokens revoke {token_id}`):")
                print(token)
                return 0
            try:
                token_id = int(args.target)
            except ValueError:
                return _err(f"revoke needs a token id (a number, see `gridwatch tokens list`), got {args.target!r}")
            changed = auth.revoke_token(conn, token_id)
            conn.commit()
            print(f"token {token_id} revoked" if changed else f"token {token_id} was revoked already")
            return 0
    except auth.AuthError as exc:
        return _err(str(exc))
