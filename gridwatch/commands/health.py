"""Health check for monitoring: ask a running server's /healthz, exit with its state.

  gridwatch health [--url URL] [--timeout S] [--json]

Exit codes: 0 ok (the server answers and reaches its database), 1 degraded (the server answers but
its database is down or its live listener is not connected), 2 unreachable (no answer within the
timeout). One line on stdout says why, so it fits Nagios/Zabbix/Prometheus textfile checks and a
systemd timer alike.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request

from gridwatch import config

OK, DEGRADED, UNREACHABLE = 0, 1, 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    default = f"http://{config.get('GRIDWATCH_HOST')}:{config.get('GRIDWATCH_PORT')}"
    p.add_argument("--url", default=default, help="the server's base URL (default %(default)s)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the /healthz body as JSON")


def check(url: str, timeout: float = 10.0) -> tuple[int, str, dict]:
    """(exit code, one-line reason, /healthz body) of the server at ``url``."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/healthz", timeout=timeout) as r:
            body = json.loads(r.read() or b"{}")
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
        try:
            body = json.loads(e.read() or b"{}")
        except ValueError:
            body = {}
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        return UNREACHABLE, f"UNREACHABLE: {url} did not answer within {timeout:g} s ({reason})", {}
    database = body.get("database", {})
    if status == 200 and database.get("state") == "up":
        live = body.get("live", {})
        if live and live.get("listening") is False:
            return DEGRADED, "DEGRADED: the database is up but the live listener is not connected", body
        return OK, f"OK: server and database up (PostgreSQL {database.get('postgresql')}, PostGIS {database.get('postgis')})", body
    return DEGRADED, f"DEGRADED: HTTP {status}, database {database.get('state', 'unknown')}: {database.get('error', '')}".rstrip(": "), body


def run(args: argparse.Namespace) -> int:
    code, line, body = check(args.url, args.timeout)
    print(json.dumps({"exit": code, "message": line, "healthz": body}, ensure_ascii=False) if args.json else line)
    return code
