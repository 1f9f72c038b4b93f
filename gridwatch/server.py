"""The assembly: one server process, Dash pages on FastAPI, plus tiles, the JSON API and /healthz.

The only module that imports both faces (``dashboard/`` and ``gridwatch/api/``); the faces never
import each other, and ``gridwatch serve`` and the tests build the app here.

``create_app`` opens nothing at import time; it builds the FastAPI app, includes every router in
``ROUTERS`` (before Dash adds its catch-all page route), then mounts Dash with its pages.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import dash
from fastapi import APIRouter, FastAPI

import dashboard
from dashboard.shell import layout as shell_layout
from dashboard.shell import prime_dash_pages
from gridwatch import __version__, config
from gridwatch.api.auth import IdentityMiddleware
from gridwatch.api.hardening import HardeningMiddleware
from gridwatch.api.errors import install_error_handlers
from gridwatch.db import app_url_for, database_url, open_pool
from gridwatch.cache import open_cache
from gridwatch.live import LiveHub
from gridwatch.replica import install_read_routing

__all__ = ["create_app", "ROUTERS"]

# Each module exposes ``router`` (a FastAPI APIRouter). Order matters only for overlapping paths.
ROUTERS: tuple[str, ...] = (
    "gridwatch.api.health",
    "gridwatch.api.auth",
    "gridwatch.api.tiles",
    "gridwatch.api.regions",
    "gridwatch.api.export",
    "gridwatch.api.cases",
    "gridwatch.api.hazards",
    "gridwatch.api.checkins",
    "gridwatch.api.open311",
    "gridwatch.api.coverage",
    "gridwatch.api.alerts",
    "gridwatch.api.live",
    "gridwatch.api.workbench",
)

DASHBOARD = Path(dashboard.__file__).resolve().parent


def create_app(url: str | None = None) -> FastAPI:
    """Build the ASGI app serving everything; ``url`` overrides DATABASE_URL / the embedded cluster."""
    url = url or database_url()
    server = FastAPI(
        title="gridwatch API",
        version=__version__,
        description="Intake, lifecycle, regions, coverage, alerts and vector tiles of gridwatch (综治中心网格化服务管理).",
    )
    server.state.database_url = url
    # Requests run as the app role (no BYPASSRLS, owns nothing): row-level security applies to every
    # read and write, scoped by the request's credential (IdentityMiddleware binds it). Only login,
    # logout and system work (the alert runner's "run now") use the owner's small pool.
    server.state.pool = open_pool(app_url_for(url), name="gridwatch-app")
    server.state.owner_pool = open_pool(url, max_size=2, name="gridwatch-owner")
    # One LISTEN per process, on the primary itself (never through pgbouncer): pushes to every open page.
    server.state.listener = LiveHub(config.get("GRIDWATCH_LISTEN_URL") or url, max_subscribers=int(config.get("GRIDWATCH_LIVE_MAX")))
    server.include_router(APIRouter(on_startup=[server.state.listener.start], on_shutdown=[server.state.listener.aclose]))
    server.state.cache = open_cache()   # tiles and aggregates: Redis shared by all workers, or local
    install_read_routing(server)        # GRIDWATCH_READ_URL: reads from a replica, own writes from the primary
    server.add_middleware(IdentityMiddleware)   # who asks: binds the credential, 401/403 on writes, /login for pages
    for module in ROUTERS:
        server.include_router(importlib.import_module(module).router)
    install_error_handlers(server)   # core errors → 404/409/422, validation → 422, database down → 503
    # Dash's FastAPI backend finishes setting pages up on the first /_dash-* request, after the
    # first page's HTML was already sent; priming it at startup keeps that first page whole.
    server.include_router(APIRouter(on_startup=[prime_dash_pages]))

    app = dash.Dash(
        "dashboard",
        server=server,
        use_pages=True,
        pages_folder=str(DASHBOARD / "pages"),
        assets_folder=str(DASHBOARD / "assets"),
        title="综治中心 · gridwatch",
        update_title=None,
        suppress_callback_exceptions=True,
        serve_locally=True,
    )
    app.layout = shell_layout
    # Added after Dash's own middleware (which reads JSON bodies) so it is the outermost layer: the body
    # limit, 415/strict JSON, Origin check, heavy queue and security headers come before anything else.
    server.add_middleware(HardeningMiddleware)
    server.state.dash_app = app
    server.state.settings = {s.name: config.get(s.name) for s in config.SETTINGS if s.name != "DATABASE_URL"}
    return server
