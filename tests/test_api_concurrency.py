"""Many clients post at once, with retries and dropped connections; every acknowledged case exists exactly once."""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
from urllib.parse import urlparse

import pytest

from tests.conftest import AUTH
from tests.apiserver import ApiWorld

CLIENTS = 8
CASES_PER_CLIENT = 25


@pytest.fixture(scope="module")
def world(cluster):
    w = ApiWorld(cluster, process=True)   # a server process of its own: clients drop connections on it
    yield w
    w.close()


def _request_bytes(host: str, port: int, body: bytes) -> bytes:
    head = (f"POST /api/v1/cases HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Authorization: {AUTH['Authorization']}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    return head + body


def test_concurrent_clients_with_retries_and_dropped_connections_get_each_case_exactly_once(world):
    url = urlparse(world.url)
    host, port = url.hostname, url.port
    acks: dict[str, set[int]] = {}
    drops = {"after_send": 0, "mid_body": 0, "retries": 0}
    lock = threading.Lock()
    errors: list[str] = []

    def client(k: int):
        rng = random.Random(k)
        for n in range(CASES_PER_CLIENT):
            crid = f"c{k}-{n}"
            body = json.dumps({"category": rng.choice(["neighbour", "labour", "street_order"]),
                               "lon": 102.0 + rng.random() * 1.99, "lat": 35.01 + rng.random() * 3.98,
                               "client_request_id": crid, "channel": "grid_worker"}).encode()
            acked = False
            attempts = 0
            while not acked and attempts < 20:
                attempts += 1
                roll = rng.random()
                if roll < 0.25:          # the whole request goes out, the client vanishes before the answer
                    with socket.create_connection((host, port), timeout=10) as s:
                        s.sendall(_request_bytes(host, port, body))
                    with lock:
                        drops["after_send"] += 1
                    continue
                if roll < 0.35:          # the connection drops halfway through the body
                    with socket.create_connection((host, port), timeout=10) as s:
                        raw = _request_bytes(host, port, body)
                        s.sendall(raw[: len(raw) - len(body) // 2])
                    with lock:
                        drops["mid_body"] += 1
                    continue
                conn = http.client.HTTPConnection(host, port, timeout=30)
                try:
                    conn.request("POST", "/api/v1/cases", body=body, headers={"Content-Type": "application/json", **AUTH})
                    resp = conn.getresponse()
                    data = json.loads(resp.read())
                    if resp.status in (200, 201):
                        with lock:
                            acks.setdefault(crid, set()).add(data["id"])
                        acked = rng.random() > 0.2     # sometimes retry anyway, as if the ack were lost
                        if not acked:
                            with lock:
                                drops["retries"] += 1
                    else:
                        with lock:
                            errors.append(f"{resp.status} {data}")
                        return
                finally:
                    conn.close()
            if not acked:
                with lock:
                    errors.append(f"{crid} never acknowledged")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a client thread hung"
    assert not errors, errors[:5]
    assert drops["after_send"] > 10 and drops["mid_body"] > 5 and drops["retries"] > 5, drops

    with world.connect() as conn:
        rows = conn.execute("SELECT client_request_id, count(*) AS n, min(id) AS id FROM cases "
                            "WHERE client_request_id LIKE 'c%%-%%' GROUP BY client_request_id").fetchall()
        events = conn.execute("SELECT count(*) AS n FROM case_event e JOIN cases c ON c.id = e.case_id "
                              "WHERE c.client_request_id LIKE 'c%%-%%' AND e.action = 'report'").fetchone()["n"]
    in_db = {r["client_request_id"]: r for r in rows}
    assert len(acks) == CLIENTS * CASES_PER_CLIENT
    for crid, ids in acks.items():
        assert len(ids) == 1, f"{crid} was acknowledged with different ids {ids}"
        assert crid in in_db and in_db[crid]["n"] == 1 and in_db[crid]["id"] in ids
    assert set(in_db) == set(acks), "a case exists that no client was told about, or the other way round"
    assert events == len(in_db)
