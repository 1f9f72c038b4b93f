"""The case lifecycle: one transition table, one function that applies an action.

``TRANSITIONS`` says, for every action, the states it may start from and the state it leads to.
:func:`apply` is the only writer of a case's state after intake: it locks the case, checks the
table, updates the columns the KPIs read (state, deadline, closed_at, closed_on_time, closed_level,
handling_level, escalations, returns, reworks, extensions, resolved, satisfaction, department_id)
in one UPDATE, and appends one ``case_event`` (who, when, from → to, note). An illegal action is
refused naming the current state and the actions allowed there; nothing is written.

    reported ─accept→ accepted ─dispatch→ dispatched ─start→ in_progress ─feedback→ feedback ─verify→ closed
        └reject / merge (a duplicate)→ rejected       dispatched ─return→ returned ─dispatch→ dispatched   feedback ─rework→ in_progress
    escalate (village → township → county → …) and hand_down (with instructions and a deadline) → accepted at the new level
    report_up (上报结果: the level a case was handed down to reports the result back) → feedback at the level that
        handed it down, which verifies (closes) it or sends it back down to rework
    park (挂账) → parked ─resume→ the state it was parked from;  closed ─visit→ closed (satisfaction 1–5)
    request_extension / approve_extension / deny_extension, mediate / mediation_result: the state stays
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from gridwatch.intake import LEVELS, InputError, NotFound, case_select

__all__ = [
    "STATES", "STATE_NAMES", "Transition", "TRANSITIONS", "MEDIATION_KINDS", "allowed_actions", "apply",
    "IllegalTransition", "get_case", "case_events", "case_mediations", "LEVEL_COLUMN", "report_back_to",
    "PERSONAL_TEXT", "mask", "may_read_personal", "personal_details", "PersonalDataRefused",
]

STATES = ("reported", "accepted", "rejected", "dispatched", "returned", "in_progress", "feedback", "closed", "parked")
STATE_NAMES = {
    "reported": "已上报", "accepted": "已受理", "rejected": "不予受理", "dispatched": "已派遣", "returned": "已退回",
    "in_progress": "办理中", "feedback": "已反馈", "closed": "已办结", "parked": "挂账",
}
MEDIATION_KINDS = {"people": "人民调解", "administrative": "行政调解", "judicial": "司法调解"}
LEVEL_COLUMN = {"village": "village_code", "township": "township_code", "county": "county_code",
                "prefecture": "prefecture_code", "province": None}
OPEN = ("accepted", "dispatched", "returned", "in_progress")
STAY = "="          # target: the state does not change
PREVIOUS = "<"      # target: the state the case was parked from


@dataclass(frozen=True)
class Transition:
    action: str
    sources: tuple[str, ...]
    target: str
    needs: tuple[str, ...]      # fields the action requires
    name_zh: str


TRANSITIONS: dict[str, Transition] = {t.action: t for t in (
    Transition("accept", ("reported",), "accepted", (), "受理"),
    Transition("reject", ("reported",), "rejected", ("note",), "不予受理"),
    Transition("merge", ("reported", "accepted"), "rejected", (), "合并重复件"),
    Transition("dispatch", ("accepted", "returned"), "dispatched", ("department_id",), "派遣"),
    Transition("return", ("dispatched",), "returned", ("note",), "退回"),
    Transition("start", ("dispatched",), "in_progress", (), "开始办理"),
    Transition("feedback", ("in_progress",), "feedback", ("note",), "办理反馈"),
    Transition("verify", ("feedback",), "closed", (), "核查办结"),
    Transition("rework", ("feedback",), "in_progress", ("note",), "返工"),
    Transition("request_extension", ("dispatched", "in_progress"), STAY, ("hours", "note"), "申请延期"),
    Transition("approve_extension", ("dispatched", "in_progress"), STAY, (), "批准延期"),
    Transition("deny_extension", ("dispatched", "in_progress"), STAY, (), "驳回延期"),
    Transition("escalate", ("reported", "accepted", "dispatched", "returned", "in_progress", "parked"), "accepted", ("note",), "上报上级"),
    Transition("hand_down", ("reported", "accepted"), "accepted", ("note",), "交办下级"),
    Transition("report_up", ("accepted", "returned", "in_progress", "feedback"), "feedback", ("note",), "上报结果"),
    Transition("park", OPEN, "parked", ("note",), "挂账"),
    Transition("resume", ("parked",), PREVIOUS, (), "恢复办理"),
    Transition("visit", ("closed",), STAY, ("satisfaction",), "回访"),
    Transition("mediate", ("accepted", "dispatched", "in_progress", "parked"), STAY, ("kind", "mediator"), "组织调解"),
    Transition("mediation_result", ("accepted", "dispatched", "in_progress", "parked", "feedback"), STAY, ("outcome",), "调解结果"),
)}


class IllegalTransition(InputError):
    status = 409


def allowed_actions(state: str) -> list[str]:
    """Actions the table allows from ``state``, in table order."""
    return [a for a, t in TRANSITIONS.items() if state in t.sources]


def get_case(conn: psycopg.Connection, case_id: int, *, lock: bool = False) -> dict:
    query = case_select(sql.SQL("WHERE id = %s" + (" FOR UPDATE" if lock else "")))
    row = conn.execute(query, (case_id,)).fetchone()
    if row is None:
        raise NotFound(f"there is no case {case_id}", message_zh=f"案件 {case_id} 不存在", field="id", value=case_id,
                       fix="use an id returned by POST /api/v1/cases or GET /api/v1/cases", code="not_found")
    return dict(row)


def case_events(conn: psycopg.Connection, case_id: int) -> list[dict]:
    return [dict(r) for r in conn.execute(
        "SELECT id, at, actor, action, from_state, to_state, level, department_id, note, data "
        "FROM case_event WHERE case_id = %s ORDER BY at, id", (case_id,)).fetchall()]


def case_mediations(conn: psycopg.Connection, case_id: int) -> list[dict]:
    return [dict(r) for r in conn.execute(
        "SELECT id, kind, mediator, started_at, ended_at, outcome, agreement FROM mediation WHERE case_id = %s ORDER BY id",
        (case_id,)).fetchall()]


def _bad(field: str, value: Any, message: str, message_zh: str, fix: str) -> InputError:
    return InputError(message, field=field, value=value, message_zh=message_zh, fix=fix)


def apply(conn: psycopg.Connection, case_id: int, action: str, actor: str, *, at: datetime | None = None,
          note: str | None = None, **fields: Any) -> dict:
    """Apply ``action`` to case ``case_id`` as ``actor``; returns {"case": …, "event": …}.

    Fields by action: dispatch ``department_id`` (``hours`` overrides the category's time limit
    for a first deadline); feedback ``resolved`` (default True); verify ``resolved`` (default: the
    last feedback's); request_extension ``hours``; hand_down ``level`` (default one down) and ``hours``
    (the deadline for the report back; it becomes the case's deadline); report_up ``note`` (the result)
    and ``resolved`` (default True); rework of a reported-up case goes back down to the level that reported;
    visit ``satisfaction`` 1–5; mediate ``kind`` (people | administrative | judicial), ``mediator``;
    mediation_result ``outcome`` (agreed | failed), ``agreement``, ``mediation_id`` (default the
    open one). ``at`` (default now) lets history be replayed; it may not precede the last event.
    Run inside ``gridwatch.db.transaction``.
    """
    t = TRANSITIONS.get(action)
    if t is None:
        raise _bad("action", action, f"unknown action {action!r}; actions are: {', '.join(TRANSITIONS)}",
                   f"未知的操作 {action!r}", f"use one of: {', '.join(TRANSITIONS)}")
    if not actor or not isinstance(actor, str):
        raise _bad("actor", actor, "actor is required: who is acting", "缺少操作人 actor", "send actor as a non-empty string")
    case = get_case(conn, case_id, lock=True)
    state = case["state"]
    if state not in t.sources:
        allowed = allowed_actions(state)
        raise IllegalTransition(
            f"case {case_id} is {state} ({STATE_NAMES[state]}): {action} is not allowed there; "
            f"allowed now: {', '.join(allowed) or 'nothing (final state)'}",
            message_zh=f"案件当前状态为「{STATE_NAMES[state]}」，不能执行「{t.name_zh}」；"
                       f"当前可执行：{'、'.join(TRANSITIONS[a].name_zh for a in allowed) or '无（终态）'}",
            field="action", value=action, code="illegal_transition",
            fix=f"from {state} use one of: {', '.join(allowed) or 'none'}",
            details=[{"state": state, "allowed": allowed, "requires_state": list(t.sources)}])
    values = {"note": note, **fields}
    for need in t.needs:
        if values.get(need) in (None, ""):
            raise _bad(need, values.get(need), f"{action} needs {need}", f"「{t.name_zh}」需要字段 {need}",
                       f"send {need} with the {action} action")
    last_at = conn.execute("SELECT max(at) AS at FROM case_event WHERE case_id = %s", (case_id,)).fetchone()["at"]
    now = conn.execute("SELECT now() AS now").fetchone()["now"]
    at = at or now
    if last_at is not None and at < last_at:
        raise _bad("at", at.isoformat(), f"at {at.isoformat()} is before the case's last event ({last_at.isoformat()})",
                   "操作时间早于案件的上一条记录", "give a time at or after the last event")

    sets: dict[str, Any] = {}
    data: dict[str, Any] = {}
    target = state if t.target == STAY else t.target
    level = case["handling_level"]
    department_id = case["department_id"]

    if action == "accept":
        sets["accepted_at"] = at
    elif action == "merge":
        target_id = fields.get("duplicate_of") or case["possible_duplicate_of"]
        if target_id is None:
            raise _bad("duplicate_of", None, f"case {case_id} has no flagged possible duplicate; say which case it duplicates",
                       "请指明与哪件案件重复", "send duplicate_of: the id of the original case")
        if target_id == case_id or conn.execute("SELECT 1 FROM cases WHERE id = %s", (target_id,)).fetchone() is None:
            raise _bad("duplicate_of", target_id, f"case {target_id} cannot be the original of case {case_id}",
                       "重复件的原案件无效", "send the id of another existing case")
        sets["duplicate_of"] = target_id
        data["duplicate_of"] = target_id
    elif action == "dispatch":
        department_id = _department(conn, fields.get("department_id"))
        sets["department_id"] = department_id
        sets["dispatched_at"] = at
        if case["deadline"] is None:
            hours = fields.get("hours")
            if hours is None:
                hours = conn.execute("SELECT time_limit_hours FROM category WHERE code = %s",
                                     (case["category_code"],)).fetchone()["time_limit_hours"]
            hours = _hours(hours)
            sets["deadline"] = at + timedelta(hours=hours)
            data["hours"] = hours
        if state == "returned":
            data["redispatch"] = True
    elif action == "return":
        sets["returns"] = case["returns"] + 1
    elif action == "feedback":
        resolved = fields.get("resolved", True)
        data["resolved"] = bool(resolved)
    elif action == "verify":
        resolved = fields.get("resolved")
        if resolved is None:
            last = conn.execute(
                "SELECT data FROM case_event WHERE case_id = %s AND action IN ('feedback', 'report_up') ORDER BY at DESC, id DESC LIMIT 1",
                (case_id,)).fetchone()
            resolved = bool((last["data"] if last else {}).get("resolved", True))
        sets.update(closed_at=at, closed_level=level, resolved=bool(resolved),
                    closed_on_time=case["deadline"] is None or at <= case["deadline"])
        data["resolved"] = bool(resolved)
    elif action == "rework":
        sets["reworks"] = case["reworks"] + 1
        last = _last_level_change(conn, case_id)
        if last is not None and last["action"] == "report_up" and last["data"].get("from_level") in LEVELS:
            # the level that handed the case down sends it back to the level that reported the result
            data.update(from_level=level, to_level=last["data"]["from_level"])
            level = last["data"]["from_level"]
            sets["handling_level"] = level
    elif action in ("request_extension", "approve_extension", "deny_extension"):
        pending = _pending_extension(conn, case_id)
        if action == "request_extension":
            if pending:
                raise _bad("action", action, f"case {case_id} already has an extension request of {pending} h waiting",
                           "已有待审批的延期申请", "approve_extension or deny_extension it first")
            data["hours"] = _hours(fields["hours"])
        else:
            if not pending:
                raise _bad("action", action, f"case {case_id} has no extension request waiting",
                           "没有待审批的延期申请", "request_extension first")
            data["hours"] = pending
            if action == "approve_extension":
                sets["extensions"] = case["extensions"] + 1
                base = case["deadline"] or at
                sets["deadline"] = base + timedelta(hours=pending)
    elif action == "escalate":
        up = _next_level(case, +1)
        if up is None:
            raise _bad("action", action, f"case {case_id} is handled at the province level; there is nothing above",
                       "案件已在省级办理，无法再上报", "hand_down or dispatch it instead")
        data.update(from_level=level, to_level=up)
        level = up
        sets.update(handling_level=up, escalations=case["escalations"] + 1, department_id=None)
        department_id = None
    elif action == "hand_down":
        to = fields.get("level") or _next_level(case, -1)
        if to not in LEVELS or LEVELS.index(to) >= LEVELS.index(level) or (LEVEL_COLUMN[to] and not case[LEVEL_COLUMN[to]]):
            below = [lv for lv in LEVELS[:LEVELS.index(level)] if LEVEL_COLUMN[lv] and case[LEVEL_COLUMN[lv]]]
            raise _bad("level", to, f"case {case_id} is handled at {level}; it can be handed down to: {', '.join(below) or 'nothing'}",
                       "交办层级无效", f"use a level below {level} where the case has a region: {', '.join(below) or 'none'}")
        data.update(from_level=level, to_level=to, instructions=note, report_back=True)
        if fields.get("hours") is not None:
            hours = _hours(fields["hours"])
            sets["deadline"] = at + timedelta(hours=hours)
            data.update(hours=hours, deadline=sets["deadline"].isoformat())
        level = to
        sets.update(handling_level=to, department_id=None)
        department_id = None
    elif action == "report_up":
        up = report_back_to(conn, case)
        if up is None:
            raise IllegalTransition(
                f"case {case_id} was not handed down to {level}: there is no level waiting for its report",
                message_zh="该案件不是上级交办至本级的案件，无需上报结果", field="action", value=action,
                code="illegal_transition", fix="verify it at this level, or escalate it")
        resolved = fields.get("resolved", True)
        data.update(from_level=level, to_level=up, resolved=bool(resolved), result=note)
        if case["deadline"] is not None:
            data["on_time"] = at <= case["deadline"]
        level = up
        sets["handling_level"] = up
    elif action == "park":
        data["parked_from"] = state
    elif action == "resume":
        row = conn.execute("SELECT from_state FROM case_event WHERE case_id = %s AND action = 'park' ORDER BY at DESC, id DESC LIMIT 1",
                           (case_id,)).fetchone()
        target = row["from_state"] if row else "accepted"
    elif action == "visit":
        s = fields["satisfaction"]
        if isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= 5:
            raise _bad("satisfaction", s, f"satisfaction must be a whole number from 1 to 5, got {s!r}",
                       "满意度须为 1–5 的整数", "send satisfaction 1 (very unhappy) … 5 (very satisfied)")
        sets["satisfaction"] = s
        data["satisfaction"] = s
    elif action == "mediate":
        kind = fields["kind"]
        if kind not in MEDIATION_KINDS:
            raise _bad("kind", kind, f"mediation kind {kind!r} is not one of {', '.join(MEDIATION_KINDS)}",
                       "调解类型须为 人民/行政/司法调解", f"use one of: {', '.join(MEDIATION_KINDS)}")
        m = conn.execute("INSERT INTO mediation (case_id, kind, mediator, started_at) VALUES (%s, %s, %s, %s) RETURNING id",
                         (case_id, kind, str(fields["mediator"]), at)).fetchone()
        data.update(mediation_id=m["id"], kind=kind, mediator=str(fields["mediator"]))
    elif action == "mediation_result":
        outcome = fields["outcome"]
        if outcome not in ("agreed", "failed"):
            raise _bad("outcome", outcome, f"outcome {outcome!r} is not agreed or failed", "调解结果须为 agreed 或 failed",
                       "send outcome agreed (达成协议) or failed (调解不成)")
        if outcome == "agreed" and not fields.get("agreement"):
            raise _bad("agreement", None, "an agreed mediation needs the agreement text", "达成协议须填写协议内容",
                       "send agreement: what the parties agreed")
        mid = fields.get("mediation_id")
        m = conn.execute(
            "SELECT id FROM mediation WHERE case_id = %s AND outcome = 'ongoing' AND (%s::bigint IS NULL OR id = %s) ORDER BY id DESC LIMIT 1",
            (case_id, mid, mid)).fetchone()
        if m is None:
            raise _bad("mediation_id", mid, f"case {case_id} has no ongoing mediation{'' if mid is None else f' {mid}'}",
                       "没有进行中的调解", "start one with the mediate action")
        conn.execute("UPDATE mediation SET outcome = %s, agreement = %s, ended_at = %s WHERE id = %s",
                     (outcome, fields.get("agreement"), at, m["id"]))
        data.update(mediation_id=m["id"], outcome=outcome, agreement=fields.get("agreement"))

    sets["state"] = target
    sets["updated_at"] = at
    assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in sets)
    conn.execute(sql.SQL("UPDATE cases SET {} WHERE id = %s").format(assignments), [*sets.values(), case_id])
    event = conn.execute(
        """INSERT INTO case_event (case_id, at, actor, action, from_state, to_state, level, department_id, note, data)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id, at, actor, action, from_state, to_state, level,
                  department_id, note, data""",
        (case_id, at, actor, action, state, target, level, department_id, note,
         json.dumps(data, ensure_ascii=False, default=str))).fetchone()
    return {"case": get_case(conn, case_id), "event": dict(event)}


def _hours(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 24 * 90:
        raise _bad("hours", value, f"hours must be a number from 1 to {24 * 90}, got {value!r}",
                   "时限（小时）须在 1 到 2160 之间", "send hours as a whole number of hours")
    return int(value)


def _department(conn: psycopg.Connection, department_id: Any) -> int:
    if isinstance(department_id, bool) or not isinstance(department_id, int):
        raise _bad("department_id", department_id, f"department_id must be a department's id, got {department_id!r}",
                   "department_id 须为部门编号", "use an id from GET /api/v1/departments")
    if conn.execute("SELECT 1 FROM department WHERE id = %s", (department_id,)).fetchone() is None:
        raise _bad("department_id", department_id, f"there is no department {department_id}",
                   f"部门 {department_id} 不存在", "use an id from GET /api/v1/departments")
    return department_id


def _pending_extension(conn: psycopg.Connection, case_id: int) -> int | None:
    row = conn.execute(
        "SELECT action, data FROM case_event WHERE case_id = %s AND action IN ('request_extension', 'approve_extension', "
        "'deny_extension') ORDER BY at DESC, id DESC LIMIT 1", (case_id,)).fetchone()
    if row and row["action"] == "request_extension":
        return int(row["data"]["hours"])
    return None


def _last_level_change(conn: psycopg.Connection, case_id: int) -> dict | None:
    """The case's last event that moved it between levels (escalate, hand_down, report_up, a rework sent down)."""
    row = conn.execute(
        "SELECT action, level, data FROM case_event WHERE case_id = %s AND (action IN ('escalate', 'hand_down', 'report_up') "
        "OR (action = 'rework' AND data ? 'to_level')) ORDER BY at DESC, id DESC LIMIT 1", (case_id,)).fetchone()
    return dict(row) if row else None


def report_back_to(conn: psycopg.Connection, case: dict) -> str | None:
    """The level waiting for this case's result: the level that handed it down to where it is now (or
    sent a reported-up result back down to rework), while it has not reported up since; else None."""
    last = _last_level_change(conn, case["id"])
    if last is None or last["data"].get("to_level") != case["handling_level"]:
        return None
    if last["action"] in ("hand_down", "rework"):
        up = last["data"].get("from_level")
        return up if up in LEVELS and LEVELS.index(up) > LEVELS.index(case["handling_level"]) else None
    return None


def _next_level(case: dict, step: int) -> str | None:
    """The next level up (+1) or down (-1) from the case's handling level at which it has a region."""
    k = LEVELS.index(case["handling_level"]) + step
    while 0 <= k < len(LEVELS):
        column = LEVEL_COLUMN[LEVELS[k]]
        if column is None or case[column]:
            return LEVELS[k]
        k += step
    return None


# -- personal data (issue 11) ------------------------------------------------------------------
# What may name or reach a person: the reporter's contact and the parties are never in a case's
# ordinary fields (CASE_COLUMNS leaves them out); the free text — description, address, event
# notes, a mediation's mediator and agreement — may. Every face (API, Open311, exports, pages)
# passes cases through :func:`mask`; the reporter and parties themselves only come from
# :func:`personal_details`, which checks the right and writes the audit row.
PERSONAL_TEXT = ("description", "address")
MASK = "***"


def may_read_personal(principal) -> bool:
    """Does ``principal`` (a gridwatch.auth.Principal, or None) hold read_personal_data?"""
    return principal is not None and principal.can("read_personal_data")


def mask(case: dict, principal) -> dict:
    """``case`` as ``principal`` may see it: free text that may name people replaced by ``***`` for
    roles without read_personal_data (a case the principal created itself stays whole: it wrote it)."""
    if may_read_personal(principal) or (principal is not None and case.get("created_by") is not None
                                        and case.get("created_by") == principal.user_id):
        return case
    out = dict(case)
    for key in PERSONAL_TEXT:
        if out.get(key):
            out[key] = MASK
    if "events" in out:
        out["events"] = [{**e, "note": MASK if e.get("note") else e.get("note"),
                          "data": {k: v for k, v in (e.get("data") or {}).items() if k not in ("mediator", "agreement")}}
                         for e in out["events"]]
    if "mediations" in out:
        out["mediations"] = [{**m, "mediator": MASK if m.get("mediator") else None,
                              "agreement": MASK if m.get("agreement") else None} for m in out["mediations"]]
    out["personal_data_masked"] = True
    return out


class PersonalDataRefused(InputError):
    """The role may not open people's details (403)."""

    status = 403
    code = "forbidden"


def personal_details(conn: psycopg.Connection, principal, case_id: int, what: str = "parties") -> dict:
    """The reporter's contact, the parties and the mediations of case ``case_id``, for a principal
    holding read_personal_data; writes one personal_data_access row (who, when, which case, what)
    in the same transaction. Refused (403) without the right; a case outside the scope is 404."""
    if not may_read_personal(principal):
        role = getattr(principal, "role", None)
        raise PersonalDataRefused(f"the role {role or 'anonymous'} may not open people's details",
                                  message_zh="该角色无权查看当事人信息", field="role", value=role,
                                  fix="ask a province leader, an operator or the department handling the case")
    row = conn.execute("SELECT id, reporter_name, reporter_phone, parties FROM cases WHERE id = %s", (case_id,)).fetchone()
    if row is None:
        raise NotFound(f"there is no case {case_id}", message_zh=f"案件 {case_id} 不存在", field="id", value=case_id,
                       fix="use an id returned by GET /api/v1/cases", code="not_found")
    conn.execute("INSERT INTO personal_data_access (user_id, username, case_id, what) VALUES (%s, %s, %s, %s)",
                 (principal.user_id, principal.username, case_id, what))
    return {"case_id": case_id, "reporter_name": row["reporter_name"], "reporter_phone": row["reporter_phone"],
            "parties": row["parties"] or [], "mediations": case_mediations(conn, case_id)}
