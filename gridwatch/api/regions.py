"""/api/v1/regions: a region as JSON — ancestry, children, descendants per level and its KPIs.

A thin face over :mod:`gridwatch.regions` (the core the dashboard reads too): parse, call, render.
Codes are accepted in any spelling the core parses (``620700`` → ``6207``); answers carry the
canonical code.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from gridwatch import regions
from gridwatch.api.errors import ApiRoute, error_body, json_response
from gridwatch.db import transaction
from gridwatch.replica import reader
from gridwatch.regions import LEVELS, check_code

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", route_class=ApiRoute, tags=["regions"])


def _answer(request: Request, fn, *args) -> Any:
    with transaction(reader(request.app.state), readonly=True) as conn:
        return fn(conn, *args)


@router.get("/regions", summary="Regions by parent (default: the top of the hierarchy)")
def list_regions(request: Request, parent: str | None = Query(None, description="list this region's children"),
                 level: str | None = Query(None, description="only this level: " + ", ".join(LEVELS))):
    if parent is not None:
        parent = check_code(parent)
    if level is not None and level not in LEVELS:
        return json_response(error_body("bad_level", f"level {level!r} is not a level: use one of {', '.join(LEVELS)}",
                                        message_zh=f"层级 {level!r} 无效", field="level", value=level,
                                        fix="use one of " + ", ".join(LEVELS)), 400)
    return json_response({"regions": _answer(request, regions.list_regions, parent, level)})


@router.get("/regions/{code}", summary="A region: code, name, level, boundary source, ancestry, children, "
            "descendants per level and the KPIs the dashboard shows (620000-style codes accepted)")
def get_region(request: Request, code: str):
    return json_response(_answer(request, regions.region_detail, check_code(code)))


@router.get("/regions/{code}/children.geojson", summary="The region's children as GeoJSON with the map's measures")
def get_children_geojson(request: Request, code: str):
    return json_response(_answer(request, regions.region_features, check_code(code)))
