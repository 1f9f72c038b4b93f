"""Login, logout and who am I: /login (form), /logout, /api/v1/me; who asks, for every request.

The session id travels in an HttpOnly, Secure, SameSite=Lax cookie; API clients send
``Authorization: Bearer TOKEN``; Open311 clients may send their token as ``api_key``; the wall opens
with ``/wall?kiosk=TOKEN`` (a token of a ``wall`` account), which sets the ``gridwatch_kiosk``
cookie so the page's later callbacks, tiles and live stream carry it without the token in their URLs.

:class:`IdentityMiddleware` (installed by the server assembly) runs first on every request:

- binds the request's secret to the context (``gridwatch.db.bind_credential``): every transaction
  the request opens — API routes, Dash callbacks, their worker threads — runs ``gridwatch_open``
  with it, so PostgreSQL's row-level security applies that user's scope and nothing else;
- refuses an anonymous write (any method but GET/HEAD/OPTIONS, Dash callbacks included) with 401
  and the usual error body, before anything runs; an authenticated write whose route needs a
  capability the role lacks (:data:`WRITE_CAPABILITIES`, default: refused) gets 403;
- sends a signed-out browser asking for a page to ``/login?next=…``.

:func:`current_principal` (a dependency) gives routes the principal (None when anonymous) and
fills ``request.state.principal`` / ``request.state.credential``.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, quote, urlsplit

import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gridwatch import auth, config
from gridwatch.api.errors import error_body, forbidden_body, json_response, unauthenticated_body
from gridwatch.errors import DomainError
from gridwatch.db import bind_credential, current_credential, transaction, unbind_credential

__all__ = ["router", "current_principal", "COOKIE", "KIOSK_COOKIE", "safe_next", "IdentityMiddleware",
           "WRITE_CAPABILITIES", "PUBLIC_WRITES", "require", "acting_user"]

router = APIRouter(tags=["auth"])

COOKIE = "gridwatch_session"
KIOSK_COOKIE = "gridwatch_kiosk"
MAX_FORM_BYTES = 8192
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Every write route and the capability (gridwatch.auth.CAPABILITIES) it needs, matched in order on
# "METHOD path". A write route missing here is refused with 403 for everyone: a new route must be
# listed (tests/test_auth_enforcement.py enumerates the OpenAPI spec and fails naming it).
# None: any signed-in account (the route or the database decides the rest).
WRITE_CAPABILITIES: tuple[tuple[str, str | None], ...] = (
    (r"POST /api/v1/cases(/batch)?", "report"),
    (r"POST /api/v1/cases/[^/]+/actions", "act"),
    (r"POST /api/v1/hazards", "report"),
    (r"POST /api/v1/hazards/[^/]+/actions", "act"),
    (r"POST /api/v1/checkins", "checkin"),
    (r"(POST|PUT|DELETE) /api/v1/scenarios/.+", "plan"),
    (r"(POST|PATCH|DELETE) /api/v1/centres(/[^/]+)?", "registry"),
    (r"POST /api/v1/alerts/.+", "act"),
    (r"POST /api/v1/workbench/cases/[^/]+/actions", None),   # the workbench: gridwatch.workbench.actions_for decides
    (r"POST /api/v1/(cases|hazards)/[^/]+/attachments", None),   # scope of the case/hazard (RLS) decides
    (r"POST /api/v1/notifications/read", None),
    (r"POST /api/v1/m/reports", "report"),
    (r"POST /api/v1/m/all-clear", "checkin"),
    (r"POST /_dash-update-component", None),      # page callbacks: each checks what it does; RLS scopes the rest
    # the workbench (issue 12): gridwatch.workbench.actions_for checks each action per role and case
    (r"POST /api/v1/workbench/cases/[^/]+/actions", None),
    (r"POST /api/v1/notifications/read", None),
    (r"POST /api/v1/m/reports", "report"),
    (r"POST /api/v1/m/all-clear", "checkin"),
    (r"POST /api/v1/(cases|hazards)/[^/]+/attachments", None),   # reporters and handlers alike; RLS on the parent
)
# Writes anyone may send: the login form, logout, and Open311 (its route checks the api_key itself
# and answers in GeoReport v2's error format: 401 without a key, 403 for a bad one).
PUBLIC_WRITES = (r"POST /login", r"POST /logout", r"POST /open311/v2/requests\.json")

# Paths that are not pages: a signed-out browser asking for them is not sent to /login.
NOT_PAGES = ("/api/", "/tiles/", "/open311/", "/export/", "/healthz", "/login", "/logout", "/assets/", "/_dash-",
             "/_favicon", "/_reload-hash", "/openapi.json", "/docs", "/redoc")

_WRITE_RE = [(re.compile(pattern + r"\Z"), cap) for pattern, cap in WRITE_CAPABILITIES]
_PUBLIC_RE = [re.compile(pattern + r"\Z") for pattern in PUBLIC_WRITES]


def write_capability(method: str, path: str) -> tuple[bool, str | None]:
    """(listed, capability) of a write ``method path``: listed False means refused for everyone."""
    key = f"{method} {path}"
    for pattern, cap in _WRITE_RE:
        if pattern.match(key):
            return True, cap
    return False, None


def is_public_write(method: str, path: str) -> bool:
    key = f"{method} {path}"
    return any(p.match(key) for p in _PUBLIC_RE)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def current_principal(request: Request) -> auth.Principal | None:
    """The principal of this request (bearer token, session cookie, kiosk token), cached on request.state."""
    if getattr(request.state, "principal_resolved", False):
        return request.state.principal
    secret = current_credential() or _bearer(request) or request.cookies.get(COOKIE) or request.cookies.get(KIOSK_COOKIE)
    principal = auth.resolve_cached(request.app.state.pool, secret) if secret and len(secret) <= 512 else None
    request.state.principal = principal
    request.state.principal_resolved = True
    request.state.credential = secret if principal is not None else None
    return principal


def acting_user(request: Request) -> str:
    """The username every write is attributed to: the signed-in user, never a body field. (The
    middleware refused anonymous writes already; this is the second line.)"""
    principal = current_principal(request)
    if principal is None:
        raise DomainError(unauthenticated_body()["error"]["message"], code="unauthenticated", status=401,
                          message_zh="请先登录", fix="sign in at /login or send Authorization: Bearer TOKEN")
    return principal.username


def require(capability: str | None = None):
    """A dependency: the principal, or the usual error body with 401 (anonymous) or 403 (its role
    lacks ``capability``), raised as the core's DomainError so every face renders it alike."""

    def dependency(request: Request) -> auth.Principal:
        principal = current_principal(request)
        if principal is None:
            raise DomainError(unauthenticated_body()["error"]["message"], code="unauthenticated", status=401,
                              message_zh="请先登录", fix="sign in at /login or send Authorization: Bearer TOKEN")
        if capability and not principal.can(capability):
            raise DomainError(f"the role {principal.role} may not {capability.replace('_', ' ')}", code="forbidden",
                              status=403, message_zh=f"角色 {principal.role} 无此权限：{capability}",
                              field="role", value=principal.role, fix="ask an administrator for an account with this right")
        return principal

    return dependency


# -- the identity middleware ---------------------------------------------------------------------
def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    raw = headers.get("cookie")
    if not raw:
        return {}
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # noqa: BLE001 - a malformed cookie header counts as none
        return {}
    return {k: m.value for k, m in jar.items()}


class IdentityMiddleware:
    """ASGI middleware: who asks (see the module docstring). Pure ASGI so the bound credential is
    seen by the route, Dash's callbacks and every thread they start."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        method, path = scope.get("method", "GET"), scope.get("path", "")
        headers = _headers(scope)
        cookies = _cookies(headers)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), max_num_fields=50) if scope.get("query_string") else {}
        bearer = None
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            bearer = value.strip()
        kiosk = (query.get("kiosk") or [None])[0] if method in SAFE_METHODS and not path.startswith(NOT_PAGES) else None
        api_key = (query.get("api_key") or [None])[0] if path.startswith("/open311/") else None
        secret = bearer or kiosk or api_key or cookies.get(COOKIE) or cookies.get(KIOSK_COOKIE)
        if secret is not None and len(secret) > 512:
            secret = None
        state = scope.setdefault("state", {})
        state["credential_secret"] = secret

        app = scope.get("app")
        pool = getattr(getattr(app, "state", None), "pool", None)

        db_down = False

        async def principal():
            nonlocal db_down
            if "principal_resolved" not in state:
                try:
                    if not secret or pool is None:
                        found = None
                    else:
                        known, found = auth.peek(pool, secret)      # the cache first, on the event loop
                        if not known:
                            found = await asyncio.to_thread(auth.resolve_cached, pool, secret)
                except psycopg.OperationalError:   # the database is down and this secret unknown: nobody can be checked
                    db_down, found = True, None
                state["principal"], state["principal_resolved"] = found, True
                state["credential"] = secret if found is not None else None
            return state["principal"]

        set_cookie = None
        if scope["type"] == "http":
            if method not in SAFE_METHODS and not is_public_write(method, path):
                who = await principal()
                if db_down:
                    # nobody can be checked: an API write gets 503 (nothing written); a page callback goes
                    # on to the page's own outage handling (its transactions fail the same way)
                    if not path.startswith("/_dash-"):
                        return await _json(send, 503, error_body(
                            "database_unavailable", "the database is unavailable: nothing was written",
                            message_zh="数据库暂时不可用，未写入任何数据", fix="retry shortly"))
                elif who is None:
                    return await _json(send, 401, unauthenticated_body())
                else:
                    listed, cap = write_capability(method, path)
                    if not listed:
                        return await _json(send, 403, forbidden_body(
                            f"{method} {path} is not open to any role", message_zh="此写入路径未向任何角色开放",
                            fix="list the route with its capability in gridwatch.api.auth.WRITE_CAPABILITIES"))
                    if cap is not None and not who.can(cap):
                        return await _json(send, 403, forbidden_body(
                            f"the role {who.role} may not {cap.replace('_', ' ')} ({method} {path})",
                            message_zh=f"角色 {who.role} 无权执行此操作（{cap}）", field="role", value=who.role))
            elif method in SAFE_METHODS and not path.startswith(NOT_PAGES):
                who = await principal()
                if db_down:
                    pass    # the shell is served and shows its outage banner; no data can be read anyway
                elif kiosk is not None:
                    if who is None or who.role != "wall":
                        return await _redirect(send, "/login?next=" + quote(path, safe="/"))
                    set_cookie = (f"{KIOSK_COOKIE}={kiosk}; Path=/; HttpOnly; Secure; SameSite=Strict; "
                                  f"Max-Age={int(float(config.get('GRIDWATCH_SESSION_HOURS')) * 3600)}")
                elif who is None:
                    target = path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
                    return await _redirect(send, "/login?next=" + quote(safe_next(target), safe="/?=&"))

        async def send_with_cookie(message):
            if set_cookie and message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", set_cookie.encode("latin-1"))]}
            await send(message)

        token = bind_credential(secret)
        try:
            await self.app(scope, receive, send_with_cookie if set_cookie else send)
        finally:
            unbind_credential(token)


async def _json(send, status: int, body: dict) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": payload})


async def _redirect(send, location: str) -> None:
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0"), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": b""})


def safe_next(target: str | None) -> str:
    """A local path to go to after login; anything else (other hosts, schemes, //x) becomes /."""
    if not target or not isinstance(target, str) or len(target) > 2000:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(c) < 32 for c in target):
        return "/"
    return target


def _form_page(message: str = "", next_path: str = "/", username: str = "", status: int = 200) -> HTMLResponse:
    esc = html.escape
    notice = f'<p class="msg" role="alert">{esc(message)}</p>' if message else ""
    body = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>登录 · Sign in — gridwatch</title>
<style>body{{font-family:system-ui,"Noto Sans CJK SC",sans-serif;max-width:22rem;margin:4rem auto;padding:0 1rem}}
label{{display:block;margin:.8rem 0 .2rem}}input{{width:100%;padding:.4rem;box-sizing:border-box}}
button{{margin-top:1rem;padding:.5rem 1.2rem}}.msg{{color:#b00020}}.en{{color:#666;font-size:.9em}}</style></head>
<body><h1>综治中心 · 登录 <span class="en">Sign in</span></h1>{notice}
<form method="post" action="/login">
<input type="hidden" name="next" value="{esc(next_path)}">
<label for="username">用户名 <span class="en">Username</span></label>
<input id="username" name="username" autocomplete="username" required value="{esc(username)}">
<label for="password">密码 <span class="en">Password</span></label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">登录 <span class="en">Sign in</span></button>
</form></body></html>"""
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store",
                                                         "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"})


def _owner_pool(request: Request):
    """The small pool of the tables' owner: only login and logout write accounts and sessions (the
    app role the server otherwise uses may not read them)."""
    return getattr(request.app.state, "owner_pool", None) or request.app.state.pool


@router.get("/login", include_in_schema=False)
def login_form(request: Request, next: str = "/"):  # noqa: A002 - the query parameter is called next
    return _form_page(next_path=safe_next(next))


@router.post("/login", include_in_schema=False)
async def login_submit(request: Request):
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_FORM_BYTES:
            return _form_page("表单过大。 The form is too large.", status=413)
    raw = bytes(raw)
    try:
        form = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return _form_page("表单无法读取。 The form could not be read.", status=400)
    username = (form.get("username") or [""])[0].strip()
    password = (form.get("password") or [""])[0]
    next_path = safe_next((form.get("next") or ["/"])[0])
    if not username or not password:
        return _form_page("请输入用户名和密码。 Enter your username and password.", next_path, username, status=400)
    refused = None
    with transaction(_owner_pool(request), credential="") as conn:   # commits the failure count too
        try:
            sid = auth.create_session(conn, auth.login(conn, username, password))
        except auth.LoginRefused as exc:
            refused = exc
    if refused is not None:
        if refused.reason == "locked":
            until = refused.locked_until.astimezone().strftime("%Y-%m-%d %H:%M %Z")
            message = f"账户已锁定，至 {until} 解锁。 The account is locked until {until}."
            return _form_page(message, next_path, username, status=403)
        if refused.reason == "disabled":
            return _form_page("账户已停用。 This account is disabled.", next_path, username, status=403)
        return _form_page("用户名或密码错误。 Wrong username or password.", next_path, username, status=401)
    response = RedirectResponse(next_path, status_code=303)
    hours = float(config.get("GRIDWATCH_SESSION_HOURS"))
    response.set_cookie(COOKIE, sid, max_age=int(hours * 3600), path="/", secure=True, httponly=True, samesite="lax")
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request):
    sid = request.cookies.get(COOKIE)
    if sid and len(sid) <= 512:
        with transaction(_owner_pool(request), credential="") as conn:
            auth.revoke_session(conn, sid)
        auth.forget(sid)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    response.delete_cookie(KIOSK_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


@router.get("/api/v1/me", summary="Who am I: the account behind the session cookie or bearer token")
def me(principal: auth.Principal | None = Depends(current_principal)) -> Response:
    if principal is None:
        return json_response(error_body("unauthenticated", "no valid session or token",
                                        message_zh="未登录或令牌无效", fix="sign in at /login or send Authorization: Bearer TOKEN"),
                             status_code=401)
    return json_response({
        "user_id": principal.user_id, "username": principal.username, "role": principal.role,
        "region_code": principal.region_code, "department_id": principal.department_id,
        "region_scope": principal.region_scope, "grid_code": principal.grid_code, "via": principal.via,
        "capabilities": sorted(principal.capabilities),
    })
