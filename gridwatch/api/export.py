"""``/export/region/{code}.html``: the drill-down view as one self-contained folium HTML file.

The file opens with no network (Leaflet inlined by :func:`dashboard.export.offline_html`). It holds
the region's children coloured by the chosen measure (generated boundaries dashed and named so in
the legend) and every declared layer (``layers/``) that shows at the view's zoom — the same SQL the
tiles run, as GeoJSON for the region's extent.
"""

from __future__ import annotations

import html as htmlmod
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gridwatch.api.errors import ApiRoute, error_body, json_response
from gridwatch.regions import MEASURES, check_code, children_features, region_row
from gridwatch.db import transaction

__all__ = ["router", "build_export_map", "export_html"]


router = APIRouter(route_class=ApiRoute, tags=["export"])

EXPORT_SIZE = (1000, 700)


def build_export_map(conn, code: str, measure: str = "open", lang: str = "zh"):
    """A ``folium.Map`` of region ``code``: children by ``measure`` plus the declared layers."""
    import folium

    from dashboard.figures import fmt_measure, is_generated, measure_colours, measure_label
    from gridwatch.i18n import t
    from dashboard.maps import zoom_for_bounds
    from layers import LAYERS
    from layers.render import layer_geojson

    region = region_row(conn, code)
    fc = children_features(conn, code)
    centre, zoom = zoom_for_bounds(region["bbox"], *EXPORT_SIZE)
    z = int(round(zoom))
    xmin, ymin, xmax, ymax = region["bbox"]

    m = folium.Map(location=[centre["lat"], centre["lon"]], zoom_start=z, tiles=None, control_scale=True)
    m.fit_bounds([[ymin, xmin], [ymax, xmax]])

    colours = measure_colours([f["properties"].get(measure) for f in fc["features"]], measure)
    any_generated = False
    for f, colour in zip(fc["features"], colours):
        p = f["properties"]
        generated = is_generated(p.get("source"))
        any_generated = any_generated or generated
        p["_fill"] = colour
        p["_dash"] = "6 4" if generated else None
        p["_value"] = fmt_measure(measure, p.get(measure), lang)
        p["_boundary"] = t("legend.generated" if generated else "legend.surveyed", lang)
    folium.GeoJson(
        fc, name=f"{region['name']} · {measure_label(measure, lang)}",
        style_function=lambda feat: {"fillColor": feat["properties"]["_fill"], "color": "#ffffff", "weight": 1.5,
                                     "fillOpacity": 0.75, "dashArray": feat["properties"]["_dash"]},
        highlight_function=lambda feat: {"weight": 3, "color": "#14213d"},
        tooltip=folium.GeoJsonTooltip(["name", "_value", "_boundary"],
                                      aliases=[t("col.name", lang), measure_label(measure, lang), ""]),
    ).add_to(m)

    drawn = []
    for layer in LAYERS:
        if not layer.shows_at(z):
            continue
        data = layer_geojson(conn, layer, region["bbox"], z)
        if not data["features"]:
            continue
        style = layer.style
        colour = style.get("color", "#333")
        label_field = next((p for p in ("title", "name", "code") if p in layer.properties), None)
        kwargs = {}
        if label_field:
            kwargs["tooltip"] = folium.GeoJsonTooltip([label_field], labels=False)
        if layer.geometry == "point":
            kwargs["marker"] = folium.CircleMarker(radius=style.get("radius", 5), color=colour, fill=True,
                                                   fill_color=colour, fill_opacity=style.get("opacity", 0.9), weight=1)
            if "open" in layer.properties:  # aggregates: the circle grows with the count
                kwargs["style_function"] = lambda f, c=colour: {
                    "color": c, "fillColor": c, "radius": 5 + 3 * (f["properties"].get("open") or 0) ** 0.5}
            else:
                kwargs["style_function"] = lambda _f, c=colour: {"color": c, "fillColor": c}
        elif style.get("type") == "fill":
            kwargs["style_function"] = lambda _f, c=colour, s=style: {
                "fillColor": c, "color": s.get("outline", c), "weight": 1, "fillOpacity": s.get("opacity", 0.4)}
        else:
            kwargs["style_function"] = lambda _f, c=colour, s=style: {
                "color": c, "weight": s.get("width", 1), "fill": False, "opacity": s.get("opacity", 1)}
        folium.GeoJson(data, name=layer.title(lang), **kwargs).add_to(m)
        drawn.append((layer.title(lang), colour))

    legend = _legend(region["name"], measure_label(measure, lang), colours, fc, measure, lang, any_generated, drawn)
    m.get_root().html.add_child(folium.Element(legend))
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def _legend(name, label, colours, fc, measure, lang, any_generated, drawn) -> str:
    from dashboard.figures import fmt_measure
    from gridwatch.i18n import t

    esc = htmlmod.escape
    rows = []
    values = [(f["properties"]["name"], fmt_measure(measure, f["properties"].get(measure), lang), c)
              for f, c in zip(fc["features"], colours)]
    for n, v, c in values[:40]:
        rows.append(f'<div><span style="display:inline-block;width:14px;height:10px;background:{c};margin-right:6px"></span>'
                    f'{esc(n)} <b>{esc(v)}</b></div>')
    if any_generated:
        rows.append('<div style="margin-top:6px"><span style="display:inline-block;width:22px;border-top:2px dashed #555;'
                    f'margin-right:6px;vertical-align:middle"></span>{esc(t("legend.generated", lang))}</div>')
    for title, colour in drawn:
        rows.append(f'<div><span style="display:inline-block;width:10px;height:10px;border-radius:5px;background:{colour};'
                    f'margin-right:6px"></span>{esc(title)}</div>')
    return ('<div id="gw-legend" style="position:fixed;bottom:56px;left:12px;z-index:1000;background:rgba(255,255,255,.92);'
            'padding:8px 12px;border-radius:8px;font:13px/1.45 sans-serif;max-height:60vh;overflow:auto;'
            f'box-shadow:0 2px 10px rgba(0,0,0,.2)"><div style="font-weight:700">{esc(name)} · {esc(label)}</div>'
            + "".join(rows) + "</div>")


def export_html(conn, code: str, measure: str = "open", lang: str = "zh") -> str:
    """The self-contained HTML of the export."""
    from dashboard.export import offline_html

    region_row(conn, code)
    m = build_export_map(conn, code, measure, lang)
    return offline_html(m, title=f"gridwatch · {region_row(conn, code)['name']}")


@router.get("/export/region/{code}.html", summary="The drill-down view of a region as an offline folium HTML file",
            response_class=Response, responses={200: {"content": {"text/html": {}}}})
def export_region(request: Request, code: str,
                  measure: str = Query("open", description="colour children by: " + ", ".join(MEASURES)),
                  lang: str = Query("zh", description="zh or en")):
    check_code(code)
    if measure not in MEASURES:
        return json_response(error_body("bad_measure", f"measure {measure!r} is not a map measure: use one of {', '.join(MEASURES)}",
                                        message_zh=f"指标 {measure!r} 无效", field="measure", value=measure,
                                        fix="use one of " + ", ".join(MEASURES)), 400)
    if lang not in ("zh", "en"):
        return json_response(error_body("bad_lang", f"lang {lang!r} is not a language: use zh or en",
                                        message_zh=f"语言 {lang!r} 无效", field="lang", value=lang, fix="use zh or en"), 400)
    with transaction(request.app.state.pool, readonly=True) as conn:
        body = export_html(conn, code, measure, lang)
    filename = f"gridwatch-{code}.html"
    return Response(body, media_type="text/html; charset=utf-8", headers={
        "Content-Disposition": f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}",
        "Cache-Control": "no-store"})
