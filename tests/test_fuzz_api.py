"""API fuzz against the OpenAPI spec (issue 11): at least 10,000 generated requests, no 5xx, no partial writes.

Schemathesis generates each operation's requests (valid and invalid: positive and negative
modes) from the app's own /openapi.json, so a new route is fuzzed without editing this file. The
requests carry the test operator's token and go over real HTTP to the app served in this process.
Every refused write (4xx) is checked for nothing written: the row counts of the write tables are
compared around it. Heavy operations (coverage, sites, exports) get fewer examples, so the whole
run stays within a few minutes on two cores (the count and time are printed).
"""

from __future__ import annotations

import os
import time

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.apiserver import ApiWorld
from tests.conftest import AUTH

TOTAL = int(os.environ.get("GRIDWATCH_FUZZ_TOTAL", "10000"))   # lowered only to measure while tuning
HEAVY = ("/api/v1/coverage/", "/export/", "/sites", "/gaps", "/tiles/", "/api/v1/stats/", "/api/v1/kpi/", "children.geojson")
STREAMS = ("/api/v1/live",)
COUNTS_SQL = """SELECT (SELECT count(*) FROM cases) AS cases, (SELECT count(*) FROM case_event) AS case_event,
                       (SELECT count(*) FROM hazard) AS hazard, (SELECT count(*) FROM hazard_event) AS hazard_event,
                       (SELECT count(*) FROM checkin) AS checkin, (SELECT count(*) FROM centre) AS centre,
                       (SELECT count(*) FROM mediation) AS mediation, (SELECT count(*) FROM alert) AS alert"""


@pytest.fixture(scope="module")
def world(cluster):
    w = ApiWorld(cluster, env={"GRIDWATCH_HEAVY_PER_MINUTE": "1000000", "GRIDWATCH_HEAVY_BURST": "1000000",
                               "GRIDWATCH_HEAVY_QUEUE": "100"})
    yield w
    w.close()


def test_ten_thousand_generated_requests_across_all_endpoints_give_no_5xx_and_no_partial_writes(world):
    schema = schemathesis.openapi.from_url(world.url + "/openapi.json")
    # the live stream never ends by design (tests/test_live_stream.py covers its refusals and cap)
    operations = [op for op in (result.ok() for result in schema.get_all_operations()) if op.path not in STREAMS]
    assert len(operations) >= 40, len(operations)
    heavy = [op for op in operations if any(h in op.path for h in HEAVY)]
    light = [op for op in operations if op not in heavy]
    per_heavy = 25
    # operations with a small input space (no parameters, enums only) run out of distinct examples
    # early (measured: 8,603 of 10,000 at an even share), so the others get a quarter more
    per_light = -(-(TOTAL - per_heavy * len(heavy)) * 5 // (4 * len(light)))
    sent, failures, started = {"n": 0}, [], time.monotonic()
    owner = psycopg.connect(world.db_url, autocommit=True)
    client = httpx.Client(base_url=world.url, timeout=30, headers=AUTH)

    timings = []

    def run(op, examples: int) -> None:
        write = op.method.upper() not in ("GET", "HEAD", "OPTIONS")
        t0, n0 = time.monotonic(), sent["n"]

        @settings(max_examples=examples, deadline=None, database=None, derandomize=True, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def fuzz(case):
            kwargs = case.as_transport_kwargs(base_url=world.url)
            before = owner.execute(COUNTS_SQL).fetchone() if write else None
            kw = {k: v for k, v in kwargs.items() if k in ("params", "headers", "json", "data", "content", "cookies", "files")}
            if "json" in kw and kw["json"] is None:
                kw.pop("json")
            headers = {**{k: str(v) for k, v in (kw.pop("headers", None) or {}).items()}, **AUTH}
            if kw.get("files"):
                kw.pop("files")
            try:
                response = client.request(kwargs["method"], kwargs["url"].removeprefix(world.url), headers=headers, **kw)
            except (TypeError, ValueError, UnicodeEncodeError):
                return                                          # not sendable over HTTP at all
            sent["n"] += 1
            if response.status_code >= 500:
                failures.append((op.method.upper(), op.path, kwargs.get("url"), kw, response.status_code, response.text[:300]))
            elif write and response.status_code >= 400:
                after = owner.execute(COUNTS_SQL).fetchone()
                if after != before:
                    failures.append((op.method.upper(), op.path, "partial write", kw, response.status_code, (before, after)))

        fuzz()
        timings.append((time.monotonic() - t0, sent["n"] - n0, op.method.upper(), op.path))
        print(f"  {timings[-1][0]:6.1f} s  {timings[-1][1]:5d}  {op.method.upper()} {op.path}", flush=True)

    try:
        for op in light:
            run(op, per_light)
        for op in heavy:
            run(op, per_heavy)
    finally:
        client.close()
        owner.close()
    elapsed = time.monotonic() - started
    print(f"\nfuzz: {sent['n']} requests over {len(operations)} operations in {elapsed:.0f} s")
    for seconds, n, method, path in sorted(timings, reverse=True)[:12]:
        print(f"  {seconds:6.1f} s  {n:5d}  {method} {path}")
    assert not failures, failures[:10]
    assert sent["n"] >= TOTAL, sent
