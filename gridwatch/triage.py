"""Alert triage, as mature alerting systems do it (Prometheus Alertmanager, PagerDuty).

- **Grouping** (:func:`grouped_alerts`): live alerts grouped by rule × region — the region at the
  level below the one asked for (the province's prefectures, a prefecture's counties …) — with
  counts, the worst severity, the oldest raised_at and until when the group is silenced; worst first.
- **Inhibition** (SQL function ``alert_triage``, migration 0060): a lesser live alert on the same
  subject (the same case or hazard) as a stronger one is inhibited by it: they are one item. An
  overdue red hazard's ``hazard_overdue`` alert inhibits its ``red_hazard`` alert; a red case past
  its deadline's ``deadline_past`` inhibits its ``red_case``; a red case's ``red_case`` inhibits its
  ``deadline_near``. Strength: severity, then the rule, then age.
- **Silences** (:func:`create_silence`, :func:`expire_silence`, :func:`list_silences`): an operator
  silences one rule in one region (and everything under it) for a set time, with a reason. Rows are
  never deleted: expiring early records who and when, so the history stays.
- **Escalation** (:func:`escalate`, run by ``gridwatch alerts run``): a live red alert that nobody
  acknowledged, silenced or inhibited within ``escalate_minutes`` (``GRIDWATCH_ESCALATE_MINUTES``)
  goes one level up — a grid's or village's alert to its township's centre first, then the county,
  the prefecture, the province — written in the alert's trail (``alert_event``) and listed for that
  level (``escalated_to``). It goes up again after another period.
- **The wall's takeover** (:func:`wall_items`): red items of the wall's scope reported in the last
  N minutes, not acknowledged, silenced or inhibited, newest first, at most M.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

from gridwatch import config
from gridwatch.alerts import ALERT_RULES
from gridwatch.db import execute, load_sql, transaction
from gridwatch.intake import InputError

__all__ = [
    "grouped_alerts", "create_silence", "expire_silence", "list_silences", "escalate", "wall_items", "alert_trail",
    "SilenceNotFound", "MAX_SILENCE_HOURS", "escalate_minutes", "CODE_LENGTHS",
]

HERE = Path(__file__).resolve().parent
CODE_LENGTHS = (2, 4, 6, 9, 12, 15)
MAX_SILENCE_HOURS = 24 * 30          # a silence longer than a month is a rule to change, not a silence
AUTO_ACTOR = "系统（超时未处置自动上报）"


class SilenceNotFound(InputError):
    """No silence with that id (404)."""


_q = execute   # dict rows whatever the connection's row factory (gridwatch.db.execute, the one helper)


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise ValueError(f"now={now!r} has no time zone; pass an aware datetime")
    return now


def _iso(row: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def escalate_minutes() -> float:
    """``GRIDWATCH_ESCALATE_MINUTES``: how long a red alert may wait unacknowledged before it goes up."""
    return float(config.get("GRIDWATCH_ESCALATE_MINUTES"))


def _region(conn, code: str) -> dict:
    row = _q(conn, "SELECT code, name, level FROM region WHERE code = %s", (code,)).fetchone()
    if row is None:
        raise InputError(f"region code {code!r} is not loaded; use e.g. '62' (甘肃省) or a prefecture code such as '6207'",
                         field="region", value=code, message_zh=f"区划 {code} 不存在",
                         fix="use a loaded region code, e.g. 62", code="not_found", status=404)
    return dict(row)


def _child_len(code: str) -> int:
    longer = [n for n in CODE_LENGTHS if n > len(code)]
    return longer[0] if longer else len(code)


# -- grouping -------------------------------------------------------------------------------------

def grouped_alerts(conn: psycopg.Connection, region: str, now: datetime | None = None) -> list[dict]:
    """Groups of the live alerts of ``region`` (and everything under it), worst first.

    Each: rule, region_code, region_name, region_name_en, region_level, count (alerts, inhibited
    ones left out), inhibited, acknowledged, escalated, silenced (counts), worst_severity,
    oldest_raised_at, newest_raised_at, silenced_until (when every alert of the group is silenced),
    lon/lat (the group region's label point).
    """
    _region(conn, region)
    rows = _q(conn, load_sql(HERE, "alert-groups"), {
        "region": region, "prefix": region + "%", "child_len": _child_len(region), "as_of": _now(now)}).fetchall()
    return [_iso(dict(r)) for r in rows]


# -- silences -------------------------------------------------------------------------------------

def _bad(field: str, value, message: str, message_zh: str, fix: str, status: int = 422) -> InputError:
    return InputError(message, field=field, value=value, fix=fix, message_zh=message_zh, status=status)


def create_silence(conn: psycopg.Connection, *, rule: str, region: str, minutes: float, reason: str, actor: str,
                   now: datetime | None = None) -> dict:
    """Silence ``rule`` in ``region`` and everything under it for ``minutes`` from now, with a reason."""
    now = _now(now)
    if rule not in ALERT_RULES:
        raise _bad("rule", rule, f"rule {rule!r} is not an alert rule; choose from {', '.join(ALERT_RULES)}",
                   f"未知的预警规则 {rule!r}", f"use one of: {', '.join(ALERT_RULES)}")
    try:
        minutes = float(minutes)
    except (TypeError, ValueError):
        raise _bad("minutes", minutes, f"minutes {minutes!r} is not a number", "静默时长须为分钟数",
                   "give minutes as a number, e.g. 120") from None
    if not (0 < minutes <= MAX_SILENCE_HOURS * 60):
        raise _bad("minutes", minutes, f"minutes {minutes:g} is outside 0 < minutes ≤ {MAX_SILENCE_HOURS * 60}",
                   f"静默时长须在 0 到 {MAX_SILENCE_HOURS * 60} 分钟之间",
                   f"give a duration up to {MAX_SILENCE_HOURS} hours; change the rule if it should stay quiet longer")
    reason = (reason or "").strip()
    if not reason:
        raise _bad("reason", reason, "reason is empty: say why the group is silenced", "请填写静默原因",
                   "send reason, e.g. '已派人现场处置'")
    if len(reason) > 500:
        raise _bad("reason", reason[:40] + "…", f"reason is {len(reason)} characters; keep it to 500", "静默原因过长",
                   "shorten the reason to 500 characters")
    actor = _actor_text(actor)
    with transaction(conn):
        _region(conn, region)
        row = _q(conn, """
            INSERT INTO alert_silence (rule, region_code, starts_at, ends_at, reason, created_by, created_at)
            VALUES (%(rule)s, %(region)s, %(now)s, %(now)s + %(span)s, %(reason)s, %(actor)s, %(now)s)
            RETURNING *""", {"rule": rule, "region": region, "now": now, "span": timedelta(minutes=minutes),
                             "reason": reason, "actor": actor}).fetchone()
    return _silence(dict(row), now)


def _actor_text(actor: str | None) -> str:
    actor = (actor or "").strip()
    if not actor:
        raise _bad("actor", actor, "actor is empty: name the operator", "请填写操作人", "send actor: the operator's name or id")
    if len(actor) > 100:
        raise _bad("actor", actor[:40] + "…", f"actor is {len(actor)} characters; keep it to 100", "操作人名称过长",
                   "shorten the operator's name")
    return actor


def _silence(row: dict, now: datetime) -> dict:
    row["active"] = row["expired_at"] is None and row["starts_at"] <= now < row["ends_at"]
    row["until"] = (row["expired_at"] or row["ends_at"])
    return _iso(row)


def expire_silence(conn: psycopg.Connection, silence_id: int, actor: str, now: datetime | None = None) -> dict:
    """End silence ``silence_id`` now (kept in the history with who ended it). Ending an ended one changes nothing."""
    now = _now(now)
    actor = _actor_text(actor)
    with transaction(conn):
        row = _q(conn, """
            UPDATE alert_silence SET expired_at = %(now)s, expired_by = %(actor)s
            WHERE id = %(id)s AND expired_at IS NULL AND ends_at > %(now)s RETURNING *""",
                 {"id": silence_id, "actor": actor, "now": now}).fetchone()
        if row is None:
            row = _q(conn, "SELECT * FROM alert_silence WHERE id = %s", (silence_id,)).fetchone()
        if row is None:
            raise SilenceNotFound(f"silence id {silence_id} does not exist; list them with GET /api/v1/alerts/silences",
                                  field="silence_id", value=silence_id, message_zh=f"静默 {silence_id} 不存在",
                                  fix="use an id from GET /api/v1/alerts/silences", code="not_found", status=404)
    return _silence(dict(row), now)


def list_silences(conn: psycopg.Connection, region: str | None = None, *, active: bool | None = None,
                  now: datetime | None = None) -> list[dict]:
    """Silences (the whole history, newest first) of ``region``: on it, above it or under it.
    ``active`` True/False keeps only the ones in force / no longer in force."""
    now = _now(now)
    if region:
        _region(conn, region)
    rows = _q(conn, """
        SELECT s.*, r.name AS region_name FROM alert_silence s JOIN region r ON r.code = s.region_code
        WHERE (%(region)s::text IS NULL OR s.region_code LIKE %(region)s || '%%' OR %(region)s LIKE s.region_code || '%%')
        ORDER BY s.created_at DESC, s.id DESC LIMIT 1000""", {"region": region or None}).fetchall()
    out = [_silence(dict(r), now) for r in rows]
    return out if active is None else [s for s in out if s["active"] is active]


# -- escalation -----------------------------------------------------------------------------------

def escalate(conn: psycopg.Connection, now: datetime | None = None, after_minutes: float | None = None,
             actor: str = AUTO_ACTOR) -> list[dict]:
    """Escalate every live red alert left unacknowledged (not silenced, not inhibited) for
    ``after_minutes`` since it was raised or last escalated, one level up; in one transaction.
    Returns one row per step: id, from_region, escalated_to, escalation_level, from_name, to_name."""
    now = _now(now)
    after = escalate_minutes() if after_minutes is None else float(after_minutes)
    if after <= 0:
        raise ValueError(f"escalation after {after:g} minutes: give a positive number of minutes")
    with transaction(conn):
        rows = _q(conn, load_sql(HERE, "alert-escalate"), {
            "as_of": now, "after": timedelta(minutes=after), "actor": actor,
            "note": f"红色预警 {after:g} 分钟未确认处置，自动上报上一级"}).fetchall()
    return [dict(r) for r in rows]


def alert_trail(conn: psycopg.Connection, alert_id: int) -> list[dict]:
    """The alert's trail (escalations, acknowledgement), oldest first."""
    rows = _q(conn, """
        SELECT e.at, e.actor, e.action, e.from_region, f.name AS from_name, e.to_region, t.name AS to_name, e.level, e.note
        FROM alert_event e LEFT JOIN region f ON f.code = e.from_region LEFT JOIN region t ON t.code = e.to_region
        WHERE e.alert_id = %s ORDER BY e.at, e.id""", (alert_id,)).fetchall()
    return [_iso(dict(r)) for r in rows]


# -- the wall -------------------------------------------------------------------------------------

def wall_items(conn: psycopg.Connection, scope: str, minutes: float, limit: int, now: datetime | None = None) -> list[dict]:
    """Red items for the wall's takeover: of ``scope`` (a region code and everything under it),
    reported in the last ``minutes``, not acknowledged, silenced or inhibited; newest first, at
    most ``limit``. Each: kind (case/hazard/alert), id, title, title_en, reported_at, county, place, lon, lat."""
    rows = _q(conn, load_sql(HERE, "alert-wall"), {
        "as_of": _now(now), "span": timedelta(minutes=float(minutes)), "prefix": scope + "%", "limit": int(limit)}).fetchall()
    return [_iso(dict(r)) for r in rows]
