"""Open311 GeoReport v2 façade under /open311/v2/ (JSON format).

Our categories are its services; our states map to ``open`` / ``closed`` (closed and rejected are
closed); our deadline is ``expected_datetime``; the department dispatched to is
``agency_responsible``. POST requests.json takes the spec's form-encoded fields (or JSON), goes
through the same intake as /api/v1/cases (channel ``open311``), and is idempotent on an optional
``client_request_id`` field or ``Idempotency-Key`` header (per client). POST needs ``api_key``: a
token of an ``open311_client`` account (or ``Authorization: Bearer``); 401 without one, 403 for a bad
one. Reads see what the key's account may see: an Open311 client its own reports (public fields
only). Errors use the spec's shape:
``[{"code": 400, "description": "…"}]``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request, Response
from psycopg import sql

from gridwatch import auth, intake
from gridwatch.api.errors import error_body, json_response, route_class
from gridwatch.cases import STATE_NAMES, mask
from gridwatch.db import current_credential, transaction

__all__ = ["router", "STATUS", "to_open311"]


def _format(status: int, body: dict) -> Response:
    err = body.get("error", {})
    text = err.get("message", "error")
    if err.get("fix"):
        text += f" — fix: {err['fix']}"
    if err.get("message_zh"):
        text += f" （{err['message_zh']}）"
    return json_response([{"code": status, "description": text}], status)


router = APIRouter(prefix="/open311/v2", route_class=route_class(_format, expects="json_or_form"), tags=["open311"])

STATUS = {"closed": "closed", "rejected": "closed"}   # every other state is open
STATE_EN = {"reported": "reported", "accepted": "accepted", "rejected": "rejected", "dispatched": "dispatched",
            "returned": "returned to the centre", "in_progress": "in progress", "feedback": "awaiting verification",
            "closed": "closed", "parked": "parked (挂账)"}


def _asker(request: Request) -> auth.Principal | None:
    """Who reads (api_key, bearer token or session): texts are masked as for every face (an
    Open311 client's own reports stay whole)."""
    secret = current_credential()
    return auth.resolve_cached(request.app.state.pool, secret) if secret else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def to_open311(row: dict) -> dict:
    """One case as a GeoReport v2 service request."""
    return {
        "service_request_id": str(row["id"]),
        "status": STATUS.get(row["state"], "open"),
        "status_notes": f"{STATE_NAMES[row['state']]} · {STATE_EN[row['state']]}",
        "service_name": row["name_zh"],
        "service_code": row["category_code"],
        "description": row["description"] or row["title"],
        "agency_responsible": row["agency"],
        "service_notice": row["ref"],
        "requested_datetime": _iso(row["reported_at"]),
        "updated_datetime": _iso(row["updated_at"]),
        "expected_datetime": _iso(row["deadline"]),
        "address": row["address"],
        "address_id": None,
        "zipcode": None,
        "lat": row["lat"],
        "long": row["lon"],
        "media_url": None,
    }


REQUEST_SQL = """
SELECT c.id, c.ref, c.state, c.category_code, k.name_zh, c.title, c.description, d.name AS agency, c.reported_at,
       c.updated_at, c.deadline, c.address, ST_Y(c.geom) AS lat, ST_X(c.geom) AS lon, c.created_by
FROM cases c JOIN category k ON k.code = c.category_code LEFT JOIN department d ON d.id = c.department_id
"""


@router.get("/services.json", summary="Open311: the service list (our case categories)")
def services(request: Request):
    with transaction(request.app.state.pool, readonly=True) as conn:
        cats = intake.categories(conn)
    return json_response([{
        "service_code": c["code"], "service_name": c["name_zh"],
        "description": f"{c['name_en']} · {c['department_kind']} · {c['time_limit_hours']} h",
        "metadata": False, "type": "realtime", "keywords": f"{c['family']},{c['department_kind']}",
        "group": "矛盾纠纷" if c["family"] == "dispute" else "事件",
    } for c in cats.values()])


@router.get("/services/{service_code}.json", summary="Open311: one service's definition (no extra attributes)")
def service_definition(request: Request, service_code: str):
    with transaction(request.app.state.pool, readonly=True) as conn:
        cats = intake.categories(conn)
    if service_code not in cats:
        raise intake.NotFound(f"service_code {service_code!r} is unknown", message_zh="未知的服务类别",
                              field="service_code", value=service_code, fix="use a service_code from services.json")
    return json_response({"service_code": service_code, "attributes": []})


@router.post("/requests.json", summary="Open311: submit a service request (form-encoded or JSON)",
             openapi_extra={"requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {
                 "type": "object", "required": ["service_code", "lat", "long"], "properties": {
                     k: {"type": "string"} for k in ("service_code", "lat", "long", "description", "address_string",
                                                     "first_name", "last_name", "email", "phone", "media_url",
                                                     "device_id", "account_id", "api_key", "client_request_id",
                                                     "coord_system")}}}}}})
def post_request(request: Request):
    raw = request._body or b""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        fields: dict[str, Any] = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    else:
        fields = json.loads(raw) if raw else {}
        if not isinstance(fields, dict):
            raise intake.InputError("the body must be an object of request fields", field="body", value=fields,
                                    fix="send service_code, lat, long, … as form fields or a JSON object")
    key = fields.get("api_key") or current_credential()
    if not key or not isinstance(key, str):
        return _format(401, error_body("unauthenticated", "api_key is required: a token of an open311_client account",
                                       message_zh="缺少 api_key", field="api_key", value=None,
                                       fix="send api_key (ask the operator for one: gridwatch tokens create CLIENT)"))
    client = auth.resolve_cached(request.app.state.pool, key)
    if client is None or not client.can("report"):
        return _format(403, error_body("forbidden", "the api_key is not valid for reporting",
                                       message_zh="api_key 无效或无权提交", field="api_key", value=None,
                                       fix="use the token of an open311_client account (gridwatch tokens create CLIENT)"))
    for key in ("service_code", "lat", "long"):
        if fields.get(key) in (None, ""):
            raise intake.InputError(f"{key} is required", message_zh=f"缺少必填字段 {key}", field=key, value=None,
                                    fix=f"send {key}" + (" (a code from services.json)" if key == "service_code" else " in decimal degrees"))
    for key in ("service_code", "description", "first_name", "last_name", "phone", "address_string", "coord_system",
                "client_request_id", "lat", "long"):   # GeoReport fields are text (lat/long: also numbers in JSON)
        value = fields.get(key)
        if value is not None and not (isinstance(value, str) or (key in ("lat", "long") and isinstance(value, (int, float))
                                                                 and not isinstance(value, bool))):
            raise intake.InputError(f"{key} must be text, not {type(value).__name__}", message_zh=f"{key} 须为文本",
                                    field=key, value=str(value)[:60], fix=f"send {key} as a string")
    name = " ".join(p for p in (fields.get("first_name"), fields.get("last_name")) if p) or None
    description = fields.get("description") or None
    item = {
        "category": fields["service_code"], "lon": fields["long"], "lat": fields["lat"],
        "title": (description or "")[:60] or None, "description": description,
        "reporter_name": name, "reporter_phone": fields.get("phone") or None,
        "address": fields.get("address_string") or None, "channel": "open311",
        "coord_system": fields.get("coord_system") or None,
        "client_request_id": fields.get("client_request_id") or request.headers.get("idempotency-key") or None,
    }
    item = {k: v for k, v in item.items() if v is not None}
    with transaction(request.app.state.pool, credential=fields.get("api_key") or current_credential()) as conn:
        case, created = intake.create_case(conn, item, actor=client.username, default_channel="open311")
    notice = f"已受理登记，编号 {case['ref']} · registered as {case['ref']}"
    if case["possible_duplicate_of"]:
        notice += f"；可能与 {case['possible_duplicate_of']} 重复 · possibly a duplicate of {case['possible_duplicate_of']}"
    return json_response([{"service_request_id": str(case["id"]), "service_notice": notice, "account_id": None}])


@router.get("/requests.json", summary="Open311: query service requests")
def get_requests(request: Request, service_request_id: str | None = None, service_code: str | None = None,
                 start_date: datetime | None = None, end_date: datetime | None = None, status: str | None = None,
                 limit: int = Query(1000, ge=1, le=1000)):
    where = [sql.SQL("TRUE")]
    params: list[Any] = []
    if service_request_id:
        ids = [s.strip() for s in service_request_id.split(",") if s.strip()]
        if not all(s.isdigit() for s in ids):
            raise intake.InputError(f"service_request_id {service_request_id!r} is not a comma-separated list of ids",
                                    field="service_request_id", value=service_request_id, fix="send e.g. 12,15,20")
        where.append(sql.SQL("c.id = ANY(%s)"))
        params.append([int(s) for s in ids])
    else:
        if start_date is None and end_date is None:
            start_date = datetime.now().astimezone() - timedelta(days=90)
        if start_date is not None:
            where.append(sql.SQL("c.reported_at >= %s"))
            params.append(start_date)
        if end_date is not None:
            where.append(sql.SQL("c.reported_at < %s"))
            params.append(end_date)
    if service_code:
        where.append(sql.SQL("c.category_code = ANY(%s)"))
        params.append([s.strip() for s in service_code.split(",")])
    if status:
        wanted = {s.strip() for s in status.split(",")}
        if not wanted <= {"open", "closed"}:
            raise intake.InputError(f"status {status!r} must be open, closed or both", field="status", value=status,
                                    fix="send status=open or status=closed")
        if wanted == {"open"}:
            where.append(sql.SQL("case_is_open(c.state)"))
        elif wanted == {"closed"}:
            where.append(sql.SQL("NOT case_is_open(c.state)"))
    query = sql.SQL(REQUEST_SQL) + sql.SQL("WHERE {} ORDER BY c.reported_at DESC, c.id DESC LIMIT %s").format(
        sql.SQL(" AND ").join(where))
    with transaction(request.app.state.pool, readonly=True) as conn:
        rows = conn.execute(query, [*params, limit]).fetchall()
    who = _asker(request)
    return json_response([to_open311(mask(dict(r), who)) for r in rows])


@router.get("/requests/{service_request_id}.json", summary="Open311: one service request")
def get_request(request: Request, service_request_id: int):
    with transaction(request.app.state.pool, readonly=True) as conn:
        row = conn.execute(sql.SQL(REQUEST_SQL) + sql.SQL("WHERE c.id = %s"), (service_request_id,)).fetchone()
    if row is None:
        raise intake.NotFound(f"there is no service request {service_request_id}", message_zh="没有该服务请求",
                              field="service_request_id", value=service_request_id, fix="use an id returned by POST requests.json")
    return json_response([to_open311(mask(dict(row), _asker(request)))])
