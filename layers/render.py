"""Run a layer's SQL: as a vector tile (ST_AsMVT), as GeoJSON for an extent, and its data version.

The one tile idiom, commented once::

    ST_TileEnvelope(z, x, y)                     -- the tile's square in EPSG:3857
      → geom && envelope (in the table's SRID)   -- bounding-box filter: the GiST index answers
      → ST_AsMVTGeom(geom in 3857, envelope)     -- clip to the tile, quantise to 4096×4096
      → ST_AsMVT(rows, layer name)               -- one protobuf layer, feature ids from ``id``

The filtering envelope is widened by the 64-unit tile buffer so circles and lines crossing a tile
edge are drawn whole on both sides; the layer's own ``%(z)s`` guards keep dense tables out of
low-zoom tiles. Everything here takes a connection (no pool, no I/O of its own).
"""

from __future__ import annotations

import hashlib
import json

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from layers import Layer

__all__ = ["EXTENT", "BUFFER", "MAX_ZOOM", "tile_query", "render_tile", "layer_version", "tile_etag",
           "geojson_query", "layer_geojson", "check_tile_address", "versions_of"]

EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 22

_TILE = """
WITH tile AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => {margin}) AS env3857,
           ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => {margin}), 4326) AS env4326
),
features AS (
{layer_sql}
),
mvt AS (
    SELECT f.id, {props},
           ST_AsMVTGeom({geom}, ST_TileEnvelope(%(z)s, %(x)s, %(y)s), {extent}, {buffer}, true) AS geom
    FROM features f
)
SELECT ST_AsMVT(mvt.*, %(layer)s, {extent}, 'geom', 'id') AS tile FROM mvt WHERE geom IS NOT NULL
"""

_GEOJSON = """
WITH tile AS (
    SELECT ST_Transform(e, 3857) AS env3857, e AS env4326
    FROM ST_MakeEnvelope(%(xmin)s, %(ymin)s, %(xmax)s, %(ymax)s, 4326) AS e
),
features AS (
{layer_sql}
)
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
           'type', 'Feature', 'id', f.id,
           'geometry', ST_AsGeoJSON({geom}, 5)::json,
           'properties', json_build_object({props_json})) ORDER BY f.id), '[]'::json)) AS fc
FROM features f
"""


def _props(layer: Layer) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier("f", p) for p in layer.properties)


def tile_query(layer: Layer) -> sql.Composed:
    """The full ST_AsMVT query of ``layer`` (parameters: z, x, y, layer)."""
    geom = sql.SQL("f.geom") if layer.srid == 3857 else sql.SQL("ST_Transform(f.geom, 3857)")
    return sql.SQL(_TILE).format(
        margin=sql.Literal(BUFFER / EXTENT),
        layer_sql=sql.SQL(layer.sql),
        props=_props(layer),
        geom=geom,
        extent=sql.Literal(EXTENT),
        buffer=sql.Literal(BUFFER),
    )


def check_tile_address(z: int, x: int, y: int) -> None:
    """Raise ValueError naming the field, the value and the fix when z/x/y is not a tile."""
    if not 0 <= z <= MAX_ZOOM:
        raise ValueError(f"z={z} is not a zoom level: use 0…{MAX_ZOOM}")
    side = 1 << z
    for name, value in (("x", x), ("y", y)):
        if not 0 <= value < side:
            raise ValueError(f"{name}={value} is outside zoom {z}'s tiles: use 0…{side - 1}")


def render_tile(conn: psycopg.Connection, layer: Layer, z: int, x: int, y: int) -> bytes:
    """MVT bytes of ``layer`` for tile z/x/y; ``b""`` when the layer does not show at ``z``."""
    check_tile_address(z, x, y)
    if not layer.shows_at(z):
        return b""
    # JIT compiles aggregate-heavy plans for tens of milliseconds a tile; tiles are short queries.
    conn.execute("SELECT set_config('jit', 'off', true)")
    row = conn.execute(tile_query(layer), {"z": z, "x": x, "y": y, "layer": layer.name}).fetchone()
    data = row["tile"] if isinstance(row, dict) else row[0]
    return bytes(data or b"")


def layer_version(conn: psycopg.Connection, layer: Layer) -> str:
    """The data version of ``layer``: its tables' versions joined by '-' (e.g. '12-3')."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute("SELECT name, version FROM data_version WHERE name = ANY(%s)", (list(layer.tables),)).fetchall()
    got = {r["name"]: r["version"] for r in rows}
    return "-".join(str(got.get(t, 0)) for t in layer.tables)


def versions_of(versions: dict[str, int], layer: Layer) -> str:
    """The same version string from an in-memory {table: version} map (the live listener's)."""
    return "-".join(str(versions.get(t, 0)) for t in layer.tables)


def tile_etag(layer: str, version: str, z: int, x: int, y: int) -> str:
    """A strong ETag: a hash of (layer, data version, z, x, y)."""
    digest = hashlib.sha256(f"{layer}|{version}|{z}|{x}|{y}".encode()).hexdigest()[:24]
    return f'"{digest}"'


def geojson_query(layer: Layer) -> sql.Composed:
    """``layer`` as a GeoJSON FeatureCollection (parameters: xmin, ymin, xmax, ymax in lon/lat, z)."""
    geom = sql.SQL("ST_Transform(f.geom, 4326)") if layer.srid != 4326 else sql.SQL("f.geom")
    props = sql.SQL(", ").join(sql.SQL("{}, {}").format(sql.Literal(p), sql.Identifier("f", p)) for p in layer.properties)
    return sql.SQL(_GEOJSON).format(layer_sql=sql.SQL(layer.sql), geom=geom, props_json=props)


def layer_geojson(conn: psycopg.Connection, layer: Layer, bounds: tuple[float, float, float, float], z: int) -> dict:
    """Features of ``layer`` within ``bounds`` (lon/lat min/max) as they show at zoom ``z``."""
    if not layer.shows_at(z):
        return {"type": "FeatureCollection", "features": []}
    xmin, ymin, xmax, ymax = (float(v) for v in bounds)
    params = {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax, "z": int(z)}
    row = conn.execute(geojson_query(layer), params).fetchone()
    fc = row["fc"] if isinstance(row, dict) else row[0]
    return fc if isinstance(fc, dict) else json.loads(fc)
