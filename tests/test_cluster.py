"""The embedded PostgreSQL cluster: start, reuse, stop, stale pid files, taken ports, wrong versions."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import psycopg
import pytest

from gridwatch.cluster import Cluster, ClusterError, ensure_postgis, postgis_missing_message
from tests.conftest import free_port


@pytest.fixture
def cluster_dir():
    root = Path(tempfile.mkdtemp(prefix="gw-cluster-", dir="/tmp"))
    os.chmod(root, 0o755)
    yield root
    c = Cluster(root, 1)
    if c.initialized():
        try:
            c.stop()
        except ClusterError:
            pass
    shutil.rmtree(root, ignore_errors=True)


def test_a_new_cluster_starts_with_postgis_and_a_second_start_reuses_it(cluster_dir):
    c = Cluster(cluster_dir, free_port(), fast=True)
    assert c.start() == "started"
    with psycopg.connect(c.url()) as conn:
        version = conn.execute("SELECT postgis_lib_version()").fetchone()[0]
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    assert version.startswith("3.")
    assert pid > 0
    assert c.start() == "reused"
    assert c.status()["running"] is True
    assert c.stop() == "stopped"
    assert c.status()["running"] is False
    assert c.stop() == "not running"


def test_a_stale_pid_file_left_by_a_crash_is_recovered(cluster_dir):
    c = Cluster(cluster_dir, free_port(), fast=True)
    c.start()
    c.stop()
    # A crash leaves postmaster.pid behind naming a pid that is alive but not PostgreSQL (ours).
    pidfile = c.pgdata / "postmaster.pid"
    pidfile.write_text(f"{os.getpid()}\n{c.pgdata}\n")
    if c.run_as:
        shutil.chown(pidfile, c.run_as)
    assert c.start() == "started after removing a stale pid file"
    with psycopg.connect(c.url()) as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1


def test_a_taken_port_is_refused_with_a_message_naming_it_and_the_fix(cluster_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        c = Cluster(cluster_dir, port, fast=True)
        with pytest.raises(ClusterError) as err:
            c.start()
    message = str(err.value)
    assert f"Port {port}" in message and "GRIDWATCH_PG_PORT" in message
    assert not c.running()


def test_a_data_folder_from_another_postgresql_version_is_left_untouched(cluster_dir):
    c = Cluster(cluster_dir, free_port())
    c.pgdata.mkdir(parents=True)
    (c.pgdata / "PG_VERSION").write_text("9\n")
    (c.pgdata / "base").mkdir()
    with pytest.raises(ClusterError) as err:
        c.start()
    assert "PostgreSQL 9 cluster" in str(err.value)
    assert (c.pgdata / "PG_VERSION").read_text() == "9\n"
    assert sorted(p.name for p in c.pgdata.iterdir()) == ["PG_VERSION", "base"]


def test_a_user_without_rights_to_create_postgis_is_told_to_ask_the_owner(cluster, db_url):
    role = "gw_limited"
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS gw_limited")
        conn.execute("CREATE ROLE gw_limited LOGIN")
        conn.execute("CREATE DATABASE gw_limited_db OWNER gridwatch")
    try:
        url = f"postgresql://{role}@127.0.0.1:{cluster.port}/gw_limited_db"
        with pytest.raises(ClusterError) as err:
            ensure_postgis(url)
        assert "CREATE EXTENSION postgis" in str(err.value)
    finally:
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
            conn.execute("DROP DATABASE gw_limited_db WITH (FORCE)")
            conn.execute("DROP ROLE gw_limited")


def test_the_message_for_a_server_without_postgis_names_the_package_for_its_version():
    message = postgis_missing_message("postgresql://u:secret@db.example:5432/x", "14.9")
    assert "apt-get install postgresql-14-postgis-3" in message
    assert "secret" not in message
