"""Typed domain errors: the core raises them, every face (API, dashboard, CLI) renders them.

Each error names the field, the value and the fix, in English and Chinese. The API maps them to
HTTP statuses in one place (``gridwatch.api.errors.install_error_handlers``): :class:`Invalid`
→ 422, :class:`NotFound` → 404, :class:`Conflict` → 409. Nothing was written when one is raised.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["DomainError", "Invalid", "NotFound", "Conflict", "Unavailable", "jsonable"]


def jsonable(value: Any) -> Any:
    """``value`` when it is JSON-serialisable, else its repr."""
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        return repr(value)


class DomainError(ValueError):
    """Bad input or state: names the field, the value and the fix (English and Chinese). Nothing was written."""

    status = 422
    code = "invalid"
    message_zh_default: str | None = None

    def __init__(self, message: str, *, field: str | None = None, value: Any = None, fix: str | None = None,
                 message_zh: str | None = None, code: str | None = None, status: int | None = None,
                 details: list[dict] | None = None):
        super().__init__(message)
        self.message, self.field, self.value, self.fix = message, field, value, fix
        self.message_zh = message_zh or self.message_zh_default
        if code is not None:
            self.code = code
        self.details = details or []
        if status is not None:
            self.status = status

    def to_dict(self) -> dict:
        out = {"code": self.code, "message": self.message}
        if self.message_zh:
            out["message_zh"] = self.message_zh
        if self.field is not None:
            out["field"] = self.field
            out["value"] = jsonable(self.value)
        if self.fix:
            out["fix"] = self.fix
        if self.details:
            out["details"] = self.details
        return out


class Invalid(DomainError):
    """The input cannot be used (422)."""

    message_zh_default = "请求参数有误"


class NotFound(DomainError, LookupError):
    """What the input names does not exist (404). Also a LookupError, for callers that catch that."""

    status = 404
    code = "not_found"
    message_zh_default = "未找到"


class Conflict(DomainError):
    """The input clashes with what is stored (409), e.g. a second centre of the same name in a region."""

    status = 409
    code = "conflict"
    message_zh_default = "与已有数据冲突"


class Unavailable(DomainError):
    """Something the request needs is not there yet (503), e.g. no boundaries loaded."""

    status = 503
    code = "unavailable"
