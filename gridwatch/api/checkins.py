"""/api/v1/checkins: grid workers' daily report or all-clear, silent grids, and the grid roster."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Query, Request

from gridwatch import checkins
from gridwatch.api.auth import acting_user
from gridwatch.api.errors import ApiRoute, json_response
from gridwatch.models import CheckinIn
from gridwatch.db import transaction

__all__ = ["router", "CheckinIn"]

router = APIRouter(prefix="/api/v1", route_class=ApiRoute, tags=["check-ins"])


@router.post("/checkins", status_code=201, summary="A grid worker's daily report or all-clear (idempotent per grid, worker, day, kind)")
def post_checkin(request: Request, body: CheckinIn):
    with transaction(request.app.state.pool) as conn:
        row, created = checkins.checkin(conn, body.grid_code, acting_user(request), body.kind, day=body.day, note=body.note,
                                        case_id=body.case_id)
    return json_response({**row, "created": created}, 201 if created else 200)


@router.get("/checkins", summary="Check-ins by grid (or region prefix) and day")
def list_checkins(request: Request, grid: str | None = Query(None, description="grid or region code (prefix)"),
                  day: date | None = None, limit: int = Query(500, ge=1, le=10000)):
    with transaction(request.app.state.pool, readonly=True) as conn:
        rows = conn.execute(
            """SELECT id, grid_code, worker, day, kind, note, case_id, at FROM checkin
               WHERE (%(grid)s::text IS NULL OR starts_with(grid_code, %(grid)s)) AND (%(day)s::date IS NULL OR day = %(day)s)
               ORDER BY day DESC, at DESC LIMIT %(limit)s""", {"grid": grid, "day": day, "limit": limit}).fetchall()
    return json_response(rows)


@router.get("/checkins/silent", summary="Grids with neither a report nor an all-clear for the last N days")
def silent(request: Request, days: int = Query(3, ge=1, le=365), under: str | None = None, as_of: date | None = None,
           limit: int = Query(1000, ge=1, le=100000)):
    with transaction(request.app.state.pool, readonly=True) as conn:
        rows = checkins.silent_grids(conn, days, as_of=as_of, under=under, limit=limit)
    return json_response({"days": days, "count": len(rows), "grids": rows})


@router.get("/checkins/grids", summary="The grid roster: every grid with a point inside it and its township's kind")
def grids(request: Request, under: str | None = None, limit: int = Query(100000, ge=1, le=200000)):
    with transaction(request.app.state.pool, readonly=True) as conn:
        rows = conn.execute(
            """SELECT g.code, g.name, round(ST_X(g.label_point)::numeric, 6)::float8 AS lon,
                      round(ST_Y(g.label_point)::numeric, 6)::float8 AS lat,
                      t.kind AS township_kind, round(sqrt(g.area_km2)::numeric, 3)::float8 AS size_km
               FROM region g
               JOIN region v ON v.code = g.parent_code
               LEFT JOIN region t ON t.code = v.parent_code
               WHERE g.level = 'grid' AND (%(under)s::text IS NULL OR starts_with(g.code, %(under)s))
               ORDER BY g.code LIMIT %(limit)s""", {"under": under, "limit": limit}).fetchall()
    return json_response(rows)
