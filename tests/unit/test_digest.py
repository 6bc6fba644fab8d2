"""Digest mode: which day a notice waits for, the digest's form, and holding then sending
it through the delivery logic (against the fakes of test_deliver)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from relay.core import chat, digest, topics
from relay.core.chatbots import Platform
from relay.core.clock import SHANGHAI, Clock
from relay.core.models import (
    BotChannel,
    DeliveryIntent,
    DeliveryStatus,
    DingtalkChannel,
    EmailChannel,
    FeishuChannel,
    Partner,
    WecomChannel,
)
from relay.core.outcome import Outcome, OutcomeStatus
from relay.runtime import digests
from tests.unit.factories import make_notification, partner
from tests.unit.test_deliver import FakePorts, FakeWebhooks, handle, ok, webhook_intent

NINE = time(9, 0)


def at_shanghai(day: date, hh: int, mm: int) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=SHANGHAI)


def test_a_notice_before_the_digest_time_goes_in_that_days_digest_after_it_the_next() -> None:
    day = date(2031, 5, 6)
    assert digest.digest_day(at_shanghai(day, 8, 59), NINE) == day
    assert digest.digest_day(at_shanghai(day, 9, 0), NINE) == day + timedelta(days=1)
    # UTC 2031-05-05 23:30 is 07:30 on the 6th in Shanghai.
    assert digest.digest_day(datetime(2031, 5, 5, 23, 30, tzinfo=UTC), NINE) == day
    assert digest.due_at(day, NINE) == datetime(2031, 5, 6, 1, 0, tzinfo=UTC)


def test_only_digest_partners_notices_are_held_on_every_kind_of_channel() -> None:
    daily = partner("p-d", delivery={"mode": "digest", "digest_at": "18:30"})
    assert digest.holds(daily, "email") and digest.holds(daily, "webhook")
    assert all(digest.holds(daily, robot) for robot in ("wecom", "dingtalk", "feishu"))
    assert not digest.holds(partner("p-i"), "email")
    assert digest.digest_time(daily) == time(18, 30)
    assert digest.digest_time(partner("p-x", delivery={"mode": "digest"})) == NINE


def test_a_digests_id_is_one_per_partner_channel_and_day() -> None:
    day = date(2031, 5, 6)
    one = digest.digest_delivery_id("p", "c", day)
    assert one == digest.digest_delivery_id("p", "c", day)
    assert one != digest.digest_delivery_id("p", "c", day + timedelta(days=1))
    assert one != digest.digest_delivery_id("p", "c2", day)


def held_of(*kinds: str) -> digest.HeldDigest:
    day = date(2031, 5, 6)
    items = {}
    for i, kind in enumerate(kinds):
        n, _, _ = make_notification(title=f"政策{i}", doc_number=f"文号〔2031〕{i}号")
        items[f"dlv_item_{i}"] = n.model_copy(update={"catch_up": kind == "catch_up"})
    return digest.HeldDigest(
        partner_id="xujing-ic-association",
        channel_id="ch",
        channel_type="webhook",
        day=day,
        partition=0,
        due=digest.due_at(day, NINE),
        items=items,
    )


def test_the_webhook_digest_lists_each_notice_with_its_own_acknowledgement_link() -> None:
    held = held_of("relayed", "catch_up")
    body = json.loads(
        digest.webhook_body(
            held, base_url="https://relay.example", now=datetime.now(UTC), link_secret="s"
        )
    )
    assert body["type"] == "policy.digest"
    data = body["data"]
    assert data["delivery_id"] == held.delivery_id and data["count"] == 2
    assert [n["delivery_id"] for n in data["notices"]] == ["dlv_item_0", "dlv_item_1"]
    assert [n["catch_up"] for n in data["notices"]] == [False, True]
    for n in data["notices"]:
        assert (
            f"/deliveries/{n['delivery_id']}/ack" in n["ack_url"]
            or n["delivery_id"] in n["ack_url"]
        )
    assert data["notices"][0]["document"]["title"] == "政策0"


ROBOTS: dict[str, BotChannel] = {
    "wecom": WecomChannel(
        type="wecom", id="wc", url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k1234567"
    ),
    "dingtalk": DingtalkChannel(
        type="dingtalk",
        id="dd",
        url="https://oapi.dingtalk.com/robot/send?access_token=t1234567",
        keyword="政策",
    ),
    "feishu": FeishuChannel(
        type="feishu", id="fs", url="https://open.feishu.cn/open-apis/bot/v2/hook/h1234567"
    ),
}


def test_a_robots_digest_is_one_message_with_each_notice_and_its_two_links() -> None:
    held = held_of("relayed", "catch_up", "relayed")
    for kind, channel in ROBOTS.items():
        body = digest.chat_body(held, channel, base_url="https://relay.example", link_secret="s")
        text = json.dumps(body, ensure_ascii=False)
        assert digest.subject(held) in text  # [政策汇总] …（共3条）
        for i, (did, n) in enumerate(held.items.items()):
            assert f"《政策{i}》（文号〔2031〕{i}号）" in text
            assert n.document.url in text and f"/deliveries/{did}/ack" in text
        assert "（补发）" in text and "另有" not in text
        assert chat.within_limits(Platform(kind), body)
    ding = digest.chat_body(held, ROBOTS["dingtalk"], base_url="https://r.example", link_secret="s")
    assert "政策" in ding["markdown"]["title"]  # the robot's keyword
    assert ROBOTS["feishu"].type == "feishu"


def test_a_robots_digest_too_long_for_the_platform_lists_what_fits_whole_and_counts_the_rest() -> (
    None
):
    held = held_of(*["relayed"] * 60)
    body = digest.chat_body(
        held, ROBOTS["wecom"], base_url="https://relay.example", link_secret="s"
    )
    content = body["markdown"]["content"]
    assert chat.within_limits(Platform.wecom, body)
    listed = [did for did in held.items if f"/deliveries/{did}/ack" in content]
    assert 0 < len(listed) < 60
    assert listed == list(held.items)[: len(listed)]  # in order, none cut in half
    assert f"另有 {60 - len(listed)} 条" in content


def test_the_email_digest_has_one_subject_and_every_notice_with_its_link() -> None:
    held = held_of("relayed", "relayed", "catch_up")
    msg = digest.build_email(
        held,
        EmailChannel(to=["a@example.org"]),
        mail_from="relay <r@example.org>",
        base_url="https://relay.example",
        now=datetime.now(UTC),
        link_secret="s",
    )
    parsed = message_from_bytes(msg.as_bytes(), policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == "[政策汇总] 2031年5月6日政策通知汇总（共3条）"
    assert parsed["X-Relay-Event-Type"] == "policy.digest"
    assert parsed["X-Relay-Delivery-Id"] == held.delivery_id
    part = parsed.get_body(("plain",))
    assert part is not None
    text = part.get_content()
    for i in range(3):
        assert f"政策{i}（文号〔2031〕{i}号）" in text and f"dlv_item_{i}" in text
    assert text.count("【补发】") == 1


def digest_ports(
    *script: Outcome, digest_at: str = "09:00", offset: timedelta = timedelta(0)
) -> tuple[Any, DeliveryIntent]:
    """FakePorts (as Any: its fake robot transport is not a ChatTransport to mypy)."""
    intent, p = webhook_intent()
    daily = Partner.model_validate(
        {**p.model_dump(), "delivery": {"mode": "digest", "digest_at": digest_at}}
    )
    rt = FakePorts(partner=daily, webhooks=FakeWebhooks(list(script)), clock=Clock(offset))
    return rt, intent


async def test_a_digest_partners_notice_is_held_once_then_sent_in_the_digest() -> None:
    rt, intent = digest_ports(ok())
    audit = await handle(rt, intent)
    assert rt.webhooks.sent == []  # not now
    [key] = [k for k, v in rt.digests.items() if v]
    entry = rt.ledger[intent.delivery_id]
    assert entry["status"] == "pending" and entry["reason"].startswith(digests.HELD)
    assert audit[0].status == DeliveryStatus.pending
    await handle(rt, intent)  # a copy: not held twice
    held = digest.HeldDigest.model_validate(rt.digests[key])
    assert list(held.items) == [intent.delivery_id]

    # Not due before its time; due after it (the clock moved a day on).
    owned = {(topics.DELIVER_WEBHOOK, 0)}
    assert digests.due_digests(rt, owned, list(rt.digests.items())) == []
    rt.clock = Clock(timedelta(days=1, minutes=1))
    [(due_key, due)] = digests.due_digests(rt, owned, list(rt.digests.items()))
    assert digests.due_digests(rt, {(topics.DELIVER_WEBHOOK, 1)}, list(rt.digests.items())) == []
    records = await digests.send_digest(rt, due_key, due)
    [sent] = rt.webhooks.sent
    assert sent["delivery_id"] == held.delivery_id
    assert json.loads(sent["body"])["data"]["notices"][0]["delivery_id"] == intent.delivery_id
    assert rt.ledger[intent.delivery_id]["status"] == "delivered"
    assert [r.kind for r in records] == ["delivery.delivered"]
    assert rt.digests[due_key] is None  # gone: an empty day sends nothing
    assert digests.due_digests(rt, owned, list(rt.digests.items())) == []


async def test_a_failed_digest_is_tried_again_later_and_not_lost() -> None:
    busy = Outcome(OutcomeStatus.retry, "HTTP 503", 503, latency_ms=1.0)
    rt, intent = digest_ports(busy, ok())
    await handle(rt, intent)
    rt.clock = Clock(timedelta(days=1, minutes=1))
    owned = {(topics.DELIVER_WEBHOOK, 0)}
    [(key, due)] = digests.due_digests(rt, owned, list(rt.digests.items()))
    assert await digests.send_digest(rt, key, due) == []
    kept = digest.HeldDigest.model_validate(rt.digests[key])
    assert (
        kept.attempts == 1
        and kept.next_try is not None
        and list(kept.items) == [intent.delivery_id]
    )
    assert rt.ledger[intent.delivery_id]["status"] == "pending"


async def test_a_notice_whose_document_expired_while_it_waited_is_not_listed() -> None:
    rt, intent = digest_ports(ok())
    assert intent.notification is not None
    doc = intent.notification.document.model_copy(
        update={"expires_on": rt.clock.today() + timedelta(days=1)}
    )
    lasting = intent.notification.model_copy(update={"document": doc})
    await handle(rt, intent.model_copy(update={"notification": lasting}))
    other = intent.model_copy(
        update={
            "delivery_id": "dlv_test_2",
            "notification": intent.notification.model_copy(
                update={"document": doc.model_copy(update={"expires_on": None})}
            ),
        }
    )
    await handle(rt, other)
    rt.clock = Clock(timedelta(days=2, minutes=1))  # the first document has expired
    owned = {(topics.DELIVER_WEBHOOK, 0)}
    [(key, due)] = digests.due_digests(rt, owned, list(rt.digests.items()))
    records = await digests.send_digest(rt, key, due)
    [sent] = rt.webhooks.sent
    listed = [n["delivery_id"] for n in json.loads(sent["body"])["data"]["notices"]]
    assert listed == ["dlv_test_2"]
    assert rt.ledger[intent.delivery_id]["reason"] == "expired"
    assert rt.ledger["dlv_test_2"]["status"] == "delivered"
    assert sorted((r.delivery_id, r.kind) for r in records) == [
        ("dlv_test_1", "delivery.failed"),
        ("dlv_test_2", "delivery.delivered"),
    ]
