"""Reports: the offline HTML files a region exports — the drill-down map and the leader's briefing.

Each is ONE self-contained HTML file that opens with no network: folium maps with the vendored
Leaflet inlined (:func:`offline_html`; ``gridwatch/vendor/leaflet``, BSD-2-Clause, its LICENSE kept
beside it), plotly charts with their JavaScript inlined. The API (``/export/…``, the briefing
endpoint) and the dashboard both call these; every user-supplied string written into the HTML is
escaped.

folium 0.20 links Leaflet, jQuery, Bootstrap, Font Awesome and Leaflet.awesome-markers from
CDNs, so its HTML draws nothing offline. :func:`offline_html` renders a ``folium.Map``, drops those
links, inlines Leaflet with its images as data URIs, and refuses — naming the culprit and the fix —
anything that would still need the network (online tile layers, icon fonts, plugin scripts).

    >>> import folium
    >>> m = folium.Map(location=[36, 103], zoom_start=6, tiles=None)
    >>> html = offline_html(m)
    >>> "cdn.jsdelivr.net" in html, "L.map(" in html
    (False, True)
"""

from __future__ import annotations

import base64
import html as htmlmod
import re
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import folium
from folium.raster_layers import TileLayer
from plotly.offline import get_plotlyjs

from gridwatch import kpi
from gridwatch.alerts import list_alerts
from gridwatch.charts import big_number, change_text, level_bar, series_figure, sparkline, yoy_figure
from gridwatch.display import GRADE_COLOURS, fmt_measure, is_generated, measure_colours, measure_label, zoom_for_bounds
from gridwatch.i18n import fmt_datetime, fmt_number, fmt_percent, register, t
from gridwatch.regions import children_features, region_row
from gridwatch.stats import region_stats, yoy
from layers import LAYERS
from layers.render import layer_geojson

__all__ = [
    "OfflineExportError", "offline_html", "leaflet_assets", "VENDOR", "EXPORT_SIZE", "build_export_map", "export_html",
    "RULE_TITLES", "rule_label", "alert_text", "local_time", "kpi_items", "briefing_data", "briefing_html",
    "province_yoy", "takeover_alerts",
]

RULE_TITLES: dict[str, dict[str, str]] = {
    "deadline_near": {"zh": "临近期限", "en": "Near deadline"},
    "deadline_past": {"zh": "超期未结", "en": "Past deadline"},
    "red_case": {"zh": "红色案件", "en": "Red-grade case"},
    "red_hazard": {"zh": "红色隐患", "en": "Red-grade hazard"},
    "spike": {"zh": "类别异常增多", "en": "Category spike"},
    "hotspot": {"zh": "新热点网格", "en": "Emerging hotspot"},
    "repeat_place": {"zh": "重复发生地点", "en": "Repeat place"},
    "repeat_party": {"zh": "重复诉求人", "en": "Repeat party"},
    "silent_grid": {"zh": "静默网格", "en": "Silent grid"},
    "hazard_overdue": {"zh": "隐患逾期未整改", "en": "Hazard overdue"},
    "department_returns": {"zh": "部门频繁退回", "en": "Department keeps returning cases"},
}


register({
    **{f"rule.{k}": v for k, v in RULE_TITLES.items()},
    "rule.group.deadline": {"zh": "临期/超期", "en": "Deadlines"},
    "rule.group.red": {"zh": "红色等级", "en": "Red grade"},
    "severity.red": {"zh": "红色", "en": "Red"},
    "severity.orange": {"zh": "橙色", "en": "Orange"},
    "severity.yellow": {"zh": "黄色", "en": "Yellow"},
    "an.none": {"zh": "暂无预警", "en": "No alerts"},
    "yoy.title": {"zh": "同比（{year} 年 vs {prev} 年）", "en": "Year on year ({year} vs {prev})"},
    "yoy.title_months": {"zh": "同比（{year} 年 {m1}–{m2} 月 vs 上年同期）", "en": "Year on year ({year}, months {m1}–{m2}, vs a year before)"},
    "yoy.indicator": {"zh": "指标", "en": "Indicator"},
    "yoy.value": {"zh": "本期", "en": "This year"},
    "yoy.previous": {"zh": "上年同期", "en": "Last year"},
    "yoy.change": {"zh": "同比", "en": "Change"},
    "yoy.rate": {"zh": "每万人", "en": "Per 10,000"},
    "yoy.small": {"zh": "数量少，比例仅供参考", "en": "small numbers: the percentage is unreliable"},
    "yoy.none": {"zh": "尚未加载统计数据（gridwatch etl stats）", "en": "No statistics loaded (gridwatch etl stats)"},
    "yoy.demo": {"zh": "演示数据", "en": "demo data"},
    "mom.title": {"zh": "环比（{m} vs {p}）", "en": "Month on month ({m} vs {p})"},
    "series.title": {"zh": "月度走势", "en": "Monthly trend"},
    "brief.title": {"zh": "{name} 工作简报", "en": "{name}: leader's briefing"},
    "brief.generated": {"zh": "生成于 {at}；案件指标为近 30 天滚动窗口", "en": "Generated {at}; case figures over the last 30 days"},
    "brief.kpis": {"zh": "关键指标（近30天）", "en": "Key figures (last 30 days)"},
    "brief.alerts": {"zh": "预警（{n} 条未解除）", "en": "Alerts ({n} live)"},
    "brief.trends": {"zh": "趋势", "en": "Trends"},
    "brief.map": {"zh": "地图", "en": "Map"},
    "brief.export": {"zh": "导出离线简报", "en": "Export offline briefing"},
    "brief.funnel": {"zh": "在哪一级办结（小事不出村、大事不出镇、矛盾不上交）",
                     "en": "Where cases were closed (village, township, county, beyond)"},
    "brief.spark": {"zh": "近30天新增与办结", "en": "New and closed, last 30 days"},
    "brief.definitions": {"zh": "口径：结案率 = 已结 ÷ 到期；按期结案率 = 按期办结 ÷ 到期；到期 = 期限已到或已办结的案件；化解率 = 化解 ÷ 已结纠纷。",
                          "en": "Definitions: closure rate = closed ÷ due; on-time rate = closed on time ÷ due; due = deadline passed or closed; resolution rate = resolved ÷ closed disputes."},
    "k.open": {"zh": "未结案件", "en": "Open cases"},
    "k.new_today": {"zh": "今日新增", "en": "New today"},
    "k.overdue": {"zh": "逾期未结", "en": "Overdue"},
    "k.due": {"zh": "到期案件", "en": "Due"},
    "k.closure_rate": {"zh": "结案率", "en": "Closure rate"},
    "k.on_time_rate": {"zh": "按期结案率", "en": "On-time rate"},
    "k.open_overdue": {"zh": "到期未结", "en": "Due, still open"},
    "k.resolution_rate": {"zh": "矛盾纠纷化解率", "en": "Dispute resolution rate"},
    "k.escalations": {"zh": "上交升级", "en": "Escalated"},
    "k.hazards_red": {"zh": "红色隐患", "en": "Red hazards"},
    "k.coverage": {"zh": "实体化中心覆盖", "en": "Entity-centre coverage"},
})

VENDOR = Path(__file__).resolve().parent / "vendor"  # gridwatch/vendor
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
            "Remove the plugin or element that adds it, or vendor it under gridwatch/vendor/ and inline it here."
        )
    if "L.AwesomeMarkers" in html:
        raise OfflineExportError(
            "the map uses folium.Icon markers, which need Font Awesome and awesome-markers from a CDN; "
            "use folium.CircleMarker (or GeoJson point features) instead."
        )
    if title:
        html = html.replace("<head>", f"<head>\n<title>{htmlmod.escape(title)}</title>", 1)
    if "<meta charset" not in html.lower() and "charset=utf-8" not in html.lower():
        html = html.replace("<head>", '<head>\n<meta charset="utf-8">', 1)
    return html


# -- the region export: children by a measure plus the declared layers ----------------------------

EXPORT_SIZE = (1000, 700)


def _escaped(fc: dict) -> dict:
    """``fc`` with every string property HTML-escaped: folium embeds properties in a ``<script>`` and
    its tooltips write them as HTML, and names and titles are typed by people (a case title could
    hold ``</script>``).

    >>> _escaped({"features": [{"properties": {"title": "</script><b>x", "open": 3}}]})["features"][0]["properties"]
    {'title': '&lt;/script&gt;&lt;b&gt;x', 'open': 3}
    """
    for feature in fc.get("features", []):
        props = feature.get("properties") or {}
        for key, value in props.items():
            if isinstance(value, str):
                props[key] = htmlmod.escape(value)
    return fc


def build_export_map(conn, code: str, measure: str = "open", lang: str = "zh"):
    """A ``folium.Map`` of region ``code``: children by ``measure`` plus the declared layers."""
    region = region_row(conn, code)
    code = region["code"]
    fc = _escaped(children_features(conn, code))
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
        # folium writes tooltip values and layer names into the page as HTML: escape them
        p["_value"] = htmlmod.escape(fmt_measure(measure, p.get(measure), lang))
        p["_boundary"] = htmlmod.escape(t("legend.generated" if generated else "legend.surveyed", lang))
    folium.GeoJson(
        fc, name=htmlmod.escape(f"{region['name']} · {measure_label(measure, lang)}"),
        style_function=lambda feat: {"fillColor": feat["properties"]["_fill"], "color": "#ffffff", "weight": 1.5,
                                     "fillOpacity": 0.75, "dashArray": feat["properties"]["_dash"]},
        highlight_function=lambda feat: {"weight": 3, "color": "#14213d"},
        tooltip=folium.GeoJsonTooltip(["name", "_value", "_boundary"],
                                      aliases=[htmlmod.escape(t("col.name", lang)), htmlmod.escape(measure_label(measure, lang)), ""]),
    ).add_to(m)

    drawn = []
    for layer in LAYERS:
        if not layer.shows_at(z):
            continue
        data = _escaped(layer_geojson(conn, layer, region["bbox"], z))
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
        folium.GeoJson(data, name=htmlmod.escape(layer.title(lang)), **kwargs).add_to(m)
        drawn.append((layer.title(lang), colour))

    legend = _legend(region["name"], measure_label(measure, lang), colours, fc, measure, lang, any_generated, drawn)
    m.get_root().html.add_child(folium.Element(legend))
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def _legend(name, label, colours, fc, measure, lang, any_generated, drawn) -> str:
    esc = htmlmod.escape
    rows = []
    values = [(f["properties"]["name"], fmt_measure(measure, f["properties"].get(measure), lang), c)
              for f, c in zip(fc["features"], colours)]
    for n, v, c in values[:40]:
        rows.append(f'<div><span style="display:inline-block;width:14px;height:10px;background:{c};margin-right:6px"></span>'
                    f'{n} <b>{esc(v)}</b></div>')  # n: escaped with the features (_escaped)
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
    region = region_row(conn, code)
    m = build_export_map(conn, region["code"], measure, lang)
    return offline_html(m, title=f"gridwatch · {region['name']}")


# -- the leader's briefing ----------------------------------------------------------------------------

def rule_label(rule: str, lang: str | None = "zh") -> str:
    return t(f"rule.{rule}", lang)


def alert_text(a: dict, lang: str | None = "zh") -> str:
    return a["explanation_en"] if (lang or "zh") == "en" else a["explanation_zh"]


def local_time(value) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(ZoneInfo("Asia/Shanghai"))


def kpi_items(k: dict, lang: str | None = "zh") -> list[tuple[str, str, str]]:
    """(key, label, value text) of the headline KPIs, every value written out."""
    cov = k["centre_coverage"]
    return [
        ("open", t("k.open", lang), big_number(k["open"], lang)),
        ("new_today", t("k.new_today", lang), big_number(k["new_today"], lang)),
        ("overdue", t("k.overdue", lang), big_number(k["overdue"], lang)),
        ("due", t("k.due", lang), big_number(k["due"], lang)),
        ("closure_rate", t("k.closure_rate", lang), fmt_percent(k["closure_rate"], lang, 2)),
        ("on_time_rate", t("k.on_time_rate", lang), fmt_percent(k["on_time_rate"], lang, 2)),
        ("open_overdue", t("k.open_overdue", lang), big_number(k["open_overdue"], lang)),
        ("resolution_rate", t("k.resolution_rate", lang), fmt_percent(k["resolution_rate"], lang, 2)),
        ("escalations", t("k.escalations", lang), big_number(k["escalations"], lang)),
        ("hazards_red", t("k.hazards_red", lang), big_number(k["hazards_open_by_grade"]["red"], lang)),
        ("coverage", t("k.coverage", lang),
         f"{fmt_percent(cov['share'], lang)} ({cov['with_entity_centre']}/{cov['children']})"),
    ]


def briefing_data(conn, code: str) -> dict:
    """Everything a briefing shows (raises the regions module's BadRegionCode for an unknown code)."""
    region = region_row(conn, code)
    code = region["code"]
    stats = region_stats(conn, code)
    demo = conn.execute("SELECT bool_or(source LIKE %s) AS d FROM stat_figure WHERE region_code = %s",
                        ("%gansu-stats%", code)).fetchone()
    return {
        "region": region,
        "kpis": kpi.region_kpis(conn, code),
        "children": kpi.children_ranking(conn, code),
        "alerts": list_alerts(conn, region=code, limit=50),
        "stats": stats,
        "demo_stats": bool(demo["d"] if isinstance(demo, dict) else demo[0]),
        "generated_at": datetime.now(timezone.utc).isoformat(),
    }


_CSS = """
body{font-family:"Noto Sans CJK SC","Noto Sans SC","Microsoft YaHei",sans-serif;margin:24px;color:#1d2733;background:#fff}
h1{font-size:26px;margin:0 0 4px} h2{font-size:19px;border-bottom:2px solid #14213d;padding-bottom:4px;margin-top:28px}
.muted{color:#667} table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #ccd;padding:5px 10px;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums} .kpis{display:grid;grid-template-columns:repeat(4,1fr);gap:10px}
.kpi{border:1px solid #ccd;border-radius:6px;padding:10px} .kpi .v{font-size:24px;font-weight:700} .kpi .l{color:#556}
.alert{border-left:6px solid #e6c200;padding:6px 10px;margin:6px 0;background:#fafbfc}
.alert.sev-red{border-color:#d7191c} .alert.sev-orange{border-color:#fd8d3c}
.down{color:#1a7f37} .up{color:#c0392b} iframe{width:100%;height:560px;border:1px solid #ccd}
@media print{iframe{height:480px}}
"""


def _kpi_block(k: dict, lang: str) -> str:
    items = "".join(f'<div class="kpi" id="brief-k-{key}"><div class="v">{htmlmod.escape(v)}</div>'
                    f'<div class="l">{htmlmod.escape(label)}</div></div>' for key, label, v in kpi_items(k, lang))
    return f'<div class="kpis">{items}</div>'


def _yoy_table(rows: list[dict], lang: str) -> str:
    if not rows:
        return f'<p class="muted">{htmlmod.escape(t("yoy.none", lang))}</p>'
    head = "".join(f"<th>{htmlmod.escape(t(k, lang))}</th>" for k in ("yoy.indicator", "yoy.value", "yoy.previous", "yoy.change", "yoy.rate"))
    body = ""
    for r in rows:
        tone = "down" if (r.get("change") or 0) < 0 else "up"
        rate = "—" if r.get("rate_per_10k") is None else f"{r['rate_per_10k']:.2f}"
        star = "*" if r.get("small") else ""
        body += (f"<tr><td>{htmlmod.escape(r['name_en'] if lang == 'en' else r['name_zh'])}</td>"
                 f"<td class='num'>{fmt_number(r['value'], lang)}</td><td class='num'>{fmt_number(r['previous'], lang)}</td>"
                 f"<td class='num {tone}' id='brief-yoy-{r['indicator']}'>{change_text(r, lang)}{star}</td><td class='num'>{rate}</td></tr>")
    note = f'<p class="muted">* {htmlmod.escape(t("yoy.small", lang))}</p>' if any(r.get("small") for r in rows) else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"


def briefing_html(conn, code: str, lang: str = "zh") -> str:
    """The leader's briefing of region ``code`` as ONE self-contained HTML file that opens offline:
    KPIs, live alerts, trends (plotly, its JavaScript inlined) and the map (folium with Leaflet
    inlined, in an ``iframe srcdoc``). Reads the database through ``conn``.
    """
    d = briefing_data(conn, code)
    region, k, stats = d["region"], d["kpis"], d["stats"]
    name = region["name_en"] if lang == "en" and region.get("name_en") else region["name"]
    esc = htmlmod.escape

    figs = [
        ("brief.spark", sparkline(k["sparkline"], lang, height=180)),
        ("brief.funnel", level_bar(k["closed_by_level"], lang)),
    ]
    if stats["yoy"]:
        figs.append(("yoy.change", yoy_figure(stats["yoy"], lang)))
        figs.append(("series.title", series_figure(stats["series"], lang)))
    charts = "".join(
        f"<h3>{esc(t(key, lang))}</h3>" + fig.to_html(full_html=False, include_plotlyjs=False,
                                                       config={"displayModeBar": False, "staticPlot": True},
                                                       div_id=f"brief-fig-{i}")
        for i, (key, fig) in enumerate(figs))

    alerts = "".join(
        f'<div class="alert sev-{a["severity"]}"><b>{esc(rule_label(a["rule"], lang))}</b> · '
        f'{esc(a["region_name"] or "")} · {esc(alert_text(a, lang))}</div>' for a in d["alerts"]
    ) or f'<p class="muted">{esc(t("an.none", lang))}</p>'

    m = build_export_map(conn, region["code"], "overdue", lang)
    layer = folium.FeatureGroup(name=htmlmod.escape(t("brief.alerts", lang, n=len(d["alerts"]))))
    for a in d["alerts"]:
        if a.get("lon") is None:
            continue
        folium.CircleMarker([a["lat"], a["lon"]], radius=9 if a["severity"] == "red" else 7, color="#333", weight=1,
                            fill=True, fill_color=GRADE_COLOURS[a["severity"]], fill_opacity=0.9,
                            tooltip=htmlmod.escape(f"{rule_label(a['rule'], lang)}: {alert_text(a, lang)}").replace("`", "&#96;").replace("${", "&#36;{")).add_to(layer)
    layer.add_to(m)
    map_html = offline_html(m, title=name)

    yoy_title = ""
    if stats["yoy"]:
        first = stats["yoy"][0]
        yoy_title = t("yoy.title", lang, year=first["year"], prev=first["previous_year"]) + (
            f" · {t('yoy.demo', lang)}" if d["demo_stats"] else "")
    generated = fmt_datetime(local_time(d["generated_at"]), lang)
    return f"""<!doctype html>
<html lang="{'en' if lang == 'en' else 'zh-CN'}"><head><meta charset="utf-8">
<title>{esc(t('brief.title', lang, name=name))}</title>
<style>{_CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1 id="brief-title">{esc(t('brief.title', lang, name=name))}</h1>
<p class="muted">{esc(t('brief.generated', lang, at=generated))} · {esc(region['code'])}</p>
<h2>{esc(t('brief.kpis', lang))}</h2>
{_kpi_block(k, lang)}
<p class="muted">{esc(t('brief.definitions', lang))}</p>
<h2>{esc(t('brief.alerts', lang, n=len(d['alerts'])))}</h2>
<div id="brief-alerts">{alerts}</div>
<h2>{esc(yoy_title or t('brief.trends', lang))}</h2>
{_yoy_table(stats['yoy'], lang)}
<h2>{esc(t('brief.trends', lang))}</h2>
{charts}
<h2>{esc(t('brief.map', lang))}</h2>
<iframe id="brief-map" title="{esc(name)}" srcdoc="{esc(map_html, quote=True)}"></iframe>
</body></html>
"""


# -- readers of the wall (take a connection) ------------------------------------------------------------

def province_yoy(conn) -> tuple[list[dict], bool]:
    """(yoy rows, demo?) of the top of the hierarchy (the province)."""
    row = conn.execute("SELECT code FROM region WHERE parent_code IS NULL ORDER BY code LIMIT 1").fetchone()
    if row is None:
        return [], False
    code = row["code"] if isinstance(row, dict) else row[0]
    demo = conn.execute("SELECT bool_or(source LIKE %s) AS d FROM stat_figure WHERE region_code = %s",
                        ("%gansu-stats%", code)).fetchone()
    demo = bool(demo["d"] if isinstance(demo, dict) else demo[0])
    return yoy(conn, code), demo


def takeover_alerts(conn, minutes: int, limit: int = 5) -> list[dict]:
    """Red alerts raised in the last ``minutes``, live and not acknowledged, in the wall's takeover
    shape ({kind: 'alert', id, title, title_en, county, place, reported_at}). Red cases and hazards
    themselves are already on the wall's takeover, so their alert rules are left out here.
    """
    rows = conn.execute("""
        SELECT a.id, a.explanation_zh, a.explanation_en, a.raised_at, a.rule, r.name
        FROM alert a JOIN region r ON r.code = a.region_code
        WHERE a.severity = 'red' AND a.resolved_at IS NULL AND a.acknowledged_at IS NULL
          AND a.rule NOT IN ('red_case', 'red_hazard')
          AND a.raised_at >= now() - make_interval(mins => %s)
        ORDER BY a.raised_at DESC, a.id DESC LIMIT %s""", (int(minutes), int(limit))).fetchall()
    out = []
    for r in rows:
        r = dict(r) if isinstance(r, dict) else dict(zip(("id", "explanation_zh", "explanation_en", "raised_at", "rule", "name"), r))
        out.append({"kind": "alert", "id": r["id"], "title": f"{RULE_TITLES[r['rule']]['zh']}：{r['explanation_zh']}",
                    "title_en": f"{RULE_TITLES[r['rule']]['en']}: {r['explanation_en']}", "county": r["name"],
                    "place": "", "reported_at": r["raised_at"].isoformat()})
    return out


