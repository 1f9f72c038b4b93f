"""Who the benchmarks are: a province-wide operator with a bearer token, made in the bench's own
throwaway database (the server refuses anonymous writes and row-level security shows an anonymous
reader no case, so an anonymous benchmark would measure empty answers)."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

__all__ = ["operator_token", "auth_header"]


def operator_token(database_url: str, username: str = "bench_operator") -> str | None:
    """A bearer token of a province operator in ``database_url`` (None before accounts exist)."""
    try:
        from gridwatch import auth
    except ImportError:
        return None
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        if conn.execute("SELECT to_regclass('public.app_user') IS NOT NULL AS ok").fetchone()["ok"] is not True:
            return None
        top = conn.execute("SELECT code FROM region WHERE parent_code IS NULL ORDER BY code LIMIT 1").fetchone()
        if auth.get_user(conn, username) is None:
            auth.add_user(conn, username, "operator", region_code=top["code"] if top else None)
        return auth.create_token(conn, username)[1]


def auth_header(token: str | None) -> dict:
    return {"Authorization": f"Bearer {token}"} if token else {}
