"""Apply the numbered plain-SQL migrations in ``etl/migrations`` in order, once each."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

__all__ = ["Migration", "MigrationError", "discover", "migrate", "applied"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{4})-[a-z0-9-]+\.sql$")
LOCK_KEY = 620_000_001  # advisory lock: two migrators never interleave


class MigrationError(RuntimeError):
    """A migration failed; nothing of it was applied. The message names the file and statement."""


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    path: Path

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Migrations in ``folder``, ordered by number; refuses duplicate numbers and odd names."""
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(f"{path.name}: migration files are named NNNN-lowercase-name.sql")
        found.append(Migration(int(m.group(1)), path.stem, path))
    numbers = [m.number for m in found]
    dupes = sorted({n for n in numbers if numbers.count(n) > 1})
    if dupes:
        raise MigrationError(f"two migrations share the number(s) {dupes}: renumber one of them")
    return found


def _ensure_ledger(conn: psycopg.Connection) -> None:
    conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migration (
               number integer PRIMARY KEY,
               name text NOT NULL,
               checksum text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )


def applied(conn: psycopg.Connection) -> dict[int, str]:
    """{number: name} of migrations recorded in the ledger."""
    _ensure_ledger(conn)
    rows = conn.execute("SELECT number, name FROM schema_migration ORDER BY number").fetchall()
    return {r[0] if not isinstance(r, dict) else r["number"]: r[1] if not isinstance(r, dict) else r["name"] for r in rows}


def _statements(text: str) -> list[str]:
    """Split a migration into statements (respects $$-quoted bodies, quotes and comments)."""
    out, buf, i, n = [], [], 0, len(text)
    dollar: str | None = None
    quote = False
    while i < n:
        c = text[i]
        if dollar:
            if text.startswith(dollar, i):
                buf.append(dollar)
                i += len(dollar)
                dollar = None
                continue
        elif quote:
            if c == "'":
                quote = False
        elif c == "'":
            quote = True
        elif text.startswith("--", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            buf.append(text[i:j])
            i = j
            continue
        elif c == "$":
            m = re.match(r"\$[A-Za-z_]*\$", text[i:])
            if m:
                dollar = m.group(0)
                buf.append(dollar)
                i += len(dollar)
                continue
        elif c == ";":
            stmt = "".join(buf).strip()
            if stmt and not all(line.strip().startswith("--") or not line.strip() for line in stmt.splitlines()):
                out.append(stmt)
            buf = []
            i += 1
            continue
        buf.append(c)
        i += 1
    tail = "".join(buf).strip()
    if tail and not all(line.strip().startswith("--") or not line.strip() for line in tail.splitlines()):
        out.append(tail)
    return out


def migrate(conn: psycopg.Connection, folder: Path = MIGRATIONS_DIR, progress=None) -> list[str]:
    """Apply every migration not yet in the ledger, each in its own transaction. Returns their names.

    A failing migration is rolled back whole and raises MigrationError naming file and statement.
    """
    done: list[str] = []
    previous_autocommit = conn.autocommit
    conn.autocommit = True
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            _ensure_ledger(conn)
            have = applied(conn)
            for mig in discover(folder):
                if mig.number in have:
                    continue
                with conn.transaction():
                    for k, stmt in enumerate(_statements(mig.path.read_text(encoding="utf-8")), 1):
                        try:
                            conn.execute(stmt)
                        except psycopg.Error as exc:
                            first = " ".join(stmt.split())[:160]
                            raise MigrationError(
                                f"{mig.path.name}, statement {k} failed and nothing of this migration was applied: "
                                f"{exc.diag.message_primary or exc}\n  statement: {first}"
                            ) from exc
                    conn.execute(
                        "INSERT INTO schema_migration (number, name, checksum) VALUES (%s, %s, %s)",
                        (mig.number, mig.name, mig.checksum),
                    )
                done.append(mig.name)
                if progress:
                    progress(mig.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    finally:
        conn.autocommit = previous_autocommit
    return done
