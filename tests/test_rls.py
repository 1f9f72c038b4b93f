"""Region scope enforced by PostgreSQL: direct SQL as the app role gridwatch_app (migration 0081).

Each test builds rows in all four townships of the tiny hierarchy as the owner, then reads them as
the app role inside transactions opened with a user's session id (gridwatch.db.transaction with
``credential``), the way the server does.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from gridwatch import auth
from gridwatch.db import transaction
from tests.factories import make_case, make_category, make_department, make_hazard

# Every protected table and how to find the township of one of its rows (as the owner).
PROTECTED = {
    "cases": "SELECT id, township_code AS t FROM cases",
    "case_event": "SELECT e.id, c.township_code AS t FROM case_event e JOIN cases c ON c.id = e.case_id",
    "mediation": "SELECT m.id, c.township_code AS t FROM mediation m JOIN cases c ON c.id = m.case_id",
    "mediation_history": "SELECT m.id, c.township_code AS t FROM mediation_history m JOIN cases c ON c.id = m.case_id",
    "hazard": "SELECT id, township_code AS t FROM hazard",
    "hazard_event": "SELECT e.id, h.township_code AS t FROM hazard_event e JOIN hazard h ON h.id = e.hazard_id",
    "checkin": "SELECT id, left(grid_code, 9) AS t FROM checkin",
    "alert": "SELECT id, left(region_code, 9) AS t FROM alert",
    "alert_ack_history": "SELECT id, left(region_code, 9) AS t FROM alert_ack_history",
}
TOWNSHIPS = {  # a point inside each township of tests/factories.make_tiny_gansu
    "620102100": (101.0, 38.5), "620102200": (101.0, 35.5), "620702100": (103.0, 38.5), "620702200": (103.0, 35.5),
}
TRAILS = ("case_event", "hazard_event", "mediation_history", "alert_ack_history", "personal_data_access")


def app_url(db_url: str) -> str:
    return db_url.replace("postgresql://gridwatch@", "postgresql://gridwatch_app@", 1)


def _one(conn, query, params=()):
    row = conn.execute(query, params).fetchone()
    return None if row is None else (next(iter(row.values())) if isinstance(row, dict) else row[0])


@pytest.fixture
def world(conn, tiny):
    """Rows in every protected table for each township; users with sessions; the app-role URL."""
    make_category(conn)
    dept = {}
    for town, (lon, lat) in TOWNSHIPS.items():
        dept[town] = make_department(conn, town[:6], "water", f"{town}水务")
        case_id = make_case(conn, lon, lat, title=f"案件{town}", reporter_name="张三", reporter_phone="13800000000",
                            department_id=dept[town])
        conn.execute("INSERT INTO case_event (case_id, actor, action, to_state) VALUES (%s, 'etl', 'report', 'reported')", (case_id,))
        m = _one(conn, "INSERT INTO mediation (case_id, kind, mediator) VALUES (%s, 'people', '调解员') RETURNING id", (case_id,))
        conn.execute("UPDATE mediation SET outcome = 'agreed', ended_at = now() WHERE id = %s", (m,))
        from shapely.geometry import Point

        hazard_id = make_hazard(conn, Point(lon, lat))
        conn.execute("INSERT INTO hazard_event (hazard_id, actor, action, to_state) VALUES (%s, 'etl', 'report', 'open')", (hazard_id,))
        grid = _one(conn, "SELECT grid_code FROM cases WHERE id = %s", (case_id,))
        conn.execute("INSERT INTO checkin (grid_code, worker, day, kind) VALUES (%s, '网格员', current_date, 'all_clear')", (grid,))
        a = _one(conn, """INSERT INTO alert (rule, region_code, explanation_zh, explanation_en, severity, dedup_key)
                          VALUES ('red_case', %s, '红色案件', 'red case', 'red', %s) RETURNING id""", (town, f"k{town}"))
        conn.execute("UPDATE alert SET acknowledged_at = now(), acknowledged_by = '值班员' WHERE id = %s", (a,))
    users = {
        "xindun": auth.add_user(conn, "xindun", "operator", region_code="620702100"),
        "wujiang": auth.add_user(conn, "wujiang", "operator", region_code="620702200"),
        "ganzhou": auth.add_user(conn, "ganzhou", "operator", region_code="620702"),
        "leader": auth.add_user(conn, "leader", "province_leader"),
        "grid": auth.add_user(conn, "grid", "grid_worker",
                              region_code=_one(conn, "SELECT grid_code FROM cases WHERE township_code = '620102100'")),
        "water": auth.add_user(conn, "water", "department", department_id=dept["620702100"]),
    }
    sessions = {name: auth.create_session(conn, uid) for name, uid in users.items()}
    truth = {table: [dict(r) for r in conn.execute(q).fetchall()] for table, q in PROTECTED.items()}
    return {"sessions": sessions, "users": users, "truth": truth, "dept": dept}


@pytest.fixture
def app(db_url):
    with psycopg.connect(app_url(db_url), row_factory=dict_row) as c:
        yield c


def setting(name: str, value: str) -> tuple[str, tuple]:
    """A statement any SQL a request causes could run: SET LOCAL of a custom setting."""
    return "SELECT set_config(%s, %s, true)", (name, value)


def visible(app, table: str, credential: str | None = None, forge: tuple[tuple[str, tuple], ...] = ()) -> set[int]:
    with transaction(app, credential=credential) as c:
        for stmt, params in forge:
            c.execute(stmt, params)
        return {r["id"] for r in c.execute(sql.SQL("SELECT id FROM {}").format(sql.Identifier(table))).fetchall()}


def test_a_township_operator_reads_only_its_own_townships_rows_in_every_protected_table(world, app):
    for table, rows in world["truth"].items():
        assert {r["t"] for r in rows} == set(TOWNSHIPS), f"{table}: the fixture has rows in every township"
        mine = {r["id"] for r in rows if r["t"] == "620702100"}
        assert mine, table
        assert visible(app, table, world["sessions"]["xindun"]) == mine, table
        other = {r["id"] for r in rows if r["t"] == "620702200"}
        assert visible(app, table, world["sessions"]["wujiang"]) == other, table


def test_a_county_operator_reads_both_its_townships_and_nothing_of_the_other_county(world, app):
    for table, rows in world["truth"].items():
        assert visible(app, table, world["sessions"]["ganzhou"]) == {r["id"] for r in rows if r["t"].startswith("620702")}, table


def test_the_province_leader_reads_every_row(world, app):
    for table, rows in world["truth"].items():
        assert visible(app, table, world["sessions"]["leader"]) == {r["id"] for r in rows}, table


def test_a_grid_worker_reads_only_its_grid_and_a_department_only_cases_dispatched_to_it(world, app, conn):
    grid = _one(conn, "SELECT region_code FROM app_user WHERE username = 'grid'")
    assert visible(app, "cases", world["sessions"]["grid"]) == {
        r["id"] for r in conn.execute("SELECT id FROM cases WHERE grid_code = %s", (grid,)).fetchall()}
    dispatched = {r["id"] for r in conn.execute("SELECT id FROM cases WHERE department_id = %s", (world["dept"]["620702100"],)).fetchall()}
    assert len(dispatched) == 1
    assert visible(app, "cases", world["sessions"]["water"]) == dispatched
    assert visible(app, "hazard", world["sessions"]["water"]) == set()


def test_with_no_scope_the_app_role_reads_no_rows(world, app):
    for table in PROTECTED:
        assert visible(app, table) == set(), table
        assert visible(app, table, "not-a-session") == set(), table
        # setting the GUCs by hand, as any SQL may, grants nothing
        forged = (setting("gridwatch.region_scope", "62"), setting("gridwatch.user_id", str(world["users"]["leader"])))
        assert visible(app, table, forge=forged) == set(), table


def test_a_request_cannot_widen_its_own_scope(world, app, db_url):
    sid = world["sessions"]["xindun"]
    mine = visible(app, "cases", sid)
    assert len(mine) == 1
    widen = setting("gridwatch.region_scope", "62")
    # widening the scope GUC after the server set it: the wider prefix lies outside the grant
    assert visible(app, "cases", sid, forge=(widen,)) == set()
    assert visible(app, "cases", sid, forge=(setting("gridwatch.region_scope", "620702100,620702200"),)) == mine
    # a forged grant string, or the grant replayed in a later transaction
    with transaction(app, credential=sid) as c:
        grant = _one(c, "SELECT current_setting('gridwatch.grant')")
    assert grant.startswith("620702100;")
    forged = grant.replace("620702100;", "62;", 1)
    assert visible(app, "cases", forge=(widen, setting("gridwatch.grant", forged))) == set()
    assert visible(app, "cases", forge=(setting("gridwatch.region_scope", "620702100"),
                                        setting("gridwatch.grant", grant))) == set()
    # a session-level SET survives into the next transaction but is still no grant
    app.execute("SELECT set_config('gridwatch.grant', %s, false), set_config('gridwatch.region_scope', '620702100', false)", (grant,))
    app.commit()
    with app.transaction():
        assert app.execute("SELECT count(*) AS n FROM cases").fetchone()["n"] == 0
    # the key, the MAC and the accounts are out of reach
    for stmt in ("SELECT key FROM gridwatch_secret",
                 "SELECT gridwatch_grant_mac('62', '1', '', pg_backend_pid(), transaction_timestamp())",
                 "SELECT * FROM user_session", "SELECT * FROM api_token", "SELECT password_hash FROM app_user"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with transaction(app, credential=sid) as c:
                c.execute(stmt)
    # a temporary table cannot stand in for the session table inside the definer functions
    with transaction(app) as c:
        c.execute("CREATE TEMP TABLE user_session (session_sha256 bytea, user_id bigint, expires_at timestamptz, revoked_at timestamptz)")
        c.execute("INSERT INTO user_session VALUES (sha256('forged'::bytea), %s, now() + interval '1 day', NULL)", (world["users"]["leader"],))
        assert _one(c, "SELECT count(*) FROM gridwatch_open('forged')") == 0
        assert _one(c, "SELECT count(*) FROM cases") == 0


def test_a_narrower_scope_may_be_chosen_inside_the_grant(world, app, conn):
    with transaction(app, credential=world["sessions"]["ganzhou"], region_scope="620702200") as c:
        seen = {r["id"] for r in c.execute("SELECT id FROM cases").fetchall()}
    assert seen == {r["id"] for r in conn.execute("SELECT id FROM cases WHERE township_code = '620702200'").fetchall()}


def test_the_trail_has_no_update_delete_or_truncate_for_the_app_role(world, app):
    tables = list(TRAILS) + (["alert_event"] if _one(app, "SELECT to_regclass('alert_event') IS NOT NULL") else [])
    app.rollback()
    for table in tables:
        for privilege in ("UPDATE", "DELETE", "TRUNCATE"):
            assert _one(app, "SELECT has_table_privilege(current_user, %s, %s)", (table, privilege)) is False, (table, privilege)
    app.rollback()
    for stmt in ("UPDATE case_event SET actor = 'x'", "DELETE FROM case_event", "TRUNCATE case_event",
                 "DELETE FROM mediation", "TRUNCATE cases", "DELETE FROM cases", "DELETE FROM hazard_event"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with transaction(app, credential=world["sessions"]["leader"]) as c:
                c.execute(stmt)


def test_the_app_role_owns_nothing_and_cannot_bypass_row_security(world, app):
    role = app.execute("SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = current_user").fetchone()
    assert role == {"rolsuper": False, "rolbypassrls": False, "rolcanlogin": True}
    assert _one(app, "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)") == 0
    assert _one(app, "SELECT pg_has_role(current_user, 'gridwatch_maintainer', 'MEMBER')") is False
    forced = {r["relname"] for r in app.execute(
        "SELECT relname FROM pg_class WHERE relrowsecurity AND relforcerowsecurity AND relnamespace = 'public'::regnamespace").fetchall()}
    assert set(PROTECTED) | {"personal_data_access"} <= forced


def test_an_event_written_in_a_granted_transaction_names_the_authenticated_user(world, app, conn):
    case_id = _one(conn, "SELECT id FROM cases WHERE township_code = '620702100'")
    with transaction(app, credential=world["sessions"]["xindun"]) as c:
        c.execute("INSERT INTO case_event (case_id, actor, action, to_state) VALUES (%s, '别人', 'accept', 'accepted')", (case_id,))
    assert _one(conn, "SELECT actor FROM case_event WHERE case_id = %s ORDER BY id DESC LIMIT 1", (case_id,)) == "xindun"
    # without a grant (ETL, CLI) the caller's actor stays, as before
    conn.execute("INSERT INTO case_event (case_id, actor, action, to_state) VALUES (%s, 'etl', 'note', 'accepted')", (case_id,))
    assert _one(conn, "SELECT actor FROM case_event WHERE case_id = %s ORDER BY id DESC LIMIT 1", (case_id,)) == "etl"


def test_a_case_outside_the_scope_cannot_be_written_or_changed(world, app, conn):
    other = _one(conn, "SELECT id FROM cases WHERE township_code = '620702200'")
    with transaction(app, credential=world["sessions"]["xindun"]) as c:
        assert c.execute("UPDATE cases SET title = 'x' WHERE id = %s", (other,)).rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with c.transaction():
                c.execute("INSERT INTO case_event (case_id, actor, action, to_state) VALUES (%s, 'x', 'accept', 'accepted')", (other,))
    assert _one(conn, "SELECT title FROM cases WHERE id = %s", (other,)) == "案件620702200"


def test_a_county_scoped_count_uses_the_level_code_indexes(world, app):
    with transaction(app, credential=world["sessions"]["ganzhou"]) as c:
        c.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r["QUERY PLAN"] for r in c.execute("EXPLAIN SELECT count(*) FROM cases").fetchall())
    assert "Seq Scan on cases" not in plan, plan
    assert "cases_county" in plan or "cases_open_county" in plan, plan


def test_the_app_role_has_its_own_statement_timeout(app):
    assert _one(app, "SHOW statement_timeout") == "30s"
    assert _one(app, "SHOW idle_in_transaction_session_timeout") == "1min"


def test_a_token_resolves_in_a_read_only_transaction_as_the_app_role(world, app, conn):
    _, token = auth.create_token(conn, "leader", "reader")
    with transaction(app, readonly=True) as c:
        assert auth.resolve(c, token).username == "leader"
    with transaction(app, credential=token, readonly=True) as c:
        assert _one(c, "SELECT count(*) FROM cases") == len(world["truth"]["cases"])
    with transaction(app) as c:
        auth.resolve(c, token)
    assert conn.execute("SELECT last_used_at FROM api_token WHERE name = 'reader'").fetchone()["last_used_at"] is not None
