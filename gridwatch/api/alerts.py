"""/api/v1/alerts, /api/v1/kpi and /api/v1/stats: early warnings, KPIs and year-on-year figures as JSON.

- ``GET /api/v1/alerts?region=6201&rule=spike&acknowledged=false&include_resolved=false&limit=500``
- ``POST /api/v1/alerts/{id}/ack`` with ``{"by": "值班员"}``
- ``GET /api/v1/kpi/{code}`` (rolling 30 days, plus the children ranking) or
  ``GET /api/v1/kpi/{code}?start=2025-06-01&end=2025-07-01`` (period KPIs, department ranking, returned trail)
- ``GET /api/v1/stats/{code}`` (year-on-year, month-on-month, monthly series)
- ``GET /export/briefing/{code}.html?lang=zh`` (the leader's briefing as one offline HTML file)
"""

from __future__ import annotations

from datetime import date

from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from gridwatch import alerts, boundary_changes, kpi, stats, triage
from gridwatch.api.auth import acting_user
from gridwatch.api.errors import ApiRoute, json_response
from gridwatch.db import transaction
from gridwatch.intake import InputError
from gridwatch.regions import region_row
from gridwatch.reports import briefing_html

__all__ = ["router"]

router = APIRouter(route_class=ApiRoute, tags=["alerts & analytics"])


def _region(conn, code: str) -> str:
    """The canonical code (620700 → 6207); 400 for a malformed code, 404 for one not loaded, naming it."""
    return region_row(conn, code)["code"]


def _bad(field: str, value, message: str, message_zh: str, fix: str, status: int = 422) -> InputError:
    return InputError(message, field=field, value=value, fix=fix, message_zh=message_zh, status=status)


def _actor(request: Request, given: str | None) -> str:
    """Who acts: the signed-in user (issue 11); a name in the body is ignored."""
    return acting_user(request)


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: str = Field(..., description="the alert rule to silence, e.g. silent_grid")
    region: str = Field(..., description="region code: the silence covers it and everything under it")
    minutes: float = Field(..., description="how long, in minutes (at most 30 days)")
    reason: str = Field(..., description="why (shown with the group and kept in the history)")
    actor: str | None = Field(None, max_length=100, description="who silences (phase 2: the signed-in user)")


class Expire(BaseModel):
    model_config = ConfigDict(extra="forbid")
    actor: str | None = Field(None, max_length=100, description="who ends the silence early")


class Ack(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str | None = Field(None, max_length=100, deprecated=True, description="ignored: the signed-in user acknowledges")


@router.get("/api/v1/alerts", summary="Alerts of a region (and everything under it)")
def get_alerts(request: Request,
               region: str | None = Query(None, description="region code; alerts of it and its descendants"),
               rule: str | None = Query(None, description="an alert rule (e.g. spike) or group (deadline, red)"),
               acknowledged: bool | None = Query(None, description="true: only acknowledged; false: only not yet"),
               include_resolved: bool = Query(False, description="also alerts whose condition no longer holds"),
               limit: int = Query(500, ge=1, le=5000),
               grouped: bool = Query(False, description="true: groups by rule × region instead of single alerts")):
    """Each alert: id, rule, region_code, region_name, subject, explanation_zh, explanation_en, numbers,
    severity, raised_at, last_seen_at, resolved_at, acknowledged_at, acknowledged_by, escalation_level,
    escalated_to, lon, lat. With ``grouped=true``: groups (rule, region_code, region_name, count,
    worst_severity, oldest_raised_at, silenced_until, inhibited, acknowledged, escalated, silenced, lon, lat)
    of the live alerts, by rule × the region one level below ``region`` (default: the province)."""
    with transaction(request.app.state.pool, readonly=True) as conn:
        if region is not None:
            region = _region(conn, region)
        if grouped:
            top = region or conn.execute("SELECT code FROM region WHERE parent_code IS NULL ORDER BY code LIMIT 1").fetchone()
            if top is None:
                return json_response({"region": None, "count": 0, "groups": []})
            code = top if isinstance(top, str) else (top["code"] if isinstance(top, dict) else top[0])
            groups = triage.grouped_alerts(conn, code)
            if rule:
                names = alerts.RULE_NAMES.get(rule) or ((rule,) if rule in alerts.ALERT_RULES else None)
                if names is None:
                    raise _bad("rule", rule, f"rule {rule!r} is not known", f"未知的预警规则 {rule!r}",
                               f"use one of: {', '.join(alerts.ALERT_RULES)}")
                groups = [g for g in groups if g["rule"] in names]
            return json_response({"region": code, "count": len(groups), "groups": groups})
        try:
            rows = alerts.list_alerts(conn, region=region, rule=rule, include_resolved=include_resolved,
                                      acknowledged=acknowledged, limit=limit)
        except ValueError as exc:
            raise _bad("rule", rule, str(exc), f"未知的预警规则 {rule!r}",
                       f"use one of: {', '.join(alerts.ALERT_RULES)}") from None
    return json_response({"region": region, "count": len(rows), "rules": list(alerts.ALERT_RULES), "alerts": rows})


@router.get("/api/v1/alerts/silences", summary="Silences (with their history) of a region")
def get_silences(request: Request, region: str | None = Query(None, description="region code: silences on, above or under it"),
                 active: bool | None = Query(None, description="true: only those in force; false: only ended ones")):
    with transaction(request.app.state.pool, readonly=True) as conn:
        if region is not None:
            region = _region(conn, region)
        rows = triage.list_silences(conn, region, active=active)
    return json_response({"region": region, "count": len(rows), "silences": rows})


@router.post("/api/v1/alerts/silences", summary="Silence a group (rule × region) for a set time, with a reason",
             status_code=201)
def post_silence(request: Request, body: SilenceIn):
    with transaction(request.app.state.pool) as conn:
        region = _region(conn, body.region)
        row = triage.create_silence(conn, rule=body.rule, region=region, minutes=body.minutes, reason=body.reason,
                                    actor=_actor(request, body.actor))
    return json_response(row, 201)


@router.post("/api/v1/alerts/silences/{silence_id}/expire", summary="End a silence now (it stays in the history)")
def post_expire(request: Request, silence_id: int, body: Expire):
    with transaction(request.app.state.pool) as conn:
        row = triage.expire_silence(conn, silence_id, _actor(request, body.actor))
    return json_response(row)


@router.get("/api/v1/alerts/{alert_id}/trail", summary="An alert's trail: escalations and acknowledgement")
def get_trail(request: Request, alert_id: int):
    with transaction(request.app.state.pool, readonly=True) as conn:
        exists = conn.execute("SELECT 1 FROM alert WHERE id = %s", (alert_id,)).fetchone()
        if exists is None:
            raise _bad("alert_id", alert_id, f"alert id {alert_id} does not exist", f"预警 {alert_id} 不存在",
                       "use an id from GET /api/v1/alerts", status=404)
        rows = triage.alert_trail(conn, alert_id)
    return json_response({"alert_id": alert_id, "events": rows})


@router.post("/api/v1/alerts/{alert_id}/ack", summary="Acknowledge an alert")
def post_ack(request: Request, alert_id: int, body: Ack):
    with transaction(request.app.state.pool) as conn:
        try:
            row = alerts.acknowledge(conn, alert_id, _actor(request, None))
        except alerts.AlertNotFound as exc:
            raise _bad("alert_id", alert_id, str(exc), f"预警 {alert_id} 不存在", "use an id from GET /api/v1/alerts",
                       status=404) from None
        except ValueError as exc:
            raise _bad("by", body.by, str(exc), "确认人不能为空", "send by: the operator's name or id") from None
    return json_response(row)


@router.get("/api/v1/kpi/{code}", summary="KPIs of a region: rolling 30 days, or a period")
def get_kpi(request: Request, code: str,
            start: date | None = Query(None, description="first day of the period (YYYY-MM-DD, local)"),
            end: date | None = Query(None, description="day after the period (YYYY-MM-DD, exclusive)")):
    if (start is None) != (end is None):
        missing = "end" if end is None else "start"
        raise _bad(missing, None, f"{missing} is missing: give both start and end (YYYY-MM-DD) or neither",
                   f"缺少 {missing}：start 与 end 须同时给出", f"add {missing}=YYYY-MM-DD")
    if start is not None and end <= start:
        raise _bad("end", end.isoformat(), f"end {end} is not after start {start}; the period is [start, end)",
                   "结束日期须晚于开始日期", "give an end date after the start date")
    with transaction(request.app.state.pool, readonly=True) as conn:
        code = _region(conn, code)
        if start is None:
            body = {"kpi": kpi.region_kpis(conn, code), "children": kpi.children_ranking(conn, code)}
        else:
            body = {"kpi": kpi.period_kpis(conn, code, start, end),
                    "departments": kpi.department_ranking(conn, code, start, end),
                    "score_formula": kpi.SCORE_FORMULA,
                    "returned": kpi.returned_trail(conn, code, start, end),
                    "units": boundary_changes.units_note(conn, code, start)}   # today's units by default
    return json_response(body)


@router.get("/api/v1/stats/{code}", summary="Year-on-year and month-on-month statistics of a region")
def get_stats(request: Request, code: str):
    with transaction(request.app.state.pool, readonly=True) as conn:
        code = _region(conn, code)
        return json_response(stats.region_stats(conn, code))


@router.get("/export/briefing/{code}.html", summary="The leader's briefing of a region as one offline HTML file",
            response_class=Response, responses={200: {"content": {"text/html": {}}}})
def export_briefing(request: Request, code: str, lang: str = Query("zh", description="zh or en")):
    if lang not in ("zh", "en"):
        raise _bad("lang", lang, f"lang {lang!r} is not a language: use zh or en", f"语言 {lang!r} 无效", "use zh or en",
                   status=400)
    with transaction(request.app.state.pool, readonly=True) as conn:
        code = _region(conn, code)
        body = briefing_html(conn, code, lang)
    filename = f"gridwatch-briefing-{code}.html"
    return Response(body, media_type="text/html; charset=utf-8", headers={
        "Content-Disposition": f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}",
        "Cache-Control": "no-store"})
