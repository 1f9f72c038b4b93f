"""The schema refuses bad rows with errors that name what is wrong."""

from __future__ import annotations

import psycopg
from psycopg import sql
import pytest
from shapely.geometry import Polygon, box

from tests.factories import geojson, make_case, make_region


def _count(conn, table):
    return conn.execute(sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(table))).fetchone()["n"]


def test_a_child_whose_code_does_not_start_with_its_parents_is_refused(conn):
    make_region(conn, "62", "甘肃省", "province", box(100, 35, 104, 39))
    make_region(conn, "6207", "张掖市", "prefecture", box(100, 35, 102, 39), "62")
    with pytest.raises(psycopg.errors.CheckViolation, match="region_parent_is_prefix"):
        make_region(conn, "630702", "不对区", "county", box(100, 35, 101, 36), "6207")
    assert _count(conn, "region") == 2


def test_a_code_of_the_wrong_length_for_its_level_is_refused(conn):
    make_region(conn, "62", "甘肃省", "province", box(100, 35, 104, 39))
    with pytest.raises(psycopg.errors.CheckViolation, match="region_code_length_fits_level"):
        make_region(conn, "62070", "张掖市", "prefecture", box(100, 35, 102, 39), "62")


def test_an_invalid_self_intersecting_polygon_is_refused(conn):
    bowtie = Polygon([(100, 35), (101, 36), (101, 35), (100, 36), (100, 35)])
    assert not bowtie.is_valid
    with pytest.raises(psycopg.errors.CheckViolation, match="region_geom_valid"):
        make_region(conn, "62", "甘肃省", "province", bowtie)
    assert _count(conn, "region") == 0


def test_a_geometry_in_another_srid_is_refused(conn):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="SRID"):
        conn.execute(
            "INSERT INTO region (code, name, level, source, geom) VALUES "
            "('62', '甘肃省', 'province', 'test', ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(%s), 3857)))",
            (geojson(box(11e6, 4e6, 11.5e6, 4.5e6)),),
        )
    assert _count(conn, "region") == 0


def test_a_case_in_an_unknown_state_is_refused(tiny, conn):
    with pytest.raises(psycopg.errors.CheckViolation, match="cases_state_check"):
        make_case(conn, state="forgotten")
    assert _count(conn, "cases") == 0


def test_the_case_event_trail_cannot_be_rewritten(tiny, conn):
    case_id = make_case(conn)
    conn.execute("INSERT INTO case_event (case_id, actor, action, to_state) VALUES (%s, 'tester', 'report', 'reported')", (case_id,))
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute("UPDATE case_event SET note = 'changed'")
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute("DELETE FROM case_event")
    assert _count(conn, "case_event") == 1


def test_derived_geometry_columns_follow_the_boundary(conn):
    make_region(conn, "62", "甘肃省", "province", box(100, 35, 101, 36))
    row = conn.execute(
        "SELECT ST_SRID(geom_3857) AS srid, ST_Within(label_point, geom) AS inside, area_km2 FROM region"
    ).fetchone()
    assert row["srid"] == 3857 and row["inside"]
    assert 9_000 < row["area_km2"] < 10_500  # 1° × 1° at 35.5°N ≈ 10,050 km²


def test_every_change_bumps_the_tables_data_version_once_per_statement(tiny, conn):
    before = conn.execute("SELECT version FROM data_version WHERE name = 'cases'").fetchone()["version"]
    conn.execute("INSERT INTO category (code, family, name_zh, name_en, department_kind, time_limit_hours) "
                 "VALUES ('x', 'event', '其他', 'Other', 'urban', 24)")
    conn.execute(
        "INSERT INTO cases (category_code, family, title, geom) SELECT 'x', 'event', 't' || g, "
        "ST_SetSRID(ST_MakePoint(101, 38), 4326) FROM generate_series(1, 50) g"
    )
    after = conn.execute("SELECT version FROM data_version WHERE name = 'cases'").fetchone()["version"]
    assert after == before + 1
