"""The operator's workbench in a real browser: Debian's Chromium, driven by Playwright.

The page is opened on the session's worker and signed in with the operator token. A town
office's day: it publishes a document from the form (after the API's error for a bad code
is shown next to its field), watches the funnel move without a reload, opens the document's
page (each partner's status, the acknowledgement's reach and note), replays a dead letter
there and from the workbench; a revision's row counts its own version only. The plain part
speaks no Kafka; the technical figures wait in a closed section. Nothing is logged as an
error or blocked by the pages' Content-Security-Policy, and no page scrolls sideways at
390 px (screenshots of each page at both sizes are kept under test-artifacts/screenshots).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Dialog, Page, expect

from relay.adapters import kafka
from relay.core import topics
from relay.core.models import DeliveryIntent
from tests.helpers.api import (
    bearer,
    create_partner,
    deliveries,
    event,
    eventually,
    hook,
    publish,
    unique,
)
from tests.helpers.browser import DESKTOP, PHONE, Size, Tab, check_page, open_tab
from tests.helpers.receivers import accept, respond
from tests.integration.conftest import ApiUnderTest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

LIVE = 30_000  # ms: the page polls every 2 s; a delivery takes well under a second
#: Words of the stream that an openness office should not have to read.
KAFKA_WORDS = ("主题", "分区", "worker", "死信", "积压", "Kafka", "topic", "offset", "relay.")


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


def behaviours(api: ApiUnderTest) -> dict[str, Any]:
    if not isinstance(api.hooks.behaviour, dict):
        api.hooks.behaviour = {}
    found: dict[str, Any] = api.hooks.behaviour
    return found


async def confirming(page: Page) -> list[str]:
    """Accept the next confirmation dialog; what it asked."""
    asked: list[str] = []

    async def confirm(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.once("dialog", confirm)
    return asked


async def plain_text(page: Page) -> str:
    """What the office reads without opening the technical section."""
    parts = [await page.locator(s).inner_text() for s in ("header", "#overview")]
    for panel in await page.locator("#board > section.panel").all():
        parts.append(await panel.inner_text())
    return "\n".join(parts)


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
    behaviours(api)[bad_path] = respond(400, body="no thanks")
    await create_partner(api, bad, tag, [bad_hook])
    ev = event(unique("DOC-LIVE"), tag, title="浏览器测试：实时漏斗")
    doc_id = ev["document"]["id"]
    await publish(api, ev)

    row = page.locator(f'#documents-body tr[data-document-id="{doc_id}"]')
    await expect(row).to_be_visible(timeout=LIVE)
    await expect(row).to_contain_text("浏览器测试：实时漏斗")
    await expect(row.locator('[data-field="delivered"]')).to_have_text("1", timeout=LIVE)
    await expect(row.locator('[data-field="failed"]')).to_have_text("1", timeout=LIVE)
    await expect(row.locator('[data-field="partners_matched"]')).to_have_text("2")
    await expect(row.locator('[data-field="acknowledged"]')).to_have_text("0")
    assert count(await page.locator("#ov-delivered").inner_text()) >= 1
    assert count(await page.locator("#ov-failed").inner_text()) >= 1
    await expect(page.locator("#documents-empty")).to_be_hidden()

    # Plain words first; the stream's figures wait, closed, in a section of their own.
    text = await plain_text(page)
    for word in ("已推送", "已送达", "已确认", "触达企业", "待处理问题"):
        assert word in text
    assert [w for w in KAFKA_WORDS if w in text] == []
    assert await page.locator("#tech").get_attribute("open") is None
    await expect(page.locator("#lag-topics")).to_be_hidden()
    await page.locator("#tech summary").click()
    await expect(page.locator("#lag-topics tr").first).to_be_visible(timeout=LIVE)
    await expect(page.locator("#tech")).to_contain_text("消费积压")
    assert count(await page.locator("#dead-letters").inner_text()) >= 1

    failure = page.locator("#failures-body tr", has_text=bad)
    await expect(failure).to_be_visible(timeout=LIVE)
    await expect(failure).to_contain_text("浏览器测试：实时漏斗")
    await expect(failure).to_contain_text("[400]")
    await expect(failure).to_contain_text("失败")

    # Send the document's failure again from the page, once the receiver takes it.
    behaviours(api)[bad_path] = accept
    await eventually(
        lambda: dead_letter_written(api, bad), timeout=20, what="the dead letter of the bad channel"
    )
    asked = await confirming(page)
    await row.get_by_role("button", name="重新投递").click()
    await expect(page.locator("#notice")).to_contain_text("已安排重新投递 1 条推送", timeout=LIVE)
    assert asked and "重新投递" in asked[0]
    await expect(row.locator('[data-field="delivered"]')).to_have_text("2", timeout=LIVE)
    await expect(row.locator('[data-field="failed"]')).to_have_text("0", timeout=LIVE)
    await expect(row.get_by_role("button", name="重新投递")).to_have_count(0)
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


# ------------------------------------------------------------------ publishing from the form

C39_CHIP = "C39 计算机、通信和其他电子设备制造业×"
UNPROCESSABLE = re.compile(r"the server responded with a status of 422")


async def pick(page: Page, field: str, text: str) -> None:
    """Type into a scope picker and press Enter, as an operator would."""
    picker = page.locator(f'.picker[data-path="{field}"]')
    await picker.locator("input").fill(text)
    await picker.locator("input").press("Enter")


async def fill_form(page: Page, doc_id: str, title: str, tag: str) -> None:
    await page.locator("#publish summary").click()
    # The catalogues arrive when the form opens: the pickers list names, not only codes.
    await expect(page.locator('#dl-regions option[value="310115 浦东新区"]')).to_have_count(
        1, timeout=LIVE
    )
    await expect(page.locator("#f-title")).to_have_attribute("aria-required", "true")
    await expect(page.locator('label[for="f-title"] .req')).to_have_text("*")
    await page.fill("#f-id", doc_id)
    await page.fill("#f-title", title)
    await page.fill("#f-doc-number", "徐府〔2026〕1号")
    await page.fill("#f-issuer", "上海市青浦区徐泾镇人民政府")
    await page.fill("#f-published-on", "2026-01-05")
    await page.fill("#f-url", f"https://example.gov.cn/xxgk/{doc_id}.html")
    await page.fill("#f-summary", "浏览器测试：从工作台发布。")
    await page.get_by_label("行业协会").check()
    await pick(page, "document.scope.regions", "浦东新区")  # by its name
    await pick(page, "document.tags", tag)  # a tag outside the sample vocabulary


async def test_the_operator_publishes_from_the_form_and_follows_it_to_its_page(
    api: ApiUnderTest, browser: Browser
) -> None:
    tag = unique("tag")
    ok, bad = unique("p-form-ok"), unique("p-form-bad")
    ok_token = await create_partner(api, ok, tag, [hook(api, ok)[1]])
    bad_path, bad_hook = hook(api, bad)
    behaviours(api)[bad_path] = respond(400, body="no thanks")
    await create_partner(api, bad, tag, [bad_hook])
    doc_id = unique("DOC-FORM")
    title = "浏览器测试：从表单发布的政策"

    async with open_tab(browser, DESKTOP) as tab:
        page = tab.page
        await page.goto(f"{api.relay.stack.web_url}/")
        await sign_in(tab, api.operator_token)
        await expect(page.locator("#board")).to_be_visible(timeout=LIVE)
        await fill_form(page, doc_id, title, tag)
        chips = page.locator('.picker[data-path="document.scope.regions"] .chip')
        await expect(chips).to_have_text(["310115 浦东新区×"])

        # A code no catalogue knows: the API's 422 is shown under the industries picker.
        await pick(page, "document.scope.industries", "Z99")
        await page.click("#publish-submit")
        industries = page.locator('.field[data-path="document.scope.industries"]')
        error = industries.locator(".field-error")
        await expect(error).to_be_visible(timeout=LIVE)
        await expect(error).to_contain_text("document.scope.industries[0]")
        await expect(industries).to_have_class(re.compile("invalid"))
        await check_page(tab, "dashboard-publish-bad-code")
        r = await api.http.get(f"/api/v1/documents/{doc_id}/trace", headers=api.op)
        assert r.status_code == 404  # nothing was published

        # Take the bad code out, pick a real industry by its name, and publish.
        await industries.get_by_role("button", name=re.compile("移除 Z99")).click()
        await pick(page, "document.scope.industries", "计算机、通信和其他电子设备制造业")
        await expect(industries.locator(".chip")).to_have_text([C39_CHIP])
        await page.click("#publish-submit")
        await expect(page.locator("#notice")).to_contain_text("已提交发布", timeout=LIVE)
        await expect(error).to_have_count(0)
        assert await page.locator("#publish").get_attribute("open") is None

        # The funnel moves without a reload.
        row = page.locator(f'#documents-body tr[data-document-id="{doc_id}"]')
        await expect(row).to_contain_text(title, timeout=LIVE)
        await expect(row.locator('[data-field="delivered"]')).to_have_text("1", timeout=LIVE)
        await expect(row.locator('[data-field="failed"]')).to_have_text("1", timeout=LIVE)

        trace = (await api.http.get(f"/api/v1/documents/{doc_id}/trace", headers=api.op)).json()
        assert trace["title"] == title and trace["versions"] == [1]

        # The partner acknowledges, with its reach and a note.
        (delivery,) = await deliveries(api, ok, ok_token, 1)
        r = await api.http.post(
            f"/api/v1/deliveries/{delivery['delivery_id']}/ack",
            json={"forwarded_to": 25, "note": "已转发会员群"},
            headers=bearer(ok_token),
        )
        assert r.status_code == 200, r.text
        await expect(row.locator('[data-field="acknowledged"]')).to_have_text("1", timeout=LIVE)
        await expect(row.locator('[data-field="enterprises_reached"]')).to_have_text("25")

        # Open the document's page from its row.
        await row.get_by_role("link", name="详情").click()
        await expect(page).to_have_url(re.compile(f"/documents/{doc_id}$"))
        await expect(page.locator("#doc-title")).to_have_text(title, timeout=LIVE)
        ok_row = page.locator(f'tr.partner[data-partner-id="{ok}"]')
        bad_row = page.locator(f'tr.partner[data-partner-id="{bad}"]')
        await expect(ok_row).to_have_attribute("data-state", "acknowledged", timeout=LIVE)
        await expect(ok_row).to_contain_text("触达企业 25 家")
        await expect(ok_row).to_contain_text("已转发会员群")
        await expect(bad_row).to_have_attribute("data-state", "failed")
        await expect(bad_row).to_contain_text("[400]")
        version = page.locator('#versions-body tr[data-version="1"]')
        await expect(version.locator('[data-field="acknowledged"]')).to_have_text("1")
        await expect(version.locator('[data-field="enterprises_reached"]')).to_have_text("25")
        await check_page(tab, "document-acknowledged")

        # Replay the failed partner's dead letter from the document's page.
        behaviours(api)[bad_path] = accept
        await eventually(lambda: dead_letter_written(api, bad), timeout=20, what="dead letter")
        asked = await confirming(page)
        await bad_row.get_by_role("button", name="重新投递").click()
        await expect(page.locator("#notice")).to_contain_text(
            "已安排重新投递 1 条推送", timeout=LIVE
        )
        assert asked
        await expect(bad_row).to_have_attribute("data-state", "delivered", timeout=LIVE)
        await expect(version.locator('[data-field="failed"]')).to_have_text("0", timeout=LIVE)

        # The revision is drafted from the page: the form comes filled from version 1.
        await page.get_by_role("link", name="发布修订").click()
        await expect(page.locator("#publish")).to_have_attribute("open", "", timeout=LIVE)
        await expect(page.locator("#f-version")).to_have_value("2")
        await expect(page.locator("#f-type")).to_have_value("document.revised")
        await expect(page.locator("#f-id")).to_have_value(doc_id)
        await expect(page.locator("#f-title")).to_have_value(title)
        await expect(industries.locator(".chip")).to_have_text([C39_CHIP])
        await expect(page.get_by_label("行业协会")).to_be_checked()
        assert "revise" not in page.url
        await page.fill("#f-title", title + "（修订）")
        await page.fill("#f-changes", "申报截止日期延后一个月。")
        await page.click("#publish-submit")
        await expect(page.locator("#notice")).to_contain_text("第 2 版", timeout=LIVE)

        # It goes to both: its row counts v2 alone; v1's acknowledgement stays v1's.
        await expect(row.locator('[data-field="version"]')).to_have_text("第 2 版", timeout=LIVE)
        await expect(row.locator('[data-field="delivered"]')).to_have_text("2", timeout=LIVE)
        await expect(row.locator('[data-field="partners_matched"]')).to_have_text("2")
        await expect(row.locator('[data-field="acknowledged"]')).to_have_text("0")
        await expect(row.locator('[data-field="enterprises_reached"]')).to_have_text("0")
        await expect(row).to_contain_text("第 1 版：推送 2 个合作方，送达 2，确认 1，触达企业 25")

        await row.get_by_role("link", name="详情").click()
        v2 = page.locator('#versions-body tr[data-version="2"]')
        await expect(v2.locator('[data-field="delivered"]')).to_have_text("2", timeout=LIVE)
        await expect(v2.locator('[data-field="acknowledged"]')).to_have_text("0")
        await expect(v2.locator('[data-field="enterprises_reached"]')).to_have_text("0")
        await expect(version.locator('[data-field="enterprises_reached"]')).to_have_text("25")
        await expect(page.locator('.version-block[data-version="2"] h3')).to_contain_text("修订")
        await check_page(tab, "document-revised")
        # Chromium reports the refused publication itself; nothing else may go wrong.
        assert tab.errors(allowed=UNPROCESSABLE) == []
        assert await tab.csp_violations() == []


# ------------------------------------------------------------------ every page, both sizes


async def show_everything(page: Page) -> None:
    """Open the closed sections, so the screenshot and the measure see them."""
    for section in ("#publish", "#tech"):
        await page.locator(f"{section} summary").click()
        await expect(page.locator(section)).to_have_attribute("open", "")


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=lambda s: s.name)
async def test_every_operator_page_fits_the_screen(
    api: ApiUnderTest, browser: Browser, size: Size
) -> None:
    # A document with a long title, a delivered and a failed partner, so every list has rows.
    tag = unique("tag")
    ok, bad = unique("p-fit-ok"), unique("p-fit-bad")
    await create_partner(api, ok, tag, [hook(api, ok)[1]])
    bad_path, bad_hook = hook(api, bad)
    behaviours(api)[bad_path] = respond(
        400, body="没有这个接收地址：请联系合作方的信息化部门核对推送地址配置" * 2
    )
    await create_partner(api, bad, tag, [bad_hook])
    ev = event(
        unique("DOC-FIT"),
        tag,
        title="关于进一步支持徐泾镇集成电路和人工智能产业高质量发展若干措施的实施细则（试行）",
    )
    doc_id = ev["document"]["id"]
    await publish(api, ev)

    async with open_tab(browser, size) as tab:
        page = tab.page
        await page.goto(f"{api.relay.stack.web_url}/")
        await check_page(tab, "signin")
        await sign_in(tab, api.operator_token)
        row = page.locator(f'#documents-body tr[data-document-id="{doc_id}"]')
        await expect(row.locator('[data-field="failed"]')).to_have_text("1", timeout=LIVE)
        await expect(page.locator("#failures-body tr", has_text=bad)).to_be_visible(timeout=LIVE)
        await check_page(tab, "dashboard")
        await show_everything(page)
        await expect(page.locator("#dl-industries option").first).to_be_attached(timeout=LIVE)
        await check_page(tab, "dashboard-open")
        # An empty form: the API's first complaint, under its field, still on the screen.
        await page.click("#publish-submit")
        missing = page.locator('.field[data-path="document.id"] .field-error')
        await expect(missing).to_contain_text("此项必填", timeout=LIVE)
        await check_page(tab, "dashboard-publish-error")
        if size is PHONE:
            # A table became a list: each value sits beside its label, all on the screen.
            # (Measured in one go: the page redraws the row every two seconds.)
            # A measurement that lands on a row being redrawn is taken again.
            cell = row.locator('[data-field="enterprises_reached"]')

            async def labelled_on_screen() -> list[object] | None:
                got: list[object] = await cell.evaluate(
                    "e => [getComputedStyle(e, '::before').content,"
                    " e.getBoundingClientRect().right]"
                )
                label, right = got
                fits = label == '"触达企业"' and isinstance(right, int | float) and 0 < right <= 390
                return got if fits else None

            await eventually(labelled_on_screen, timeout=10, what="the row's 触达企业, labelled")

        await page.goto(f"{api.relay.stack.web_url}/documents/{doc_id}")
        partner = page.locator(f'tr.partner[data-partner-id="{bad}"]')
        await expect(partner).to_have_attribute("data-state", "failed", timeout=LIVE)
        await check_page(tab, "document")
        assert tab.errors(allowed=UNPROCESSABLE) == []
        assert await tab.csp_violations() == []


# ------------------------------------------------------------------ questions and answers


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=lambda s: s.name)
async def test_the_operator_answers_a_question_and_publishes_it(
    api: ApiUnderTest, browser: Browser, size: Size
) -> None:
    tag = unique("tag")
    pid = unique("p-ask")
    token = await create_partner(api, pid, tag, [hook(api, pid)[1]])
    ev = event(unique("DOC-ASK"), tag, title="浏览器测试：企业提问")
    doc_id = ev["document"]["id"]
    await publish(api, ev)
    (delivery,) = await deliveries(api, pid, token, 1)
    question = "注册在徐泾镇、经营地在华新镇的小微企业能否申请？"
    r = await api.http.post(
        f"/api/v1/deliveries/{delivery['delivery_id']}/questions",
        json={"question": question, "asker": "上海某科技有限公司"},
        headers=bearer(token),
    )
    assert r.status_code == 201, r.text
    qid = r.json()["id"]

    async with open_tab(browser, size) as tab:
        page = tab.page
        await page.goto(f"{api.relay.stack.web_url}/")
        await sign_in(tab, api.operator_token)
        # The workbench counts it among the questions waiting, and on its document's row.
        row = page.locator(f'#documents-body tr[data-document-id="{doc_id}"]')
        await expect(row).to_contain_text("1 个问题待答复", timeout=LIVE)
        assert count(await page.locator("#ov-questions").inner_text()) >= 1

        waiting = page.locator(f'#asked-list li[data-question-id="{qid}"]')
        await expect(waiting).to_contain_text(question)
        await expect(waiting).to_contain_text("浏览器测试：企业提问")
        await check_page(tab, "dashboard-questions")

        # 去答复 opens the document's page at the question, its answer box ready.
        await waiting.get_by_role("link", name="去答复").click()
        asked = page.locator(f'article.question[data-question-id="{qid}"]')
        await expect(asked).to_contain_text(question, timeout=LIVE)
        await expect(asked.locator("textarea")).to_be_focused()
        await expect(asked).to_contain_text("上海某科技有限公司")
        await expect(asked).to_contain_text("待答复")
        await check_page(tab, "document-question")

        # An empty answer is refused where it was typed, and nothing is recorded.
        await asked.get_by_role("button", name="提交答复").click()
        await expect(asked.locator(".field-error")).to_be_visible(timeout=LIVE)
        await expect(asked.locator(".field-error")).to_contain_text("answer")

        answer = "可以。以注册地为准，徐泾镇注册的小微企业均可申请。"
        await asked.get_by_label("答复").fill(answer)
        await asked.get_by_label("公开到常见问题解答").check()
        await asked.get_by_role("button", name="提交答复").click()
        await expect(page.locator("#notice")).to_contain_text("已答复并公开", timeout=LIVE)
        await expect(asked).to_contain_text("已答复 · 已公开", timeout=LIVE)
        await expect(asked).to_contain_text(answer)
        await check_page(tab, "document-answered")

        # The published answer is the document's FAQ, as anyone reads it.
        faq = (await api.http.get(f"/api/v1/documents/{doc_id}/faq")).json()
        assert [(e["question"], e["answer"]) for e in faq["items"]] == [(question, answer)]

        # Back on the workbench the question no longer waits.
        await page.get_by_role("link", name="← 返回工作台").click()
        await expect(row).to_be_visible(timeout=LIVE)
        await expect(row).not_to_contain_text("待答复", timeout=LIVE)
        await expect(waiting).to_have_count(0)
        assert tab.errors(allowed=UNPROCESSABLE) == []
        assert await tab.csp_violations() == []
