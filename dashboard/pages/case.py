"""A case on the workbench (``/workbench/case/<id>``): the place on a map, the timeline, attachments,
parties by role, the departments convened, and every action the lifecycle allows the signed-in user
now (``gridwatch.workbench.actions_for``) as a button that opens the form the action needs:
dispatch to a department serving the place (the category's time limit by default), return with a
reason, request/approve/deny an extension, escalate or hand down with instructions and a deadline,
report the result up (the centre a case was handed down to), mediation of
each of the three kinds with outcome and agreement, verify, rework, visit with satisfaction, merge a
duplicate, convene departments (a lead and co-handlers, each with its part and hours), a
department's report-in and finished part, a grid worker's follow-up check. Photos and documents
are added with the upload box (stored by ``gridwatch.attachments``).
"""

from __future__ import annotations

import base64

import dash
import plotly.graph_objects as go
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update

from dashboard import session
from dashboard.maps import local_style
from dashboard.util import db_callback
from dashboard.workbench_ui import refusal
from gridwatch import attachments, workbench
from gridwatch.cases import MEDIATION_KINDS, STATE_NAMES
from gridwatch.db import transaction
from gridwatch.errors import DomainError
from gridwatch.hazards import KIND_NAMES
from gridwatch.i18n import fmt_datetime, register, t
from gridwatch.reports import local_time

dash.register_page(__name__, path_template="/workbench/case/<case_id>", name="案件办理", nav=False,
                   title="案件办理 · gridwatch", roles=("operator", "department", "grid_worker"),
                   live="mine")

# Which inputs each action's form shows.
FORM = {
    "reject": ("note",), "merge": ("duplicate_of", "note"), "dispatch": ("department", "hours", "note"),
    "return": ("note",), "feedback": ("note", "resolved"), "verify": ("note",), "rework": ("note",),
    "request_extension": ("hours", "note"), "approve_extension": ("note",), "deny_extension": ("note",),
    "escalate": ("note",), "hand_down": ("level", "hours", "note"), "report_up": ("note", "resolved"), "park": ("note",), "visit": ("satisfaction", "note"),
    "mediate": ("kind", "mediator", "note"), "mediation_result": ("outcome", "agreement", "note"),
    "convene": ("convene", "note"), "decline": ("note",), "part_done": ("note",), "report_in": ("note",),
    "follow_up": ("note",), "accept": ("note",), "start": ("note",), "resume": ("note",),
    "register_hazard": ("hazard_kind", "hazard_title", "deadline_days", "owner", "note"), "close_out_hazard": ("hazard", "note"),
}
FIELDS = ("note", "department", "hours", "level", "kind", "mediator", "outcome", "agreement", "satisfaction",
          "duplicate_of", "resolved", "hazard_kind", "hazard_title", "deadline_days", "owner", "hazard", "convene")
CO_ROWS = 3
LEVEL_NAMES = {"village": ("村（社区）", "village"), "township": ("乡镇（街道）", "township"), "county": ("县（区）", "county"),
               "prefecture": ("市（州）", "prefecture")}

register({
    "case.back": {"zh": "← 返回工作台", "en": "← Back to the workbench"},
    "case.place": {"zh": "地点", "en": "Place"},
    "case.category": {"zh": "类别", "en": "Category"},
    "case.channel": {"zh": "来源", "en": "Channel"},
    "case.reported": {"zh": "登记时间", "en": "Registered"},
    "case.level": {"zh": "办理层级", "en": "Handling level"},
    "case.department": {"zh": "承办部门", "en": "Department"},
    "case.deadline": {"zh": "办理期限", "en": "Deadline"},
    "case.state": {"zh": "状态", "en": "State"},
    "case.parties": {"zh": "当事人", "en": "Parties"},
    "case.timeline": {"zh": "办理记录", "en": "Timeline"},
    "case.attachments": {"zh": "附件", "en": "Attachments"},
    "case.upload": {"zh": "拖入或点击上传照片、文件（JPEG/PNG/WebP/PDF，≤10 MB）",
                    "en": "Drop or click to add photos or documents (JPEG/PNG/WebP/PDF, ≤10 MB)"},
    "case.uploaded": {"zh": "已上传 {n} 个附件", "en": "{n} attachment(s) added"},
    "case.convened": {"zh": "一吹哨 · 部门报到", "en": "Convened departments"},
    "case.actions": {"zh": "可执行的操作", "en": "Actions you can take now"},
    "case.no_actions": {"zh": "当前没有您可执行的操作。", "en": "Nothing for you to do on this case now."},
    "case.submit": {"zh": "提交", "en": "Submit"},
    "case.done": {"zh": "已{action}", "en": "{action}: done"},
    "case.f.note": {"zh": "说明 / 理由 / 指示", "en": "Note / reason / instructions"},
    "case.f.department": {"zh": "承办部门（服务该地的部门）", "en": "Department (serving this place)"},
    "case.f.hours": {"zh": "时限（小时，空则按类别时限）", "en": "Time limit (hours; empty: the category's)"},
    "case.f.level": {"zh": "交办至", "en": "Hand down to"},
    "case.f.report_hours": {"zh": "办理时限（小时，到期前上报结果）", "en": "Deadline (hours) for the report back"},
    "case.f.kind": {"zh": "调解类型", "en": "Kind of mediation"},
    "case.f.mediator": {"zh": "调解组织 / 调解员", "en": "Mediator"},
    "case.f.outcome": {"zh": "调解结果", "en": "Outcome"},
    "case.f.agreed": {"zh": "达成协议", "en": "Agreed"},
    "case.f.failed": {"zh": "调解不成", "en": "Failed"},
    "case.f.agreement": {"zh": "协议内容 / 承诺", "en": "Agreement / commitment"},
    "case.f.satisfaction": {"zh": "满意度", "en": "Satisfaction"},
    "case.f.duplicate_of": {"zh": "原案件编号（id）", "en": "Original case (id)"},
    "case.f.resolved": {"zh": "已化解", "en": "Resolved"},
    "case.f.hazard_kind": {"zh": "隐患类型", "en": "Kind of hazard"},
    "case.f.hazard_title": {"zh": "隐患名称", "en": "Hazard"},
    "case.f.deadline_days": {"zh": "整改期限（天）", "en": "Days to rectify"},
    "case.f.owner": {"zh": "整改责任部门", "en": "Department that must fix it"},
    "case.f.hazard": {"zh": "销号的隐患", "en": "Hazard to close out"},
    "case.hazards": {"zh": "隐患", "en": "Hazards"},
    "case.upload_to": {"zh": "附件归属", "en": "Attach to"},
    "case.this_case": {"zh": "本案件", "en": "this case"},
    "case.f.lead": {"zh": "牵头部门", "en": "Lead department"},
    "case.f.co": {"zh": "协办部门 {n}", "en": "Co-handler {n}"},
    "case.f.part": {"zh": "分工", "en": "Part"},
    "case.f.part_hours": {"zh": "时限（小时）", "en": "Hours"},
    "case.reporter": {"zh": "反映人", "en": "Reporter"},
    "case.party": {"zh": "当事人", "en": "Party"},
    "case.a.lead": {"zh": "牵头", "en": "lead"},
    "case.a.co": {"zh": "协办", "en": "co-handler"},
    "case.a.state.convened": {"zh": "已召集", "en": "convened"},
    "case.a.state.reported_in": {"zh": "已报到", "en": "reported in"},
    "case.a.state.done": {"zh": "已完成", "en": "done"},
    "case.a.state.declined": {"zh": "已退回", "en": "declined"},
    "case.channel.window": {"zh": "窗口来访", "en": "walk-in"},
    "case.channel.hotline": {"zh": "电话", "en": "telephone"},
    "case.channel.referral": {"zh": "12345 热线转办", "en": "12345 hotline"},
    "case.channel.petition": {"zh": "信访转办", "en": "petitions bureau"},
    "case.channel.grid_worker": {"zh": "网格员上报", "en": "grid worker"},
    "case.channel.online": {"zh": "网上", "en": "online"},
    "case.channel.open311": {"zh": "Open311", "en": "Open311"},
    "case.channel.simulator": {"zh": "模拟", "en": "simulator"},
    "case.missing": {"zh": "案件 {id} 不存在或不在您的辖区。", "en": "Case {id} does not exist or is outside your area."},
})


def layout(case_id: str | None = None, **_):
    who = session.principal()
    refused = refusal(who, "zh")
    if refused is not None:
        return html.Div(refused, className="wb-page")
    try:
        cid = int(case_id)
    except (TypeError, ValueError):
        cid = 0
    return html.Div([
        dcc.Store(id="case-id", data=cid),
        dcc.Store(id="case-action", data=None),
        dcc.Store(id="case-refresh", data=0),
        dcc.Link(id="case-back", href="/workbench", className="wb-back"),
        html.Div(id="case-body"),
        html.Div([
            html.H3(id="case-actions-title", className="panel-title"),
            html.Div(id="case-actions", className="case-actions"),
            html.Div(_form(), id="case-form", className="case-form", hidden=True),
            html.Div(id="case-message", role="alert", className="wb-message"),
            html.H3(id="case-attach-title", className="panel-title"),
            html.Label([html.Span(id="case-l-upload-to", className="muted"),
                        dcc.Dropdown(id="case-upload-to", value="case", clearable=False, className="case-dd",
                                     options=[{"label": "本案件", "value": "case"}])]),
            dcc.Upload(id="case-upload", multiple=True, className="case-upload", children=html.Div(id="case-upload-label")),
        ], className="case-side", id="case-side"),
    ], className="wb-page case-page")


def _field(name: str, control, hidden=True):
    return html.Label([html.Span(id=f"case-l-{name}"), control], className=f"case-field case-field-{name}",
                      id=f"case-field-{name}", hidden=hidden)


def _form():
    co = []
    for k in range(CO_ROWS):
        co.append(html.Div([
            html.Span(id=f"case-l-co-{k}", className="muted"),
            dcc.Dropdown(id=f"case-co-dept-{k}", className="case-dd"),
            dcc.Input(id=f"case-co-part-{k}", type="text", className="case-in"),
            dcc.Input(id=f"case-co-hours-{k}", type="number", min=1, max=2160, className="case-hours"),
        ], className="case-co"))
    return [
        html.H4(id="case-form-title"),
        _field("department", dcc.Dropdown(id="case-department", className="case-dd")),
        _field("hours", dcc.Input(id="case-hours", type="number", min=1, max=2160)),
        _field("level", dcc.Dropdown(id="case-level", className="case-dd", clearable=False)),
        _field("kind", dcc.RadioItems(id="case-kind", options=[{"label": v, "value": k} for k, v in MEDIATION_KINDS.items()],
                                      value="people", inline=True)),
        _field("mediator", dcc.Input(id="case-mediator", type="text", className="case-in")),
        _field("outcome", dcc.RadioItems(id="case-outcome", value="agreed", inline=True)),
        _field("agreement", dcc.Textarea(id="case-agreement", className="case-text")),
        _field("satisfaction", dcc.RadioItems(id="case-satisfaction", options=[{"label": str(n), "value": n} for n in range(1, 6)],
                                              value=5, inline=True)),
        _field("duplicate_of", dcc.Input(id="case-duplicate", type="number", min=1)),
        _field("resolved", dcc.Checklist(id="case-resolved", options=[{"label": "", "value": "yes"}], value=["yes"], inline=True)),
        _field("hazard_kind", dcc.Dropdown(id="case-hazard-kind", options=[{"label": v, "value": k} for k, v in KIND_NAMES.items()],
                                           value="power_line", clearable=False, className="case-dd")),
        _field("hazard_title", dcc.Input(id="case-hazard-title", type="text", maxLength=200, className="case-in")),
        _field("deadline_days", dcc.Input(id="case-deadline-days", type="number", min=1, max=3650, value=15)),
        _field("owner", dcc.Dropdown(id="case-owner", className="case-dd")),
        _field("hazard", dcc.Dropdown(id="case-hazard", className="case-dd")),
        html.Div([
            html.Span(id="case-l-lead", className="muted"),
            dcc.Dropdown(id="case-lead-dept", className="case-dd"),
            dcc.Input(id="case-lead-part", type="text", className="case-in"),
            dcc.Input(id="case-lead-hours", type="number", min=1, max=2160, className="case-hours"),
            *co,
        ], id="case-field-convene", className="case-field case-convene", hidden=True),
        _field("note", dcc.Textarea(id="case-note", className="case-text"), hidden=False),
        html.Button(id="case-submit", n_clicks=0, className="button"),
    ]


def _when(value, lang):
    return fmt_datetime(local_time(value), lang) if value else "—"


def _map(case: dict) -> go.Figure:
    fig = go.Figure(go.Scattermap(lon=[case["lon"]], lat=[case["lat"]], mode="markers",
                                  marker={"size": 16, "color": "#b91c1c"}, hoverinfo="skip"))
    fig.update_layout(map={"style": local_style(), "center": {"lon": case["lon"], "lat": case["lat"]}, "zoom": 11},
                      margin={"l": 0, "r": 0, "t": 0, "b": 0}, height=220, showlegend=False)
    return fig


def _body(d: dict, lang: str, place: str, outline: dict | None):
    c = d["case"]
    zh = lang == "zh"
    cat = d["category"].get("name_zh" if zh else "name_en", c["category_code"])
    rows = [("case.state", STATE_NAMES.get(c["state"], c["state"]) if zh else c["state"]),
            ("case.category", cat), ("case.channel", t(f"case.channel.{c['channel']}", lang)),
            ("case.place", place + (f"（{c['address']}）" if c.get("address") else "")),
            ("case.reported", _when(c["reported_at"], lang)),
            ("case.level", LEVEL_NAMES.get(c["handling_level"], (c["handling_level"],) * 2)[0 if zh else 1]),
            ("case.department", d.get("department_name") or "—"),
            ("case.deadline", _when(c["deadline"] or c["respond_by"], lang))]
    fig = _map(c)
    if outline:
        fig.update_layout(map={"layers": [{"sourcetype": "geojson", "source": {"type": "Feature", "geometry": outline["geometry"]},
                                           "type": "line", "color": "#1f6feb", "line": {"width": 2}}]})
    def role(r):
        key = {"reporter": "case.reporter", "party": "case.party"}.get(r, f"intake.role.{r}")
        return t(key, lang) if t(key, lang) != key else r

    parties = [html.Li([html.B(role(p["role"])), " ", p.get("name") or "", " ", html.Span(p.get("contact") or "", className="muted")])
               for p in d["parties"]]
    timeline = [html.Li([html.Span(_when(e["at"], lang), className="tl-at"), " ",
                         html.B(t(f"wb.action.{e['action']}", lang) if e["action"] != "report" else ("登记" if zh else "registered")),
                         " · ", e["actor"], html.Span(f" — {e['note']}" if e.get("note") else "")],
                        className=f"tl-{e['action']}") for e in d["events"]]
    for m in d["mediations"]:
        timeline.append(html.Li([html.B(MEDIATION_KINDS[m["kind"]] if zh else m["kind"]), f" · {m['mediator']} · {m['outcome']}",
                                 html.Span(f" — {m['agreement']}" if m.get("agreement") else "")], className="tl-mediation"))
    convened = [html.Li([html.B(t(f"case.a.{a['role']}", lang)), f" {a['department_name']} · {a['part']} · ",
                         html.Span("", className="wb-due", **{"data-due": a["deadline"].isoformat()}), " · ",
                         t(f"case.a.state.{a['state']}", lang), html.Span(f" — {a['note']}" if a.get("note") else "")],
                        id=f"case-assignment-{a['department_id']}") for a in d["assignments"]]
    files = [html.A(html.Img(src=f"/api/v1/attachments/{a['id']}/thumbnail", alt=a["filename"], className="case-thumb")
                    if a["has_thumbnail"] else a["filename"], href=f"/api/v1/attachments/{a['id']}", target="_blank",
                    className="case-file", id=f"case-file-{a['id']}") for a in d["attachments"]]
    return [
        html.H2([html.Span(c["ref"], className="case-ref", id="case-ref"), " ", c["title"]], className="wb-title"),
        html.Span("", className="wb-due big", **({"data-due": (c["deadline"] or c["respond_by"]).isoformat()}
                                                  if (c["deadline"] or c["respond_by"]) and c["state"] not in ("closed", "rejected") else {})),
        html.Div([
            html.Div([html.Dl([x for k, v in rows for x in (html.Dt(t(k, lang)), html.Dd(v, id=f"case-fact-{k.split('.')[1]}"))]),
                      html.P(c.get("description") or "", className="case-desc")], className="case-facts"),
            dcc.Graph(figure=fig, id="case-map", config={"displayModeBar": False}, className="case-map"),
        ], className="case-top"),
        html.H3(t("case.parties", lang), className="panel-sub"), html.Ul(parties, id="case-parties"),
        html.Div([html.H3(t("case.convened", lang), className="panel-sub"), html.Ul(convened, id="case-assignments")],
                 hidden=not convened),
        html.Div([html.H3(t("case.hazards", lang), className="panel-sub"),
                  html.Ul([html.Li([html.B(KIND_NAMES.get(h["kind"], h["kind"]) if zh else h["kind"]), f" {h['title']} · ",
                                    html.Span(h["grade"], className=f"wb-grade-dot grade-{h['grade']}"), f" · {h['state']}",
                                    f" · {h['owner_name'] or ''}"], id=f"case-hazard-{h['id']}") for h in d["hazards"]],
                          id="case-hazards")], hidden=not d["hazards"]),
        html.H3(t("case.attachments", lang), className="panel-sub"), html.Div(files, id="case-files", className="case-files"),
        html.H3(t("case.timeline", lang), className="panel-sub"), html.Ol(timeline, className="timeline", id="case-timeline"),
    ]


@dash.callback(Output("case-body", "children"), Output("case-actions", "children"), Output("case-back", "children"),
               Output("case-actions-title", "children"), Output("case-attach-title", "children"), Output("case-upload-label", "children"),
               Output("case-department", "options"), Output("case-lead-dept", "options"),
               *[Output(f"case-co-dept-{k}", "options") for k in range(CO_ROWS)], Output("case-level", "options"),
               Output("case-side", "hidden"), Output("case-owner", "options"), Output("case-hazard", "options"),
               Output("case-upload-to", "options"), Output("case-l-upload-to", "children"),
               Input("case-id", "data"), Input("case-refresh", "data"), Input("shell-lang", "data"), Input("shell-versions", "data"))
@db_callback
def render(case_id, _refresh, lang, _versions):
    who = session.principal()
    lang = lang if lang in ("zh", "en") else "zh"
    try:
        # not read-only: opening the parties writes an audit row (personal_data_access)
        with transaction(dash.get_app().server.state.pool) as conn:
            d = workbench.case_detail(conn, who, int(case_id or 0))
            place = workbench.place_names(conn, d["case"])
            outline = workbench.region_outline(conn, d["case"]["grid_code"]) if d["case"].get("grid_code") else None
    except DomainError:
        missing = html.Div(t("case.missing", lang, id=case_id), className="wb-refused", role="alert", id="case-missing")
        return (missing, [], t("case.back", lang), "", "", "", [], [], *[[] for _ in range(CO_ROWS)], [], True, [], [], [], "")
    buttons = [html.Button(t(f"wb.action.{a}", lang), id={"type": "case-do", "action": a}, n_clicks=0,
                           className="button case-do", **{"data-action": a}) for a in d["allowed_actions"]]
    if not buttons:
        buttons = [html.P(t("case.no_actions", lang), className="muted")]
    depts = [{"label": f"{x['name']}（{x['region_name']}）", "value": x["id"]} for x in d["departments"]]
    c = d["case"]
    levels = [{"label": v[0 if lang == "zh" else 1], "value": k} for k, v in LEVEL_NAMES.items()
              if workbench.lifecycle.LEVEL_COLUMN.get(k) and c.get(workbench.lifecycle.LEVEL_COLUMN[k])
              and workbench.lifecycle.LEVELS.index(k) < workbench.lifecycle.LEVELS.index(c["handling_level"])]
    open_hazards = [{"label": f"{h['title']}（{h['state']}）", "value": h["id"]} for h in d["hazards"] if h["state"] != "closed"]
    targets = [{"label": t("case.this_case", lang), "value": "case"}] + \
        [{"label": f"{t('case.hazards', lang)}: {h['title']}", "value": f"hazard:{h['id']}"} for h in d["hazards"]]
    return (_body(d, lang, place, outline), buttons, t("case.back", lang), t("case.actions", lang), t("case.attachments", lang),
            t("case.upload", lang), depts, depts, *[depts for _ in range(CO_ROWS)], levels, False, depts, open_hazards, targets,
            t("case.upload_to", lang))


@dash.callback(Output("case-action", "data"), Input({"type": "case-do", "action": ALL}, "n_clicks"), prevent_initial_call=True)
def choose(clicks):
    if not ctx.triggered_id or not any(clicks or []):
        return no_update
    return ctx.triggered_id["action"]


@dash.callback(Output("case-form", "hidden"), Output("case-form-title", "children"), Output("case-submit", "children"),
               *[Output(f"case-field-{f}", "hidden") for f in FIELDS],
               *[Output(f"case-l-{f}", "children") for f in FIELDS if f != "convene"],
               Output("case-l-lead", "children"), *[Output(f"case-l-co-{k}", "children") for k in range(CO_ROWS)],
               Output("case-outcome", "options"), Output("case-resolved", "options"),
               Input("case-action", "data"), Input("shell-lang", "data"))
def show_form(action, lang):
    wanted = FORM.get(action or "", ())
    labels = [t("case.f.report_hours" if (f, action) == ("hours", "hand_down") else f"case.f.{f}", lang)
              for f in FIELDS if f != "convene"]
    outcome = [{"label": t("case.f.agreed", lang), "value": "agreed"}, {"label": t("case.f.failed", lang), "value": "failed"}]
    return (action is None, t(f"wb.action.{action}", lang) if action else "", t("case.submit", lang),
            *[f not in wanted for f in FIELDS], *labels, t("case.f.lead", lang),
            *[t("case.f.co", lang, n=k + 1) for k in range(CO_ROWS)], outcome,
            [{"label": t("case.f.resolved", lang), "value": "yes"}])


@dash.callback(Output("case-message", "children"), Output("case-refresh", "data"), Output("case-action", "data", allow_duplicate=True),
               Output("case-note", "value"),
               Input("case-submit", "n_clicks"),
               State("case-id", "data"), State("case-action", "data"), State("case-note", "value"), State("case-department", "value"),
               State("case-hours", "value"), State("case-level", "value"), State("case-kind", "value"), State("case-mediator", "value"),
               State("case-outcome", "value"), State("case-agreement", "value"), State("case-satisfaction", "value"),
               State("case-duplicate", "value"), State("case-resolved", "value"),
               State("case-lead-dept", "value"), State("case-lead-part", "value"), State("case-lead-hours", "value"),
               State("case-hazard-kind", "value"), State("case-hazard-title", "value"), State("case-deadline-days", "value"),
               State("case-owner", "value"), State("case-hazard", "value"),
               *[State(f"case-co-{x}-{k}", "value") for k in range(CO_ROWS) for x in ("dept", "part", "hours")],
               State("case-refresh", "data"), State("shell-lang", "data"), prevent_initial_call=True)
@db_callback
def submit(n, case_id, action, note, department, hours, level, kind, mediator, outcome, agreement, satisfaction, duplicate,
           resolved, lead_dept, lead_part, lead_hours, hazard_kind, hazard_title, deadline_days, owner, hazard_id, *rest):
    *co, refresh, lang = rest
    if not n or not action:
        return no_update, no_update, no_update, no_update
    wanted = FORM.get(action, ())
    fields: dict = {}
    if "department" in wanted:
        fields["department_id"] = department
    if "hours" in wanted and hours:
        fields["hours"] = int(hours)
    if "level" in wanted and level:
        fields["level"] = level
    if "kind" in wanted:
        fields.update(kind=kind, mediator=(mediator or "").strip() or None)
    if "outcome" in wanted:
        fields.update(outcome=outcome, agreement=(agreement or "").strip() or None)
    if "satisfaction" in wanted:
        fields["satisfaction"] = int(satisfaction) if satisfaction else None
    if "duplicate_of" in wanted and duplicate:
        fields["duplicate_of"] = int(duplicate)
    if "resolved" in wanted:
        fields["resolved"] = "yes" in (resolved or [])
    if action == "register_hazard":
        fields.update(hazard_kind=hazard_kind, title=(hazard_title or "").strip() or None,
                      deadline_days=int(deadline_days) if deadline_days else None, owner_department_id=owner)
    if action == "close_out_hazard":
        fields["hazard_id"] = hazard_id
    if action == "convene":
        parts = [{"department_id": lead_dept, "part": lead_part, "hours": lead_hours, "lead": True}]
        for k in range(CO_ROWS):
            dept, part, h = co[3 * k: 3 * k + 3]
            if dept:
                parts.append({"department_id": dept, "part": part, "hours": h})
        fields["parts"] = parts
    who = session.principal()
    try:
        with transaction(dash.get_app().server.state.pool) as conn:
            workbench.act(conn, who, int(case_id), action, note=(note or "").strip() or None,
                          **{k: v for k, v in fields.items() if v is not None})
    except DomainError as exc:
        message = (exc.message_zh or exc.message) if lang == "zh" else exc.message
        return html.Span(message, className="wb-error", id="case-error"), no_update, no_update, no_update
    return (html.Span(t("case.done", lang, action=t(f"wb.action.{action}", lang)), className="wb-ok", id="case-ok"),
            (refresh or 0) + 1, None, "")


@dash.callback(Output("case-message", "children", allow_duplicate=True), Output("case-refresh", "data", allow_duplicate=True),
               Input("case-upload", "contents"), State("case-upload", "filename"), State("case-id", "data"),
               State("case-upload-to", "value"), State("case-refresh", "data"), State("shell-lang", "data"), prevent_initial_call=True)
@db_callback
def upload(contents, names, case_id, target, refresh, lang):
    if not contents:
        return no_update, no_update
    who = session.principal()
    added = 0
    try:
        with transaction(dash.get_app().server.state.pool) as conn:
            for content, name in zip(contents, names or [None] * len(contents)):
                raw = base64.b64decode(content.split(",", 1)[1]) if "," in content else b""
                where = {"hazard_id": int(target.split(":")[1])} if (target or "").startswith("hazard:") else {"case_id": int(case_id)}
                attachments.add(conn, raw, filename=name, uploaded_by=who.username, **where)
                added += 1
    except DomainError as exc:
        return html.Span((exc.message_zh or exc.message) if lang == "zh" else exc.message, className="wb-error"), no_update
    return html.Span(t("case.uploaded", lang, n=added), className="wb-ok", id="case-uploaded"), (refresh or 0) + 1
