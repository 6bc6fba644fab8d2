"""The checks every page goes through (tests/helpers/browser.py) catch what they claim to.

The pages here are served by Playwright's router with the same strict Content-Security-Policy
as the relay's own pages, so the check is shown to work where an inline script could not run.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Route

from relay.web.pages import PAGE_HEADERS
from tests.helpers.browser import PHONE, Tab, assert_accessible, check_page, open_tab

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

ORIGIN = "http://pages.test"

GOOD = """<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>好页面</title></head>
<body><main><h1>转发确认</h1>
<form method="post"><label for="n">已转发给</label><input id="n" name="n" type="number">
<button type="submit">提交</button></form></main></body></html>"""

#: An unlabelled field, a nameless button, grey on white: serious and critical violations.
BAD = """<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>坏页面</title></head>
<body><main><h1>转发确认</h1>
<form method="post"><input id="n" name="n" type="number"><button type="submit"></button></form>
<p style="color:#ccc;background:#fff">浅灰色的说明文字</p></main></body></html>"""

#: Nothing wrong for axe, but 900 px wide on a 390 px screen.
WIDE = GOOD.replace("<h1>", '<h1 style="width:900px">')


async def serve(tab: Tab, html: str) -> None:
    async def fulfil(route: Route) -> None:
        await route.fulfill(
            status=200, body=html, headers={**PAGE_HEADERS, "Content-Type": "text/html"}
        )

    await tab.page.route(f"{ORIGIN}/**", fulfil)
    await tab.page.goto(f"{ORIGIN}/")


async def test_the_accessibility_check_passes_a_good_page_under_a_strict_csp(
    browser: Browser,
) -> None:
    async with open_tab(browser, PHONE) as tab:
        await serve(tab, GOOD)
        await check_page(tab, "browser-check-good")
        # axe ran inside the page without loosening its policy: nothing was blocked.
        assert await tab.page.evaluate("typeof window.axe.run") == "function"
        assert await tab.csp_violations() == []
        assert tab.errors() == []


async def test_the_accessibility_check_names_each_serious_violation_and_its_element(
    browser: Browser,
) -> None:
    async with open_tab(browser) as tab:
        await serve(tab, BAD)
        with pytest.raises(AssertionError) as failed:
            await assert_accessible(tab, "the bad page")
    message = str(failed.value)
    assert "the bad page at desktop has serious accessibility violations" in message
    assert "[critical] button-name:" in message
    assert "[critical] label:" in message
    assert "[serious] color-contrast:" in message
    assert "    p:" in message and "    #n:" in message


async def test_a_page_wider_than_a_phone_fails_the_page_check(browser: Browser) -> None:
    async with open_tab(browser, PHONE) as tab:
        await serve(tab, WIDE)
        with pytest.raises(AssertionError, match="browser-check-wide at phone scrolls sideways"):
            await check_page(tab, "browser-check-wide")
