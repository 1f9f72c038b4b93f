"""Hostile strings show as plain text in every page and export, in real headless Chromium (issue 11).

Case titles and descriptions, party names, a township's name and what-if scenario names hold
script payloads. Every page (region page and its case register, wall, alerts, coverage with the
scenario names, briefing, workbench, a case's details) and every HTML export (opened from disk,
as a user would) is loaded; no dialog may open, no element may come out of the payloads, and the
exports still draw their map under their Content-Security-Policy (no violation reported).
"""

from __future__ import annotations

import hashlib
import re
import secrets

import httpx
import pytest

from tests.conftest import AUTH, wait_until

pytestmark = pytest.mark.browser

PAYLOADS = ("<img src=x onerror=alert(1)>", "</script><script>alert(1)</script>", '"><svg onload=alert(1)>')
BACKTICK = "x`-alert(1)-`${alert(1)}"        # folium writes tooltips into JavaScript template literals
INJECTED = "img[src='x'], svg[onload], script:not([src]):text-matches('alert\\\\(1\\\\)')"
INJECTED_JS = """() => [...document.querySelectorAll('img, svg, script')].filter(e =>
    (e.tagName === 'IMG' && e.getAttribute('src') === 'x') || e.hasAttribute('onload') || e.hasAttribute('onerror')
    || (e.tagName === 'SCRIPT' && !e.src && /^alert\\(1\\)$/.test(e.textContent.trim()))).length"""


def _planner_token(conn) -> str:
    token = "gwt_" + secrets.token_urlsafe(24)
    uid = conn.execute("""INSERT INTO app_user (username, display_name, role, region_code) VALUES ('xss_planner', 'p', 'planner', '62')
                          ON CONFLICT (username) DO UPDATE SET role = 'planner' RETURNING id""").fetchone()["id"]
    conn.execute("INSERT INTO api_token (user_id, token_sha256, name) VALUES (%s, %s, 'xss')", (uid, hashlib.sha256(token.encode()).digest()))
    return token


@pytest.fixture
def hostile_site(conn, tiny, db_url, serve):
    from tests.conftest import ensure_test_identity

    ensure_test_identity(db_url)
    conn.execute("UPDATE region SET name = %s WHERE code = '620702100'", (PAYLOADS[1] + "新墩",))
    site = serve(db_url)
    case_ids = []
    with httpx.Client(base_url=site.url, headers=AUTH, timeout=60) as http:
        for i, payload in enumerate(PAYLOADS):
            r = http.post("/api/v1/cases", json={"category": "neighbour", "lon": 100.45 + i * 0.01, "lat": 38.93,
                                                 "title": payload, "description": "描述 " + payload,
                                                 "reporter_name": payload, "address": payload})
            assert r.status_code == 201, r.text
            case_ids.append(r.json()["id"])
        planner = {"Authorization": f"Bearer {_planner_token(conn)}"}
        for payload in (PAYLOADS[0], PAYLOADS[2], BACKTICK):          # a scenario name is a path segment: no "/"
            r = http.post(f"/api/v1/scenarios/{payload}/centres", json={"lon": 100.46, "lat": 38.94}, headers=planner)
            assert r.status_code == 201, r.text
    return site, case_ids


def _check_page(page, url: str, dialogs: list, *, text: bool) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    if text:
        wait_until(lambda: any(p in page.inner_text("body") for p in PAYLOADS), timeout=20,
                   message=f"a payload shown as text on {url}")
    assert page.evaluate(INJECTED_JS) == 0, f"a payload became an element on {url}"
    assert dialogs == [], f"a dialog opened on {url}: {dialogs}"


def test_script_payloads_in_user_data_show_as_plain_text_in_every_page_and_export(hostile_site, browser_page, tmp_path):
    site, case_ids = hostile_site
    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)

    _check_page(page, site.url + "/region/620702", dialogs, text=True)             # township names, case register
    _check_page(page, site.url + f"/workbench/case/{case_ids[0]}", dialogs, text=True)   # a case's details
    for path in ("/workbench", "/wall?tour=600", "/alerts", "/coverage/620702", "/briefing/62", "/intake"):
        _check_page(page, site.url + path, dialogs, text=False)
    # the coverage page lists the scenario names as text
    page.goto(site.url + "/coverage/620702")
    page.wait_for_load_state("networkidle")
    assert page.evaluate(INJECTED_JS) == 0 and dialogs == []

    exports = ["/export/region/620702.html", "/export/briefing/62.html",
               f"/export/coverage/620702.html?scenario={PAYLOADS[0]}", f"/export/coverage/620702.html?scenario={BACKTICK}"]
    for i, path in enumerate(exports):
        r = httpx.get(site.url + path.split("?")[0], params=dict([path.split("?")[1].split("=", 1)]) if "?" in path else None,
                      headers=AUTH, timeout=120)
        assert r.status_code == 200, (path, r.text[:300])
        assert "'unsafe-inline'" not in re.search(r"script-src ([^;]+)", r.text).group(1)
        file = tmp_path / f"export-{i}.html"
        file.write_bytes(r.content)
        page.goto(file.as_uri())
        wait_until(lambda: any(f.locator(".leaflet-container").count() > 0 for f in page.frames), timeout=20,
                   message=f"the map of {path} drawn")       # the briefing's map is in an iframe srcdoc
        assert all(f.evaluate(INJECTED_JS) == 0 for f in page.frames), f"a payload became an element in {path}"
        assert dialogs == [], f"a dialog opened in {path}: {dialogs}"
    assert violations == [], f"the exports' own scripts were blocked by their CSP: {violations[:3]}"
