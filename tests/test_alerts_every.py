"""`gridwatch alerts run --every S` keeps raising alerts as new data arrives."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
from psycopg.rows import dict_row

from tests.conftest import ROOT, wait_until
from tests.factories import make_case


def test_alerts_run_every_few_seconds_raises_an_alert_for_a_red_case_reported_after_it_started(db_url, tiny):
    env = {**os.environ, "DATABASE_URL": db_url}
    proc = subprocess.Popen([sys.executable, "-m", "gridwatch.cli", "alerts", "run", "--every", "5", "--rule", "red"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    try:
        with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
            def red_alerts():
                return conn.execute("SELECT count(*) AS n FROM alert WHERE rule = 'red_case'").fetchone()["n"]

            first_round = proc.stdout.readline()  # printed after the first round (EOF if the runner died)
            assert first_round.startswith("alerts: 0 raised"), first_round
            assert red_alerts() == 0
            make_case(conn, grade="red", title="红色测试案件")
            wait_until(lambda: red_alerts() == 1, timeout=30, message="a red_case alert raised by the next round")
            assert proc.poll() is None, "the runner stopped instead of repeating"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
