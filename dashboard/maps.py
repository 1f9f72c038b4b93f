"""Map plumbing shared by the pages: a local MapLibre style, tile layers from ``layers/``, zoom.

The map never reaches outside the server: the style has no glyphs, sprites or outside sources
(plotly's named styles point at outside glyph servers), our own boundary layers are the basemap,
and an intranet raster basemap is added only when ``GRIDWATCH_BASEMAP_URL`` is set. Tile URLs are
site-relative with the layer's data version (``?v=``); the page makes them absolute in the browser
(MapLibre fetches tiles from a worker, where relative URLs do not resolve).
"""

from __future__ import annotations

from gridwatch import config
from gridwatch.display import tile_path, zoom_for_bounds
from layers import LAYERS, Layer
from layers.render import versions_of

__all__ = ["local_style", "tile_layers", "zoom_for_bounds", "map_layer", "LIGHT_BACKGROUND", "DARK_BACKGROUND"]

LIGHT_BACKGROUND = "#eef1f4"
DARK_BACKGROUND = "#0b1220"


def local_style(dark: bool = False, basemap_url: str | None = None) -> dict:
    """A MapLibre style that fetches nothing: a plain background, plus the intranet basemap if set.

    >>> local_style()["layers"][0]["type"], "glyphs" in local_style()
    ('background', False)
    """
    if basemap_url is None:
        basemap_url = config.get("GRIDWATCH_BASEMAP_URL")
    style: dict = {
        "version": 8,
        "name": "gridwatch-local",
        # One empty source, never ``{}``: plotly drops an empty ``sources`` object when it updates a
        # figure, and MapLibre then rejects the style ("missing required property sources") and
        # silently keeps drawing the previous map.
        "sources": {"gridwatch-none": {"type": "geojson", "data": {"type": "FeatureCollection", "features": []}}},
        "layers": [{"id": "background", "type": "background",
                    "paint": {"background-color": DARK_BACKGROUND if dark else LIGHT_BACKGROUND}}],
    }
    if basemap_url:
        style["sources"]["basemap"] = {"type": "raster", "tiles": [basemap_url], "tileSize": 256,
                                       "attribution": "intranet basemap"}
        style["layers"].append({"id": "basemap", "type": "raster", "source": "basemap",
                                "paint": {"raster-opacity": 0.6 if dark else 0.85}})
    return style


def map_layer(layer: Layer, version: str, *, color: str | None = None, dark: bool = False) -> dict:
    """One ``layout.map.layers`` entry for ``layer`` (vector tiles at ``version``)."""
    style = layer.style
    entry: dict = {
        "name": layer.name,
        "sourcetype": "vector",
        "source": [tile_path(layer.name, version)],
        "sourcelayer": layer.name,
        "type": style.get("type", "line"),
        "color": color or (("#9fb3c8" if layer.name == "regions" else style.get("color")) if dark else style.get("color")),
        "opacity": style.get("opacity", 1.0),
        "minzoom": layer.minzoom,
        "maxzoom": min(layer.maxzoom + 1, 24),  # MapLibre hides a layer from maxzoom on
    }
    if entry["type"] == "line":
        entry["line"] = {"width": style.get("width", 1.0)}
    elif entry["type"] == "circle":
        entry["circle"] = {"radius": style.get("radius", 5)}
    elif entry["type"] == "fill" and style.get("outline"):
        entry["fill"] = {"outlinecolor": style["outline"]}
    return entry


def tile_layers(versions: dict[str, int] | None, names: tuple[str, ...] | None = None, *, dark: bool = False) -> list[dict]:
    """``layout.map.layers`` for the declared layers (all with ``visible`` set, or ``names``)."""
    versions = versions or {}
    chosen = [layer for layer in LAYERS if (layer.name in names if names is not None else layer.visible)]
    return [map_layer(layer, versions_of(versions, layer), dark=dark) for layer in chosen]
