"""Who the benchmarks are: accounts with bearer tokens, made in the bench's own throwaway database
(the server refuses anonymous writes and row-level security shows an anonymous reader no case, so
an anonymous benchmark would measure empty answers).

- :func:`operator_token`: a province-wide operator (writes cases, reads every county);
- :func:`scoped_tokens`: one account per region code of a role (e.g. an operator of each county,
  whose workbench queue row-level security limits to that county), or the wall's kiosk account."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

__all__ = ["operator_token", "scoped_tokens", "auth_header"]


def _accounts_exist(conn) -> bool:
    return conn.execute("SELECT to_regclass('public.app_user') IS NOT NULL AS ok").fetchone()["ok"] is True


def _token(conn, auth, username: str, role: str, region_code: str | None) -> str:
    if auth.get_user(conn, username) is None:
        auth.add_user(conn, username, role, region_code=region_code)
    return auth.create_token(conn, username)[1]


def operator_token(database_url: str, username: str = "bench_operator") -> str | None:
    """A bearer token of a province operator in ``database_url`` (None before accounts exist)."""
    try:
        from gridwatch import auth
    except ImportError:
        return None
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        if not _accounts_exist(conn):
            return None
        top = conn.execute("SELECT code FROM region WHERE parent_code IS NULL ORDER BY code LIMIT 1").fetchone()
        return _token(conn, auth, username, "operator", top["code"] if top else None)


def scoped_tokens(database_url: str, role: str, codes: list[str], prefix: str | None = None) -> dict[str, str | None]:
    """{code: bearer token} of one ``role`` account per region code (``{prefix}_{code}``, made once),
    in one connection; every value None before accounts exist."""
    try:
        from gridwatch import auth
    except ImportError:
        return {c: None for c in codes}
    prefix = prefix or f"bench_{role}"
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        if not _accounts_exist(conn):
            return {c: None for c in codes}
        return {c: _token(conn, auth, f"{prefix}_{c}", role, c) for c in codes}


def auth_header(token: str | None) -> dict:
    return {"Authorization": f"Bearer {token}"} if token else {}
