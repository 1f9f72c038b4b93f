"""Self-contained folium HTML: Leaflet inlined, nothing fetched from any host when it opens.

folium 0.20 links Leaflet, jQuery, Bootstrap, Font Awesome and Leaflet.awesome-markers from
CDNs, so its HTML draws nothing offline. :func:`offline_html` renders a ``folium.Map``, drops those
links, inlines the vendored Leaflet 1.9.4 (``dashboard/vendor/leaflet``, BSD-2-Clause, its
LICENSE kept beside it) with its images as data URIs, and refuses — naming the culprit and the
fix — anything that would still need the network (online tile layers, icon fonts, plugin scripts).

    >>> import folium
    >>> m = folium.Map(location=[36, 103], zoom_start=6, tiles=None)
    >>> html = offline_html(m)
    >>> "cdn.jsdelivr.net" in html, "L.map(" in html
    (False, True)
"""

from __future__ import annotations

import base64
import re
from functools import lru_cache
from pathlib import Path

__all__ = ["OfflineExportError", "offline_html", "leaflet_assets", "VENDOR"]

VENDOR = Path(__file__).resolve().parent / "vendor"
LEAFLET = VENDOR / "leaflet"

# What folium (0.20) links by default and the gridwatch export does without: jQuery, Bootstrap and
# the awesome-markers icon set are only used by folium.Icon markers and some plugins.
_DROPPABLE = re.compile(
    r"(jquery|bootstrap|glyphicons|fontawesome|font-awesome|awesome-markers|awesome_markers|leaflet\.awesome)",
    re.IGNORECASE,
)
_LEAFLET_JS = re.compile(r"/leaflet(@[\d.]+)?(/dist)?/leaflet(-src)?\.js$", re.IGNORECASE)
_LEAFLET_CSS = re.compile(r"/leaflet(@[\d.]+)?(/dist)?/leaflet\.css$", re.IGNORECASE)
_SCRIPT_SRC = re.compile(r"""<script\b[^>]*\bsrc\s*=\s*["']([^"']+)["'][^>]*>\s*</script>\s*""", re.IGNORECASE)
_LINK_HREF = re.compile(r"""<link\b[^>]*\bhref\s*=\s*["']([^"']+)["'][^>]*/?>\s*""", re.IGNORECASE)
# Things a browser would fetch: script/img/iframe sources, stylesheet links, CSS url()/@import.
_EXTERNAL = re.compile(
    r"""<(?:script|img|iframe|source|embed)\b[^>]*\bsrc\s*=\s*["']((?:https?:)?//[^"']+)["']"""
    r"""|<link\b[^>]*\bhref\s*=\s*["']((?:https?:)?//[^"']+)["']"""
    r"""|url\(\s*["']?((?:https?:)?//[^"')]+)|@import\s+["']((?:https?:)?//[^"']+)""",
    re.IGNORECASE,
)


class OfflineExportError(ValueError):
    """The map holds something that needs the network; the message names it and the fix."""


def _data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


@lru_cache(maxsize=1)
def leaflet_assets() -> tuple[str, str]:
    """(inline ``<script>`` block, inline ``<style>`` block) of the vendored Leaflet.

    The CSS's ``url(images/…)`` become data URIs, and the default marker icon is pointed at data
    URIs too (Leaflet derives its icon path from the CSS, which a data URI defeats).
    """
    images = LEAFLET / "images"

    def css_url(match: re.Match) -> str:
        name = match.group(1)
        return f"url({_data_uri(images / name, 'image/png')})"

    css = re.sub(r"url\(images/([A-Za-z0-9_.-]+\.png)\)", css_url, (LEAFLET / "leaflet.css").read_text(encoding="utf-8"))
    js = (LEAFLET / "leaflet.js").read_text(encoding="utf-8")
    icons = (
        "L.Icon.Default.imagePath='';L.Icon.Default.mergeOptions({"
        f"iconUrl:'{_data_uri(images / 'marker-icon.png', 'image/png')}',"
        f"iconRetinaUrl:'{_data_uri(images / 'marker-icon-2x.png', 'image/png')}',"
        f"shadowUrl:'{_data_uri(images / 'marker-shadow.png', 'image/png')}'}});"
    )
    script = f"<script>/* Leaflet 1.9.4, BSD-2-Clause (c) 2010-2023 Volodymyr Agafonkin, (c) 2010-2011 CloudMade */\n{_safe_script(js)}\n{icons}</script>\n"
    style = f"<style>/* Leaflet 1.9.4 CSS, BSD-2-Clause */\n{css}</style>\n"
    return script, style


def _safe_script(text: str) -> str:
    """Make ``text`` safe inside a ``<script>`` element."""
    return re.sub(r"</(script)", r"<\\/\1", text, flags=re.IGNORECASE)


def _check_tiles(folium_map) -> None:
    from folium.raster_layers import TileLayer

    def walk(element):
        yield element
        for child in element._children.values():
            yield from walk(child)

    for element in walk(folium_map):
        if isinstance(element, TileLayer):
            url = str(getattr(element, "tiles", ""))
            if re.match(r"^(https?:)?//", url):
                raise OfflineExportError(
                    f"the map has an online tile layer ({url}); an offline export cannot fetch tiles. "
                    "Create the map with folium.Map(tiles=None) and draw our own boundary layers instead."
                )


def offline_html(folium_map, *, title: str | None = None) -> str:
    """The map as one self-contained HTML document that opens with no network at all.

    ``folium_map`` is a ``folium.Map`` (or any element whose root is a branca Figure) built with
    ``tiles=None``. Raises :class:`OfflineExportError` when the map would still reach the network.
    """
    _check_tiles(folium_map)
    html = folium_map.get_root().render()
    script, style = leaflet_assets()
    inserted = {"js": False, "css": False}

    def replace_script(match: re.Match) -> str:
        url = match.group(1)
        if _LEAFLET_JS.search(url):
            inserted["js"] = True
            return script
        if _DROPPABLE.search(url):
            return ""
        return match.group(0)

    def replace_link(match: re.Match) -> str:
        url = match.group(1)
        if _LEAFLET_CSS.search(url):
            inserted["css"] = True
            return style
        if _DROPPABLE.search(url):
            return ""
        return match.group(0)

    html = _SCRIPT_SRC.sub(replace_script, html)
    html = _LINK_HREF.sub(replace_link, html)
    if not inserted["js"]:  # a Figure without folium's defaults: put Leaflet first in <head>
        html = html.replace("<head>", "<head>\n" + script + style, 1)
    elif not inserted["css"]:
        html = html.replace("</head>", style + "</head>", 1)

    leftover = sorted({url for groups in _EXTERNAL.findall(html) for url in groups if url})
    if leftover:
        raise OfflineExportError(
            f"the map still links {', '.join(leftover[:3])}; an offline export cannot load it. "
            "Remove the plugin or element that adds it, or vendor it under dashboard/vendor/ and inline it here."
        )
    if "L.AwesomeMarkers" in html:
        raise OfflineExportError(
            "the map uses folium.Icon markers, which need Font Awesome and awesome-markers from a CDN; "
            "use folium.CircleMarker (or GeoJson point features) instead."
        )
    if title:
        from html import escape

        html = html.replace("<head>", f"<head>\n<title>{escape(title)}</title>", 1)
    if "<meta charset" not in html.lower() and "charset=utf-8" not in html.lower():
        html = html.replace("<head>", '<head>\n<meta charset="utf-8">', 1)
    return html
