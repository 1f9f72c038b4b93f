"""/api/v1: create and query cases, act on them, categories, departments (the live stream is gridwatch/api/live.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from psycopg import sql

from gridwatch import cases as lifecycle
from gridwatch import intake
from gridwatch.api.auth import acting_user, current_principal
from gridwatch.api.errors import ApiRoute, json_response
from gridwatch.models import ActionIn, BatchIn, CaseIn
from gridwatch.db import transaction
from gridwatch.regions import canonical_or_raw

__all__ = ["router", "CaseIn", "ActionIn", "region_column"]

router = APIRouter(prefix="/api/v1", route_class=ApiRoute, tags=["cases"])

LEVEL_BY_LENGTH = {2: None, 4: "prefecture_code", 6: "county_code", 9: "township_code", 12: "village_code", 15: "grid_code"}


def _public(case: dict, created: bool | None = None, principal=None, *, echo: bool = False) -> dict:
    """A case as the API shows it: masked for ``principal`` (gridwatch.cases.mask) unless ``echo``
    (the answer to the request that wrote it: the client sent that text itself)."""
    out = dict(case) if echo else lifecycle.mask(case, principal)
    if created is not None:
        out["created"] = created
    out["possible_duplicate"] = case.get("possible_duplicate_of") is not None
    return out


def region_column(code: str) -> sql.Composable | None:
    """The cases column to filter on for a region code (None for the province: everything)."""
    if not code.isdigit() or len(code) not in LEVEL_BY_LENGTH:
        raise intake.InputError(f"region {code!r} is not a region code (2, 4, 6, 9, 12 or 15 digits)",
                                message_zh="地区编码无效", field="region", value=code,
                                fix="use a code such as 6207 (张掖市) or 620702 (甘州区)")
    column = LEVEL_BY_LENGTH[len(code)]
    return sql.Identifier(column) if column else None


@router.get("/categories", summary="Case categories: disputes and GB/T 30428 events, with department kind and time limit")
def list_categories(request: Request):
    with transaction(request.app.state.pool, readonly=True) as conn:
        return list(intake.categories(conn).values())


@router.get("/departments", summary="Departments cases are dispatched to, by region and kind")
def list_departments(request: Request, region: str | None = None, kind: str | None = None,
                     limit: int = Query(200, ge=1, le=5000)):
    region = None if region is None else canonical_or_raw(region)    # the one parser (620100 → 6201)
    with transaction(request.app.state.pool, readonly=True) as conn:
        rows = conn.execute(
            """SELECT id, name, kind, region_code, phone FROM department
               WHERE (%(region)s::text IS NULL OR region_code = %(region)s) AND (%(kind)s::text IS NULL OR kind = %(kind)s)
               ORDER BY region_code, kind, id LIMIT %(limit)s""", {"region": region, "kind": kind, "limit": limit}).fetchall()
    return rows


@router.get("/cases/transitions", summary="The lifecycle's transition table: for each action, from which states, to which, needing what")
def transitions():
    return [{"action": t.action, "from": list(t.sources),
             "to": {"=": "(unchanged)", "<": "(the state it was parked from)"}.get(t.target, t.target),
             "needs": list(t.needs), "name_zh": t.name_zh} for t in lifecycle.TRANSITIONS.values()]


@router.post("/cases", status_code=201, summary="Report a case (idempotent on client_request_id)",
             responses={200: {"description": "a case with this client_request_id already existed; it is returned"},
                        201: {"description": "created"}, 400: {"description": "malformed JSON"},
                        413: {"description": "body too large"}, 422: {"description": "invalid: field, value and fix named"}})
def post_case(request: Request, body: CaseIn):
    with transaction(request.app.state.pool) as conn:
        case, created = intake.create_case(conn, body.model_dump(exclude_none=True))
    return json_response(_public(case, created, echo=True), 201 if created else 200)


@router.post("/cases/batch", status_code=201, summary="Report many cases at once: all are written or none (one notification)")
def post_batch(request: Request, body: BatchIn):
    items = [c.model_dump(exclude_none=True) for c in body.cases]
    with transaction(request.app.state.pool) as conn:
        results = intake.create_cases(conn, items)
    out = [{"id": c["id"], "ref": c["ref"], "client_request_id": c["client_request_id"], "created": created,
            "grid_code": c["grid_code"], "possible_duplicate_of": c["possible_duplicate_of"]} for c, created in results]
    return json_response({"count": len(out), "created": sum(1 for r in out if r["created"]), "cases": out}, 201)


@router.get("/cases", summary="Query cases by state, category, grade, region and time")
def query_cases(request: Request, state: str | None = None, category: str | None = None, grade: str | None = None,
                region: str | None = Query(None, description="region code: cases inside it"),
                since: datetime | None = None, until: datetime | None = None,
                overdue: bool | None = Query(None, description="open and past their deadline"),
                client_request_id: str | None = None,
                limit: int = Query(100, ge=1, le=5000), offset: int = Query(0, ge=0)):
    if state is not None and state not in lifecycle.STATES:
        raise intake.InputError(f"state {state!r} is not one of {', '.join(lifecycle.STATES)}", field="state", value=state,
                                message_zh="状态无效", fix=f"use one of: {', '.join(lifecycle.STATES)}")
    where = [sql.SQL("TRUE")]
    params: list[Any] = []
    for column, value in (("state", state), ("category_code", category), ("grade", grade),
                          ("client_request_id", client_request_id)):
        if value is not None:
            where.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    if client_request_id is not None:   # a client's idempotency keys answer that client only (issue 11)
        where.append(sql.SQL("coalesce(created_by, 0) = coalesce(gridwatch_user_id(), 0)"))
    if region:
        region = canonical_or_raw(region)      # the one parser (620700 → 6207); a malformed code is refused below
        column = region_column(region)
        if column is not None:
            where.append(sql.SQL("{} = %s").format(column))
            params.append(region)
    if since:
        where.append(sql.SQL("reported_at >= %s"))
        params.append(since)
    if until:
        where.append(sql.SQL("reported_at < %s"))
        params.append(until)
    if overdue:
        where.append(sql.SQL("case_is_overdue(state, deadline, now())"))
    query = intake.case_select(sql.SQL("WHERE {} ORDER BY reported_at DESC, id DESC LIMIT %s OFFSET %s").format(
        sql.SQL(" AND ").join(where)))
    with transaction(request.app.state.pool, readonly=True) as conn:
        rows = conn.execute(query, [*params, limit, offset]).fetchall()
    who = current_principal(request)
    return json_response([_public(r, principal=who) for r in rows])


@router.get("/cases/{case_id}", summary="One case with its event trail and mediation attempts")
def get_case(request: Request, case_id: int):
    with transaction(request.app.state.pool, readonly=True) as conn:
        case = lifecycle.get_case(conn, case_id)
        case["events"] = lifecycle.case_events(conn, case_id)
        case["mediations"] = lifecycle.case_mediations(conn, case_id)
        case["allowed_actions"] = lifecycle.allowed_actions(case["state"])
    return json_response(_public(case, principal=current_principal(request)))


@router.get("/cases/{case_id}/parties", summary="People's details of a case: reporter contact, parties, mediations (audited)",
            responses={403: {"description": "the role may not read personal data"}, 404: {"description": "no such case in scope"}})
def get_parties(request: Request, case_id: int):
    """Opening people's details writes a personal_data_access row (who, when, which case) in the same
    transaction; roles without read_personal_data are refused (403) and nothing is written."""
    with transaction(request.app.state.pool) as conn:
        details = lifecycle.personal_details(conn, current_principal(request), case_id)
    return json_response(details)


@router.get("/cases/{case_id}/events", summary="A case's append-only event trail (who, when, from → to, note)")
def get_events(request: Request, case_id: int):
    with transaction(request.app.state.pool, readonly=True) as conn:
        lifecycle.get_case(conn, case_id)
        events = lifecycle.case_events(conn, case_id)
    return json_response(lifecycle.mask({"events": events}, current_principal(request))["events"])


@router.post("/cases/{case_id}/actions", summary="Act on a case: accept, dispatch, return, escalate, close, …",
             responses={409: {"description": "illegal transition: the current state and the allowed actions are named"}})
def post_action(request: Request, case_id: int, body: ActionIn):
    fields = body.model_dump(exclude_none=True, exclude={"action", "actor", "note"})
    with transaction(request.app.state.pool) as conn:   # the actor is the signed-in user; body.actor is ignored
        out = lifecycle.apply(conn, case_id, body.action, acting_user(request), note=body.note, **fields)
    out["case"]["allowed_actions"] = lifecycle.allowed_actions(out["case"]["state"])
    return json_response(out)
