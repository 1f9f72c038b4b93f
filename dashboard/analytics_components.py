"""Components of early warning and analytics: alert cards and map, the year-on-year panel (also on
the wall), trend figures and the leader's briefing, on screen and as one offline HTML file.

Figure and component builders are plain functions of values (testable without a server); the
few functions that read the database take a connection and say so.
"""

from __future__ import annotations

import html as htmlmod
from datetime import datetime, timezone

import plotly.graph_objects as go
from dash import html

from dashboard.figures import GRADE_COLOURS, big_number, level_bar, sparkline
from gridwatch.i18n import fmt_datetime, fmt_number, fmt_percent, register, t

__all__ = [
    "RULE_TITLES", "rule_label", "alert_text", "alert_card", "alerts_figure", "yoy_panel", "yoy_figure",
    "series_figure", "kpi_items", "local_time", "province_yoy", "takeover_alerts", "briefing_data", "briefing_html",
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
    "an.raised": {"zh": "预警时间", "en": "Raised"},
    "an.acked": {"zh": "已确认：{who}（{at}）", "en": "Acknowledged by {who} ({at})"},
    "an.ack": {"zh": "确认", "en": "Acknowledge"},
    "an.none": {"zh": "暂无预警", "en": "No alerts"},
    "an.region": {"zh": "区域", "en": "Region"},
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
    "wall.alert.alert": {"zh": "预警", "en": "Alert"},
})


def rule_label(rule: str, lang: str | None = "zh") -> str:
    return t(f"rule.{rule}", lang)


def alert_text(a: dict, lang: str | None = "zh") -> str:
    return a["explanation_en"] if (lang or "zh") == "en" else a["explanation_zh"]


def local_time(value) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    from zoneinfo import ZoneInfo

    return value.astimezone(ZoneInfo("Asia/Shanghai"))


def alert_card(a: dict, lang: str | None = "zh", *, ack_button: bool = True, prefix: str = "alerts") -> html.Article:
    """One alert: severity, rule, region, the explanation with its numbers, times and acknowledgement."""
    acked = a.get("acknowledged_at")
    footer = [html.Span(f"{t('an.raised', lang)}：{fmt_datetime(local_time(a['raised_at']), lang)}", className="muted")]
    if acked:
        footer.append(html.Span(t("an.acked", lang, who=a["acknowledged_by"], at=fmt_datetime(local_time(acked), lang)),
                                className="alert-acked", id=f"{prefix}-acked-{a['id']}"))
    elif ack_button:
        footer.append(html.Button(t("an.ack", lang), id={"type": f"{prefix}-ack", "id": a["id"]}, n_clicks=0,
                                  className="button alert-ack"))
    region = a.get("region_name_en") if (lang == "en" and a.get("region_name_en")) else a.get("region_name")
    return html.Article(
        [
            html.Header([
                html.Span(t(f"severity.{a['severity']}", lang), className=f"alert-severity sev-{a['severity']}"),
                html.Strong(rule_label(a["rule"], lang), className="alert-rule"),
                html.Span(f"{region or ''} {a['region_code']}", className="alert-region muted"),
            ]),
            html.P(alert_text(a, lang), className="alert-text"),
            html.Footer(footer),
        ],
        className=f"alert-card sev-{a['severity']}" + (" acked" if acked else ""),
        id=f"{prefix}-alert-{a['id']}",
    )


def alerts_figure(alerts: list[dict], lang: str | None = "zh", *, bounds=None, outlines: dict | None = None,
                  size: tuple[int, int] = (700, 520)) -> go.Figure:
    """Alerts as markers coloured by severity on our own local map style (nothing fetched outside);
    ``outlines`` (a FeatureCollection, e.g. the region's children) is drawn underneath, named."""
    from dashboard.maps import local_style, zoom_for_bounds

    pts = [a for a in alerts if a.get("lon") is not None]
    if bounds is None:
        if pts:
            xs, ys = [a["lon"] for a in pts], [a["lat"] for a in pts]
            bounds = (min(xs) - 0.05, min(ys) - 0.05, max(xs) + 0.05, max(ys) + 0.05)
        else:
            bounds = (92.2, 32.5, 108.8, 42.8)   # Gansu's extent
    centre, zoom = zoom_for_bounds(bounds, *size)
    traces = []
    feats = (outlines or {}).get("features") or []
    if feats:
        traces.append(go.Choroplethmap(
            geojson={"type": "FeatureCollection", "features": feats}, featureidkey="properties.code",
            locations=[f["properties"]["code"] for f in feats], z=[0] * len(feats),
            colorscale=[[0, "#dfe6ee"], [1, "#dfe6ee"]], showscale=False, marker={"opacity": 0.6, "line": {"width": 1, "color": "#7a8aa0"}},
            customdata=[[f["properties"]["name"]] for f in feats], hovertemplate="%{customdata[0]}<extra></extra>",
            showlegend=False))
    for sev in ("yellow", "orange", "red"):
        rows = [a for a in pts if a["severity"] == sev]
        if not rows:
            continue
        traces.append(go.Scattermap(
            lon=[a["lon"] for a in rows], lat=[a["lat"] for a in rows], mode="markers",
            marker={"size": 14 if sev == "red" else 11, "color": GRADE_COLOURS[sev], "opacity": 0.9},
            customdata=[[a["id"], rule_label(a["rule"], lang), alert_text(a, lang)] for a in rows],
            hovertemplate="<b>%{customdata[1]}</b><br>%{customdata[2]}<extra></extra>",
            name=t(f"severity.{sev}", lang)))
    fig = go.Figure(traces)
    fig.update_layout(
        map={"style": local_style(), "center": centre, "zoom": zoom},
        margin={"l": 0, "r": 0, "t": 0, "b": 0}, legend={"x": 0.01, "y": 0.99, "bgcolor": "rgba(255,255,255,0.85)"},
        paper_bgcolor="rgba(0,0,0,0)", uirevision="alerts",
    )
    return fig


def _change_text(row: dict, lang: str | None) -> str:
    if row.get("change_pct") is None:
        return "—"
    return f"{row['change_pct']:+.1f}%"


def yoy_panel(rows: list[dict], lang: str | None = "zh", *, dark: bool = False, demo: bool = False) -> list:
    """The year-on-year table (indicator, this year, last year, change, per 10,000), small numbers flagged.

    ``rows`` come from :func:`gridwatch.stats.yoy`. Returns a list of components (title + table + notes).
    """
    if not rows:
        return [html.H2(t("yoy.title", lang, year="", prev="")), html.P(t("yoy.none", lang), className="muted")]
    first = rows[0]
    months = first.get("months") or []
    if len(months) == 12:
        title = t("yoy.title", lang, year=first["year"], prev=first["previous_year"])
    else:
        title = t("yoy.title_months", lang, year=first["year"], m1=months[0], m2=months[-1])
    if demo:
        title += f" · {t('yoy.demo', lang)}"
    body = []
    for r in rows:
        tone = "down" if (r.get("change") or 0) < 0 else "up" if (r.get("change") or 0) > 0 else ""
        rate = "—" if r.get("rate_per_10k") is None else f"{r['rate_per_10k']:.2f}"
        body.append(html.Tr([
            html.Td(r["name_en"] if lang == "en" else r["name_zh"]),
            html.Td(fmt_number(r["value"], lang), className="num"),
            html.Td(fmt_number(r["previous"], lang), className="num"),
            html.Td([_change_text(r, lang), html.Sup("*", title=t("yoy.small", lang)) if r.get("small") else None],
                    className=f"num yoy-change {tone}".strip(), id=f"yoy-change-{r['indicator']}"),
            html.Td(rate, className="num"),
        ], className="small" if r.get("small") else ""))
    head = html.Tr([html.Th(t(k, lang)) for k in ("yoy.indicator", "yoy.value", "yoy.previous", "yoy.change", "yoy.rate")])
    out = [html.H2(title), html.Table([html.Thead(head), html.Tbody(body)], className="yoy-table" + (" dark" if dark else ""))]
    if any(r.get("small") for r in rows):
        out.append(html.P(f"* {t('yoy.small', lang)}", className="muted yoy-note"))
    return out


def yoy_figure(rows: list[dict], lang: str | None = "zh") -> go.Figure:
    """Bars of the year-on-year change per indicator, the percentage written on each bar."""
    names = [r["name_en"] if lang == "en" else r["name_zh"] for r in rows]
    vals = [r["change_pct"] if r.get("change_pct") is not None else 0 for r in rows]
    fig = go.Figure(go.Bar(
        x=names, y=vals, text=[_change_text(r, lang) + ("*" if r.get("small") else "") for r in rows],
        textposition="outside", marker={"color": ["#31a354" if v < 0 else "#e6550d" for v in vals]}, hoverinfo="skip"))
    fig.update_layout(height=260, margin={"l": 30, "r": 10, "t": 20, "b": 40}, yaxis={"ticksuffix": "%", "zeroline": True},
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")
    return fig


def series_figure(series: list[dict], lang: str | None = "zh") -> go.Figure:
    """Monthly figures per indicator (rate per 10,000 where population is known, else counts)."""
    from gridwatch.stats import INDICATORS

    fig = go.Figure()
    for ind, names in INDICATORS.items():
        rows = [s for s in series if s["indicator"] == ind]
        if not rows:
            continue
        fig.add_trace(go.Scatter(x=[s["month"] for s in rows], y=[s["value"] for s in rows], mode="lines+markers",
                                 name=names["en" if lang == "en" else "zh"]))
    fig.update_layout(height=280, margin={"l": 40, "r": 10, "t": 10, "b": 30}, yaxis={"type": "log"},
                      legend={"orientation": "h", "y": -0.2}, paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")
    return fig


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


# -- database readers (take a connection) ------------------------------------------------------------

def province_yoy(conn) -> tuple[list[dict], bool]:
    """(yoy rows, demo?) of the top of the hierarchy (the province)."""
    from gridwatch.stats import yoy

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


def briefing_data(conn, code: str) -> dict:
    """Everything a briefing shows (raises the regions module's BadRegionCode for an unknown code)."""
    from gridwatch import kpi
    from gridwatch.alerts import list_alerts
    from gridwatch.regions import region_row
    from gridwatch.stats import region_stats

    region = region_row(conn, code)
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
                 f"<td class='num {tone}' id='brief-yoy-{r['indicator']}'>{_change_text(r, lang)}{star}</td><td class='num'>{rate}</td></tr>")
    note = f'<p class="muted">* {htmlmod.escape(t("yoy.small", lang))}</p>' if any(r.get("small") for r in rows) else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"


def briefing_html(conn, code: str, lang: str = "zh") -> str:
    """The leader's briefing of region ``code`` as ONE self-contained HTML file that opens offline:
    KPIs, live alerts, trends (plotly, its JavaScript inlined) and the map (folium with Leaflet
    inlined, in an ``iframe srcdoc``). Reads the database through ``conn``.
    """
    import folium
    from plotly.offline import get_plotlyjs

    from dashboard.export import offline_html
    from gridwatch.api.export import build_export_map

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

    m = build_export_map(conn, code, "overdue", lang)
    layer = folium.FeatureGroup(name=t("brief.alerts", lang, n=len(d["alerts"])))
    for a in d["alerts"]:
        if a.get("lon") is None:
            continue
        folium.CircleMarker([a["lat"], a["lon"]], radius=9 if a["severity"] == "red" else 7, color="#333", weight=1,
                            fill=True, fill_color=GRADE_COLOURS[a["severity"]], fill_opacity=0.9,
                            tooltip=f"{rule_label(a['rule'], lang)}: {alert_text(a, lang)}").add_to(layer)
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
