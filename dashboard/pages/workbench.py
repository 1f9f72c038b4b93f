"""Work queues (``/workbench``): the signed-in operator's, department's or grid worker's cases by stage
(待受理、待分派、办理中、待核查、待回访、逾期、挂账), soonest deadline first, with deadlines counting
down in the browser (assets/workbench.js: no requests), a text filter, grade filter, sorting, bulk
actions on the selected cases, notifications (badge and list), and keyboard shortcuts.

The queue and the notifications come from the core (``gridwatch.workbench.queue``,
``gridwatch.notifications.for_user``); the page reloads them when the live stream says cases
changed (``shell-versions``), never on a timer. Bulk actions go through ``workbench.act``, which
refuses whatever the user may not do now.
"""

from __future__ import annotations

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update

from dashboard import session
from dashboard.util import db_callback, duplicates, jsonable
from dashboard.workbench_ui import WORK_ROLES as ROLES
from dashboard.workbench_ui import refusal
from gridwatch import notifications, workbench
from gridwatch.db import transaction
from gridwatch.errors import DomainError
from gridwatch.i18n import register, t

dash.register_page(__name__, path="/workbench", name="工作台", nav_key="nav.workbench", order=20,
                   title="工作台 · gridwatch", roles=("operator", "department", "grid_worker"), live="mine")

BULK = ("accept", "start", "report_in")
GRADE_NAMES = {"red": ("红", "red"), "orange": ("橙", "orange"), "yellow": ("黄", "yellow")}

register({
    "nav.workbench": {"zh": "工作台", "en": "Workbench"},
    "wb.title": {"zh": "我的工作台", "en": "My workbench"},
    "wb.stage.all": {"zh": "全部", "en": "All"},
    "wb.user": {"zh": "{name} · {role}", "en": "{name} · {role}"},
    "wb.intake": {"zh": "＋ 窗口登记", "en": "+ Register a case"},
    "wb.filter": {"zh": "筛选（编号、标题、类别）", "en": "Filter (ref, title, category)"},
    "wb.grade.all": {"zh": "全部等级", "en": "All grades"},
    "wb.sort.due": {"zh": "按期限（最急在前）", "en": "By deadline (soonest first)"},
    "wb.sort.reported": {"zh": "按上报时间（最新在前）", "en": "By report time (newest first)"},
    "wb.sort.grade": {"zh": "按等级（红色在前）", "en": "By grade (red first)"},
    "wb.col.ref": {"zh": "编号", "en": "Ref"},
    "wb.empty": {"zh": "此队列暂无案件。", "en": "Nothing in this queue."},
    "wb.bulk": {"zh": "批量：", "en": "Bulk:"},
    "wb.bulk.done": {"zh": "已处理 {ok} 件，{refused} 件不可执行", "en": "{ok} done, {refused} not allowed"},
    "wb.bulk.none": {"zh": "请先勾选案件", "en": "Select cases first"},
    "wb.notify": {"zh": "通知", "en": "Notifications"},
    "wb.notify.none": {"zh": "暂无通知", "en": "No notifications"},
    "wb.notify.read_all": {"zh": "全部标为已读", "en": "Mark all read"},
    "wb.shortcuts": {"zh": "快捷键：/ 筛选 · j/k 上下移动 · Enter 打开 · x 勾选 · a 批量受理 · 1–{n} 切换队列 · n 通知",
                     "en": "Keys: / filter · j/k move · Enter open · x select · a bulk accept · 1–{n} switch queue · n notifications"},
})


def _grade_options(lang: str) -> list[dict]:
    zh = lang == "zh"
    return [{"label": t("wb.grade.all", lang), "value": ""}] + \
        [{"label": (v[0] + "色") if zh else v[1], "value": k} for k, v in GRADE_NAMES.items()]


def _sort_options(lang: str) -> list[dict]:
    return [{"label": t(f"wb.sort.{k}", lang), "value": k} for k in ("due", "reported", "grade")]


def layout(stage: str | None = None, **_):
    who = session.principal()
    lang = "zh"
    refused = refusal(who, lang)
    if refused is not None:
        return html.Div(refused, className="wb-page")
    stage = stage if stage in workbench.STAGES else None
    return html.Div([
        dcc.Store(id="workbench-stage", data=stage or "all"),
        dcc.Store(id="workbench-data"),
        dcc.Store(id="workbench-notify-data"),
        html.Div([
            html.H2(id="workbench-title", className="wb-title"),
            html.Span(id="workbench-user", className="wb-user"),
            html.A(id="workbench-intake-link", href="/intake", className="button", hidden=who.role != "operator"),
            html.Button(id="workbench-notify-button", className="wb-bell", n_clicks=0, **{"aria-haspopup": "true"}),
        ], className="wb-head"),
        html.Div([html.Div(id="workbench-notify-list"),
                  html.Button(id="workbench-read-all", n_clicks=0, className="button small")],
                 id="workbench-notify-panel", className="wb-notify", hidden=True, role="region"),
        html.Div(id="workbench-tabs", className="wb-tabs", role="tablist"),
        html.Div([
            dcc.Input(id="workbench-filter", type="search", debounce=False, className="wb-filter"),
            dcc.Dropdown(id="workbench-grade", clearable=False, value="", className="wb-grade", searchable=False,
                         options=_grade_options("zh")),
            dcc.Dropdown(id="workbench-sort", clearable=False, value="due", className="wb-sort", searchable=False,
                         options=_sort_options("zh")),
            html.Span(id="workbench-bulk-label", className="muted"),
            *[html.Button(id=f"workbench-bulk-{a}", n_clicks=0, className="button wb-bulk") for a in BULK],
            html.Span(id="workbench-bulk-message", role="status", className="wb-message"),
        ], className="wb-tools"),
        dcc.Checklist(id="workbench-select", options=[], value=[], className="wb-list", inputClassName="wb-check",
                      labelClassName="wb-row"),
        html.Div(id="workbench-empty", className="state-empty", hidden=True),
        html.P(id="workbench-shortcuts", className="muted wb-shortcuts"),
    ], className="wb-page", id="workbench-page")


# One round trip per push: ``load`` reads the queue and the notifications and renders them in the
# same answer (with the page's filters and language as State). ``render`` and ``render_notifications``
# redraw from the stores when only a filter, a tab or the language changes: no query.
RENDERED = (Output("workbench-tabs", "children"), Output("workbench-select", "options"), Output("workbench-empty", "hidden"),
            Output("workbench-empty", "children"), Output("workbench-shortcuts", "children"))
NOTIFIED = (Output("workbench-notify-button", "children"), Output("workbench-notify-list", "children"))
VIEW = (State("workbench-stage", "data"), State("workbench-filter", "value"), State("workbench-grade", "value"),
        State("workbench-sort", "value"), State("shell-lang", "data"))


@dash.callback(Output("workbench-data", "data"), Output("workbench-notify-data", "data"), *RENDERED, *NOTIFIED,
               Input("shell-versions", "data"), Input("workbench-bulk-message", "children"), *VIEW)
@db_callback
def load(_versions, _message, stage, text, grade, sort, lang):
    who = session.principal()
    rows, notes = [], {"unread": 0, "items": []}
    if who is not None and who.role in ROLES:
        with transaction(dash.get_app().server.state.pool, readonly=True) as conn:
            rows = jsonable(workbench.queue(conn, who))
            items = notifications.for_user(conn, who)
        notes = jsonable({"unread": notifications.unread_count(items), "items": items})
    lang = lang if lang in ("zh", "en") else "zh"
    return rows, notes, *_render(rows, stage, text, grade, sort, lang), *_render_notifications(notes, lang)


def _row(r: dict, lang: str):
    zh = lang == "zh"
    grade = GRADE_NAMES.get(r["grade"], (r["grade"], r["grade"]))[0 if zh else 1]
    due = r.get("due")
    return html.Span([
        html.Span(grade, className=f"wb-grade-dot grade-{r['grade']}"),
        dcc.Link(r["ref"] or str(r["id"]), href=f"/workbench/case/{r['id']}", className="wb-ref", id=f"workbench-open-{r['id']}"),
        html.Span(r["title"], className="wb-case-title"),
        html.Span(r["category_zh"] if zh else r["category_en"], className="wb-cat"),
        html.Span(t(f"wb.stage.{r['stage']}", lang), className=f"wb-stage stage-{r['stage']}"),
        html.Span(r.get("assignment_part") or r.get("department_name") or "", className="wb-dept"),
        html.Span("—" if not due else "", className="wb-due" + (" overdue" if r["overdue"] else ""),
                  **({"data-due": due} if due else {})),
    ], className="wb-row-inner")


def _visible(rows: list[dict], stage: str, text: str, grade: str, sort: str) -> list[dict]:
    out = []
    needle = (text or "").strip().lower()
    for r in rows:
        if stage == "overdue" and not r["overdue"]:
            continue
        if stage not in ("all", "overdue") and r["stage"] != stage:
            continue
        if grade and r["grade"] != grade:
            continue
        hay = " ".join(str(r.get(k) or "") for k in ("ref", "title", "category_zh", "category_en", "address")).lower()
        if needle and needle not in hay:
            continue
        out.append(r)
    if sort == "reported":
        out.sort(key=lambda r: r["reported_at"] or "", reverse=True)
    elif sort == "grade":
        out.sort(key=lambda r: ({"red": 0, "orange": 1, "yellow": 2}.get(r["grade"], 3), r["due"] or "9999"))
    return out


@dash.callback(*duplicates(RENDERED), Input("workbench-stage", "data"), Input("workbench-filter", "value"),
               Input("workbench-grade", "value"), Input("workbench-sort", "value"), Input("shell-lang", "data"),
               State("workbench-data", "data"), prevent_initial_call=True)
def render(stage, text, grade, sort, lang, rows):
    return _render(rows, stage, text, grade, sort, lang)


def _render(rows, stage, text, grade, sort, lang):
    rows = rows or []
    stage = stage or "all"
    counts = workbench.queue_counts(rows) if rows else {s: 0 for s in workbench.STAGES}
    tabs = [html.Button([t("wb.stage.all", lang), html.B(f" {len(rows)}")],
                        id={"type": "workbench-tab", "stage": "all"}, n_clicks=0, role="tab",
                        className="wb-tab" + (" active" if stage == "all" else ""), **{"aria-selected": str(stage == "all").lower()})]
    for s in workbench.STAGES:
        if s == "convened" and not counts.get(s):
            continue
        tabs.append(html.Button([t(f"wb.stage.{s}", lang), html.B(f" {counts.get(s, 0)}")],
                                id={"type": "workbench-tab", "stage": s}, n_clicks=0, role="tab",
                                className="wb-tab" + (" active" if s == stage else "") + (" warn" if s == "overdue" and counts.get(s) else ""),
                                **{"aria-selected": str(s == stage).lower()}))
    shown = _visible(rows, stage or "all", text, grade, sort or "due")
    options = [{"label": _row(r, lang), "value": r["id"]} for r in shown]
    # the number keys reach the tabs after 全部 (assets/workbench.js): 1–7, or 1–8 while 协办 shows
    return tabs, options, bool(shown), t("wb.empty", lang), t("wb.shortcuts", lang, n=len(tabs) - 1)


# The tab clicked, in the browser: the tabs are redrawn with every push (new buttons), and a server
# callback here would cost a round trip per redraw to say "no change".
dash.clientside_callback(
    """
    function(clicks) {
        var id = window.gridwatchClicked();       // assets/gridwatch.js
        return id && id.stage ? id.stage : window.dash_clientside.no_update;
    }
    """,
    Output("workbench-stage", "data"), Input({"type": "workbench-tab", "stage": ALL}, "n_clicks"),
    prevent_initial_call=True)


@dash.callback(Output("workbench-title", "children"), Output("workbench-user", "children"), Output("workbench-filter", "placeholder"),
               Output("workbench-grade", "options"), Output("workbench-sort", "options"), Output("workbench-bulk-label", "children"),
               *[Output(f"workbench-bulk-{a}", "children") for a in BULK], Output("workbench-intake-link", "children"),
               Output("workbench-read-all", "children"), Input("shell-lang", "data"))
def label(lang):
    who = session.principal()
    zh = lang == "zh"
    grades, sorts = _grade_options(lang), _sort_options(lang)
    user = t("wb.user", lang, name=who.username, role=t(f"role.{who.role}", lang)) if who else ""
    return (t("wb.title", lang), user, t("wb.filter", lang), grades, sorts, t("wb.bulk", lang),
            *[t(f"wb.action.{a}", lang) for a in BULK], t("wb.intake", lang), t("wb.notify.read_all", lang))


@dash.callback(Output("workbench-bulk-message", "children"), Output("workbench-select", "value"),
               *[Input(f"workbench-bulk-{a}", "n_clicks") for a in BULK],
               State("workbench-select", "value"), State("shell-lang", "data"), prevent_initial_call=True)
@db_callback
def bulk(*args):
    *_, selected, lang = args
    action = (ctx.triggered_id or "").replace("workbench-bulk-", "")
    if action not in BULK:
        return no_update, no_update
    if not selected:
        return t("wb.bulk.none", lang), no_update
    who = session.principal()
    ok = refused = 0
    for case_id in selected:
        try:
            with transaction(dash.get_app().server.state.pool) as conn:
                workbench.act(conn, who, int(case_id), action)
            ok += 1
        except DomainError:
            refused += 1
    return t("wb.bulk.done", lang, ok=ok, refused=refused), []


@dash.callback(*duplicates(NOTIFIED), Input("shell-lang", "data"), State("workbench-notify-data", "data"), prevent_initial_call=True)
def render_notifications(lang, data):
    return _render_notifications(data, lang)


def _render_notifications(data, lang):
    data = data or {"unread": 0, "items": []}
    zh = lang == "zh"
    button = [t("wb.notify", lang), html.Span(str(data["unread"]), className="wb-badge", id="workbench-unread",
                                              hidden=not data["unread"])]
    items = [html.Li([
        html.Span(notifications.KINDS[n["kind"]][0 if zh else 1], className=f"wb-n-kind kind-{n['kind']}"),
        dcc.Link(f"{n['ref']} {n['title']}", href=f"/workbench/case/{n['case_id']}"),
        html.Span(n.get("note") or "", className="muted"),
    ], className="wb-n" + ("" if n["read"] else " unread"), **{"data-key": n["key"]}) for n in data["items"][:50]]
    return button, html.Ul(items, className="wb-n-list") if items else html.P(t("wb.notify.none", lang))


dash.clientside_callback(
    "function(n, hidden) { return n ? !hidden : true; }",
    Output("workbench-notify-panel", "hidden"), Input("workbench-notify-button", "n_clicks"),
    State("workbench-notify-panel", "hidden"), prevent_initial_call=True)


@dash.callback(Output("workbench-notify-data", "data", allow_duplicate=True), *duplicates(NOTIFIED),
               Input("workbench-read-all", "n_clicks"), State("workbench-notify-data", "data"), State("shell-lang", "data"),
               prevent_initial_call=True)
@db_callback
def read_all(n, data, lang):
    if not n or not data:
        return no_update, no_update, no_update
    who = session.principal()
    keys = [i["key"] for i in data["items"] if not i["read"]][:500]
    with transaction(dash.get_app().server.state.pool) as conn:
        notifications.mark_read(conn, who, keys)
    data = {"unread": 0, "items": [{**i, "read": True} for i in data["items"]]}
    return data, *_render_notifications(data, lang if lang in ("zh", "en") else "zh")
