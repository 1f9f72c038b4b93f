"""Alerts (``/alerts``): the live early warnings as a list and on a map, filtered by region and rule.

Each alert shows its plain-language explanation with the numbers behind it; an operator acknowledges
it with the button beside it (their name from the operator box). ``/alerts?region=6207&rule=spike``
opens filtered. "Run the rules now" runs every rule once (the same as ``gridwatch alerts run``).
"""

from __future__ import annotations

import dash
import psycopg
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update

from dashboard.analytics_components import alert_card, alerts_figure, rule_label
from dashboard.figures import empty_figure
from gridwatch.i18n import register, t
from dashboard.util import db_callback, pool
from gridwatch.alerts import ALERT_RULES, RULE_NAMES, acknowledge, list_alerts, run_rules
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
})


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
            html.Div(
                [
                    html.Section([html.Div(id="alerts-count", className="muted"),
                                  html.Div(t("state.loading"), id="alerts-list", className="alerts-list")],
                                 className="alerts-list-panel"),
                    html.Section(dcc.Graph(id="alerts-map", figure=empty_figure(), config={"displayModeBar": False},
                                           style={"height": "620px"}), className="alerts-map-panel"),
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
            features = children_features(conn, region) if region else None
    except (UnknownRegion, BadRegionCode):
        return {"error": "region", "code": region}
    except psycopg.Error:
        return no_update
    return {"alerts": rows, "bbox": outline["bbox"] if outline else None, "features": features}


@dash.callback(Output("alerts-list", "children"), Output("alerts-count", "children"), Output("alerts-map", "figure"),
               Input("alerts-data", "data"), Input("shell-lang", "data"))
def render(data, lang):
    lang = lang or "zh"
    if not data:
        return t("state.loading", lang), "", no_update
    if data.get("error"):
        return html.P(t("alerts.bad_region", lang, code=data["code"]), className="state-empty"), "", empty_figure()
    alerts = data["alerts"]
    cards = [alert_card(a, lang) for a in alerts] or [html.P(t("an.none", lang), className="state-empty")]
    return cards, t("alerts.count", lang, n=len(alerts)), alerts_figure(alerts, lang, bounds=data.get("bbox"),
                                                                         outlines=data.get("features"))


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
        with transaction(pool()) as conn:
            summary = run_rules(conn)
        total = {k: sum(s[k] for s in summary.values()) for k in ("raised", "updated", "resolved")}
        return (refresh or 0) + 1, t("alerts.ran", lang, **total)
    if not isinstance(trigger, dict) or not any(ack_clicks or []):
        return no_update, no_update   # buttons just rendered, not clicked
    clicked = next((c for c, i in zip(ack_clicks, ctx.inputs_list[0]) if i["id"] == trigger), None)
    if not clicked:
        return no_update, no_update
    if not (operator or "").strip():
        return no_update, t("alerts.need_operator", lang)
    with transaction(pool()) as conn:
        acknowledge(conn, int(trigger["id"]), operator)
    return (refresh or 0) + 1, ""
