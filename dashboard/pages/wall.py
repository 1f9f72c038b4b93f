"""Wall mode (``/wall``): full-screen, dark, high contrast, for 1920×1080 and 3840×2160 walls.

Large numbers for the province and the prefecture being toured; every figure is written out (no
hover-only information). The tour moves through the prefectures every
``GRIDWATCH_WALL_TOUR_SECONDS`` (or ``?tour=<seconds>``). A red-grade case or hazard reported in
the last ``?alert_minutes=`` (default 10) minutes takes the screen over until acknowledged. Every
panel carries a freshness badge ("更新于 12 秒前"), amber once older than
``GRIDWATCH_STALE_SECONDS``. ``wall-yoy`` is an empty slot for the year-on-year panel (issue 7).
"""

from __future__ import annotations

import time

import dash
import psycopg
from dash import ALL, ClientsideFunction, Input, Output, State, clientside_callback, dcc, html, no_update

from dashboard.analytics_components import province_yoy, takeover_alerts, yoy_panel
from dashboard.figures import (
    GRADE_COLOURS, big_number, empty_figure, figure_patch, figure_signature, spark_totals, sparkline, wall_map, with_geometry,
)
from gridwatch.i18n import fmt_percent, register, t
from dashboard.util import db_callback, pool, read
from gridwatch import config, kpi
from gridwatch.regions import children_features, prefectures, recent_red_alerts, region_row
from gridwatch.db import transaction
from gridwatch.live import read_versions

dash.register_page(__name__, path="/wall", name="指挥大屏", nav_key="nav.wall", order=90, fullscreen=True,
                   title="指挥大屏 · gridwatch")

register({
    "nav.wall": {"zh": "指挥大屏", "en": "Wall"},
    "wall.title": {"zh": "综治中心指挥大屏", "en": "Command centre"},
    "wall.province": {"zh": "全省概况", "en": "Province"},
    "wall.current": {"zh": "轮巡市州", "en": "On tour"},
    "wall.ranking": {"zh": "市州排名（逾期 / 未结）", "en": "Prefectures (overdue / open)"},
    "wall.hazards": {"zh": "未销号隐患", "en": "Open hazards"},
    "wall.trend": {"zh": "近30天趋势", "en": "Last 30 days"},
    "wall.map": {"zh": "全省态势", "en": "Province map"},
    "wall.tour": {"zh": "轮巡 {i}/{n} · 每 {s} 秒", "en": "Tour {i}/{n} · every {s} s"},
    "wall.alert.title": {"zh": "红色预警", "en": "Red alert"},
    "wall.alert.case": {"zh": "案件", "en": "Case"},
    "wall.alert.hazard": {"zh": "隐患", "en": "Hazard"},
    "wall.alert.ack": {"zh": "知道了", "en": "Acknowledge"},
    "wall.nodata": {"zh": "尚未加载区划数据", "en": "No regions loaded"},
    "wall.k.open": {"zh": "未结案件", "en": "Open"},
    "wall.k.new_today": {"zh": "今日新增", "en": "New today"},
    "wall.k.overdue": {"zh": "逾期未结", "en": "Overdue"},
    "wall.k.closure_rate": {"zh": "结案率", "en": "Closure rate"},
    "wall.k.on_time_rate": {"zh": "按期结案率", "en": "On time"},
    "wall.k.resolution_rate": {"zh": "化解率", "en": "Resolved"},
})

ALERT_MINUTES = 10
PANELS = ("province", "current", "map", "ranking", "hazards", "trend")


def _tour_seconds(tour) -> float:
    try:
        value = float(tour)
    except (TypeError, ValueError):
        value = float(config.get("GRIDWATCH_WALL_TOUR_SECONDS"))
    return max(value, 1.0)


def _minutes(value) -> int:
    try:
        return max(int(value), 1)
    except (TypeError, ValueError):
        return ALERT_MINUTES


def _fresh(panel: str) -> html.Span:
    return html.Span("", id={"type": "wall-fresh", "panel": panel}, className="fresh")


def _panel(panel: str, children, className: str = "wall-panel") -> html.Section:
    return html.Section([_fresh(panel), html.H2(id=f"wall-h-{panel}"), *children], className=className, id=f"wall-panel-{panel}")


def layout(tour=None, alert_minutes=None, **_):
    seconds = _tour_seconds(tour)
    return html.Div(
        [
            dcc.Store(id="wall-config", data={"tour": seconds, "stale": float(config.get("GRIDWATCH_STALE_SECONDS")),
                                              "alert_minutes": _minutes(alert_minutes)}),
            dcc.Store(id="wall-data"),
            dcc.Store(id="wall-figure"),
            dcc.Store(id="wall-figure-key"),
            dcc.Store(id="wall-ack", storage_type="session", data=[]),
            dcc.Interval(id="wall-tour", interval=int(seconds * 1000)),
            dcc.Interval(id="wall-tick", interval=1000),
            html.Header(
                [html.H1(t("wall.title"), id="wall-title", className="wall-title"),
                 html.Span(t("state.loading"), id="wall-region-name", className="wall-region"),
                 html.Span("", id="wall-tour-note", className="wall-tour-note"),
                 html.Span("", id="wall-clock", className="wall-clock")],
                className="wall-head",
            ),
            html.Div(
                [_panel("province", [html.Div(id="wall-province", className="wall-numbers")]),
                 _panel("current", [html.Div(id="wall-current", className="wall-numbers")]),
                 _panel("hazards", [html.Div(id="wall-hazards", className="wall-numbers")])],
                className="wall-side",
            ),
            _panel("map", [dcc.Graph(id="wall-map", className="wall-map", figure=empty_figure(dark=True),
                                     config={"displayModeBar": False, "scrollZoom": False, "staticPlot": False},
                                     style={"height": "100%"})], className="wall-panel wall-map-panel"),
            html.Div(
                [_panel("ranking", [html.Table(id="wall-ranking", className="wall-rank")]),
                 _panel("trend", [html.Div(id="wall-trend-totals", className="wall-number"),
                                  dcc.Graph(id="wall-trend", config={"displayModeBar": False, "staticPlot": True},
                                            figure=empty_figure(dark=True), className="wall-spark",
                                            style={"height": "10vh"})]),
                 # Slot for the year-on-year panel (issue 7 fills it); hidden while empty.
                 html.Section(id="wall-yoy", className="wall-panel wall-yoy")],
                className="wall-side",
            ),
            html.Div(id="wall-takeover", className="wall-takeover", hidden=True, role="alert"),
        ],
        className="wall",
        id="wall-root",
    )


def fetch_wall(conn: psycopg.Connection, step: int, alert_minutes: int) -> dict:
    """The province, the prefecture at tour ``step``, the prefectures' map data and red alerts."""
    row = conn.execute("SELECT code FROM region WHERE parent_code IS NULL ORDER BY code LIMIT 1").fetchone()
    if row is None:
        return {"status": "nodata"}
    top = row["code"] if isinstance(row, dict) else row[0]
    prefs = prefectures(conn, top)
    current = prefs[step % len(prefs)] if prefs else {"code": top, "name": ""}
    return {
        "status": "ok",
        "province": kpi.region_kpis(conn, top),
        "province_bbox": region_row(conn, top)["bbox"],
        "current": {**current, "index": (step % len(prefs)) + 1 if prefs else 0, "count": len(prefs),
                    "kpis": kpi.region_kpis(conn, current["code"]) if prefs else None},
        "top": top,
        "features": children_features(conn, top, geometry=False),  # outlines travel once, with the map
        "alerts": [{**a, "reported_at": a["reported_at"].isoformat()} for a in recent_red_alerts(conn, alert_minutes)]
        + takeover_alerts(conn, alert_minutes),
        "versions": read_versions(conn),
        "fetched_at": int(time.time() * 1000),
    }


@dash.callback(Output("wall-data", "data"), Input("wall-tour", "n_intervals"), Input("shell-versions", "data"),
               State("wall-config", "data"))
@db_callback
def load(step, _versions, cfg):
    try:
        with read(want=_versions) as conn:   # the replica when configured (gridwatch.replica)
            return fetch_wall(conn, int(step or 0), int((cfg or {}).get("alert_minutes", ALERT_MINUTES)))
    except psycopg.Error:
        return no_update


def numbers(k: dict | None, lang: str) -> list:
    """The big numbers of one region (every value written out)."""
    if not k:
        return []
    items = [
        ("open", big_number(k["open"], lang), ""),
        ("new_today", big_number(k["new_today"], lang), ""),
        ("overdue", big_number(k["overdue"], lang), "bad" if k["overdue"] else ""),
        ("closure_rate", fmt_percent(k["closure_rate"], lang), ""),
        ("on_time_rate", fmt_percent(k["on_time_rate"], lang), "warn" if (k["on_time_rate"] or 1) < 0.8 else ""),
        ("resolution_rate", fmt_percent(k["resolution_rate"], lang), ""),
    ]
    return [html.Div([html.Div(v, className="v"), html.Div(t(f"wall.k.{key}", lang), className="l")],
                     className=f"wall-number {tone}".strip(), id=f"wall-n-{key}") for key, v, tone in items]


def ranking_rows(features: list[dict], current: str | None, lang: str) -> list:
    rows = sorted((f["properties"] for f in features), key=lambda p: (-(p.get("overdue") or 0), -(p.get("open") or 0), p["code"]))
    return [html.Tr([html.Td(f"{i}"), html.Td(p["name"]), html.Td(big_number(p.get("overdue"), lang), className="num"),
                     html.Td(big_number(p.get("open"), lang), className="num")],
                    className="current" if p["code"] == current else "") for i, p in enumerate(rows, 1)]


@dash.callback(
    Output("wall-region-name", "children"), Output("wall-tour-note", "children"), Output("wall-title", "children"),
    Output("wall-province", "children"), Output("wall-current", "children"), Output("wall-ranking", "children"),
    Output("wall-hazards", "children"), Output("wall-trend-totals", "children"), Output("wall-trend", "figure"),
    *[Output(f"wall-h-{p}", "children") for p in PANELS],
    Input("wall-data", "data"), Input("shell-lang", "data"), State("wall-config", "data"),
)
def render(data, lang, cfg):
    lang = lang or "zh"
    heads = [t("wall.province", lang), "", t("wall.map", lang), t("wall.ranking", lang), t("wall.hazards", lang), t("wall.trend", lang)]
    if not data:
        return (t("state.loading", lang), "", t("wall.title", lang), [], [], [], [], "", no_update, *heads)
    if data["status"] != "ok":
        return (t("wall.nodata", lang), "", t("wall.title", lang), [], [], [], [], "", no_update, *heads)
    cur = data["current"]
    heads[1] = f"{t('wall.current', lang)} · {cur['name']}"
    hz = data["province"]["hazards_open_by_grade"]
    hazards = [html.Div([html.Div(big_number(hz[g], lang), className="v", style={"color": GRADE_COLOURS[g]}),
                         html.Div(t(f"grade.{g}", lang), className="l")], className="wall-number", id=f"wall-hz-{g}")
               for g in ("red", "orange", "yellow")]
    series = (cur.get("kpis") or data["province"])["sparkline"]
    note = t("wall.tour", lang, i=cur["index"], n=cur["count"], s=f"{(cfg or {}).get('tour', 20):g}")
    return (cur["name"], note, t("wall.title", lang), numbers(data["province"], lang), numbers(cur.get("kpis"), lang),
            ranking_rows(data["features"]["features"], cur["code"], lang), hazards, spark_totals(series, lang),
            sparkline(series, lang, dark=True, height=None), *heads)


@dash.callback(Output("wall-figure", "data"), Output("wall-figure-key", "data"),
               Input("wall-data", "data"), Input("shell-lang", "data"), State("wall-figure-key", "data"))
@db_callback
def render_map(data, lang, key):
    """The province map, drawn whole once; the tour and live refreshes patch colours and outlines."""
    if not data or data.get("status") != "ok":
        return no_update, no_update
    lang = lang or "zh"
    options = dict(bounds=data["province_bbox"], versions=data.get("versions"))
    values_only = wall_map(data["features"], data["current"]["code"], lang, **options)
    new_key = {"top": data["top"], "lang": lang, "outlines": (data.get("versions") or {}).get("region"),
               "signature": figure_signature(values_only)}
    if key == new_key:
        return figure_patch(values_only), no_update
    try:
        with transaction(pool(), readonly=True) as conn:
            outlines = children_features(conn, data["top"])
    except psycopg.Error:
        return no_update, no_update
    return wall_map(with_geometry(data["features"], outlines), data["current"]["code"], lang, **options), new_key


@dash.callback(Output("wall-takeover", "children"), Output("wall-takeover", "hidden"),
               Input("wall-data", "data"), Input("wall-ack", "data"), Input("shell-lang", "data"))
def takeover(data, acked, lang):
    lang = lang or "zh"
    alerts = [a for a in (data or {}).get("alerts", []) if f"{a['kind']}:{a['id']}" not in set(acked or [])]
    if not alerts:
        return [], True
    items = [html.Li(f"{t('wall.alert.' + a['kind'], lang)} · {a.get('title_' + lang) or a['title']} · {a['county']} {a['place']}".strip(),
                     id=f"wall-alert-{a['kind']}-{a['id']}") for a in alerts]
    return [html.H2(t("wall.alert.title", lang)), html.Ul(items),
            html.Button(t("wall.alert.ack", lang), id="wall-ack-button", className="button", n_clicks=0)], False


@dash.callback(Output("wall-ack", "data"), Input("wall-ack-button", "n_clicks"), State("wall-data", "data"),
               State("wall-ack", "data"), prevent_initial_call=True)
def acknowledge(n, data, acked):
    if not n:
        return no_update
    return sorted(set(acked or []) | {f"{a['kind']}:{a['id']}" for a in (data or {}).get("alerts", [])})


# Year-on-year panel (issue 7): the province's statistics in the wall-yoy slot, refreshed with the wall.
@dash.callback(Output("wall-yoy", "children"), Input("wall-data", "data"), Input("shell-lang", "data"))
@db_callback
def fill_yoy(_data, lang):
    try:
        with transaction(pool(), readonly=True) as conn:
            rows, demo = province_yoy(conn)
    except psycopg.Error:
        return no_update
    return yoy_panel(rows, lang or "zh", dark=True, demo=demo)


# Tile URLs made absolute and the map fitted to the screen, in the browser.
clientside_callback(
    ClientsideFunction(namespace="gridwatch", function_name="mapFigure"),  # dashboard/assets/gridwatch.js
    Output("wall-map", "figure"),
    Input("wall-figure", "data"),
)

# Freshness badges and the clock, once a second, in the browser. A panel's data is as fresh as
# the later of its fetch and the last moment the live connection was known good.
clientside_callback(
    """
    function(n, data, beat, cfg, lang) {
        var now = Date.now();
        var outs = window.dash_clientside.callback_context.outputs_list[0];
        var count = outs.length;
        var zh = lang !== 'en';
        var fetched = (data && data.fetched_at) || 0;
        var confirmed = (beat && beat.ok) ? Math.max(fetched, beat.at || 0) : fetched;
        var s = Math.max(0, Math.floor((now - confirmed) / 1000));
        var age;
        if (!fetched) { age = zh ? '加载中…' : 'loading…'; }
        else if (s < 60) { age = zh ? s + ' 秒前' : s + ' s ago'; }
        else if (s < 3600) { age = zh ? Math.floor(s / 60) + ' 分钟前' : Math.floor(s / 60) + ' min ago'; }
        else { age = zh ? Math.floor(s / 3600) + ' 小时前' : Math.floor(s / 3600) + ' h ago'; }
        var text = fetched ? (zh ? '更新于 ' + age : 'updated ' + age) : age;
        var stale = fetched && s > ((cfg && cfg.stale) || 60);
        var cls = stale ? 'fresh stale' : 'fresh';
        var texts = [], classes = [];
        for (var i = 0; i < count; i++) { texts.push(text); classes.push(cls); }
        var d = new Date(now);
        var pad = function (x) { return (x < 10 ? '0' : '') + x; };
        var hms = pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
        var months = ['Jan','Feb','Mar','Apr','May','Jun','Jul','Aug','Sep','Oct','Nov','Dec'];
        var clock = zh ? d.getFullYear() + '年' + (d.getMonth() + 1) + '月' + d.getDate() + '日 ' + hms
                       : d.getDate() + ' ' + months[d.getMonth()] + ' ' + d.getFullYear() + ' ' + hms;
        return [texts, classes, clock];
    }
    """,
    Output({"type": "wall-fresh", "panel": ALL}, "children"),
    Output({"type": "wall-fresh", "panel": ALL}, "className"),
    Output("wall-clock", "children"),
    Input("wall-tick", "n_intervals"),
    State("wall-data", "data"), State("shell-heartbeat", "data"), State("wall-config", "data"), State("shell-lang", "data"),
)
