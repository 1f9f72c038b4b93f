"""Wall mode (``/wall``): full-screen, dark, high contrast, for 1920×1080 and 3840×2160 walls.

Large numbers for the wall's region (``?region=<code>``, default the province) and the child being
toured; every figure is written out (no hover-only information). The tour moves through the
children every ``GRIDWATCH_WALL_TOUR_SECONDS`` (or ``?tour=<seconds>``), and the map zooms to the
one on tour. The map is what the wall is for, so it stays visible most of the time:

- a **takeover** shows only red items of the wall's scope reported in the last N minutes
  (``GRIDWATCH_WALL_TAKEOVER_MINUTES`` or ``?alert_minutes=``), not acknowledged, silenced or
  inhibited (:func:`gridwatch.triage.wall_items`), at most M at a time
  (``GRIDWATCH_WALL_TAKEOVER_MAX``);
- after T seconds (``GRIDWATCH_WALL_TAKEOVER_SECONDS``) it collapses into a **ticker** along the
  bottom of the map; red items that arrive within ``GRIDWATCH_WALL_TAKEOVER_QUIET`` seconds of a
  takeover go straight to the ticker (Alertmanager's group interval: a wall that always shouts is
  a wall nobody reads).

Every panel carries a freshness badge ("更新于 12 秒前"), amber once older than
``GRIDWATCH_STALE_SECONDS``; nothing overflows its panel at either size.
"""

from __future__ import annotations

import time

import dash
import psycopg
from dash import ALL, ClientsideFunction, Input, Output, State, clientside_callback, dcc, html, no_update

from dashboard.analytics_components import province_yoy, yoy_panel
from dashboard.figures import (
    GRADE_COLOURS, big_number, empty_figure, figure_patch, figure_signature, spark_totals, sparkline, wall_map, with_geometry,
)
from gridwatch.i18n import fmt_percent, register, t
from dashboard.util import db_callback, duplicates, read
from gridwatch import config, kpi, triage
from gridwatch.regions import BadRegionCode, check_code, children_features, list_regions, prefectures, region_row
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
    "wall.map_on": {"zh": "态势 · {name}", "en": "Map · {name}"},
    "wall.tour": {"zh": "轮巡 {i}/{n} · 每 {s} 秒", "en": "Tour {i}/{n} · every {s} s"},
    "wall.alert.title": {"zh": "红色预警", "en": "Red alert"},
    "wall.alert.case": {"zh": "案件", "en": "Case"},
    "wall.alert.hazard": {"zh": "隐患", "en": "Hazard"},
    "wall.alert.more": {"zh": "另有 {n} 条见下方滚动条", "en": "{n} more in the ticker below"},
    "wall.ticker": {"zh": "红色预警", "en": "Red alerts"},
    "wall.alert.ack": {"zh": "知道了", "en": "Acknowledge"},
    "wall.nodata": {"zh": "尚未加载区划数据", "en": "No regions loaded"},
    "wall.k.open": {"zh": "未结案件", "en": "Open"},
    "wall.k.new_today": {"zh": "今日新增", "en": "New today"},
    "wall.k.overdue": {"zh": "逾期未结", "en": "Overdue"},
    "wall.k.closure_rate": {"zh": "结案率", "en": "Closure rate"},
    "wall.k.on_time_rate": {"zh": "按期结案率", "en": "On time"},
    "wall.k.resolution_rate": {"zh": "化解率", "en": "Resolved"},
})

PANELS = ("province", "current", "map", "ranking", "hazards", "trend")


def _setting(name: str, default: float) -> float:
    try:
        return float(config.get(name))
    except (TypeError, ValueError):
        return default


def _tour_seconds(tour) -> float:
    try:
        value = float(tour)
    except (TypeError, ValueError):
        value = _setting("GRIDWATCH_WALL_TOUR_SECONDS", 20)
    return max(value, 1.0)


def _minutes(value) -> float:
    try:
        return max(float(value), 1.0)
    except (TypeError, ValueError):
        return max(_setting("GRIDWATCH_WALL_TAKEOVER_MINUTES", 10), 1.0)


def wall_settings(alert_minutes=None) -> dict:
    """N, M, T and the quiet interval of the takeover (README settings table)."""
    return {"alert_minutes": _minutes(alert_minutes),
            "takeover_max": max(int(_setting("GRIDWATCH_WALL_TAKEOVER_MAX", 3)), 1),
            "takeover_seconds": max(_setting("GRIDWATCH_WALL_TAKEOVER_SECONDS", 10), 1.0),
            "takeover_quiet": max(_setting("GRIDWATCH_WALL_TAKEOVER_QUIET", 90), 0.0)}


def _fresh(panel: str) -> html.Span:
    return html.Span("", id={"type": "wall-fresh", "panel": panel}, className="fresh")


def _panel(panel: str, children, className: str = "wall-panel") -> html.Section:
    return html.Section([_fresh(panel), html.H2(id=f"wall-h-{panel}"), *children], className=className, id=f"wall-panel-{panel}")


def _scope(region) -> str | None:
    """The wall's region from ``?region=``: its canonical code through the one parser (GB/T 2260
    ``620700`` → ``6207``); None (the top of the hierarchy) when it is absent or not a code."""
    if not isinstance(region, str) or not region.strip():
        return None
    try:
        return check_code(region)
    except BadRegionCode:
        return None


def layout(tour=None, alert_minutes=None, region=None, **_):
    seconds = _tour_seconds(tour)
    scope = _scope(region)
    return html.Div(
        [
            dcc.Store(id="wall-config", data={"tour": seconds, "stale": float(config.get("GRIDWATCH_STALE_SECONDS")),
                                              "scope": scope, **wall_settings(alert_minutes)}),
            dcc.Store(id="wall-data"),
            dcc.Store(id="wall-yoy-version"),
            dcc.Store(id="wall-tstate", data=None),
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
                                     style={"height": "100%"}),
                           html.Div(id="wall-ticker", className="wall-ticker", hidden=True, role="status")],
                   className="wall-panel wall-map-panel"),
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


def fetch_wall(conn: psycopg.Connection, step: int, alert_minutes: float, scope: str | None = None,
               takeover_max: int = 3) -> dict:
    """The wall's region (``scope``, default the top of the hierarchy), its child at tour ``step``
    (with its bounding box: the map zooms to it), the children's map data and the red items."""
    if scope:
        row = conn.execute("SELECT code FROM region WHERE code = %s", (scope,)).fetchone()
    else:
        row = conn.execute("SELECT code FROM region WHERE parent_code IS NULL ORDER BY code LIMIT 1").fetchone()
    if row is None:
        return {"status": "nodata"}
    top = row["code"] if isinstance(row, dict) else row[0]
    prefs = prefectures(conn, top) if len(top) == 2 else [{"code": r["code"], "name": r["name"]} for r in list_regions(conn, top)]
    current = prefs[step % len(prefs)] if prefs else {"code": top, "name": ""}
    top_row = region_row(conn, top)
    items = triage.wall_items(conn, top, alert_minutes, takeover_max + 20)
    return {
        "status": "ok",
        "province": kpi.region_kpis(conn, top),
        "province_bbox": top_row["bbox"],
        "current": {**current, "index": (step % len(prefs)) + 1 if prefs else 0, "count": len(prefs),
                    "kpis": kpi.region_kpis(conn, current["code"]) if prefs else None,
                    "bbox": region_row(conn, current["code"])["bbox"] if prefs else top_row["bbox"]},
        "top": top,
        "features": children_features(conn, top, geometry=False),  # outlines travel once, with the map
        "alerts": items,
        "versions": read_versions(conn),
        "fetched_at": int(time.time() * 1000),
    }


# One round trip per refresh (a push or a tour step): ``load`` reads the wall's data and answers with
# the panels, the map (whole or a patch) and the takeover drawn from it. ``render``, ``render_map`` and
# ``takeover`` redraw from the stored data only when the language or the acknowledged items change.
PANELS_OUT = (
    Output("wall-region-name", "children"), Output("wall-tour-note", "children"), Output("wall-title", "children"),
    Output("wall-province", "children"), Output("wall-current", "children"), Output("wall-ranking", "children"),
    Output("wall-hazards", "children"), Output("wall-trend-totals", "children"), Output("wall-trend", "figure"),
    *[Output(f"wall-h-{p}", "children") for p in PANELS],
)
MAP_OUT = (Output("wall-figure", "data"), Output("wall-figure-key", "data"))
TAKEOVER_OUT = (Output("wall-takeover", "children"), Output("wall-ticker", "children"))


@dash.callback(Output("wall-data", "data"), *PANELS_OUT, *MAP_OUT, *TAKEOVER_OUT,
               Input("wall-tour", "n_intervals"), Input("shell-versions", "data"),
               State("wall-config", "data"), State("shell-lang", "data"), State("wall-figure-key", "data"),
               State("wall-ack", "data"))
@db_callback
def load(step, _versions, cfg, lang, key, acked):
    cfg = cfg or {}
    lang = lang if lang in ("zh", "en") else "zh"
    try:
        with read(want=_versions) as conn:   # the replica when configured (gridwatch.replica)
            data = fetch_wall(conn, int(step or 0), float(cfg.get("alert_minutes") or _minutes(None)), cfg.get("scope"),
                              int(cfg.get("takeover_max") or 3))
            drawn = _map(conn, data, lang, key)
    except psycopg.Error:
        return (no_update,) * (1 + len(PANELS_OUT) + len(MAP_OUT) + len(TAKEOVER_OUT))
    return data, *_panels(data, lang, cfg), *drawn, *_takeover(data, acked, lang, cfg)


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


@dash.callback(*duplicates(PANELS_OUT), Input("shell-lang", "data"), State("wall-data", "data"), State("wall-config", "data"),
               prevent_initial_call=True)
def render(lang, data, cfg):
    return _panels(data, lang or "zh", cfg)


def _panels(data, lang, cfg):
    heads = [t("wall.province", lang), "", t("wall.map", lang), t("wall.ranking", lang), t("wall.hazards", lang), t("wall.trend", lang)]
    if not data:
        return (t("state.loading", lang), "", t("wall.title", lang), [], [], [], [], "", no_update, *heads)
    if data["status"] != "ok":
        return (t("wall.nodata", lang), "", t("wall.title", lang), [], [], [], [], "", no_update, *heads)
    cur = data["current"]
    heads[1] = f"{t('wall.current', lang)} · {cur['name']}"
    heads[2] = t("wall.map_on", lang, name=cur["name"]) if cur.get("name") else heads[2]
    hz = data["province"]["hazards_open_by_grade"]
    hazards = [html.Div([html.Div(big_number(hz[g], lang), className="v", style={"color": GRADE_COLOURS[g]}),
                         html.Div(t(f"grade.{g}", lang), className="l")], className="wall-number", id=f"wall-hz-{g}")
               for g in ("red", "orange", "yellow")]
    series = (cur.get("kpis") or data["province"])["sparkline"]
    note = t("wall.tour", lang, i=cur["index"], n=cur["count"], s=f"{(cfg or {}).get('tour', 20):g}")
    return (cur["name"], note, t("wall.title", lang), numbers(data["province"], lang), numbers(cur.get("kpis"), lang),
            ranking_rows(data["features"]["features"], cur["code"], lang), hazards, spark_totals(series, lang),
            sparkline(series, lang, dark=True, height=None), *heads)


@dash.callback(*duplicates(MAP_OUT), Input("shell-lang", "data"), State("wall-data", "data"), State("wall-figure-key", "data"),
               prevent_initial_call=True)
@db_callback
def render_map(lang, data, key):
    try:
        with read() as conn:
            return _map(conn, data, lang or "zh", key)
    except psycopg.Error:
        return no_update, no_update


def _map(conn, data, lang, key):
    """The province map, drawn whole once; the tour and live refreshes patch colours and outlines."""
    if not data or data.get("status") != "ok":
        return no_update, no_update
    options = dict(bounds=data["current"].get("bbox") or data["province_bbox"], versions=data.get("versions"))
    values_only = wall_map(data["features"], data["current"]["code"], lang, **options)
    new_key = {"top": data["top"], "lang": lang, "outlines": (data.get("versions") or {}).get("region"),
               "signature": figure_signature(values_only)}
    if key == new_key:
        patch = figure_patch(values_only)     # the tour zooms the map to the region on tour
        patch["layout"]["meta"] = values_only.layout.meta
        patch["layout"]["map"]["center"] = values_only.layout.map.center.to_plotly_json()
        patch["layout"]["map"]["zoom"] = values_only.layout.map.zoom
        return patch, no_update
    outlines = children_features(conn, data["top"])
    return wall_map(with_geometry(data["features"], outlines), data["current"]["code"], lang, **options), new_key


def _item_text(a: dict, lang: str) -> str:
    title = (a.get("title_en") if lang == "en" else None) or a["title"]
    kind = t(f"rule.{a['rule']}", lang) if a.get("rule") else t("wall.alert." + a["kind"], lang)
    return f"{kind} · {title} · {a['county']} {a['place']}".strip(" ·")


def _pending(data: dict | None, acked) -> list[dict]:
    done = set(acked or [])
    return [a for a in (data or {}).get("alerts", []) if f"{a['kind']}:{a['id']}" not in done]


@dash.callback(*duplicates(TAKEOVER_OUT), Input("wall-ack", "data"), Input("shell-lang", "data"), State("wall-data", "data"),
               State("wall-config", "data"), prevent_initial_call=True)
def takeover(acked, lang, data, cfg):
    return _takeover(data, acked, lang or "zh", cfg)


def _takeover(data, acked, lang, cfg):
    """The takeover lists the newest M red items; the ticker all of them. Whether the takeover or
    the ticker shows is decided in the browser (below), from how long the takeover has been up."""
    items = _pending(data, acked)
    if not items:
        return [], []
    m = int((cfg or {}).get("takeover_max") or 3)
    shown = items[:m]
    body = [html.H2(t("wall.alert.title", lang)),
            html.Ul([html.Li(_item_text(a, lang), id=f"wall-alert-{a['kind']}-{a['id']}") for a in shown])]
    if len(items) > m:
        body.append(html.P(t("wall.alert.more", lang, n=len(items) - m), className="wall-takeover-more"))
    body.append(html.Button(t("wall.alert.ack", lang), id="wall-ack-button", className="button", n_clicks=0))
    ticker = [html.Span(t("wall.ticker", lang), className="wall-ticker-label"),
              html.Div([html.Span(_item_text(a, lang), className="wall-ticker-item", id=f"wall-tick-{a['kind']}-{a['id']}")
                        for a in items], className="wall-ticker-track")]
    return body, ticker


# Acknowledge, in the browser: the button is redrawn with every takeover, and a server callback here
# would cost a round trip per redraw to say "not clicked".
clientside_callback(
    """
    function(n, data, acked) {
        if (!n) { return window.dash_clientside.no_update; }
        var done = {};
        (acked || []).forEach(function (k) { done[k] = true; });
        ((data && data.alerts) || []).forEach(function (a) { done[a.kind + ':' + a.id] = true; });
        return Object.keys(done).sort();
    }
    """,
    Output("wall-ack", "data"), Input("wall-ack-button", "n_clicks"), State("wall-data", "data"), State("wall-ack", "data"),
    prevent_initial_call=True,
)


# Takeover or ticker, in the browser, once a second: a red item not seen before takes the screen for
# T seconds, unless a takeover ended less than the quiet interval ago; then it goes to the ticker.
clientside_callback(
    """
    function(n, data, acked, cfg, st) {
        var now = Date.now();
        cfg = cfg || {};
        st = Object.assign({seen: {}, mode: 'idle', since: 0, quiet: 0}, st || {});
        var done = {};
        (acked || []).forEach(function (k) { done[k] = true; });
        var items = ((data && data.alerts) || []).filter(function (a) { return !done[a.kind + ':' + a.id]; });
        var T = (cfg.takeover_seconds || 10) * 1000, Q = (cfg.takeover_quiet || 0) * 1000;
        if (st.mode === 'takeover' && (now - st.since >= T || !items.length)) { st.mode = 'idle'; st.quiet = now + Q; }
        var fresh = items.filter(function (a) { return !st.seen[a.kind + ':' + a.id]; });
        if (fresh.length) {
            if (st.mode === 'idle' && now >= st.quiet) { st.mode = 'takeover'; st.since = now; }
            fresh.forEach(function (a) { st.seen[a.kind + ':' + a.id] = now; });
        }
        var keep = {};
        Object.keys(st.seen).forEach(function (k) { if (now - st.seen[k] < 6 * 3600 * 1000) { keep[k] = st.seen[k]; } });
        st.seen = keep;
        var up = st.mode === 'takeover' && items.length > 0;
        return [!up, up || !items.length, st];
    }
    """,
    Output("wall-takeover", "hidden"), Output("wall-ticker", "hidden"), Output("wall-tstate", "data"),
    Input("wall-tick", "n_intervals"), Input("wall-data", "data"), Input("wall-ack", "data"),
    State("wall-config", "data"), State("wall-tstate", "data"),
)


# Year-on-year panel (issue 7): the province's statistics in the wall-yoy slot. They change only with
# a statistics load: the panel reloads when stat_figure's version does (or after a lost connection),
# not with the wall's other panels; the browser decides, without a request.
clientside_callback(
    """
    function(versions, current) {
        var v = {stat_figure: (versions || {}).stat_figure || 0, _reconnected: (versions || {})._reconnected || 0};
        return current && JSON.stringify(v) === JSON.stringify(current) ? window.dash_clientside.no_update : v;
    }
    """,
    Output("wall-yoy-version", "data"),
    Input("shell-versions", "data"), State("wall-yoy-version", "data"),
)


@dash.callback(Output("wall-yoy", "children"), Input("wall-yoy-version", "data"), Input("shell-lang", "data"))
@db_callback
def fill_yoy(version, lang):
    try:
        with read(want={"stat_figure": (version or {}).get("stat_figure") or 0}) as conn:   # the replica when configured
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
