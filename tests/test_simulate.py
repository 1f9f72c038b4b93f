"""`gridwatch simulate` sends real HTTP traffic to a real server: cases, lifecycles, check-ins — all legal."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gridwatch.simulate import DAY_W, HOUR_W, rhythm
from tests.apiserver import ApiWorld
from tests.conftest import ROOT, TEST_TOKEN, free_port
from tests.test_demo import replay_errors


@pytest.fixture(scope="module")
def world(cluster):
    w = ApiWorld(cluster, process=True)   # ten concurrent clients: a server process of its own, as in use
    yield w
    w.close()


def test_the_rhythm_averages_to_one_and_peaks_on_weekday_mornings():
    week = [rhythm(h * 3600.0) for h in range(7 * 24)]
    assert sum(week) / len(week) == pytest.approx(1.0)
    assert max(week) == rhythm(10 * 3600.0) and HOUR_W[10] == max(HOUR_W)
    assert rhythm(6 * 86400 + 10 * 3600.0) == pytest.approx(rhythm(10 * 3600.0) * DAY_W[6])
    assert rhythm(3 * 3600.0) < 0.1 * rhythm(10 * 3600.0)


def test_the_simulator_sends_cases_moves_them_through_legal_lifecycles_and_checks_in(world):
    proc = subprocess.run(
        [sys.executable, "-m", "gridwatch.cli", "simulate", "--api", world.url, "--rate", "25", "--duration", "12",
         "--speed", "40000", "--workers", "10", "--seed", "7", "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "GRIDWATCH_SIM_TOKEN": TEST_TOKEN})     # acts as the test suite's operator (issue 11)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout.strip().splitlines()[-1].split("gridwatch simulate: ", 1)[1])
    assert stats["errors"] == 0 and stats["acknowledged"] >= 100, stats
    with world.connect() as conn:
        n = conn.execute("SELECT count(*) AS n FROM cases").fetchone()["n"]
        channels = {r["channel"] for r in conn.execute("SELECT DISTINCT channel FROM cases")}
        coord = {r["coord_system"] for r in conn.execute("SELECT DISTINCT coord_system FROM cases")}
        actions = {r["action"]: r["n"] for r in conn.execute("SELECT action, count(*) AS n FROM case_event GROUP BY action")}
        checkins = conn.execute("SELECT count(DISTINCT grid_code) AS n FROM checkin").fetchone()["n"]
        problems = replay_errors(conn)
        outside = conn.execute("SELECT count(*) AS n FROM cases WHERE grid_code IS NULL").fetchone()["n"]
    retried_posts = stats["posted"] - stats["acknowledged"] + stats["retries"]
    assert n <= stats["acknowledged"] and n >= stats["acknowledged"] - retried_posts - 5
    assert {"open311", "simulator", "grid_worker"} <= channels and coord == {"wgs84", "gcj02"}
    assert actions["report"] == n
    for action in ("accept", "dispatch", "start", "feedback", "verify"):
        assert actions.get(action, 0) > 0, (action, actions)
    assert problems == []
    assert outside == 0
    assert 1 <= checkins <= 10


def test_simulate_with_wait_gives_up_clearly_when_no_server_answers():
    port = free_port()
    proc = subprocess.run([sys.executable, "-m", "gridwatch.cli", "simulate", "--api", f"http://127.0.0.1:{port}",
                           "--wait", "--wait-timeout", "2", "--duration", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert f"http://127.0.0.1:{port}/healthz did not answer 200 within 2 s" in proc.stderr
