"""Every table in the schema is either readable by the app role or listed as not for it; every table
the server writes has its write grants; every table with people's or scoped data has row-level
security forced. A new table cannot be forgotten silently: these tests name it and say what to add.
"""

from __future__ import annotations

from psycopg.rows import dict_row

# Tables the server (role gridwatch_app) must never read directly: secrets and accounts (reached
# only through SECURITY DEFINER functions) and the audit of personal-data access (INSERT only).
NOT_FOR_APP = {"gridwatch_secret", "app_user", "api_token", "user_session", "personal_data_access"}
# Tables the server does not need (readable or not): PostGIS's reference table, the ETL ledger.
NOT_NEEDED = {"spatial_ref_sys", "etl_load", "schema_migrations"}

# Tables request paths write, and the privileges that takes (INSERT only on the trails).
WRITES = {
    "cases": {"INSERT", "UPDATE"}, "hazard": {"INSERT", "UPDATE"}, "checkin": {"INSERT", "UPDATE"},
    "mediation": {"INSERT", "UPDATE"}, "alert": {"INSERT", "UPDATE"}, "centre": {"INSERT", "UPDATE", "DELETE"},
    "centre_department": {"INSERT", "UPDATE", "DELETE"}, "data_version": {"INSERT", "UPDATE"},
    "case_event": {"INSERT"}, "hazard_event": {"INSERT"}, "personal_data_access": {"INSERT"},
    "coverage_params": {"INSERT", "UPDATE"}, "grid_travel": {"INSERT", "UPDATE", "DELETE"},
}
# Append-only trails: the app role may never change or remove a row.
TRAILS = ("case_event", "hazard_event", "alert_event", "personal_data_access", "mediation_history", "alert_ack_history")
# Tables holding cases, events, mediations, hazards, check-ins, alerts or people's data: RLS forced.
PROTECTED = ("cases", "case_event", "mediation", "mediation_history", "hazard", "hazard_event", "checkin", "alert",
             "alert_ack_history", "alert_event", "personal_data_access")

RULE = ("Give the new table its grants in the migration that creates it: SELECT for the app role comes from the "
        "default privileges of 0085 (or add it to NOT_FOR_APP in tests/test_auth_grants.py with the reason); add "
        "'GRANT INSERT, UPDATE ON <table> TO gridwatch_app' for what request paths write (INSERT only for a trail); "
        "a table with cases, events, attachments, notifications or people's data also needs "
        "'ALTER TABLE <table> ENABLE ROW LEVEL SECURITY; ALTER TABLE <table> FORCE ROW LEVEL SECURITY;' and a policy "
        "following its case (EXISTS on cases) or region (gridwatch_in_scope(code)), plus '<table>_maintenance ... TO "
        "gridwatch_maintainer'. See docs/ARCHITECTURE.md, 'Identity and region scope'.")


def _tables(conn) -> list[str]:
    return [r["relname"] for r in conn.cursor(row_factory=dict_row).execute(
        """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1""").fetchall()]


def _has(conn, table: str, privilege: str) -> bool:
    return conn.cursor(row_factory=dict_row).execute("SELECT has_table_privilege('gridwatch_app', %s, %s) AS ok",
                                                     (f"public.{table}", privilege)).fetchone()["ok"]


def test_every_table_is_readable_by_the_app_role_or_listed_as_not_for_it(conn):
    missing = [t for t in _tables(conn) if t not in NOT_FOR_APP | NOT_NEEDED and not _has(conn, t, "SELECT")]
    assert not missing, f"gridwatch_app cannot read {missing}. {RULE}"
    leaked = [t for t in NOT_FOR_APP if t in _tables(conn) and _has(conn, t, "SELECT")]
    assert not leaked, f"gridwatch_app may read {leaked}, which hold secrets or accounts"


def test_tables_the_server_writes_have_their_write_grants_and_trails_stay_append_only(conn):
    tables = set(_tables(conn))
    for table, privileges in WRITES.items():
        lacking = sorted(p for p in privileges if not _has(conn, table, p))
        assert not lacking, f"gridwatch_app lacks {lacking} on {table}. {RULE}"
    for table in TRAILS:
        if table in tables:
            changed = [p for p in ("UPDATE", "DELETE", "TRUNCATE") if _has(conn, table, p)]
            assert not changed, f"the trail {table} must stay append-only for gridwatch_app, which has {changed}"
    truncatable = [t for t in tables if _has(conn, t, "TRUNCATE")]
    assert not truncatable, f"gridwatch_app may TRUNCATE {truncatable}"


def test_every_table_with_scoped_or_personal_data_forces_row_level_security(conn):
    rows = {r["relname"]: r for r in conn.cursor(row_factory=dict_row).execute(
        "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = ANY(%s)", (list(PROTECTED),))}
    for table in PROTECTED:
        assert table in rows, f"{table} is missing"
        assert rows[table]["relrowsecurity"] and rows[table]["relforcerowsecurity"], f"{table} needs RLS enabled and forced. {RULE}"
    # tables the app role may write, other than those above and the shared registry/derived tables,
    # must be protected too: a new writable table is named here until it is classified
    derived = {"centre", "centre_department", "data_version", "case_day", "grid_coverage", "township_coverage",
               "grid_neighbour", "grid_neighbour_state", "alert_silence", "coverage_params", "grid_travel"}
    writable = [t for t in _tables(conn) if any(_has(conn, t, p) for p in ("INSERT", "UPDATE", "DELETE"))]
    forced = {r["relname"] for r in conn.cursor(row_factory=dict_row).execute(
        "SELECT relname FROM pg_class WHERE relforcerowsecurity").fetchall()}
    unclassified = [t for t in writable if t not in PROTECTED and t not in derived and t not in forced]
    assert not unclassified, (f"gridwatch_app may write {unclassified} without row-level security: protect them or "
                              f"list them as shared/derived in tests/test_auth_grants.py. {RULE}")
