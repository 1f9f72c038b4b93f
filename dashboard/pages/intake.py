"""Window intake (统一受理, ``/intake``): an operator registers a walk-in, a telephone call or a 12345
hotline referral. Category with search (the grade it suggests is preselected); the place by
clicking the map or by an address matched against region names (``workbench.match_places``, no
outside geocoder); the reporter and other parties with their contact; attachments; the same
category's cases nearby are listed before saving as possible duplicates. Saving goes through the
one intake (``gridwatch.intake.create_case``, idempotent on a request id made when the form opened,
so a double click registers once) at the operator's level, and shows a receipt (case number,
deadline for a first answer) that prints on its own.
"""

from __future__ import annotations

import base64
import uuid

import dash
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html, no_update

from dashboard import session
from dashboard.maps import local_style
from dashboard.util import db_callback
from dashboard.workbench_ui import refusal
from gridwatch import attachments, intake, workbench
from gridwatch.db import transaction
from gridwatch.errors import DomainError
from gridwatch.i18n import fmt_datetime, register, t
from gridwatch.reports import local_time

dash.register_page(__name__, path="/intake", name="窗口受理", nav_key="nav.intake", order=15, title="窗口受理 · gridwatch",
                   roles=("operator",), live="mine")

CHANNELS = (("window", "intake.ch.window"), ("hotline", "intake.ch.phone"), ("referral", "intake.ch.12345"),
            ("petition", "intake.ch.petition"), ("grid_worker", "intake.ch.grid"))
PARTY_ROLES = ("applicant", "respondent", "third")

register({
    "nav.intake": {"zh": "窗口受理", "en": "Intake"},
    "intake.title": {"zh": "统一受理 · 窗口登记", "en": "Window intake"},
    "intake.channel": {"zh": "来源", "en": "Channel"},
    "intake.ch.window": {"zh": "窗口来访", "en": "Walk-in"},
    "intake.ch.phone": {"zh": "来电", "en": "Telephone"},
    "intake.ch.12345": {"zh": "12345 热线", "en": "12345 hotline"},
    "intake.ch.petition": {"zh": "信访转办", "en": "From the petitions bureau"},
    "intake.ch.grid": {"zh": "网格员上报", "en": "From a grid worker"},
    "intake.category": {"zh": "类别（可输入搜索）", "en": "Category (type to search)"},
    "intake.grade": {"zh": "等级（按类别建议）", "en": "Grade (suggested by the category)"},
    "intake.subject": {"zh": "事由（标题）", "en": "Subject"},
    "intake.description": {"zh": "详细情况", "en": "Details"},
    "intake.address": {"zh": "地址（按区划名称匹配，如“新墩镇 浅河村”）", "en": "Address (matched against region names)"},
    "intake.match": {"zh": "匹配地址", "en": "Find"},
    "intake.matches": {"zh": "匹配的地点", "en": "Matching places"},
    "intake.nomatch": {"zh": "没有匹配的区划名称，请在地图上点选。", "en": "No region name matches: click the map instead."},
    "intake.place": {"zh": "位置：{place}（{lon:.5f}, {lat:.5f}）", "en": "Place: {place} ({lon:.5f}, {lat:.5f})"},
    "intake.noplace": {"zh": "尚未选定位置：匹配地址或在地图上点击。", "en": "No place yet: find the address or click the map."},
    "intake.reporter": {"zh": "反映人", "en": "Reporter"},
    "intake.phone": {"zh": "联系电话", "en": "Phone"},
    "intake.party": {"zh": "其他当事人 {n}", "en": "Other party {n}"},
    "intake.party.name": {"zh": "姓名/单位", "en": "Name or body"},
    "intake.party.contact": {"zh": "联系方式", "en": "Contact"},
    "intake.role.applicant": {"zh": "申请人", "en": "applicant"},
    "intake.role.respondent": {"zh": "被申请人", "en": "respondent"},
    "intake.role.third": {"zh": "第三人", "en": "third party"},
    "intake.files": {"zh": "附件：拖入或点击添加照片、材料（JPEG/PNG/WebP/PDF）", "en": "Attachments: drop or click (JPEG/PNG/WebP/PDF)"},
    "intake.files.n": {"zh": "已选 {n} 个附件", "en": "{n} file(s) chosen"},
    "intake.dups": {"zh": "附近同类案件（可能重复）：", "en": "Same category nearby (possible duplicates):"},
    "intake.save": {"zh": "登记并出具回执", "en": "Register and print a receipt"},
    "intake.need": {"zh": "请填写：{what}", "en": "Please give: {what}"},
    "intake.receipt": {"zh": "受理回执", "en": "Receipt"},
    "intake.r.ref": {"zh": "案件编号", "en": "Case number"},
    "intake.r.when": {"zh": "登记时间", "en": "Registered"},
    "intake.r.respond": {"zh": "首次答复期限", "en": "First answer by"},
    "intake.r.centre": {"zh": "受理单位", "en": "Registered by"},
    "intake.r.note": {"zh": "请凭案件编号查询办理进度。", "en": "Quote the case number to ask about progress."},
    "intake.print": {"zh": "打印回执", "en": "Print the receipt"},
    "intake.open": {"zh": "打开案件办理", "en": "Open the case"},
})


def _map(lon=None, lat=None, bounds=None) -> go.Figure:
    fig = go.Figure(go.Scattermap(lon=[lon] if lon is not None else [], lat=[lat] if lat is not None else [], mode="markers",
                                  marker={"size": 16, "color": "#b91c1c"}, name="place", hoverinfo="skip"))
    view = {"style": local_style(), "zoom": 9}
    if lon is not None:
        view.update(center={"lon": lon, "lat": lat}, zoom=12)
    elif bounds:
        view.update(center={"lon": (bounds[0] + bounds[2]) / 2, "lat": (bounds[1] + bounds[3]) / 2}, zoom=8)
    fig.update_layout(map=view, margin={"l": 0, "r": 0, "t": 0, "b": 0}, showlegend=False, uirevision="intake")
    return fig


def layout(**_):
    who = session.principal()
    refused = refusal(who, "zh", roles=("operator",))
    if refused is not None:
        return html.Div(refused, className="wb-page")
    with transaction(dash.get_app().server.state.pool, readonly=True) as conn:
        cats = list(intake.categories(conn).values())
        outline = workbench.region_outline(conn, who.region_code)
    fig = _map(bounds=(outline["x0"], outline["y0"], outline["x1"], outline["y1"]) if outline else None)
    if outline:
        fig.update_layout(map={"layers": [{"sourcetype": "geojson", "source": {"type": "Feature", "geometry": outline["geometry"]},
                                           "type": "line", "color": "#1f6feb", "line": {"width": 2}}]})
    parties = [html.Div([
        html.Label(id=f"intake-l-party-{k}"),
        html.Div([dcc.Input(id=f"intake-party-name-{k}", type="text"), dcc.Input(id=f"intake-party-contact-{k}", type="text")],
                 className="intake-row"),
        dcc.RadioItems(id=f"intake-party-role-{k}", value="respondent", inline=True),
    ]) for k in range(2)]
    return html.Div([
        dcc.Store(id="intake-cats", data={c["code"]: {"zh": c["name_zh"], "en": c["name_en"], "grade": c["default_grade"],
                                                      "hours": c["time_limit_hours"]} for c in cats}),
        dcc.Store(id="intake-point"), dcc.Store(id="intake-click"), dcc.Store(id="intake-files", data=[]),
        dcc.Store(id="intake-request", data=f"window:{who.user_id}:{uuid.uuid4()}"),
        html.Div([
            html.H2(id="intake-title", className="wb-title"),
            html.Label(id="intake-l-channel"), dcc.RadioItems(id="intake-channel", value="window", inline=True, className="m-radio"),
            html.Label(id="intake-l-category"), dcc.Dropdown(id="intake-category", searchable=True, clearable=False),
            html.Label(id="intake-l-grade"), dcc.RadioItems(id="intake-grade", inline=True, className="m-radio"),
            html.Label(id="intake-l-subject"), dcc.Input(id="intake-subject", type="text", maxLength=200),
            html.Label(id="intake-l-description"), dcc.Textarea(id="intake-description", maxLength=4000, style={"height": "90px"}),
            html.Label(id="intake-l-address"),
            html.Div([dcc.Input(id="intake-address", type="text", maxLength=100, debounce=True),
                      html.Button(id="intake-match", n_clicks=0, className="button")], className="intake-row"),
            dcc.RadioItems(id="intake-matches", options=[], className="intake-matches"),
            html.P(id="intake-place", role="status"),
            html.Div([html.Div([html.Label(id="intake-l-reporter"), dcc.Input(id="intake-reporter", type="text", maxLength=100)]),
                      html.Div([html.Label(id="intake-l-phone"), dcc.Input(id="intake-phone", type="text", maxLength=40)])],
                     className="intake-row"),
            *parties,
            dcc.Upload(id="intake-upload", multiple=True, className="case-upload", children=html.Div(id="intake-upload-label")),
            html.Div(id="intake-dups", className="intake-dups", hidden=True, role="status"),
            html.Button(id="intake-save", n_clicks=0, className="button", style={"marginTop": "12px"}),
            html.Div(id="intake-message", role="alert", className="wb-message"),
        ], className="intake-form"),
        html.Div([
            dcc.Graph(id="intake-map", figure=fig, className="intake-map", config={"displayModeBar": False}),
            html.Div(id="intake-receipt-box"),
        ]),
    ], className="wb-page intake-page", id="intake-page")


@dash.callback(Output("intake-title", "children"), Output("intake-l-channel", "children"), Output("intake-channel", "options"),
               Output("intake-l-category", "children"), Output("intake-category", "options"), Output("intake-l-grade", "children"),
               Output("intake-l-subject", "children"), Output("intake-l-description", "children"),
               Output("intake-l-address", "children"), Output("intake-match", "children"), Output("intake-l-reporter", "children"),
               Output("intake-l-phone", "children"), *[Output(f"intake-l-party-{k}", "children") for k in range(2)],
               *[Output(f"intake-party-role-{k}", "options") for k in range(2)],
               *[Output(f"intake-party-name-{k}", "placeholder") for k in range(2)],
               *[Output(f"intake-party-contact-{k}", "placeholder") for k in range(2)],
               Output("intake-save", "children"),
               Input("shell-lang", "data"), State("intake-cats", "data"))
def label(lang, cats):
    zh = lang == "zh"
    cat_opts = [{"label": f"{v['zh']} · {v['en']}" if zh else f"{v['en']} · {v['zh']}", "value": k} for k, v in (cats or {}).items()]
    roles = [{"label": t(f"intake.role.{r}", lang), "value": r} for r in PARTY_ROLES]
    return (t("intake.title", lang), t("intake.channel", lang), [{"label": t(k, lang), "value": v} for v, k in CHANNELS],
            t("intake.category", lang), cat_opts, t("intake.grade", lang), t("intake.subject", lang), t("intake.description", lang),
            t("intake.address", lang), t("intake.match", lang), t("intake.reporter", lang), t("intake.phone", lang),
            *[t("intake.party", lang, n=k + 1) for k in range(2)], roles, roles,
            *[t("intake.party.name", lang)] * 2, *[t("intake.party.contact", lang)] * 2, t("intake.save", lang))


@dash.callback(Output("intake-grade", "options"), Output("intake-grade", "value"), Input("intake-category", "value"),
               Input("shell-lang", "data"), State("intake-cats", "data"))
def suggest_grade(category, lang, cats):
    zh = lang == "zh"
    names = {"red": ("红色", "red"), "orange": ("橙色", "orange"), "yellow": ("黄色", "yellow")}
    options = [{"label": v[0 if zh else 1], "value": k} for k, v in names.items()]
    return options, (cats or {}).get(category, {}).get("grade", "yellow")


@dash.callback(Output("intake-matches", "options"), Output("intake-message", "children", allow_duplicate=True),
               Input("intake-match", "n_clicks"), Input("intake-address", "value"), State("shell-lang", "data"),
               prevent_initial_call=True)
@db_callback
def match(_, address, lang):
    if not (address or "").strip():
        return [], ""
    who = session.principal()
    with transaction(dash.get_app().server.state.pool, readonly=True) as conn:
        found = workbench.match_places(conn, address, within=who.region_code[:6] if who and who.region_code else None)
    if not found:
        return [], t("intake.nomatch", lang)
    return [{"label": f"{f['parents'] or ''} {f['name']}".strip(), "value": f"{f['lon']},{f['lat']},{f['code']}"} for f in found], ""


@dash.callback(Output("intake-point", "data"), Input("intake-matches", "value"), Input("intake-click", "data"),
               prevent_initial_call=True)
def choose_point(matched, clicked):
    if dash.ctx.triggered_id == "intake-click" and clicked:
        return {"lon": clicked["lon"], "lat": clicked["lat"]}
    if matched:
        lon, lat, _code = matched.split(",")
        return {"lon": float(lon), "lat": float(lat)}
    return no_update


@dash.callback(Output("intake-place", "children"), Output("intake-map", "figure"), Output("intake-dups", "children"),
               Output("intake-dups", "hidden"),
               Input("intake-point", "data"), Input("intake-category", "value"), Input("shell-lang", "data"),
               State("intake-map", "figure"))
@db_callback
def show_place(point, category, lang, figure):
    if not point:
        return t("intake.noplace", lang), no_update, [], True
    with transaction(dash.get_app().server.state.pool, readonly=True) as conn:
        codes = intake.stamp_point(conn, point["lon"], point["lat"])
        place = workbench.place_names(conn, codes) or "—"
        dups = workbench.nearby_cases(conn, category, point["lon"], point["lat"]) if category else []
    fig = go.Figure(figure)
    fig.data[0].lon, fig.data[0].lat = [point["lon"]], [point["lat"]]
    items = [html.Li([dcc.Link(d["ref"], href=f"/workbench/case/{d['id']}"), f" {d['title']} · {d['metres']} m · ",
                      fmt_datetime(local_time(d["reported_at"]), lang)], className="intake-dup") for d in dups]
    return (t("intake.place", lang, place=place, lon=point["lon"], lat=point["lat"]), fig,
            [html.B(t("intake.dups", lang)), html.Ul(items, id="intake-dup-list")], not dups)


@dash.callback(Output("intake-files", "data"), Output("intake-upload-label", "children"), Input("intake-upload", "contents"),
               State("intake-upload", "filename"), Input("shell-lang", "data"))
def files(contents, names, lang):
    chosen = [{"name": n, "data": c} for c, n in zip(contents or [], names or [])]
    return chosen, t("intake.files.n", lang, n=len(chosen)) if chosen else t("intake.files", lang)


@dash.callback(Output("intake-receipt-box", "children"), Output("intake-message", "children"),
               Output("intake-request", "data"), Input("intake-save", "n_clicks"),
               State("intake-request", "data"), State("intake-channel", "value"), State("intake-category", "value"),
               State("intake-grade", "value"), State("intake-subject", "value"), State("intake-description", "value"),
               State("intake-point", "data"), State("intake-address", "value"), State("intake-reporter", "value"),
               State("intake-phone", "value"),
               *[State(f"intake-party-{x}-{k}", "value") for k in range(2) for x in ("name", "contact", "role")],
               State("intake-files", "data"), State("shell-lang", "data"), prevent_initial_call=True)
@db_callback
def save(n, request_id, channel, category, grade, subject, description, point, address, reporter, phone, *rest):
    *party_values, chosen, lang = rest
    if not n:
        return no_update, no_update, no_update
    missing = [t(k, lang) for k, v in (("intake.category", category), ("intake.address", point), ("intake.reporter", reporter))
               if not v]
    if missing:
        return no_update, html.Span(t("intake.need", lang, what="、".join(missing) if lang == "zh" else ", ".join(missing)),
                                    className="wb-error", id="intake-error"), no_update
    parties = [{"role": "applicant", "name": reporter, "contact": phone}]
    for k in range(2):
        name, contact, role = party_values[3 * k: 3 * k + 3]
        if (name or "").strip():
            parties.append({"role": role or "respondent", "name": name.strip(), "contact": (contact or "").strip() or None})
    who = session.principal()
    level = workbench.operator_level(who.region_code)
    description = (description or "").strip() or None
    if channel == "referral":
        description = "【12345 热线转办】" + (description or "")
    item = {"category": category, "lon": point["lon"], "lat": point["lat"], "channel": channel, "grade": grade,
            "title": (subject or "").strip() or None, "description": description, "reporter_name": reporter.strip(),
            "reporter_phone": (phone or "").strip() or None, "parties": parties[1:], "address": (address or "").strip() or None,
            "handling_level": level, "client_request_id": request_id}
    try:
        with transaction(dash.get_app().server.state.pool) as conn:
            case, _created = intake.create_case(conn, item, actor=who.username)
            for f in chosen or []:
                raw = base64.b64decode(f["data"].split(",", 1)[1]) if "," in f["data"] else b""
                attachments.add(conn, raw, filename=f["name"], uploaded_by=who.username, case_id=case["id"])
            place = workbench.place_names(conn, case)
    except DomainError as exc:
        return no_update, html.Span((exc.message_zh or exc.message) if lang == "zh" else exc.message, className="wb-error",
                                    id="intake-error"), no_update
    rows = [("intake.r.ref", html.B(case["ref"], id="intake-receipt-ref")), ("intake.r.when", fmt_datetime(local_time(case["reported_at"]), lang)),
            ("intake.r.respond", html.B(fmt_datetime(local_time(case["respond_by"]), lang), id="intake-receipt-respond")),
            ("case.place", place), ("intake.reporter", reporter), ("intake.r.centre", who.username)]
    receipt = html.Div([
        html.H3(t("intake.receipt", lang)),
        html.Dl([x for k, v in rows for x in (html.Dt(t(k, lang)), html.Dd(v))], className="case-facts"),
        html.P(t("intake.r.note", lang), className="muted"),
        html.Button(t("intake.print", lang), id="intake-print", n_clicks=0, className="button"), " ",
        dcc.Link(t("intake.open", lang), href=f"/workbench/case/{case['id']}", id="intake-open-case"),
    ], id="intake-receipt", className="intake-receipt")
    return receipt, "", f"window:{who.user_id}:{uuid.uuid4()}"   # the next registration gets its own id


dash.clientside_callback("function(n) { if (n) { window.print(); } return ''; }",
                         Output("intake-message", "title"), Input("intake-print", "n_clicks"), prevent_initial_call=True)
