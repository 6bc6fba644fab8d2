"""The operator dashboard in a real browser: Debian's Chromium, driven by Playwright.

The page is opened on the session's worker, signed in with the operator token, and watched
while a document is published through the API: its funnel appears and fills in without a
reload, a dead letter is replayed from the page, and nothing is logged as an error or
blocked by the page's Content-Security-Policy. Chromium comes from the system
(``apt-get install chromium``; .ci/run does it): Playwright never downloads a browser here,
and a missing Chromium fails this test rather than skipping it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Dialog, expect

from relay.adapters import kafka
from relay.core import topics
from relay.core.models import DeliveryIntent
from tests.helpers.api import create_partner, event, eventually, hook, publish, unique
from tests.helpers.browser import Tab, open_tab
from tests.helpers.receivers import accept, respond
from tests.integration.conftest import ApiUnderTest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

LIVE = 30_000  # ms: the page polls every 2 s; a delivery takes well under a second


@pytest_asyncio.fixture(loop_scope="session")
async def tab(browser: Browser, api: ApiUnderTest) -> AsyncIterator[Tab]:
    async with open_tab(browser) as opened:
        await opened.page.goto(f"{api.relay.stack.web_url}/")
        await expect(opened.page.locator("#signin")).to_be_visible()
        yield opened


async def sign_in(tab: Tab, token: str) -> None:
    await tab.page.fill("#token", token)
    await tab.page.click("#signin-form button[type=submit]")


async def dead_letter_written(api: ApiUnderTest, partner_id: str) -> bool:
    records = await kafka.read_topic(api.relay.settings, topics.DEAD_LETTER)
    for r in records:
        try:
            intent = DeliveryIntent.model_validate_json(r.value or b"")
        except ValueError:
            continue
        if intent.partner_id == partner_id:
            return True
    return False


def count(text: str) -> int:
    return int(text.replace(",", "").strip())


async def test_the_dashboard_follows_a_published_document_live_and_replays_its_dead_letter(
    api: ApiUnderTest, tab: Tab
) -> None:
    page = tab.page
    await sign_in(tab, api.operator_token)
    await expect(page.locator("#board")).to_be_visible()
    await expect(page.locator("#signin")).to_be_hidden()
    await expect(page.locator("#status")).to_contain_text("实时")
    # The token stays in the tab, never in the address.
    assert api.operator_token not in page.url
    stored = await page.evaluate("sessionStorage.getItem('relay.operatorToken')")
    assert stored == api.operator_token
    # Proof that nothing below reloads the page.
    await page.evaluate("window.__samePage = true")

    tag = unique("tag")
    ok, bad = unique("p-live-ok"), unique("p-live-bad")
    await create_partner(api, ok, tag, [hook(api, ok)[1]])
    bad_path, bad_hook = hook(api, bad)
    if not isinstance(api.hooks.behaviour, dict):
        api.hooks.behaviour = {}
    behaviours = api.hooks.behaviour
    behaviours[bad_path] = respond(400, body="no thanks")
    await create_partner(api, bad, tag, [bad_hook])
    ev = event(unique("DOC-LIVE"), tag, title="浏览器测试：实时漏斗")
    doc_id = ev["document"]["id"]
    await publish(api, ev)

    row = page.locator(f'#documents-body tr[data-document-id="{doc_id}"]')
    await expect(row).to_be_visible(timeout=LIVE)
    await expect(row).to_contain_text("浏览器测试：实时漏斗")
    await expect(row.locator('[data-field="delivered"]')).to_have_text("1", timeout=LIVE)
    await expect(row.locator('[data-field="dead_letters"]')).to_have_text("1", timeout=LIVE)
    await expect(row.locator('[data-field="partners_matched"]')).to_have_text("2")
    await expect(row.locator('[data-field="deliveries"]')).to_have_text("2")
    assert count(await page.locator('[data-count="delivered"]').inner_text()) >= 1
    assert count(await page.locator("#dead-letters").inner_text()) >= 1
    await expect(page.locator("#documents-empty")).to_be_hidden()

    failure = page.locator("#failures-body tr", has_text=bad)
    await expect(failure).to_be_visible(timeout=LIVE)
    await expect(failure).to_contain_text("浏览器测试：实时漏斗")
    await expect(failure).to_contain_text("[400]")
    await expect(failure).to_contain_text("失败")

    # Replay the document's dead letter from the page, once the receiver takes it.
    behaviours[bad_path] = accept
    await eventually(
        lambda: dead_letter_written(api, bad), timeout=20, what="the dead letter of the bad channel"
    )
    asked: list[str] = []

    async def confirm(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.once("dialog", confirm)
    await row.get_by_role("button", name="重发死信").click()
    await expect(page.locator("#notice")).to_contain_text("已重新排队 1 条死信", timeout=LIVE)
    assert asked and "死信" in asked[0]
    await expect(row.locator('[data-field="delivered"]')).to_have_text("2", timeout=LIVE)
    await expect(row.locator('[data-field="dead_letters"]')).to_have_text("0", timeout=LIVE)
    await expect(row.get_by_role("button", name="重发死信")).to_have_count(0)
    await expect(failure).to_have_count(0, timeout=LIVE)

    assert await page.evaluate("window.__samePage") is True
    assert tab.errors() == []
    assert await tab.csp_violations() == []

    # A reload keeps the session (the tab's storage) and shows the board again.
    await page.reload()
    await expect(page.locator("#board")).to_be_visible(timeout=LIVE)
    await expect(page.locator(f'tr[data-document-id="{doc_id}"]')).to_be_visible(timeout=LIVE)
    assert tab.errors() == []


REFUSED = re.compile(r"Failed to load resource: the server responded with a status of 401")


async def test_a_wrong_token_shows_a_clear_message_and_no_data(api: ApiUnderTest, tab: Tab) -> None:
    page = tab.page
    await sign_in(tab, "not-the-operator-token")
    problem = page.locator("#problem")
    await expect(problem).to_be_visible(timeout=LIVE)
    await expect(problem).to_contain_text("令牌无效")
    await expect(page.locator("#signin")).to_be_visible()
    await expect(page.locator("#board")).to_be_hidden()
    assert await page.evaluate("sessionStorage.getItem('relay.operatorToken')") is None
    assert "not-the-operator-token" not in page.url
    # Chromium reports the refused request itself; nothing else may go wrong.
    assert tab.errors(allowed=REFUSED) == []
    assert await tab.csp_violations() == []

    # The right token afterwards gets in.
    await sign_in(tab, api.operator_token)
    await expect(page.locator("#board")).to_be_visible(timeout=LIVE)
    await expect(problem).to_be_hidden()
