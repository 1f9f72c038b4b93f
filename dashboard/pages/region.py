"""Drill-down: the region's children on a map coloured by a measure, its KPIs and a ranking.

``/`` shows the top of the hierarchy (甘肃省), ``/region/<code>`` any region, so a reload or a
shared link shows the same view. Clicking a child (on the map or in the ranking) goes down a
level; the breadcrumb goes back up. Cases and hazards on the map open their details and timeline.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import dash
import psycopg
from dash import ALL, ClientsideFunction, Input, Output, State, clientside_callback, ctx, dcc, html, no_update

from dashboard.figures import (
    big_number, fmt_measure, grade_bar, is_generated, level_bar, measure_label, region_map, sort_rows, spark_totals, sparkline,
    figure_patch, figure_signature, with_geometry,
)
from gridwatch.i18n import fmt_datetime, fmt_percent, register, t
from dashboard import session
from gridwatch.cases import mask
from dashboard.util import cache, db_callback, jsonable, listener, pool, read
from gridwatch import kpi
from gridwatch.regions import (
    case_register,
    MEASURES, BadRegionCode, canonical_or_raw, case_detail, children_features, hazard_detail, region_detail, view_points,
)
from gridwatch.cache import cache_key, get_json, put_json, single_flight
from gridwatch.db import transaction
from gridwatch.live import read_versions

dash.register_page(__name__, path="/", path_template="/region/<code>", name="区域态势", nav_key="nav.region",
                   order=0, title="区域态势 · gridwatch")

register({
    "region.cases": {"zh": "案件台账（含已办结，点击查看）", "en": "Case register (closed included, click to open)"},
    "region.cases.search": {"zh": "按标题、当事人或编号搜索", "en": "Search title, party or reference"},
    "region.cases.none": {"zh": "没有符合条件的案件", "en": "No matching cases"},
    "nav.region": {"zh": "区域态势", "en": "Regions"},
    "region.measure": {"zh": "着色指标", "en": "Colour by"},
    "region.export": {"zh": "导出离线地图", "en": "Export offline map"},
    "region.empty": {"zh": "本区域暂无案件", "en": "No cases in this region"},
    "region.nodata": {"zh": "尚未加载区划数据：请先运行 gridwatch etl gansu", "en": "No regions loaded yet: run gridwatch etl gansu"},
    "region.unknown": {"zh": "区划 {code} 不存在", "en": "There is no region {code}"},
    "region.back": {"zh": "返回甘肃省", "en": "Back to the province"},
    "region.generated": {"zh": "下级边界为生成示意，非实测", "en": "Child boundaries are generated (schematic), not surveyed"},
    "region.ranking": {"zh": "下级排名（点击进入）", "en": "Children ranked (click to open)"},
    "region.children_none": {"zh": "无下级区域", "en": "No child regions"},
    "region.detail.close": {"zh": "关闭", "en": "Close"},
    "region.detail.timeline": {"zh": "处置时间线", "en": "Timeline"},
    "region.detail.place": {"zh": "位置", "en": "Place"},
    "region.detail.category": {"zh": "类别", "en": "Category"},
    "region.detail.grade": {"zh": "等级", "en": "Grade"},
    "region.detail.state": {"zh": "状态", "en": "State"},
    "region.detail.reported": {"zh": "上报时间", "en": "Reported"},
    "region.detail.deadline": {"zh": "办结时限", "en": "Deadline"},
    "region.detail.overdue": {"zh": "已逾期", "en": "Overdue"},
    "region.detail.kind": {"zh": "隐患类型", "en": "Kind"},
    "region.detail.missing": {"zh": "该记录已不存在", "en": "This record no longer exists"},
    "kpi.title": {"zh": "关键指标（近30天）", "en": "Key figures (last 30 days)"},
    "kpi.open": {"zh": "未结案件", "en": "Open"},
    "kpi.new_today": {"zh": "今日新增", "en": "New today"},
    "kpi.overdue": {"zh": "逾期未结", "en": "Overdue"},
    "kpi.closure_rate": {"zh": "结案率", "en": "Closure rate"},
    "kpi.on_time_rate": {"zh": "按期结案率", "en": "On-time closure rate"},
    "kpi.open_overdue": {"zh": "到期未结 {n}", "en": "{n} due, still open"},
    "kpi.due_note": {"zh": "以到期案件 {n} 件为分母", "en": "of {n} cases due"},
    "kpi.resolution_rate": {"zh": "矛盾纠纷化解率", "en": "Dispute resolution rate"},
    "kpi.escalations": {"zh": "上交升级", "en": "Escalations"},
    "kpi.coverage": {"zh": "实体化综治中心覆盖", "en": "Entity-centre coverage"},
    "kpi.coverage_note": {"zh": "{a}/{b} 个下级", "en": "{a} of {b} children"},
    "kpi.closed_by_level": {"zh": "在哪一级办结", "en": "Where cases were closed"},
    "kpi.hazards": {"zh": "未销号隐患（按等级）", "en": "Open hazards by grade"},
    "kpi.spark": {"zh": "近30天新增与办结", "en": "New and closed, last 30 days"},
    "col.open": {"zh": "未结", "en": "Open"},
    "col.overdue": {"zh": "逾期", "en": "Overdue"},
    "col.closure_rate": {"zh": "结案率", "en": "Closure"},
    "col.on_time_rate": {"zh": "按期率", "en": "On time"},
    "col.hazards_open": {"zh": "隐患", "en": "Hazards"},
    "col.cases_per_grid": {"zh": "网格均案", "en": "Per grid"},
    "state.reported": {"zh": "已上报", "en": "Reported"},
    "state.accepted": {"zh": "已受理", "en": "Accepted"},
    "state.rejected": {"zh": "不予受理", "en": "Rejected"},
    "state.dispatched": {"zh": "已分派", "en": "Dispatched"},
    "state.returned": {"zh": "已退回", "en": "Returned"},
    "state.in_progress": {"zh": "办理中", "en": "In progress"},
    "state.feedback": {"zh": "待反馈", "en": "Awaiting feedback"},
    "state.closed": {"zh": "已办结", "en": "Closed"},
    "state.parked": {"zh": "挂起", "en": "Parked"},
    "state.open": {"zh": "未销号", "en": "Open"},
    "state.rectifying": {"zh": "整改中", "en": "Rectifying"},
    "state.reopened": {"zh": "复发", "en": "Reopened"},
    "hevent.reported": {"zh": "发现上报", "en": "Reported"},
    "hevent.deadline": {"zh": "整改时限", "en": "Rectification deadline"},
    "hevent.closed": {"zh": "销号", "en": "Closed out"},
    "hevent.reinspected": {"zh": "复查", "en": "Re-inspected"},
})

TZ = ZoneInfo("Asia/Shanghai")
POINT_LEVELS = ("township", "village", "grid")  # above: bubbles per child (aggregates)
RANK_COLUMNS = ("open", "overdue", "closure_rate", "on_time_rate", "hazards_open", "cases_per_grid")


def layout(code: str | None = None, measure: str | None = None, **_):
    measure = measure if measure in MEASURES else "open"
    code = canonical_or_raw(code or "")
    return html.Div(
        [
            dcc.Location(id="region-nav", refresh="callback-nav"),
            dcc.Store(id="region-code", data=code or ""),
            dcc.Store(id="region-data"),
            # The pushed versions this page's parts depend on (set in the browser from shell-versions):
            # the view reloads when one of VIEW_TABLES changed, the case register only when cases did.
            dcc.Store(id="region-live"),
            dcc.Store(id="region-cases-live"),
            # Enabled only while the last load failed: the page retries by itself until the database is back.
            dcc.Interval(id="region-retry", interval=2000, disabled=True),
            dcc.Store(id="region-figure"),
            dcc.Store(id="region-figure-key"),
            dcc.Store(id="region-selected"),
            dcc.Store(id="region-sort", data={"key": "overdue", "desc": True}),
            html.Div(id="region-error", className="state-banner state-error", hidden=True, role="alert"),
            html.Nav(t("state.loading"), id="region-breadcrumb", className="breadcrumb"),
            html.Div(
                [
                    html.Section(
                        [
                            html.Div(
                                [
                                    html.Label(measure_label(measure), id="region-measure-label", htmlFor="region-measure"),
                                    dcc.Dropdown(id="region-measure", options=[{"label": measure_label(m), "value": m} for m in MEASURES],
                                                 value=measure, clearable=False, searchable=False, className="region-measure"),
                                    html.A(t("region.export"), id="region-export", className="button", href="#", download=""),
                                    html.Span(id="region-generated", className="badge badge-generated", hidden=True),
                                ],
                                className="region-controls",
                            ),
                            dcc.Loading(
                                dcc.Graph(id="region-map", className="region-map", style={"height": "640px"},
                                          config={"displaylogo": False, "scrollZoom": True, "responsive": True}),
                                delay_show=400, type="dot",
                            ),
                            html.Div(id="region-detail", className="region-detail", hidden=True),
                        ],
                        className="region-main",
                    ),
                    html.Aside(
                        [
                            html.Div(t("state.loading"), id="region-kpis", className="kpi-panel"),
                            html.Div(id="region-empty", className="state-empty", hidden=True),
                            html.Div(id="region-ranking", className="ranking"),
                            html.Div(
                                [
                                    html.H3(t("region.cases"), id="region-cases-title"),
                                    dcc.Input(id="region-case-search", type="search", debounce=True,
                                              placeholder=t("region.cases.search"), className="region-case-search"),
                                    dcc.Loading(html.Div(id="region-cases"), delay_show=400, type="dot"),
                                ],
                                className="case-register",
                            ),
                        ],
                        className="region-side",
                    ),
                ],
                className="region-body",
            ),
        ],
        className="region-page",
    )


# -- data: one read per view (and per data change), off the event loop -------------------------

def fetch_view(conn: psycopg.Connection, code: str) -> dict:
    """Everything the page shows for ``code`` ('' = the top region), as JSON-ready values."""
    if not code:
        row = conn.execute("SELECT code FROM region WHERE parent_code IS NULL ORDER BY code LIMIT 1").fetchone()
        if row is None:
            return {"status": "nodata"}
        code = row["code"] if isinstance(row, dict) else row[0]
    detail = region_detail(conn, code)
    features = children_features(conn, code, geometry=False)  # outlines travel once, with the map
    points = view_points(conn, code) if detail["level"] in POINT_LEVELS else None
    return {"status": "ok", "code": code, "region": detail, "features": features, "points": points,
            "versions": read_versions(conn), "fetched_at": int(time.time() * 1000)}


# What a view shows depends on these tables (a change to alerts or departments does not reload it)
# and on the clock (overdue, today): cached per minute and per version, shared by every screen.
VIEW_TABLES = ("cases", "hazard", "centre", "region", "checkin", "township_coverage")
REGISTER_TABLES = ("cases", "region")


def _key(what: str, code: str, versions: dict, tables: tuple[str, ...]) -> str:
    """A cache key naming exactly what a view shows: the region, what this user may see (the scope
    row-level security applies, issue 11), the minute and the versions of the tables it reads."""
    return cache_key(what, code or "top", session.scope_key(), int(time.time() // 60),
                     *(int(versions.get(t, 0)) for t in tables))


def _known(want: dict | None, tables: tuple[str, ...]) -> dict | None:
    """The newest versions this process's live hub has heard of (no database), when they are at
    least those the push named; None when the hub knows nothing yet or is behind."""
    known = getattr(listener(), "versions", None) or {}
    if not known or any(isinstance(v, (int, float)) and int(v) > int(known.get(t, 0))
                        for t, v in (want or {}).items() if t in tables):
        return None
    return known


def shared_read(what: str, code: str, want: dict | None, tables: tuple[str, ...], fetch, ttl: int = 120):
    """``fetch(conn)``'s JSON-ready value for ``code``, shared by every page of the same region, scope
    and data versions: answered from the cache without a transaction when the versions the hub
    heard of were computed before, computed once for many pages asking at the same moment, else
    read in a transaction whose own versions name the cached entry. A request whose account could
    not be resolved is never shared (its key would name no scope, and another such request's answer
    could come from a different one)."""
    store, known = cache(), _known(want, tables)
    if session.principal() is None:
        with read(want=want) as conn:
            return jsonable(fetch(conn))
    key = _key(what, code, known, tables) if known is not None else None
    value = get_json(store, key)
    if value is not None:
        return value
    with single_flight(store, key) as hit:
        if hit is not None:
            return json.loads(hit)
        with read(want=want) as conn:
            now = read_versions(conn)                                   # the versions this transaction sees
            actual = _key(what, code, now, tables)
            value = get_json(store, actual) if actual != key else None
            if value is None:
                value = jsonable(fetch(conn))
                put_json(store, actual, value, ttl)
        if key is not None and key != actual and all(int(now.get(t, 0)) >= int(known.get(t, 0)) for t in tables):
            put_json(store, key, value, ttl)    # newer than asked, never older: the answer of those who waited
        return value


def cached_view(code: str, want: dict | None = None) -> dict:
    """fetch_view through the shared cache (:func:`shared_read`)."""
    view = shared_read("region-view", code, want, VIEW_TABLES, lambda conn: fetch_view(conn, code))
    return {**view, "fetched_at": int(time.time() * 1000)} if view.get("status") == "ok" else view


@dash.callback(Output("region-data", "data"), Output("region-error", "children"), Output("region-error", "hidden"),
               Output("region-retry", "disabled"),
               Input("region-code", "data"), Input("region-live", "data"), Input("region-retry", "n_intervals"),
               State("shell-versions", "data"), State("shell-lang", "data"))
@db_callback
def load(code, _live, _retry, versions, lang):
    try:
        return cached_view(code or "", versions), "", True, True
    except (BadRegionCode, kpi.UnknownRegion):
        return {"status": "unknown", "code": code}, "", True, True
    except psycopg.Error:
        return no_update, t("state.error.db", lang), False, False


# In the browser, no request: pushed versions → the parts whose tables changed. A store set to the
# value it had still fires its callbacks, so an unchanged part gets no_update.
clientside_callback(
    """
    function(versions, live, casesLive) {
        var nu = window.dash_clientside.no_update;
        var pick = function (tables) {
            var out = {};
            tables.forEach(function (t) { out[t] = (versions || {})[t] || 0; });
            out._reconnected = (versions || {})._reconnected || 0;
            return out;
        };
        var same = function (a, b) { return JSON.stringify(a) === JSON.stringify(b); };
        var v = pick(%s), c = pick(["cases"]);
        if (!live) { return [v, c]; }             // first push after load: remember, no reload
        return [same(v, live) ? nu : v, same(c, casesLive) ? nu : c];
    }
    """ % json.dumps(list(VIEW_TABLES)),
    Output("region-live", "data"), Output("region-cases-live", "data"),
    Input("shell-versions", "data"), State("region-live", "data"), State("region-cases-live", "data"),
)


# -- rendering: plain functions of the data, no database ----------------------------------------

def breadcrumb(data: dict, lang: str) -> list:
    chain = data["region"]["ancestry"] + [{"code": data["code"], "name": data["region"]["name"], "level": data["region"]["level"]}]
    items: list = []
    for i, node in enumerate(chain):
        if i:
            items.append(html.Span("›", className="breadcrumb-sep"))
        if i == len(chain) - 1:
            items.append(html.Span(node["name"], id="region-crumb-current", className="breadcrumb-current",
                                   title=t(f"level.{node['level']}", lang)))
        else:
            items.append(dcc.Link(node["name"], href=f"/region/{node['code']}", id=f"region-crumb-{node['code']}",
                                  className="breadcrumb-link"))
    return items


def kpi_panel(data: dict, lang: str) -> list:
    k = data["region"]["kpis"]
    cov = k["centre_coverage"]

    def card(key, value, note=None, tone=""):
        return html.Div(
            [html.Div(t(f"kpi.{key}", lang), className="kpi-label"),
             html.Div(value, id=f"region-kpi-{key}", className="kpi-value"),
             html.Div(note or "", className="kpi-note")],
            className=f"kpi-card {tone}".strip(),
        )

    return [
        html.H2([t("kpi.title", lang)], className="panel-title"),
        html.Div(
            [
                card("open", big_number(k["open"], lang)),
                card("new_today", big_number(k["new_today"], lang)),
                card("overdue", big_number(k["overdue"], lang), tone="tone-warn" if k["overdue"] else ""),
                card("closure_rate", fmt_percent(k["closure_rate"], lang), t("kpi.due_note", lang, n=f"{k['due']:,}")),
                card("on_time_rate", fmt_percent(k["on_time_rate"], lang), t("kpi.open_overdue", lang, n=f"{k['open_overdue']:,}"),
                     tone="tone-warn" if k["open_overdue"] else ""),
                card("resolution_rate", fmt_percent(k["resolution_rate"], lang)),
                card("escalations", big_number(k["escalations"], lang)),
                card("coverage", fmt_percent(cov["share"], lang),
                     t("kpi.coverage_note", lang, a=cov["with_entity_centre"], b=cov["children"])),
            ],
            className="kpi-grid",
        ),
        html.H3([t("kpi.spark", lang), html.Span(" " + spark_totals(k["sparkline"], lang), className="muted", id="region-spark-totals")],
                className="panel-sub"),
        dcc.Graph(figure=sparkline(k["sparkline"], lang), id="region-spark", config={"displayModeBar": False}, className="spark"),
        html.Div(
            [
                html.Div([html.H3(t("kpi.closed_by_level", lang), className="panel-sub"),
                          dcc.Graph(figure=level_bar(k["closed_by_level"], lang), config={"displayModeBar": False})]),
                html.Div([html.H3(t("kpi.hazards", lang), className="panel-sub"),
                          dcc.Graph(figure=grade_bar(k["hazards_open_by_grade"], lang), config={"displayModeBar": False})]),
            ],
            className="kpi-charts",
        ),
    ]


def is_empty(data: dict) -> bool:
    """No open case, nothing due and nothing reported in the window: '本区域暂无案件'."""
    k = data["region"]["kpis"]
    return not k["open"] and not k["due"] and not sum(s["new"] for s in k["sparkline"])


def ranking_table(data: dict, sort: dict, lang: str):
    rows = [f["properties"] for f in data["features"]["features"] if f["properties"]["code"] != data["code"]]
    if not rows:
        return html.P(t("region.children_none", lang), className="muted")
    key, desc = sort.get("key", "overdue"), sort.get("desc", True)
    head = [html.Th(t("col.name", lang))]
    for col in RANK_COLUMNS:
        arrow = (" ▼" if desc else " ▲") if col == key else ""
        head.append(html.Th(html.Button(t(f"col.{col}", lang) + arrow, id={"type": "region-sort-button", "key": col},
                                        className="sort-button", n_clicks=0)))
    body = []
    for r in sort_rows(rows, key, desc):
        cells = [html.Td(dcc.Link(r["name"], href=f"/region/{r['code']}", id=f"region-rank-{r['code']}"))]
        for col in RANK_COLUMNS:
            if col in ("closure_rate", "on_time_rate"):
                text = fmt_percent(r.get(col), lang)
            else:
                text = fmt_measure("cases_per_grid" if col == "cases_per_grid" else "open", r.get(col), lang)
            cells.append(html.Td(text, className="num"))
        body.append(html.Tr(cells))
    return [html.H3(t("region.ranking", lang), className="panel-sub"),
            html.Table([html.Thead(html.Tr(head)), html.Tbody(body)], className="ranking-table", id="region-ranking-table")]


@dash.callback(Output("region-breadcrumb", "children"), Output("region-kpis", "children"),
               Output("region-empty", "children"), Output("region-empty", "hidden"),
               Output("region-generated", "children"), Output("region-generated", "hidden"),
               Input("region-data", "data"), Input("shell-lang", "data"))
def render_panel(data, lang):
    lang = lang or "zh"
    if not data:
        return t("state.loading", lang), t("state.loading", lang), "", True, "", True
    if data["status"] == "nodata":
        return "", "", t("region.nodata", lang), False, "", True
    if data["status"] == "unknown":
        msg = [t("region.unknown", lang, code=data.get("code")), " ", dcc.Link(t("region.back", lang), href="/")]
        return msg, "", "", True, "", True
    generated = any(is_generated(f["properties"].get("source")) for f in data["features"]["features"]
                    if f["properties"]["code"] != data["code"])
    return (breadcrumb(data, lang), kpi_panel(data, lang), t("region.empty", lang), not is_empty(data),
            t("region.generated", lang), not generated)


@dash.callback(Output("region-ranking", "children"), Input("region-data", "data"), Input("region-sort", "data"),
               Input("shell-lang", "data"))
def render_ranking(data, sort, lang):
    if not data or data.get("status") != "ok":
        return ""
    return ranking_table(data, sort or {}, lang or "zh")


# The sort order, in the browser: a header clicked twice quickly toggles twice (a server callback
# saw the same State for both clicks and toggled once), and the buttons redrawn with every push cost
# no round trip to say "not clicked". Same column: reverse; another column: descending first.
clientside_callback(
    """
    function(clicks, sort) {
        var id = window.gridwatchClicked();       // assets/gridwatch.js
        if (!id || !id.key) { return window.dash_clientside.no_update; }
        var key = id.key;
        sort = sort || {};
        var desc = sort.desc === undefined ? true : !!sort.desc;
        return {key: key, desc: sort.key === key ? !desc : true};
    }
    """,
    Output("region-sort", "data"), Input({"type": "region-sort-button", "key": ALL}, "n_clicks"),
    State("region-sort", "data"), prevent_initial_call=True,
)


@dash.callback(Output("region-figure", "data"), Output("region-figure-key", "data"),
               Input("region-data", "data"), Input("region-measure", "value"), Input("shell-lang", "data"),
               State("region-figure-key", "data"))
@db_callback
def render_map(data, measure, lang, key):
    """The map: drawn whole for a new view, measure or language (outlines read then); a live
    refresh only patches numbers, markers and tile URLs into the map the browser has."""
    if not data or data.get("status") != "ok":
        return no_update, no_update
    region, measure, lang = data["region"], measure or "open", lang or "zh"
    self_only = [f["properties"]["code"] for f in data["features"]["features"]] == [data["code"]]
    options = dict(bounds=region["bbox"], versions=data.get("versions"), points=data.get("points"),
                   bubbles=region["level"] not in POINT_LEVELS, self_only=self_only, uirevision=data["code"])
    values_only = region_map(data["features"], measure, lang, **options)
    new_key = {"code": data["code"], "measure": measure, "lang": lang,
               "outlines": (data.get("versions") or {}).get("region"), "signature": figure_signature(values_only)}
    if key == new_key:
        return figure_patch(values_only), no_update
    try:
        with transaction(pool(), readonly=True) as conn:
            outlines = children_features(conn, data["code"])
    except psycopg.Error:
        return no_update, no_update
    return region_map(with_geometry(data["features"], outlines), measure, lang, **options), new_key


# Tile URLs made absolute (MapLibre's worker cannot resolve site-relative ones) and the map fitted
# to the graph's real size, in the browser.
clientside_callback(
    ClientsideFunction(namespace="gridwatch", function_name="mapFigure"),  # dashboard/assets/gridwatch.js
    Output("region-map", "figure"),
    Input("region-figure", "data"),
)


@dash.callback(Output("region-measure", "options"), Output("region-measure-label", "children"),
               Output("region-export", "children"), Output("region-export", "href"), Output("region-export", "download"),
               Input("shell-lang", "data"), Input("region-data", "data"), Input("region-measure", "value"))
def label_controls(lang, data, measure):
    lang = lang or "zh"
    options = [{"label": measure_label(m, lang), "value": m} for m in MEASURES]
    code = data.get("code") if data and data.get("status") == "ok" else None
    href = f"/export/region/{code}.html?" + urlencode({"measure": measure or "open", "lang": lang}) if code else "#"
    return options, t("region.measure", lang), t("region.export", lang), href, f"gridwatch-{code}.html" if code else ""


@dash.callback(Output("region-nav", "pathname"), Output("region-selected", "data"),
               Input("region-map", "clickData"), State("region-code", "data"), prevent_initial_call=True)
def click_map(click, code):
    try:
        point = click["points"][0]
        kind, ident = point["customdata"][0], point["customdata"][1]
    except (TypeError, KeyError, IndexError):
        return no_update, no_update
    if kind == "region" and ident != code:
        return f"/region/{ident}", no_update
    if kind in ("case", "hazard"):
        return no_update, {"kind": kind, "id": int(ident)}
    return no_update, no_update


def _when(value, lang) -> str:
    if not value:
        return "—"
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return fmt_datetime(at.astimezone(TZ), lang)


def _state_label(state: str, lang: str) -> str:
    text = t(f"state.{state}", lang)
    return state if text == f"state.{state}" else text


def detail_panel(kind: str, d: dict | None, lang: str) -> list:
    """A case's or hazard's particulars and its timeline."""
    close = html.Button(t("region.detail.close", lang), id="region-detail-close", className="button small", n_clicks=0)
    if d is None:
        return [close, html.P(t("region.detail.missing", lang))]
    place = " · ".join(x for x in (d.get("county_name"), d.get("township_name"), d.get("grid_name")) if x)
    rows = [("region.detail.place", place or "—"), ("region.detail.grade", t(f"grade.{d['grade']}", lang)),
            ("region.detail.state", _state_label(d["state"], lang)), ("region.detail.reported", _when(d["reported_at"], lang))]
    if kind == "case":
        rows.insert(1, ("region.detail.category", d.get("category_zh") if lang == "zh" else d.get("category_en")))
        deadline = _when(d.get("deadline"), lang) + (f"（{t('region.detail.overdue', lang)}）" if d.get("overdue") else "")
        rows.append(("region.detail.deadline", deadline))
        events = [html.Li([html.Span(_when(e["at"], lang), className="tl-at"), " ",
                           html.B(e["action"]), " ",
                           html.Span(f"{_state_label(e['from_state'], lang) if e.get('from_state') else ''} → "
                                     f"{_state_label(e['to_state'], lang)}"),
                           html.Span(f" · {e['actor']}" if e.get("actor") else ""),
                           html.Span(f" · {e['note']}" if e.get("note") else "")]) for e in d["events"]]
        title = [html.Span(d.get("ref") or f"#{d['id']}", className="muted"), " ", d["title"]]
    else:
        rows.insert(1, ("region.detail.kind", d["kind"]))
        events = [html.Li([html.Span(_when(e["at"], lang), className="tl-at"), " ", html.B(t(f"hevent.{e['action']}", lang))])
                  for e in d["events"]]
        title = [d["title"]]
    return [
        close,
        html.H3(title, id="region-detail-title"),
        html.Dl([item for key, value in rows for item in (html.Dt(t(key, lang)), html.Dd(value))]),
        html.H4(t("region.detail.timeline", lang)),
        html.Ol(events, className="timeline", id="region-detail-timeline"),
    ]


@dash.callback(Output("region-detail", "children"), Output("region-detail", "hidden"),
               Input("region-selected", "data"), Input("shell-lang", "data"))
@db_callback
def show_detail(selected, lang):
    if not selected:
        return "", True
    lang = lang or "zh"
    try:
        with transaction(pool(), readonly=True) as conn:
            fetch = case_detail if selected["kind"] == "case" else hazard_detail
            d = fetch(conn, int(selected["id"]))
        if d and selected["kind"] == "case":
            d = mask(d, session.principal())     # free text masked by capability, as in the API (issue 11)
    except psycopg.Error:
        return html.P(t("state.error.db", lang), className="state-error"), False
    return detail_panel(selected["kind"], jsonable(d) if d else None, lang), False


@dash.callback(Output("region-selected", "data", allow_duplicate=True), Input("region-detail-close", "n_clicks"),
               prevent_initial_call=True)
def close_detail(n):
    return None if n else no_update


def case_register_table(rows: list[dict], lang: str):
    """The register as a table; each title is a button that opens the case's details and timeline."""
    if not rows:
        return html.P(t("region.cases.none", lang), className="muted", id="region-cases-none")
    body = [
        html.Tr([
            html.Td(_when(r["reported_at"], lang), className="muted"),
            html.Td(html.Button(r["title"], id={"type": "region-case-row", "id": r["id"]}, className="link-button", n_clicks=0)),
            html.Td(r.get("village_name") or "—"),
            html.Td(_state_label(r["state"], lang), className="overdue" if r["overdue"] else ""),
        ])
        for r in rows
    ]
    return html.Table(html.Tbody(body), className="ranking-table", id="region-cases-table")


@dash.callback(Output("region-cases", "children"), Input("region-code", "data"), Input("region-case-search", "value"),
               Input("region-cases-live", "data"), Input("shell-lang", "data"), State("shell-versions", "data"))
@db_callback
def render_case_register(code, query, _live, lang, versions):
    lang = lang or "zh"
    try:
        if (query or "").strip():
            with read(want=versions) as conn:
                rows = case_register(conn, code or "62", query)
        else:                   # the unfiltered register: shared like the view (same region, scope, versions)
            rows = shared_read("region-register", code or "62", versions, REGISTER_TABLES,
                               lambda conn: case_register(conn, code or "62"))
        if query and not session.can("read_personal_data"):   # no probing names through the search (issue 11)
            q = query.strip().lower()
            rows = [r for r in rows if q in (r.get("title") or "").lower() or q in (r.get("ref") or "").lower()]
    except psycopg.Error:
        return html.P(t("state.error.db", lang), className="state-error")
    except (LookupError, ValueError):  # unknown or malformed code: the page's own message says so
        return ""
    return case_register_table(jsonable(rows), lang)


@dash.callback(Output("region-selected", "data", allow_duplicate=True),
               Input({"type": "region-case-row", "id": ALL}, "n_clicks"), prevent_initial_call=True)
def open_registered_case(clicks):
    if not ctx.triggered_id or not any(clicks or []):
        return no_update
    return {"kind": "case", "id": int(ctx.triggered_id["id"])}
