"""The workbench: each user's work queue, the actions a user may take on a case now, and convening
several departments on one case (一吹哨、部门报到).

One function answers "what may this user do to this case now" — :func:`actions_for` — and both
faces ask it: the pages show a button for each action it returns, the API refuses (403) any other
(:func:`act`). It combines the lifecycle's transition table (``gridwatch.cases.TRANSITIONS``: which
actions the case's state allows) with who the user is:

- an **operator** (综治中心) acts on cases handled at its level in its region (a township centre
  also on its villages' cases): accept, reject, merge, dispatch, escalate, hand down (with a
  deadline for the report back), park, resume, mediate, record the mediation's result, approve or
  deny an extension, verify, rework, visit, and convene departments. A case handed down to a lower
  centre is reported up (上报结果) by that centre, not closed there: the level that handed it down
  verifies it (``gridwatch.cases.report_back_to``);
- a **department** acts on the cases dispatched to it: accept them (start), return them with a
  reason, ask for an extension, give feedback; on a case it was convened to it reports in (报到),
  finishes its part, or declines it with a reason;
- a **grid worker** records a follow-up check (a check-in about the case) on its grid's cases, and
  reports up the result of a task handed down to its grid (a village-level case).

>>> STAGES[:3]
('to_accept', 'to_dispatch', 'in_progress')
>>> operator_level("620702"), operator_level("620702100")
('county', 'township')
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from gridwatch import attachments, checkins, hazards
from gridwatch import cases as lifecycle
from gridwatch.auth import Principal
from gridwatch.db import fetch_all, load_sql
from gridwatch.errors import DomainError, Invalid
from gridwatch.i18n import register

__all__ = [
    "STAGES", "STAGE_NAMES", "ACTION_NAMES", "Forbidden", "operator_level", "queue", "queue_counts", "actions_for",
    "act", "convene", "assignments", "departments_serving", "case_detail", "MY_ACTIONS", "case_hazards", "match_places",
    "nearby_cases", "region_outline", "place_names",
]

HERE = Path(__file__).resolve().parent

# Stages of a queue in the order the tabs show them ("overdue" is a filter across the others).
STAGES = ("to_accept", "to_dispatch", "in_progress", "to_verify", "to_visit", "overdue", "parked", "convened")
STAGE_NAMES = {
    "to_accept": ("待受理", "To accept"), "to_dispatch": ("待分派", "To dispatch"), "in_progress": ("办理中", "In progress"),
    "to_verify": ("待核查", "To verify"), "to_visit": ("待回访", "To visit"), "overdue": ("逾期", "Overdue"),
    "parked": ("挂账", "Parked"), "convened": ("协办", "Convened"),
}
# Actions of the workbench beyond the lifecycle's: convening and the departments' answers to it,
# and a grid worker's follow-up check.
MY_ACTIONS = {
    "convene": ("召集部门会商", "Convene departments"),
    "report_in": ("部门报到", "Report in"),
    "part_done": ("完成分工", "Part done"),
    "decline": ("退回分工", "Decline the part"),
    "follow_up": ("跟踪回访核查", "Follow-up check"),
    "register_hazard": ("登记隐患", "Register a hazard"),
    "close_out_hazard": ("隐患销号", "Close out a hazard"),
}
LIFECYCLE_EN = {
    "accept": "Accept", "reject": "Reject", "merge": "Merge duplicate", "dispatch": "Dispatch", "return": "Return",
    "start": "Accept (start)", "feedback": "Feedback", "verify": "Verify and close", "rework": "Rework",
    "request_extension": "Request extension", "approve_extension": "Approve extension", "deny_extension": "Deny extension",
    "escalate": "Escalate", "hand_down": "Hand down", "park": "Park", "resume": "Resume", "visit": "Visit",
    "mediate": "Mediate", "mediation_result": "Mediation result", "report_up": "Report the result up",
}
ACTION_NAMES = {**{a: (t.name_zh, LIFECYCLE_EN[a]) for a, t in lifecycle.TRANSITIONS.items()}, **MY_ACTIONS}
ACTION_NAMES["start"] = ("接收办理", "Accept (start)")

register({f"wb.stage.{k}": {"zh": zh, "en": en} for k, (zh, en) in STAGE_NAMES.items()})
register({f"wb.action.{k}": {"zh": zh, "en": en} for k, (zh, en) in ACTION_NAMES.items()})

OPERATOR_ACTIONS = frozenset({"accept", "reject", "merge", "dispatch", "escalate", "hand_down", "park", "resume",
                              "mediate", "mediation_result", "approve_extension", "deny_extension", "verify", "rework",
                              "visit", "report_up"})
DEPARTMENT_ACTIONS = frozenset({"start", "return", "feedback", "request_extension"})
LEVEL_BY_LENGTH = {4: "prefecture", 6: "county", 9: "township"}


class Forbidden(DomainError):
    """The user may not do this (403): not their role, not their case, or not now."""

    status = 403
    code = "forbidden"
    message_zh_default = "无权执行此操作"


def operator_level(code: str | None) -> str | None:
    """The level of an operator's centre from its region code (prefecture, county or township)."""
    return LEVEL_BY_LENGTH.get(len(code or ""))


def _now(conn: psycopg.Connection) -> datetime:
    return conn.execute("SELECT now() AS t").fetchone()["t"]


def queue(conn: psycopg.Connection, who: Principal, *, stage: str | None = None, now: datetime | None = None,
          limit: int = 500) -> list[dict]:
    """The cases of ``who``'s queue (optionally one stage, or "overdue"), soonest deadline first.

    Each row: id, ref, title, category, grade, state, stage, due (the deadline that matters now:
    the first-response time of a new case, else the handling deadline, or a convened department's
    own part deadline), seconds_left (negative when overdue), overdue, department, place.
    """
    if stage is not None and stage not in STAGES:
        raise Invalid(f"stage {stage!r} is not one of {', '.join(STAGES)}", field="stage", value=stage,
                      message_zh="队列阶段无效", fix=f"use one of: {', '.join(STAGES)}")
    if who.role not in ("operator", "department", "grid_worker"):
        return []
    params = {"role": who.role, "code": who.region_code or "", "department": who.department_id or 0,
              "now": now or _now(conn), "stage": stage, "limit": int(limit)}
    return [dict(r) for r in fetch_all(conn, load_sql(HERE, "workbench-queue"), params)]


def queue_counts(rows: list[dict]) -> dict[str, int]:
    """How many cases of a queue are in each stage (and overdue)."""
    counts = {s: 0 for s in STAGES}
    for r in rows:
        counts[r["stage"]] = counts.get(r["stage"], 0) + 1
        counts["overdue"] += bool(r["overdue"])
    return counts


def _in_operator_region(who: Principal, case: dict) -> bool:
    level = operator_level(who.region_code)
    if level is None:
        return False
    column = lifecycle.LEVEL_COLUMN[level]
    if case.get(column) != who.region_code:
        return False
    return case["handling_level"] == level or (level == "township" and case["handling_level"] == "village")


def assignments(conn: psycopg.Connection, case_id: int) -> list[dict]:
    """The departments convened to a case: lead first, each with its part, deadline and state."""
    return fetch_all(conn, """SELECT a.id, a.case_id, a.department_id, d.name AS department_name, a.role, a.part, a.deadline,
                                     a.state, a.note, a.convened_at, a.convened_by, a.reported_in_at, a.done_at
                                FROM case_assignment a JOIN department d ON d.id = a.department_id
                               WHERE a.case_id = %s ORDER BY (a.role <> 'lead'), a.id""", (case_id,))


def actions_for(conn: psycopg.Connection, who: Principal, case: dict) -> list[str]:
    """The actions ``who`` may take on ``case`` now, in the lifecycle's order then the workbench's."""
    allowed = lifecycle.allowed_actions(case["state"])
    out: list[str] = []
    if who.role == "operator" and who.can("act") and _in_operator_region(who, case):
        out = [a for a in allowed if a in OPERATOR_ACTIONS]
        if case["state"] == "closed" and case.get("satisfaction") is not None:
            out = [a for a in out if a != "visit"]
        if "merge" in out and case.get("possible_duplicate_of") is None:
            out = [a for a in out if a != "merge"] + ["merge"]   # still possible, naming the original
        waiting = lifecycle.report_back_to(conn, case)
        own = case["handling_level"] == operator_level(who.region_code)
        if waiting is None or not own:
            out = [a for a in out if a != "report_up"]      # only the centre a case was handed down to reports up
        else:
            out = [a for a in out if a != "verify"]         # …and the level that handed it down closes it
        if case["state"] in ("accepted", "returned", "dispatched", "in_progress"):
            out.append("convene")
        out += _hazard_actions(conn, who, case)
    elif who.role == "department" and who.can("act") and who.department_id is not None:
        if case.get("department_id") == who.department_id:
            out = [a for a in allowed if a in DEPARTMENT_ACTIONS]
        mine = [a for a in assignments(conn, case["id"]) if a["department_id"] == who.department_id]
        if mine and lifecycle.STATE_NAMES.get(case["state"]) and case["state"] not in ("closed", "rejected"):
            state = mine[0]["state"]
            if state == "convened":
                out += ["report_in", "decline"]
            elif state == "reported_in":
                out += ["part_done"]
        if case.get("department_id") == who.department_id or mine:
            out += _hazard_actions(conn, who, case)
    elif who.role == "grid_worker" and case.get("grid_code") == who.region_code and case["state"] != "rejected":
        out = ["follow_up"]
        if case["handling_level"] == "village" and "report_up" in allowed and lifecycle.report_back_to(conn, case):
            out.append("report_up")                         # the task handed down to the grid: report its result
    return out


def case_hazards(conn: psycopg.Connection, case_id: int) -> list[dict]:
    """Hazards registered on a case (the line over the shed, …), with their state and owner."""
    return fetch_all(conn, """SELECT h.id, h.kind, h.title, h.grade, h.state, h.deadline, h.owner_department_id,
                                     d.name AS owner_name, h.closed_at
                                FROM hazard h LEFT JOIN department d ON d.id = h.owner_department_id
                               WHERE h.case_id = %s ORDER BY h.id""", (case_id,))


def _hazard_actions(conn: psycopg.Connection, who: Principal, case: dict) -> list[str]:
    """register_hazard on an open case; close_out_hazard while one of its hazards is open and the user is
    the centre handling the case, the department handling it, or the hazard's owner."""
    if case["state"] in ("closed", "rejected"):
        return []
    out = ["register_hazard"]
    for h in case_hazards(conn, case["id"]):
        if h["state"] != "closed" and (who.role == "operator" or who.department_id in (h["owner_department_id"], case.get("department_id"))):
            out.append("close_out_hazard")
            break
    return out


def departments_serving(conn: psycopg.Connection, case: dict) -> list[dict]:
    """Departments that serve the case's place (its village, township, county or prefecture), those of
    the category's department kind first, then the nearest level."""
    codes = [case.get(k) for k in ("village_code", "township_code", "county_code", "prefecture_code") if case.get(k)]
    return fetch_all(conn, """SELECT d.id, d.name, d.kind, d.region_code, r.name AS region_name, r.level
                                FROM department d JOIN region r ON r.code = d.region_code
                               WHERE d.region_code = ANY(%(codes)s)
                               ORDER BY (d.kind <> (SELECT department_kind FROM category WHERE code = %(cat)s)),
                                        length(d.region_code) DESC, d.name""",
                     {"codes": codes, "cat": case["category_code"]})


def _deadline(conn, value: Any, now: datetime, field: str) -> datetime:
    if isinstance(value, datetime):
        at = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and 1 <= value <= 24 * 90:
        at = now + timedelta(hours=float(value))
    else:
        raise Invalid(f"{field} must be a time or a number of hours from 1 to {24 * 90}, got {value!r}", field=field,
                      value=value if isinstance(value, (int, float, str)) else repr(value),
                      message_zh="时限须为时间或 1–2160 小时", fix="send hours (e.g. 72) or an ISO time")
    if at <= now:
        raise Invalid(f"{field} {at.isoformat()} is not in the future", field=field, value=at.isoformat(),
                      message_zh="时限须晚于当前时间", fix="give a later time")
    return at


def convene(conn: psycopg.Connection, who: Principal, case_id: int, parts: list[dict], *, note: str | None = None,
            at: datetime | None = None) -> dict:
    """Convene departments on a case (一吹哨): ``parts`` = [{department_id, part, hours | deadline, lead}], exactly
    one lead. The lead is also dispatched the case when it is waiting for dispatch (accepted or returned),
    with the latest of the parts' deadlines. Writes one ``convene`` event on the case's trail."""
    case = lifecycle.get_case(conn, case_id, lock=True)
    if "convene" not in actions_for(conn, who, case):
        raise _forbidden(who, case, "convene")
    if not isinstance(parts, list) or not parts or len(parts) > 20:
        raise Invalid("convene needs 1 to 20 departments, each with its part and deadline", field="parts", value=None,
                      message_zh="召集须指定 1–20 个部门及各自分工、时限", fix="send parts: [{department_id, part, hours, lead}]")
    now = at or _now(conn)
    leads = [p for p in parts if isinstance(p, dict) and p.get("lead")]
    if len(leads) != 1:
        raise Invalid(f"convene needs exactly one lead department, got {len(leads)}", field="parts", value=len(leads),
                      message_zh="须指定且只能指定一个牵头部门", fix="mark one part lead: true")
    existing = {a["department_id"] for a in assignments(conn, case_id)}
    rows = []
    for k, p in enumerate(parts):
        if not isinstance(p, dict):
            raise Invalid(f"parts[{k}] must be an object", field=f"parts[{k}]", value=None, message_zh="分工格式无效",
                          fix="send {department_id, part, hours}")
        dept = p.get("department_id")
        if isinstance(dept, bool) or not isinstance(dept, int) or \
                conn.execute("SELECT 1 FROM department WHERE id = %s", (dept,)).fetchone() is None:
            raise Invalid(f"parts[{k}].department_id {dept!r} is not a department", field=f"parts[{k}].department_id",
                          value=dept if isinstance(dept, (int, str)) else None, message_zh="部门不存在",
                          fix="choose a department serving the place (departments_serving)")
        if dept in existing or dept in [r["department_id"] for r in rows]:
            raise Invalid(f"department {dept} is already convened on case {case_id}", field=f"parts[{k}].department_id",
                          value=dept, message_zh="该部门已被召集", fix="convene each department once")
        part = (p.get("part") or "").strip() if isinstance(p.get("part"), str) else ""
        if not part or len(part) > 2000:
            raise Invalid(f"parts[{k}].part: say what this department does (1–2000 characters)", field=f"parts[{k}].part",
                          value=None, message_zh="请填写该部门的分工", fix="describe the department's part")
        deadline = _deadline(conn, p.get("deadline", p.get("hours")), now, f"parts[{k}].hours")
        rows.append({"department_id": dept, "part": part, "deadline": deadline, "role": "lead" if p.get("lead") else "co"})
    if any(r["role"] == "lead" for r in rows) and any(a["role"] == "lead" for a in assignments(conn, case_id)):
        raise Invalid(f"case {case_id} has a lead department already", field="parts", value=None,
                      message_zh="该案件已有牵头部门", fix="convene the others as co-handlers")
    for r in rows:
        conn.execute("""INSERT INTO case_assignment (case_id, department_id, role, part, deadline, convened_at, convened_by)
                        VALUES (%s, %s, %s, %s, %s, %s, %s)""",
                     (case_id, r["department_id"], r["role"], r["part"], r["deadline"], now, who.username))
    lead = next(r for r in rows if r["role"] == "lead")
    data = {"parts": [{**r, "deadline": r["deadline"].isoformat()} for r in rows]}
    _event(conn, case, "convene", who, now, note, data)
    if case["state"] in ("accepted", "returned"):
        hours = max(1, int(round((max(r["deadline"] for r in rows) - now).total_seconds() / 3600)))
        lifecycle.apply(conn, case_id, "dispatch", who.username, at=now, note=note or lead["part"],
                        department_id=lead["department_id"], hours=hours)
    return {"case": lifecycle.get_case(conn, case_id), "assignments": assignments(conn, case_id)}


def _event(conn, case: dict, action: str, who: Principal, at: datetime, note: str | None, data: dict) -> None:
    """A workbench event on the case's trail; the state stays."""
    conn.execute("""INSERT INTO case_event (case_id, at, actor, action, from_state, to_state, level, department_id, note, data)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                 (case["id"], at, who.username, action, case["state"], case["state"], case["handling_level"],
                  who.department_id, note, json.dumps(data, ensure_ascii=False, default=str)))


def _forbidden(who: Principal, case: dict, action: str) -> Forbidden:
    return Forbidden(
        f"{who.username} ({who.role}) may not {action} case {case['id']} now (state {case['state']}, "
        f"handled at {case['handling_level']})",
        message_zh=f"您（{who.username}）当前不能对案件 {case.get('ref') or case['id']} 执行「{ACTION_NAMES.get(action, (action,))[0]}」",
        field="action", value=action, fix="use one of the actions the case page offers you (allowed_actions)")


def act(conn: psycopg.Connection, who: Principal, case_id: int, action: str, *, note: str | None = None,
        at: datetime | None = None, **fields: Any) -> dict:
    """Take ``action`` on a case as ``who`` — only when :func:`actions_for` allows it (else :class:`Forbidden`).

    Lifecycle actions go through ``gridwatch.cases.apply`` with the user as actor; ``convene`` through
    :func:`convene` (``parts``); ``report_in`` / ``part_done`` / ``decline`` change the department's
    assignment (``decline`` needs a reason in ``note``); ``follow_up`` records the grid worker's check-in
    about the case. Returns {"case", "allowed_actions", …}."""
    case = lifecycle.get_case(conn, case_id, lock=True)
    allowed = actions_for(conn, who, case)
    if action not in ACTION_NAMES:
        raise Invalid(f"unknown action {action!r}", field="action", value=action, message_zh="未知的操作",
                      fix=f"use one of: {', '.join(allowed) or 'none (nothing is allowed now)'}")
    if action not in allowed:
        raise _forbidden(who, case, action)
    if action == "hand_down" and fields.get("hours") is None:
        raise Invalid("hand_down needs hours: the deadline for the report back", field="hours", value=None,
                      message_zh="交办下级须设定办理时限（小时）", fix="send hours (1–2160): by when the lower level reports back")
    out: dict[str, Any] = {}
    if action == "convene":
        out = convene(conn, who, case_id, fields.get("parts") or [], note=note, at=at)
    elif action in ("report_in", "part_done", "decline"):
        if action == "decline" and not (note or "").strip():
            raise Invalid("decline needs the reason", field="note", value=None, message_zh="退回分工须说明理由",
                          fix="say why the part is not this department's")
        now = at or _now(conn)
        state = {"report_in": "reported_in", "part_done": "done", "decline": "declined"}[action]
        conn.execute("""UPDATE case_assignment SET state = %s, note = coalesce(%s, note),
                               reported_in_at = CASE WHEN %s = 'reported_in' THEN %s ELSE reported_in_at END,
                               done_at = CASE WHEN %s IN ('done', 'declined') THEN %s ELSE done_at END
                         WHERE case_id = %s AND department_id = %s""",
                     (state, note, state, now, state, now, case_id, who.department_id))
        _event(conn, case, action, who, now, note, {"department_id": who.department_id})
    elif action == "follow_up":
        if not (note or "").strip():
            raise Invalid("a follow-up check needs what was found", field="note", value=None, message_zh="请填写核查情况",
                          fix="say what the check found")
        row, _ = checkins.checkin(conn, who.region_code, who.username, "report", note=note, case_id=case_id)
        _event(conn, case, "follow_up", who, at or _now(conn), note, {"checkin_id": row["id"]})
        out["checkin"] = row
    elif action == "register_hazard":
        kind = fields.get("hazard_kind")
        if kind not in hazards.KIND_NAMES:
            raise Invalid(f"hazard_kind {kind!r} is not one of {', '.join(hazards.KIND_NAMES)}", field="hazard_kind", value=kind,
                          message_zh="请选择隐患类型", fix=f"use one of: {', '.join(hazards.KIND_NAMES)}")
        item = {"kind": kind, "title": fields.get("title") or None, "description": note, "case_id": case_id,
                "geometry": {"type": "Point", "coordinates": [case["lon"], case["lat"]]},
                "owner_department_id": fields.get("owner_department_id"), "deadline_days": fields.get("deadline_days")}
        row, _ = hazards.create_hazard(conn, {k: v for k, v in item.items() if v is not None}, actor=who.username)
        _event(conn, case, action, who, at or _now(conn), note, {"hazard_id": row["id"], "kind": kind, "grade": row["grade"]})
        out["hazard"] = row
    elif action == "close_out_hazard":
        hid = fields.get("hazard_id")
        linked = {h["id"]: h for h in case_hazards(conn, case_id)}
        if hid not in linked or linked[hid]["state"] == "closed":
            raise Invalid(f"hazard {hid!r} is not an open hazard of case {case_id}", field="hazard_id", value=hid,
                          message_zh="请选择本案件下未销号的隐患", fix=f"choose one of: {[h for h, v in linked.items() if v['state'] != 'closed']}")
        out["hazard"] = hazards.act(conn, hid, "close_out", who.username, at=at, note=note)
        _event(conn, case, action, who, at or _now(conn), note, {"hazard_id": hid})
    else:
        out = lifecycle.apply(conn, case_id, action, who.username, at=at, note=note, **fields)
    case = lifecycle.get_case(conn, case_id)
    return {**out, "case": case, "allowed_actions": actions_for(conn, who, case)}


def case_detail(conn: psycopg.Connection, who: Principal, case_id: int) -> dict:
    """Everything the case page shows: the case, its trail, mediations, convened departments,
    attachments (metadata), the departments serving the place and the actions allowed now."""
    case = lifecycle.get_case(conn, case_id)
    category = conn.execute("SELECT name_zh, name_en, time_limit_hours, department_kind FROM category WHERE code = %s",
                            (case["category_code"],)).fetchone()
    department = conn.execute("SELECT name FROM department WHERE id = %s", (case["department_id"],)).fetchone() \
        if case["department_id"] else None
    detail = {
        "case": case, "category": dict(category) if category else {},
        "department_name": department["name"] if department else None,
        "events": lifecycle.case_events(conn, case_id), "mediations": lifecycle.case_mediations(conn, case_id),
        "assignments": assignments(conn, case_id), "attachments": attachments.list_for(conn, case_id=case_id),
        "departments": departments_serving(conn, case), "allowed_actions": actions_for(conn, who, case),
        "parties": _parties(conn, who, case_id), "hazards": case_hazards(conn, case_id),
    }
    if not lifecycle.may_read_personal(who):
        # the same masking as every other face: free text that may name people becomes ***
        masked = lifecycle.mask({**case, "events": detail["events"], "mediations": detail["mediations"]}, who)
        detail["events"], detail["mediations"] = masked.pop("events"), masked.pop("mediations")
        detail["case"] = masked
    return detail


def _parties(conn: psycopg.Connection, who: Principal, case_id: int) -> list[dict]:
    """The reporter and parties, only for a role with read_personal_data, and then through
    :func:`gridwatch.cases.personal_details`, which writes the audit row (who, when, which case)."""
    if not lifecycle.may_read_personal(who):
        return []
    row = lifecycle.personal_details(conn, who, case_id, what="parties (workbench case page)")
    out = []
    if row["reporter_name"] or row["reporter_phone"]:
        out.append({"role": "reporter", "name": row["reporter_name"], "contact": row["reporter_phone"]})
    for p in row["parties"] or []:
        if isinstance(p, dict):
            out.append({"role": p.get("role") or "party", "name": p.get("name"), "contact": p.get("contact") or p.get("phone")})
        elif isinstance(p, str):
            out.append({"role": "party", "name": p, "contact": None})
    return out



def match_places(conn: psycopg.Connection, text: str, *, within: str | None = None, limit: int = 12) -> list[dict]:
    """Regions whose name contains ``text`` (the address a caller gives, matched against region names;
    no outside geocoder), inside ``within`` when given, finest level first: code, name, level, the
    names above it, and a point inside it (lon, lat) to place the case at."""
    words = [w for w in (text or "").replace("，", " ").replace(",", " ").split() if w][:4]
    if not words or len((text or "").strip()) > 100:
        return []
    return fetch_all(conn, load_sql(HERE, "workbench-places"),
                     {"words": words, "within": within or "", "limit": int(limit)})


def nearby_cases(conn: psycopg.Connection, category: str, lon: float, lat: float, *, metres: int = 500, days: int = 7,
                 limit: int = 10) -> list[dict]:
    """Cases of the same category within ``metres`` reported in the last ``days`` (open or closed, not
    rejected): shown at the window before saving, as possible duplicates."""
    return fetch_all(conn, """SELECT c.id, c.ref, c.title, c.state, c.reported_at,
                                     round(ST_Distance(c.geom::geography, p.g::geography))::int AS metres
                                FROM cases c, (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS g) p
                               WHERE c.category_code = %(cat)s AND c.state <> 'rejected'
                                 AND c.geom && ST_Expand(p.g, %(deg)s)
                                 AND ST_DWithin(c.geom::geography, p.g::geography, %(m)s)
                                 AND c.reported_at > now() - make_interval(days => %(days)s)
                               ORDER BY ST_Distance(c.geom::geography, p.g::geography), c.id LIMIT %(limit)s""",
                     {"lon": lon, "lat": lat, "cat": category, "deg": metres / 80_000, "m": metres, "days": days,
                      "limit": limit})


def region_outline(conn: psycopg.Connection, code: str) -> dict | None:
    """{code, name, level, geometry (GeoJSON, simplified), lon, lat (a point inside), bounds} of a region."""
    row = conn.execute("""SELECT code, name, level, ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, 0.0001), 6)::json AS geometry,
                                 ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat,
                                 ST_XMin(geom) AS x0, ST_YMin(geom) AS y0, ST_XMax(geom) AS x1, ST_YMax(geom) AS y1
                            FROM region WHERE code = %s""", (code,)).fetchone()
    return dict(row) if row else None


def place_names(conn: psycopg.Connection, codes: dict) -> str:
    """"甘州区 新墩镇 浅河村" for a case's stamped codes."""
    wanted = [codes.get(k) for k in ("county_code", "township_code", "village_code", "grid_code") if codes.get(k)]
    rows = fetch_all(conn, "SELECT code, name FROM region WHERE code = ANY(%s)", (wanted,))
    names = {r["code"]: r["name"] for r in rows}
    return " ".join(names[c] for c in wanted if c in names)
