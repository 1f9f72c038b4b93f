"""Identity: accounts, passwords, sessions, bearer tokens, the principal and what each role may do.

Core module (no web framework): functions take a connection. Secrets (session ids, tokens) are
random 32-byte values shown to their holder once; the database keeps only their sha256. Passwords
are hashed with argon2id. Region scope is enforced by PostgreSQL (migration 0081): a transaction
opened with the holder's secret (``gridwatch.db.transaction(..., credential=secret)``) gets the
user's scope and nothing else.

>>> ROLES[:2]
('province_leader', 'operator')
>>> can("planner", "read_personal_data"), can("operator", "act")
(False, True)
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from pathlib import Path
from dataclasses import dataclass, field
from datetime import datetime, timezone

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from geo.codes import BadRegionCodeText, parse_region_code
from gridwatch import config
from gridwatch.db import load_sql, transaction

__all__ = [
    "ROLES", "CAPABILITIES", "can", "Principal", "AuthError", "LoginRefused",
    "hash_password", "verify_password", "generate_password", "add_user", "list_users", "set_disabled",
    "set_password", "get_user", "login", "create_session", "resolve", "revoke_session", "create_token",
    "revoke_token", "list_tokens", "sha256", "ensure_roles", "resolve_cached", "peek", "forget", "scope_key",
]

ROLES: tuple[str, ...] = ("province_leader", "operator", "department", "grid_worker", "planner", "wall",
                          "open311_client", "admin")

# What each role may do: the one table every check asks (pages, API, CLI alike).
#   read_cases: see cases/hazards/alerts in its scope; read_personal_data: reporter contact and parties
#   unmasked; act: lifecycle actions, acknowledgements; report: new cases, hazards, check-ins;
#   plan: coverage and what-if scenarios; registry: edit the centre registry; admin: accounts.
CAPABILITIES: dict[str, frozenset[str]] = {
    "province_leader": frozenset({"read_cases", "read_personal_data", "read_aggregates"}),
    # operators may also record a grid worker's check-in (phoned in; the simulator's demo operator does)
    "operator": frozenset({"read_cases", "read_personal_data", "read_aggregates", "act", "report", "checkin"}),
    "department": frozenset({"read_cases", "read_personal_data", "act"}),
    "grid_worker": frozenset({"read_cases", "report", "checkin"}),
    "planner": frozenset({"read_aggregates", "plan"}),
    "wall": frozenset({"read_aggregates", "read_case_points"}),
    "open311_client": frozenset({"report", "read_own_reports"}),
    "admin": frozenset({"read_aggregates", "admin", "registry"}),
}

PROVINCE_WIDE = frozenset({"province_leader", "planner", "wall", "admin"})   # open311_client: own reports only (0085)


def can(role: str, capability: str) -> bool:
    """May ``role`` do ``capability``? Unknown roles may do nothing."""
    return capability in CAPABILITIES.get(role, frozenset())


class AuthError(ValueError):
    """Bad input to an account operation; ``field`` names what to fix."""

    def __init__(self, message: str, field: str | None = None, value=None):
        super().__init__(message)
        self.field, self.value = field, value


class LoginRefused(Exception):
    """Wrong username/password, disabled, or locked (``locked_until`` set)."""

    def __init__(self, reason: str, locked_until: datetime | None = None):
        super().__init__(reason)
        self.reason, self.locked_until = reason, locked_until


@dataclass(frozen=True)
class Principal:
    """Who is asking: the account and where it may look."""

    user_id: int
    username: str
    role: str
    region_code: str | None = None
    department_id: int | None = None
    region_scope: str = ""            # comma-separated code prefixes ('' for departments: own policy)
    via: str = "session"              # session | token
    credential_id: str | None = None  # token id or session hash (for revoke on logout)
    capabilities: frozenset[str] = field(default=frozenset())

    @property
    def grid_code(self) -> str | None:
        return self.region_code if self.role == "grid_worker" else None

    def can(self, capability: str) -> bool:
        return capability in self.capabilities


# -- passwords ---------------------------------------------------------------------------------
_HASHER = PasswordHasher()  # argon2id with the library's maintained defaults


def hash_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < 8:
        raise AuthError("a password needs at least 8 characters", "password")
    if len(password) > 1024:
        raise AuthError("a password may have at most 1024 characters", "password")
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    if not stored or not isinstance(password, str):
        return False
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """A random password of 16 URL-safe characters (about 96 bits)."""
    return secrets.token_urlsafe(12)


def sha256(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


# -- accounts ----------------------------------------------------------------------------------
def _region_level(conn: psycopg.Connection, code: str) -> str | None:
    row = conn.execute("SELECT level FROM region WHERE code = %s", (code,)).fetchone()
    if row is None:
        return None
    return row["level"] if isinstance(row, dict) else row[0]


def _normalise_region(code: str) -> str:
    """Accept a plain code or a six-digit GB/T 2260 code padded with zeros (620700 → 6207), through the
    one parser; anything else comes back as given, for the level check to refuse by name."""
    try:
        return parse_region_code(code)
    except BadRegionCodeText:
        return (code or "").strip()


def _check_scope(conn, role: str, region_code: str | None, department_id: int | None) -> tuple[str | None, int | None]:
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}; roles: {', '.join(ROLES)}", "role", role)
    if region_code is not None:
        region_code = _normalise_region(str(region_code))
    if role == "operator":
        if not region_code:
            raise AuthError("an operator needs --region: a province, prefecture, county or township code (e.g. 620702 for 甘州区)", "region")
        level = _region_level(conn, region_code)
        if level is None:
            raise AuthError(f"there is no region {region_code}; list codes with `gridwatch coverage show 62` or the dashboard", "region", region_code)
        if level not in ("province", "prefecture", "county", "township"):
            raise AuthError(f"an operator's region must be a province, prefecture, county or township; {region_code} is a {level}", "region", region_code)
    elif role == "grid_worker":
        if not region_code:
            raise AuthError("a grid worker needs --region: the 15-digit code of a grid", "region")
        level = _region_level(conn, region_code)
        if level is None:
            raise AuthError(f"there is no region {region_code}", "region", region_code)
        if level != "grid":
            raise AuthError(f"a grid worker's region must be a grid; {region_code} is a {level}", "region", region_code)
    elif region_code:
        if _region_level(conn, region_code) is None:
            raise AuthError(f"there is no region {region_code}", "region", region_code)
    if role == "department":
        if department_id is None:
            raise AuthError("a department account needs --department ID (see GET /api/v1/departments)", "department")
        if conn.execute("SELECT 1 FROM department WHERE id = %s", (department_id,)).fetchone() is None:
            raise AuthError(f"there is no department {department_id}", "department", department_id)
    elif department_id is not None:
        raise AuthError(f"--department is only for role department, not {role}", "department", department_id)
    return region_code, department_id


def add_user(conn: psycopg.Connection, username: str, role: str, *, password: str | None = None,
             region_code: str | None = None, department_id: int | None = None, display_name: str | None = None) -> int:
    """Create an account; returns its id. ``password`` None: a token-only account."""
    username = (username or "").strip()
    if not username or len(username) > 64 or any(c.isspace() or not c.isprintable() for c in username):
        raise AuthError("a username is 1–64 printable characters without spaces", "username", username)
    region_code, department_id = _check_scope(conn, role, region_code, department_id)
    if conn.execute("SELECT 1 FROM app_user WHERE username = %s", (username,)).fetchone():
        raise AuthError(f"the user {username} exists already", "username", username)
    pw_hash = hash_password(password) if password is not None else None
    row = conn.execute(
        """INSERT INTO app_user (username, display_name, role, region_code, department_id, password_hash)
           VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
        (username, display_name, role, region_code, department_id, pw_hash),
    ).fetchone()
    return row["id"] if isinstance(row, dict) else row[0]


def get_user(conn: psycopg.Connection, username: str) -> dict | None:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute(
        """SELECT id, username, display_name, role, region_code, department_id, password_hash, disabled,
                  failed_logins, locked_until, created_at FROM app_user WHERE username = %s""",
        (username,),
    ).fetchone()


def list_users(conn: psycopg.Connection) -> list[dict]:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute(
        """SELECT u.id, u.username, u.display_name, u.role, u.region_code, r.name AS region_name, u.department_id,
                  d.name AS department_name, u.disabled, u.locked_until, u.created_at
             FROM app_user u LEFT JOIN region r ON r.code = u.region_code
             LEFT JOIN department d ON d.id = u.department_id ORDER BY u.username"""
    ).fetchall()


def _require(conn, username: str) -> dict:
    user = get_user(conn, username)
    if user is None:
        raise AuthError(f"there is no user {username}", "username", username)
    return user


def set_disabled(conn: psycopg.Connection, username: str, disabled: bool) -> None:
    """Disable (also revokes every session and token) or enable an account."""
    user = _require(conn, username)
    conn.execute("UPDATE app_user SET disabled = %s, failed_logins = 0, locked_until = NULL WHERE id = %s", (disabled, user["id"]))
    if disabled:
        conn.execute("UPDATE user_session SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL", (user["id"],))


def set_password(conn: psycopg.Connection, username: str, password: str) -> None:
    """New password; unlocks the account and ends its sessions."""
    user = _require(conn, username)
    conn.execute("UPDATE app_user SET password_hash = %s, failed_logins = 0, locked_until = NULL WHERE id = %s",
                 (hash_password(password), user["id"]))
    conn.execute("UPDATE user_session SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL", (user["id"],))


# -- login, sessions ---------------------------------------------------------------------------
def login(conn: psycopg.Connection, username: str, password: str, *, now: datetime | None = None) -> int:
    """Check a password; returns the user id or raises LoginRefused. Counts failures and locks the
    account after GRIDWATCH_LOGIN_MAX_FAILURES in a row for GRIDWATCH_LOGIN_LOCK_MINUTES.

    The failure count is written before LoginRefused is raised: commit the transaction anyway."""
    now = now or datetime.now(timezone.utc)
    user = get_user(conn, username) if isinstance(username, str) and 0 < len(username) <= 64 else None
    if user is None:
        verify_password(_DUMMY_HASH(), password or "")  # same work whether or not the user exists
        raise LoginRefused("wrong username or password")
    if user["locked_until"] is not None and user["locked_until"] > now:
        raise LoginRefused("locked", user["locked_until"])
    if user["disabled"]:
        raise LoginRefused("disabled")
    if not verify_password(user["password_hash"], password or ""):
        limit = int(config.get("GRIDWATCH_LOGIN_MAX_FAILURES"))
        minutes = int(config.get("GRIDWATCH_LOGIN_LOCK_MINUTES"))
        row = conn.execute(
            """UPDATE app_user SET failed_logins = failed_logins + 1,
                      locked_until = CASE WHEN failed_logins + 1 >= %s THEN %s::timestamptz + make_interval(mins => %s) END
                WHERE id = %s RETURNING locked_until""",
            (limit, now, minutes, user["id"]),
        ).fetchone()
        until = row["locked_until"] if isinstance(row, dict) else row[0]
        if until is not None:
            conn.execute("UPDATE app_user SET failed_logins = 0 WHERE id = %s", (user["id"],))
            raise LoginRefused("locked", until)
        raise LoginRefused("wrong username or password")
    conn.execute("UPDATE app_user SET failed_logins = 0, locked_until = NULL WHERE id = %s", (user["id"],))
    return user["id"]


_DUMMY: list[str] = []


def _DUMMY_HASH() -> str:  # noqa: N802 - computed once, lazily (no work at import time)
    if not _DUMMY:
        _DUMMY.append(_HASHER.hash(secrets.token_urlsafe(12)))
    return _DUMMY[0]


def create_session(conn: psycopg.Connection, user_id: int, *, hours: float | None = None) -> str:
    """A new session for ``user_id``; returns its id (the cookie value). Only its sha256 is stored."""
    hours = float(hours if hours is not None else config.get("GRIDWATCH_SESSION_HOURS"))
    sid = secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO user_session (session_sha256, user_id, expires_at) VALUES (%s, %s, now() + make_interval(secs => %s))",
        (sha256(sid), user_id, hours * 3600),
    )
    return sid


def revoke_session(conn: psycopg.Connection, sid: str) -> bool:
    cur = conn.execute("UPDATE user_session SET revoked_at = now() WHERE session_sha256 = %s AND revoked_at IS NULL", (sha256(sid),))
    return cur.rowcount > 0


def resolve(conn: psycopg.Connection, secret: str | None) -> Principal | None:
    """The principal behind a session id or bearer token, or None (unknown, expired, revoked, disabled).

    Works for the owner and for the app role alike (through the database's gridwatch_principal).
    """
    if not secret or not isinstance(secret, str) or len(secret) > 512:
        return None
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    row = cur.execute("SELECT * FROM gridwatch_principal(%s)", (secret,)).fetchone()
    if row is None:
        return None
    if row["via"] == "token":
        try:
            conn.execute("SELECT gridwatch_token_used(%s)", (secret,))
        except psycopg.errors.UndefinedFunction:  # pragma: no cover - older schema
            pass
    return Principal(
        user_id=row["user_id"], username=row["username"], role=row["role"], region_code=row["region_code"],
        department_id=row["department_id"], region_scope=row["region_scope"] or "", via=row["via"],
        credential_id=row["credential_id"], capabilities=CAPABILITIES.get(row["role"], frozenset()),
    )


def scope_key(principal: Principal | None) -> str:
    """What rows row-level security shows ``principal``, as a short key for caches of scoped data
    (tiles of case layers, region aggregates): equal keys see the same rows."""
    if principal is None:
        return "anonymous"
    own = principal.user_id if not principal.region_scope else ""
    return sha256(f"{principal.region_scope}|{principal.department_id or ''}|{own}").hex()[:16]


# A short cache of resolved principals, keyed by the secret's sha256: a page's burst of callbacks,
# tiles and assets resolves its cookie once, not once per request. Only Python-side decisions
# (redirects, 401/403, masking) read it; every transaction still opens with the secret itself
# (gridwatch_open), so a revoked session sees no rows at once. Logout forgets its entry.
CACHE_SECONDS = 5.0
DOWN_SECONDS = 3.0      # after the database failed to answer, say so at once for this long (no pool wait each time)
_CACHE_MAX = 4096
_down_until: dict[str, float] = {}
_cache: dict[tuple[str, bytes], tuple[float, Principal | None]] = {}
_cache_lock = threading.Lock()


def _where(source) -> str:
    return str(getattr(source, "conninfo", None) or id(source))    # one cache per database


def peek(source, secret: str | None) -> tuple[bool, Principal | None]:
    """(known, principal) from the cache alone, without the database: a fresh entry, or while the
    database is down (it failed in the last DOWN_SECONDS) the last known entry. Unknown while the
    database is down: raises psycopg.OperationalError at once."""
    if not secret or not isinstance(secret, str) or len(secret) > 512:
        return True, None
    where, now = _where(source), time.monotonic()
    with _cache_lock:
        hit = _cache.get((where, sha256(secret)))
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return True, hit[1]
    if now < _down_until.get(where, 0.0):
        if hit is not None:
            return True, hit[1]
        raise psycopg.OperationalError("the database did not answer a moment ago")
    return False, None


def resolve_cached(source, secret: str | None) -> Principal | None:
    """:func:`resolve` through the short cache; ``source`` is a pool or a connection. While the
    database is down, the last known principal stands (the database refuses every read and write
    anyway; this only keeps pages from being sent to /login during an outage)."""
    known, principal = peek(source, secret)
    if known:
        return principal
    where, key = _where(source), (_where(source), sha256(secret))
    try:
        with transaction(source, credential="") as conn:
            principal = resolve(conn, secret)
    except psycopg.OperationalError:
        _down_until[where] = time.monotonic() + DOWN_SECONDS
        with _cache_lock:
            hit = _cache.get(key)
        if hit is not None:
            return hit[1]
        raise
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[key] = (time.monotonic(), principal)
    return principal


def forget(secret: str | None) -> None:
    """Drop ``secret`` from the cache (logout, revoke)."""
    if secret:
        digest = sha256(secret)
        with _cache_lock:
            for key in [k for k in _cache if k[1] == digest]:
                _cache.pop(key, None)


# -- tokens ------------------------------------------------------------------------------------
def create_token(conn: psycopg.Connection, username: str, name: str | None = None, *, expires_days: float | None = None) -> tuple[int, str]:
    """A bearer token for ``username``; returns (id, token). The token is shown once, stored hashed."""
    user = _require(conn, username)
    if expires_days is not None and not (0 < float(expires_days) <= 3650):
        raise AuthError("--expires-days must be between 0 and 3650", "expires_days", expires_days)
    name = (name or f"{username} token").strip()[:200] or f"{username} token"
    token = "gwt_" + secrets.token_urlsafe(32)
    row = conn.execute(
        """INSERT INTO api_token (user_id, token_sha256, name, expires_at)
           VALUES (%s, %s, %s, CASE WHEN %s::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => %s::float8 * 86400) END)
           RETURNING id""",
        (user["id"], sha256(token), name, expires_days, expires_days),
    ).fetchone()
    return (row["id"] if isinstance(row, dict) else row[0]), token


def revoke_token(conn: psycopg.Connection, token_id: int) -> bool:
    cur = conn.execute("UPDATE api_token SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL", (token_id,))
    if cur.rowcount == 0 and conn.execute("SELECT 1 FROM api_token WHERE id = %s", (token_id,)).fetchone() is None:
        raise AuthError(f"there is no token {token_id}", "id", token_id)
    return cur.rowcount > 0


def list_tokens(conn: psycopg.Connection) -> list[dict]:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute(
        """SELECT t.id, u.username, t.name, t.created_at, t.expires_at, t.revoked_at, t.last_used_at
             FROM api_token t JOIN app_user u ON u.id = t.user_id ORDER BY t.id"""
    ).fetchall()



def ensure_roles(conn: psycopg.Connection) -> None:
    """Create the cluster-wide roles gridwatch_app and gridwatch_maintainer when missing (e.g. before
    restoring a dump into a fresh cluster: its grants and policies name them)."""
    conn.execute(load_sql(Path(__file__).resolve().parent, "ensure-roles"))
