"""/healthz: is the server up, and can it reach its database?"""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gridwatch.db import transaction

router = APIRouter(tags=["health"])

HEALTH_WAIT_SECONDS = 3.0


@router.get("/healthz", summary="Server and database health")
def healthz(request: Request):
    pool = request.app.state.pool
    listener = request.app.state.listener
    try:
        # a short wait for a connection: a monitor asking during an outage gets its 503 in seconds
        with pool.connection(timeout=HEALTH_WAIT_SECONDS) as pooled, transaction(pooled, readonly=True) as conn:
            row = conn.execute(
                "SELECT current_setting('server_version') AS postgresql, postgis_lib_version() AS postgis, "
                "pg_is_in_recovery() AS replica"
            ).fetchone()
        body = {"status": "ok", "database": {"state": "up", **row}, "live": {"listening": listener.connected, "versions": listener.versions}}
        # Serving many screens: this worker process, its open streams, cache and where reads went.
        state = request.app.state
        body["worker"] = {"pid": os.getpid(), "streams": getattr(listener, "subscribers", None),
                          "cache": state.cache.stats() if getattr(state, "cache", None) else None,
                          "reads": dict(getattr(state, "read_stats", {}) or {}),
                          "replica": getattr(state, "read_pool", None) is not None}
        return body
    except Exception as exc:  # noqa: BLE001 - any database failure is reported, never raised
        return JSONResponse(
            status_code=503,
            content={"status": "degraded", "database": {"state": "down", "error": str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}},
        )
