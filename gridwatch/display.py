"""What a map of regions shows, shared by the dashboard and the reports (exports, briefing).

Plain functions of values: the label, text and colour of a measure, whether a boundary is
generated, the centre and zoom that fit a bounding box, and the site-relative URL of a layer's
tiles. Nothing here touches the database or the network.
"""

from __future__ import annotations

import math

from plotly.colors import sample_colorscale

from geo.coverage import geodesic_circle
from gridwatch.i18n import fmt_percent, register, t

__all__ = [
    "MEASURE_SCALES", "GRADE_COLOURS", "NO_DATA", "TILE_PX", "measure_label", "fmt_measure", "measure_colours",
    "is_generated", "zoom_for_bounds", "tile_path", "geodesic_circle",
]

# ``geodesic_circle`` (geo.coverage): the ring of a centre's reach on a map, re-exported for the faces.

register({
    "measure.open": {"zh": "未结案件", "en": "Open cases"},
    "measure.overdue": {"zh": "逾期案件", "en": "Overdue cases"},
    "measure.cases_per_grid": {"zh": "网格均案件数（30天）", "en": "Cases per grid (30 days)"},
    "measure.hazards_open": {"zh": "未销号隐患", "en": "Open hazards"},
    "measure.coverage": {"zh": "实体化中心覆盖率", "en": "Entity-centre coverage"},
    "col.name": {"zh": "名称", "en": "Name"},
    "legend.surveyed": {"zh": "实测边界", "en": "Surveyed boundaries"},
    "legend.generated": {"zh": "生成边界（示意，非实测）", "en": "Generated boundaries (schematic, not surveyed)"},
    "legend.nodata": {"zh": "无数据", "en": "No data"},
})

MEASURE_SCALES = {
    "open": "YlOrRd",
    "overdue": "Reds",
    "cases_per_grid": "Oranges",
    "hazards_open": "Purples",
    "coverage": "Greens",
}
GRADE_COLOURS = {"red": "#d7191c", "orange": "#fd8d3c", "yellow": "#e6c200"}
NO_DATA = "#c8ced6"
TILE_PX = 512  # MapLibre's zoom is defined on 512-px tiles


def measure_label(measure: str, lang: str | None = "zh") -> str:
    return t(f"measure.{measure}", lang)


def fmt_measure(measure: str, value, lang: str | None = "zh") -> str:
    """A measure's value as shown: coverage as a percentage, cases per grid with one decimal.

    >>> fmt_measure("coverage", 0.5), fmt_measure("cases_per_grid", 2.25), fmt_measure("open", 1234)
    ('50.0%', '2.2', '1,234')
    """
    if value is None:
        return "—"
    if measure == "coverage":
        return fmt_percent(value, lang)
    if measure == "cases_per_grid":
        return f"{value:,.1f}"
    return f"{int(value):,}"


def measure_colours(values: list, measure: str) -> list[str]:
    """The fill colour of each value on the measure's scale (None → grey); for folium exports."""
    real = [v for v in values if v is not None]
    top = max(real) if real else 0
    top = 1.0 if measure == "coverage" else (top or 1)
    scale = MEASURE_SCALES.get(measure, "YlOrRd")
    out = []
    for v in values:
        if v is None:
            out.append(NO_DATA)
        else:
            out.append(sample_colorscale(scale, [min(max(v / top, 0.0), 1.0)], colortype="rgb")[0])
    return out


def is_generated(source: str | None) -> bool:
    return (source or "") == "generated"


def zoom_for_bounds(bounds: list[float] | tuple[float, ...], width_px: int = 900, height_px: int = 640,
                    padding: float = 0.3) -> tuple[dict, float]:
    """({lon, lat} centre, zoom) that fits lon/lat ``bounds`` in a map of the given size.

    >>> centre, zoom = zoom_for_bounds((100.0, 35.0, 104.0, 39.0))
    >>> centre["lon"], round(zoom, 1)
    (102.0, 6.2)
    """
    xmin, ymin, xmax, ymax = bounds

    def merc(lat: float) -> float:
        lat = max(min(lat, 85.0), -85.0)
        return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    dlon = max(xmax - xmin, 1e-6)
    dy = max(merc(ymax) - merc(ymin), 1e-8)
    zx = math.log2(width_px * 360.0 / (TILE_PX * dlon))
    zy = math.log2(height_px * 2 * math.pi / (TILE_PX * dy))
    zoom = max(0.0, min(zx, zy, 18.0) - padding)
    lat_c = math.degrees(2 * math.atan(math.exp((merc(ymin) + merc(ymax)) / 2)) - math.pi / 2)
    return {"lon": (xmin + xmax) / 2, "lat": lat_c}, zoom


def tile_path(layer: str, version: str) -> str:
    """The site-relative tile URL template of ``layer`` at data ``version``.

    >>> tile_path("grids", "7")
    '/tiles/grids/{z}/{x}/{y}.pbf?v=7'
    """
    return f"/tiles/{layer}/{{z}}/{{x}}/{{y}}.pbf?v={version}"
