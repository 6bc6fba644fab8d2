"""The checks every page goes through (tests/helpers/browser.py) catch what they claim to:
axe-core's serious violations, sideways scrolling, and Chinese drawn without a CJK font.

The pages here are served by Playwright's router with the same strict Content-Security-Policy
as the relay's own pages, so the check is shown to work where an inline script could not run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.async_api import Browser, Route, async_playwright

from relay.web.pages import PAGE_HEADERS
from tests.helpers.browser import (
    CHROMIUM,
    PHONE,
    Tab,
    assert_accessible,
    assert_renders_chinese,
    check_page,
    fonts_drawing,
    open_tab,
)

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


async def test_chinese_is_drawn_by_a_cjk_font(browser: Browser) -> None:
    async with open_tab(browser, PHONE) as tab:
        await serve(tab, GOOD)
        await assert_renders_chinese(tab, "h1")
        fonts = await fonts_drawing(tab, "h1")
        assert any("Noto Sans CJK" in family for family in fonts), fonts


async def test_the_chinese_check_fails_where_chromium_has_no_cjk_font(tmp_path: Path) -> None:
    # Chromium as on a machine without fonts-noto-cjk: fontconfig sees only the TrueType
    # folder (DejaVu, Liberation), not /usr/share/fonts/opentype/noto.
    conf = tmp_path / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?><fontconfig><dir>/usr/share/fonts/truetype</dir>'
        f"<cachedir>{tmp_path / 'cache'}</cachedir></fontconfig>"
    )
    async with async_playwright() as pw:
        bare = await pw.chromium.launch(
            executable_path=str(CHROMIUM), env={**os.environ, "FONTCONFIG_FILE": str(conf)}
        )
        try:
            async with open_tab(bare, PHONE) as tab:
                await serve(tab, GOOD)
                with pytest.raises(AssertionError, match="no CJK font draws it"):
                    await assert_renders_chinese(tab, "h1")
        finally:
            await bare.close()
