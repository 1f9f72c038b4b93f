"""API fuzz against the OpenAPI spec (issue 11): at least 10,000 generated requests, no 5xx, no partial writes.

Schemathesis generates each operation's requests (valid ones, and invalid ones where the schema
leaves something to break) from the app's own /openapi.json, so a new route is fuzzed without
editing this file. Every request carries the test operator's token and goes through the real ASGI
app (tests/fuzzing.py says why not the in-process HTTP server). Every response is checked for 5xx;
every refused write (4xx) for nothing written: the row counts of every table the server's role may
add rows to or delete from are compared around it.

The operations are split into SHARDS stable shards, one test each, so xdist workers run them side
by side; each worker's shards share one database (ApiWorld), used by one request at a time, so the
counts around a request see only that request. Each shard sends at least its share of TOTAL and
prints its count; the shares add up to at least TOTAL.
"""

from __future__ import annotations

import math
import os

import pytest

from tests.apiserver import ApiWorld
from tests.conftest import AUTH
from tests.fuzzing import Fuzzer, key_of, partition

TOTAL = int(os.environ.get("GRIDWATCH_FUZZ_TOTAL", "10000"))   # lowered only to measure while tuning
SHARDS = 12
SHARE = math.ceil(TOTAL / SHARDS)


@pytest.fixture(scope="module")
def fuzzer(cluster):
    world = ApiWorld(cluster, env={"GRIDWATCH_HEAVY_PER_MINUTE": "1000000", "GRIDWATCH_HEAVY_BURST": "1000000",
                                   "GRIDWATCH_HEAVY_QUEUE": "100"})
    try:
        fuzzer = Fuzzer(world)
        try:
            yield fuzzer
        finally:
            fuzzer.close()
    finally:
        world.close()


def test_the_shards_add_up_to_ten_thousand_requests_over_every_operation_of_the_spec_once(fuzzer):
    assert SHARDS * SHARE >= TOTAL >= (10000 if "GRIDWATCH_FUZZ_TOTAL" not in os.environ else 1)
    assert len(fuzzer.operations) >= 40, len(fuzzer.operations)
    shards = partition(fuzzer.operations, SHARDS)
    dealt = [key_of(op) for shard in shards for op in shard]
    assert sorted(dealt) == sorted(key_of(op) for op in fuzzer.operations)
    assert len(set(dealt)) == len(dealt)
    assert all(shards), [len(s) for s in shards]
    assert partition(list(reversed(fuzzer.operations)), SHARDS) == shards     # the split does not depend on order


@pytest.mark.parametrize("shard", range(SHARDS), ids=lambda i: f"shard{i + 1}of{SHARDS}")
def test_generated_requests_with_a_valid_token_never_get_a_5xx_and_refused_writes_write_nothing(fuzzer, shard):
    operations = partition(fuzzer.operations, SHARDS)[shard]
    result = fuzzer.run_shard(operations, SHARE)
    rate = result.sent / result.seconds if result.seconds else 0.0
    print(f"\nfuzz shard {shard + 1}/{SHARDS}: {result.sent} requests (share {SHARE}) over {len(operations)} operations "
          f"in {result.seconds:.1f} s ({rate:.0f}/s); {result.refused_writes_checked} refused writes checked for partial "
          f"writes over {len(fuzzer.tables)} tables; {result.unsendable} cases not sendable; statuses {dict(sorted(result.statuses.items()))}")
    for seconds, n, key in sorted(result.timings, reverse=True)[:5]:
        print(f"  {seconds:6.1f} s  {n:5d}  {key}")
    assert not result.failures, "\n\n".join(" | ".join(str(part)[:1500] for part in f) for f in result.failures[:5])
    assert all(result.by_operation.values()), {k: n for k, n in result.by_operation.items() if not n}
    assert result.sent >= SHARE, (result.sent, SHARE, result.by_operation)


def test_a_phone_report_with_a_client_request_id_too_long_to_store_is_refused_with_422_not_500(fuzzer):
    # found by this fuzz: the id is stored as "m:{user}:{id}" in a column of 100, so 97-100 characters gave a 500
    before = fuzzer.counts()
    for kind in ("case", "hazard"):
        response = fuzzer._send("POST", "/api/v1/m/reports", headers=AUTH, json={
            "kind": kind, "category": "neighbour", "hazard_kind": "power_line", "lon": 100.45, "lat": 38.93,
            "client_request_id": "x" * 98})
        assert response.status_code == 422, (kind, response.status_code, response.text[:300])
        assert response.json()["error"]["field"] == "client_request_id", response.text[:300]
    assert fuzzer.counts() == before
