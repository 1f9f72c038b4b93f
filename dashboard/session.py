"""Who is asking, for Dash callbacks and page layouts: :func:`principal` and :func:`credential`.

The one way the dashboard learns the user. The server's identity middleware
(``gridwatch.api.auth.IdentityMiddleware``, installed by ``gridwatch/server.py``) binds each
request's secret — the ``gridwatch_session`` cookie, a ``Authorization: Bearer`` token, or the
wall's kiosk token (``/wall?kiosk=TOKEN`` on first load, then the ``gridwatch_kiosk`` cookie it
sets) — to the request's context. Dash's FastAPI backend runs callbacks and layout functions in
that context (``db_callback`` threads copy it), so inside any of them:

>>> from dashboard import session
>>> session.principal()          # doctest: +SKIP
Principal(user_id=3, username='op_ganzhou', role='operator', region_code='620702', ...)
>>> session.can("read_personal_data")   # doctest: +SKIP
True

Stable interface (others build on it):

- ``principal() -> Principal | None`` — the signed-in account, None when anonymous or invalid;
  resolved through ``gridwatch.auth.resolve_cached`` (a few seconds' cache per secret).
- ``credential() -> str | None`` — the raw secret. Rarely needed: every
  ``gridwatch.db.transaction`` opened during the request already uses it (so row-level security
  applies the user's scope); pass it explicitly only to work started outside the request's context.
- ``can(capability) -> bool`` — ``principal()`` may do ``capability`` (``gridwatch.auth.CAPABILITIES``).
- ``role() -> str | None``, ``username() -> str | None`` — shorthands for labels.
- ``scope_key() -> str`` — equal for users who see the same rows: part of every cache key of
  scoped data (region aggregates, case tiles).

Outside a request (tests calling a layout directly, the CLI) both return None.
"""

from __future__ import annotations

import dash

from gridwatch import auth
from gridwatch.db import current_credential

__all__ = ["principal", "credential", "can", "role", "username", "scope_key", "KIOSK_COOKIE", "SESSION_COOKIE"]

SESSION_COOKIE = "gridwatch_session"
KIOSK_COOKIE = "gridwatch_kiosk"


def _request_cookies() -> dict:
    """Cookies of Dash's current request when no middleware bound a credential (a bare Dash app)."""
    try:
        from dash.backends._fastapi import get_current_request  # noqa: PLC0415 - Dash's private API, only as a fallback

        request = get_current_request()
    except (ImportError, RuntimeError):
        return {}
    return dict(request.cookies)


def credential() -> str | None:
    """The secret of the current request (session id, bearer or kiosk token), or None."""
    secret = current_credential()
    if secret:
        return secret
    cookies = _request_cookies()
    return cookies.get(SESSION_COOKIE) or cookies.get(KIOSK_COOKIE) or None


def principal() -> auth.Principal | None:
    """The account behind the current request, or None (anonymous, expired, revoked, disabled)."""
    secret = credential()
    if not secret:
        return None
    try:
        pool = dash.get_app().server.state.pool
    except Exception:  # noqa: BLE001 - no app (a layout called outside the server)
        return None
    return auth.resolve_cached(pool, secret)


def can(capability: str) -> bool:
    """May the current user do ``capability``? False when anonymous."""
    who = principal()
    return who is not None and who.can(capability)


def scope_key() -> str:
    """A short key of what the current user may see (``gridwatch.auth.scope_key``): put it in the
    key of any cache holding scoped data (cases, hazards, check-ins, alerts and their aggregates)."""
    return auth.scope_key(principal())


def role() -> str | None:
    who = principal()
    return who.role if who else None


def username() -> str | None:
    who = principal()
    return who.username if who else None
