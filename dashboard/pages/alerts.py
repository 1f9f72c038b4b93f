"""Alerts (``/alerts``): the live early warnings, triaged, as groups, a list and on a map.

Groups first (rule × the region one level down, worst first, with counts, the oldest alert and
until when the group is silenced: :func:`gridwatch.triage.grouped_alerts`); an operator silences a
group for a set time with a reason, or ends a silence. Below them every alert with its
plain-language explanation and the numbers behind it; an operator acknowledges it with the button
beside it (their name from the operator box). The map shows the groups as markers (sized by count,
coloured by the worst severity) over the region's children, and every live alert as vector tiles
coloured by grade (layers ``alerts_*``; click one for its card) — not only the newest markers.
``/alerts?region=6207&rule=spike`` opens filtered. "Run the rules now" runs every rule once (the
same as ``gridwatch alerts run``).
"""

from __future__ import annotations

import dash
import psycopg
import plotly.graph_objects as go
from dash import ALL, ClientsideFunction, Input, Output, State, clientside_callback, ctx, dcc, html, no_update

from dashboard.analytics_components import alert_card, alerts_figure, rule_label
from dashboard.figures import empty_figure
from dashboard.maps import tile_layers
from gridwatch.display import GRADE_COLOURS
from gridwatch.i18n import fmt_datetime, register, t
from gridwatch.reports import local_time
from dashboard import session
from dashboard.util import db_callback, pool, system_pool
from gridwatch import triage
from gridwatch.alerts import ALERT_RULES, RULE_NAMES, acknowledge, list_alerts, run_rules
from gridwatch.live import read_versions
from gridwatch.regions import BadRegionCode, children_features, prefectures, region_row
from gridwatch.db import transaction
from gridwatch.kpi import UnknownRegion

dash.register_page(__name__, path="/alerts", name="预警", nav_key="nav.alerts", order=40, title="预警 · gridwatch")

register({
    "nav.alerts": {"zh": "预警", "en": "Alerts"},
    "alerts.title": {"zh": "预警研判", "en": "Early warnings"},
    "alerts.region": {"zh": "区域", "en": "Region"},
    "alerts.rule": {"zh": "规则", "en": "Rule"},
    "alerts.all_rules": {"zh": "全部规则", "en": "All rules"},
    "alerts.show_acked": {"zh": "显示已确认", "en": "Show acknowledged"},
    "alerts.operator": {"zh": "确认人", "en": "Operator"},
    "alerts.operator_default": {"zh": "值班员", "en": "duty officer"},
    "alerts.run": {"zh": "立即研判", "en": "Run the rules now"},
    "alerts.ran": {"zh": "已研判：新增 {raised} 条，更新 {updated} 条，解除 {resolved} 条",
                   "en": "Rules run: {raised} raised, {updated} updated, {resolved} resolved"},
    "alerts.count": {"zh": "共 {n} 条", "en": "{n} alerts"},
    "alerts.need_operator": {"zh": "请先填写确认人", "en": "Enter the operator's name first"},
    "alerts.bad_region": {"zh": "区划 {code} 不存在", "en": "There is no region {code}"},
    "alerts.groups": {"zh": "按规则 × 区域分组（{n} 组，最严重在前）", "en": "Grouped by rule × region ({n} groups, worst first)"},
    "alerts.group.meta": {"zh": "最早 {oldest} · 已确认 {acked} · 已上报 {escalated} · 合并 {inhibited}",
                          "en": "oldest {oldest} · acknowledged {acked} · escalated {escalated} · merged {inhibited}"},
    "alerts.group.silenced": {"zh": "静默至 {until}", "en": "silenced until {until}"},
    "alerts.silence": {"zh": "静默", "en": "Silence"},
    "alerts.silence_for": {"zh": "静默时长", "en": "Silence for"},
    "alerts.reason": {"zh": "静默原因", "en": "Reason"},
    "alerts.need_reason": {"zh": "请先填写静默原因", "en": "Enter the reason first"},
    "alerts.silenced": {"zh": "已静默 {rule} · {region}，至 {until}", "en": "Silenced {rule} · {region} until {until}"},
    "alerts.unsilence": {"zh": "解除静默", "en": "End silence"},
    "alerts.hours": {"zh": "{h} 小时", "en": "{h} h"},
})

SILENCE_HOURS = (1, 4, 24)


def _rule_options(lang: str) -> list[dict]:
    opts = [{"label": t("alerts.all_rules", lang), "value": ""}]
    for group, names in RULE_NAMES.items():
        label = t(f"rule.group.{group}", lang) if len(names) > 1 else rule_label(names[0], lang)
        opts.append({"label": label, "value": group})
    return opts


def layout(region: str | None = None, rule: str | None = None, **_):
    rule = rule if rule in RULE_NAMES or rule in ALERT_RULES else ""
    return html.Div(
        [
            dcc.Store(id="alerts-data"),
            dcc.Store(id="alerts-refresh", data=0),
            html.H2(t("alerts.title"), id="alerts-title", className="panel-title"),
            html.Div(
                [
                    html.Label(t("alerts.region"), id="alerts-region-label", htmlFor="alerts-region"),
                    dcc.Dropdown(id="alerts-region", value=region or "62", clearable=False, className="alerts-filter",
                                 options=[{"label": region or "62", "value": region or "62"}]),
                    html.Label(t("alerts.rule"), id="alerts-rule-label", htmlFor="alerts-rule"),
                    dcc.Dropdown(id="alerts-rule", value=rule, options=_rule_options("zh"), clearable=False,
                                 searchable=False, className="alerts-filter"),
                    dcc.Checklist(id="alerts-show-acked", options=[{"label": t("alerts.show_acked"), "value": "yes"}],
                                  value=[], className="alerts-check"),
                    html.Label(t("alerts.operator"), id="alerts-operator-label", htmlFor="alerts-operator"),
                    dcc.Input(id="alerts-operator", value=t("alerts.operator_default"), maxLength=100, debounce=True,
                              style={"width": "10em"}),
                    html.Button(t("alerts.run"), id="alerts-run", n_clicks=0, className="button"),
                    html.Span("", id="alerts-status", className="muted", role="status"),
                ],
                className="alerts-controls",
            ),
            html.Div([
                html.Label(t("alerts.silence_for"), htmlFor="alerts-silence-hours"),
                dcc.Dropdown(id="alerts-silence-hours", value=4, clearable=False, searchable=False, style={"width": "8em"},
                             options=[{"label": t("alerts.hours", h=h), "value": h} for h in SILENCE_HOURS]),
                html.Label(t("alerts.reason"), htmlFor="alerts-silence-reason"),
                dcc.Input(id="alerts-silence-reason", value="", maxLength=500, placeholder="已派人现场处置", style={"width": "18em"}),
            ], className="alerts-silence-row"),
            html.Div(
                [
                    html.Section([html.Div(id="alerts-groups-title", className="muted"),
                                  html.Div(id="alerts-groups", className="alerts-groups"),
                                  html.Div(id="alerts-count", className="muted"),
                                  html.Div(t("state.loading"), id="alerts-list", className="alerts-list")],
                                 className="alerts-list-panel"),
                    html.Section([dcc.Store(id="alerts-figure"),
                                  dcc.Graph(id="alerts-map", figure=empty_figure(), config={"displayModeBar": False},
                                            style={"height": "620px"})], className="alerts-map-panel"),
                ],
                className="alerts-body",
            ),
        ],
        className="alerts-page",
    )


@dash.callback(Output("alerts-region", "options"), Output("alerts-rule", "options"), Output("alerts-title", "children"),
               Output("alerts-region-label", "children"), Output("alerts-rule-label", "children"),
               Output("alerts-show-acked", "options"), Output("alerts-operator-label", "children"),
               Output("alerts-run", "children"),
               Input("shell-lang", "data"), State("alerts-region", "value"))
@db_callback
def labels(lang, region):
    lang = lang or "zh"
    try:
        with transaction(pool(), readonly=True) as conn:
            prov = conn.execute("SELECT code, name, name_en FROM region WHERE parent_code IS NULL ORDER BY code LIMIT 1").fetchone()
            prefs = prefectures(conn, prov["code"]) if prov else []
            extra = conn.execute("SELECT code, name FROM region WHERE code = %s", (region,)).fetchone() if region else None
    except psycopg.Error:
        return (no_update,) * 8
    opts = [{"label": f"{prov['name']} ({prov['code']})", "value": prov["code"]}] if prov else []
    opts += [{"label": f"{p['name']} ({p['code']})", "value": p["code"]} for p in prefs]
    if extra and extra["code"] not in {o["value"] for o in opts}:
        opts.append({"label": f"{extra['name']} ({extra['code']})", "value": extra["code"]})
    return (opts, _rule_options(lang), t("alerts.title", lang), t("alerts.region", lang), t("alerts.rule", lang),
            [{"label": t("alerts.show_acked", lang), "value": "yes"}], t("alerts.operator", lang), t("alerts.run", lang))


@dash.callback(Output("alerts-data", "data"),
               Input("alerts-region", "value"), Input("alerts-rule", "value"), Input("alerts-show-acked", "value"),
               Input("alerts-refresh", "data"), Input("shell-versions", "data"))
@db_callback
def load(region, rule, show_acked, _refresh, _versions):
    acked = None if show_acked else False
    try:
        with transaction(pool(), readonly=True) as conn:
            rows = list_alerts(conn, region=region or None, rule=rule or None, acknowledged=acked)
            outline = region_row(conn, region) if region else None
            features = children_features(conn, region, geometry=True) if region else None
            groups = triage.grouped_alerts(conn, region or "62")
            silences = triage.list_silences(conn, region or None, active=True)
            versions = read_versions(conn)
    except (UnknownRegion, BadRegionCode):
        return {"error": "region", "code": region}
    except psycopg.Error:
        return no_update
    if rule:
        names = RULE_NAMES.get(rule) or (rule,)
        groups = [g for g in groups if g["rule"] in names]
    return {"alerts": rows, "bbox": outline["bbox"] if outline else None, "features": features, "groups": groups,
            "silences": silences, "versions": versions, "region": region}


def _when(value, lang) -> str:
    return fmt_datetime(local_time(value), lang) if value else "—"


def group_card(g: dict, lang: str, silence_id: int | None = None) -> html.Article:
    """One group: severity, rule, region, count, the oldest alert, silenced until, silence/end buttons."""
    region = g.get("region_name_en") if lang == "en" and g.get("region_name_en") else g["region_name"]
    key = f"{g['rule']}|{g['region_code']}"
    meta = [t("alerts.group.meta", lang, oldest=_when(g["oldest_raised_at"], lang), acked=g["acknowledged"],
              escalated=g["escalated"], inhibited=g["inhibited"])]
    if g.get("silenced_until"):
        meta.append(" · " + t("alerts.group.silenced", lang, until=_when(g["silenced_until"], lang)))
    button = (html.Button(t("alerts.unsilence", lang), id={"type": "alerts-unsilence", "id": silence_id}, n_clicks=0,
                          className="button") if silence_id else
              html.Button(t("alerts.silence", lang), id={"type": "alerts-silence", "key": key}, n_clicks=0, className="button"))
    return html.Article([
        html.Span(t(f"severity.{g['worst_severity']}", lang), className=f"alert-severity sev-{g['worst_severity']}"),
        html.Span([html.Strong(rule_label(g["rule"], lang)), f" · {region} {g['region_code']}"]),
        html.Span([html.Span(f"{g['count']}", className="count"), button]),
        html.Span("".join(meta), className="meta"),
    ], className=f"alert-group sev-{g['worst_severity']}" + (" silenced" if g.get("silenced_until") else ""),
        id=f"alerts-group-{g['rule']}-{g['region_code']}")


def triage_figure(groups: list[dict], lang: str, *, bounds, outlines: dict | None, versions: dict | None) -> go.Figure:
    """The alerts map: the region's children, every live alert as tiles coloured by grade (clickable),
    and the groups as markers sized by count at their region, coloured by the worst severity."""
    fig = alerts_figure([], lang, bounds=bounds, outlines=outlines)
    pts = [g for g in groups if g.get("lon") is not None]
    for sev in ("yellow", "orange", "red"):
        rows = [g for g in pts if g["worst_severity"] == sev]
        if not rows:
            continue
        fig.add_trace(go.Scattermap(
            lon=[g["lon"] for g in rows], lat=[g["lat"] for g in rows], mode="markers+text",
            marker={"size": [min(14 + 4 * g["count"] ** 0.5, 46) for g in rows], "color": GRADE_COLOURS[sev], "opacity": 0.55},
            text=[str(g["count"]) for g in rows], textfont={"color": "#1b2430", "size": 12},
            customdata=[[rule_label(g["rule"], lang), g["region_name"], g["count"]] for g in rows],
            hovertemplate="<b>%{customdata[0]}</b> · %{customdata[1]}<br>%{customdata[2]}<extra></extra>",
            name=t(f"severity.{sev}", lang)))
    names = ("regions", "alerts_yellow", "alerts_orange", "alerts_red")
    fig.update_layout(map_layers=tile_layers(versions, names),
                      meta={"fit": {"bounds": list(bounds or (92.2, 32.5, 108.8, 42.8)), "padding": 0.2}})
    return fig


@dash.callback(Output("alerts-list", "children"), Output("alerts-count", "children"), Output("alerts-figure", "data"),
               Output("alerts-groups", "children"), Output("alerts-groups-title", "children"),
               Input("alerts-data", "data"), Input("shell-lang", "data"))
def render(data, lang):
    lang = lang or "zh"
    if not data:
        return t("state.loading", lang), "", no_update, [], ""
    if data.get("error"):
        return (html.P(t("alerts.bad_region", lang, code=data["code"]), className="state-empty"), "", empty_figure(), [], "")
    alerts = data["alerts"]
    cards = [alert_card(a, lang) for a in alerts] or [html.P(t("an.none", lang), className="state-empty")]
    groups = data.get("groups") or []
    exact = {(s["rule"], s["region_code"]): s["id"] for s in data.get("silences") or []}
    group_cards = [group_card(g, lang, exact.get((g["rule"], g["region_code"]))) for g in groups]
    fig = triage_figure(groups, lang, bounds=data.get("bbox"), outlines=data.get("features"), versions=data.get("versions"))
    return (cards, t("alerts.count", lang, n=len(alerts)), fig, group_cards, t("alerts.groups", lang, n=len(groups)))


# Tile URLs made absolute and the map fitted to its box, in the browser (as on the other maps).
clientside_callback(
    ClientsideFunction(namespace="gridwatch", function_name="mapFigure"),  # dashboard/assets/gridwatch.js
    Output("alerts-map", "figure"),
    Input("alerts-figure", "data"),
)


def _actor(operator: str | None) -> str:
    """Who acts: the operator box for now; phase 2 (accounts) puts the signed-in user here."""
    return (operator or "").strip()


@dash.callback(Output("alerts-refresh", "data", allow_duplicate=True), Output("alerts-status", "children", allow_duplicate=True),
               Input({"type": "alerts-silence", "key": ALL}, "n_clicks"), Input({"type": "alerts-unsilence", "id": ALL}, "n_clicks"),
               State("alerts-silence-hours", "value"), State("alerts-silence-reason", "value"), State("alerts-operator", "value"),
               State("alerts-refresh", "data"), State("shell-lang", "data"), prevent_initial_call=True)
@db_callback
def silence(silence_clicks, unsilence_clicks, hours, reason, operator, refresh, lang):
    lang = lang or "zh"
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not any((silence_clicks or []) + (unsilence_clicks or [])):
        return no_update, no_update   # buttons just rendered, not clicked
    clicked = next((c for group in ctx.inputs_list for c in group if c["id"] == trigger), None)
    if not clicked or not clicked.get("value"):
        return no_update, no_update
    if not _actor(operator):
        return no_update, t("alerts.need_operator", lang)
    if trigger["type"] == "alerts-unsilence":
        with transaction(pool()) as conn:
            triage.expire_silence(conn, int(trigger["id"]), _actor(operator))
        return (refresh or 0) + 1, ""
    if not (reason or "").strip():
        return no_update, t("alerts.need_reason", lang)
    rule, region = trigger["key"].split("|", 1)
    with transaction(pool()) as conn:
        row = triage.create_silence(conn, rule=rule, region=region, minutes=float(hours or 4) * 60, reason=reason,
                                    actor=_actor(operator))
    return (refresh or 0) + 1, t("alerts.silenced", lang, rule=rule_label(rule, lang), region=region,
                                  until=_when(row["ends_at"], lang))


@dash.callback(Output("alerts-refresh", "data"), Output("alerts-status", "children"),
               Input({"type": "alerts-ack", "id": ALL}, "n_clicks"), Input("alerts-run", "n_clicks"),
               State("alerts-operator", "value"), State("alerts-refresh", "data"), State("shell-lang", "data"),
               prevent_initial_call=True)
@db_callback
def act(ack_clicks, run_clicks, operator, refresh, lang):
    lang = lang or "zh"
    trigger = ctx.triggered_id
    if trigger == "alerts-run":
        if not run_clicks:
            return no_update, no_update
        if not session.can("act"):      # the rules read and write every region: system work, for acting roles only
            return no_update, t("alerts.need_operator", lang)
        with transaction(system_pool(), credential="") as conn:
            summary = run_rules(conn)
        total = {k: sum(s[k] for s in summary.values()) for k in ("raised", "updated", "resolved")}
        return (refresh or 0) + 1, t("alerts.ran", lang, **total)
    if not isinstance(trigger, dict) or not any(ack_clicks or []):
        return no_update, no_update   # buttons just rendered, not clicked
    clicked = next((c for c, i in zip(ack_clicks, ctx.inputs_list[0]) if i["id"] == trigger), None)
    if not clicked:
        return no_update, no_update
    operator = session.username()     # the signed-in user acknowledges (issue 11); the typed name is not used
    if not operator:
        return no_update, t("alerts.need_operator", lang)
    with transaction(pool()) as conn:
        acknowledge(conn, int(trigger["id"]), operator)
    return (refresh or 0) + 1, ""
