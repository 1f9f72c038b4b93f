"""Faults survived, each against the real thing: the server process killed (SIGKILL) in the middle of
batches while a client retries; PostgreSQL restarted under load with a wall open in Chromium; the
disk nearly full (a tablespace on a small tmpfs)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from gridwatch.cluster import free_port
from tests.conftest import ROOT, GiveUp, ensure_test_identity, wait_until

CLIENT_TIMEOUT = 15.0   # seconds: no request may take longer than this, whatever happens to the server or the database


def _request(method: str, url: str, body: dict | None = None, timeout: float = CLIENT_TIMEOUT) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def _category(db_url: str) -> str:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT code FROM category ORDER BY code LIMIT 1").fetchone()[0]


def _start_server(db_url: str, port: int, log: Path) -> subprocess.Popen:
    ensure_test_identity(db_url)   # the test operator whose token this process's requests carry (tests/conftest.py)
    env = {**os.environ, "DATABASE_URL": db_url, "GRIDWATCH_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "gridwatch.cli", "serve", "--port", str(port)],
                            stdout=log.open("a"), stderr=subprocess.STDOUT, env=env, cwd=ROOT)

    def healthy():
        if proc.poll() is not None:
            raise GiveUp(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        return _request("GET", f"http://127.0.0.1:{port}/healthz", timeout=2)[0] == 200

    wait_until(healthy, timeout=60, interval=0.1, message=f"the server on {port}")
    return proc


def _batch(category: str, k: int, n: int) -> dict:
    # points inside the tiny hierarchy's province (box 100–104 E, 35–39 N)
    return {"cases": [{"category": category, "lon": 100.1 + (j % 37) * 0.1, "lat": 35.1 + (j % 29) * 0.12,
                       "title": f"批次{k}案件{j}", "client_request_id": f"kill-{k}-{j}"} for j in range(n)]}


def test_a_server_killed_in_the_middle_of_batches_leaves_every_acknowledged_case_exactly_once(db_url, tiny, tmp_path):
    category = _category(db_url)
    port = free_port()
    log = tmp_path / "server.log"
    server = _start_server(db_url, port, log)
    batches, size = 24, 150
    acknowledged: dict[int, list[str]] = {}
    failures: list[str] = []
    in_flight = threading.Event()
    done = threading.Event()

    def client():
        for k in range(batches):
            body = _batch(category, k, size)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                in_flight.set()
                try:
                    status, answer = _request("POST", f"http://127.0.0.1:{port}/api/v1/cases/batch", body)
                except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
                    failures.append(type(exc).__name__)
                    time.sleep(0.1)
                    continue
                finally:
                    in_flight.clear()
                if status in (200, 201):
                    acknowledged[k] = [c["client_request_id"] for c in answer["cases"]]
                    break
                failures.append(f"HTTP {status}")
                time.sleep(0.1)
        done.set()

    worker = threading.Thread(target=client, daemon=True)
    worker.start()
    kills = 0
    try:
        while not done.is_set() and kills < 4:
            wait_until(lambda: len(acknowledged) >= 3 * (kills + 1) or done.is_set(), timeout=120,
                       message="batches acknowledged between kills")
            if done.is_set():
                break
            wait_until(in_flight.is_set, timeout=30, message="a batch in flight")
            time.sleep(0.02 * (kills + 1))   # somewhere inside the request: parsing, stamping, inserting or committing
            server.send_signal(signal.SIGKILL)
            server.wait(10)
            kills += 1
            server = _start_server(db_url, port, log)
        worker.join(300)
        assert done.is_set(), "the client did not finish"
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(10)
    assert kills == 4 and failures, "the kills must have hit requests in flight"
    assert sorted(acknowledged) == list(range(batches))
    with psycopg.connect(db_url) as conn:
        rows = dict(conn.execute("SELECT client_request_id, count(*) FROM cases WHERE client_request_id LIKE 'kill-%%' "
                                 "GROUP BY 1").fetchall())
        events = conn.execute("SELECT count(*) FROM case_event e JOIN cases c ON c.id = e.case_id "
                              "WHERE c.client_request_id LIKE 'kill-%%' AND e.action = 'report'").fetchone()[0]
    wanted = {crid for ids in acknowledged.values() for crid in ids}
    assert len(wanted) == batches * size
    assert set(rows) == wanted, "every acknowledged case exists, and nothing else was written"
    assert set(rows.values()) == {1}, "each exactly once"
    assert events == batches * size, "one report event per case: no retry wrote a second trail"


def test_postgresql_restarted_under_load_the_server_reconnects_and_the_wall_recovers_without_a_reload(
        own_cluster, serve, browser_page):
    cluster, db_url = own_cluster, own_cluster.url()    # a cluster of its own: the run's is shared by other tests
    category = _category(db_url)
    server = serve(db_url, env={"GRIDWATCH_STALE_SECONDS": "3"})
    page = browser_page
    page.set_viewport_size({"width": 1920, "height": 1080})
    status, _ = _request("POST", server.url + "/api/v1/cases", {"category": category, "lon": 101.0, "lat": 36.2,
                                                                 "title": "重启前", "client_request_id": "restart-0"})
    assert status == 201
    page.goto(server.url + "/wall?tour=600")
    opened = page.locator("#wall-province #wall-n-open .v")
    wait_until(lambda: opened.inner_text() == "1", timeout=30, message="the wall's open count")
    page.evaluate("window.__sameDocument = 'yes'")   # gone if the page reloads

    latencies: list[float] = []
    errors: list[str] = []
    stop = threading.Event()

    def load(n: int):
        k = 0
        while not stop.is_set():
            k += 1
            started = time.monotonic()
            try:
                if k % 3 == 0:
                    _request("POST", server.url + "/api/v1/cases", {"category": category, "lon": 102.5, "lat": 37.5,
                                                                     "title": "负载", "client_request_id": f"load-{n}-{k}"})
                else:
                    _request("GET", server.url + ("/api/v1/regions/62" if k % 3 == 1 else "/healthz"))
            except (TimeoutError, urllib.error.URLError, OSError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            latencies.append(time.monotonic() - started)

    threads = [threading.Thread(target=load, args=(n,), daemon=True) for n in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(latencies) > 20, timeout=30, message="load running")
        cluster.stop()
        wait_until(lambda: _request("GET", server.url + "/healthz", timeout=CLIENT_TIMEOUT)[0] == 503, timeout=30,
                   message="/healthz to report the database down")
        time.sleep(2)   # the database stays down a while, under load
        cluster.start()
        wait_until(lambda: _request("GET", server.url + "/healthz")[0] == 200, timeout=60, message="/healthz ok again")
        status, _ = _request("POST", server.url + "/api/v1/cases", {"category": category, "lon": 101.0, "lat": 36.2,
                                                                     "title": "重启后", "client_request_id": "restart-1"})
        assert status == 201
        wait_until(lambda: len(latencies) > 40, timeout=30, message="load after the restart")
    finally:
        stop.set()
        for t in threads:
            t.join(CLIENT_TIMEOUT + 5)
    assert not errors, f"requests failed at the client (hung beyond {CLIENT_TIMEOUT} s or dropped): {errors[:5]}"
    assert max(latencies) < CLIENT_TIMEOUT
    # the wall shows every case, the one posted after the restart included, without a reload
    with psycopg.connect(db_url) as conn:
        expected = conn.execute("SELECT count(*) FROM cases").fetchone()[0]
    wait_until(lambda: int(opened.inner_text().replace(",", "")) == expected, timeout=60,
               message=f"the wall to show all {expected} open cases")
    assert page.evaluate("window.__sameDocument") == "yes", "the wall recovered without a reload"
    wait_until(lambda: page.locator(".fresh.stale").count() == 0, timeout=30, message="every freshness badge green again")


@pytest.fixture
def small_disk(own_cluster):
    """A tablespace on a 48 MB tmpfs, and a database (the tiny hierarchy) living in it.

    In a cluster of its own: while the tmpfs is full, every checkpoint of the cluster fails (it cannot
    write that database's dirty pages), and in the run's shared cluster that failed other workers'
    DROP DATABASE, which waits for a checkpoint."""
    cluster = own_cluster
    mount = Path(tempfile.mkdtemp(prefix="gw-smalldisk-", dir="/tmp"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0755", "tmpfs", str(mount)], check=True)
    space = mount / "ts"
    space.mkdir()
    shutil.chown(space, "postgres", "postgres")
    name = "t_disk"
    try:
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE TABLESPACE gw_small LOCATION {}").format(sql.Literal(str(space))))
            admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE gridwatch TABLESPACE gw_small").format(sql.Identifier(name)))
        yield cluster.url(name), mount
    finally:
        (mount / "filler").unlink(missing_ok=True)   # the shutdown checkpoint needs room, whatever the test left
        try:
            cluster.stop()    # before the unmount: nothing of the cluster may still hold the tmpfs
        finally:
            subprocess.run(["umount", "-l", str(mount)], check=False)
            shutil.rmtree(mount, ignore_errors=True)


def test_with_the_disk_nearly_full_writes_are_refused_with_a_clear_error_and_nothing_half_written(small_disk, serve):
    url, mount = small_disk
    category = _category(url)
    server = serve(url)
    ok, body = _request("POST", server.url + "/api/v1/cases/batch", _batch(category, 0, 50))
    assert ok == 201, body
    # fill the disk: leave about 256 kB free
    free = shutil.disk_usage(mount).free
    filler = mount / "filler"
    with filler.open("wb") as f:
        f.truncate(0)
        remaining = free - 256 * 1024
        chunk = b"\0" * (1 << 20)
        while remaining > 0:
            f.write(chunk[: min(len(chunk), remaining)])
            remaining -= len(chunk)
    assert shutil.disk_usage(mount).free < 1 << 20
    with psycopg.connect(url) as conn:
        before = conn.execute("SELECT count(*) FROM cases").fetchone()[0]
    refused = None
    for k in range(1, 30):   # batches until the disk runs out
        status, answer = _request("POST", server.url + "/api/v1/cases/batch", _batch(category, k, 2000))
        if status != 201:
            refused = (k, status, answer)
            break
    assert refused is not None, "the disk never filled"
    k, status, answer = refused
    assert status == 507, answer
    error = answer["error"]
    assert error["code"] == "disk_full"
    assert "disk" in error["message"] and "nothing was written" in error["message"].lower()
    assert error["message_zh"] and error["fix"]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM cases WHERE client_request_id LIKE %s", (f"kill-{k}-%",)).fetchone()[0] == 0
        after = conn.execute("SELECT count(*) FROM cases").fetchone()[0]
        assert after == before + 2000 * (k - 1)
        orphans = conn.execute("SELECT count(*) FROM case_event e LEFT JOIN cases c ON c.id = e.case_id "
                               "WHERE c.id IS NULL").fetchone()[0]
        assert orphans == 0
    # reads still work, and once space is freed the same batch goes through
    assert _request("GET", server.url + "/api/v1/regions/62")[0] == 200
    filler.unlink()
    status, answer = _request("POST", server.url + "/api/v1/cases/batch", _batch(category, k, 2000))
    assert status == 201 and answer["created"] == 2000
