"""/api/v1 of the workbench: the caller's queue, a case as its page shows it, acting on it (only what
``gridwatch.workbench.actions_for`` allows), attachments, notifications, and the grid worker's phone
(reports with photos, idempotent on client_request_id; the daily all-clear).

Every route needs a signed-in user (cookie session or bearer token: 401 otherwise) and opens its
transaction with the caller's credential, so row-level security applies the caller's scope.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote, unquote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from gridwatch import attachments, checkins, hazards, intake, notifications, workbench
from gridwatch.api.auth import current_principal
from gridwatch.api.errors import ApiRoute, json_response
from gridwatch.auth import Principal
from gridwatch.db import transaction
from gridwatch.errors import DomainError, Invalid
from gridwatch.models import ActionIn, CaseIn, HazardKind

__all__ = ["router", "WorkbenchActionIn", "PhoneReportIn"]

router = APIRouter(prefix="/api/v1", route_class=ApiRoute, tags=["workbench"])


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Unauthenticated(DomainError):
    status = 401
    code = "unauthenticated"
    message_zh_default = "请先登录"


def signed_in(request: Request, principal: Principal | None = Depends(current_principal)) -> Principal:
    """The caller, or 401 naming how to sign in."""
    if principal is None:
        raise Unauthenticated("sign in first: this needs a valid session or token", field="session", value=None,
                              fix="sign in at /login or send Authorization: Bearer TOKEN")
    return principal


def _tx(request: Request, **kw):
    return transaction(request.app.state.pool, credential=getattr(request.state, "credential", None), **kw)


class WorkbenchActionIn(ActionIn):
    """An action on a case from the workbench: the actor is the signed-in user (no ``actor`` field);
    ``convene`` sends ``parts``."""

    actor: str | None = Field(None, max_length=100, description="ignored: the actor is the signed-in user")
    action: str = Field(description="one of the case's allowed_actions (GET /api/v1/workbench/cases/{id})")
    parts: list[dict[str, Any]] | None = Field(None, max_length=20,
                                               description="convene: [{department_id, part, hours, lead}], one lead")
    hazard_kind: HazardKind | None = Field(None, description="register_hazard: the kind of hazard")
    title: str | None = Field(None, max_length=200, description="register_hazard: its title")
    deadline_days: int | None = Field(None, ge=1, le=3650, description="register_hazard: days to rectify")
    owner_department_id: int | None = Field(None, description="register_hazard: the department that must fix it")
    hazard_id: int | None = Field(None, description="close_out_hazard: which of the case's hazards")


class PhoneReportIn(_Model):
    """A report from the grid worker's phone: a case (category) or a hazard (hazard_kind) at the phone's place."""

    kind: Literal["case", "hazard"] = "case"
    category: str | None = Field(None, max_length=60)
    hazard_kind: HazardKind | None = None
    lon: float = Field(allow_inf_nan=False)
    lat: float = Field(allow_inf_nan=False)
    coord_system: Literal["wgs84", "gcj02", "cgcs2000"] = "wgs84"
    accuracy_m: float | None = Field(None, ge=0, le=100_000, allow_inf_nan=False)
    title: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=4000)
    # 64: stored as "m:{user_id}:{id}" in a column of 100 (longer ones gave a 500 in the API fuzz)
    client_request_id: str = Field(min_length=8, max_length=64, description="generated on the phone; a retry returns the same report")


@router.get("/queue", summary="The caller's work queue by stage (待受理、待分派、办理中、待核查、待回访、逾期、挂账) with deadlines")
def get_queue(request: Request, stage: str | None = None, who: Principal = Depends(signed_in)):
    with _tx(request, readonly=True) as conn:
        rows = workbench.queue(conn, who, stage=stage)
        counts = workbench.queue_counts(rows if stage is None else workbench.queue(conn, who))
    return json_response({"user": {"username": who.username, "role": who.role, "region_code": who.region_code,
                                   "department_id": who.department_id},
                          "stages": list(workbench.STAGES), "counts": counts, "cases": rows})


@router.get("/workbench/cases/{case_id}", summary="A case as the workbench shows it, with the actions the caller may take now")
def get_case(request: Request, case_id: int, who: Principal = Depends(signed_in)):
    with _tx(request) as conn:  # not read-only: opening the parties is audited
        return json_response(workbench.case_detail(conn, who, case_id))


@router.post("/workbench/cases/{case_id}/actions", summary="Act on a case as the signed-in user (403 unless allowed now)")
def post_action(request: Request, case_id: int, body: WorkbenchActionIn, who: Principal = Depends(signed_in)):
    fields = body.model_dump(exclude_none=True, exclude={"action", "actor", "note"})
    with _tx(request) as conn:
        out = workbench.act(conn, who, case_id, body.action, note=body.note, **fields)
    return json_response(out)


@router.get("/notifications", summary="The caller's notifications (new cases, deadlines within 2 h, returns, escalations)")
def get_notifications(request: Request, who: Principal = Depends(signed_in)):
    with _tx(request, readonly=True) as conn:
        items = notifications.for_user(conn, who)
    return json_response({"unread": notifications.unread_count(items), "items": items})


class ReadIn(_Model):
    keys: list[str] = Field(max_length=500)


@router.post("/notifications/read", summary="Mark notifications read")
def post_read(request: Request, body: ReadIn, who: Principal = Depends(signed_in)):
    with _tx(request) as conn:
        return json_response({"marked": notifications.mark_read(conn, who, body.keys)})


@router.post("/m/reports", status_code=201, summary="The phone's report of a case or hazard (idempotent on client_request_id)")
def post_phone_report(request: Request, body: PhoneReportIn, who: Principal = Depends(signed_in)):
    if not who.can("report"):
        raise workbench.Forbidden(f"{who.role} accounts do not report cases", field="role", value=who.role,
                                  fix="report from a grid worker's or operator's account")
    crid = f"m:{who.user_id}:{body.client_request_id}"
    title = body.title or None
    with _tx(request) as conn:
        if body.kind == "hazard":
            if body.hazard_kind is None:
                raise Invalid("a hazard report needs hazard_kind", field="hazard_kind", value=None, message_zh="请选择隐患类型",
                              fix="send hazard_kind, e.g. power_line")
            row, created = hazards.create_hazard(conn, {
                "kind": body.hazard_kind, "title": title, "description": body.description, "client_request_id": crid,
                "geometry": {"type": "Point", "coordinates": [body.lon, body.lat]}, "coord_system": body.coord_system},
                actor=who.username)
            out = {"kind": "hazard", "id": row["id"], "created": created, "title": row.get("title")}
        else:
            item = CaseIn(category=body.category or "other_event", lon=body.lon, lat=body.lat, coord_system=body.coord_system,
                          title=title, description=body.description, channel="grid_worker", client_request_id=crid)
            case, created = intake.create_case(conn, item.model_dump(exclude_none=True), actor=who.username)
            out = {"kind": "case", "id": case["id"], "ref": case["ref"], "created": created, "title": case["title"],
                   "grid_code": case["grid_code"]}
    return json_response(out, status_code=201 if out["created"] else 200)


@router.post("/m/all-clear", status_code=201, summary="The grid worker's daily all-clear (无事报平安) for the own grid")
def post_all_clear(request: Request, who: Principal = Depends(signed_in)):
    if who.role != "grid_worker" or not who.grid_code:
        raise workbench.Forbidden("only a grid worker sends the all-clear of a grid", field="role", value=who.role,
                                  fix="sign in with the grid worker's account")
    with _tx(request) as conn:
        row, created = checkins.checkin(conn, who.grid_code, who.username, "all_clear")
    return json_response({**row, "created": created}, status_code=201 if created else 200)


# ---------------------------------------------------------------------------------- attachments
# The bytes arrive as the raw body (the file's own type; its name, URL-encoded, in X-Filename), so
# these routes read the body themselves with the attachment size limit instead of the JSON route's.
async def _read_file(request: Request) -> bytes:
    limit = attachments.MAX_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Invalid(f"the file has {int(declared):,} bytes; at most {limit:,} are accepted", field="file",
                      value=int(declared), message_zh="文件过大", fix="send a smaller photo", status=413, code="too_large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Invalid(f"the file has more than {limit:,} bytes", field="file", value=len(body),
                          message_zh="文件过大", fix="send a smaller photo", status=413, code="too_large")
    return bytes(body)


def _filename(request: Request) -> str | None:
    raw = request.headers.get("x-filename")
    return unquote(raw)[:300] if raw else None


async def post_case_attachment(request: Request, case_id: int, note: str | None = None,
                               who: Principal = Depends(signed_in)) -> Response:
    content = await _read_file(request)
    with _tx(request) as conn:
        meta, created = attachments.add(conn, content, filename=_filename(request), uploaded_by=who.username,
                                        case_id=case_id, note=note)
    return json_response(meta, status_code=201 if created else 200)


async def post_hazard_attachment(request: Request, hazard_id: int, note: str | None = None,
                                 who: Principal = Depends(signed_in)) -> Response:
    content = await _read_file(request)
    with _tx(request) as conn:
        meta, created = attachments.add(conn, content, filename=_filename(request), uploaded_by=who.username,
                                        hazard_id=hazard_id, note=note)
    return json_response(meta, status_code=201 if created else 200)


def _serve(request: Request, attachment_id: int, thumbnail: bool) -> Response:
    with _tx(request, readonly=True) as conn:
        got = attachments.get(conn, attachment_id, thumbnail=thumbnail)
    inline = got["media_type"].startswith("image/")
    return Response(got["content"], media_type=got["media_type"], headers={
        "Content-Disposition": f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(got['filename'])}",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600",
        "ETag": f'"{got["sha256"][:32]}{"t" if thumbnail else ""}"',
        "Content-Security-Policy": "default-src 'none'; sandbox"})


def get_attachment(request: Request, attachment_id: int, who: Principal = Depends(signed_in)) -> Response:
    return _serve(request, attachment_id, False)


def get_thumbnail(request: Request, attachment_id: int, who: Principal = Depends(signed_in)) -> Response:
    return _serve(request, attachment_id, True)


for path, endpoint, method, summary in (
    ("/cases/{case_id}/attachments", post_case_attachment, "POST", "Attach a photo or document to a case (raw body; X-Filename)"),
    ("/hazards/{hazard_id}/attachments", post_hazard_attachment, "POST", "Attach a photo to a hazard (raw body; X-Filename)"),
    ("/attachments/{attachment_id}", get_attachment, "GET", "An attachment's bytes (only inside the caller's scope)"),
    ("/attachments/{attachment_id}/thumbnail", get_thumbnail, "GET", "An image attachment's JPEG thumbnail"),
):
    router.add_api_route(path, endpoint, methods=[method], summary=summary, route_class_override=APIRoute,
                         status_code=201 if method == "POST" else 200)

