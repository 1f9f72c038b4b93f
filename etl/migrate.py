"""Apply the numbered plain-SQL migrations in ``etl/migrations`` in order, once each.

The ledger (``schema_migration``) keeps the sha256 of each applied file. Before applying anything
(and when the server starts) :func:`verify` compares them with the files: a migration changed after
it was applied is refused by name, since the database no longer matches what the file says.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

__all__ = ["Migration", "MigrationError", "discover", "migrate", "applied", "verify", "changed"]

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
    # ledgers written before checksums were kept: add the column (filled in by _backfill)
    conn.execute("ALTER TABLE schema_migration ADD COLUMN IF NOT EXISTS checksum text")


def _backfill(conn: psycopg.Connection, migrations: list[Migration]) -> None:
    """Record the file's checksum for applied migrations that have none (an older ledger).

    The file as it is now is the best witness of what was applied; from here on it is guarded.
    """
    for mig in migrations:
        conn.execute(
            "UPDATE schema_migration SET checksum = %s WHERE number = %s AND name = %s AND coalesce(checksum, '') = ''",
            (mig.checksum, mig.number, mig.name),
        )


def changed(conn: psycopg.Connection, folder: Path = MIGRATIONS_DIR) -> list[str]:
    """One message per applied migration whose file changed (or went missing) since it was applied."""
    files = {m.number: m for m in discover(folder)}
    rows = conn.execute("SELECT number, name, checksum FROM schema_migration ORDER BY number").fetchall()
    problems: list[str] = []
    for row in rows:
        number, name, stored = (row["number"], row["name"], row["checksum"]) if isinstance(row, dict) else row
        mig = files.get(number)
        where = folder / f"{name}.sql"
        try:
            shown = where.relative_to(MIGRATIONS_DIR.parent.parent)
        except ValueError:
            shown = where
        if mig is None or mig.name != name:
            now = f"the folder has {mig.path.name} under that number" if mig else "its file is gone"
            problems.append(
                f"migration {name}.sql was applied but {now}: restore {name}.sql as it was applied "
                f"(git log -- {shown}) and put any change in a new numbered migration"
            )
        elif stored and stored != mig.checksum:
            problems.append(
                f"migration {mig.path.name} was applied with checksum {stored[:12]} but the file now has "
                f"{mig.checksum[:12]}: restore the file as it was applied (git log -p -- {shown}) "
                f"and put the change in a new numbered migration"
            )
    return problems


def verify(conn: psycopg.Connection, folder: Path = MIGRATIONS_DIR) -> None:
    """Refuse (MigrationError naming each file) when an applied migration's file has changed.

    Upgrades an old ledger first (adds and backfills checksums); a database without a ledger has
    nothing applied and passes. Commits its own work; leaves ``conn`` as it found it.
    """
    previous_autocommit = conn.autocommit
    if not previous_autocommit:
        conn.commit()
    conn.autocommit = True
    try:
        row = conn.execute("SELECT to_regclass('schema_migration') IS NOT NULL").fetchone()
        if not (row["?column?"] if isinstance(row, dict) else row[0]):
            return
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            _check(conn, folder)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    finally:
        conn.autocommit = previous_autocommit


def _check(conn: psycopg.Connection, folder: Path) -> None:
    """Under the advisory lock: upgrade the ledger, then refuse changed migrations."""
    _ensure_ledger(conn)
    _backfill(conn, discover(folder))
    problems = changed(conn, folder)
    if problems:
        raise MigrationError("\n".join(problems))


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
    An applied migration whose file has changed since is refused first (see :func:`verify`).
    """
    done: list[str] = []
    previous_autocommit = conn.autocommit
    conn.autocommit = True
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            _check(conn, folder)
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
