"""The live path: notifications that name the regions a statement touched (migration 0090), and the
asynchronous /api/v1/live stream (gridwatch/api/live.py): filtered by region, bursts coalesced, capped."""

from __future__ import annotations

import json
import socket
import threading

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from gridwatch.intake import create_cases
from gridwatch.live import parse_note, touches
from tests.conftest import ANONYMOUS, wait_until

WEST, EAST = (101.0, 37.2), (102.6, 37.2)      # tiny hierarchy: county 620102 and county 620702


def _listen(url):
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("LISTEN gridwatch")
    return conn


def _drain(conn, seconds=1.0) -> list[dict]:
    return [json.loads(n.payload) for n in conn.notifies(timeout=seconds)]


def _version(conn, table="cases") -> int:
    return conn.execute("SELECT version FROM data_version WHERE name = %s", (table,)).fetchone()["version"]


def test_a_batch_of_cases_in_two_counties_is_one_notification_naming_both_counties(db_url, conn, tiny):
    listener = _listen(db_url)
    try:
        items = [{"category": "neighbour", "lon": WEST[0] + k * 0.01, "lat": WEST[1]} for k in range(3)]
        items.append({"category": "neighbour", "lon": EAST[0], "lat": EAST[1]})
        with psycopg.connect(db_url, row_factory=dict_row) as writer:
            create_cases(writer, items)
        notes = [n for n in _drain(listener) if n["table"] == "cases"]
    finally:
        listener.close()
    assert len(notes) == 1, notes
    assert sorted(notes[0]["regions"]) == ["620102", "620702"]
    assert notes[0]["version"] == _version(conn)


def test_a_statement_that_changes_no_row_bumps_no_version_and_notifies_nobody(db_url, conn, tiny):
    before = _version(conn)
    listener = _listen(db_url)
    try:
        conn.execute("UPDATE cases SET title = title WHERE false")
        conn.execute("DELETE FROM hazard WHERE false")
        notes = _drain(listener, 0.5)
    finally:
        listener.close()
    assert notes == []
    assert _version(conn) == before


def test_a_case_moved_between_counties_names_both_and_a_region_edit_names_its_county(db_url, conn, tiny):
    from tests.factories import make_case

    case_id = make_case(conn, lon=WEST[0], lat=WEST[1])
    listener = _listen(db_url)
    try:
        conn.execute("UPDATE cases SET county_code = '620702', prefecture_code = '6207' WHERE id = %s", (case_id,))
        conn.execute("UPDATE region SET name = name || '·' WHERE code = '620702100'")
        notes = _drain(listener)
    finally:
        listener.close()
    by_table = {n["table"]: n for n in notes}
    assert sorted(by_table["cases"]["regions"]) == ["620102", "620702"]
    assert by_table["region"]["regions"] == ["620702"]


def test_which_pages_a_change_concerns():
    assert touches(["620702"], "62") and touches(["620702"], "6207") and touches(["620702"], "620702100200001")
    assert not touches(["620702"], "620102") and not touches(["620702"], "6201")
    assert touches(None, "620102") and touches([], "") and not touches([], "620102")
    assert parse_note('{"table": "cases", "version": 3}') == ("cases", 3, None)
    with pytest.raises(ValueError):
        parse_note('["cases"]')


# -- the stream, over real HTTP ------------------------------------------------------------------

class Stream:
    """A /api/v1/live reader on a raw socket in a thread: ``events`` collects (event, data) as they arrive.

    A raw socket so that :meth:`close` really hangs up (shutdown), as a browser tab closing does.
    """

    def __init__(self, base: str, token: str | None = None, **params):
        from urllib.parse import urlencode, urlparse

        self.events: list[tuple[str, dict]] = []
        self.status: int | None = None
        url = urlparse(base)
        self._sock = socket.create_connection((url.hostname, url.port), timeout=60)
        query = ("?" + urlencode(params)) if params else ""
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self._sock.sendall(f"GET /api/v1/live{query} HTTP/1.1\r\nHost: {url.netloc}\r\nAccept: text/event-stream\r\n{auth}\r\n".encode())
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        wait_until(lambda: self.status is not None, timeout=15, message="the stream to answer")

    def _read(self):
        buf, kind = b"", None
        try:
            while True:
                chunk = self._sock.recv(65536)
                if not chunk:
                    return
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for raw in lines:
                    line = raw.decode("utf-8", "replace").rstrip("\r")
                    if self.status is None and line.startswith("HTTP/1.1 "):
                        self.status = int(line.split()[1])
                    elif line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        self.events.append((kind, json.loads(line[5:])))
        except OSError:
            return

    def versions(self) -> list[dict]:
        return [d for k, d in self.events if k == "version"]

    def close(self):
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


@pytest.fixture(scope="module")
def world(cluster):
    from tests.apiserver import ApiWorld

    w = ApiWorld(cluster, env={"GRIDWATCH_LIVE_MAX": "3", "GRIDWATCH_LIVE_COALESCE_MS": "1000"})
    yield w
    w.close()


def _post(world, lon, lat, ref):
    r = httpx.post(world.url + "/api/v1/cases", json={"category": "neighbour", "lon": lon, "lat": lat, "client_request_id": ref},
                   timeout=30)
    assert r.status_code == 201, r.text
    with world.connect() as conn:
        return _version(conn)


def test_a_county_stream_hears_of_cases_in_its_county_and_not_of_cases_elsewhere(world):
    everything, county = Stream(world.url), Stream(world.url, region="620702")
    try:
        wait_until(lambda: everything.versions() and county.versions(), timeout=10, message="the first versions")
        elsewhere = _post(world, *WEST, "live-west-1")
        wait_until(lambda: everything.versions()[-1]["cases"] >= elsewhere, timeout=10,
                   message="the unfiltered stream to carry the case in 620102")
        here = _post(world, *EAST, "live-east-1")
        wait_until(lambda: county.versions()[-1]["cases"] >= here, timeout=10, message="the county stream to carry its case")
        pushed = county.versions()[1:]
        assert [v["cases"] for v in pushed] == [here], "the county stream was told of a case outside its county"
    finally:
        everything.close()
        county.close()


def test_a_burst_of_changes_reaches_a_stream_as_at_most_three_messages(world):
    """Twelve changes within a fraction of a second: the first is sent at once, the rest wait for the
    next whole second of the clock (two such seconds if the burst straddles one)."""
    stream = Stream(world.url, region="6207")
    try:
        first = _post(world, *EAST, "live-burst-0")
        case_id = httpx.get(world.url + "/api/v1/cases", params={"region": "620702"}, timeout=30).json()[0]["id"]
        wait_until(lambda: stream.versions()[-1]["cases"] >= first, timeout=10, message="the stream to carry the first case")
        seen = len(stream.versions())
        with psycopg.connect(world.db_url, autocommit=True, row_factory=dict_row) as conn:
            for k in range(12):       # twelve statements, twelve notifications, within well under a second
                conn.execute("UPDATE cases SET title = %s WHERE id = %s", (f"burst {k}", case_id))
            final = _version(conn)
        assert final >= first + 12
        wait_until(lambda: stream.versions()[-1]["cases"] >= final, timeout=10, message="the burst's last version")
        assert len(stream.versions()) - seen <= 3, stream.versions()[seen:]
    finally:
        stream.close()


def test_the_live_stream_answers_503_beyond_its_cap_and_accepts_again_when_one_closes(world):
    open_streams = [Stream(world.url) for _ in range(3)]
    try:
        assert all(s.status == 200 for s in open_streams)
        r = httpx.get(world.url + "/api/v1/live", timeout=10)
        assert r.status_code == 503
        assert r.headers["retry-after"] == "5"
        err = r.json()["error"]
        assert err["code"] == "live_full" and "GRIDWATCH_LIVE_MAX" in err["fix"]
        assert httpx.get(world.url + "/healthz", timeout=10).status_code == 200     # everything else still answers
        open_streams.pop().close()

        def accepted():
            with httpx.stream("GET", world.url + "/api/v1/live", params={"once": "true"}, timeout=10) as again:
                return again.status_code == 200

        wait_until(accepted, timeout=15, interval=0.2, message="a stream to be accepted once one closed")
    finally:
        for s in open_streams:
            s.close()


def test_a_bad_region_is_refused_with_the_usual_error_body(world):
    r = httpx.get(world.url + "/api/v1/live", params={"region": "62x"}, timeout=10)
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "region" and r.json()["error"]["code"] == "bad_code"


def test_a_gbt_2260_prefecture_code_scopes_the_stream_to_that_prefecture_not_to_a_county(world):
    # 620700 is 张掖市 (6207) written in GB/T 2260: its county 620702 is inside it, 620102 is not
    prefecture = Stream(world.url, region="620700")
    try:
        assert prefecture.status == 200
        wait_until(lambda: prefecture.versions(), timeout=10, message="the first versions")
        elsewhere = _post(world, *WEST, "live-gbt-west-1")
        here = _post(world, *EAST, "live-gbt-east-1")
        wait_until(lambda: prefecture.versions()[-1]["cases"] >= here, timeout=10,
                   message="the 620700 stream to carry the case in 620702")
        assert elsewhere not in [v["cases"] for v in prefecture.versions()[1:]], "told of a case outside 张掖市"
    finally:
        prefecture.close()


def _token(world, username, role, **scope) -> str:
    from gridwatch import auth

    with psycopg.connect(world.db_url, autocommit=True) as conn:
        auth.add_user(conn, username, role, **scope)
        return auth.create_token(conn, username, "live stream test")[1]


def test_a_stream_of_the_users_own_scope_hears_of_its_county_only_and_a_departments_of_everything(world):
    """?mine=true (the workbench pages): the server takes the scope from the session, not the page."""
    from tests.factories import make_department

    county = _token(world, "live_op_ganzhou", "operator", region_code="620702")
    with psycopg.connect(world.db_url, autocommit=True, row_factory=dict_row) as conn:
        bureau = make_department(conn, "620702", "water", "甘州区水务局")
    department = _token(world, "live_dept_water", "department", department_id=bureau)
    mine, theirs = Stream(world.url, county, mine="true"), Stream(world.url, department, mine="true")
    try:
        assert mine.status == 200 and theirs.status == 200
        wait_until(lambda: mine.versions() and theirs.versions(), timeout=10, message="the first versions")
        elsewhere = _post(world, *WEST, "live-mine-west-1")
        here = _post(world, *EAST, "live-mine-east-1")
        wait_until(lambda: mine.versions()[-1]["cases"] >= here, timeout=10, message="the operator's stream to carry its county's case")
        wait_until(lambda: any(v["cases"] >= elsewhere for v in theirs.versions()[1:]), timeout=10,
                   message="the department's stream (no region scope: it sees by department) to carry the other county's case")
        assert [v["cases"] for v in mine.versions()[1:]] == [here], "the operator of 620702 was told of a case in 620102"
    finally:
        mine.close()
        theirs.close()


def test_a_stream_of_ones_own_scope_needs_a_signed_in_user_and_not_also_a_region(world):
    r = httpx.get(world.url + "/api/v1/live", params={"mine": "true"}, headers=ANONYMOUS, timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    token = _token(world, "live_op_both", "operator", region_code="620702")
    r = httpx.get(world.url + "/api/v1/live", params={"mine": "true", "region": "620702"},
                  headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 422 and r.json()["error"]["field"] == "mine"
