"""Shared pieces of the workbench pages (/workbench, /workbench/case/<id>, /intake, /m): the refusal
shown instead of a page outside one's role, role names, and the countdown span the browser updates
(assets/workbench.js)."""

from __future__ import annotations

from dash import Input, Output, callback, html

from dashboard import session

from gridwatch.i18n import register, t

__all__ = ["refusal", "due_span", "WORK_ROLES"]

WORK_ROLES = ("operator", "department", "grid_worker")

register({
    "wb.refused": {"zh": "您的角色（{role}）无权使用此页面。", "en": "Your role ({role}) may not use this page."},
    "wb.signin": {"zh": "请先登录。", "en": "Please sign in."},
    "role.operator": {"zh": "综治中心值班员", "en": "Centre operator"},
    "role.department": {"zh": "部门办理人", "en": "Department handler"},
    "role.grid_worker": {"zh": "网格员", "en": "Grid worker"},
    "role.province_leader": {"zh": "省级领导", "en": "Province leader"},
    "role.planner": {"zh": "规划人员", "en": "Planner"},
    "role.wall": {"zh": "大屏", "en": "Wall"},
    "role.open311_client": {"zh": "Open311 客户端", "en": "Open311 client"},
    "role.admin": {"zh": "管理员", "en": "Administrator"},
})


def refusal(who, lang: str = "zh", roles=WORK_ROLES):
    """A clear message instead of a page outside one's role (None when the page may be shown)."""
    if who is None:
        return html.Div([t("wb.signin", lang), " ", html.A("登录 · Sign in", href="/login")], className="wb-refused",
                        id="wb-refused", role="alert")
    if who.role not in roles:
        return html.Div([t("wb.refused", "zh", role=t(f"role.{who.role}", "zh")), html.Br(),
                         html.Span(t("wb.refused", "en", role=t(f"role.{who.role}", "en")), className="muted")],
                        className="wb-refused", id="wb-refused", role="alert")
    return None


def due_span(due, *, overdue: bool = False, big: bool = False, **attrs):
    """A deadline that counts down in the browser (assets/workbench.js reads data-due)."""
    if not due:
        return html.Span("—", className="wb-due", **attrs)
    value = due if isinstance(due, str) else due.isoformat()
    return html.Span("", className="wb-due" + (" overdue" if overdue else "") + (" big" if big else ""),
                     **{"data-due": value}, **attrs)


register({"shell.logout": {"zh": "退出", "en": "Sign out"}, "shell.signin": {"zh": "登录", "en": "Sign in"}})


@callback(Output("shell-user", "children"), Input("shell-lang", "data"))
def shell_user(lang):
    """The header's user: name, role and a sign-out button (a plain form: POST /logout)."""
    lang = lang if lang in ("zh", "en") else "zh"
    who = session.principal()
    if who is None:
        return html.A(t("shell.signin", lang), href="/login", className="shell-logout", id="shell-signin")
    return [html.Span(who.username, id="shell-username"), " · ", html.Span(t(f"role.{who.role}", lang), id="shell-role"),
            html.Form(html.Button(t("shell.logout", lang), type="submit", className="shell-logout", id="shell-logout"),
                      method="post", action="/logout")]
