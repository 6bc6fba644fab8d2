"""Test notices: a partner checks a channel end to end before a real policy depends on it."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from relay.core.chat import chat_test_message
from relay.core.logs import get_logger
from relay.core.models import AnyChannel, EmailChannel, Partner, WebhookChannel
from relay.core.outcome import Outcome, OutcomeStatus
from relay.core.rendering import test_email, test_webhook_body
from relay.runtime.app import Runtime
from relay.web.schemas import ChannelTestResult

log = get_logger(__name__)


def probe_id() -> str:
    """A fresh id per test, so receivers that deduplicate by webhook-id still see each one."""
    return f"dlv_test_{secrets.token_hex(12)}"


async def send_test(rt: Runtime, partner: Partner, channel: AnyChannel) -> ChannelTestResult:
    """Send one test notice through the worker's senders, now, and report the outcome."""
    delivery_id = probe_id()
    outcome: Outcome
    if isinstance(channel, WebhookChannel):
        body = test_webhook_body(partner, channel, delivery_id, datetime.now(UTC))
        outcome = await rt.webhooks.send(
            url=channel.url,
            delivery_id=delivery_id,
            body=body,
            secrets=channel.signing_secrets(datetime.now(UTC)),
        )
    elif not isinstance(channel, EmailChannel):
        # Sent at once, outside the robot's pacing: if the robot is at its limit, the
        # platform's throttling answer is the test's outcome.
        chat = chat_test_message(channel, partner, delivery_id, datetime.now(UTC))
        outcome = await rt.chat.send(channel, chat, delivery_id=delivery_id)
    elif rt.mail is None:
        outcome = Outcome(OutcomeStatus.failed, "no SMTP server configured (RELAY_SMTP_HOST)")
    else:
        message = test_email(
            partner, channel, delivery_id, rt.settings.mail_from, datetime.now(UTC)
        )
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
