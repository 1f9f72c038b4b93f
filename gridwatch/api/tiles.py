"""Vector tiles: ``/tiles/<layer>/<z>/<x>/<y>.pbf`` and the layer list ``/tiles/index.json``.

Each tile is one ST_AsMVT query built from the layer's declaration (``layers/``). Its URL carries
the layer's data version (``?v=``): a URL naming the current version is cached for good
(``immutable``); an older one is served the current tile with ``no-cache``. Many pages asking at
once for the same tile share one render (``gridwatch.cache.single_flight``). The ETag is a hash of
(layer, scope, data version, z, x, y) — a client revalidating with ``If-None-Match`` gets 304 until the
data behind the layer changes.
"""

from __future__ import annotations

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

import layers
from gridwatch import auth
from gridwatch.api.auth import current_principal
from gridwatch.cache import cache_key, single_flight
from gridwatch.db import transaction
from gridwatch.replica import reader
from gridwatch.display import tile_path
from layers.render import check_tile_address, layer_version, render_tile, tile_etag, versions_of

__all__ = ["router", "MVT_TYPE"]

router = APIRouter(tags=["tiles"])

MVT_TYPE = "application/vnd.mapbox-vector-tile"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# Tables under row-level security: a layer reading one renders per scope (cache keys and ETags
# carry the scope; responses are private). Layers carry no personal data at all (layers/*.sql).
SCOPED_TABLES = frozenset({"cases", "hazard", "checkin", "alert", "alert_silence", "case_event", "mediation"})


def _db_down(exc: Exception) -> JSONResponse:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return JSONResponse(status_code=503, content={"error": f"the database is unavailable ({first}); retry shortly"},
                        headers={"Retry-After": "2", "Cache-Control": "no-store"})


@router.get("/tiles/index.json", summary="The vector-tile layers, TileJSON-style")
def tile_index(request: Request):
    base = str(request.base_url).rstrip("/")
    try:
        with transaction(request.app.state.pool, readonly=True) as conn:
            versions = {layer.name: layer_version(conn, layer) for layer in layers.LAYERS}
    except (psycopg.Error, TimeoutError) as exc:
        return _db_down(exc)
    return {
        "tilejson": "3.0.0",
        "name": "gridwatch",
        "scheme": "xyz",
        "format": "pbf",
        "layers": [
            {
                "name": layer.name,
                "title": {"zh": layer.title_zh, "en": layer.title_en},
                "description": layer.about,
                "geometry": layer.geometry,
                "minzoom": layer.minzoom,
                "maxzoom": layer.maxzoom,
                "fields": {p: "" for p in layer.properties},
                "version": versions[layer.name],
                "tiles": [base + tile_path(layer.name, versions[layer.name])],
                "style": layer.style,
            }
            for layer in layers.LAYERS
        ],
    }


def scope_key(request: Request, layer) -> str:
    """What a tile's content depends on besides its address: "all" for layers of unprotected tables
    (regions, grids, centres), else the asker's scope (row-level security filters their rows), so
    one user's cached tile is never served to another scope."""
    if not SCOPED_TABLES.intersection(layer.tables):
        return "all"
    return auth.scope_key(current_principal(request))


@router.get("/tiles/{layer}/{z}/{x}/{y}.pbf", summary="One vector tile (Mapbox Vector Tile)",
            response_class=Response, responses={200: {"content": {MVT_TYPE: {}}}, 304: {}, 400: {}, 404: {}})
def tile(layer: str, z: int, x: int, y: int, request: Request, v: str | None = None):
    try:
        declared = layers.get(layer)
    except layers.LayerNotFound as exc:
        return JSONResponse(status_code=404, content={"error": str(exc)})
    try:
        check_tile_address(z, x, y)
    except ValueError as exc:
        return JSONResponse(status_code=400, content={"error": str(exc)})
    # The shared tile cache (Redis across workers, or local): a URL naming the current version (the
    # live hub knows it, no query) is answered without touching the database when rendered before.
    cache, state = getattr(request.app.state, "cache", None), request.app.state
    scope = scope_key(request, declared)

    def control(value: str) -> str:   # a scoped tile is the user's own: no shared cache may keep it
        return value if scope == "all" else value.replace("public", "private") if "public" in value else "private, " + value
    # A URL naming an older version is answered with the current one (fresh, no-cache), as a render would.
    live = getattr(getattr(state, "listener", None), "versions", None)
    now = versions_of(live, declared) if live else None

    def cached(hit: bytes) -> Response:
        etag = tile_etag(f"{declared.name}@{scope}", now, z, x, y)
        headers = {"ETag": etag, "Cache-Control": control(IMMUTABLE if v == now else REVALIDATE), "X-Data-Version": now,
                   "Vary": "Accept-Encoding", "X-Cache": "hit"}
        if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
            return Response(status_code=304, headers=headers)
        return Response(content=hit, media_type=MVT_TYPE, headers=headers)
    key = (cache_key("tile", declared.name, scope, now, z, x, y)      # (a URL newer than the hub knows: rendered)
           if cache is not None and v is not None and now and _not_older(now, v) else None)
    hit = cache.get(key) if key else None
    if hit is not None:
        return cached(hit)
    with single_flight(cache, key) as hit:     # many pages asking for one new tile at once: one render
        if hit is not None:
            return cached(hit)
        return _render(request, declared, scope, v, z, x, y, cache, control, key, now)


def _not_older(version: str, than: str | None) -> bool:
    """Is layer version ``version`` ('12-3') at least ``than`` in every table? (False if malformed.)"""
    try:
        mine, other = [int(p) for p in version.split("-")], [int(p) for p in (than or "").split("-")]
    except ValueError:
        return False
    return len(mine) == len(other) and all(a >= b for a, b in zip(mine, other))


def _render(request, declared, scope, v, z, x, y, cache, control, asked: str | None = None,
            asked_version: str | None = None) -> Response:
    try:
        with transaction(reader(request.app.state), readonly=True) as conn:
            version = layer_version(conn, declared)
            etag = tile_etag(f"{declared.name}@{scope}", version, z, x, y)
            headers = {"ETag": etag, "Cache-Control": control(IMMUTABLE if v == version else REVALIDATE),
                       "X-Data-Version": version, "Vary": "Accept-Encoding", "X-Cache": "miss"}
            if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
                return Response(status_code=304, headers=headers)
            body = render_tile(conn, declared, z, x, y)
    except (psycopg.Error, TimeoutError) as exc:
        return _db_down(exc)
    if cache is not None:
        cache.set(cache_key("tile", declared.name, scope, version, z, x, y), body)   # keyed by scope and the version read with it
        if asked is not None and asked != cache_key("tile", declared.name, scope, version, z, x, y) and _not_older(version, asked_version):
            cache.set(asked, body)    # read at a newer version than asked: never older, and the waiters' answer
    return Response(content=body, media_type=MVT_TYPE, headers=headers)
