"""Test notices: a partner checks a channel end to end before a real policy depends on it."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from relay.app import Runtime
from relay.delivery.base import Outcome, OutcomeStatus
from relay.logs import get_logger
from relay.models import EmailChannel, Partner, WebhookChannel
from relay.rendering import MAIL_POLICY, SUBJECT_PREFIX, message_id
from relay.web.schemas import ChannelTestResult

log = get_logger(__name__)

#: Not a policy type: a receiver that routes on ``type`` must not forward a test to members.
TEST_TYPE = "relay.test"
TEST_TEXT = "这是政策接力平台发送的测试通知，用于确认接收渠道畅通。无需转发，无需回复。"


def probe_id() -> str:
    """A fresh id per test, so receivers that deduplicate by webhook-id still see each one."""
    return f"dlv_test_{secrets.token_hex(12)}"


def probe_body(partner: Partner, channel: WebhookChannel, delivery_id: str) -> bytes:
    now = datetime.now(UTC)
    payload = {
        "type": TEST_TYPE,
        "timestamp": now.isoformat(),
        "data": {
            "delivery_id": delivery_id,
            "partner_id": partner.id,
            "channel_id": channel.id,
            "test": True,
            "message": TEST_TEXT,
        },
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def probe_email(
    partner: Partner, channel: EmailChannel, delivery_id: str, mail_from: str
) -> EmailMessage:
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["Subject"] = f"{SUBJECT_PREFIX} 测试通知（无需转发）"
    msg["From"] = mail_from
    msg["To"] = ", ".join(channel.to)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id(delivery_id)
    msg["X-Relay-Delivery-Id"] = delivery_id
    msg["X-Relay-Event-Type"] = TEST_TYPE
    text = f"{partner.name}：\n\n{TEST_TEXT}\n\n渠道：{channel.id}\n编号：{delivery_id}\n"
    msg.set_content(text, subtype="plain", charset="utf-8", cte="base64")
    return msg


async def send_test(
    rt: Runtime, partner: Partner, channel: EmailChannel | WebhookChannel
) -> ChannelTestResult:
    """Send one test notice through the worker's senders, now, and report the outcome."""
    delivery_id = probe_id()
    outcome: Outcome
    if isinstance(channel, WebhookChannel):
        body = probe_body(partner, channel, delivery_id)
        outcome = await rt.webhooks.send(
            url=channel.url,
            delivery_id=delivery_id,
            body=body,
            secrets=channel.signing_secrets(datetime.now(UTC)),
        )
    elif rt.mail is None:
        outcome = Outcome(OutcomeStatus.failed, "no SMTP server configured (RELAY_SMTP_HOST)")
    else:
        message = probe_email(partner, channel, delivery_id, rt.settings.mail_from)
        outcome = await rt.mail.send(message)
    rt.counters[f"channel_test.{channel.type}.{outcome.status}"] += 1
    log.info(
        "channel_tested",
        partner_id=partner.id,
        channel_id=channel.id,
        delivery_id=delivery_id,
        status=str(outcome.status),
        detail=outcome.detail,
    )
    return ChannelTestResult(
        channel_id=channel.id,
        channel_type=channel.type,
        delivery_id=delivery_id,
        status=outcome.status,
        detail=outcome.detail,
        http_status=outcome.http_status,
        smtp_code=outcome.smtp_code,
        latency_ms=round(outcome.latency_ms, 2) if outcome.latency_ms else None,
    )
