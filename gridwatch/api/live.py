"""/api/v1/live: server-sent events of data versions, asynchronous (no thread per stream).

Each stream subscribes to its process's :class:`gridwatch.live.LiveHub` (one LISTEN per process)
for one region (``?region=620702``), for the signed-in user's own scope (``?mine=true``: a county
operator's workbench hears of its county only; a department or a province-wide role hears of
everything, which is what it may see), or for everything (neither). It sends:

- ``event: version`` with ``{table: version}`` at once, then whenever a change touches the region,
  at most one per ``GRIDWATCH_LIVE_COALESCE_MS`` (a burst of changes is one message);
- ``event: status`` with ``{"ok": bool}`` when the server loses or regains its database (after
  an outage a ``version`` message with ``"_reconnected"`` follows: refresh everything);
- ``event: beat`` every 15 s so proxies keep it open and the page knows the link is alive.

Dashboard pages hold one such stream each (dashboard/assets/gridwatch.js). Beyond
``GRIDWATCH_LIVE_MAX`` open streams a process answers 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import json
import time

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from gridwatch import config
from gridwatch.api.auth import current_principal
from gridwatch.api.errors import error_body, unauthenticated_body
from gridwatch.errors import Invalid
from gridwatch.live import LiveFull
from gridwatch.regions import BadRegionCode, check_code

__all__ = ["router", "BEAT_SECONDS"]

router = APIRouter(prefix="/api/v1", tags=["live"])

BEAT_SECONDS = 15.0


def _event(kind: str, data) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@router.get("/live", summary="Server-sent events: data versions, pushed when a change touches the region",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`event: version` with {table: version}; `event: status` {ok}; `event: beat` every 15 s"},
                       503: {"description": "this process already serves GRIDWATCH_LIVE_MAX streams; retry later"}})
async def live(request: Request,
               once: bool = Query(False, description="close after the first version message"),
               region: str = Query("", description="only changes touching this region code (and its parents/children); "
                                                   "GB/T 2260 six digits work too (620700 is 张掖市, 6207)"),
               mine: bool = Query(False, description="only changes touching the signed-in user's region scope "
                                                     "(the workbench pages); needs a session or token")):
    scope: str | tuple[str, ...] = ""
    if mine:
        if region:
            raise Invalid("give either region or mine, not both", message_zh="region 与 mine 只能二选一",
                          field="mine", value=True, fix="drop one of the two parameters")
        # resolving a session may read the database: off the event loop (cached for a few seconds)
        principal = await run_in_threadpool(current_principal, request)
        if principal is None:
            return JSONResponse(status_code=401, content=unauthenticated_body())
        scope = tuple(c for c in principal.region_scope.split(",") if c)
    elif region:
        try:
            region = check_code(region)      # the one parser: 620700 → 6207, a prefecture, not a county
        except BadRegionCode as exc:
            exc.field, exc.value = "region", region
            raise
        scope = region
    hub = request.app.state.listener
    try:
        sub = hub.subscribe(scope)
    except LiveFull as exc:
        return JSONResponse(status_code=503, headers={"Retry-After": "5"}, content=error_body(
            "live_full", str(exc), message_zh="实时连接已达上限，请稍后重试",
            fix="retry after a few seconds, or raise GRIDWATCH_LIVE_MAX / add workers"))
    coalesce = int(config.get("GRIDWATCH_LIVE_COALESCE_MS")) / 1000.0

    async def stream():
        try:
            yield "retry: 1000\n\n"
            sent = hub.versions
            yield _event("version", sent)
            if once:
                return
            ok, last = hub.connected, 0.0
            if not ok:
                yield _event("status", {"ok": False})
            while True:
                if not await sub.wait(BEAT_SECONDS):
                    yield _event("beat", {"ok": hub.connected})
                    continue
                if time.monotonic() - last < coalesce:
                    # A burst: gather it into one message, sent on the next whole period of the clock,
                    # so that every busy stream of every worker asks for the same versions at the same
                    # moment and the shared cache answers all but the first.
                    await asyncio.sleep(coalesce - (time.time() % coalesce))
                tables, status = sub.take()
                last = time.monotonic()
                if status and hub.connected != ok:
                    ok = hub.connected
                    yield _event("status", {"ok": ok})
                    if ok:
                        sent = hub.versions
                        yield _event("version", {**sent, "_reconnected": int(time.time() * 1000)})
                    continue
                if tables and hub.versions != sent:     # (a change of a table without a version: nothing to say)
                    sent = hub.versions
                    yield _event("version", sent)
        finally:
            sub.close()

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
