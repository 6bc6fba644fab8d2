"""The partner's page (``GET /partner``) in a real browser: Debian's Chromium, driven by Playwright.

A park secretary signs in with the partner's token, edits the coverage with the pickers (and a
document matching only the new coverage reaches the partner), adds a webhook and a 钉钉 robot
from the form and tests them against real loopback receivers (the webhook's signature checked
with ``standardwebhooks``, the robot's by the stack's robot sink), rotates the webhook's
secret, removes a channel, acknowledges a notice with a count and a note (read back from the
operator's trace), and asks a question on it. Each partner sees only its own data; at 390 px
nothing is wider than the screen; screenshots of both sizes are kept.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Dialog, Page, expect

from tests.helpers.api import (
    bearer,
    create_partner,
    deliveries,
    event,
    eventually,
    hook,
    matched_trace,
    publish,
    trace,
    unique,
)
from tests.helpers.browser import DESKTOP, PHONE, Size, Tab, check_page, open_tab
from tests.helpers.receivers import respond
from tests.integration.conftest import ApiUnderTest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

LIVE = 30_000  # ms
#: Chromium reports a refused request (a wrong token's 401) itself.
REFUSED = re.compile(r"Failed to load resource: the server responded with a status of 401")
#: ... and a request the API refused as invalid (422), which the page shows by its field.
INVALID = re.compile(r"Failed to load resource: the server responded with a status of 422")


@dataclass
class PartnerUnderTest:
    id: str
    token: str
    tag: str
    hook_path: str


async def new_partner(api: ApiUnderTest) -> PartnerUnderTest:
    """A partner of its own (浦东新区, one tag of its own) with one verified webhook."""
    pid, tag = unique("p-page"), unique("tag")
    path, channel = hook(api, pid)
    token = await create_partner(api, pid, tag, [channel])
    return PartnerUnderTest(pid, token, tag, path)


@pytest_asyncio.fixture(loop_scope="session")
async def partner(api: ApiUnderTest) -> PartnerUnderTest:
    return await new_partner(api)


@pytest_asyncio.fixture(loop_scope="session")
async def desktop(browser: Browser, api: ApiUnderTest) -> AsyncIterator[Tab]:
    async with open_tab(browser, DESKTOP) as tab:
        await tab.page.goto(f"{api.relay.stack.web_url}/partner")
        yield tab


@pytest_asyncio.fixture(loop_scope="session")
async def phone(browser: Browser, api: ApiUnderTest) -> AsyncIterator[Tab]:
    async with open_tab(browser, PHONE) as tab:
        await tab.page.goto(f"{api.relay.stack.web_url}/partner")
        yield tab


async def sign_in(tab: Tab, p: PartnerUnderTest) -> None:
    page = tab.page
    await expect(page.locator("#signin")).to_be_visible()
    await page.fill("#token", p.token)
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#app")).to_be_visible(timeout=LIVE)
    await expect(page.locator("#who")).to_contain_text(p.id)
    # The token stays in the tab, never in the address.
    assert p.token not in page.url
    assert await page.evaluate("sessionStorage.getItem('relay.partnerToken')") == p.token


def accept_dialogs(page: Page) -> list[str]:
    """Accept every confirmation the page asks for; the messages, to check."""
    asked: list[str] = []

    async def confirm(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.on("dialog", confirm)
    return asked


async def profile(api: ApiUnderTest, p: PartnerUnderTest) -> dict[str, Any]:
    r = await api.http.get(f"/api/v1/partners/{p.id}", headers=bearer(p.token))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def fits(tab: Tab, name: str) -> None:
    """The page from its top (the sticky navigation where it belongs), checked and kept."""
    await tab.page.evaluate("window.scrollTo(0, 0)")
    await check_page(tab, name)


async def pick(page: Page, dimension: str, label: str) -> None:
    """Choose an entry of a picker by its visible text, and add it."""
    await page.select_option(f"#pick-{dimension}", label=label)
    await page.click(f'[data-add="{dimension}"]')


# ------------------------------------------------------------------ coverage


async def test_the_partner_edits_its_coverage_with_pickers_and_the_new_coverage_reaches_it(
    api: ApiUnderTest, partner: PartnerUnderTest, desktop: Tab
) -> None:
    page = desktop.page
    await sign_in(desktop, partner)
    regions = page.locator("#chips-regions")
    # Codes are shown with their names.
    await expect(regions.locator('.chip[data-code="310115"]')).to_contain_text("浦东新区")
    await expect(page.locator("#chips-industries")).to_contain_text("未登记")
    await expect(page.locator("#f-kind")).to_have_text("行业协会")

    # 浦东新区 out; 黄浦区 and 青浦区's 徐泾镇 in; 计算机制造 (C391) and 小型 too.
    await regions.locator('.chip[data-code="310115"]').get_by_role("button").click()
    await expect(regions.locator('.chip[data-code="310115"]')).to_have_count(0)
    await pick(page, "regions", "黄浦区（310101）")
    await pick(page, "regions", "徐泾镇（310118106）")
    await pick(page, "industries", "\u3000计算机制造（C391）")
    await page.check('#scales input[data-scale="small"]')
    await pick(page, "parks", "徐泾镇科创园（xujing-sci-tech-park）")
    await expect(regions.locator('.chip[data-code="310101"]')).to_contain_text("黄浦区")
    await expect(regions.locator('.chip[data-code="310118106"]')).to_contain_text("徐泾镇")
    await expect(page.locator('#chips-industries .chip[data-code="C391"]')).to_contain_text(
        "计算机制造"
    )
    await page.click("#save-profile")
    await expect(page.locator("#notice")).to_contain_text("已保存", timeout=LIVE)

    saved = await profile(api, partner)
    assert saved["coverage"]["regions"] == ["310101", "310118106"]
    assert saved["coverage"]["industries"] == ["C391"]
    assert saved["coverage"]["scales"] == ["small"]
    assert saved["coverage"]["parks"] == ["xujing-sci-tech-park"]
    assert saved["interests"]["tags_any"] == [partner.tag]  # untouched
    # A reload shows what was saved, by name.
    await page.reload()
    await expect(page.locator('#chips-regions .chip[data-code="310101"]')).to_contain_text(
        "黄浦区", timeout=LIVE
    )

    # A document for 浦东新区 only no longer reaches the partner; one for 黄浦区 does.
    old = event(unique("DOC-OLD-COVER"), partner.tag, title="浏览器测试：旧覆盖范围")
    new = event(unique("DOC-NEW-COVER"), partner.tag, title="浏览器测试：新覆盖范围")
    new["document"]["scope"]["regions"] = ["310101"]
    await publish(api, old)
    await publish(api, new)
    got = await deliveries(api, partner.id, partner.token, 1)
    assert [d["document_id"] for d in got] == [new["document"]["id"]]
    old_trace = await eventually(
        lambda: matched_trace(api, old["document"]["id"]), what="the old-coverage document matched"
    )
    assert partner.id not in {n["partner_id"] for n in old_trace["notifications"]}
    await api.hooks.wait_for(1, path=partner.hook_path, timeout=20)

    await page.click("#refresh")
    card = page.locator(f'.notice-card[data-document-id="{new["document"]["id"]}"]')
    await expect(card).to_be_visible(timeout=LIVE)
    await expect(card).to_contain_text("浏览器测试：新覆盖范围")
    await expect(card.locator(".status").first).to_have_text("已送达", timeout=LIVE)
    await expect(page.locator(".notice-card", has_text="浏览器测试：旧覆盖范围")).to_have_count(0)
    assert desktop.errors() == []
    assert await desktop.csp_violations() == []


async def test_a_profile_error_is_shown_next_to_its_field(
    api: ApiUnderTest, partner: PartnerUnderTest, desktop: Tab
) -> None:
    page = desktop.page
    await sign_in(desktop, partner)
    await page.fill("#other-parks", "x" * 150)  # longer than a park id may be
    await page.click('[data-add-other="parks"]')
    await page.click("#save-profile")
    error = page.locator('[data-error-for="coverage.parks"]')
    await expect(error).to_be_visible(timeout=LIVE)
    await expect(error).to_contain_text("coverage.parks[0]")
    await expect(page.locator("#chips-parks .chip.bad")).to_have_count(1)
    await expect(page.locator("#problem")).to_contain_text("没有保存")
    assert (await profile(api, partner))["coverage"]["parks"] == []

    # Fixed, it saves, and the error goes.
    await page.locator("#chips-parks .chip").get_by_role("button").click()
    await page.fill("#f-name", "浏览器测试园区（改名）")
    await page.click("#save-profile")
    await expect(page.locator("#notice")).to_contain_text("已保存", timeout=LIVE)
    await expect(error).to_be_hidden()
    assert (await profile(api, partner))["name"] == "浏览器测试园区（改名）"
    assert desktop.errors(allowed=INVALID) == []
    assert await desktop.csp_violations() == []


# ------------------------------------------------------------------ channels


async def test_the_partner_adds_tests_rotates_and_removes_channels(
    api: ApiUnderTest, partner: PartnerUnderTest, phone: Tab
) -> None:
    page = phone.page
    asked = accept_dialogs(page)
    await sign_in(phone, partner)
    channels = page.locator("#channel-list")
    await expect(channels.locator(".channel")).to_have_count(1)

    # A webhook whose secret the relay makes: shown once, then it verifies the test notice.
    path = f"/api-hooks/{unique('page-hook')}"
    await page.locator("#add-channel summary").click()
    await page.select_option("#c-type", "webhook")
    await page.fill("#c-url", "ftp://not-a-webhook.example.org/")
    await page.click("#add-channel-submit")
    url_error = page.locator('#channel-form [data-error-for="url"]')
    await expect(url_error).to_be_visible(timeout=LIVE)
    await page.fill("#c-url", api.hooks.url_for(path))
    await page.fill("#c-id", "office-system")
    await page.click("#add-channel-submit")
    card = channels.locator('[data-channel-id="office-system"]')
    await expect(card).to_be_visible(timeout=LIVE)
    secret_field = card.locator(".secret-field")
    secret = await secret_field.input_value()
    assert secret.startswith("whsec_")
    api.hooks.secrets[path] = [secret]
    await card.get_by_role("button", name="发送测试").click()
    await expect(card.locator(".result")).to_contain_text("测试消息已送达", timeout=LIVE)
    await expect(card.locator(".result")).to_contain_text("HTTP 200")
    [received] = await api.hooks.wait_for(1, path=path)
    assert received.payload is not None

    # A new secret, shown once; the receiver that knows only the new one verifies the next test.
    await card.get_by_role("button", name="更换签名密钥").click()
    await expect(card.locator(".secret-field")).not_to_have_value(secret, timeout=LIVE)
    rotated = await card.locator(".secret-field").input_value()
    assert rotated.startswith("whsec_") and rotated != secret
    await expect(card).to_contain_text("旧密钥在")
    api.hooks.secrets[path] = [rotated]
    await card.get_by_role("button", name="发送测试").click()
    await expect(card.locator(".result")).to_contain_text("测试消息已送达", timeout=LIVE)
    await api.hooks.wait_for(2, path=path)
    assert any("更换" in a for a in asked)

    # Paused by the partner, and back.
    await card.get_by_role("button", name="停用").click()
    await expect(card.locator(".state")).to_contain_text("已停用", timeout=LIVE)
    [office] = [c for c in (await profile(api, partner))["channels"] if c["id"] == "office-system"]
    assert office["disabled"] is True
    await card.get_by_role("button", name="重新启用").click()
    await expect(card.locator(".state")).to_have_text("已启用", timeout=LIVE)
    [office] = [c for c in (await profile(api, partner))["channels"] if c["id"] == "office-system"]
    assert office["disabled"] is False

    # A 钉钉 robot with its 加签 secret and keyword; the stack's sink checks both.
    bots = api.relay.stack.bots
    assert bots is not None
    token = unique("ding").replace("-", "")
    ding_secret = "SEC" + unique("s").replace("-", "") * 4
    await page.locator("#add-channel summary").click()
    await page.select_option("#c-type", "dingtalk")
    await expect(page.locator("#c-secret")).to_be_visible()
    await page.fill("#c-url", f"https://oapi.dingtalk.com/robot/send?access_token={token}")
    await page.fill("#c-secret", ding_secret)
    await page.fill("#c-keyword", "政策")
    await page.click("#add-channel-submit")
    robot = channels.locator(".channel", has_text="钉钉群机器人")
    await expect(robot).to_be_visible(timeout=LIVE)
    await expect(robot).to_contain_text("关键词：政策")
    await expect(robot).to_contain_text("已开启签名")
    text = await channels.inner_text()
    assert token not in text and ding_secret not in text  # masked, never echoed
    await robot.get_by_role("button", name="发送测试").click()
    await expect(robot.locator(".result")).to_contain_text("测试消息已送达", timeout=LIVE)
    [message] = await bots.wait_for(1, platform="dingtalk", token=token)
    assert message.verified is True

    # Removed, after a confirmation.
    await robot.get_by_role("button", name="删除").click()
    await expect(robot).to_have_count(0, timeout=LIVE)
    assert any("删除" in a and "钉钉" in a for a in asked)
    types = [c["type"] for c in (await profile(api, partner))["channels"]]
    assert sorted(types) == ["webhook", "webhook"]
    await fits(phone, "partner-channels")
    assert phone.errors(allowed=INVALID) == []
    assert await phone.csp_violations() == []


# ------------------------------------------------------------------ deliveries


async def test_the_partner_acknowledges_with_a_count_and_note_and_sees_only_its_own(
    api: ApiUnderTest, partner: PartnerUnderTest, phone: Tab
) -> None:
    other = await new_partner(api)
    # A second channel that refuses: its delivery fails, and the page says why.
    refusing, channel = hook(api, unique("refusing"))
    if not isinstance(api.hooks.behaviour, dict):
        api.hooks.behaviour = {}
    api.hooks.behaviour[refusing] = respond(400, body="no thanks")
    r = await api.http.post(
        f"/api/v1/partners/{partner.id}/channels",
        json={**channel, "id": "refusing"},
        headers=bearer(partner.token),
    )
    assert r.status_code == 201, r.text
    mine = event(unique("DOC-MINE"), partner.tag, title="浏览器测试：本单位的政策")
    theirs = event(unique("DOC-THEIRS"), other.tag, title="浏览器测试：别人的政策")
    await publish(api, mine)
    await publish(api, theirs)
    await deliveries(api, partner.id, partner.token, 2)
    await deliveries(api, other.id, other.token, 1)

    page = phone.page
    await sign_in(phone, partner)
    card = page.locator(f'.notice-card[data-document-id="{mine["document"]["id"]}"]')
    await expect(card).to_be_visible(timeout=LIVE)
    good = card.locator(".delivery", has_not_text="refusing")
    await expect(good.locator(".status")).to_have_text("已送达")
    await expect(good.locator(".attempts")).to_contain_text("已尝试 1 次")
    bad = card.locator(".delivery", has_text="refusing")
    await expect(bad.locator(".status")).to_have_text("未送达")
    await expect(bad.locator(".attempts")).to_contain_text("已尝试 1 次")
    await expect(bad.locator(".attempts")).to_contain_text("[400]")
    await expect(card).to_contain_text("尚未确认转发")
    await expect(page.locator(".notice-card", has_text="浏览器测试：别人的政策")).to_have_count(0)
    assert "别人的政策" not in await page.locator("body").inner_text()

    await card.locator(".ack-details summary").click()
    await card.get_by_label("转发给多少家企业").fill("-3")
    await card.get_by_role("button", name="确认已转发").click()
    await expect(card.locator(".field-error")).to_contain_text("整数")
    await card.get_by_label("转发给多少家企业").fill("12")
    await card.get_by_label("备注（可选）").fill("已转发至园区企业微信群，另电话通知 3 家")
    await card.get_by_role("button", name="确认已转发").click()
    await expect(page.locator("#notice")).to_contain_text("转发给 12 家企业", timeout=LIVE)
    card = page.locator(f'.notice-card[data-document-id="{mine["document"]["id"]}"]')
    await expect(card.locator(".acked")).to_contain_text("转发给 12 家企业", timeout=LIVE)
    await expect(card.locator(".note")).to_contain_text("另电话通知 3 家")

    # The operator's trace holds the count and the note.
    t = await trace(api, mine["document"]["id"])
    [n] = [n for n in t["notifications"] if n["partner_id"] == partner.id]
    assert n["acknowledgement"]["forwarded_to"] == 12
    assert n["acknowledgement"]["note"] == "已转发至园区企业微信群，另电话通知 3 家"
    assert t["totals"]["enterprises_reached"] == 12
    assert phone.errors() == []
    assert await phone.csp_violations() == []


# ------------------------------------------------------------------ questions


async def answer(api: ApiUnderTest, question_id: str, text: str, *, publish: bool) -> None:
    r = await api.http.post(
        f"/api/v1/questions/{question_id}/answer",
        json={"answer": text, "publish": publish},
        headers=api.op,
    )
    assert r.status_code == 200, r.text


async def test_the_partner_asks_a_question_and_reads_the_answers_and_the_faq(
    api: ApiUnderTest, partner: PartnerUnderTest, desktop: Tab
) -> None:
    # Another partner receives the same document and asks too: only its published answer,
    # without who asked, may reach this partner's page.
    other = unique("p-page-other")
    other_token = await create_partner(api, other, partner.tag, [hook(api, other)[1]])
    ev = event(unique("DOC-ASK"), partner.tag, title="浏览器测试：提问的政策")
    doc_id = ev["document"]["id"]
    await publish(api, ev)
    await deliveries(api, partner.id, partner.token, 1)
    [theirs] = await deliveries(api, other, other_token, 1)
    asked = []
    for text in ("申报材料可以线上提交吗？", "别人的私下问题"):
        r = await api.http.post(
            f"/api/v1/deliveries/{theirs['delivery_id']}/questions",
            json={"question": text, "asker": "别家企业"},
            headers=bearer(other_token),
        )
        assert r.status_code == 201, r.text
        asked.append(r.json()["id"])
    await answer(api, asked[0], "可以，通过一网通办提交。", publish=True)
    await answer(api, asked[1], "只答复提问的协会。", publish=False)

    page = desktop.page
    await sign_in(desktop, partner)
    card = page.locator(f'.notice-card[data-document-id="{doc_id}"]')
    await card.locator(".questions summary").click()
    await expect(card.locator(".own-questions, .questions .empty").first).to_be_visible(
        timeout=LIVE
    )
    await expect(card.locator(".questions")).to_contain_text("还没有提问")
    faq = card.locator(".faq")
    await expect(faq).to_contain_text("申报材料可以线上提交吗？")
    await expect(faq).to_contain_text("可以，通过一网通办提交。")
    await expect(card.locator(".questions")).not_to_contain_text("别人的私下问题")
    await expect(card.locator(".questions")).not_to_contain_text("别家企业")

    await card.get_by_label("问题").fill("小微企业如何证明规模？")
    await card.get_by_label("提问企业或联系人（可选）").fill("园区内某科技公司")
    await card.get_by_role("button", name="提交问题").click()
    await expect(page.locator("#notice")).to_contain_text("问题已提交", timeout=LIVE)
    mine = card.locator(".own-questions .qa")
    await expect(mine).to_have_count(1, timeout=LIVE)
    await expect(mine).to_contain_text("小微企业如何证明规模？")
    await expect(mine).to_contain_text("园区内某科技公司")
    await expect(mine).to_contain_text("待起草单位答复")
    await expect(card.locator(".questions summary")).to_contain_text("我方已问 1 个，已答复 0 个")

    # The operator sees it, from this partner, on this document; answers and publishes it.
    r = await api.http.get(f"/api/v1/documents/{doc_id}/questions", headers=api.op)
    assert r.status_code == 200, r.text
    [q] = [q for q in r.json()["items"] if q["question"] == "小微企业如何证明规模？"]
    assert q["partner_id"] == partner.id and q["asker"] == "园区内某科技公司"
    await answer(api, q["id"], "以上一年度报表为准。", publish=True)

    # Opened again, the page reads the answer.
    await card.locator(".questions summary").click()
    await card.locator(".questions summary").click()
    await expect(mine).to_contain_text("以上一年度报表为准。", timeout=LIVE)
    await expect(mine).to_contain_text("已公开为常见问题")
    await expect(faq.locator(".qa")).to_have_count(1)  # its own is under its questions
    await page.click("#refresh")
    await expect(card.locator(".questions summary")).to_contain_text(
        "我方已问 1 个，已答复 1 个", timeout=LIVE
    )
    assert desktop.errors() == []
    assert await desktop.csp_violations() == []


# ------------------------------------------------------------------ signing in


async def test_a_wrong_token_or_the_operators_gets_a_clear_message_and_no_data(
    api: ApiUnderTest, partner: PartnerUnderTest, desktop: Tab
) -> None:
    page = desktop.page
    await page.fill("#token", "prt_not-a-real-token")
    await page.click("#signin-form button[type=submit]")
    problem = page.locator("#problem")
    await expect(problem).to_contain_text("令牌无效", timeout=LIVE)
    await expect(page.locator("#app")).to_be_hidden()
    assert await page.evaluate("sessionStorage.getItem('relay.partnerToken')") is None
    assert "prt_not-a-real-token" not in page.url

    await page.fill("#token", api.operator_token)
    await page.click("#signin-form button[type=submit]")
    await expect(problem).to_contain_text("运营方", timeout=LIVE)
    await expect(page.locator("#app")).to_be_hidden()
    assert await page.evaluate("sessionStorage.getItem('relay.partnerToken')") is None

    await sign_in(desktop, partner)
    await expect(problem).to_be_hidden()
    assert desktop.errors(allowed=REFUSED) == []
    assert await desktop.csp_violations() == []


async def test_the_partner_changes_its_token_and_the_old_one_stops_working(
    api: ApiUnderTest, partner: PartnerUnderTest, desktop: Tab
) -> None:
    page = desktop.page
    asked = accept_dialogs(page)
    await sign_in(desktop, partner)
    await page.click("#rotate-token")
    field = page.locator("#new-token .secret-field")
    await expect(field).to_be_visible(timeout=LIVE)
    new = await field.input_value()
    assert new.startswith("prt_") and new != partner.token
    assert any("旧令牌立即失效" in a for a in asked)
    assert await page.evaluate("sessionStorage.getItem('relay.partnerToken')") == new
    assert new not in page.url
    r = await api.http.get("/api/v1/me", headers=bearer(partner.token))
    assert r.status_code == 401
    r = await api.http.get("/api/v1/me", headers=bearer(new))
    assert r.json()["partner_id"] == partner.id
    # The page goes on with the new token.
    await page.click("#refresh")
    await expect(page.locator("#notice")).to_contain_text("已刷新", timeout=LIVE)
    await page.reload()
    await expect(page.locator("#app")).to_be_visible(timeout=LIVE)
    await expect(page.locator("#new-token")).to_be_hidden()  # shown once
    assert desktop.errors() == []


# ------------------------------------------------------------------ both sizes


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=lambda s: s.name)
async def test_the_page_fits_the_screen_at_both_sizes(
    api: ApiUnderTest, browser: Browser, partner: PartnerUnderTest, size: Size
) -> None:
    title = "关于支持集成电路企业高质量发展的若干措施（试行）"
    ev = event(unique("DOC-SHOT"), partner.tag, title=title)
    await publish(api, ev)
    [d] = await deliveries(api, partner.id, partner.token, 1)
    r = await api.http.post(
        f"/api/v1/deliveries/{d['delivery_id']}/questions",
        json={
            "question": "注册在徐泾镇、经营在华新镇的企业可以申报吗？",
            "asker": "某集成电路设计公司",
        },
        headers=bearer(partner.token),
    )
    assert r.status_code == 201, r.text
    await answer(api, r.json()["id"], "以注册地为准：注册在徐泾镇即可申报。", publish=True)
    async with open_tab(browser, size) as tab:
        page = tab.page
        await page.goto(f"{api.relay.stack.web_url}/partner")
        await fits(tab, "partner-signin")
        await sign_in(tab, partner)
        card = page.locator(f'.notice-card[data-document-id="{ev["document"]["id"]}"]')
        await expect(card.locator(".status")).to_have_text("已送达", timeout=LIVE)
        await card.locator(".ack-details summary").click()
        await card.locator(".questions summary").click()
        await expect(card.locator(".own-questions")).to_contain_text("以注册地为准", timeout=LIVE)
        await pick(page, "industries", "\u3000计算机制造（C391）")
        await pick(page, "regions", "徐泾镇（310118106）")
        await page.locator("#add-channel summary").click()
        await fits(tab, "partner")
        assert tab.errors() == []
        assert await tab.csp_violations() == []
