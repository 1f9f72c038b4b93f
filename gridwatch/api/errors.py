"""Shared error handling for the JSON API: plain, bilingual messages that name the field, the value and the fix.

Routers use ``route_class=ApiRoute`` (or :func:`route_class` with their own error format, as the
Open311 façade does). The route class, before FastAPI parses anything:

- refuses a body larger than ``GRIDWATCH_MAX_BODY_BYTES`` with 413 (counting the bytes it reads,
  not trusting Content-Length alone);
- refuses malformed JSON with 400 naming line, column and character position;
- turns FastAPI/pydantic validation errors into 422 naming each field, value and fix
  (:func:`gridwatch.models.validation_error`, the wording the core uses too);
- turns the core's typed errors (:mod:`gridwatch.errors`: Invalid 422, NotFound 404, Conflict 409)
  into their status with the same shape;
- answers 503 when the database cannot be reached.

:func:`install_error_handlers` registers the same mapping once on the app (the server assembly
calls it), so a route outside these route classes answers with the same body. Routers do not catch
the core's errors themselves.

Error body: ``{"error": {"code", "message", "message_zh", "field", "value", "fix", "details"}}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import psycopg
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from gridwatch import config
from gridwatch.errors import DomainError
from gridwatch.models import validation_error

__all__ = ["ApiRoute", "route_class", "error_body", "json_response", "max_body_bytes", "error_status_body",
           "install_error_handlers", "forbidden_body", "unauthenticated_body"]

def max_body_bytes() -> int:
    return int(config.get("GRIDWATCH_MAX_BODY_BYTES"))


def json_response(content: Any, status_code: int = 200) -> Response:
    """JSON without FastAPI's per-field encoder (fast for large lists); dates become ISO strings."""
    body = json.dumps(content, ensure_ascii=False, default=_default, separators=(",", ":"))
    return Response(body, status_code=status_code, media_type="application/json")


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def error_body(code: str, message: str, *, message_zh: str | None = None, field: str | None = None,
               value: Any = None, fix: str | None = None, details: list | None = None) -> dict:
    err: dict[str, Any] = {"code": code, "message": message}
    if message_zh:
        err["message_zh"] = message_zh
    if field is not None:
        err["field"] = field
        err["value"] = value
    if fix:
        err["fix"] = fix
    if details:
        err["details"] = details
    return {"error": err}


def _validation(exc: RequestValidationError) -> tuple[int, dict]:
    invalid = validation_error(list(exc.errors()))       # the same wording as the core's own checks
    return invalid.status, {"error": invalid.to_dict()}


def _too_large(size: int, limit: int) -> tuple[int, dict]:
    return 413, error_body(
        "body_too_large", f"the request body is {size:,}+ bytes; this server accepts at most {limit:,} bytes",
        message_zh=f"请求体超过上限 {limit:,} 字节", field="body", value=size,
        fix=f"send smaller batches (under {limit:,} bytes) or raise GRIDWATCH_MAX_BODY_BYTES")


HANDLED = (RequestValidationError, DomainError, psycopg.OperationalError, psycopg.errors.InsufficientPrivilege,
           psycopg.DataError)


def forbidden_body(message: str = "your account may not do this here", *, message_zh: str = "无权执行此操作",
                   field: str | None = None, value: Any = None, fix: str | None = None) -> dict:
    """The usual error body of a 403."""
    return error_body("forbidden", message, message_zh=message_zh, field=field, value=value,
                      fix=fix or "ask an administrator for an account with this role and region")


def unauthenticated_body() -> dict:
    """The usual error body of a 401 (no valid session or token)."""
    return error_body("unauthenticated", "sign in first: this needs a valid session or token",
                      message_zh="请先登录：此操作需要有效的会话或令牌",
                      fix="sign in at /login or send Authorization: Bearer TOKEN (gridwatch tokens create USERNAME)")


def error_status_body(exc: Exception) -> tuple[int, dict]:
    """The status and the usual error body of a handled exception (one of ``HANDLED``)."""
    if isinstance(exc, RequestValidationError):
        return _validation(exc)
    if isinstance(exc, DomainError):
        return exc.status, {"error": exc.to_dict()}
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        # 42501: the app role lacks the grant, or row-level security refused the row (outside the
        # caller's region scope, or a trail written without an authenticated user). Nothing was written.
        return 403, forbidden_body("your account may not write this here (outside its role or region scope): nothing was written",
                                   message_zh="超出账户的角色或辖区范围：未写入任何数据")
    if isinstance(exc, psycopg.DataError):   # class 22: a value the database cannot hold (out of range, bad text)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return 422, error_body("invalid_value", f"a value is out of range or malformed: {first}: nothing was written",
                               message_zh="数值超出范围或格式错误：未写入任何数据", field=None, value=None,
                               fix="send values within the documented ranges (integers within 64 bits)")
    if isinstance(exc, psycopg.errors.DiskFull):   # 53100: the write was refused and rolled back whole
        return 507, error_body("disk_full", "the database's disk is full: nothing was written",
                               message_zh="数据库磁盘已满：本次提交未写入任何数据",
                               fix="free disk space on the database server (or enlarge it), then send the same request again")
    if isinstance(exc, psycopg.OperationalError):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return 503, error_body("database_unavailable", f"the database is unavailable: {first}",
                               message_zh="数据库暂时不可用", fix="retry shortly")
    raise TypeError(f"not an error the API renders: {type(exc).__name__}")


def install_error_handlers(app) -> None:
    """Register the core's errors, validation errors and a lost database once on ``app`` (FastAPI)."""

    async def handle(request: Request, exc: Exception) -> Response:
        status, body = error_status_body(exc)
        return JSONResponse(body, status_code=status)

    for kind in HANDLED:
        app.add_exception_handler(kind, handle)


def _default_format(status: int, body: dict) -> Response:
    return JSONResponse(body, status_code=status)


def route_class(formatter: Callable[[int, dict], Response] = _default_format, *, expects: str = "json") -> type[APIRoute]:
    """An APIRoute class whose errors are rendered by ``formatter(status, error_body)``.

    ``expects``: "json" (bodies must be JSON) or "json_or_form" (urlencoded forms accepted too).
    """

    class _Route(APIRoute):
        def get_route_handler(self):
            original = super().get_route_handler()

            async def handler(request: Request) -> Response:
                if request.method in ("POST", "PUT", "PATCH"):
                    limit = max_body_bytes()
                    declared = request.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit:
                        return formatter(*_too_large(int(declared), limit))
                    body = bytearray()
                    async for chunk in request.stream():
                        body += chunk
                        if len(body) > limit:
                            return formatter(*_too_large(len(body), limit))
                    request._body = bytes(body)
                    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
                    is_form = ctype == "application/x-www-form-urlencoded"
                    if body and expects == "json" and ctype and not (ctype == "application/json" or ctype.endswith("+json")):
                        return formatter(415, error_body(
                            "unsupported_media_type", f"the body is {ctype}; this endpoint reads JSON",
                            message_zh="请求体须为 JSON", field="content-type", value=ctype,
                            fix="send Content-Type: application/json"))
                    if body and not is_form:
                        try:
                            json.loads(body)
                        except UnicodeDecodeError as e:
                            return formatter(400, error_body(
                                "malformed_json", f"the body is not UTF-8 text (byte {e.start})",
                                message_zh="请求体不是 UTF-8 文本", field="body", value=e.start, fix="encode the JSON as UTF-8"))
                        except json.JSONDecodeError as e:
                            return formatter(400, error_body(
                                "malformed_json",
                                f"the body is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno} (character {e.pos})",
                                message_zh=f"请求体不是合法的 JSON：第 {e.lineno} 行第 {e.colno} 列（第 {e.pos} 个字符）",
                                field="body", value=e.doc[max(0, e.pos - 20):e.pos + 20],
                                fix="check the JSON near that position (quotes, commas, brackets)"))
                        if not ctype:
                            # treat an unlabelled body as JSON rather than failing on the missing header
                            headers = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"]
                            request.scope["headers"] = headers + [(b"content-type", b"application/json")]
                            if hasattr(request, "_headers"):
                                del request._headers
                try:
                    return await original(request)
                except HANDLED as exc:
                    return formatter(*error_status_body(exc))

            return handler

    return _Route


ApiRoute = route_class()
