"""``/export/region/{code}.html``: the drill-down view as one self-contained folium HTML file.

A thin face over :func:`gridwatch.reports.export_html` (parse, call, render). The file opens with
no network (Leaflet inlined by :func:`gridwatch.reports.offline_html`). It holds
the region's children coloured by the chosen measure (generated boundaries dashed and named so in
the legend) and every declared layer (``layers/``) that shows at the view's zoom — the same SQL the
tiles run, as GeoJSON for the region's extent.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gridwatch.api.errors import ApiRoute, error_body, json_response
from gridwatch.db import transaction
from gridwatch.replica import reader
from gridwatch.regions import MEASURES, check_code
from gridwatch.reports import export_html

__all__ = ["router"]

router = APIRouter(route_class=ApiRoute, tags=["export"])


@router.get("/export/region/{code}.html", summary="The drill-down view of a region as an offline folium HTML file",
            response_class=Response, responses={200: {"content": {"text/html": {}}}})
def export_region(request: Request, code: str,
                  measure: str = Query("open", description="colour children by: " + ", ".join(MEASURES)),
                  lang: str = Query("zh", description="zh or en")):
    code = check_code(code)
    if measure not in MEASURES:
        return json_response(error_body("bad_measure", f"measure {measure!r} is not a map measure: use one of {', '.join(MEASURES)}",
                                        message_zh=f"指标 {measure!r} 无效", field="measure", value=measure,
                                        fix="use one of " + ", ".join(MEASURES)), 400)
    if lang not in ("zh", "en"):
        return json_response(error_body("bad_lang", f"lang {lang!r} is not a language: use zh or en",
                                        message_zh=f"语言 {lang!r} 无效", field="lang", value=lang, fix="use zh or en"), 400)
    with transaction(reader(request.app.state), readonly=True) as conn:
        body = export_html(conn, code, measure, lang)
    filename = f"gridwatch-{code}.html"
    return Response(body, media_type="text/html; charset=utf-8", headers={
        "Content-Disposition": f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}",
        "Cache-Control": "no-store"})
