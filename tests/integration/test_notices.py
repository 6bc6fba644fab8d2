"""A policy's life as a secretary reads it (issue 13): published, revised, refused when a
revision is stale, repealed — through the whole stack, read back from the email the SMTP
recorder accepted and the signed webhook body the receiver got."""

from __future__ import annotations

import re
import uuid
from datetime import date
from email.message import EmailMessage
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from relay.core.rendering import cn_date
from tests.helpers.receivers import Received
from tests.helpers.waits import until
from tests.integration.conftest import RelayUnderTest, renamed, sample_event

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

ASSOCIATION = "xujing-ic-association"
PARK = "xujing-sci-tech-park"


def mails(relay: RelayUnderTest, partner: str, subject: str) -> list[EmailMessage]:
    return [
        m
        for m in relay.smtp.messages
        if m["Subject"] == subject
        and any(a.addr_spec.endswith(f"@{partner}.example.org") for a in m["To"].addresses)
    ]


def plain_and_html(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content().replace("\r\n", "\n"), html.get_content()


def hook(relay: RelayUnderTest, partner: str, doc_id: str, kind: str) -> Received:
    (found,) = [
        h
        for h in relay.hooks.verified
        if h.path == f"/hooks/{partner}"
        and h.payload["type"] == kind
        and h.payload["data"]["document"]["id"] == doc_id
    ]
    # Verified again from the raw request, as a receiver would.
    Webhook(relay.hooks.secrets[found.path][0]).verify(found.body, found.headers)
    return found


def cn(iso: str) -> str:
    """An ISO date as a notice writes it (2023年8月1日)."""
    return cn_date(date.fromisoformat(iso))


async def test_a_revision_and_a_repeal_read_as_a_secretary_needs(relay: RelayUnderTest) -> None:
    doc_id = f"TEST-LIFE-{uuid.uuid4().hex[:6]}"
    original = renamed(sample_event("02-ic-industry-support.json"), doc_id)
    doc: dict[str, Any] = original["document"]
    doc["interpretation_url"] = None  # the interpretation comes later, with the revision
    doc["index_no"] = "11310118MB2F0123XY/2023-00007"
    doc["disclosure"] = "主动公开"
    doc["contact"] = {"unit": "徐泾镇经济发展办公室", "phone": "021-59761234"}
    revised = renamed(sample_event("05-ic-industry-support-revised.json"), doc_id)
    revised["document"].update({k: doc[k] for k in ("index_no", "disclosure", "contact")})
    stale = renamed(sample_event("05-ic-industry-support-revised.json"), doc_id)  # v2 again
    repeal = renamed(sample_event("05-ic-industry-support-revised.json"), doc_id)
    repeal["type"] = "document.repealed"
    repeal["occurred_at"] = "2024-06-01T09:00:00+08:00"
    repeal["document"].pop("changes")
    events = [original, revised, stale, repeal]
    await relay.publish_events(*events)
    progress = await relay.settle([e["event_id"] for e in events])

    title, number = doc["title"], doc["doc_number"]
    # The samples' dates move with the session's calendar: read them from the events.
    was, now_from = cn(doc["effective_from"]), cn(revised["document"]["effective_from"])
    valid_to = f"有效期至{cn(revised['document']['expires_on'])}"
    assert mails(relay, ASSOCIATION, f"[政策推送] {title}（{number}）")

    # ------------------------------------------------------------ the revision
    (mail,) = mails(relay, ASSOCIATION, f"[政策修订] {title}（{number}）")
    text, html = plain_and_html(mail)
    for body in (text, html):
        assert "修订说明（发文机关）：研发投入补贴上限由100万元提高至150万元" in body
        assert "与第1版相比的变化（系统逐项比对）" in body
        assert f"施行日期：{was} → {now_from}" in body
        assert "新增政策解读" in body
        assert "索引号" in body and "11310118MB2F0123XY/2023-00007" in body
        assert "主动公开" in body and "徐泾镇经济发展办公室，电话 021-59761234" in body
        assert valid_to in body and "规范性文件" in body
    assert (
        "适用范围：行业：C39 计算机、通信和其他电子设备制造业"
        in text.split("可直接复制以下内容")[1]
    )
    data = hook(relay, ASSOCIATION, doc_id, "policy.revised").payload["data"]
    assert {
        "field": "effective_from",
        "label": "施行日期",
        "before": was,
        "after": now_from,
    } in data["changes_computed"]
    assert any(
        c["field"] == "interpretation_url" and c["before"] is None for c in data["changes_computed"]
    )
    assert data["changes_from"] == 1
    assert data["forward_text"].startswith(f"【政策修订】《{title}》（{number}）已修订（第2版）")
    # The same forwarding text as the email's, but for its own question link (each
    # delivery's link names that delivery).
    asked = re.compile(r"^有疑问？.*/questions\?e=\d+&t=[0-9a-f]+$", re.M)
    assert len(asked.findall(data["forward_text"])) == 1
    assert "主要变化" in data["forward_text"]
    assert asked.sub("", data["forward_text"]) in asked.sub("", text)

    # A park is written to as a park.
    (park_mail,) = mails(relay, PARK, f"[政策修订] {title}（{number}）")
    park_text, park_html = plain_and_html(park_mail)
    for body in (park_text, park_html):
        assert "入驻企业" in body and "贵园区" in body
        assert "会员" not in body and "贵协会" not in body

    # ------------------------------------------------------------ the stale revision
    refused = progress.trails[stale["event_id"]].rejected
    assert refused is not None and refused.reason == "stale_version"
    (r,) = [r for r in await relay.rejections() if r.get("event_id") == stale["event_id"]]
    assert r["field"] == "document.version"
    assert "is not newer than the current version 2" in r["message"]

    # ------------------------------------------------------------ the repeal
    repealed = f"[政策废止] {title}（{number}）"
    await until(lambda: mails(relay, ASSOCIATION, repealed), what="the repeal's email")
    (mail,) = mails(relay, ASSOCIATION, repealed)
    text, html = plain_and_html(mail)
    for body in (text, html):
        assert "废止日期" in body and "2024年6月1日" in body
        assert "停止执行" in body and "请停止适用" in body
        assert "施行日期" not in body and valid_to not in body
    assert "废止日期：2024年6月1日" in text
    data = hook(relay, ASSOCIATION, doc_id, "policy.repealed").payload["data"]
    assert data["document"]["repealed_on"] == "2024-06-01"
    assert "已废止，自2024年6月1日起停止执行，请停止适用" in data["forward_text"]
    assert data["validity"] == "已废止，请停止适用"
