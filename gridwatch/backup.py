"""Backup and restore: logical dumps (pg_dump custom format), checked restores, and point-in-time
recovery of the embedded cluster from a base backup plus its WAL archive.

- :func:`backup` dumps a database with ``pg_dump -Fc`` from the snapshot of a REPEATABLE READ
  transaction (``--snapshot``), and writes beside it ``FILE.manifest.json``: every table's row count
  and checksum computed in that same snapshot, so a restore can be checked exactly even while the
  system keeps writing.
- :func:`restore` restores a dump into a new database (created), or over an existing one only with
  ``force`` (it refuses a database that holds tables otherwise), then checks the manifest.
- :func:`verify` restores a dump into a scratch database, checks it against its manifest and drops
  the scratch database: the way to know a backup is good.
- :func:`base_backup` / :func:`restore_to_time`: the embedded cluster archives every WAL segment
  into ``<data dir>/wal-archive`` (archive_mode on); a base backup (``pg_basebackup``) goes to
  ``<data dir>/backups/base-<UTC time>``; recovery replays the archive up to a moment.

Everything is in PostgreSQL, so a dump carries all of it, attachments included once they live in
the database. The client binaries come from the system PostgreSQL (the same folder as pg_ctl).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from gridwatch import config, db
from gridwatch.auth import ensure_roles
from gridwatch.cluster import ClusterError, find_bindir, redact

__all__ = ["BackupError", "backup", "restore", "verify", "manifest_of", "table_checksums", "default_backup_path",
           "base_backup", "prune_base_backups", "restore_to_time", "list_base_backups", "MANIFEST_SUFFIX"]

MANIFEST_SUFFIX = ".manifest.json"


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message says what to do."""


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


def _bin(name: str) -> str:
    return str(find_bindir(os.environ.get("GRIDWATCH_PG_BINDIR")) / name)


def with_dbname(url: str, dbname: str) -> str:
    """``url`` pointing at another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def dbname_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def default_backup_path(now: datetime | None = None) -> Path:
    """``<GRIDWATCH_DATA_DIR>/dumps/gridwatch-YYYYmmddTHHMMSSZ.dump`` (copy it to another disk)."""
    now = now or datetime.now(timezone.utc)
    return Path(config.data_dir()) / "dumps" / f"gridwatch-{now:%Y%m%dT%H%M%SZ}.dump"


def table_checksums(conn: psycopg.Connection) -> dict[str, dict]:
    """{table: {"rows": n, "md5": …}} for every table of the public schema (PostGIS's spatial_ref_sys
    left out): the md5 of the sorted md5s of the rows' text, so the order rows come back in does not
    matter. Times are written in UTC for the comparison."""
    conn.execute("SET LOCAL TimeZone = 'UTC'")
    conn.execute("SET LOCAL extra_float_digits = 1")
    tables = [r[0] for r in conn.execute(
        """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> 'spatial_ref_sys'
             AND NOT c.relispartition ORDER BY c.relname""").fetchall()]
    out = {}
    for table in tables:
        n, digest = conn.execute(sql.SQL(
            "SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h COLLATE \"C\")), '') "
            "FROM (SELECT md5(t::text) AS h FROM {} t) s").format(sql.Identifier(table))).fetchone()
        out[table] = {"rows": int(n), "md5": digest}
    return out


def _server_facts(conn: psycopg.Connection) -> dict:
    pg, = conn.execute("SHOW server_version").fetchone()
    postgis = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'postgis'").fetchone()
    migrations = []
    if conn.execute("SELECT to_regclass('public.schema_migration')").fetchone()[0]:
        migrations = [r[0] for r in conn.execute("SELECT number FROM schema_migration ORDER BY number").fetchall()]
    return {"server_version": pg, "postgis": postgis[0] if postgis else None, "migrations": migrations}


def manifest_of(url: str) -> dict:
    """Row counts, checksums and schema facts of the database at ``url`` as it is now."""
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return {**_server_facts(conn), "tables": table_checksums(conn)}


def _manifest_path(dump: Path) -> Path:
    return dump.with_name(dump.name + MANIFEST_SUFFIX)


def backup(url: str, path: Path | str, *, progress: bool = True) -> dict:
    """Dump the database at ``url`` to ``path`` (pg_dump custom format) and write its manifest.

    Returns {"file", "bytes", "seconds", "tables", "rows", "manifest"}."""
    started = time.perf_counter()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot, = conn.execute("SELECT pg_export_snapshot()").fetchone()
            _say(progress, f"backing up {redact(url)} → {path} (snapshot {snapshot})")
            facts = _server_facts(conn)
            _say(progress, "  counting rows and checksumming every table in the same snapshot …")
            tables = table_checksums(conn)
            _say(progress, f"  {len(tables)} tables, {sum(t['rows'] for t in tables.values()):,} rows; running pg_dump …")
            proc = subprocess.run([_bin("pg_dump"), "--format=custom", "--compress=6", f"--snapshot={snapshot}",
                                   "--no-owner", f"--file={partial}", "--dbname", url],
                                  capture_output=True, text=True, timeout=6 * 3600)
            if proc.returncode != 0:
                partial.unlink(missing_ok=True)
                raise BackupError(f"pg_dump failed ({proc.returncode}): {proc.stderr.strip()}. No backup was written.")
    os.replace(partial, path)
    manifest = {"file": path.name, "database": dbname_of(url), "created_at": datetime.now(timezone.utc).isoformat(),
                "bytes": path.stat().st_size, "format": "pg_dump custom", **facts, "tables": tables}
    _manifest_path(path).write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    seconds = time.perf_counter() - started
    rows = sum(t["rows"] for t in tables.values())
    _say(progress, f"backup written: {path} ({path.stat().st_size / 1e6:.1f} MB, {len(tables)} tables, {rows:,} rows) "
                   f"in {seconds:.1f} s; manifest {_manifest_path(path).name}")
    return {"file": str(path), "bytes": path.stat().st_size, "seconds": seconds, "tables": len(tables), "rows": rows,
            "manifest": str(_manifest_path(path))}


def _user_tables(conn) -> list[str]:
    return [r[0] for r in conn.execute(
        """SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p', 'v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'topology')
             AND n.nspname NOT LIKE 'pg\\_%%' AND c.relname NOT IN ('spatial_ref_sys', 'geometry_columns', 'geography_columns')
           ORDER BY 1 LIMIT 5""").fetchall()]


def _check_dump(path: Path) -> None:
    if not path.exists():
        raise BackupError(f"{path} does not exist.")
    proc = subprocess.run([_bin("pg_restore"), "--list", str(path)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise BackupError(f"{path} is not a readable pg_dump custom-format backup: {proc.stderr.strip()}")


def compare(manifest: dict, actual: dict) -> list[str]:
    """Differences between a backup's manifest and a restored database (empty: identical)."""
    problems = []
    for table, want in manifest.get("tables", {}).items():
        have = actual["tables"].get(table)
        if have is None:
            problems.append(f"table {table} is missing")
        elif have["rows"] != want["rows"]:
            problems.append(f"table {table}: {have['rows']} rows, the backup had {want['rows']}")
        elif have["md5"] != want["md5"]:
            problems.append(f"table {table}: same {want['rows']} rows but different contents (checksum)")
    if manifest.get("migrations") is not None and actual.get("migrations") != manifest.get("migrations"):
        problems.append("the schema_migration ledger differs")
    return problems


def restore(path: Path | str, url: str, *, force: bool = False, progress: bool = True, jobs: int = 2) -> dict:
    """Restore the dump at ``path`` into the database of ``url``, created new.

    An existing database holding tables is refused unless ``force`` (then it is dropped and made
    again). Checked against the dump's manifest when there is one. Returns {"database", "seconds",
    "checked": bool, "problems": [...], "tables", "rows"}; raises BackupError on failure."""
    started = time.perf_counter()
    path = Path(path)
    _check_dump(path)
    name = dbname_of(url)
    admin = with_dbname(url, "postgres")
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
    if exists:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            tables = _user_tables(conn)
        if tables and not force:
            raise BackupError(f"database {name!r} at {redact(url)} is not empty (it holds {', '.join(tables)} …). "
                              "gridwatch will not overwrite it: restore into a new database (--database NAME), "
                              "or add --force to replace it.")
        _say(progress, f"dropping database {name!r} to restore into it from scratch" + (" (--force)" if tables else " (it holds no tables)"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        ensure_roles(conn)   # the dump's grants and policies name the cluster-wide roles of migration 0081
    _say(progress, f"restoring {path} into {redact(url)} …")
    proc = subprocess.Popen([_bin("pg_restore"), "--no-owner", "--exit-on-error", "--verbose", f"--jobs={max(1, jobs)}",
                             "--dbname", url, str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    last = []
    done_items = 0
    for line in proc.stdout:
        last = (last + [line.rstrip()])[-6:]
        if "processing data for table" in line or "creating TABLE" in line:
            done_items += 1
            if progress and "processing data" in line:
                print(f"  {line.strip().removeprefix('pg_restore: ')}", file=sys.stderr, flush=True)
    code = proc.wait(timeout=6 * 3600)
    if code != 0:
        raise BackupError(f"pg_restore failed ({code}) — the database {name!r} is incomplete, do not use it:\n  "
                          + "\n  ".join(last))
    result = {"database": name, "seconds": None, "checked": False, "problems": []}
    manifest_file = _manifest_path(path)
    actual = manifest_of(url)
    result["tables"] = len(actual["tables"])
    result["rows"] = sum(t["rows"] for t in actual["tables"].values())
    if manifest_file.exists():
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        result["problems"] = compare(manifest, actual)
        result["checked"] = True
    result["seconds"] = time.perf_counter() - started
    if result["problems"]:
        raise BackupError(f"restored {name!r} does not match the backup's manifest:\n  " + "\n  ".join(result["problems"]))
    _say(progress, f"restored {result['tables']} tables, {result['rows']:,} rows into {name!r} in {result['seconds']:.1f} s"
                   + ("; every table's row count and checksum equal the backup's manifest" if result["checked"]
                      else f"; no manifest ({manifest_file.name}) to check against"))
    return result


def verify(path: Path | str, url: str, *, progress: bool = True) -> dict:
    """Restore ``path`` into a scratch database on the server of ``url``, check it, drop it."""
    scratch = f"gw_verify_{uuid.uuid4().hex[:10]}"
    target = with_dbname(url, scratch)
    try:
        result = restore(path, target, progress=progress)
    finally:
        with psycopg.connect(with_dbname(url, "postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))
    if not result["checked"]:
        raise BackupError(f"{path} restores, but it has no manifest to check it against: its contents are unverified.")
    _say(progress, f"backup {path} is good: it restores, and all {result['tables']} tables match its manifest")
    return result


# -- point-in-time recovery of the embedded cluster ----------------------------------------------------------

def _stamp(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def list_base_backups(cluster) -> list[tuple[datetime, Path]]:
    """(start time, folder) of the cluster's base backups, oldest first."""
    out = []
    for d in sorted(cluster.backups_dir.glob("base-*")) if cluster.backups_dir.exists() else []:
        try:
            out.append((datetime.strptime(d.name[5:], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc), d))
        except ValueError:
            continue
    return out


def _start_wal_file(folder: Path) -> str | None:
    """The first WAL segment a base backup needs (from its backup_label)."""
    try:
        with tarfile.open(folder / "base.tar.gz") as tar:
            label = tar.extractfile("backup_label").read().decode()
    except (OSError, KeyError, tarfile.TarError):
        return None
    for line in label.splitlines():
        if line.startswith("START WAL LOCATION:") and "(file " in line:
            return line.split("(file ", 1)[1].rstrip(")").strip()
    return None


def prune_base_backups(cluster, *, keep: int = 2, progress: bool = True) -> dict:
    """Keep the ``keep`` newest base backups; remove older ones and the archived WAL only they needed."""
    backups = list_base_backups(cluster)
    removed = []
    for _, folder in backups[:-keep] if keep > 0 else []:
        shutil.rmtree(folder)
        removed.append(folder.name)
    oldest = list_base_backups(cluster)[:1]
    wal = _start_wal_file(oldest[0][1]) if oldest else None
    if wal:
        cluster.run_as_server(_bin("pg_archivecleanup"), str(cluster.archive_dir), wal)
    if removed:
        _say(progress, f"removed older base backups {', '.join(removed)} and the WAL before {wal}")
    return {"removed": removed, "oldest_wal_kept": wal}


def base_backup(cluster, *, progress: bool = True, keep: int = 2) -> dict:
    """A base backup of the running embedded cluster into ``<data dir>/backups/base-<UTC time>``; the
    ``keep`` newest are kept, with the archived WAL from the oldest of them on."""
    if not cluster.running():
        raise BackupError("the embedded cluster is not running: `gridwatch db start` first.")
    with psycopg.connect(cluster.url(), autocommit=True, connect_timeout=10) as conn:
        mode, = conn.execute("SHOW archive_mode").fetchone()
    if mode != "on":
        raise BackupError("WAL archiving is off in the running cluster (it was started before gridwatch archived WAL): "
                          "restart it with `gridwatch db stop && gridwatch db start`, then take the base backup.")
    started = time.perf_counter()
    now = datetime.now(timezone.utc)
    target = cluster.backups_dir / f"base-{_stamp(now)}"
    cluster.prepare_backup_dirs()
    _say(progress, f"base backup of {cluster.pgdata} → {target} …")
    cluster.run_as_server(_bin("pg_basebackup"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "gridwatch",
                          "-D", str(target), "-Ft", "-z", "-X", "fetch", "-c", "fast", "--progress", timeout=6 * 3600)
    size = sum(f.stat().st_size for f in target.iterdir())
    pruned = prune_base_backups(cluster, keep=keep, progress=progress)
    seconds = time.perf_counter() - started
    _say(progress, f"base backup written: {target} ({size / 1e6:.1f} MB) in {seconds:.1f} s; "
                   f"WAL after it is archived in {cluster.archive_dir}")
    return {"folder": str(target), "bytes": size, "seconds": seconds, "started_at": now.isoformat(), **pruned}


def restore_to_time(cluster, when: datetime, *, base: Path | None = None, progress: bool = True, timeout: float = 600) -> dict:
    """Recover the embedded cluster to ``when``: the newest base backup taken before it, replayed from
    the WAL archive (plus the not-yet-archived WAL of the current cluster) up to that moment. The
    current data folder is kept as ``pgdata.before-<UTC time>``."""
    if when.tzinfo is None:
        raise BackupError("--to-time needs a time zone, e.g. 2026-11-30T14:05:00+08:00")
    candidates = [(t, d) for t, d in list_base_backups(cluster) if t <= when]
    if base is not None:
        candidates = [(t, d) for t, d in list_base_backups(cluster) if d.resolve() == Path(base).resolve()] or \
            [(when, Path(base))]
    if not candidates:
        have = ", ".join(d.name for _, d in list_base_backups(cluster)) or "none"
        raise BackupError(f"no base backup was taken before {when.isoformat()} (base backups: {have}). "
                          "A time before the first base backup cannot be recovered.")
    _, folder = candidates[-1]
    if not (folder / "base.tar.gz").exists():
        raise BackupError(f"{folder} holds no base.tar.gz: not a base backup made by `gridwatch db backup --base`.")
    started = time.perf_counter()
    if cluster.running():
        try:
            with psycopg.connect(cluster.url(), autocommit=True, connect_timeout=10) as conn:
                conn.execute("SELECT pg_switch_wal()")
        except psycopg.Error:
            pass
        _say(progress, "stopping the embedded cluster …")
        cluster.stop()
    kept = cluster.root / f"pgdata.before-{_stamp(datetime.now(timezone.utc))}"
    if cluster.pgdata.exists():
        os.rename(cluster.pgdata, kept)
    _say(progress, f"restoring base backup {folder.name} (the data folder it replaces is kept as {kept.name}) …")
    cluster.pgdata.mkdir(mode=0o700)
    with tarfile.open(folder / "base.tar.gz") as tar:
        tar.extractall(cluster.pgdata, filter="fully_trusted")
    wal_tar = folder / "pg_wal.tar.gz"
    (cluster.pgdata / "pg_wal").mkdir(exist_ok=True)
    if wal_tar.exists():
        with tarfile.open(wal_tar) as tar:
            tar.extractall(cluster.pgdata / "pg_wal", filter="fully_trusted")
    # WAL the old cluster wrote but had not archived yet: recovery needs it for the latest moments
    old_wal = kept / "pg_wal"
    if old_wal.exists():
        for f in old_wal.iterdir():
            if f.is_file() and len(f.name) == 24 and not (cluster.archive_dir / f.name).exists():
                shutil.copy2(f, cluster.pgdata / "pg_wal" / f.name)
    (cluster.pgdata / "recovery.signal").write_text("")
    with (cluster.pgdata / "postgresql.auto.conf").open("a") as conf:
        conf.write(f"\nrestore_command = 'cp {cluster.archive_dir}/%f %p'\n"
                   f"recovery_target_time = '{when.isoformat()}'\n"
                   "recovery_target_action = 'promote'\n")
    cluster.own_data()
    _say(progress, f"replaying the WAL archive up to {when.isoformat()} …")
    cluster.start(ensure_database=False)
    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(cluster.url(), autocommit=True, connect_timeout=10) as conn:
            if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                conn.execute("ALTER SYSTEM RESET restore_command")
                conn.execute("ALTER SYSTEM RESET recovery_target_time")
                conn.execute("ALTER SYSTEM RESET recovery_target_action")
                conn.execute("SELECT pg_reload_conf()")
                break
        if time.monotonic() > deadline:
            raise BackupError(f"the cluster is still recovering after {timeout:.0f} s; see {cluster.logfile}")
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    _say(progress, f"recovered to {when.isoformat()} from {folder.name} in {seconds:.1f} s; the previous data folder is {kept}")
    return {"base": str(folder), "kept": str(kept), "seconds": seconds}


def ensure_target_cluster() -> None:
    """For a restore into the embedded cluster: create and start it if needed (from scratch)."""
    if os.environ.get("DATABASE_URL"):
        return
    cluster = db.embedded_cluster()
    try:
        cluster.start()
    except ClusterError:
        raise
