"""Leader's briefing (``/briefing/<code>``): one page per region with its KPIs, alerts, trends and map.

The export link downloads the same briefing as one self-contained HTML file
(``/export/briefing/<code>.html``) that opens with no network: plotly's JavaScript and Leaflet are
inlined, the map is a folium map inside the file.
"""

from __future__ import annotations

import dash
import psycopg
from dash import Input, Output, dcc, html, no_update

from dashboard.analytics_components import (
    alert_card, alerts_figure, briefing_data, kpi_items, local_time, series_figure, yoy_figure, yoy_panel,
)
from dashboard.figures import empty_figure, level_bar, region_map, spark_totals, sparkline
from gridwatch.i18n import fmt_datetime, register, t
from dashboard.util import db_callback, pool
from gridwatch.regions import BadRegionCode, canonical_or_raw, children_features
from gridwatch.db import transaction

dash.register_page(__name__, path="/briefing", path_template="/briefing/<code>", name="工作简报",
                   nav_key="nav.briefing", order=45, title="工作简报 · gridwatch")

register({
    "nav.briefing": {"zh": "工作简报", "en": "Briefing"},
    "briefing.unknown": {"zh": "区划 {code} 不存在", "en": "There is no region {code}"},
    "briefing.nodata": {"zh": "尚未加载区划数据：请先运行 gridwatch etl gansu", "en": "No regions loaded yet: run gridwatch etl gansu"},
})


def layout(code: str | None = None, **_):
    return html.Div(
        [
            dcc.Store(id="briefing-code", data=canonical_or_raw(code or "")),
            dcc.Store(id="briefing-data"),
            html.Div(id="briefing-error", className="state-banner state-error", hidden=True, role="alert"),
            html.Div([html.H2(t("state.loading"), id="briefing-title", className="panel-title"),
                      html.A(t("brief.export"), id="briefing-export", href="#", className="button", download="")],
                     className="briefing-head"),
            html.P("", id="briefing-generated", className="muted"),
            html.Section([html.H3(t("brief.kpis"), id="briefing-h-kpis"), html.Div(id="briefing-kpis", className="kpi-grid")]),
            html.Div(
                [
                    html.Section([html.H3(t("brief.spark"), id="briefing-h-spark"), html.Div(id="briefing-spark-totals"),
                                  dcc.Graph(id="briefing-spark", figure=empty_figure(), config={"displayModeBar": False})]),
                    html.Section([html.H3(t("brief.funnel"), id="briefing-h-funnel"),
                                  dcc.Graph(id="briefing-funnel", figure=empty_figure(), config={"displayModeBar": False})]),
                ],
                className="briefing-row",
            ),
            html.Div(
                [
                    html.Section(id="briefing-yoy", className="briefing-yoy"),
                    html.Section([dcc.Graph(id="briefing-yoy-fig", figure=empty_figure(), config={"displayModeBar": False})]),
                ],
                className="briefing-row",
            ),
            html.Section([html.H3(t("series.title"), id="briefing-h-series"),
                          dcc.Graph(id="briefing-series", figure=empty_figure(), config={"displayModeBar": False})]),
            html.Div(
                [
                    html.Section([html.H3(t("brief.alerts", n=""), id="briefing-h-alerts"),
                                  html.Div(id="briefing-alerts", className="alerts-list")]),
                    html.Section([html.H3(t("brief.map"), id="briefing-h-map"),
                                  dcc.Graph(id="briefing-map", figure=empty_figure(), config={"displayModeBar": False},
                                            style={"height": "520px"})]),
                ],
                className="briefing-row",
            ),
        ],
        className="briefing-page",
    )


@dash.callback(Output("briefing-data", "data"), Input("briefing-code", "data"), Input("shell-versions", "data"))
@db_callback
def load(code, _versions):
    try:
        with transaction(pool(), readonly=True) as conn:
            if not code:
                row = conn.execute("SELECT code FROM region WHERE parent_code IS NULL ORDER BY code LIMIT 1").fetchone()
                if row is None:
                    return {"error": "nodata"}
                code = row["code"]
            data = briefing_data(conn, code)
            data["features"] = children_features(conn, code)
            return data
    except BadRegionCode:
        return {"error": "unknown", "code": code}
    except psycopg.Error:
        return no_update


@dash.callback(
    Output("briefing-title", "children"), Output("briefing-generated", "children"), Output("briefing-export", "href"),
    Output("briefing-export", "children"), Output("briefing-kpis", "children"), Output("briefing-spark-totals", "children"),
    Output("briefing-spark", "figure"), Output("briefing-funnel", "figure"), Output("briefing-yoy", "children"),
    Output("briefing-yoy-fig", "figure"), Output("briefing-series", "figure"), Output("briefing-alerts", "children"),
    Output("briefing-map", "figure"), Output("briefing-error", "children"), Output("briefing-error", "hidden"),
    Output("briefing-h-kpis", "children"), Output("briefing-h-spark", "children"), Output("briefing-h-funnel", "children"),
    Output("briefing-h-series", "children"), Output("briefing-h-alerts", "children"), Output("briefing-h-map", "children"),
    Input("briefing-data", "data"), Input("shell-lang", "data"), dash.State("shell-versions", "data"),
)
def render(data, lang, versions):
    lang = lang or "zh"
    heads = (t("brief.kpis", lang), t("brief.spark", lang), t("brief.funnel", lang), t("series.title", lang),
             t("brief.alerts", lang, n=len((data or {}).get("alerts") or [])), t("brief.map", lang))
    if not data:
        return (no_update,) * 21
    if data.get("error"):
        msg = t("briefing.unknown", lang, code=data.get("code")) if data["error"] == "unknown" else t("briefing.nodata", lang)
        return (msg, "", "#", t("brief.export", lang), [], "", empty_figure(), empty_figure(), [], empty_figure(),
                empty_figure(), [], empty_figure(), msg, False, *heads)
    region, k, stats = data["region"], data["kpis"], data["stats"]
    name = region["name_en"] if lang == "en" and region.get("name_en") else region["name"]
    cards = [html.Div([html.Div(v, className="kpi-value"), html.Div(label, className="kpi-label")], className="kpi-card",
                      id=f"briefing-k-{key}") for key, label, v in kpi_items(k, lang)]
    alerts = [alert_card(a, lang, ack_button=False, prefix="briefing") for a in data["alerts"]] or \
        [html.P(t("an.none", lang), className="state-empty")]
    fig = region_map(data["features"], "overdue", lang, bounds=region["bbox"], versions=versions or {},
                     self_only=region["level"] == "grid", size=(700, 520))
    for trace in alerts_figure(data["alerts"], lang, bounds=region["bbox"]).data:   # markers only
        fig.add_trace(trace)
    return (
        t("brief.title", lang, name=name),
        t("brief.generated", lang, at=fmt_datetime(local_time(data["generated_at"]), lang)),
        f"/export/briefing/{region['code']}.html?lang={lang}", t("brief.export", lang),
        cards, spark_totals(k["sparkline"], lang), sparkline(k["sparkline"], lang, height=160),
        level_bar(k["closed_by_level"], lang),
        yoy_panel(stats["yoy"], lang, demo=data.get("demo_stats", False)),
        yoy_figure(stats["yoy"], lang) if stats["yoy"] else empty_figure(t("yoy.none", lang)),
        series_figure(stats["series"], lang) if stats["series"] else empty_figure(t("yoy.none", lang)),
        alerts, fig, "", True, *heads,
    )
