"""Test session: one real throwaway PostgreSQL + PostGIS cluster, databases cloned from a template.

- ``cluster``: started by the first test that needs a database (so geo/figure/architecture tests
  run without PostgreSQL), stopped at the end of the session.
- ``db_url`` / ``conn``: a fresh, migrated, empty database per test (CREATE DATABASE … TEMPLATE).
- ``gansu_url``: one database per session with the full Gansu demo hierarchy loaded (read-only use).
- ``serve``: starts ``gridwatch serve`` as its own process on a free port against a given database
  (the dashboard in a browser, kill/restart); ``serve_in_process``: the same app served from a
  thread of the test process (API tests: real HTTP, no process start; see tests/apiserver.py).
- A skipped test fails the run (see pytest_sessionfinish).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from gridwatch.cluster import Cluster, free_port
from tests.browser import browser_page, chromium  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
TEMPLATE = "gw_template"


# -- who the tests are (issue 11): the server refuses anonymous writes and row-level security shows
#    an anonymous request no case. Every test server's database gets a province-wide operator,
#    ``test_operator``, with the token TEST_TOKEN (a throwaway value of test databases only), and
#    HTTP clients of this test process (httpx, urllib) and the browser fixture send it to 127.0.0.1
#    unless a request carries its own Authorization header. Tests about identity send their own
#    tokens, or ANONYMOUS to be nobody.
TEST_TOKEN = "gwt_test-suite-province-operator-not-a-secret"
AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}
ANONYMOUS = {"Authorization": "none"}


def ensure_test_identity(database_url: str) -> bool:
    """Give ``database_url`` the test operator and TEST_TOKEN (idempotent); False when it has no
    province region yet (an empty database: nothing to act on)."""
    import hashlib

    with psycopg.connect(database_url, autocommit=True) as c:
        if c.execute("SELECT to_regclass('public.api_token') IS NOT NULL AND EXISTS (SELECT 1 FROM region WHERE code = '62')").fetchone()[0] is not True:
            return False
        c.execute("""INSERT INTO app_user (username, display_name, role, region_code) VALUES
                     ('test_operator', '测试值班员', 'operator', '62') ON CONFLICT (username) DO NOTHING""")
        c.execute("""INSERT INTO api_token (user_id, token_sha256, name)
                     SELECT id, %s, 'test suite' FROM app_user WHERE username = 'test_operator'
                     ON CONFLICT (token_sha256) DO NOTHING""", (hashlib.sha256(TEST_TOKEN.encode()).digest(),))
    return True


def account_token(database_url: str, username: str, role: str, region_code: str | None = None,
                  department_id: int | None = None) -> str:
    """A bearer token of account ``username`` (created with ``role`` and scope when missing)."""
    from gridwatch import auth

    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as c:
        if auth.get_user(c, username) is None:
            auth.add_user(c, username, role, region_code=region_code, department_id=department_id)
        return auth.create_token(c, username)[1]


def bearer(token: str) -> dict:
    """Headers sending ``token``."""
    return {"Authorization": f"Bearer {token}"}


def _send_test_token_by_default() -> None:
    """httpx clients and urllib requests to 127.0.0.1 carry AUTH unless they set Authorization."""
    import urllib.request

    import httpx

    for cls in (httpx.Client, httpx.AsyncClient):
        if getattr(cls.__init__, "_gw_auth", False):
            continue
        original = cls.__init__

        def init(self, *args, _original=original, **kwargs):
            _original(self, *args, **kwargs)
            if "authorization" not in self.headers:
                self.headers["Authorization"] = AUTH["Authorization"]

        init._gw_auth = True
        cls.__init__ = init

    class _Auth(urllib.request.BaseHandler):
        handler_order = 100

        def http_request(self, req):
            if req.host.split(":")[0] == "127.0.0.1" and not req.has_header("Authorization"):
                req.add_unredirected_header("Authorization", AUTH["Authorization"])
            return req

    urllib.request.install_opener(urllib.request.build_opener(_Auth()))


_send_test_token_by_default()


# -- the cluster starts when the first test asks for it (pure tests never start PostgreSQL) and
#    lives for the rest of the session; the header names the installed versions without starting it
def _installed_versions() -> str | None:
    from gridwatch.cluster import ClusterError, find_bindir

    try:
        bindir = find_bindir()
    except ClusterError:
        return None
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=30).stdout
    pg = re.search(r"\d+(?:\.\d+)+", out).group(0)
    control = Path(f"/usr/share/postgresql/{pg.split('.')[0]}/extension/postgis.control")
    postgis = next((line.split("'")[1] for line in control.read_text().splitlines() if line.startswith("default_version")),
                   "?") if control.exists() else "not installed"
    return f"PostgreSQL {pg}, PostGIS {postgis} (installed; the throwaway cluster starts when a test needs it)"


def pytest_report_header(config):
    line = _installed_versions()
    return [line] if line else None


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped = reporter.stats.get("skipped", []) + reporter.stats.get("xfailed", [])
    if skipped:
        reporter.write_line(f"FAILED: {len(skipped)} test(s) skipped or xfailed; a skipped test fails this suite.", red=True)
        session.exitstatus = 1


@pytest.fixture(scope="session")
def cluster(pytestconfig) -> Cluster:
    """The session's throwaway cluster with a migrated template database, started on first use."""
    from etl.migrate import migrate
    from gridwatch.cluster import ensure_postgis

    root = Path(tempfile.mkdtemp(prefix="gw-test-", dir="/tmp"))
    os.chmod(root, 0o755)
    cluster = Cluster(root, free_port(), fast=True)
    try:
        cluster.start()
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
        ensure_postgis(cluster.url(TEMPLATE))
        with psycopg.connect(cluster.url(TEMPLATE)) as conn:
            migrate(conn)
            pg, postgis, geos, proj = conn.execute(
                "SELECT current_setting('server_version'), postgis_lib_version(), postgis_geos_version(), postgis_proj_version()"
            ).fetchone()
        reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"\nPostgreSQL {pg}, PostGIS {postgis} (GEOS {geos}, PROJ {proj}) at {cluster.url(TEMPLATE)}")
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(cluster.root, ignore_errors=True)


def clone_database(cluster: Cluster, template: str, name: str | None = None) -> str:
    name = name or f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    return name


def drop_database(cluster: Cluster, name: str) -> None:
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _template_for(request) -> str:
    """The database a test's ``db_url`` is cloned from.

    A prepared template when the test uses a fixture that has one (``tiny`` → ``tiny_template``; a
    module adds its own in ``DATABASE_TEMPLATES = {fixture: template fixture}``), else the empty one.
    Building the data once and cloning it per test is what keeps these tests fast.
    """
    wanted = {**getattr(request.module, "DATABASE_TEMPLATES", {}), "tiny": "tiny_template"}
    for fixture, template in wanted.items():
        if fixture in request.fixturenames:
            return request.getfixturevalue(template)[0]
    return TEMPLATE


@pytest.fixture
def db_url(request, cluster):
    """URL of a fresh, migrated database (dropped after the test): empty, or a copy of a template."""
    name = clone_database(cluster, _template_for(request))
    yield cluster.url(name)
    drop_database(cluster, name)


@pytest.fixture
def conn(db_url):
    """An autocommit connection (dict rows) to a fresh database."""
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as c:
        yield c


def tiny_template_of(cluster: Cluster) -> tuple[str, dict[str, list[str]]]:
    """(database, codes): the tiny hierarchy of tests/factories.py, built once per cluster."""
    if not hasattr(cluster, "_gw_tiny"):
        from tests.factories import make_tiny_gansu

        name = clone_database(cluster, TEMPLATE, "gw_tiny")
        with psycopg.connect(cluster.url(name), autocommit=True, row_factory=dict_row) as c:
            cluster._gw_tiny = (name, make_tiny_gansu(c))
    return cluster._gw_tiny


@pytest.fixture(scope="session")
def tiny_template(cluster):
    """(database, codes): the tiny hierarchy, built once per session."""
    return tiny_template_of(cluster)


@pytest.fixture
def tiny(conn, tiny_template):
    """The constructed tiny hierarchy of tests/factories.py in this test's fresh database
    (``db_url`` is a copy of ``tiny_template`` when a test uses this); returns the codes per level."""
    return {level: list(codes) for level, codes in tiny_template[1].items()}


@pytest.fixture(scope="session")
def gansu_template(cluster):
    """Name of a database holding the whole Gansu demo hierarchy, loaded once per session."""
    from etl.gansu import load_gansu

    name = clone_database(cluster, TEMPLATE, "gw_gansu")
    with psycopg.connect(cluster.url(name)) as conn:
        load_gansu(conn, progress=False)
    return name


@pytest.fixture(scope="session")
def gansu_url(cluster, gansu_template):
    """URL of the session's Gansu database. Treat it as read-only; use ``gansu_copy_url`` to write."""
    return cluster.url(gansu_template)


@pytest.fixture
def gansu_copy_url(cluster, gansu_template):
    """URL of a private copy of the Gansu database that a test may change."""
    name = clone_database(cluster, gansu_template)
    yield cluster.url(name)
    drop_database(cluster, name)


class Server:
    def __init__(self, url: str, proc: subprocess.Popen, log: Path):
        self.url, self.proc, self.log = url, proc, log

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class GiveUp(AssertionError):
    """Raised by a wait_until predicate to stop waiting at once."""


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.05, message: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; fail with ``message`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except GiveUp:
            raise
        except Exception as exc:  # noqa: BLE001 - keep polling; report the last error
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}" + (f" (last error: {last_exc!r})" if last_exc else ""))


@pytest.fixture
def serve(tmp_path):
    """Start ``gridwatch serve`` (a process of its own) against a database URL; returns a Server with ``.url``."""
    from tests.apiserver import start_server

    started: list[Server] = []

    def start(database_url: str, env: dict | None = None) -> Server:
        server = start_server(database_url, env, log_dir=tmp_path)
        started.append(server)
        return server

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def serve_in_process():
    """Like ``serve`` but the app runs in a thread of this process: ``start(url, env=None)``."""
    from tests.apiserver import InProcessServer

    started: list[InProcessServer] = []

    def start(database_url: str, env: dict | None = None) -> InProcessServer:
        server = InProcessServer(database_url, env)
        started.append(server)
        return server

    yield start
    for s in reversed(started):
        s.stop()
