"""Login, logout and who am I: /login (form), /logout, /api/v1/me; the principal of a request.

The session id travels in an HttpOnly, Secure, SameSite=Lax cookie; API clients send
``Authorization: Bearer TOKEN``. :func:`current_principal` resolves either into
``request.state.principal`` (None when anonymous: nothing is refused here yet) and keeps the raw
secret in ``request.state.credential`` so request paths can open their transactions with it
(``gridwatch.db.transaction(pool, credential=request.state.credential)``), which is what makes
PostgreSQL's row-level security apply the user's region scope.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gridwatch import auth, config
from gridwatch.api.errors import error_body, json_response
from gridwatch.db import transaction

__all__ = ["router", "current_principal", "COOKIE", "safe_next"]

router = APIRouter(tags=["auth"])

COOKIE = "gridwatch_session"
MAX_FORM_BYTES = 8192


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def current_principal(request: Request) -> auth.Principal | None:
    """The principal of this request (cookie session or bearer token), cached on request.state."""
    if hasattr(request.state, "principal"):
        return request.state.principal
    secret = _bearer(request) or request.cookies.get(COOKIE)
    principal = None
    if secret and len(secret) <= 512:
        with transaction(request.app.state.pool) as conn:
            principal = auth.resolve(conn, secret)
    request.state.principal = principal
    request.state.credential = secret if principal is not None else None
    return principal


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
    with transaction(request.app.state.pool) as conn:   # commits the failure count too
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
        with transaction(request.app.state.pool) as conn:
            auth.revoke_session(conn, sid)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="lax")
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
