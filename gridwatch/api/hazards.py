"""/api/v1/hazards: register hazards (point, line, polygon), query them, act on them (rectify, close out, re-inspect)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field

from gridwatch import hazards
from gridwatch.api.cases import region_column
from gridwatch.api.errors import ApiRoute, json_response
from gridwatch.db import transaction

__all__ = ["router", "HazardIn", "HazardActionIn"]

router = APIRouter(prefix="/api/v1", route_class=ApiRoute, tags=["hazards"])

Kind = Literal["power_line", "dilapidated_house", "gas", "fire", "flood", "geological", "traffic", "building",
               "livestock_shed", "other"]


class HazardIn(BaseModel):
    """A hazard (or a feature the rules measure against, such as a building or a livestock shed)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "kind": "power_line", "title": "10kV 浅河线 7–8 号杆", "grade": "yellow",
        "geometry": {"type": "LineString", "coordinates": [[104.6201, 35.0103], [104.6225, 35.0109]]},
        "deadline_days": 30, "client_request_id": "hz-001"}]})

    kind: Kind
    title: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=4000)
    grade: Literal["red", "orange", "yellow"] = Field("yellow", description="the reporter's grade; rules may raise it")
    geometry: dict[str, Any] = Field(description="GeoJSON Point, LineString, Polygon or Multi* (lon, lat)")
    coord_system: Literal["wgs84", "gcj02", "cgcs2000"] = "wgs84"
    owner_department_id: int | None = None
    deadline: datetime | None = Field(None, description="rectification deadline")
    deadline_days: int | None = Field(None, ge=1, le=3650, description="or: days from now")
    client_request_id: str | None = Field(None, max_length=100)
    case_id: int | None = None


class HazardActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["start_rectification", "close_out", "reinspect"]
    actor: str = Field(min_length=1, max_length=100)
    note: str | None = Field(None, max_length=4000)
    ok: bool | None = Field(None, description="reinspect: true = still fixed, false = it recurred")


@router.post("/hazards", status_code=201, summary="Register a hazard (idempotent on client_request_id); rules may raise its grade")
def post_hazard(request: Request, body: HazardIn):
    with transaction(request.app.state.pool) as conn:
        hazard, created = hazards.create_hazard(conn, body.model_dump(exclude_none=True))
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
        hazard = hazards.act(conn, hazard_id, body.action, body.actor, note=body.note, ok=body.ok)
    return json_response(hazard)
