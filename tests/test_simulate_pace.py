"""The simulator's default pace follows the history: as many new cases a day as the last 30 days
had on average, in real time — not a case a second (which made 'today' ten days' worth)."""

from __future__ import annotations

import argparse
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from gridwatch import simulate
from tests.conftest import TEST_TOKEN
from tests.factories import make_case


def test_the_default_pace_is_real_time_at_the_historys_daily_volume(serve, db_url, conn, tiny):
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    for d in range(1, 30):                      # 29 whole past days, 6 new cases each
        noon = datetime.combine(today - timedelta(days=d), time(12), ZoneInfo("Asia/Shanghai"))
        for i in range(6):
            make_case(conn, lon=101.0 + 0.1 * i, lat=38.0, reported_at=noon)
    server = serve(db_url)
    assert simulate.history_rate(server.url, TEST_TOKEN) * 86400 == pytest.approx(6.0)
    p = argparse.ArgumentParser()
    simulate.add_arguments(p)
    args = p.parse_args([])
    assert args.rate == "auto" and args.speed == 1.0
    assert p.parse_args(["--rate", "0.5"]).rate == 0.5


def test_without_history_the_pace_is_the_demos_daily_volume_and_a_bad_rate_is_refused(serve, db_url, tiny):
    server = serve(db_url)
    assert simulate.history_rate(server.url, TEST_TOKEN) * 86400 == pytest.approx(simulate.DEFAULT_CASES_PER_DAY)
    p = argparse.ArgumentParser()
    simulate.add_arguments(p)
    with pytest.raises(SystemExit):
        p.parse_args(["--rate", "fast"])
