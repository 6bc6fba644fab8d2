"""The acknowledgement link of a real email, opened in Chromium at phone and desktop sizes.

A park secretary opens the link from the notice on a phone, sees the policy and the form,
and records how many enterprises it was forwarded to, with a note; later, at a desk, the same
link shows what was recorded and takes a correction. A spoilt link gets a plain page saying
so. Every page passes `check_page` (no sideways scrolling, axe-core clean, screenshots kept),
nothing is blocked by its Content-Security-Policy, and its Chinese is drawn with a CJK font.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from tests.helpers.api import create_partner, deliveries, event, publish, trace, unique
from tests.helpers.browser import (
    DESKTOP,
    PHONE,
    SIZES,
    Size,
    Tab,
    assert_renders_chinese,
    check_page,
    open_tab,
)
from tests.integration.conftest import ApiUnderTest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

#: Chromium reports a page answered with an error status as a failed resource.
REFUSED = re.compile(r"Failed to load resource: the server responded with a status of 401")


async def emailed_link(api: ApiUnderTest, pid: str) -> tuple[str, str]:
    """A new partner with an email channel gets a notice; the acknowledgement link read from
    the email itself, and the document's id."""
    tag = unique("tag")
    token = await create_partner(
        api, pid, tag, [{"type": "email", "to": [f"{pid}@api.example.org"]}]
    )
    ev = event(unique("DOC-ACKPAGE"), tag, title="浏览器测试：园区租金补贴延续政策")
    await publish(api, ev)
    (d,) = await deliveries(api, pid, token, 1)
    mail = next(m for m in api.relay.smtp.messages if m["X-Relay-Delivery-Id"] == d["delivery_id"])
    body = mail.get_body(("plain",))
    assert body is not None
    found = re.search(r"http\S+/ack\?t=[\w-]+", body.get_content())
    assert found is not None, body.get_content()
    return found.group(0), ev["document"]["id"]


async def acknowledgement(api: ApiUnderTest, doc_id: str, pid: str) -> dict[str, Any]:
    (n,) = [n for n in (await trace(api, doc_id))["notifications"] if n["partner_id"] == pid]
    ack: dict[str, Any] = n["acknowledgement"]
    return ack


async def clean(tab: Tab, allowed: re.Pattern[str] | None = None) -> None:
    assert tab.errors(allowed) == []
    assert await tab.csp_violations() == []


async def test_a_secretary_acknowledges_from_the_emailed_link_on_a_phone_then_corrects_it(
    browser: Browser, api: ApiUnderTest
) -> None:
    pid = unique("p-ackpage")
    link, doc_id = await emailed_link(api, pid)

    async with open_tab(browser, PHONE) as tab:
        page = tab.page
        await page.goto(link)
        await expect(page.locator("h1")).to_have_text("浏览器测试：园区租金补贴延续政策")
        await expect(page.get_by_text(f"{pid}（测试协会）")).to_be_visible()
        await assert_renders_chinese(tab, "h1")
        await check_page(tab, "ack-form")
        await page.get_by_label("已转发给").fill("12")
        await page.get_by_label("备注（可选）").fill("已转园区企业微信群，部分企业电话通知")
        await page.get_by_role("button", name="提交").click()
        await expect(page.locator("h1")).to_have_text("已记录，谢谢")
        await expect(page.locator(".notice")).to_contain_text("已转发给 12 家企业")
        await expect(page.locator(".notice")).to_contain_text("部分企业电话通知")
        await check_page(tab, "ack-done")
        await clean(tab)
    ack = await acknowledgement(api, doc_id, pid)
    assert ack["forwarded_to"] == 12
    assert ack["note"] == "已转园区企业微信群，部分企业电话通知"

    async with open_tab(browser, DESKTOP) as tab:
        page = tab.page
        await page.goto(link)
        # The page says what was recorded, and the form holds it for a correction.
        await expect(page.locator(".notice")).to_contain_text("已转发给 12 家企业")
        await expect(page.get_by_label("已转发给")).to_have_value("12")
        await check_page(tab, "ack-form-recorded")
        await page.get_by_label("已转发给").fill("30")
        await page.get_by_label("备注（可选）").fill("更正：另转发至商会")
        await page.get_by_role("button", name="提交").click()
        await expect(page.locator(".notice")).to_contain_text("已转发给 30 家企业；备注：更正")
        await check_page(tab, "ack-done-corrected")
        await clean(tab)
    ack = await acknowledgement(api, doc_id, pid)
    assert ack["forwarded_to"] == 30 and ack["note"] == "更正：另转发至商会"


@pytest.mark.parametrize("size", SIZES, ids=lambda s: s.name)
async def test_a_spoilt_link_gets_a_plain_page_that_says_so(
    browser: Browser, api: ApiUnderTest, size: Size
) -> None:
    link, _ = await emailed_link(api, unique("p-ackbad"))
    spoilt = link[:-4] + ("AAAA" if not link.endswith("AAAA") else "BBBB")
    async with open_tab(browser, size) as tab:
        response = await tab.page.goto(spoilt)
        assert response is not None and response.status == 401
        await expect(tab.page.locator("h1")).to_have_text("链接无效")
        await expect(tab.page.locator("form")).to_have_count(0)
        await check_page(tab, "ack-problem")
        await clean(tab, allowed=REFUSED)
