"""Throwaway helper services for the scaling tests: redis-server, pgbouncer and a streaming replica,
each on a free 127.0.0.1 port in its own temporary folder, stopped by the fixture that started it.

Debian packages: redis-server, pgbouncer (scripts/bootstrap.sh installs them in test mode). As root,
pgbouncer runs as the ``postgres`` user (it refuses root), like the PostgreSQL binaries.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

from gridwatch.cluster import free_port
from tests.conftest import wait_until

__all__ = ["RedisServer", "PgBouncer", "server_children"]


class RedisServer:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="gw-redis-"))
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)], stdout=(self.dir / "redis.log").open("w"), stderr=subprocess.STDOUT)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        import redis

        self.client = redis.Redis.from_url(self.url)
        wait_until(lambda: self.client.ping(), timeout=15, message="redis-server to answer PING")

    def stop(self):
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class PgBouncer:
    """pgbouncer in transaction-pooling mode in front of 127.0.0.1:``pg_port``, ``pool_size`` server connections."""

    def __init__(self, pg_port: int, pool_size: int = 4):
        self.dir = Path(tempfile.mkdtemp(prefix="gw-pgbouncer-", dir="/tmp"))
        self.port = free_port()
        (self.dir / "userlist.txt").write_text('"gridwatch" ""\n"gridwatch_app" ""\n')   # the owner and the app role
        (self.dir / "pgbouncer.ini").write_text(f"""[databases]
* = host=127.0.0.1 port={pg_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.dir}/userlist.txt
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 2000
max_db_connections = {pool_size}
ignore_startup_parameters = extra_float_digits
logfile = {self.dir}/pgbouncer.log
pidfile = {self.dir}/pgbouncer.pid
""")
        cmd = ["pgbouncer", str(self.dir / "pgbouncer.ini")]
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chmod(self.dir, 0o755)
            for f in [self.dir, *self.dir.iterdir()]:
                os.chown(f, user.pw_uid, user.pw_gid)
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                log = (self.dir / "pgbouncer.log").read_text() if (self.dir / "pgbouncer.log").exists() else ""
                raise AssertionError(f"pgbouncer exited with {self.proc.returncode}: {log[-2000:]}")
            with psycopg.connect(self.url("postgres"), connect_timeout=3, prepare_threshold=None) as c:
                return c.execute("SELECT 1").fetchone()

        wait_until(up, timeout=20, interval=0.2, message="pgbouncer to accept connections")

    def url(self, dbname: str) -> str:
        return f"postgresql://gridwatch@127.0.0.1:{self.port}/{dbname}"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def server_children(pid: int) -> list[int]:
    """Process ids of the worker processes of ``gridwatch serve --workers N`` (the uvicorn supervisor's children)."""
    import psutil

    try:
        kids = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [k.pid for k in kids if "multiprocessing.resource_tracker" not in " ".join(k.cmdline())]


@pytest.fixture
def redis_server():
    server = RedisServer()
    yield server
    server.stop()
