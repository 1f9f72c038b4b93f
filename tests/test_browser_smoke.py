from tests.conftest import wait_until


def test_the_home_page_renders_in_headless_chromium_without_leaving_localhost(serve, tiny, db_url, browser_page):
    server = serve(db_url)
    browser_page.goto(server.url + "/")
    browser_page.wait_for_selector("#region-crumb-current")
    wait_until(lambda: browser_page.inner_text("#region-crumb-current") == "甘肃省", message="the province's name in the breadcrumb")
