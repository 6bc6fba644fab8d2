"""The demo's feedback loop checks what the sinks received: a revision's email or webhook
without the published answer fails it, with a line naming the partner."""

from __future__ import annotations

from datetime import UTC, datetime, time
from email.message import EmailMessage
from pathlib import Path

import pytest

from relay.core.clock import SHANGHAI
from relay.core.models import AuditRecord, DeliveryStatus
from relay.core.settling import Progress
from relay.embedded import feedback
from relay.embedded.feedback import ANSWER, QUESTION, Asked, LoopFailed
from relay.embedded.sinks import ReceivedHook, ReceivedMail
from tests.unit.factories import NOW

FAQ = f"常见问题解答\r\n------------\r\n问：{QUESTION}\r\n答：{ANSWER}\r\n"


def revision(*channels: tuple[str, str, str]) -> Progress:
    """(partner, delivery, channel type) delivered for event e2."""
    p = Progress(expected=["e2"])
    p.add(AuditRecord(kind="event.accepted", at=NOW, event_id="e2"))
    for pid, did, ctype in channels:
        p.add(
            AuditRecord(
                kind="notification.planned", at=NOW, event_id="e2", partner_id=pid, deliveries=[did]
            )
        )
        p.add(
            AuditRecord(
                kind="delivery.delivered",
                at=NOW,
                event_id="e2",
                delivery_id=did,
                channel_type=ctype,
                status=DeliveryStatus.delivered,
            )
        )
    return p


def mail(delivery_id: str, body: str) -> ReceivedMail:
    msg = EmailMessage()
    msg["X-Relay-Delivery-Id"] = delivery_id
    msg.set_content(body)
    return ReceivedMail(Path("x.eml"), msg, ["a@example.org"])


def hook(delivery_id: str, faq: list[dict[str, str]]) -> ReceivedHook:
    return ReceivedHook("p", delivery_id, True, {"data": {"faq": faq}})


def asked() -> Asked:
    return Asked("DOC", 1, "title", "p1", "d0")


def test_a_revision_carrying_the_answer_everywhere_counts_its_partners() -> None:
    p = revision(("p1", "d1", "email"), ("p1", "d2", "webhook"), ("p2", "d3", "email"))
    a = asked()
    entry = {"question": QUESTION, "answer": ANSWER, "answered_at": "x"}
    feedback.carried(
        a, p, "e2", [mail("d1", "正文\r\n" + FAQ), mail("d3", FAQ)], [hook("d2", [entry])]
    )
    assert a.partners_carried == ["p1", "p2"]
    assert (a.carried_by_email, a.carried_by_webhook) == (["p1", "p2"], ["p1"])


def test_an_email_or_webhook_without_the_answer_fails_the_loop() -> None:
    p = revision(("p1", "d1", "email"), ("p2", "d2", "webhook"))
    with pytest.raises(LoopFailed, match="email to p1 does not carry the answer"):
        feedback.carried(asked(), p, "e2", [mail("d1", "正文，没有问答")], [])
    with pytest.raises(LoopFailed, match="webhook to p2 does not carry the answer"):
        feedback.carried(asked(), p, "e2", [mail("d1", FAQ)], [hook("d2", [])])
    with pytest.raises(LoopFailed, match="no email or webhook"):
        feedback.carried(asked(), revision(), "e2", [], [])


async def test_an_email_without_a_question_link_fails_before_any_request() -> None:
    with pytest.raises(LoopFailed, match="no 有疑问？ link"):
        await feedback.ask_through_link(None, "一封没有链接的邮件")  # type: ignore[arg-type]


def test_the_question_page_form_is_read_as_a_browser_would() -> None:
    form = feedback._Form()
    form.feed(
        '<form method="post" action="/api/v1/deliveries/d1/questions">'
        '<input type="hidden" name="e" value="123"><input type="hidden" name="t" value="ab">'
        '<textarea name="question"></textarea><input name="asker"></form>'
        '<form action="/other"><input name="x" value="y"></form>'
    )
    assert form.action == "/api/v1/deliveries/d1/questions"
    assert form.fields == {"e": "123", "t": "ab", "question": "", "asker": ""}


def test_the_daily_email_that_lists_a_question_is_the_next_at_the_hour() -> None:
    at = time(17, 0)
    shanghai = datetime(2026, 3, 1, 16, 30, tzinfo=SHANGHAI)
    assert feedback.next_digest(shanghai, at) == datetime(2026, 3, 1, 17, tzinfo=SHANGHAI)
    on_the_hour = datetime(2026, 3, 1, 17, 0, tzinfo=SHANGHAI)
    assert feedback.next_digest(on_the_hour, at) == on_the_hour
    after = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)  # 17:30 in Shanghai: tomorrow's email
    assert feedback.next_digest(after, at) == datetime(2026, 3, 2, 17, tzinfo=SHANGHAI)
