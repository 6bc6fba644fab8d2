"""The whole relay on the embedded broker: documents in, signed webhooks and emails out."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from email.message import EmailMessage

import pytest
from standardwebhooks.webhooks import Webhook

from relay.core import topics
from tests.helpers.receivers import Received
from tests.helpers.waits import wait_consumed
from tests.integration.conftest import RelayUnderTest, renamed, sample_event

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

# Who the samples concern, worked out by hand from config/partners.yaml and DESIGN §5
# (not by the relay's own matcher). huaxin-logistics-park is paused; the software
# association only wants 科技创新/数字化转型/人工智能/人才 policies.
TOWN = {
    "qingpu-industrial-park",
    "qingpu-manufacturing-association",
    "xihongqiao-business-park",
    "xujing-ic-association",
    "xujing-sci-tech-park",
}
EXPECTED = {
    "01-seed-government-openness.json": TOWN,
    "02-ic-industry-support.json": TOWN,
    "03-city-digital-transformation.json": TOWN | {"qingpu-software-association"},
}


def hooks_for(relay: RelayUnderTest, doc_id: str) -> list[Received]:
    return [r for r in relay.hooks.verified if r.payload["data"]["document"]["id"] == doc_id]


def mails_for(relay: RelayUnderTest, doc_number: str, title: str) -> list[EmailMessage]:
    subject = f"[政策推送] {title}（{doc_number}）"
    return [m for m in relay.smtp.messages if m["Subject"] == subject]


async def test_sample_documents_reach_exactly_the_partners_they_concern(
    relay: RelayUnderTest,
) -> None:
    events = {name: sample_event(name) for name in EXPECTED}
    await relay.publish_events(*events.values())
    await relay.settle([e["event_id"] for e in events.values()])

    for name, expected in EXPECTED.items():
        doc = events[name]["document"]
        hooks = hooks_for(relay, doc["id"])
        by_partner = Counter(h.path.removeprefix("/hooks/") for h in hooks)
        assert by_partner == Counter({p: 1 for p in expected}), name
        mails = mails_for(relay, doc["doc_number"], doc["title"])
        recipients = Counter(
            addr.split("@")[1].removesuffix(".example.org")
            for m in mails
            for addr in m["To"].addresses
            for addr in [addr.addr_spec]
        )
        assert recipients == Counter({p: 1 for p in expected}), name


async def test_webhooks_are_signed_per_standard_webhooks_and_say_why(
    relay: RelayUnderTest,
) -> None:
    event = renamed(sample_event("02-ic-industry-support.json"), "TEST-WHY-1")
    await relay.publish_events(event)
    await relay.settle([event["event_id"]])
    hooks = hooks_for(relay, "TEST-WHY-1")
    assert hooks, "no webhook arrived"
    for h in hooks:
        # Verified again here, independently of the receiver, from the raw request.
        secret = relay.hooks.secrets[h.path][0]
        payload = Webhook(secret).verify(h.body, h.headers)
        assert payload["type"] == "policy.relayed"
        assert h.headers["webhook-id"] == payload["data"]["delivery_id"]
        assert payload["data"]["match"]["why"], "no explanation in the webhook"
        assert f"/deliveries/{h.webhook_id}/ack?t=" in payload["data"]["ack_url"]
    ic = next(h for h in hooks if h.path == "/hooks/xujing-ic-association")
    reasons = {r["dimension"]: r for r in ic.payload["data"]["match"]["reasons"]}
    assert reasons["industries"]["scope_codes"] == ["C39"]
    assert reasons["scales"]["partner_codes"] == ["small", "micro"]


async def test_emails_carry_the_delivery_id_and_why(relay: RelayUnderTest) -> None:
    event = renamed(sample_event("03-city-digital-transformation.json"), "TEST-MAIL-1")
    event["document"]["title"] = "邮件测试政策（示例）"
    await relay.publish_events(event)
    progress = await relay.settle([event["event_id"]])
    mails = mails_for(relay, event["document"]["doc_number"], "邮件测试政策（示例）")
    assert len(mails) == 6
    email_outcomes = {
        o.delivery_id
        for o in progress.outcomes.values()
        if o.channel_type == "email" and o.document_id == "TEST-MAIL-1"
    }
    for m in mails:
        did = m["X-Relay-Delivery-Id"]
        assert did in email_outcomes
        assert m["Message-ID"] == f"<{did}@policy-relay>"
        body = m.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        assert "为什么" in text and did in text


async def test_bad_events_are_rejected_with_reasons_and_the_worker_keeps_going(
    relay: RelayUnderTest,
) -> None:
    expired = renamed(sample_event("04-expired-rent-relief.json"), "TEST-BAD-1")
    good = renamed(sample_event("02-ic-industry-support.json"), "TEST-BAD-1")
    missing = renamed(sample_event("02-ic-industry-support.json"), "TEST-BAD-1")
    del missing["document"]["title"]
    # Same key, so one partition: the good event comes after the bad ones.
    await relay.publish(
        ("TEST-BAD-1", b"{this is not json"),
        ("TEST-BAD-1", json.dumps(expired, ensure_ascii=False).encode()),
        ("TEST-BAD-1", json.dumps(missing, ensure_ascii=False).encode()),
        ("TEST-BAD-1", json.dumps(good, ensure_ascii=False).encode()),
    )
    await relay.settle([expired["event_id"], missing["event_id"], good["event_id"]])
    assert len(hooks_for(relay, "TEST-BAD-1")) == len(TOWN)

    rejected = {
        r.get("event_id"): r
        for r in await relay.rejections()
        if r.get("document_id") == "TEST-BAD-1" or "not json" in r.get("raw", "")
    }
    assert rejected[expired["event_id"]]["reason"] == "expired"
    assert expired["document"]["expires_on"] in rejected[expired["event_id"]]["message"]
    assert rejected[missing["event_id"]]["reason"] == "invalid_event"
    assert rejected[missing["event_id"]]["field"] == "document.title"
    assert rejected[None]["reason"] == "not_json"
    assert rejected[None]["raw"] == "{this is not json"


async def test_an_event_delivered_twice_is_processed_once(relay: RelayUnderTest) -> None:
    event = renamed(sample_event("02-ic-industry-support.json"), "TEST-DUP-1")
    await relay.publish_events(event, event)
    await relay.settle([event["event_id"]])
    # Until the worker has handled both copies and every delivery planned from them: a
    # wrongly repeated fan-out would have reached the receiver by then.
    await wait_consumed(relay.settings, [topics.DOCUMENTS, topics.ACCEPTED, topics.DELIVER_WEBHOOK])
    ids = [h.webhook_id for h in hooks_for(relay, "TEST-DUP-1")]
    assert len(ids) == len(TOWN)
    assert len(set(ids)) == len(ids)


async def test_revision_reaches_everyone_who_got_the_original(relay: RelayUnderTest) -> None:
    doc_id = f"TEST-REV-{uuid.uuid4().hex[:6]}"
    original = renamed(sample_event("02-ic-industry-support.json"), doc_id)
    revised = renamed(sample_event("05-ic-industry-support-revised.json"), doc_id)
    # The revision moves the scope to 华新镇: the 徐泾镇 partners are no longer covered but
    # are still told, because they received version 1.
    revised["document"]["scope"]["regions"] = ["310118107"]
    await relay.publish_events(original, revised)
    await relay.settle([original["event_id"], revised["event_id"]])
    hooks = hooks_for(relay, doc_id)
    revisions = [h for h in hooks if h.payload["type"] == "policy.revised"]
    assert {h.path for h in revisions} == {f"/hooks/{p}" for p in TOWN}
    for h in revisions:
        assert h.payload["data"]["previous_version"] == 1
        assert h.payload["data"]["document"]["changes"]
    prior_only = {
        h.path.removeprefix("/hooks/")
        for h in revisions
        if h.payload["data"]["prior_recipient_only"]
    }
    assert prior_only == {
        "xujing-ic-association",
        "xujing-sci-tech-park",
        "xihongqiao-business-park",
    }
    relayed_ids = {h.webhook_id for h in hooks if h.payload["type"] == "policy.relayed"}
    assert relayed_ids.isdisjoint({h.webhook_id for h in revisions})


async def test_a_revision_of_a_document_never_published_is_rejected_like_its_repeal(
    relay: RelayUnderTest,
) -> None:
    revised_id, repealed_id = (f"TEST-NEVER-{uuid.uuid4().hex[:6]}" for _ in range(2))
    revised = renamed(sample_event("05-ic-industry-support-revised.json"), revised_id)
    repealed = renamed(sample_event("02-ic-industry-support.json"), repealed_id)
    repealed["type"] = "document.repealed"
    await relay.publish_events(revised, repealed)
    progress = await relay.settle([revised["event_id"], repealed["event_id"]])

    for ev in (revised, repealed):
        doc_id = ev["document"]["id"]
        audit = progress.trails[ev["event_id"]].rejected
        assert audit is not None and audit.reason == "unknown_document"
        (r,) = [r for r in await relay.rejections() if r.get("document_id") == doc_id]
        assert (r["reason"], r["field"], r["event_id"]) == (
            "unknown_document",
            "document.id",
            ev["event_id"],
        )
        assert f"{doc_id} was never published through the relay" in r["message"]
        assert "publish it as document.published" in r["message"]
        assert hooks_for(relay, doc_id) == []
