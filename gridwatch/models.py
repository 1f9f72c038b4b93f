"""The input models: cases, lifecycle actions, hazards, check-ins, centres and scenarios, validated once.

The API declares its bodies with these models (so OpenAPI shows them and FastAPI checks them), the
core checks what Python callers and loaders hand it with :func:`validate` (so a case from the
demo, the simulator or a CSV row of centres meets the same rules), and both render a failure the
same way: :func:`validation_error` names the field, the value, what is wrong and how to fix it, as
an :class:`gridwatch.errors.Invalid` (422, the project's usual error body).

Checks that need the database (a known category, a point inside Gansu, a region of the right
level) stay in the core functions that own the data; these models check shape and ranges.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from gridwatch.errors import Invalid

__all__ = [
    "Level", "CentreLevel", "CentreStatus", "Grade", "CoordSystem", "Channel", "HazardKind",
    "CaseIn", "BatchIn", "ActionIn", "HazardIn", "HazardActionIn", "CheckinIn",
    "CentreIn", "CentrePatch", "ScenarioCentreIn", "ScenarioIn", "SaveIn",
    "FIX_BY_TYPE", "validation_error", "validate",
]

Level = Literal["village", "township", "county", "prefecture", "province"]
CentreLevel = Literal["province", "prefecture", "county", "township", "village"]
CentreStatus = Literal["planned", "established", "entity"]
Grade = Literal["red", "orange", "yellow"]
CoordSystem = Literal["wgs84", "gcj02", "cgcs2000"]
Channel = Literal["grid_worker", "window", "hotline", "online", "open311", "petition", "referral", "simulator"]
HazardKind = Literal["power_line", "dilapidated_house", "gas", "fire", "flood", "geological", "traffic", "building",
                     "livestock_shed", "other"]
MAX_BATCH = 20_000


def _blank_to_none(value: str | None) -> str | None:
    return value or None


def Text(max_length: int):   # noqa: N802 - a type factory, read like a type
    """An optional string: surrounding spaces removed, empty → None, at most ``max_length`` characters."""
    return Annotated[Annotated[str, StringConstraints(strip_whitespace=True, max_length=max_length)] | None,
                     AfterValidator(_blank_to_none)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------- cases

class CaseIn(_Model):
    """A case report. Coordinates are WGS84 degrees unless coord_system says otherwise."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "category": "neighbour", "lon": 100.455, "lat": 38.932, "title": "邻居院墙纠纷",
        "client_request_id": "app-7f3c2a", "channel": "grid_worker"}]})

    category: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)] = Field(
        description="category code (GET /api/v1/categories)")
    lon: float = Field(description="longitude (x), degrees east", allow_inf_nan=False)
    lat: float = Field(description="latitude (y), degrees north", allow_inf_nan=False)
    coord_system: CoordSystem = Field("wgs84", description="gcj02 for AMap/Tencent clients")
    title: Text(200) = None
    description: Text(4000) = None
    grade: Grade | None = Field(None, description="default: the category's")
    channel: Channel | None = None
    client_request_id: Text(100) = Field(None, description="idempotency key: a retry returns the same case")
    reporter_name: Text(100) = None
    reporter_phone: Text(40) = None
    parties: list[Any] = Field(default_factory=list)
    address: Text(300) = None
    handling_level: Level | None = Field(None, description="the level of the centre taking it (default: by grade)")


class BatchIn(_Model):
    cases: list[CaseIn] = Field(description=f"1 to {MAX_BATCH} cases; all are written or none")


class ActionIn(_Model):
    """One lifecycle action; which fields it needs: GET /api/v1/cases/transitions."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"action": "dispatch", "department_id": 12},
        {"action": "return", "note": "不属本所职责"}]})

    action: str = Field(description="accept, reject, dispatch, return, start, feedback, verify, rework, …")
    actor: str | None = Field(None, max_length=100, deprecated=True,
                              description="ignored: the actor is always the signed-in user (kept so older clients are not refused)")
    note: str | None = Field(None, max_length=4000, description="reason, instructions or feedback")
    department_id: int | None = None
    hours: int | None = Field(None, description="extension hours, or a first deadline override at dispatch")
    level: Level | None = Field(None, description="hand_down target level")
    resolved: bool | None = None
    satisfaction: int | None = None
    kind: Literal["people", "administrative", "judicial"] | None = Field(None, description="mediation kind")
    mediator: str | None = Field(None, max_length=200)
    outcome: Literal["agreed", "failed"] | None = None
    agreement: str | None = Field(None, max_length=4000)
    mediation_id: int | None = None
    duplicate_of: int | None = Field(None, description="merge: the case this one duplicates (default: its flagged possible duplicate)")


# ------------------------------------------------------------------------- hazards

class HazardIn(_Model):
    """A hazard (or a feature the rules measure against, such as a building or a livestock shed)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "kind": "power_line", "title": "10kV 浅河线 7–8 号杆", "grade": "yellow",
        "geometry": {"type": "LineString", "coordinates": [[104.6201, 35.0103], [104.6225, 35.0109]]},
        "deadline_days": 30, "client_request_id": "hz-001"}]})

    kind: HazardKind
    title: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=4000)
    grade: Grade = Field("yellow", description="the reporter's grade; rules may raise it")
    geometry: dict[str, Any] = Field(description="GeoJSON Point, LineString, Polygon or Multi* (lon, lat)")
    coord_system: CoordSystem = "wgs84"
    owner_department_id: int | None = None
    deadline: datetime | None = Field(None, description="rectification deadline")
    deadline_days: int | None = Field(None, ge=1, le=3650, description="or: days from now")
    client_request_id: str | None = Field(None, max_length=100)
    case_id: int | None = None


class HazardActionIn(_Model):
    action: Literal["start_rectification", "close_out", "reinspect"]
    actor: str | None = Field(None, max_length=100, deprecated=True, description="ignored: the actor is the signed-in user")
    note: str | None = Field(None, max_length=4000)
    ok: bool | None = Field(None, description="reinspect: true = still fixed, false = it recurred")


# ------------------------------------------------------------------------- check-ins

class CheckinIn(_Model):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"grid_code": "620702100200001", "kind": "all_clear"}]})
    grid_code: str = Field(min_length=15, max_length=15)
    worker: str | None = Field(None, max_length=100, deprecated=True, description="ignored: the worker is the signed-in user")
    kind: Literal["report", "all_clear"] = Field(description="report (有事早报告) or all_clear (无事报平安)")
    day: date | None = Field(None, description="default: today (China)")
    note: str | None = Field(None, max_length=2000)
    case_id: int | None = Field(None, description="the case a report is about")


# ------------------------------------------------------------------------- centres and scenarios

RegionCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{2,12}$")]


class CentreIn(_Model):
    """A centre of the registry, from the API or a row of a loaded CSV/GeoJSON file."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
    level: CentreLevel
    region_code: RegionCode
    lon: float = Field(..., allow_inf_nan=False)
    lat: float = Field(..., allow_inf_nan=False)
    status: CentreStatus = "established"
    staff: int | None = Field(None, ge=0)
    address: Text(200) = None
    phone: Text(40) = None
    departments: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]] = Field(
        default_factory=list, max_length=50)


class CentrePatch(_Model):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)] | None = None
    level: CentreLevel | None = None
    region_code: RegionCode | None = None
    lon: float | None = Field(None, allow_inf_nan=False)
    lat: float | None = Field(None, allow_inf_nan=False)
    status: CentreStatus | None = None
    staff: int | None = Field(None, ge=0)
    address: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=40)
    departments: list[str] | None = Field(None, max_length=50)


class ScenarioCentreIn(_Model):
    lon: float = Field(..., allow_inf_nan=False)
    lat: float = Field(..., allow_inf_nan=False)
    level: CentreLevel = "township"
    name: str | None = Field(None, max_length=120)


class ScenarioIn(_Model):
    centres: list[ScenarioCentreIn] = Field(..., max_length=200)


class SaveIn(_Model):
    status: CentreStatus = "planned"


# ------------------------------------------------------------------------- one way to say what is wrong

FIX_BY_TYPE = {
    "missing": "add the field",
    "float_parsing": "send a JSON number",
    "float_type": "send a JSON number",
    "finite_number": "send a finite number",
    "int_parsing": "send a whole number",
    "int_type": "send a whole number",
    "int_from_float": "send a whole number",
    "string_type": "send a JSON string",
    "string_too_long": "shorten it",
    "string_too_short": "send a non-empty value",
    "string_pattern_mismatch": "use the documented format (see the OpenAPI spec at /openapi.json)",
    "literal_error": "use one of the allowed values",
    "extra_forbidden": "remove the field (see the OpenAPI spec at /openapi.json for accepted fields)",
    "list_type": "send a JSON list",
    "too_long": "send fewer items",
    "model_attributes_type": "send a JSON object",
    "model_type": "send a JSON object",
    "dict_type": "send a JSON object",
    "date_from_datetime_parsing": "send a date as YYYY-MM-DD",
    "date_parsing": "send a date as YYYY-MM-DD",
    "datetime_parsing": "send a date and time as ISO 8601 (YYYY-MM-DDTHH:MM:SS+08:00)",
    "bool_parsing": "send true or false",
    "greater_than_equal": "send a larger value",
    "less_than_equal": "send a smaller value",
    "greater_than": "send a larger value",
    "less_than": "send a smaller value",
}

_LOCATIONS = ("body", "query", "path", "header")


def _field_name(loc: tuple, prefix: str = "") -> str:
    parts = [p for p in loc if p not in _LOCATIONS]
    out = prefix.rstrip(".")
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or ".".join(str(p) for p in loc)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        return repr(value)


def validation_error(errors: list[dict], prefix: str = "") -> Invalid:
    """One :class:`Invalid` (422) for pydantic's ``errors()``: the first problem as the message, all as details.

    ``prefix`` (e.g. ``"cases[3]."`` or ``"row 7: "``-free field paths) goes before every field name.
    """
    details = []
    for e in errors:
        field = _field_name(tuple(e.get("loc", ())), prefix)
        value = None if e.get("type") == "missing" else _jsonable(e.get("input"))
        fix = FIX_BY_TYPE.get(e.get("type"), "correct the value")
        ctx = e.get("ctx") or {}
        if e.get("type") == "literal_error" and "expected" in ctx:
            fix = f"use one of: {ctx['expected']}"
        if e.get("type") == "string_too_long" and "max_length" in ctx:
            fix = f"shorten it to {ctx['max_length']} characters"
        details.append({"field": field, "value": value, "problem": e.get("msg"), "fix": fix})
    first = details[0] if details else {"field": "body", "value": None, "problem": "invalid", "fix": "see the OpenAPI spec"}
    more = f" (and {len(details) - 1} more problem(s), see details)" if len(details) > 1 else ""
    message = f"{first['field']}: {first['problem']}, got {first['value']!r}; {first['fix']}{more}"
    return Invalid(message, message_zh=f"字段 {first['field']} 无效：{first['problem']}", field=first["field"],
                   value=first["value"], fix=first["fix"], details=details, code="validation")


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Any, *, prefix: str = "") -> M:
    """``data`` checked by ``model``; :class:`Invalid` naming field, value and fix when it does not fit."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc.errors(include_url=False), prefix) from None
