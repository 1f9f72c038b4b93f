"""The grid worker's phone page (``/m``): a 360×740 screen, one hand, Chinese first.

The worker's own grid on the map with a position dot (the browser's geolocation; the worker says
whether the phone gives WGS84 — the browser API's datum, the default — or GCJ-02, as some Chinese
phones' location services do; the dot is drawn converted and the server converts the report with
``geo.coords``); a report of a case or a hazard with photos; the one-tap daily all-clear 报平安;
the worker's own tasks (cases handed down to the grid) with deadlines counting down.

The page's actions run in the browser (assets/workbench.js): every report is first kept in the
phone's localStorage with a client_request_id made on the phone, then sent to
``POST /api/v1/m/reports`` and its photos to the attachments route; without a connection it stays
queued and is sent when the ``online`` event comes (or the page opens again) — exactly once,
because the server answers a known client_request_id with the same report.
"""

from __future__ import annotations

import dash
import plotly.graph_objects as go
from dash import Input, Output, dcc, html

from dashboard import session
from dashboard.maps import local_style
from dashboard.workbench_ui import due_span, refusal
from gridwatch import intake, workbench
from gridwatch.db import transaction
from gridwatch.hazards import KIND_NAMES
from gridwatch.i18n import register, t

dash.register_page(__name__, path="/m", name="网格员", nav=False, fullscreen=True, title="网格员 · gridwatch",
                   roles=("grid_worker",), live="mine")

register({
    "m.title": {"zh": "网格员 · {grid}", "en": "Grid worker · {grid}"},
    "m.logout": {"zh": "退出", "en": "Sign out"},
    "m.all_clear": {"zh": "无事报平安", "en": "All clear today"},
    "m.locate": {"zh": "重新定位", "en": "Locate again"},
    "m.datum": {"zh": "手机坐标", "en": "Phone's datum"},
    "m.kind": {"zh": "上报", "en": "Report"},
    "m.kind.case": {"zh": "事件", "en": "Case"},
    "m.kind.hazard": {"zh": "隐患", "en": "Hazard"},
    "m.category": {"zh": "类别", "en": "Category"},
    "m.hazard_kind": {"zh": "隐患类型", "en": "Kind of hazard"},
    "m.what": {"zh": "简要情况", "en": "What"},
    "m.details": {"zh": "详细描述", "en": "Details"},
    "m.photo": {"zh": "拍照 / 选照片", "en": "Take or choose photos"},
    "m.send": {"zh": "上报", "en": "Send report"},
    "m.tasks": {"zh": "我的任务", "en": "My tasks"},
    "m.no_tasks": {"zh": "暂无交办任务", "en": "No tasks"},
    "m.sent": {"zh": "本次已发送", "en": "Sent"},
    "m.position": {"zh": "正在定位…", "en": "Locating…"},
})


def _figure(outline: dict | None) -> go.Figure:
    lon = outline["lon"] if outline else 103.8
    lat = outline["lat"] if outline else 36.06
    fig = go.Figure(go.Scattermap(lon=[], lat=[], mode="markers", name="me", hoverinfo="skip",
                                  marker={"size": 15, "color": "#1f6feb"}))
    span = max((outline["x1"] - outline["x0"]) if outline else 0.05, (outline["y1"] - outline["y0"]) if outline else 0.05)
    zoom = 13 if span < 0.02 else 11 if span < 0.1 else 9 if span < 0.5 else 7
    layers = [{"sourcetype": "geojson", "source": {"type": "Feature", "geometry": outline["geometry"]}, "type": "fill",
               "color": "rgba(31,111,235,0.12)"},
              {"sourcetype": "geojson", "source": {"type": "Feature", "geometry": outline["geometry"]}, "type": "line",
               "color": "#1f6feb", "line": {"width": 2}}] if outline else []
    fig.update_layout(map={"style": local_style(), "center": {"lon": lon, "lat": lat}, "zoom": zoom, "layers": layers},
                      margin={"l": 0, "r": 0, "t": 0, "b": 0}, showlegend=False, uirevision="m")
    return fig


def layout(**_):
    who = session.principal()
    refused = refusal(who, "zh", roles=("grid_worker",))
    if refused is not None:
        return html.Div(refused, className="m-page")
    with transaction(dash.get_app().server.state.pool, readonly=True) as conn:
        outline = workbench.region_outline(conn, who.grid_code)
        tasks = workbench.queue(conn, who)
        cats = list(intake.categories(conn).values())
    lang = "zh"
    tasks_list = [html.Li([dcc.Link(f"{r['ref']} {r['title']}", href=f"/workbench/case/{r['id']}"), html.Br(),
                           due_span(r["due"], overdue=r["overdue"])], id=f"m-task-{r['id']}") for r in tasks]
    return html.Div([
        dcc.Store(id="m-cats", data=[{"code": c["code"], "zh": c["name_zh"], "en": c["name_en"]} for c in cats]),
        html.Div([
            html.H2(t("m.title", lang, grid=outline["name"] if outline else who.grid_code), id="m-heading"),
            html.Button(t("lang.switch", lang), id="m-lang", className="button small", type="button", n_clicks=0),
            html.Span(who.username, className="muted", id="m-user"),
            html.Form(html.Button(t("m.logout", lang), className="button small", type="submit"), method="post", action="/logout"),
        ], className="m-head"),
        html.Button(t("m.all_clear", lang), id="m-all-clear", className="m-big m-clear", type="button"),
        html.Div(id="m-status", className="m-status", role="status", **{"aria-live": "polite"}),
        html.Div(id="m-pending", className="m-pending", hidden=True),
        dcc.Graph(id="m-map", figure=_figure(outline), className="m-map", config={"displayModeBar": False, "scrollZoom": True}),
        html.Div([html.Span(t("m.position", lang), id="m-position", className="muted"),
                  dcc.RadioItems(id="m-datum", options=[{"label": "WGS84", "value": "wgs84"}, {"label": "GCJ-02", "value": "gcj02"}],
                                 value="wgs84", inline=True, className="m-radio")]),
        html.Button(t("m.locate", lang), id="m-locate", className="m-big m-locate", type="button"),
        html.Div([
            html.Label(t("m.kind", lang), id="m-l-kind"),
            dcc.RadioItems(id="m-kind", options=[{"label": t("m.kind.case", lang), "value": "case"},
                                                 {"label": t("m.kind.hazard", lang), "value": "hazard"}],
                           value="case", inline=True, className="m-radio"),
            html.Div([html.Label(t("m.category", lang), id="m-l-category", htmlFor="m-category"),
                      html.Select([html.Option(c["name_zh"], value=c["code"]) for c in cats], id="m-category")],
                     id="m-category-row"),
            html.Div([html.Label(t("m.hazard_kind", lang), id="m-l-hazard", htmlFor="m-hazard-kind"),
                      html.Select([html.Option(v, value=k) for k, v in KIND_NAMES.items()], id="m-hazard-kind")],
                     id="m-hazard-row", hidden=True),
            html.Label(t("m.what", lang), id="m-l-what", htmlFor="m-title"),
            dcc.Input(id="m-title", type="text", maxLength=200),
            html.Label(t("m.details", lang), id="m-l-details", htmlFor="m-description"),
            dcc.Textarea(id="m-description", maxLength=4000, style={"width": "100%", "height": "70px"}),
            html.Label(t("m.photo", lang), id="m-l-photo", htmlFor="m-photo"),
            html.Div(id="m-photo-box"),
            html.Button(t("m.send", lang), id="m-report", className="m-big m-send", type="button"),
        ], className="m-form"),
        html.H3(t("m.tasks", lang), id="m-l-tasks"),
        html.Ul(tasks_list, className="m-tasks", id="m-tasks") if tasks_list else html.P(t("m.no_tasks", lang), className="muted"),
        html.H3(t("m.sent", lang), id="m-l-sent"), html.Ul(id="m-sent"),
    ], className="m-page", id="m-page")


# dcc.Input has no type=file: the photo picker is a plain <input type=file> put in place in the browser.
dash.clientside_callback(
    """function(id) {
        var box = document.getElementById('m-photo-box');
        if (box && !document.getElementById('m-photo')) {
            var input = document.createElement('input');
            input.type = 'file'; input.id = 'm-photo'; input.accept = 'image/*'; input.multiple = true;
            input.setAttribute('capture', 'environment');
            box.appendChild(input);
        }
        return '';
    }""",
    Output("m-photo-box", "title"), Input("m-page", "id"))


dash.clientside_callback("function(n, lang) { return n ? (lang === 'en' ? 'zh' : 'en') : window.dash_clientside.no_update; }",
                         Output("shell-lang", "data", allow_duplicate=True), Input("m-lang", "n_clicks"), dash.State("shell-lang", "data"),
                         prevent_initial_call=True)


@dash.callback(Output("m-lang", "children"), Output("m-all-clear", "children"), Output("m-locate", "children"),
               Output("m-report", "children"), Output("m-l-kind", "children"), Output("m-kind", "options"),
               Output("m-l-category", "children"), Output("m-l-hazard", "children"), Output("m-l-what", "children"),
               Output("m-l-details", "children"), Output("m-l-photo", "children"), Output("m-l-tasks", "children"),
               Output("m-l-sent", "children"), Output("m-category", "children"), Output("m-hazard-kind", "children"),
               Input("shell-lang", "data"), dash.State("m-cats", "data"))
def relabel(lang, cats):
    lang = lang if lang in ("zh", "en") else "zh"
    kinds = [{"label": t("m.kind.case", lang), "value": "case"}, {"label": t("m.kind.hazard", lang), "value": "hazard"}]
    options = [html.Option(c["zh"] if lang == "zh" else c["en"], value=c["code"]) for c in cats or []]
    hazards = [html.Option(v if lang == "zh" else k.replace("_", " "), value=k) for k, v in KIND_NAMES.items()]
    return (t("lang.switch", lang), t("m.all_clear", lang), t("m.locate", lang), t("m.send", lang), t("m.kind", lang), kinds,
            t("m.category", lang), t("m.hazard_kind", lang), t("m.what", lang), t("m.details", lang), t("m.photo", lang),
            t("m.tasks", lang), t("m.sent", lang), options, hazards)
