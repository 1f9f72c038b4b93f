"""The embedded PostgreSQL + PostGIS cluster gridwatch runs when no DATABASE_URL is given.

initdb and pg_ctl refuse to run as root, so when this process is root the server binaries run as
the unprivileged ``postgres`` system user (through ``runuser``) and the data folder belongs to it.
The Python side stays as it is.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

__all__ = ["Cluster", "ClusterError", "find_bindir", "port_is_free", "free_port", "ensure_postgis", "postgis_missing_message", "redact"]

SUPERUSER = "gridwatch"
DBNAME = "gridwatch"
APT_HINT = "apt-get install -y postgresql-15 postgresql-15-postgis-3"


class ClusterError(RuntimeError):
    """Something about the embedded cluster that the user must fix; the message says how."""


def find_bindir(explicit: str | None = None) -> Path:
    """Folder holding ``initdb`` and ``pg_ctl``: explicit, else the newest Debian one, else PATH."""
    if explicit and explicit != "auto":
        path = Path(explicit)
        if not (path / "pg_ctl").exists():
            raise ClusterError(f"GRIDWATCH_PG_BINDIR={explicit} has no pg_ctl in it.")
        return path
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(re.search(r"postgresql/(\d+)/", p).group(1)),
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise ClusterError(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found. Install them with "
        f"`{APT_HINT}` (as root or with sudo), or set DATABASE_URL to an existing PostGIS server."
    )


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_postgis(url: str) -> str:
    """Create the postgis extension in the database at ``url``; return the PostGIS version.

    Raises ClusterError with the fix when the server has no PostGIS installed.
    """
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        available = conn.execute(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'postgis'"
        ).fetchone()
        if available is None:
            server = conn.execute("SHOW server_version").fetchone()[0]
            raise ClusterError(postgis_missing_message(url, server))
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        except psycopg.errors.InsufficientPrivilege as exc:
            raise ClusterError(
                f"PostGIS is installed on {redact(url)} but this user may not create the extension: "
                "ask the database owner to run `CREATE EXTENSION postgis;` in this database."
            ) from exc
        return conn.execute("SELECT postgis_lib_version()").fetchone()[0]


def postgis_missing_message(url: str, server_version: str) -> str:
    """What to tell a user whose PostgreSQL server has no PostGIS installed."""
    major = server_version.split(".")[0]
    return (
        f"The PostgreSQL server at {redact(url)} (version {server_version}) has no PostGIS. "
        f"Install it on that server (Debian/Ubuntu: apt-get install postgresql-{major}-postgis-3; "
        "conda: conda install -c conda-forge postgis), then run `gridwatch migrate` again."
    )


def redact(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]+@", r"://\1:***@", url)


@dataclass
class Cluster:
    """A PostgreSQL cluster in ``data_dir`` listening on 127.0.0.1:``port`` and a socket there.

    >>> c = Cluster(Path("/tmp/gw-doc"), 54999)
    >>> c.url()
    'postgresql://gridwatch@127.0.0.1:54999/gridwatch'
    """

    root: Path
    port: int
    bindir: Path | None = None
    fast: bool = False  # fsync off etc.: throwaway test clusters only
    run_as: str | None = field(default=None)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        if self.run_as is None and os.geteuid() == 0:
            self.run_as = "postgres"

    # -- paths -------------------------------------------------------------------------------
    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def logfile(self) -> Path:
        return self.root / "postgres.log"

    @property
    def archive_dir(self) -> Path:
        """Where every completed WAL segment is copied (archive_mode), for point-in-time recovery."""
        return self.root / "wal-archive"

    @property
    def backups_dir(self) -> Path:
        """Where ``gridwatch db backup --base`` puts base backups."""
        return self.root / "backups"

    @property
    def socket_dir(self) -> Path:
        # Unix socket paths are limited to ~107 bytes: fall back to /tmp for deep checkouts.
        candidate = self.root / "run"
        if len(str(candidate)) + len("/.s.PGSQL.65535") < 100:
            return candidate
        digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:10]
        return Path("/tmp") / f"gridwatch-{digest}"

    def url(self, dbname: str = DBNAME) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    # -- helpers -----------------------------------------------------------------------------
    def _bin(self, name: str) -> str:
        if self.bindir is None:
            self.bindir = find_bindir(os.environ.get("GRIDWATCH_PG_BINDIR"))
        return str(self.bindir / name)

    def _cmd(self, *args: str) -> list[str]:
        if self.run_as:
            if shutil.which("runuser") is None:
                raise ClusterError("Running as root needs `runuser` (package util-linux) to start PostgreSQL as a normal user.")
            return ["runuser", "-u", self.run_as, "--", *args]
        return list(args)

    def _run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise ClusterError(f"{Path(args[0]).name} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def run_as_server(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a PostgreSQL binary as the server's user (files it writes belong to that user)."""
        return self._run(*args, timeout=timeout)

    def prepare_backup_dirs(self) -> None:
        """The WAL archive and base-backup folders, owned by the server's user."""
        for d in (self.archive_dir, self.backups_dir):
            d.mkdir(parents=True, exist_ok=True)
            if self.run_as:
                user = pwd.getpwnam(self.run_as)
                os.chown(d, user.pw_uid, user.pw_gid)

    def own_data(self) -> None:
        """Give the data folder (after files were put there by this process) to the server's user."""
        os.chmod(self.pgdata, 0o700)
        if not self.run_as:
            return
        user = pwd.getpwnam(self.run_as)
        for top, dirs, files in os.walk(self.pgdata):
            os.chown(top, user.pw_uid, user.pw_gid)
            for name in files:
                os.chown(os.path.join(top, name), user.pw_uid, user.pw_gid)

    def _prepare_dirs(self) -> None:
        for d in (self.root, self.socket_dir):
            d.mkdir(parents=True, exist_ok=True)
        if self.run_as:
            try:
                user = pwd.getpwnam(self.run_as)
            except KeyError as exc:
                raise ClusterError(
                    f"Running as root, gridwatch starts PostgreSQL as the user '{self.run_as}', which does not exist. "
                    f"Install the server with `{APT_HINT}` (it creates the user) or run gridwatch as a normal user."
                ) from exc
            for d in (self.root, self.socket_dir):
                os.chown(d, user.pw_uid, user.pw_gid)
            # The server user must be able to reach its folder.
            probe = subprocess.run(self._cmd("test", "-w", str(self.root)), capture_output=True)
            if probe.returncode != 0:
                raise ClusterError(
                    f"The PostgreSQL user '{self.run_as}' cannot reach {self.root} (a parent folder is private, "
                    "e.g. /root). Set GRIDWATCH_DATA_DIR to a folder it can reach, e.g. /var/lib/gridwatch."
                )

    def server_version(self) -> str:
        out = subprocess.run([self._bin("pg_ctl"), "--version"], capture_output=True, text=True, check=True).stdout
        return re.search(r"(\d+)(?:\.\d+)?", out).group(1)

    # -- lifecycle ---------------------------------------------------------------------------
    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def init(self) -> None:
        """initdb the data folder if it is not a cluster yet; refuse one of another version."""
        self._prepare_dirs()
        if self.initialized():
            have = (self.pgdata / "PG_VERSION").read_text().strip()
            want = self.server_version()
            if have != want:
                raise ClusterError(
                    f"{self.pgdata} holds a PostgreSQL {have} cluster but the binaries are PostgreSQL {want}. "
                    f"gridwatch will not touch it. Point GRIDWATCH_PG_BINDIR at PostgreSQL {have}'s bin folder, "
                    "or move that folder away (or set GRIDWATCH_DATA_DIR) to start a new cluster."
                )
            return
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise ClusterError(f"{self.pgdata} exists, is not empty and is not a PostgreSQL cluster: move it away.")
        self._run(
            self._bin("initdb"), "-D", str(self.pgdata), "-U", SUPERUSER, "--auth=trust",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions",
        )

    def running(self) -> bool:
        if not self.initialized():
            return False
        proc = self._run(self._bin("pg_ctl"), "-D", str(self.pgdata), "status", check=False)
        return proc.returncode == 0

    def _clear_stale_pid(self) -> bool:
        """Remove postmaster.pid when no postgres process owns it. True if one was removed."""
        pidfile = self.pgdata / "postmaster.pid"
        if not pidfile.exists():
            return False
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (ValueError, IndexError):
            pid = -1
        alive = False
        if pid > 0:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                alive = b"postgres" in cmdline
            except OSError:
                alive = False
        if not alive:
            pidfile.unlink()
            return True
        return False

    def start(self, ensure_database: bool = True) -> str:
        """Start (or reuse) the cluster; create the database and PostGIS. Returns what happened.

        ``ensure_database=False`` only starts the server (a cluster recovering from its archive
        is read-only until it is done)."""
        self.init()
        if self.running():
            if ensure_database:
                self._ensure_database()
            return "reused"
        stale = self._clear_stale_pid()
        if not port_is_free(self.port):
            raise ClusterError(
                f"Port {self.port} on 127.0.0.1 is taken by another program. Stop it, or choose another port: "
                f"GRIDWATCH_PG_PORT={self.port + 1} gridwatch db start"
            )
        if not self.fast:
            self.prepare_backup_dirs()
        opts = [f"-c {shlex.quote(setting)}" for setting in self.server_settings()]
        proc = self._run(
            self._bin("pg_ctl"), "-D", str(self.pgdata), "-l", str(self.logfile),
            "-o", " ".join(opts), "-w", "-t", "60", "start", check=False,
        )
        if proc.returncode != 0:
            tail = ""
            if self.logfile.exists():
                tail = "\n".join(self.logfile.read_text(errors="replace").splitlines()[-8:])
            raise ClusterError(f"PostgreSQL did not start (see {self.logfile}):\n{tail or proc.stderr}")
        if ensure_database:
            self._ensure_database()
        return "started after removing a stale pid file" if stale else "started"

    def server_settings(self) -> list[str]:
        """The ``name=value`` settings the server runs with (pg_ctl start and the systemd unit alike)."""
        settings = [
            f"port={self.port}",
            f"unix_socket_directories={self.socket_dir}",
            "listen_addresses=127.0.0.1",
            "max_connections=200",
            "shared_buffers=256MB",
            "jit=off",  # JIT compile costs seconds on per-row triggers and dashboard aggregates
        ]
        if self.fast:
            settings += ["fsync=off", "synchronous_commit=off", "full_page_writes=off"]
        else:
            # every completed WAL segment is archived for point-in-time recovery (gridwatch db restore --to-time)
            # WAL is kept only once a base backup exists (before one, it could not be replayed onto anything)
            arch, backups = shlex.quote(str(self.archive_dir)), shlex.quote(str(self.backups_dir))
            archive = f"if ls {backups} | grep -q '^base-'; then test ! -f {arch}/%f && cp %p {arch}/%f; fi"
            settings += ["wal_level=replica", "archive_mode=on", f"archive_command={archive}", "archive_timeout=300"]
        return settings

    def server_command(self) -> list[str]:
        """The foreground server command (``postgres -D … -c …``), as the systemd unit runs it."""
        return [self._bin("postgres"), "-D", str(self.pgdata), *[a for s in self.server_settings() for a in ("-c", s)]]

    def prepare(self) -> str:
        """Folders, initdb if needed, and a stale pid file cleared: what a foreground start needs first."""
        self.init()
        if not self.fast:
            self.prepare_backup_dirs()
        if self.running():
            return "running"
        return "ready (a stale pid file was removed)" if self._clear_stale_pid() else "ready"

    def _ensure_database(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=5) as conn:
                    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DBNAME,)).fetchone()
                    if not exists:
                        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DBNAME)))
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        ensure_postgis(self.url())

    def stop(self) -> str:
        if not self.running():
            if self.initialized():
                self._clear_stale_pid()
            return "not running"
        self._run(self._bin("pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop")
        return "stopped"

    def status(self) -> dict:
        return {
            "data_dir": str(self.pgdata),
            "initialized": self.initialized(),
            "running": self.running(),
            "port": self.port,
            "url": self.url(),
        }
