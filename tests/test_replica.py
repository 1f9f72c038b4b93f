"""A streaming hot-standby replica for reads (gridwatch/replica.py): walls read from it, a user reads
their own writes from the primary, a pushed change is never painted from a replica that lags, and
`gridwatch db replica start|status|stop` sets one up beside the embedded cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from gridwatch.cluster import free_port
from gridwatch.replica import ReplicaCluster
from tests.conftest import ROOT, wait_until

OPEN = "#wall-province #wall-n-open .v"


@pytest.fixture
def db_url(own_cluster):
    """This module's database (the tiny hierarchy) lives on a cluster of its own: a standby of the
    run's shared cluster replays every xdist worker's writes (demo loads, database clones) and lagged
    seconds behind under a parallel run, so the server rightly read from the primary instead."""
    return own_cluster.url()


@pytest.fixture
def conn(db_url):
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as c:
        yield c


@pytest.fixture
def replica(own_cluster):
    """A hot standby of this test's own cluster, made after its database and hierarchy exist."""
    root = Path(tempfile.mkdtemp(prefix="gw-replica-", dir="/tmp"))
    os.chmod(root, 0o755)
    standby = ReplicaCluster(root, free_port(), fast=True).attach(own_cluster)
    standby.start()
    yield standby
    standby.stop()
    shutil.rmtree(root, ignore_errors=True)


def _replica_url(replica, db_url):
    return replica.url(db_url.rsplit("/", 1)[1])


def _reads(server):
    return httpx.get(server.url + "/healthz", timeout=10).json()["worker"]["reads"]


def test_a_case_written_on_the_primary_appears_on_a_wall_that_reads_from_the_replica(serve, db_url, conn, replica,
                                                                                    browser_page):
    from tests.factories import make_case

    read_url = _replica_url(replica, db_url)
    with psycopg.connect(read_url) as standby:
        assert standby.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            standby.execute("INSERT INTO data_version (name) VALUES ('nope')")
    server = serve(db_url, env={"GRIDWATCH_READ_URL": read_url})
    health = httpx.get(server.url + "/healthz", timeout=10).json()
    assert health["worker"]["replica"] is True and health["database"]["replica"] is False   # writes: the primary
    page = browser_page
    page.goto(server.url + "/wall")
    wait_until(lambda: page.locator(OPEN).inner_text() == "0", timeout=40, message="the wall with no open case")
    before = _reads(server)
    make_case(conn, lon=101.0, lat=37.0)               # written on the primary, straight into the database
    wait_until(lambda: page.locator(OPEN).inner_text() == "1", timeout=15, message="the primary's case on the wall")
    after = _reads(server)
    assert after["replica"] > before["replica"], (before, after)
    assert after["fallback"] == before["fallback"]   # the replica had replayed it: read there

    # A replica that stops replaying: the pushed change is still shown (read from the primary after a short wait).
    with psycopg.connect(_replica_url(replica, db_url), autocommit=True) as standby:
        standby.execute("SELECT pg_wal_replay_pause()")
        try:
            make_case(conn, lon=101.1, lat=37.1)
            wait_until(lambda: page.locator(OPEN).inner_text() == "2", timeout=15,
                       message="the second case on the wall although the replica paused")
            assert _reads(server)["fallback"] > after["fallback"]
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")


def test_a_user_reads_their_own_write_from_the_primary_while_others_read_the_replica(serve, db_url, replica):
    read_url = _replica_url(replica, db_url)
    server = serve(db_url, env={"GRIDWATCH_READ_URL": read_url, "GRIDWATCH_FRESH_WRITE_SECONDS": "30"})
    with psycopg.connect(read_url, autocommit=True) as standby:
        standby.execute("SELECT pg_wal_replay_pause()")
        try:
            with httpx.Client(base_url=server.url, timeout=30) as writer, httpx.Client(base_url=server.url, timeout=30) as other:
                assert other.get("/api/v1/regions/620102").json()["kpis"]["open"] == 0
                r = writer.post("/api/v1/cases", json={"category": "neighbour", "lon": 101.0, "lat": 37.0})
                assert r.status_code == 201, r.text
                assert "gw_wrote" in r.headers.get("set-cookie", "")
                assert writer.get("/api/v1/regions/620102").json()["kpis"]["open"] == 1     # own write: the primary
                assert other.get("/api/v1/regions/620102").json()["kpis"]["open"] == 0      # the paused replica
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")
    wait_until(lambda: httpx.get(server.url + "/api/v1/regions/620102", timeout=10).json()["kpis"]["open"] == 1,
               timeout=15, message="the replica to catch up once replaying again")


def _gw(env, *args):
    return subprocess.run([sys.executable, "-m", "gridwatch.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_gridwatch_db_replica_start_status_stop_runs_a_hot_standby_beside_the_embedded_cluster():
    data = Path(tempfile.mkdtemp(prefix="gw-embedded-", dir="/tmp"))
    os.chmod(data, 0o755)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(GRIDWATCH_DATA_DIR=str(data), GRIDWATCH_PG_PORT=str(free_port()), GRIDWATCH_REPLICA_PORT=str(free_port()))
    try:
        assert _gw(env, "db", "start").returncode == 0
        started = _gw(env, "db", "replica", "start")
        assert started.returncode == 0, started.stdout + started.stderr
        assert "GRIDWATCH_READ_URL=postgresql://" in started.stdout
        primary = f"postgresql://gridwatch@127.0.0.1:{env['GRIDWATCH_PG_PORT']}/gridwatch"
        standby = f"postgresql://gridwatch@127.0.0.1:{env['GRIDWATCH_REPLICA_PORT']}/gridwatch"
        with psycopg.connect(primary, autocommit=True) as p:
            p.execute("CREATE TABLE replica_probe (n int)")
            p.execute("INSERT INTO replica_probe VALUES (42)")

        def replicated():
            with psycopg.connect(standby) as s:
                return s.execute("SELECT n FROM replica_probe").fetchone() == (42,)

        wait_until(replicated, timeout=20, message="the row on the standby")
        status = _gw(env, "db", "replica", "status")
        assert status.returncode == 0 and "replica running" in status.stdout, status.stdout
        assert _gw(env, "db", "replica", "stop").returncode == 0
        assert _gw(env, "db", "replica", "status").returncode == 3
    finally:
        _gw(env, "db", "replica", "stop")
        _gw(env, "db", "stop")
        shutil.rmtree(data, ignore_errors=True)
