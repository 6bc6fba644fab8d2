"""The 有疑问？ link of a real email (aiosmtpd), opened in Debian's Chromium at desktop and
phone sizes: the form, the question it sends, and what an altered link shows."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from playwright.async_api import Browser

from tests.helpers.api import create_partner, deliveries, event, eventually, publish, unique
from tests.helpers.browser import SIZES, check_page, open_tab
from tests.integration.conftest import ApiUnderTest
from tests.integration.test_questions import email_text, questions_of

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_the_question_link_from_a_real_email_asks_in_the_browser(
    api: ApiUnderTest, browser: Browser
) -> None:
    pid, tag = unique("p-q-web"), unique("tag")
    to = f"{pid}@example.org"
    token = await create_partner(api, pid, tag, [{"type": "email", "to": [to]}])
    ev = event(unique("DOC-Q-WEB"), tag)
    doc_id = ev["document"]["id"]
    await publish(api, ev)
    await deliveries(api, pid, token, 1)

    async def the_email() -> str | None:
        return email_text(api, to, "[政策推送]")

    text = await eventually(the_email, what="the notice's email")
    found = re.search(r"https?://\S+/questions\?e=\d+&t=[0-9a-f]+", text)
    assert found is not None, text
    url = found.group()

    for n, size in enumerate(SIZES, 1):
        async with open_tab(browser, size) as tab:
            await tab.page.goto(url)
            await tab.page.get_by_role("heading", level=1).wait_for()
            assert ev["document"]["title"] in await tab.page.inner_text("h1")
            if n == 2:  # the first question's published answer is on the page now
                faq = await tab.page.inner_text("main")
                assert (
                    "常见问题解答" in faq and "问：第1个问题" in faq and "答：见原文附件。" in faq
                )
            await check_page(tab, "question-form")
            # Opening the page recorded nothing.
            assert len(await questions_of(api, doc_id, api.op)) == n - 1

            await tab.page.get_by_label("您的问题").fill(f"第{n}个问题：申报材料有哪些？")
            await tab.page.get_by_label("提问单位或联系人（可选）").fill("丙公司")
            await tab.page.get_by_role("button", name="提交问题").click()
            await tab.page.get_by_text("问题已提交，谢谢").wait_for()
            assert f"第{n}个问题：申报材料有哪些？" in await tab.page.inner_text("main")
            await check_page(tab, "question-asked")
            assert tab.errors() == [] and await tab.csp_violations() == []
        if n == 1:
            (first,) = await questions_of(api, doc_id, api.op)
            r = await api.http.post(
                f"/api/v1/questions/{first['id']}/answer",
                json={"answer": "见原文附件。", "publish": True},
                headers=api.op,
            )
            assert r.status_code == 200

    asked = await questions_of(api, doc_id, api.op)
    assert [q["question"] for q in asked] == [
        "第1个问题：申报材料有哪些？",
        "第2个问题：申报材料有哪些？",
    ]
    assert all(q["via"] == "link" and q["asker"] == "丙公司" for q in asked)
    assert all(q["partner_id"] == pid for q in asked)

    # An altered link opens a page that says so, and records nothing.
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    altered = parts._replace(query=urlencode({**query, "t": "0" * 32})).geturl()
    for size in SIZES:
        async with open_tab(browser, size) as tab:
            response = await tab.page.goto(altered)
            assert response is not None and response.status == 401
            assert "提问链接无效" in await tab.page.inner_text("main")
            assert await tab.page.locator("form").count() == 0
            await check_page(tab, "question-link-invalid")
    assert len(await questions_of(api, doc_id, api.op)) == 2
