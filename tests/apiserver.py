"""Servers for the API tests.

- :class:`InProcessServer`: the app of ``create_app(url)`` served by uvicorn in a thread of the
  test process, on a free port. Real HTTP through the real ASGI app, without starting a process
  (no interpreter start, no imports, no app build per server): what most API tests need.
- :func:`start_server`: ``gridwatch serve`` as a process of its own, for tests that need one (many
  clients dropping connections, kill/restart) and for the dashboard in a browser: Dash hands its
  page callbacks to the first app built in a process, so only one app per process serves pages.
  The process is forked from :class:`Forker`, which imported the server once for the session.
- :class:`ApiWorld`: a module's shared database (tiny hierarchy + departments) and its server.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from tests.conftest import (ROOT, GiveUp, Server, clone_database, drop_database, ensure_test_identity, free_port,
                            tiny_template_of, wait_until)


def create_app(database_url: str):
    """The server assembly's ``create_app`` (gridwatch.server; dashboard.server before it moved)."""
    try:
        from gridwatch.server import create_app as build
    except ModuleNotFoundError as exc:
        if exc.name != "gridwatch.server":
            raise
        from dashboard.server import create_app as build
    return build(database_url)


class InProcessServer:
    """``create_app(url)`` on uvicorn in a daemon thread; ``env`` is set in os.environ while it runs.

    Settings are read per request (gridwatch.config.get), so ``env`` applies to this server; it is
    restored on :meth:`stop`. Same ``.url`` / ``.stop()`` as the subprocess :class:`Server`.
    """

    def __init__(self, database_url: str, env: dict | None = None):
        import uvicorn

        self._saved_env = {k: os.environ.get(k) for k in (env or {})}
        os.environ.update(env or {})
        try:
            ensure_test_identity(database_url)     # the test operator (tests/conftest.py)
            self.app = create_app(database_url)
            self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP named: asyncio then sets TCP_NODELAY (else ~40 ms per request on delayed ACK)
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind(("127.0.0.1", 0))
            port = self._socket.getsockname()[1]
            self.url = f"http://127.0.0.1:{port}"
            config = uvicorn.Config(self.app, log_level="warning", access_log=False,
                                    timeout_graceful_shutdown=2, lifespan="on")
            self._uvicorn = uvicorn.Server(config)
            self._thread = threading.Thread(target=self._uvicorn.run, kwargs={"sockets": [self._socket]},
                                            name=f"api-server-{port}", daemon=True)
            self._thread.start()
            wait_until(self._ready, timeout=30, interval=0.02, message=f"in-process server on port {port} to start")
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        if not self._thread.is_alive():
            raise GiveUp("the in-process server thread ended before it started serving")
        return self._uvicorn.started

    def stop(self) -> None:
        uv = getattr(self, "_uvicorn", None)
        if uv is not None:
            uv.should_exit = True
            self._thread.join(15)
        if getattr(self, "_socket", None) is not None:
            self._socket.close()
        app = getattr(self, "app", None)
        if app is not None:
            app.state.listener.stop()
            app.state.pool.close()
            getattr(app.state, "owner_pool", app.state.pool).close()
            self.app = None
        for k, v in self._saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._saved_env = {}


class _Forked:
    """The part of ``subprocess.Popen`` that :class:`Server` uses, for a process the forker started.

    The forker (its parent) reaps it and writes its exit status beside the log.
    """

    def __init__(self, pid: int, log: Path):
        self.pid, self._rc_file, self.returncode = pid, log.with_suffix(".rc"), None

    def poll(self):
        if self.returncode is None and self._rc_file.exists():
            text = self._rc_file.read_text().strip()
            if text:
                self.returncode = int(text)
        return self.returncode

    def _signal(self, sig) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = time.monotonic() + (timeout if timeout is not None else 3600)
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"server process {self.pid}", timeout)
            time.sleep(0.02)
        return self.returncode


class Forker:
    """A process that imported the server once and forks a fresh ``gridwatch serve`` per request.

    Each server is a real process of its own (its own app, pool, LISTEN and signals), started in a
    fraction of the time an interpreter needs to import dash, plotly and the app. Ask with
    :meth:`spawn`; the forker ends when this process closes its stdin (also at exit or if killed).
    """

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.apiserver", "--forker"], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self._lock = threading.Lock()
        ready = self.proc.stdout.readline().strip()
        if ready != "ready":
            raise RuntimeError(f"the server forker did not start (said {ready!r}, exit code {self.proc.poll()})")

    def spawn(self, argv: list[str], env: dict, log: Path) -> _Forked:
        with self._lock:
            self.proc.stdin.write(json.dumps({"argv": argv, "env": env, "log": str(log)}) + "\n")
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline().strip()
        if not answer.isdigit():
            raise RuntimeError(f"the server forker failed to start a server (said {answer!r})")
        return _Forked(int(answer), log)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


_forker: Forker | None = None


def forker() -> Forker:
    """The session's forker, started on first use and closed at exit."""
    global _forker
    if _forker is None or _forker.proc.poll() is not None:
        _forker = Forker()
        atexit.register(_forker.close)
    return _forker


def _forker_main() -> None:
    """Run as ``python -m tests.apiserver --forker``: import everything once, then fork per line."""
    from gridwatch import cli, server  # noqa: F401  (the imports every server would repeat)

    cli.build_parser()                  # imports every command module
    assert threading.active_count() == 1, "the forker must not run threads: a fork copies only one"
    children: dict[int, str] = {}

    def reap(*_):
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            log = children.pop(pid, None)
            if log:
                Path(log).with_suffix(".rc").write_text(str(os.waitstatus_to_exitcode(status)))

    signal.signal(signal.SIGCHLD, reap)
    print("ready", flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})   # reap only once the child is known
        pid = os.fork()
        if pid == 0:                    # the server: a process of its own from here on
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            os.setpgrp()
            fd = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.environ.clear()
            os.environ.update(job["env"])
            code = 1
            try:
                code = cli.main(job["argv"])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:       # noqa: BLE001 - report it in the log, exit non-zero
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = job["log"]
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        print(pid, flush=True)
    for pid in list(children):          # the test session ended: no server outlives it
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def start_server(database_url: str, env: dict | None = None, log_dir: Path | None = None) -> Server:
    """``gridwatch serve`` as a process of its own on a free port, answering /healthz."""
    ensure_test_identity(database_url)          # the test operator (tests/conftest.py)
    port = free_port()
    log = Path(log_dir or tempfile.mkdtemp(prefix="gw-api-")) / f"server-{port}.log"
    environment = {**os.environ, "DATABASE_URL": database_url, "GRIDWATCH_PORT": str(port), **(env or {})}
    proc = forker().spawn(["serve", "--port", str(port)], environment, log)
    server = Server(f"http://127.0.0.1:{port}", proc, log)

    def healthy():
        if proc.poll() is not None:
            raise GiveUp(f"server exited with {proc.returncode}:\n{log.read_text()}")
        with urllib.request.urlopen(server.url + "/healthz", timeout=2) as r:
            return r.status == 200

    try:
        wait_until(healthy, timeout=60, interval=0.05, message=f"server on port {port} to answer /healthz")
    except BaseException:
        server.stop()
        raise
    return server


class ApiWorld:
    """A database with the tiny hierarchy and a few departments, served over real HTTP.

    In-process by default; ``process=True`` runs ``gridwatch serve`` in a subprocess instead.
    """

    def __init__(self, cluster, env: dict | None = None, *, process: bool = False):
        from tests.factories import make_department

        self.cluster = cluster
        template, codes = tiny_template_of(cluster)
        self.name = clone_database(cluster, template)
        self.db_url = cluster.url(self.name)
        self.codes = {level: list(c) for level, c in codes.items()}
        self.server = None
        try:
            with psycopg.connect(self.db_url, autocommit=True, row_factory=dict_row) as conn:
                self.departments = {
                    "justice": make_department(conn, "620702100", "justice", "新墩镇司法所"),
                    "water": make_department(conn, "620702", "water", "甘州区水务局"),
                    "power": make_department(conn, "620702100", "power", "新墩供电所"),
                }
            self.server = start_server(self.db_url, env) if process else InProcessServer(self.db_url, env)
        except BaseException:
            drop_database(cluster, self.name)
            raise
        self.url = self.server.url

    def connect(self):
        return psycopg.connect(self.db_url, autocommit=True, row_factory=dict_row)

    def count(self, table: str) -> int:
        with self.connect() as conn:
            return conn.execute(sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(table))).fetchone()["n"]

    def close(self):
        self.server.stop()
        drop_database(self.cluster, self.name)
        if isinstance(self.server, Server):
            shutil.rmtree(self.server.log.parent, ignore_errors=True)


if __name__ == "__main__" and sys.argv[1:] == ["--forker"]:
    _forker_main()
