"""Vector tiles from PostGIS: content, zoom filtering, versions and HTTP caching."""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

from shapely.geometry import LineString, Point, box

import layers
from layers import LAYERS
from layers.mvt import decode
from layers.render import layer_geojson, layer_version, render_tile
from tests.factories import make_case, make_centre, make_hazard


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 1 << z
    x = int((lon + 180.0) / 360.0 * n)
    rad = math.radians(lat)
    y = int((1.0 - math.asinh(math.tan(rad)) / math.pi) / 2.0 * n)
    return z, x, y


def features(conn, name: str, z: int, x: int, y: int) -> list[dict]:
    data = render_tile(conn, layers.get(name), z, x, y)
    return decode(data).get(name, {"features": []})["features"]


def get(url: str, headers: dict | None = None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_a_known_tile_holds_the_case_grid_and_hazard_drawn_there(conn, tiny):
    case_id = make_case(conn, lon=100.5, lat=38.5, title="邻里漏水", grade="orange")
    line_id = make_hazard(conn, LineString([(100.4, 38.4), (100.6, 38.6)]), kind="power_line", title="老旧线路", grade="red")
    area_id = make_hazard(conn, box(100.45, 38.45, 100.55, 38.55), kind="flood", title="低洼地")
    z, x, y = tile_of(100.5, 38.5, 12)

    cases = features(conn, "cases", z, x, y)
    assert [(f["id"], f["type"], f["properties"]["title"], f["properties"]["grade"]) for f in cases] == \
        [(case_id, "point", "邻里漏水", "orange")]

    grids = features(conn, "grids", *tile_of(100.5, 38.5, 11))
    assert {f["properties"]["code"] for f in grids} == {"620102100200001"}
    assert all(f["type"] == "polygon" for f in grids)

    lines = features(conn, "hazard_lines", z, x, y)
    assert [(f["id"], f["type"], f["properties"]["kind"]) for f in lines] == [(line_id, "line", "power_line")]
    areas = features(conn, "hazard_areas", z, x, y)
    assert [(f["id"], f["type"]) for f in areas] == [(area_id, "polygon")]
    assert features(conn, "hazard_points", z, x, y) == []


def test_a_tile_where_nothing_is_is_empty(conn, tiny):
    make_case(conn, lon=100.5, lat=38.5)
    for layer in LAYERS:
        for z in (max(layer.minzoom, 2), layer.maxzoom):
            z, x, y = tile_of(-30.0, 40.0, z)  # the middle of the Atlantic (z0–1 tiles reach Gansu)
            assert render_tile(conn, layer, z, x, y) == b"", f"{layer.name} z{z} over the Atlantic is not empty"


def test_low_zoom_tiles_carry_no_grid_geometry(conn, tiny):
    make_case(conn, lon=100.5, lat=38.5)
    make_hazard(conn, Point(101.5, 37.5))
    for z in range(0, 11):
        zz, x, y = tile_of(101.0, 37.0, z)
        for layer in LAYERS:
            for f in decode(render_tile(conn, layer, zz, x, y)).get(layer.name, {"features": []})["features"]:
                code = str(f["properties"].get("code", ""))
                assert len(code) != 15 and f["properties"].get("level") != "grid", \
                    f"{layer.name} at z{z} carries grid {code}"
    # from zoom 11 the grids are there
    assert len(features(conn, "grids", *tile_of(101.0, 37.0, 11))) > 0


def test_cases_are_counted_per_region_at_low_zoom_and_drawn_one_by_one_at_high_zoom(conn, tiny):
    now = datetime.now(timezone.utc)
    for lon, lat in ((100.2, 38.2), (100.3, 38.3), (100.7, 36.5)):
        make_case(conn, lon=lon, lat=lat)
    make_case(conn, lon=100.4, lat=38.4, deadline=now - timedelta(hours=1), grade="red")   # overdue
    make_case(conn, lon=100.6, lat=38.6, state="closed")                                    # not open
    make_case(conn, lon=103.0, lat=36.0)                                                    # the other county

    county = {f["properties"]["code"]: f["properties"] for f in features(conn, "case_counts", *tile_of(101.0, 37.0, 6))}
    assert county["620102"]["open"] == 4 and county["620102"]["overdue"] == 1 and county["620102"]["red"] == 1
    township = {f["properties"]["code"]: f["properties"]["open"] for f in features(conn, "case_counts", *tile_of(101.0, 38.0, 8))}
    assert township.get("620102100") == 3
    grid = {f["properties"]["code"]: f["properties"]["open"] for f in features(conn, "case_counts", *tile_of(100.5, 38.5, 10))}
    assert grid.get("620102100200001") == 3
    assert features(conn, "cases", *tile_of(100.25, 38.25, 11)) == []  # individual points only from z12
    points = features(conn, "cases", *tile_of(100.3, 38.3, 12))
    assert len(points) == 1 and points[0]["type"] == "point"


def test_every_layer_returns_exactly_its_declared_properties(conn, tiny):
    make_case(conn, lon=100.5, lat=38.5)
    make_hazard(conn, Point(100.5, 38.5), kind="gas")
    make_hazard(conn, LineString([(100.4, 38.4), (100.6, 38.6)]))
    make_hazard(conn, box(100.45, 38.45, 100.55, 38.55), kind="flood")
    make_centre(conn, "620102", "county", 100.5, 38.5)
    for sev in ("red", "orange", "yellow"):   # one live alert of each grade (layers alerts_*)
        conn.execute("""INSERT INTO alert (rule, region_code, explanation_zh, explanation_en, severity, dedup_key, geom)
                        VALUES ('spike', '620102', '说明', 'text', %s, %s, ST_SetSRID(ST_MakePoint(100.5, 38.5), 4326))""",
                     (sev, f"spike:{sev}"))
    for layer in LAYERS:
        fc = layer_geojson(conn, layer, (100.0, 35.0, 104.0, 39.0), max(layer.minzoom, 12) if layer.maxzoom >= 12 else layer.minzoom)
        assert fc["features"], f"layer {layer.name} drew nothing over the tiny hierarchy"
        for f in fc["features"]:
            assert set(f["properties"]) == set(layer.properties), f"{layer.name}: {sorted(f['properties'])}"
        assert layer.path.exists()


def test_tiles_over_http_carry_an_etag_answer_304_and_a_changed_version_changes_the_etag(serve, db_url, conn, tiny):
    case_id = make_case(conn, lon=100.5, lat=38.5)
    server = serve(db_url)
    z, x, y = tile_of(100.5, 38.5, 12)
    version = layer_version(conn, layers.get("cases"))
    url = f"{server.url}/tiles/cases/{z}/{x}/{y}.pbf?v={version}"

    status, headers, body = get(url)
    assert status == 200 and headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert [f["id"] for f in decode(body)["cases"]["features"]] == [case_id]
    etag = headers["etag"]
    assert "immutable" in headers["cache-control"]  # the URL names the current version

    status, headers, body = get(url, {"If-None-Match": etag})
    assert (status, body) == (304, b"")

    status, headers, _ = get(f"{server.url}/tiles/cases/{z}/{x}/{y}.pbf?v=0-old")
    assert status == 200 and headers["etag"] == etag and "no-cache" in headers["cache-control"]

    second = make_case(conn, lon=100.51, lat=38.51)
    assert layer_version(conn, layers.get("cases")) != version
    status, headers, body = get(url, {"If-None-Match": etag})
    assert status == 200 and headers["etag"] != etag
    assert sorted(f["id"] for f in decode(body)["cases"]["features"]) == sorted([case_id, second])


def test_the_tile_index_lists_every_layer_with_a_versioned_url(serve, db_url, conn, tiny):
    server = serve(db_url)
    import json

    status, _, body = get(server.url + "/tiles/index.json")
    assert status == 200
    index = json.loads(body)
    assert [entry["name"] for entry in index["layers"]] == [layer.name for layer in LAYERS]
    for entry, layer in zip(index["layers"], LAYERS):
        assert entry["minzoom"] == layer.minzoom and entry["maxzoom"] == layer.maxzoom
        assert entry["tiles"][0].startswith(server.url + f"/tiles/{layer.name}/{{z}}/{{x}}/{{y}}.pbf?v=")
        assert entry["version"] == layer_version(conn, layer)
        assert set(entry["fields"]) == set(layer.properties)


BAD_ADDRESSES = [
    ("/tiles/roads/5/10/10.pbf", 404, ["roads", "regions", "grids"]),
    ("/tiles/grids/23/0/0.pbf", 400, ["z=23", "0…22"]),
    ("/tiles/grids/3/8/0.pbf", 400, ["x=8", "0…7"]),
    ("/tiles/grids/3/1/-1.pbf", 400, ["y=-1", "0…7"]),
]


def test_a_bad_tile_address_is_refused_naming_the_field_and_the_fix(serve, db_url):
    server = serve(db_url)
    for path, status, words in BAD_ADDRESSES:
        got, _, body = get(server.url + path)
        assert got == status, f"{path} answered {got}"
        text = body.decode()
        for word in words:
            assert word in text, f"{path}: {word!r} not in {text}"
