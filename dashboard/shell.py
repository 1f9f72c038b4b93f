"""The application shell: header with a nav built from ``dash.page_registry``, the language switch,
the live-update heartbeat, the database banner, and the page container.

Shared browser state the pages read:

- ``shell-lang`` (dcc.Store, local storage): "zh" or "en";
- ``shell-versions`` (dcc.Store): {table: version}, pushed by the server (one server-sent-events
  stream per page, ``/api/v1/live?region=…``, or ``?mine=true`` on pages registered with
  ``live="mine"``, opened by ``gridwatchLive`` in assets/gridwatch.js) only when a change touches
  the page's region (the user's scope on the workbench pages), at most once a second; after an outage or a lost
  connection ``_reconnected`` is set — the refresh trigger of maps and KPI panels. No polling: a
  page that hears of no relevant change makes no request;
- ``shell-heartbeat`` (dcc.Store): {"ok": bool, "at": epoch ms of the last moment the live
  connection was known good} — freshness badges age from it (set in the browser by the stream).

A page can ask for a full-screen shell (no header) by registering with ``fullscreen=True``
(the wall does); a page registered with ``nav=False`` stays out of the nav.
"""

from __future__ import annotations

import inspect
import json
import time

import dash
from dash import Input, Output, State, clientside_callback, dcc, html

from gridwatch.i18n import register, t
from dashboard import session
from dashboard.util import listener
from gridwatch import config

__all__ = ["layout", "nav_pages", "prime_dash_pages"]

register({
    "nav.label": {"zh": "导航", "en": "Navigation"},
    "shell.live.off": {"zh": "实时连接中断", "en": "Live updates interrupted"},
})


def nav_pages() -> list[dict]:
    """Registered pages that belong in the nav, in ``order`` (then name) order."""
    pages = [p for p in dash.page_registry.values() if p.get("nav", True) and "<" not in (p.get("path") or "")]
    return sorted(pages, key=lambda p: (p.get("order", 50) if p.get("order") is not None else 50, p.get("name", "")))


async def prime_dash_pages() -> None:
    """Run Dash's first-request setup now (server start) rather than on the first /_dash-* request.

    With the FastAPI backend, Dash registers the pages router and its clientside callback on the
    first request whose path is ``/`` or ``/_dash-*``. A first visit straight to ``/wall`` or
    ``/region/<code>`` would get a page built before that, missing the router's script (the browser
    logs "Cannot read properties of undefined (reading 'apply')"). Awaited from a startup hook
    (``gridwatch/server.py``).
    """
    app = dash.get_app()
    # Dash's renderer opens a WebSocket whenever the backend could serve one, even with
    # websocket_callbacks off; uvicorn here has no WebSocket library, so each page would retry
    # and log failures before falling back to HTTP. Callbacks go over HTTP: say so up front.
    if not getattr(app, "_websocket_callbacks", False):
        app.backend.websocket_capability = False
    for hook in list(getattr(app.backend, "_before_request_funcs", [])):
        result = hook()
        if inspect.isawaitable(result):
            await result


def _page_label(page: dict, lang: str) -> str:
    key = page.get("nav_key")
    return t(key, lang) if key else page.get("name", page.get("path", ""))


def _fullscreen_paths() -> list[str]:
    return [p["path"] for p in dash.page_registry.values() if p.get("fullscreen")]


def _mine_paths() -> list[str]:
    """Path prefixes of the pages registered with ``live="mine"`` (the workbench, a case, intake, the
    phone): their stream follows the signed-in user's scope, not a code in the path (a case id is not
    a region)."""
    return sorted({(p.get("path_template") or p["path"]).split("<")[0].rstrip("/") or "/"
                   for p in dash.page_registry.values() if p.get("live") == "mine"})


def layout():
    lang = config.get("GRIDWATCH_LANG")
    lang = lang if lang in ("zh", "en") else "zh"
    return html.Div(
        [
            dcc.Location(id="shell-url"),
            dcc.Store(id="shell-lang", storage_type="local", data=lang),
            dcc.Store(id="shell-versions", data=_versions_now()),
            dcc.Store(id="shell-heartbeat", data={"ok": True, "at": int(time.time() * 1000)}),
            dcc.Store(id="shell-fullscreen", data=_fullscreen_paths()),
            dcc.Store(id="shell-live-scope"),
            # The versions this page was built at: the stream's first message is compared with them.
            # The versions this page was built at (the stream's first message is compared with them),
            # and the pages whose stream follows the user's scope.
            html.Div(id="shell-live-init", hidden=True, **{"data-versions": json.dumps(_versions_now()),
                                                           "data-mine": json.dumps(_mine_paths())}),
            html.Header(
                [
                    html.H1(t("app.title", lang), id="shell-title"),
                    html.Nav(id="shell-nav", className="shell-nav", **{"aria-label": t("nav.label", lang)}),
                    html.Button(t("lang.switch", lang), id="shell-lang-button", className="shell-lang", n_clicks=0),
                    html.Span(id="shell-user", className="shell-user"),   # name, role, logout (dashboard/workbench_ui.py)
                ],
                id="shell-header", className="shell-header",
            ),
            html.Div(t("state.error.db", lang), id="shell-banner", className="shell-banner", hidden=True, role="alert"),
            dash.page_container,
        ],
        id="shell", className="shell",
    )


@dash.callback(Output("shell-lang", "data"), Input("shell-lang-button", "n_clicks"), State("shell-lang", "data"),
               prevent_initial_call=True)
def switch_language(_, lang):
    return "en" if lang == "zh" else "zh"


@dash.callback(Output("shell-title", "children"), Output("shell-nav", "children"), Output("shell-lang-button", "children"),
               Output("shell-banner", "children"), Input("shell-lang", "data"), Input("shell-url", "pathname"))
def label_shell(lang, pathname):
    lang = lang if lang in ("zh", "en") else "zh"
    links = []
    who = session.principal()
    for page in nav_pages():
        if page.get("roles") and (who is None or who.role not in page["roles"]):   # menus by role
            continue
        path = page["path"]
        active = pathname == path or (path == "/" and (pathname or "").startswith("/region/")) or \
            (path != "/" and (pathname or "").startswith(path))
        links.append(dcc.Link(_page_label(page, lang), href=path, id=f"shell-nav-{page['module'].split('.')[-1]}",
                              className="shell-nav-link active" if active else "shell-nav-link"))
    return t("app.title", lang), links, t("lang.switch", lang), t("state.error.db", lang)


def _versions_now() -> dict:
    """The data versions this process's live hub knows (memory, no query); {} outside a request."""
    try:
        return dict(listener().versions)
    except Exception:  # noqa: BLE001 - no app yet (import, tests): the stream brings them
        return {}


# One push connection per page: the stream follows the page's region (assets/gridwatch.js). A
# clientside callback: changing page opens the new region's stream without any request of its own.
clientside_callback(
    "function(pathname) { return window.gridwatchLive ? window.gridwatchLive.follow(pathname) : ''; }",
    Output("shell-live-scope", "data"),
    Input("shell-url", "pathname"),
)


# Full-screen pages (the wall) hide the header; the page language also sets <html lang>.
clientside_callback(
    """
    function(pathname, fullscreen, lang) {
        document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
        var full = (fullscreen || []).some(function (p) { return pathname === p || (pathname || '').indexOf(p + '/') === 0; });
        document.body.classList.toggle('gw-fullscreen', full);
        return full ? 'shell shell--fullscreen' : 'shell';
    }
    """,
    Output("shell", "className"),
    Input("shell-url", "pathname"), Input("shell-fullscreen", "data"), Input("shell-lang", "data"),
)
