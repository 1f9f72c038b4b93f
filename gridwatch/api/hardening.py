"""Hardening against abuse, for every request the server answers (API, exports, Dash pages and callbacks).

:class:`HardeningMiddleware` is pure ASGI and the outermost layer (installed once by the server
assembly), so it sees Dash's own routes as well as the API's. In order, it:

1. refuses a NUL character in the path, the query string or ``X-Filename`` (PostgreSQL cannot
   store one; it used to be a 500) with 400;
2. refuses a cookie-authenticated write (any method but GET/HEAD/OPTIONS that carries the session
   or kiosk cookie and no ``Authorization: Bearer``; Dash's ``/_dash-update-component`` included)
   whose ``Origin`` (or, without one, ``Referer``) is not allowed, with 403: allowed are the
   server's own host (the ``Host`` header) and the origins of ``GRIDWATCH_ALLOWED_ORIGINS``. A
   bearer-token write is exempt: nothing ambient is sent by a third-party page. The login form is
   checked likewise when the browser names an Origin (login CSRF);
3. counts the bytes of the ASGI receive stream (never trusting Content-Length) and answers 413
   past ``GRIDWATCH_MAX_BODY_BYTES`` (attachments: :data:`gridwatch.attachments.MAX_BYTES`);
4. on JSON routes (``/api/``, ``/_dash-update-component``; Open311 also takes forms) refuses a body
   that is not labelled ``application/json`` with 415 (an unlabelled body is read as JSON only
   with ``Authorization: Bearer``, for command-line clients: a browser page can send an unlabelled
   body cross-site with the cookie, a token it cannot), and parses it strictly: malformed JSON,
   nesting deeper than :data:`MAX_DEPTH`, NaN/Infinity, numbers beyond 64-bit integers, NUL
   characters and lone surrogates in strings or keys each get 400 with the usual error body before
   any route runs (so nothing is half written); forms (login, Open311) are checked for NUL too;
5. adds security headers to every response (``X-Content-Type-Options: nosniff``,
   ``Referrer-Policy: same-origin``; ``frame-ancestors 'self'`` / ``X-Frame-Options`` except on
   the wall, which is a kiosk page meant to be embedded in a control-room screen);
6. sends heavy work (:data:`HEAVY`: coverage, what-if scenarios, centre changes that recompute
   coverage, exports) through :class:`gridwatch.throttle.Throttle`: 429 with Retry-After over the
   user's rate, 503 with Retry-After when the bounded queue is full;
7. gives every HTML export (``/export/…``) a Content-Security-Policy, as a header and as a
   ``<meta>`` at the top of the file (the file is opened offline, where no header exists): scripts
   only by the sha256 of the export's own inline scripts (folium's code and the inlined Leaflet),
   no ``'unsafe-inline'`` for scripts, so inline event handlers (``onerror=``) and ``javascript:``
   URLs never run; no network at all (``default-src 'none'``). What keeps user data from becoming a
   script of its own is that the export escapes every string before embedding it (no ``<`` from
   data can open or close a script element); the hashes then admit exactly the scripts present.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import re
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlsplit

from gridwatch import attachments, auth, config
from gridwatch.api.errors import error_body, forbidden_body
from gridwatch.throttle import Busy, RateLimited, Throttle

__all__ = ["HardeningMiddleware", "MAX_DEPTH", "check_json", "UnsafeJson", "export_csp", "allowed_origins",
           "SECURITY_HEADERS"]

MAX_DEPTH = 32                    # JSON nesting the API accepts (its deepest model needs 5)
INT_LIMIT = 2 ** 63 - 1           # PostgreSQL bigint
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
AUTH_COOKIES = ("gridwatch_session=", "gridwatch_kiosk=")
ATTACHMENT_PATH = re.compile(r"/api/v1/(cases|hazards)/[^/]+/attachments\Z")
SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"))
# Heavy work (coverage recomputes, what-ifs, site searches, exports): through gridwatch.throttle.
HEAVY = tuple(re.compile(p + r"\Z") for p in (
    r"GET /api/v1/coverage/.+", r"(POST|PUT) /api/v1/scenarios/.+", r"(POST|PATCH|DELETE) /api/v1/centres(/[^/]+)?",
    r"GET /export/.+"))
FRAME_HEADERS = ((b"x-frame-options", b"SAMEORIGIN"), (b"content-security-policy", b"frame-ancestors 'self'"))


class UnsafeJson(ValueError):
    """A JSON body the API refuses: ``code``, English and Chinese message, where (``field``) and the fix."""

    def __init__(self, code: str, message: str, message_zh: str, field: str, value, fix: str):
        super().__init__(message)
        self.code, self.message, self.message_zh, self.field, self.value, self.fix = code, message, message_zh, field, value, fix

    def body(self) -> dict:
        return error_body(self.code, self.message, message_zh=self.message_zh, field=self.field, value=self.value, fix=self.fix)


def _constant(name: str):
    raise UnsafeJson("invalid_number", f"{name} is not a number JSON allows", f"不接受 {name}", "body", name,
                     "send finite numbers (no NaN or Infinity)")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnsafeJson("invalid_number", f"the number {text[:40]} is too large", "数值过大", "body", text[:40],
                         "send numbers within the double-precision range")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > 19 or abs(int(text)) > INT_LIMIT:
        raise UnsafeJson("invalid_number", f"the integer {text[:40]}{'…' if len(text) > 40 else ''} is out of range (64-bit)",
                         "整数超出 64 位范围", "body", text[:40], f"send integers between -{INT_LIMIT} and {INT_LIMIT}")
    return int(text)


def _bad_string(s: str) -> str | None:
    if "\x00" in s:
        return "nul"
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return "surrogate"
    return None


def _string_error(kind: str, where: str, s: str) -> UnsafeJson:
    shown = s[:40].encode("utf-8", "backslashreplace").decode("utf-8")
    if kind == "nul":
        return UnsafeJson("invalid_character", f"{where} holds a NUL character (\\u0000)", f"{where} 含有 NUL 字符",
                          where, shown.replace("\x00", "\\u0000"), "remove the \\u0000 characters")
    return UnsafeJson("invalid_character", f"{where} holds a lone surrogate (an unpaired \\ud800-\\udfff escape)",
                      f"{where} 含有不成对的代理字符", where, shown, "send valid Unicode (UTF-8) text")


def check_json(raw: bytes):
    """Parse ``raw`` strictly (see the module docstring) and return the value, or raise UnsafeJson.

    >>> check_json(b'{"a": [1, 2.5, "x"]}')
    {'a': [1, 2.5, 'x']}
    >>> check_json(b'[' * 40 + b']' * 40)
    Traceback (most recent call last):
    ...
    gridwatch.api.hardening.UnsafeJson: the body nests 33+ levels deep; at most 32 are accepted
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UnsafeJson("malformed_json", f"the body is not UTF-8 text (byte {e.start})", "请求体不是 UTF-8 文本",
                         "body", e.start, "encode the JSON as UTF-8") from None
    # a cheap bound before parsing: the nesting bomb never reaches the recursive parser
    depth = deepest = 0
    for ch in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text):
        token = ch.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise UnsafeJson("too_deep", f"the body nests {MAX_DEPTH + 1}+ levels deep; at most {MAX_DEPTH} are accepted",
                                 f"JSON 嵌套超过 {MAX_DEPTH} 层", "body", depth, "send flatter JSON")
        elif token in "]}":
            depth -= 1
        deepest = max(deepest, depth)
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except UnsafeJson:
        raise
    except json.JSONDecodeError as e:
        raise UnsafeJson("malformed_json",
                         f"the body is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno} (character {e.pos})",
                         f"请求体不是合法的 JSON：第 {e.lineno} 行第 {e.colno} 列（第 {e.pos} 个字符）", "body",
                         e.doc[max(0, e.pos - 20):e.pos + 20], "check the JSON near that position (quotes, commas, brackets)") from None
    except (ValueError, RecursionError) as e:
        raise UnsafeJson("malformed_json", f"the body is not valid JSON: {e}"[:200], "请求体不是合法的 JSON", "body", None,
                         "send valid JSON") from None
    stack = [(value, "body")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            kind = _bad_string(item)
            if kind:
                raise _string_error(kind, where, item)
        elif isinstance(item, dict):
            for key, sub in item.items():
                kind = _bad_string(key)
                if kind:
                    raise _string_error(kind, f"{where} (a key)", key)
                stack.append((sub, f"{where}.{key}" if len(where) < 200 else where))
        elif isinstance(item, list):
            stack.extend((sub, f"{where}[{i}]" if len(where) < 200 else where) for i, sub in enumerate(item))
    return value


def allowed_origins() -> tuple[str, ...]:
    """Origins of ``GRIDWATCH_ALLOWED_ORIGINS`` (comma-separated, scheme://host[:port]); "self" (the
    default) is the server's own host, always allowed."""
    raw = config.get("GRIDWATCH_ALLOWED_ORIGINS")
    return tuple(o.strip().rstrip("/").lower() for o in raw.split(",") if o.strip() and o.strip().lower() != "self")


def _origin_allowed(origin: str, host: str) -> bool:
    origin = origin.strip().rstrip("/").lower()
    if not origin or origin == "null":
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    if host and parts.netloc == host.lower():
        return True
    return f"{parts.scheme}://{parts.netloc}" in allowed_origins()


class _Scripts(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.inline: list[str] = []
        self._in = False
        self._buf: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "iframe":          # an iframe srcdoc document inherits the export's CSP: its scripts count too
            for key, value in attrs:
                if key == "srcdoc" and value:
                    inner = _Scripts()
                    inner.feed(value)
                    inner.close()
                    self.inline.extend(inner.inline)
        if tag == "script":
            self._in, self._buf = not any(k == "src" for k, _ in attrs), []

    def handle_endtag(self, tag):
        if tag == "script" and self._in:
            self.inline.append("".join(self._buf))
            self._in = False

    def handle_data(self, data):
        if self._in:
            self._buf.append(data)


def export_csp(document: str) -> str:
    """The Content-Security-Policy of an HTML export: its own inline scripts by hash, nothing fetched."""
    parser = _Scripts()
    parser.feed(document)
    parser.close()
    hashes = sorted({"'sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode() + "'"
                     for s in parser.inline})
    return ("default-src 'none'; script-src " + (" ".join(hashes) or "'none'")
            + "; style-src 'unsafe-inline'; img-src data: blob:; font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'")


def _with_meta(document: str, csp: str) -> str:
    meta = '<meta http-equiv="Content-Security-Policy" content="' + csp.replace('"', "&quot;") + '">'
    match = re.search(r"<head[^>]*>", document, re.IGNORECASE)
    if match:
        return document[:match.end()] + "\n" + meta + document[match.end():]
    return meta + document


_DIGITS = re.compile(r"-?\d{19,}")


def _out_of_range(path: str, query: bytes) -> str | None:
    """A digits-only path segment or query value beyond 64-bit integers (no id or code is that long)."""
    values = path.split("/")
    if query:
        try:
            values += [v for _, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True, max_num_fields=1000)]
        except ValueError:
            pass
    for value in values:
        if _DIGITS.fullmatch(value) and abs(int(value)) > INT_LIMIT:
            return value
    return None


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _georeport(body: dict) -> list:
    """The Open311 (GeoReport v2) shape of the usual error body, as its routes answer."""
    err = body.get("error", {})
    text = err.get("message", "error") + (f" — fix: {err['fix']}" if err.get("fix") else "")
    return [{"code": None, "description": text + (f" （{err['message_zh']}）" if err.get("message_zh") else "")}]


async def _respond(send, status: int, body: dict, *extra: tuple[bytes, bytes], path: str = "") -> None:
    if path.startswith("/open311/"):
        shaped = _georeport(body)
        shaped[0]["code"] = status
        body = shaped
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            (b"cache-control", b"no-store"), *extra]})
    await send({"type": "http.response.body", "body": payload})


def _is_json_route(path: str) -> bool:
    return (path.startswith("/api/") and not ATTACHMENT_PATH.match(path)) or path.startswith("/_dash-update-component")


class HardeningMiddleware:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app):
        self.app = app
        self.throttle: Throttle | None = None      # made on the first heavy request (settings read then)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        method, path = scope.get("method", "GET"), scope.get("path", "")
        query = scope.get("query_string", b"") or b""
        headers = _headers(scope)
        send = self._secured(scope, send, path, query)

        if "\x00" in path or b"%00" in query.lower() or b"\x00" in query or "%00" in headers.get("x-filename", ""):
            return await _respond(send, 400, error_body(
                "invalid_character", "the address or a header holds a NUL character (%00)", message_zh="地址或请求头含有 NUL 字符",
                field="url", value=path[:200].replace("\x00", "\\u0000"), fix="remove the %00 from the address"), path=path)

        number = _out_of_range(path, query)
        if number is not None:
            return await _respond(send, 400, error_body(
                "invalid_number", f"the number {number[:40]} in the address is out of range (64-bit)", message_zh="地址中的整数超出 64 位范围",
                field="url", value=number[:40], fix=f"send integers between -{INT_LIMIT} and {INT_LIMIT}"), path=path)

        if method not in SAFE_METHODS:
            refused = self._origin_refusal(method, path, headers)
            if refused is not None:
                return await _respond(send, 403, refused, path=path)

        # -- the body: counted as it arrives, whatever Content-Length says
        limit = attachments.MAX_BYTES if ATTACHMENT_PATH.match(path) else int(config.get("GRIDWATCH_MAX_BODY_BYTES"))
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return await _respond(send, 413, _too_large(int(declared), limit), path=path)
        if method in SAFE_METHODS and not declared and "transfer-encoding" not in headers:
            return await self._call(scope, receive, send, method, path, headers)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _respond(send, 413, _too_large(size, limit), path=path)
                return await _drain(receive, 8 * limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)

        if body and method not in SAFE_METHODS:
            problem = self._body_problem(path, headers, body)
            if problem is not None:
                return await _respond(send, *problem, path=path)

        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self._call(scope, replay, send, method, path, headers)

    async def _call(self, scope, receive, send, method: str, path: str, headers: dict[str, str]):
        key = f"{method} {path}"
        if not any(p.match(key) for p in HEAVY):
            return await self.app(scope, receive, send)
        if self.throttle is None:
            self.throttle = Throttle()
        user = await self._user(scope, headers)
        try:
            async with self.throttle.slot(user):
                return await self.app(scope, receive, send)
        except RateLimited as e:
            return await _respond(send, 429, error_body(
                "rate_limited", f"too many heavy requests (coverage, what-if, exports) from {user.split(':', 1)[-1][:60]}; retry in {e.retry_after} s",
                message_zh=f"请求过于频繁，请 {e.retry_after} 秒后重试", field="user", value=user.split(":", 1)[-1][:60],
                fix=f"wait {e.retry_after} s (GRIDWATCH_HEAVY_PER_MINUTE sets the rate)"), (b"retry-after", str(e.retry_after).encode()))
        except Busy as e:
            return await _respond(send, 503, error_body(
                "busy", "the server is busy with other heavy requests (coverage, what-if, exports); retry shortly",
                message_zh="服务器正忙于其他计算任务，请稍后重试", fix=f"retry in {e.retry_after} s (GRIDWATCH_HEAVY_QUEUE sets the queue)"),
                (b"retry-after", str(e.retry_after).encode()))

    @staticmethod
    async def _user(scope, headers: dict[str, str]) -> str:
        """Whom a heavy request counts against: the account, else the credential, else the client address."""
        scheme, _, value = headers.get("authorization", "").partition(" ")
        secret = value.strip() if scheme.lower() == "bearer" else None
        if not secret and headers.get("cookie"):
            jar = SimpleCookie()
            try:
                jar.load(headers["cookie"])
            except Exception:  # noqa: BLE001 - a malformed cookie header counts as none
                jar = SimpleCookie()
            found = jar.get("gridwatch_session") or jar.get("gridwatch_kiosk")
            secret = found.value if found else None
        if secret and len(secret) <= 512:
            pool = getattr(getattr(scope.get("app"), "state", None), "pool", None)
            if pool is not None:
                try:
                    who = await asyncio.to_thread(auth.resolve_cached, pool, secret)
                except Exception:  # noqa: BLE001 - the identity middleware reports a broken credential
                    who = None
                if who is not None:
                    return "user:" + who.username
            return "secret:" + hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()[:16]
        return "addr:" + str((scope.get("client") or ("?",))[0])

    # -- checks ----------------------------------------------------------------------------------
    @staticmethod
    def _origin_refusal(method: str, path: str, headers: dict[str, str]) -> dict | None:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return None                    # a token is never sent by the browser on its own
        cookie = headers.get("cookie", "")
        login = path in ("/login", "/logout")
        if not any(name in cookie for name in AUTH_COOKIES) and not (login and "origin" in headers):
            return None                    # nothing ambient: the identity middleware decides (401)
        origin = headers.get("origin")
        if origin is None and headers.get("referer"):
            ref = urlsplit(headers["referer"])
            origin = f"{ref.scheme}://{ref.netloc}" if ref.scheme and ref.netloc else ""
        if origin is not None and _origin_allowed(origin, headers.get("host", "")):
            return None
        return forbidden_body(
            f"a {method} with the session cookie from {origin or 'an unnamed origin'} is refused (cross-site request)",
            message_zh="拒绝跨站请求：来源不在允许列表中", field="origin", value=origin,
            fix="send the request from the server's own pages, add the origin to GRIDWATCH_ALLOWED_ORIGINS, "
                "or use Authorization: Bearer TOKEN")

    @staticmethod
    def _body_problem(path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict] | None:
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        is_json = ctype == "application/json" or ctype.endswith("+json")
        is_form = ctype == "application/x-www-form-urlencoded"
        bearer = headers.get("authorization", "").lower().startswith("bearer ")
        if _is_json_route(path) and not ctype and bearer:
            is_json = True      # an API client's unlabelled body is read as JSON (no ambient credential: no CSRF)
        if _is_json_route(path) and not is_json:
            return 415, error_body("unsupported_media_type",
                                   f"the body is {ctype or 'unlabelled'}; this endpoint reads JSON",
                                   message_zh="请求体须为 JSON（Content-Type: application/json）", field="content-type",
                                   value=ctype or None, fix="send Content-Type: application/json")
        if is_json and (_is_json_route(path) or path.startswith("/open311/")):
            try:
                check_json(body)
            except UnsafeJson as e:
                return 400, e.body()
        elif is_form:
            try:
                pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
            except (UnicodeDecodeError, ValueError) as e:
                return 400, error_body("malformed_form", f"the form could not be read: {e}"[:200], message_zh="表单无法读取",
                                       field="body", value=None, fix="send UTF-8 application/x-www-form-urlencoded")
            for key, value in pairs:
                for s in (key, value):
                    if _bad_string(s):
                        return 400, _string_error(_bad_string(s), key[:60] or "form", s).body()
        return None

    # -- headers of every response ---------------------------------------------------------------
    @staticmethod
    def _secured(scope, send, path: str, query: bytes):
        kiosk = path == "/wall" or path.startswith("/wall/") or b"kiosk=" in query
        export = path.startswith("/export/")
        held: dict = {}

        async def secured(message):
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [h for h in SECURITY_HEADERS if h[0] not in present]
                if not kiosk and b"x-frame-options" not in present:
                    extra += FRAME_HEADERS
                message = {**message, "headers": [*message.get("headers", []), *extra]}
                ctype = dict((k.lower(), v) for k, v in message["headers"]).get(b"content-type", b"")
                if export and ctype.startswith(b"text/html"):
                    held["start"], held["body"] = message, []     # rewritten whole below
                    return None
                return await send(message)
            if message["type"] == "http.response.body" and "start" in held:
                held["body"].append(message.get("body", b""))
                if message.get("more_body", False):
                    return None
                document = b"".join(held["body"]).decode("utf-8")
                csp = export_csp(document)
                payload = _with_meta(document, csp).encode("utf-8")
                start = held.pop("start")
                headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                headers += [(b"content-length", str(len(payload)).encode()), (b"content-security-policy", csp.encode())]
                await send({**start, "headers": headers})
                return await send({"type": "http.response.body", "body": payload})
            return await send(message)

        return secured


async def _drain(receive, cap: int) -> None:
    """Read and drop the rest of a refused body (at most ``cap`` bytes, 10 s): the server stops
    reading a body nobody asks for, and a client still sending it would never read the 413."""
    try:
        async with asyncio.timeout(10):
            dropped = 0
            while dropped <= cap:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return
                dropped += len(message.get("body", b""))
    except TimeoutError:
        return


def _too_large(size: int, limit: int) -> dict:
    return error_body("body_too_large", f"the request body is {size:,}+ bytes; this server accepts at most {limit:,} bytes",
                      message_zh=f"请求体超过上限 {limit:,} 字节", field="body", value=size,
                      fix=f"send smaller requests (under {limit:,} bytes) or raise GRIDWATCH_MAX_BODY_BYTES")
