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

import contextlib
import fcntl
import json
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


# -- parallel runs (./test.sh: pytest -n 4 --dist load). Each worker takes the next test as it gets
#    free; the collection is ordered so the known-slow tests below come first, longest first, and the
#    run ends with short ones (no worker is left with a long test at the end); the other tests keep
#    their file order, so module fixtures are mostly reused. (xdist's loadgroup cannot group on
#    pytest 9.2: its nodeid suffix no longer takes.) Seconds per test (setup + call) measured serially
#    on the shared 2-core machine with --durations; a test not listed counts as short.
SLOW_TESTS = {
    "test_dashboard_wall_live.py::test_the_wall_shows_its_map_most_of_the_time_while_red_items_arrive_and_nothing_overflows": 150,
    "test_fuzz_api.py::test_generated_requests_with_a_valid_token_never_get_a_5xx_and_refused_writes_write_nothing": 15,   # each shard (6–19 s measured serially)
    "test_api_live_browser.py::test_a_county_page_left_open_for_a_minute_while_cases_arrive_elsewhere_makes_at_most_six_requests": 68,
    "test_workbench_pages.py::test_return_extension_rework_and_merge_are_each_clicked_through_the_case_page_and_land_on_the_trail": 44,
    "test_workers.py::test_killing_either_of_two_workers_does_not_interrupt_an_open_wall": 41,
    "test_hardening.py::test_wrong_types_in_every_field_of_every_json_write_get_422_not_500": 37,
    "test_mobile.py::test_a_report_made_offline_is_kept_on_the_phone_and_exists_exactly_once_when_the_connection_returns": 36,
    "test_mobile.py::test_a_phone_giving_gcj02_positions_is_converted_to_the_true_place": 34,
    "test_service.py::test_the_units_command_lines_run_for_real_and_gridwatch_health_reports_ok_degraded_unreachable": 33,
    "test_dashboard_gansu.py::test_a_county_of_the_demo_shows_its_townships_and_the_apis_numbers_and_the_wall_tours": 15,
    "test_boundary_changes.py::test_a_surveyed_township_file_for_one_county_loaded_into_the_live_demo_restamps_its_rows_and_keeps_the_county_kpis": 31,
    "test_workers.py::test_two_workers_behind_pgbouncer_use_its_few_connections_and_still_push_changes": 28,
    "test_workbench_pages.py::test_chang_jianxin_the_qingquan_centre_mediates_the_sheep_farm_records_his_commitment_closes_and_the_grid_worker_checks": 28,
    "test_workbench_pages.py::test_chen_dianqing_walks_in_the_county_centre_convenes_three_bodies_the_bureau_pays_and_the_case_is_closed_and_visited": 28,
    "test_workbench_pages.py::test_shi_quanai_from_the_petitions_bureau_to_the_county_handed_down_with_a_deadline_fixed_in_the_township_reported_up_and_closed_by_the_county": 26,
    "test_demo.py::test_the_full_demo_on_gansu_places_the_stories_by_name_and_is_consistent": 25,
    "test_etl_gansu.py::test_replace_recomputes_everything_and_comes_out_byte_identical": 24,
    "test_dashboard_states.py::test_a_database_outage_shows_a_banner_never_a_traceback_and_recovers_by_itself": 17,
    "test_simulate.py::test_the_simulator_sends_cases_moves_them_through_legal_lifecycles_and_checks_in": 17,
    "test_workbench_pages.py::test_every_workbench_page_speaks_chinese_and_english": 16,
    "test_faults.py::test_postgresql_restarted_under_load_the_server_reconnects_and_the_wall_recovers_without_a_reload": 15,
    "test_boundary_changes.py::test_kpis_of_a_period_before_a_boundary_change_say_they_use_todays_units_and_the_units_of_the_time_are_kept": 12,
    "test_replica.py::test_gridwatch_db_replica_start_status_stop_runs_a_hot_standby_beside_the_embedded_cluster": 12,
    "test_dashboard_drilldown.py::test_clicking_down_from_the_province_to_a_grid_changes_breadcrumb_url_and_kpis": 12,
    "test_mobile.py::test_a_case_the_township_hands_down_to_the_grid_is_on_the_workers_phone_with_its_deadline_and_the_worker_reports_up": 11,
    "test_faults.py::test_a_server_killed_in_the_middle_of_batches_leaves_every_acknowledged_case_exactly_once": 10,
    "test_demo.py::test_the_three_stories_are_found_by_place_and_shi_quanais_shed_is_on_his_village_map": 10,
    "test_workbench_pages.py::test_the_workbench_is_used_with_the_keyboard_alone": 10,
    "test_dashboard_states.py::test_the_walls_freshness_badges_turn_amber_during_an_outage_and_green_after": 9,
}


def _slow_seconds(item) -> float | None:
    return SLOW_TESTS.get(f"{Path(item.path).name}::{getattr(item, 'originalname', item.name)}")


def pytest_collection_modifyitems(config, items):
    """In xdist workers of a ``--dist load`` run: the slow tests first, longest first (every worker
    sorts alike, so their collections agree)."""
    if not _is_worker(config) or config.workerinput.get("gw_dist") != "load":
        return
    items.sort(key=lambda item: -(_slow_seconds(item) or 0.0))      # stable: the rest keep their order


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped = reporter.stats.get("skipped", []) + reporter.stats.get("xfailed", [])
    if skipped:
        reporter.write_line(f"FAILED: {len(skipped)} test(s) skipped or xfailed; a skipped test fails this suite.", red=True)
        session.exitstatus = 1


# -- one cluster for the whole run, xdist workers included. Each worker is a process of its own; the
#    first test of any worker that needs a database starts the cluster under a file lock in the run's
#    folder and writes where it is, the others read that. Templates are built once the same way (a
#    lock and a "done" file each) and cloned by every worker. The process that owns the run (the xdist
#    controller, or pytest itself when serial) stops the cluster once, in pytest_unconfigure, after
#    every worker has finished; a watchdog process stops it and removes its folder if that process
#    dies without doing so (kill -9, a closed terminal).
RUN_DIR = pytest.StashKey[Path]()
LOCK_TIMEOUT = 1200.0          # seconds a process waits for another to build a shared thing


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def _run_dir(config, create: bool = True) -> Path | None:
    """The run's folder (cluster data, locks, what was built): the controller's, given to each worker."""
    if _is_worker(config):
        return Path(config.workerinput["gw_run_dir"])
    run_dir = config.stash.get(RUN_DIR, None)
    if run_dir is None and create:
        run_dir = Path(tempfile.mkdtemp(prefix="gw-test-", dir="/tmp"))
        os.chmod(run_dir, 0o755)                 # the server's user (postgres, when run as root) reaches it
        config.stash[RUN_DIR] = run_dir
    return run_dir


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist controller: every worker shares the controller's run folder; the controller owns the run."""
    node.workerinput["gw_run_dir"] = str(_run_dir(node.config))
    node.workerinput["gw_owner_pid"] = os.getpid()
    node.workerinput["gw_dist"] = node.config.option.dist


def pytest_unconfigure(config):
    """The run's owner stops the shared cluster once, after every worker, and removes its folder."""
    if not _is_worker(config):
        run_dir = _run_dir(config, create=False)
        if run_dir is not None:
            _stop_run(run_dir)


@contextlib.contextmanager
def _locked(path: Path, timeout: float = LOCK_TIMEOUT):
    """An exclusive fcntl lock on ``path`` between the processes of this run."""
    with open(path, "a") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"waited {timeout:.0f} s for {path}: another test process holds it") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def built_once(run_dir: Path, name: str, build):
    """``build()``'s JSON result for this run: built by the first process that asks, read by the others."""
    done = run_dir / f"{name}.json"
    if not done.exists():
        with _locked(run_dir / f"{name}.lock"):
            if not done.exists():
                result = build()
                partial = done.with_suffix(".partial")
                partial.write_text(json.dumps(result))
                partial.replace(done)
    return json.loads(done.read_text())


# Stops the cluster and removes the run folder once the run's owner has gone, however it ended.
WATCHDOG = r"""
import os, select, shutil, signal, subprocess, sys, json
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
owner, root, stop = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
try:
    select.select([os.pidfd_open(owner)], [], [])
except ProcessLookupError:
    pass
if os.path.exists(os.path.join(root, "pgdata", "postmaster.pid")):
    subprocess.run(stop, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
shutil.rmtree(root, ignore_errors=True)
"""


def watch(cluster: Cluster, owner_pid: int) -> None:
    """Stop ``cluster`` and remove its folder when process ``owner_pid`` ends, however it ends."""
    stop = cluster._cmd(cluster._bin("pg_ctl"), "-D", str(cluster.pgdata), "-m", "immediate", "-w", "stop")
    subprocess.Popen([sys.executable, "-c", WATCHDOG, str(owner_pid), str(cluster.root), json.dumps(stop)],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _start_cluster(run_dir: Path, owner_pid: int) -> dict:
    """Start the run's cluster in ``run_dir`` with the migrated, PostGIS-enabled template database."""
    from etl.migrate import migrate
    from gridwatch.cluster import ensure_postgis

    cluster = Cluster(run_dir, free_port(), fast=True)
    watch(cluster, owner_pid)
    cluster.start()
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    ensure_postgis(cluster.url(TEMPLATE))
    with psycopg.connect(cluster.url(TEMPLATE)) as conn:
        migrate(conn)
        versions = conn.execute(
            "SELECT current_setting('server_version'), postgis_lib_version(), postgis_geos_version(), postgis_proj_version()"
        ).fetchone()
    seal_template(cluster, TEMPLATE)
    return {"root": str(run_dir), "port": cluster.port, "versions": list(versions)}


def _stop_run(run_dir: Path) -> None:
    try:
        if (run_dir / "pgdata" / "postmaster.pid").exists():
            port = json.loads((run_dir / "cluster.json").read_text())["port"] if (run_dir / "cluster.json").exists() else 0
            Cluster(run_dir, port, fast=True).stop()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def seal_template(cluster: Cluster, name: str) -> None:
    """No connections to a template once built: CREATE DATABASE … TEMPLATE fails while anyone is connected."""
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def cluster(pytestconfig) -> Cluster:
    """The run's throwaway cluster with a migrated template database, started on first use and shared
    by every xdist worker; stopped by the run's owner (pytest_unconfigure)."""
    run_dir = _run_dir(pytestconfig)
    owner = pytestconfig.workerinput["gw_owner_pid"] if _is_worker(pytestconfig) else os.getpid()
    info = built_once(run_dir, "cluster", lambda: _start_cluster(run_dir, owner))
    cluster = Cluster(Path(info["root"]), info["port"], fast=True)
    cluster.run_dir = run_dir
    pg, postgis, geos, proj = info["versions"]
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"\nPostgreSQL {pg}, PostGIS {postgis} (GEOS {geos}, PROJ {proj}) at {cluster.url(TEMPLATE)}")
    return cluster


@pytest.fixture
def own_cluster():
    """A cluster of this test's own, its database ``gridwatch`` migrated with the tiny hierarchy, for a
    test that stops or restarts PostgreSQL (the run's cluster is shared by every xdist worker)."""
    from etl.migrate import migrate
    from tests.factories import make_tiny_gansu

    root = Path(tempfile.mkdtemp(prefix="gw-own-", dir="/tmp"))
    os.chmod(root, 0o755)
    own = Cluster(root, free_port(), fast=True)
    watch(own, os.getpid())
    try:
        own.start()
        with psycopg.connect(own.url()) as conn:
            migrate(conn)
        with psycopg.connect(own.url(), autocommit=True, row_factory=dict_row) as conn:
            make_tiny_gansu(conn)
        yield own
    finally:
        try:
            own.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


def shared_template(cluster: Cluster, name: str, source: str, fill) -> dict:
    """Database ``name``, a copy of ``source`` filled by ``fill(url)`` (its JSON result is returned),
    built once per run whatever the worker, then sealed to be cloned."""

    def build():
        drop_database(cluster, name)             # left over from a build that failed
        clone_database(cluster, source, name)
        result = fill(cluster.url(name))
        seal_template(cluster, name)
        return {"result": result}

    return built_once(cluster.run_dir, name, build)["result"]


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
    """(database, codes): the tiny hierarchy of tests/factories.py, built once per run."""

    def fill(url):
        from tests.factories import make_tiny_gansu

        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as c:
            return make_tiny_gansu(c)

    return "gw_tiny", shared_template(cluster, "gw_tiny", TEMPLATE, fill)


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
    """Name of a database holding the whole Gansu demo hierarchy, loaded once per run (clone it)."""

    def fill(url):
        from etl.gansu import load_gansu

        with psycopg.connect(url) as conn:
            load_gansu(conn, progress=False)

    shared_template(cluster, "gw_gansu", TEMPLATE, fill)
    return "gw_gansu"


@pytest.fixture(scope="session")
def gansu_url(cluster, gansu_template):
    """URL of the run's read-only Gansu database (a copy of the template that tests may connect to;
    writes are refused). Use ``gansu_copy_url`` to write."""

    def build():
        drop_database(cluster, "gw_gansu_read")
        clone_database(cluster, gansu_template, "gw_gansu_read")
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
            conn.execute("ALTER DATABASE gw_gansu_read SET default_transaction_read_only = on")
        return {}

    built_once(cluster.run_dir, "gw_gansu_read", build)
    return cluster.url("gw_gansu_read")


@pytest.fixture
def gansu_copy_url(cluster, gansu_template):
    """URL of a private copy of the Gansu database that a test may change."""
    name = clone_database(cluster, gansu_template)
    yield cluster.url(name)
    drop_database(cluster, name)


@pytest.fixture(scope="session")
def gansu_demo_template(cluster, gansu_template):
    """(database, stats): Gansu with a demo history of 20,000 cases over two months and a week of
    check-ins, the provincial statistics loaded and the alert rules run; built once per run for the
    tests that need "Gansu and some cases" (``stats``: what load_demo returned, the stories included)."""

    def fill(url):
        from etl.demo import load_demo
        from etl.stats import load_stats
        from gridwatch.alerts import run_rules

        with psycopg.connect(url, row_factory=dict_row) as conn:
            stats = load_demo(conn, n_cases=20_000, months=2, checkin_days=7)
            load_stats(conn)
            run_rules(conn)
        return json.loads(json.dumps(stats, default=str))

    return "gw_gansu_demo", shared_template(cluster, "gw_gansu_demo", gansu_template, fill)


@pytest.fixture
def gansu_demo_copy_url(cluster, gansu_demo_template):
    """URL of a private copy of ``gansu_demo_template`` that a test may change."""
    name = clone_database(cluster, gansu_demo_template[0])
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
