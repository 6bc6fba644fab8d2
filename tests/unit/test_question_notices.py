"""What notices say about questions: the signed "有疑问？" link in every notice, and the
document's published answers (常见问题解答) in emails, webhooks and group robots."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from relay.core import chat, digest, rendering
from relay.core.chatbots import Platform
from relay.core.matching.explain import explain
from relay.core.models.questions import FaqEntry
from relay.core.tokens import question_token_ok
from tests.unit.factories import make_notification
from tests.unit.test_chat import BASE_URL, LINK_SECRET, PLATFORMS, bot, links, text_of

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
FAQ = [
    FaqEntry(question="小微企业如何申请？", answer="登录“一网通办”提交。", answered_at=NOW),
    FaqEntry(question="截止日期？\n是否可延期？", answer="12月31日，不延期。", answered_at=NOW),
]


def signed(url: str, delivery_id: str) -> bool:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.path == f"/api/v1/deliveries/{delivery_id}/questions"
    expires = int(query["e"][0])
    # A year from the notice, give or take a day.
    assert abs(expires - NOW.timestamp() - rendering.QUESTION_LINK_DAYS * 86400) < 86400
    return question_token_ok(LINK_SECRET, delivery_id, expires, query["t"][0])


def test_an_email_carries_the_question_link_and_the_faq_in_both_parts() -> None:
    n, d, channel = make_notification()
    why = explain(n.match, n.document, n.partner_kind)
    text, html = rendering.render_email_bodies(
        n, d, why=why, base_url=BASE_URL, now=NOW, link_secret=LINK_SECRET, faq=FAQ
    )
    url = rendering.question_url(BASE_URL, d.delivery_id, now=NOW, link_secret=LINK_SECRET)
    assert signed(url, d.delivery_id)
    for body in (text, html.replace("&amp;", "&")):
        assert "有疑问？" in body and url in body
        assert "小微企业如何申请？" in body and "12月31日，不延期。" in body
    assert "\n常见问题解答\n" in text and "常见问题解答</h2>" in html
    assert "问：小微企业如何申请？\n答：登录“一网通办”提交。" in text
    # The forwarding block lets the members ask too.
    forward = text.split("可直接复制以下内容")[1]
    assert f"有疑问？请在此提问，由制文单位答复：{url}" in forward


def test_without_published_answers_an_email_has_no_faq_heading() -> None:
    n, d, _ = make_notification()
    text, html = rendering.render_email_bodies(
        n, d, why=[], base_url=BASE_URL, now=NOW, link_secret=LINK_SECRET
    )
    assert "\n常见问题解答\n" not in text and "常见问题解答</h2>" not in html
    assert "/questions?e=" in text


def test_a_webhook_carries_the_question_url_and_the_faq() -> None:
    n, d, _ = make_notification()
    body = json.loads(
        rendering.webhook_body(
            n, d, why=[], base_url=BASE_URL, now=NOW, link_secret=LINK_SECRET, faq=FAQ
        )
    )
    data = body["data"]
    assert signed(data["question_url"], d.delivery_id)
    assert [f["question"] for f in data["faq"]] == [f.question for f in FAQ]
    assert data["faq"][0].keys() == {"question", "answer", "answered_at"}
    assert data["question_url"] in data["forward_text"]
    empty = json.loads(rendering.webhook_body(n, d, why=[], base_url=BASE_URL, now=NOW))
    assert empty["data"]["faq"] == []
    # Unsigned (no link secret): the link needs an API token, like the acknowledgement's.
    assert empty["data"]["question_url"].endswith(f"/deliveries/{d.delivery_id}/questions")


@pytest.mark.parametrize("kind", PLATFORMS)
def test_a_robot_message_carries_the_faq_and_the_question_link(kind: str) -> None:
    n, d, _ = make_notification()
    channel = bot(kind)
    d = d.model_copy(update={"channel_id": channel.id, "channel_type": kind})
    body = chat.chat_message(
        channel, n, d, why=[], base_url=BASE_URL, now=NOW, link_secret=LINK_SECRET, faq=FAQ
    )
    seen = text_of(body)
    assert "常见问题解答" in seen and "问：小微企业如何申请？" in seen
    assert any(signed(u, d.delivery_id) for u in links(body) if "/questions" in u)


@pytest.mark.parametrize("kind", PLATFORMS)
def test_a_long_faq_is_cut_first_and_the_links_stay(kind: str) -> None:
    n, d, _ = make_notification()
    channel = bot(kind)
    d = d.model_copy(update={"channel_id": channel.id, "channel_type": kind})
    long = [
        FaqEntry(question=f"问题{i}" * 50, answer="答" * 5000, answered_at=NOW) for i in range(20)
    ]
    body = chat.chat_message(
        channel, n, d, why=[], base_url=BASE_URL, now=NOW, link_secret=LINK_SECRET, faq=long
    )
    assert chat.within_limits(Platform(kind), body)
    found = links(body)
    assert any("/questions?e=" in u for u in found) and any("/ack?t=" in u for u in found)
    # The policy itself was kept: the summary is still there in full.
    assert n.document.summary in text_of(body)


def test_a_digest_lists_each_notice_with_its_own_question_link() -> None:
    n, d, channel = make_notification()
    held = digest.HeldDigest(
        partner_id=n.partner_id,
        channel_id=channel.id,
        channel_type="email",
        day=NOW.date(),
        partition=0,
        due=NOW,
        items={d.delivery_id: n},
    )
    body = json.loads(
        digest.webhook_body(held, base_url=BASE_URL, now=NOW, link_secret=LINK_SECRET)
    )
    (item,) = body["data"]["notices"]
    assert signed(item["question_url"], d.delivery_id)
    msg = digest.build_email(
        held,
        channel,
        mail_from="r@example.org",
        base_url=BASE_URL,
        now=NOW,
        link_secret=LINK_SECRET,
    )
    text = msg.get_body(("plain",))
    assert text is not None and f"有疑问？{item['question_url']}" in str(text.get_content())


@pytest.mark.parametrize("kind", PLATFORMS)
def test_a_robot_digest_lists_each_notice_with_its_own_question_link(kind: str) -> None:
    n, d, _ = make_notification()
    channel = bot(kind)
    held = digest.HeldDigest(
        partner_id=n.partner_id,
        channel_id=channel.id,
        channel_type=kind,
        day=NOW.date(),
        partition=0,
        due=NOW,
        items={d.delivery_id: n},
    )
    body = digest.chat_body(held, channel, base_url=BASE_URL, link_secret=LINK_SECRET, now=NOW)
    assert any(signed(u, d.delivery_id) for u in links(body) if "/questions" in u)
    assert chat.within_limits(Platform(kind), body)
