"""In-app notifications: a new case in my queue, a deadline within two hours, a returned case, an
escalation or a hand-down to my level, a department convened to a case.

They are a query, not stored rows: :func:`for_user` reads the user's queue (``gridwatch.workbench``)
and the case trail, so nothing has to be written when a case changes and nothing goes stale. Only
the read marks are stored (``notification_read``, one row per user and key; each user sees and
writes only their own, by row-level security). Pages learn that something changed from the live
stream (``gridwatch.live``: the cases and case_event versions) and then ask again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import psycopg

from gridwatch import workbench
from gridwatch.auth import Principal
from gridwatch.db import fetch_all, load_sql
from gridwatch.errors import Invalid
from gridwatch.i18n import register

__all__ = ["KINDS", "for_user", "unread_count", "mark_read", "DAYS"]

HERE = Path(__file__).resolve().parent
DAYS = 7   # how far back events count as news
KINDS = {
    "new_case": ("新案件待处理", "New case in your queue"),
    "deadline_soon": ("2 小时内到期", "Deadline within 2 hours"),
    "returned": ("案件被退回", "Case returned"),
    "escalated": ("上报至本级", "Escalated to your level"),
    "handed_down": ("交办至本级", "Handed down to your level"),
    "reported_up": ("下级上报结果", "Result reported up to you"),
    "convened": ("召集您的部门", "Your department convened"),
}
register({f"notify.{k}": {"zh": zh, "en": en} for k, (zh, en) in KINDS.items()})


def for_user(conn: psycopg.Connection, who: Principal, *, now: datetime | None = None) -> list[dict]:
    """The user's notifications, newest first: key, kind, case_id, ref, title, at, note, read."""
    now = now or conn.execute("SELECT now() AS t").fetchone()["t"]
    rows = workbench.queue(conn, who, now=now, limit=2000)
    if not rows:
        return []
    level = workbench.operator_level(who.region_code) if who.role == "operator" else \
        ("village" if who.role == "grid_worker" else "")
    return fetch_all(conn, load_sql(HERE, "workbench-notifications"), {
        "ids": [r["id"] for r in rows], "role": who.role, "department": who.department_id or 0, "level": level or "",
        "user_id": who.user_id, "now": now, "since": now - timedelta(days=DAYS)})


def unread_count(items: list[dict]) -> int:
    return sum(1 for n in items if not n["read"])


def mark_read(conn: psycopg.Connection, who: Principal, keys: list[str]) -> int:
    """Mark notifications read (idempotent); returns how many marks were new."""
    if not isinstance(keys, list) or len(keys) > 500 or not all(isinstance(k, str) and 0 < len(k) <= 100 for k in keys):
        raise Invalid("keys must be a list of at most 500 notification keys", field="keys", value=None,
                      message_zh="通知标识无效", fix="send the keys returned by GET /api/v1/notifications")
    if not keys:
        return 0
    cur = conn.execute("""INSERT INTO notification_read (user_id, key) SELECT %s, k FROM unnest(%s::text[]) AS k
                          ON CONFLICT DO NOTHING""", (who.user_id, keys))
    return cur.rowcount
