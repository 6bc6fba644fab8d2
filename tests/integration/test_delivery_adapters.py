"""The webhook and email adapters against real servers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random
import socket
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from relay.adapters.email import EmailSender
from relay.adapters.webhook import WebhookSender
from relay.core import ids, rendering, signing
from relay.core.models import (
    DeliveryStatus,
    Dimension,
    Document,
    EmailChannel,
    MatchResult,
    NoticeType,
    Notification,
    PlannedDelivery,
    Reason,
)
from relay.core.outcome import MAX_RETRY_AFTER, Outcome, OutcomeStatus
from relay.core.retry import RetryPolicy, decide, parse_retry_after
from tests.helpers.receivers import (
    Envelope,
    SMTPRecorder,
    StaticResolver,
    WebhookReceiver,
    respond,
)

pytestmark = pytest.mark.integration

SECRET = signing.new_secret()
NOW = datetime(2023, 6, 7, 9, 30, tzinfo=UTC)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def notification(
    notice: NoticeType = NoticeType.relayed, channel_type: str = "webhook"
) -> tuple[Notification, PlannedDelivery]:
    document = Document(
        id="QE5320000-2023-01",
        version=1,
        doc_number="徐府〔2023〕32号",
        title="关于徐泾镇2023年政务公开工作要点",
        issuer="上海市青浦区徐泾镇人民政府",
        published_on=date(2023, 6, 7),
        url="https://example.gov.cn/xxgk/QE5320000-2023-01.html",
        summary="推进“政府+”政策接力。",
        tags=["政务公开"],
    )
    ntf = ids.notification_id(document.id, document.version, "xujing-ic-association")
    delivery = PlannedDelivery(
        delivery_id=ids.delivery_id(ntf, f"{channel_type}-1"),
        channel_id=f"{channel_type}-1",
        channel_type=channel_type,
    )
    return (
        Notification(
            notification_id=ntf,
            type=notice,
            event_id="0b6c0c9e-5a43-4c55-9a5e-6d9f0d1d8a11",
            document=document,
            partner_id="xujing-ic-association",
            partner_name="徐泾镇集成电路产业协会（示例）",
            partner_kind="association",
            match=MatchResult(
                matched=True,
                reasons=[Reason(dimension=Dimension.regions, applies_to_all=True)],
            ),
            deliveries=[delivery],
            planned_at=NOW,
        ),
        delivery,
    )


def webhook_body() -> tuple[str, bytes]:
    ntf, delivery = notification()
    body = rendering.webhook_body(
        ntf, delivery, why=["适用区域：全部"], base_url="http://127.0.0.1:6066", now=NOW
    )
    return delivery.delivery_id, body


async def post(
    receiver: WebhookReceiver, path: str = "/hook", **sender_options: Any
) -> tuple[Outcome, str]:
    delivery_id, body = webhook_body()
    sender_options.setdefault("allow_private", True)
    async with WebhookSender(**sender_options) as sender:
        outcome = await sender.send(
            url=receiver.url_for(path), delivery_id=delivery_id, body=body, secrets=[SECRET]
        )
    return outcome, delivery_id


# ------------------------------------------------------------------ webhook outcomes


async def test_signed_delivery_verifies_at_the_receiver() -> None:
    async with WebhookReceiver(secrets={"/hook": SECRET}) as receiver:
        outcome, delivery_id = await post(receiver)

    assert outcome.status is OutcomeStatus.delivered, outcome.detail
    assert outcome.http_status == 200
    assert outcome.latency_ms > 0
    [got] = receiver.received
    assert got.verified and got.webhook_id == delivery_id
    assert got.payload["type"] == "policy.relayed"
    assert got.payload["data"]["document"]["title"] == "关于徐泾镇2023年政务公开工作要点"
    assert got.headers["user-agent"] == "PolicyRelay/0.1"


async def test_rotation_signs_with_every_secret_so_either_verifies() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    delivery_id, body = webhook_body()
    async with (
        WebhookReceiver(secrets={"/old": old, "/new": new}) as receiver,
        WebhookSender(allow_private=True) as sender,
    ):
        for path in ("/old", "/new"):
            outcome = await sender.send(
                url=receiver.url_for(path), delivery_id=delivery_id, body=body, secrets=[old, new]
            )
            assert outcome.status is OutcomeStatus.delivered

    assert [r.verified for r in receiver.received] == [True, True]


async def test_receiver_rejecting_the_signature_fails_the_delivery() -> None:
    async with WebhookReceiver(secrets={"/hook": signing.new_secret()}) as receiver:
        outcome, _ = await post(receiver)

    assert outcome.status is OutcomeStatus.failed
    assert outcome.http_status == 401
    assert receiver.received[0].verified is False


async def test_410_disables_the_channel() -> None:
    async with WebhookReceiver(secrets={"/hook": SECRET}, behaviour=respond(410)) as receiver:
        outcome, _ = await post(receiver)

    assert outcome.status is OutcomeStatus.disabled
    assert outcome.http_status == 410


async def test_429_is_retried_after_the_receivers_retry_after() -> None:
    behaviour = respond(429, headers={"Retry-After": "7"}, body="slow down")
    async with WebhookReceiver(secrets={"/hook": SECRET}, behaviour=behaviour) as receiver:
        outcome, _ = await post(receiver)

    assert outcome.status is OutcomeStatus.retry
    assert outcome.http_status == 429
    assert outcome.retry_after == 7
    assert "slow down" in outcome.detail


async def test_503_with_an_http_date_retry_after() -> None:
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    behaviour = respond(503, headers={"Retry-After": when})
    async with WebhookReceiver(secrets={"/hook": SECRET}, behaviour=behaviour) as receiver:
        outcome, _ = await post(receiver)

    assert outcome.status is OutcomeStatus.retry
    assert outcome.retry_after is not None and 100 <= outcome.retry_after <= 121


async def test_500_is_retried() -> None:
    async with WebhookReceiver(secrets={"/hook": SECRET}, behaviour=respond(500)) as receiver:
        outcome, _ = await post(receiver)

    assert outcome.status is OutcomeStatus.retry
    assert outcome.http_status == 500
    assert outcome.retry_after is None


async def test_404_fails() -> None:
    async with WebhookReceiver(secrets={"/hook": SECRET}, behaviour=respond(404)) as receiver:
        outcome, _ = await post(receiver)

    assert outcome.status is OutcomeStatus.failed
    assert outcome.http_status == 404


async def test_slow_receiver_beyond_the_timeout_is_retried() -> None:
    behaviour = respond(200, delay=5.0)
    async with WebhookReceiver(secrets={"/hook": SECRET}, behaviour=behaviour) as receiver:
        started = time.monotonic()
        outcome, _ = await post(receiver, timeout=0.3)
        elapsed = time.monotonic() - started

    assert outcome.status is OutcomeStatus.retry
    assert "timeout" in outcome.detail and outcome.timed_out
    assert elapsed < 2.0


async def test_connection_refused_is_retried() -> None:
    delivery_id, body = webhook_body()
    async with WebhookSender(allow_private=True) as sender:
        outcome = await sender.send(
            url=f"http://127.0.0.1:{closed_port()}/hook",
            delivery_id=delivery_id,
            body=body,
            secrets=[SECRET],
        )

    assert outcome.status is OutcomeStatus.retry
    assert "connection" in outcome.detail.lower()


async def test_redirect_fails_and_is_not_followed() -> None:
    behaviours = {"/hook": respond(302, headers={"Location": "/elsewhere"})}
    async with WebhookReceiver(
        secrets={"/hook": SECRET, "/elsewhere": SECRET}, behaviour=behaviours
    ) as receiver:
        outcome, _ = await post(receiver)

    assert outcome.status is OutcomeStatus.failed
    assert outcome.http_status == 302
    assert "not followed" in outcome.detail
    assert [r.path for r in receiver.received] == ["/hook"]


async def test_invalid_url_fails_without_raising() -> None:
    async with WebhookSender(allow_private=True) as sender:
        outcome = await sender.send(
            url="not a url", delivery_id="dlv_x", body=b"{}", secrets=[SECRET]
        )

    assert outcome.status is OutcomeStatus.failed


# ------------------------------------------------------------------ webhook: SSRF guard


async def test_private_address_is_refused_unless_allowed() -> None:
    async with WebhookReceiver(secrets={"/hook": SECRET}) as receiver:
        refused, _ = await post(receiver, allow_private=False)
        allowed, _ = await post(receiver, allow_private=True)

    assert refused.status is OutcomeStatus.failed
    assert refused.detail.startswith("refused: resolves to private address 127.0.0.1")
    assert allowed.status is OutcomeStatus.delivered
    assert len(receiver.received) == 1


async def test_a_name_resolving_to_a_private_address_is_refused_at_connect_time() -> None:
    # A public-looking name whose DNS answer points inside (rebinding): only the resolved
    # address can tell, so the check must sit between the resolver and the socket.
    dns = StaticResolver({"hooks.partner.example": ["127.0.0.1"]})
    delivery_id, body = webhook_body()
    async with WebhookReceiver(secrets={"/hook": SECRET}) as receiver:
        url = f"http://hooks.partner.example:{receiver.port}/hook"
        async with WebhookSender(allow_private=False, resolver=dns) as guarded:
            refused = await guarded.send(
                url=url, delivery_id=delivery_id, body=body, secrets=[SECRET]
            )
        async with WebhookSender(allow_private=True, resolver=dns) as open_sender:
            allowed = await open_sender.send(
                url=url, delivery_id=delivery_id, body=body, secrets=[SECRET]
            )

    assert refused.status is OutcomeStatus.failed
    assert refused.detail.startswith("refused: resolves to private address 127.0.0.1")
    assert allowed.status is OutcomeStatus.delivered
    assert dns.lookups.count("hooks.partner.example") == 2
    assert [r.headers["host"] for r in receiver.received] == [
        f"hooks.partner.example:{receiver.port}"
    ]


# ------------------------------------------------------------------ webhook: throughput


async def test_sequential_deliveries_reuse_one_connection() -> None:
    delivery_id, body = webhook_body()
    async with (
        WebhookReceiver(secrets={"/hook": SECRET}) as receiver,
        WebhookSender(allow_private=True) as sender,
    ):
        for _ in range(10):
            outcome = await sender.send(
                url=receiver.url_for("/hook"), delivery_id=delivery_id, body=body, secrets=[SECRET]
            )
            assert outcome.status is OutcomeStatus.delivered

    assert len(receiver.verified) == 10
    assert len({r.peer for r in receiver.received}) == 1


async def test_fan_out_queues_outside_the_timeout() -> None:
    # 200 deliveries, 5 at a time, 50 ms each: the last waits ~2 s for a slot, longer than
    # the 1 s timeout. Time spent queueing must not count against the receiver.
    delivery_id, body = webhook_body()
    behaviour = respond(200, delay=0.05)
    async with (
        WebhookReceiver(secrets={"/hook": SECRET}, behaviour=behaviour) as receiver,
        WebhookSender(allow_private=True, timeout=1.0, limit_per_host=5) as sender,
    ):
        outcomes = await asyncio.gather(
            *(
                sender.send(
                    url=receiver.url_for("/hook"),
                    delivery_id=f"{delivery_id}{i}",
                    body=body,
                    secrets=[SECRET],
                )
                for i in range(200)
            )
        )

    assert {o.status for o in outcomes} == {OutcomeStatus.delivered}
    assert len(set(receiver.ids())) == 200
    assert len({r.peer for r in receiver.received}) <= 5


def test_retry_after_is_digits_or_an_http_date_and_at_most_a_day() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)

    assert parse_retry_after("7") == 7
    assert parse_retry_after(" 120 ") == 120
    assert parse_retry_after("Mon, 01 Jan 2024 00:01:00 GMT", now) == 60
    assert parse_retry_after("Sun, 31 Dec 2023 00:00:00 GMT", now) == 0  # past: now
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now) == MAX_RETRY_AFTER
    assert parse_retry_after("99999999999") == MAX_RETRY_AFTER
    assert parse_retry_after("9" * 5000) == MAX_RETRY_AFTER  # int() refuses > 4,300 digits
    # RFC 9110 §10.2.3: delay-seconds = 1*DIGIT; anything else is no Retry-After at all.
    for value in ["1.5", "-3", "+3", "1e12", "inf", "Infinity", "nan", "０", "²", "soon", ""]:
        assert parse_retry_after(value) is None, value
    assert parse_retry_after(None) is None


@pytest.mark.parametrize("value", ["1e12", "inf", "99999999999", "Fri, 31 Dec 9999 23:59:59 GMT"])
async def test_a_huge_retry_after_is_bounded_and_the_delivery_retried(value: str) -> None:
    behaviour = respond(503, headers={"Retry-After": value})
    async with WebhookReceiver(secrets={"/hook": SECRET}, behaviour=behaviour) as receiver:
        outcome, _ = await post(receiver)

    decision = decide(1, outcome, RetryPolicy((5.0,)), NOW, random.Random(7))
    assert decision.status is DeliveryStatus.retrying
    assert decision.retry_at is not None
    assert NOW + timedelta(seconds=4) <= decision.retry_at <= NOW + timedelta(days=1)


# ------------------------------------------------------------------ email


def relay_email(to: list[str] | None = None) -> tuple[Any, str]:
    ntf, delivery = notification(channel_type="email")
    channel = EmailChannel(to=to or ["policy@assoc.example.org", "secretary@assoc.example.org"])
    msg = rendering.build_email(
        ntf,
        delivery,
        channel,
        why=["适用区域：全部"],
        mail_from="徐泾镇政务公开办（政策接力） <policy-relay@example.gov.cn>",
        base_url="http://127.0.0.1:6066",
        now=NOW,
    )
    return msg, delivery.delivery_id


def sender_for(smtp: SMTPRecorder, **options: Any) -> EmailSender:
    return EmailSender(host=smtp.host, port=smtp.port, local_hostname="relay.test", **options)


async def test_email_is_received_and_parses_back() -> None:
    msg, delivery_id = relay_email()
    with SMTPRecorder() as smtp:
        async with sender_for(smtp, timeout=5) as sender:
            outcome = await sender.send(msg)
        [got] = await smtp.wait_for(1)

    assert outcome.status is OutcomeStatus.delivered, outcome.detail
    assert outcome.smtp_code == 250 and "accepted" in outcome.detail
    assert got["Subject"] == "[政策推送] 关于徐泾镇2023年政务公开工作要点（徐府〔2023〕32号）"
    assert got["X-Relay-Delivery-Id"] == delivery_id
    assert got["Message-ID"] == f"<{delivery_id}@policy-relay>"
    body = got.get_body(("plain",))
    assert body is not None and delivery_id in body.get_content()
    assert smtp.envelopes[0].mail_from == "policy-relay@example.gov.cn"
    assert smtp.envelopes[0].rcpt_tos == ["policy@assoc.example.org", "secretary@assoc.example.org"]
    smtp.raw[0].decode("ascii")  # what crossed the wire was 7-bit


async def test_smtp_450_at_data_is_retried_and_the_connection_stays_usable() -> None:
    replies = iter(["450 4.3.0 mailbox busy, try later"])

    def data_reply(envelope: Envelope) -> str | None:
        return next(replies, None)

    with SMTPRecorder(data_reply=data_reply) as smtp:
        async with sender_for(smtp) as sender:
            first = await sender.send(relay_email()[0])
            second = await sender.send(relay_email()[0])

    assert first.status is OutcomeStatus.retry
    assert first.smtp_code == 450 and "mailbox busy" in first.detail
    assert second.status is OutcomeStatus.delivered
    assert smtp.connections == 1


async def test_smtp_550_at_data_fails() -> None:
    with SMTPRecorder(data_reply="550 5.7.1 content rejected") as smtp:
        async with sender_for(smtp) as sender:
            outcome = await sender.send(relay_email()[0])

    assert outcome.status is OutcomeStatus.failed
    assert outcome.smtp_code == 550
    assert smtp.messages == []


async def test_every_recipient_refused_is_judged_by_the_worst_code() -> None:
    def busy_or_unknown(address: str) -> str:
        return "550 5.1.1 no such user" if address.startswith("gone") else "450 4.2.1 busy"

    with SMTPRecorder(rcpt_reply=busy_or_unknown) as smtp:
        async with sender_for(smtp) as sender:
            mixed = await sender.send(relay_email(["gone@a.example.org", "busy@a.example.org"])[0])
            busy = await sender.send(relay_email(["busy@a.example.org"])[0])

    assert mixed.status is OutcomeStatus.failed and mixed.smtp_code == 550
    assert "gone@a.example.org" in mixed.detail
    assert busy.status is OutcomeStatus.retry and busy.smtp_code == 450


async def test_some_recipients_refused_still_delivers_and_says_who() -> None:
    def refuse_gone(address: str) -> str | None:
        return "550 5.1.1 no such user" if address.startswith("gone") else None

    with SMTPRecorder(rcpt_reply=refuse_gone) as smtp:
        async with sender_for(smtp) as sender:
            outcome = await sender.send(relay_email(["gone@a.example.org", "ok@a.example.org"])[0])

    assert outcome.status is OutcomeStatus.delivered
    assert "gone@a.example.org" in outcome.detail
    assert smtp.envelopes[0].rcpt_tos == ["ok@a.example.org"]


async def test_smtp_server_down_is_retried() -> None:
    async with EmailSender(host="127.0.0.1", port=closed_port(), timeout=2) as sender:
        outcome = await sender.send(relay_email()[0])

    assert outcome.status is OutcomeStatus.retry
    assert "connection" in outcome.detail.lower()


async def test_an_smtp_timeout_waits_at_least_the_retry_floor_like_a_webhook_timeout() -> None:
    writers: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)  # accepts the connection and never greets

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with EmailSender(host="127.0.0.1", port=port, timeout=0.5) as sender:
            outcome = await sender.send(relay_email()[0])
    finally:
        server.close()
        for writer in writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    assert outcome.status is OutcomeStatus.retry and outcome.timed_out, outcome.detail
    policy = RetryPolicy((5.0,), floor=60.0)
    decision = decide(1, outcome, policy, NOW, random.Random(7))
    assert decision.retry_at is not None
    assert decision.retry_at - NOW >= timedelta(seconds=60)


async def test_several_messages_share_one_smtp_connection() -> None:
    with SMTPRecorder() as smtp:
        async with sender_for(smtp) as sender:
            outcomes = [await sender.send(relay_email()[0]) for _ in range(4)]
            concurrent = await asyncio.gather(*(sender.send(relay_email()[0]) for _ in range(4)))
        await smtp.wait_for(8)

    assert {o.status for o in [*outcomes, *concurrent]} == {OutcomeStatus.delivered}
    assert smtp.connections == 1
    assert sender.connections_opened == 1


async def test_sender_reconnects_after_the_server_dropped_the_connection() -> None:
    with SMTPRecorder() as smtp:
        async with sender_for(smtp) as sender:
            first = await sender.send(relay_email()[0])
            smtp.stop()  # drops the open session
            smtp.start()  # same port
            second = await sender.send(relay_email()[0])

    assert first.status is OutcomeStatus.delivered
    assert second.status is OutcomeStatus.delivered, second.detail
    assert sender.connections_opened == 2
    assert len(smtp.messages) == 2


def test_email_sender_repr_hides_the_password() -> None:
    sender = EmailSender(host="smtp.example.org", port=587, username="relay", password="hunter2")

    assert "hunter2" not in repr(sender)
