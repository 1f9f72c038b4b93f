"""Map layers, each declared once: a ``layers/<name>.sql`` file plus one :class:`Layer` record.

The same declaration feeds the vector-tile endpoint (``gridwatch/api/tiles.py``), the Dash map
(``dashboard/maps.py``) and the folium export (``gridwatch/api/export.py``). Adding a layer = one
SQL file + one line in ``LAYERS`` + one row in the README's Layers table (a test checks it).

The SQL contract. A layer's file is one SELECT that returns ``id`` (bigint, the feature id),
``geom`` (in the record's ``srid``: 4326, or 3857 for the stored ``region.geom_3857``) and the
record's ``properties``, in any order. It may read

- the relation ``tile`` with columns ``env3857`` and ``env4326``: the area asked for (a tile
  envelope widened by the tile buffer, or an export's extent), and
- the parameter ``%(z)s``: the zoom the features are for (aggregates change level with it).

It must filter with ``geom && tile.env<srid>`` so the GiST index is used, and guard zoom-dependent
branches with ``%(z)s`` so a low-zoom request never reads dense tables (grids, case points).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["Layer", "LAYERS", "get", "LayerNotFound", "HERE"]

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Layer:
    """One map layer: its SQL (``layers/<name>.sql``), how it looks, and where it shows."""

    name: str
    title_zh: str
    title_en: str
    geometry: str                   # 'polygon' | 'line' | 'point' — what the SQL returns
    minzoom: int
    maxzoom: int
    properties: tuple[str, ...]     # columns beside id and geom, carried into tiles and exports
    tables: tuple[str, ...]         # data_version names the layer depends on (tile URLs and ETags)
    about: str                      # one line for the README's Layers table
    style: dict[str, Any] = field(default_factory=dict, compare=False)
    srid: int = 4326
    visible: bool = True            # drawn on the drill-down map (the aggregates are drawn there as bubbles)

    @property
    def path(self) -> Path:
        return HERE / f"{self.name}.sql"

    @property
    def sql(self) -> str:
        """Text of ``layers/<name>.sql`` (read once)."""
        return _read(self.path)

    def title(self, lang: str | None = "zh") -> str:
        return self.title_en if lang == "en" else self.title_zh

    def shows_at(self, z: int) -> bool:
        return self.minzoom <= z <= self.maxzoom


@lru_cache(maxsize=None)
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip().rstrip(";")


# Colours: red/orange/yellow grades follow the national 红/橙/黄 warning scheme.
LAYERS: tuple[Layer, ...] = (
    Layer("regions", "行政区划", "Administrative boundaries", "polygon", 0, 22,
          ("code", "name", "level", "source"), ("region",),
          "Outlines prefecture → village; deeper levels appear as you zoom in (never grids), simplified up to z9. The basemap.",
          {"type": "line", "color": "#5b6b7f", "width": 1.0, "opacity": 0.9}, srid=3857),
    Layer("grids", "网格", "Grids", "polygon", 11, 22,
          ("code", "name", "source"), ("region",),
          "Grid (网格) outlines, from zoom 11 only: low-zoom tiles carry no grid geometry.",
          {"type": "line", "color": "#2b8cbe", "width": 0.8, "opacity": 0.8}, srid=3857),
    Layer("case_counts", "案件数（汇总）", "Open cases (aggregated)", "point", 0, 11,
          ("code", "name", "level", "open", "overdue", "red"), ("cases", "region"),
          "Open cases counted per county (z≤6), township (z7–9) or grid (z10–11), at the region's label point.",
          {"type": "circle", "color": "#e6550d", "radius": 7, "opacity": 0.75}, visible=False),
    Layer("cases", "案件", "Cases", "point", 12, 22,
          ("ref", "title", "grade", "state", "category", "overdue", "reported"), ("cases",),
          "Individual open cases from zoom 12.",
          {"type": "circle", "color": "#d7301f", "radius": 5, "opacity": 0.9}),
    Layer("hazard_counts", "隐患数（汇总）", "Open hazards (aggregated)", "point", 0, 9,
          ("code", "name", "level", "open", "red", "orange", "yellow"), ("hazard", "region"),
          "Open hazards counted per county (z≤6) or township (z7–9), by grade.",
          {"type": "circle", "color": "#756bb1", "radius": 6, "opacity": 0.7}, visible=False),
    Layer("hazard_points", "隐患点", "Hazard points", "point", 10, 22,
          ("kind", "title", "grade", "state", "reported"), ("hazard",),
          "Open point hazards (dilapidated houses, gas, fire …) from zoom 10.",
          {"type": "circle", "color": "#6a51a3", "radius": 5, "opacity": 0.9}),
    Layer("hazard_lines", "线状隐患", "Hazard lines", "line", 10, 22,
          ("kind", "title", "grade", "state", "reported"), ("hazard",),
          "Open line hazards (power lines, pipelines) drawn as lines from zoom 10.",
          {"type": "line", "color": "#b30000", "width": 2.5, "opacity": 0.9}),
    Layer("hazard_areas", "面状隐患", "Hazard areas", "polygon", 10, 22,
          ("kind", "title", "grade", "state", "reported"), ("hazard",),
          "Open area hazards (flood, landslide zones) drawn as polygons from zoom 10.",
          {"type": "fill", "color": "#fd8d3c", "opacity": 0.35, "outline": "#d94701"}),
    *(Layer(f"alerts_{sev}", f"{zh}预警", f"{en} alerts", "point", 0, 22,
            ("rule", "severity", "region_code", "text", "text_en", "raised", "acknowledged", "escalated", "silenced_until"),
            ("alert", "alert_silence"),
            f"Live {en.lower()} alerts (inhibited ones left out) at every zoom; click one for its rule, explanation and state.",
            {"type": "circle", "color": colour, "radius": radius, "opacity": 0.95})
      for sev, zh, en, colour, radius in (("yellow", "黄色", "Yellow", "#e6c200", 4), ("orange", "橙色", "Orange", "#fd8d3c", 5),
                                          ("red", "红色", "Red", "#d7191c", 6))),
    Layer("centres", "综治中心", "Governance centres", "point", 0, 22,
          ("name", "level", "status", "region_code"), ("centre",),
          "综治中心 of the registry: county and above always, township from z7, village from z10.",
          {"type": "circle", "color": "#238b45", "radius": 5, "opacity": 0.9}),
)

_BY_NAME = {layer.name: layer for layer in LAYERS}


class LayerNotFound(KeyError):
    """No layer of that name; the message lists the ones there are."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return self.args[0]


def get(name: str) -> Layer:
    """The layer called ``name``.

    >>> get("grids").minzoom
    11
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise LayerNotFound(f"no map layer named {name!r}; the layers are: {', '.join(_BY_NAME)}") from None
