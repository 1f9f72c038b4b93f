"""Several worker processes behind one port (gridwatch serve --workers N): a wall survives losing a
worker, Redis shares the tile cache between server processes, pgbouncer holds the database
connections down while each worker LISTENs on the primary directly."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg

from tests.conftest import wait_until
from tests.services import PgBouncer, redis_server, server_children  # noqa: F401  (fixture)

OPEN = "#wall-province #wall-n-open .v"


def _post_case(url: str, lon: float, ref: str) -> int:
    def attempt():
        r = httpx.post(url + "/api/v1/cases", json={"category": "neighbour", "lon": lon, "lat": 37.4, "client_request_id": ref},
                       timeout=30)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    return wait_until(attempt, timeout=20, interval=0.2, message="the case to be accepted")


def test_killing_either_of_two_workers_does_not_interrupt_an_open_wall(serve, db_url, tiny, browser_page):
    server = serve(db_url, env={"GRIDWATCH_WORKERS": "2"})
    wait_until(lambda: len(server_children(server.proc.pid)) == 2, timeout=60, message="two worker processes")
    page = browser_page
    page.goto(server.url + "/wall")
    wait_until(lambda: page.locator(OPEN).inner_text() == "0", timeout=40, message="the wall with no open case")
    for k in range(2):                        # kill one worker, then (once replaced) the other one
        workers = sorted(server_children(server.proc.pid))
        victim = workers[k % len(workers)]
        os.kill(victim, signal.SIGKILL)
        _post_case(server.url, 101.2 + k * 0.1, f"after-kill-{k}")
        wait_until(lambda: page.locator(OPEN).inner_text() == str(k + 1), timeout=20,
                   message=f"the wall to show {k + 1} open case(s) after worker {victim} was killed")
        wait_until(lambda: len(server_children(server.proc.pid)) == 2 and victim not in server_children(server.proc.pid),
                   timeout=60, message="the supervisor to replace the killed worker")
    assert page.url.endswith("/wall")              # the same page all along: never reloaded, never an error page
    assert page.locator("#shell-banner").is_hidden()


def _tile_url(base: str) -> str:
    index = httpx.get(base + "/tiles/index.json", timeout=30).json()
    layer = next(layer for layer in index["layers"] if layer["name"] == "regions")
    return layer["tiles"][0].replace("{z}", "8").replace("{x}", "200").replace("{y}", "98")


def _listening(base: str) -> bool:
    return httpx.get(base + "/healthz", timeout=10).json()["live"]["listening"]


def test_a_tile_rendered_by_one_server_process_is_a_cache_hit_in_another_through_redis(serve, db_url, tiny, redis_server):
    env = {"GRIDWATCH_REDIS_URL": redis_server.url}
    a, b = serve(db_url, env=env), serve(db_url, env=env)
    wait_until(lambda: _listening(a.url) and _listening(b.url), timeout=30, message="both processes listening")
    url = _tile_url(a.url)
    first = httpx.get(url, timeout=30)
    assert first.status_code == 200 and first.headers["x-cache"] == "miss" and first.content
    second = httpx.get(url.replace(a.url, b.url), timeout=30)
    assert second.status_code == 200 and second.headers["x-cache"] == "hit"
    assert second.content == first.content
    assert any(key.startswith(b"gw:tile|regions|") for key in redis_server.client.keys("gw:tile*"))
    assert httpx.get(b.url + "/healthz", timeout=10).json()["worker"]["cache"]["kind"] == "redis"


def test_without_redis_each_server_process_keeps_its_own_tile_cache(serve, db_url, tiny):
    a, b = serve(db_url), serve(db_url)
    wait_until(lambda: _listening(a.url) and _listening(b.url), timeout=30, message="both processes listening")
    url = _tile_url(a.url)
    assert httpx.get(url, timeout=30).headers["x-cache"] == "miss"
    assert httpx.get(url, timeout=30).headers["x-cache"] == "hit"                       # its own, local
    assert httpx.get(url.replace(a.url, b.url), timeout=30).headers["x-cache"] == "miss"  # not shared


def test_two_workers_behind_pgbouncer_use_its_few_connections_and_still_push_changes(cluster, serve, db_url, tiny):
    dbname = db_url.rsplit("/", 1)[1]
    bouncer = PgBouncer(cluster.port, pool_size=3)
    try:
        env = {"GRIDWATCH_WORKERS": "2", "GRIDWATCH_POOL_SIZE": "8", "GRIDWATCH_PGBOUNCER": "on",
               "GRIDWATCH_LISTEN_URL": db_url}                         # LISTEN bypasses the pooler: the primary itself
        server = serve(bouncer.url(dbname), env=env)
        with httpx.Client(timeout=60) as http:
            with ThreadPoolExecutor(24) as pool:                    # 2 workers × 8 = 16 wanted, pgbouncer has 3
                answers = list(pool.map(lambda k: http.get(server.url + f"/api/v1/regions/{'620702' if k % 2 else '620102'}").status_code,
                                        range(96)))
        assert answers == [200] * 96
        with psycopg.connect(db_url, autocommit=True) as conn:
            rows = conn.execute("SELECT application_name FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                                (dbname,)).fetchall()
        names = [r[0] for r in rows]
        assert names.count("gridwatch-listen") >= 1
        pooled = [n for n in names if n not in ("gridwatch-listen", "")]   # through pgbouncer: at most its 3 server connections
        assert 1 <= len(pooled) <= 3, names
        with httpx.stream("GET", server.url + "/api/v1/live", params={"region": "620702"}, timeout=30) as stream:
            lines = stream.iter_lines()
            first = next(line for line in lines if line.startswith("data:"))
            _post_case(server.url, 102.7, "through-pgbouncer")
            pushed = next(line for line in lines if line.startswith("data:"))
        assert '"cases"' in pushed and pushed != first
    finally:
        bouncer.stop()


def test_the_socket_the_workers_share_gives_every_accepted_connection_tcp_nodelay():
    """Without TCP_NODELAY each response's second write waited ~40 ms for the client's delayed ACK
    behind ``serve --workers N`` (uvicorn binds the shared socket with protocol 0, and asyncio then
    leaves Nagle on for the connections it accepts)."""
    import asyncio
    import socket

    import uvicorn

    from gridwatch.commands.serve import tcp_listener

    config = uvicorn.Config("gridwatch.server:create_app", factory=True, host="127.0.0.1", port=0, workers=2)
    listener = tcp_listener(config.bind_socket())
    seen: list[int] = []

    async def main():
        def accepted(reader, writer):
            seen.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=listener)
        async with server:
            _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
            for _ in range(200):
                if seen:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    # in a thread of its own: the browser fixture's sync API may keep an event loop in this one
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, asyncio.wait_for(main(), 10)).result(timeout=20)
    assert listener.proto == socket.IPPROTO_TCP
    assert seen and seen[0] != 0, seen
