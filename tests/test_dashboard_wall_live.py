"""The wall in steady state, watched for two minutes in real headless Chromium while the simulator
runs against the Gansu demo: the map is the element at its own centre in at least 80% of the
samples, nothing overflows its panel at 1920×1080 or 3840×2160, red items take the screen only
briefly and then wait in the ticker, and the map follows the tour. Also makes docs/screenshots/wall.png."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, TEST_TOKEN, wait_until

SAMPLE_SECONDS = 2.0
WATCH_SECONDS = 60.0          # at each size: two minutes in all
SIZES = ((1920, 1080), (3840, 2160))

# One sample: is the map the element at its own centre, does any panel overflow, what shows.
SAMPLE_JS = """() => {
    const graph = document.querySelector('#wall-map');
    const r = graph.getBoundingClientRect();
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    const over = [];
    document.querySelectorAll('.wall-panel, .wall-side, .wall-takeover:not([hidden])').forEach(p => {
        if (p.scrollHeight > p.clientHeight + 1) over.push((p.id || p.className) + ' ' + p.scrollHeight + '>' + p.clientHeight);
    });
    const gd = document.querySelector('#wall-map .js-plotly-plot');
    const m = gd && gd._fullLayout && gd._fullLayout.map && gd._fullLayout.map._subplot && gd._fullLayout.map._subplot.map;
    const c = m ? m.getCenter() : null;
    return {map: !!(hit && graph.contains(hit)), hit: hit ? (hit.id || hit.className || hit.tagName) : null, over: over,
            takeover: !document.querySelector('#wall-takeover').hidden,
            ticker: !document.querySelector('#wall-ticker').hidden,
            zoom: m ? m.getZoom() : null, lon: c ? c.lng : null, lat: c ? c.lat : null,
            span: m ? m.getBounds().getEast() - m.getBounds().getWest() : null,
            region: document.querySelector('#wall-region-name').innerText,
            page: document.scrollingElement.scrollHeight <= window.innerHeight + 1};
}"""


MAP_COUNTS = """() => { const gd = document.querySelector('#alerts-map .js-plotly-plot');
    const m = gd && gd._fullLayout.map && gd._fullLayout.map._subplot.map;
    if (!m || !m.loaded()) return {tiles: 0, groups: 0};
    return {tiles: new Set(m.queryRenderedFeatures().filter(f => /^alerts_/.test(f.sourceLayer)).map(f => f.id)).size,
            groups: gd.data.reduce((n, tr) => n + (tr.type === 'scattermap' ? (tr.lon || []).length : 0), 0)}; }"""


@pytest.fixture
def live_demo(gansu_demo_copy_url):
    """Gansu with 20,000 demo cases over two months, a week of check-ins, the statistics and the alert
    rules run (a copy of the run's gansu_demo_template, tests/conftest.py)."""
    return gansu_demo_copy_url


@pytest.mark.gansu
@pytest.mark.browser
def test_the_wall_shows_its_map_most_of_the_time_while_red_items_arrive_and_nothing_overflows(live_demo, serve, browser_page):
    server = serve(live_demo)
    sim = subprocess.Popen(
        [sys.executable, "-m", "gridwatch.cli", "simulate", "--api", server.url, "--rate", "3", "--speed", "720",
         "--workers", "20", "--seed", "14", "--quiet", "--duration", str(2 * WATCH_SECONDS + 40)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "GRIDWATCH_SIM_TOKEN": TEST_TOKEN})     # acts as the test suite's operator
    page = browser_page
    (ROOT / "tests/artifacts").mkdir(exist_ok=True)
    (ROOT / "tests/artifacts/wall-steady.png").unlink(missing_ok=True)
    samples: dict[tuple[int, int], list[dict]] = {}
    try:
        for width, height in SIZES:
            page.set_viewport_size({"width": width, "height": height})
            if not samples:
                page.goto(server.url + "/wall?tour=8")
            wait_until(lambda: page.evaluate("""() => { const gd = document.querySelector('#wall-map .js-plotly-plot');
                           return !!(gd && gd._fullLayout.map && gd._fullLayout.map._subplot.map.loaded()); }"""),
                       timeout=60, message="the wall's map")
            got = samples[(width, height)] = []
            end = time.monotonic() + WATCH_SECONDS
            while time.monotonic() < end:
                started = time.monotonic()
                got.append(page.evaluate(SAMPLE_JS))
                if width == 1920 and got[-1]["ticker"] and not got[-1]["takeover"] and not (ROOT / "tests/artifacts/wall-steady.png").exists():
                    page.screenshot(path=str(ROOT / "tests/artifacts/wall-steady.png"))
                if got[-1]["takeover"] and not any(x["takeover"] for x in got[:-1]):
                    page.screenshot_to(f"wall-live-takeover-{width}")
                time.sleep(max(0.0, SAMPLE_SECONDS - (time.monotonic() - started)))
    finally:
        sim.terminate()
        out, err = sim.communicate(timeout=30)
    report = {f"{w}x{h}": {"samples": len(s), "map_at_centre": sum(x["map"] for x in s),
                           "takeover": sum(x["takeover"] for x in s), "ticker": sum(x["ticker"] for x in s),
                           "overflowing": sum(bool(x["over"]) for x in s)} for (w, h), s in samples.items()}
    print("\nwall watched:", json.dumps(report), flush=True)
    every = [x for s in samples.values() for x in s]
    for (w, h), s in samples.items():
        assert len(s) >= 0.5 * WATCH_SECONDS / SAMPLE_SECONDS, (w, h, len(s))   # a 4K frame is slow to sample here
        share = sum(x["map"] for x in s) / len(s)
        assert share >= 0.8, f"at {w}×{h} the map was at its own centre in only {share:.0%} of samples: {report}"
        bad = [x["over"] for x in s if x["over"]]
        assert not bad, f"panels overflow at {w}×{h}: {bad[:3]}"
        assert all(x["page"] for x in s), f"the wall scrolls at {w}×{h}"
    # red items arrived and were shown: taken over briefly, then waiting in the ticker
    assert any(x["takeover"] for x in every), report
    assert any(x["ticker"] for x in every), report
    # the tour moves the map: it is zoomed to the region on tour, not the whole province
    centres = {(round(x["lon"], 1), round(x["lat"], 1)) for x in every if x["lon"] is not None}
    regions = {x["region"] for x in every}
    assert len(regions) >= 3 and len(centres) >= 3, (regions, centres)
    # Gansu spans 16.6° of longitude; a prefecture on tour fills the map with far less
    assert sum(1 for x in every if x["span"] is not None and x["span"] < 13.0) >= 0.8 * len(every), \
        [round(x["span"] or 0, 1) for x in every][:30]
    shot = ROOT / "tests/artifacts/wall-steady.png"
    assert shot.exists(), "no sample with the ticker to photograph"
    shutil.move(shot, ROOT / "docs/screenshots/wall.png")

    # the alerts page of the same province: groups listed, and its map is not empty
    page.set_viewport_size({"width": 1600, "height": 1000})
    page.goto(server.url + "/alerts")
    wait_until(lambda: page.locator(".alert-group").count() > 0, timeout=60, message="alert groups")
    wait_until(lambda: page.evaluate(MAP_COUNTS)["tiles"] > 50 and page.evaluate(MAP_COUNTS)["groups"] > 5, timeout=60,
               message="grouped markers and alert tiles on the alerts page's map")
    page.screenshot(path=str(ROOT / "docs/screenshots/alerts.png"))
