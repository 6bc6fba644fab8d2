"""Carrying out one planned delivery: find the channel, render, send, and say what happened."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from relay import rendering
from relay.delivery.base import Outcome, OutcomeStatus
from relay.logs import get_logger
from relay.matching.explain import explain
from relay.models import (
    AuditRecord,
    DeliveryStatus,
    EmailChannel,
    Notification,
    PlannedDelivery,
    WebhookChannel,
)

if TYPE_CHECKING:
    from relay.app import Runtime

log = get_logger(__name__)

STATUS = {
    OutcomeStatus.delivered: DeliveryStatus.delivered,
    # Retries come with the retry topics; until then a transient failure is final.
    OutcomeStatus.retry: DeliveryStatus.failed,
    OutcomeStatus.failed: DeliveryStatus.failed,
    OutcomeStatus.disabled: DeliveryStatus.disabled,
}


async def deliver(rt: Runtime, n: Notification, planned: PlannedDelivery) -> AuditRecord:
    """One attempt of one delivery; never raises for a delivery problem."""
    started = time.perf_counter()
    partner = rt.registry.book.get(n.partner_id)
    channel = partner.channel(planned.channel_id) if partner else None
    if channel is None:
        outcome = Outcome(OutcomeStatus.failed, "channel no longer exists (partner changed it)")
    elif channel.disabled:
        outcome = Outcome(OutcomeStatus.disabled, "channel is disabled")
    elif isinstance(channel, WebhookChannel):
        outcome = await _webhook(rt, n, planned, channel)
    else:
        outcome = await _email(rt, n, planned, channel)
    status = STATUS[outcome.status]
    latency = outcome.latency_ms or (time.perf_counter() - started) * 1000
    rt.counters[f"delivery.{planned.channel_type}.{status}"] += 1
    log.info(
        f"{planned.channel_type}_{status}",
        delivery_id=planned.delivery_id,
        partner_id=n.partner_id,
        document_id=n.document.id,
        detail=outcome.detail,
    )
    return AuditRecord(
        kind=f"delivery.{status}",
        at=datetime.now(UTC),
        event_id=n.event_id,
        document_id=n.document.id,
        version=n.document.version,
        partner_id=n.partner_id,
        notification_id=n.notification_id,
        delivery_id=planned.delivery_id,
        channel_id=planned.channel_id,
        channel_type=planned.channel_type,
        status=status,
        attempt=1,
        latency_ms=round(latency, 2),
        detail=outcome.detail,
    )


async def _webhook(
    rt: Runtime, n: Notification, planned: PlannedDelivery, channel: WebhookChannel
) -> Outcome:
    body = rendering.webhook_body(
        n,
        planned,
        why=explain(n.match),
        base_url=rt.settings.base_url,
        now=datetime.now(UTC),
        link_secret=rt.settings.link_secret,
    )
    return await rt.webhooks.send(
        url=channel.url,
        delivery_id=planned.delivery_id,
        body=body,
        secrets=channel.signing_secrets(datetime.now(UTC)),
    )


async def _email(
    rt: Runtime, n: Notification, planned: PlannedDelivery, channel: EmailChannel
) -> Outcome:
    if rt.mail is None:
        return Outcome(OutcomeStatus.failed, "no SMTP server configured (RELAY_SMTP_HOST)")
    message = rendering.build_email(
        n,
        planned,
        channel,
        why=explain(n.match),
        mail_from=rt.settings.mail_from,
        base_url=rt.settings.base_url,
        now=datetime.now(UTC),
        link_secret=rt.settings.link_secret,
    )
    return await rt.mail.send(message)
