"""/api/v1/hazards: register hazards (point, line, polygon), query them, act on them (rectify, close out, re-inspect)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from psycopg import sql

from gridwatch import hazards
from gridwatch.api.cases import region_column
from gridwatch.api.auth import acting_user
from gridwatch.api.errors import ApiRoute, json_response
from gridwatch.models import HazardActionIn, HazardIn
from gridwatch.db import transaction
from gridwatch.regions import canonical_or_raw

__all__ = ["router", "HazardIn", "HazardActionIn"]

router = APIRouter(prefix="/api/v1", route_class=ApiRoute, tags=["hazards"])

@router.post("/hazards", status_code=201, summary="Register a hazard (idempotent on client_request_id); rules may raise its grade")
def post_hazard(request: Request, body: HazardIn):
    with transaction(request.app.state.pool) as conn:
        hazard, created = hazards.create_hazard(conn, body.model_dump(exclude_none=True), actor=acting_user(request))
    return json_response({**hazard, "created": created}, 201 if created else 200)


@router.get("/hazards", summary="Query hazards by kind, grade, state and region")
def query_hazards(request: Request, kind: str | None = None, grade: str | None = None, state: str | None = None,
                  region: str | None = None, limit: int = Query(200, ge=1, le=5000)):
    where = [sql.SQL("TRUE")]
    params: list[Any] = []
    for column, value in (("kind", kind), ("grade", grade), ("state", state)):
        if value is not None:
            where.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    if region:
        region = canonical_or_raw(region)      # the one parser (620700 → 6207); a malformed code is refused below
        column = region_column(region)
        if column is not None:
            where.append(sql.SQL("{} = %s").format(column))
            params.append(region)
    query = hazards.hazard_select(sql.SQL("WHERE {} ORDER BY id DESC LIMIT %s").format(sql.SQL(" AND ").join(where)))
    with transaction(request.app.state.pool, readonly=True) as conn:
        rows = conn.execute(query, [*params, limit]).fetchall()
    return json_response(rows)


@router.get("/hazards/{hazard_id}", summary="One hazard with its grade reasons and its event trail")
def get_hazard(request: Request, hazard_id: int):
    with transaction(request.app.state.pool, readonly=True) as conn:
        hazard = hazards.get_hazard(conn, hazard_id)
        hazard["events"] = hazards.hazard_events(conn, hazard_id)
    return json_response(hazard)


@router.post("/hazards/{hazard_id}/actions", summary="Rectify, close out (销号) or re-inspect a hazard")
def post_hazard_action(request: Request, hazard_id: int, body: HazardActionIn):
    with transaction(request.app.state.pool) as conn:
        hazard = hazards.act(conn, hazard_id, body.action, acting_user(request), note=body.note, ok=body.ok)
    return json_response(hazard)
