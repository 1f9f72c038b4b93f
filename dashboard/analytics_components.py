"""Components of early warning and analytics: alert cards and map, the year-on-year panel (also on
the wall). The briefing's HTML, its readers and the figures shared with it live in the core
(:mod:`gridwatch.reports`, :mod:`gridwatch.charts`); they are re-exported here for the pages.

Component builders are plain functions of values (testable without a server).
"""

from __future__ import annotations

import plotly.graph_objects as go
from dash import html

from dashboard.maps import local_style
from gridwatch.charts import change_text, series_figure, yoy_figure
from gridwatch.display import GRADE_COLOURS, zoom_for_bounds
from gridwatch.i18n import fmt_datetime, fmt_number, register, t
from gridwatch.reports import (
    RULE_TITLES, alert_text, briefing_data, briefing_html, kpi_items, local_time, province_yoy, rule_label, takeover_alerts,
)

__all__ = [
    "RULE_TITLES", "rule_label", "alert_text", "alert_card", "alerts_figure", "yoy_panel", "yoy_figure",
    "series_figure", "kpi_items", "local_time", "province_yoy", "takeover_alerts", "briefing_data", "briefing_html",
]

register({
    "an.raised": {"zh": "预警时间", "en": "Raised"},
    "an.acked": {"zh": "已确认：{who}（{at}）", "en": "Acknowledged by {who} ({at})"},
    "an.ack": {"zh": "确认", "en": "Acknowledge"},
    "an.region": {"zh": "区域", "en": "Region"},
    "wall.alert.alert": {"zh": "预警", "en": "Alert"},
})


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
            html.Td([change_text(r, lang), html.Sup("*", title=t("yoy.small", lang)) if r.get("small") else None],
                    className=f"num yoy-change {tone}".strip(), id=f"yoy-change-{r['indicator']}"),
            html.Td(rate, className="num"),
        ], className="small" if r.get("small") else ""))
    head = html.Tr([html.Th(t(k, lang)) for k in ("yoy.indicator", "yoy.value", "yoy.previous", "yoy.change", "yoy.rate")])
    out = [html.H2(title), html.Table([html.Thead(head), html.Tbody(body)], className="yoy-table" + (" dark" if dark else ""))]
    if any(r.get("small") for r in rows):
        out.append(html.P(f"* {t('yoy.small', lang)}", className="muted yoy-note"))
    return out
