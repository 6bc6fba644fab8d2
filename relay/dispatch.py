"""Carrying out one delivery intent: check the ledger, send, record, then retry or dead-letter.

Called by the delivery agents with the intent's source event as the current event, so
table writes land in the intent's partition.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from relay import rendering, topics
from relay.delivery.base import Outcome, OutcomeStatus
from relay.ledger import table_get
from relay.logs import get_logger
from relay.matching.explain import explain
from relay.models import (
    AuditRecord,
    DeliveryIntent,
    DeliveryStatus,
    EmailChannel,
    PlannedDelivery,
    WebhookChannel,
)
from relay.retrying import Health, decide, health_after
from relay.settings import Profile

if TYPE_CHECKING:
    from relay.app import Runtime

log = get_logger(__name__)
#: Jitter for retry waits (shared with the delivery agents).
rng = random.Random()


def ledger_entry(rt: Runtime, intent: DeliveryIntent) -> dict[str, Any]:
    """The delivery's entry as the ledger holds it (a :class:`LedgerEntry` in JSON form)."""
    stored: dict[str, Any] | None = rt.ledger.lookup(intent.delivery_id)
    return stored if stored else new_ledger_entry(intent)


def new_ledger_entry(intent: DeliveryIntent) -> dict[str, Any]:
    """A pending :class:`LedgerEntry` in JSON form.

    The ledger keeps JSON-ready dicts, built here and by :func:`record_attempt` with no
    model in between, as this runs for every delivery (a unit test holds them to the model).
    """
    n = intent.full
    return {
        "delivery_id": intent.delivery_id,
        "partner_id": n.partner_id,
        "document_id": n.document.id,
        "channel_id": intent.channel_id,
        "channel_type": intent.channel_type,
        "status": DeliveryStatus.pending.value,
        "attempts": [],
        "next_attempt_at": None,
    }


def record_attempt(
    entry: dict[str, Any],
    attempt: int,
    started_at: datetime,
    outcome: Outcome,
    status: DeliveryStatus,
    next_attempt_at: datetime | None,
) -> None:
    """Add one attempt (an :class:`Attempt` in JSON form) and the state it led to."""
    entry["attempts"].append(
        {
            "attempt": attempt,
            "at": started_at.isoformat(),
            "status": outcome.status.value,
            "http_status": outcome.http_status or outcome.smtp_code,
            "latency_ms": round(outcome.latency_ms, 2),
            "detail": outcome.detail,
        }
    )
    entry["status"] = status.value
    entry["next_attempt_at"] = next_attempt_at.isoformat() if next_attempt_at else None


async def handle(
    rt: Runtime, intent: DeliveryIntent, audit: list[AuditRecord], partition: int
) -> None:
    """One attempt of one intent, and everything that follows from its outcome.

    ``intent`` carries the whole notification and came from ``partition`` of its delivery
    topic. Its audit records are appended to ``audit`` and its ledger entry is put in the
    ledger unflushed: the caller writes both once for a whole batch.
    """
    entry = ledger_entry(rt, intent)
    if entry["status"] == DeliveryStatus.delivered.value:
        # A repeat after a crash or a replay of something that got through: never resend,
        # but record the outcome again, in case the crash came before it was recorded.
        rt.counters["delivery.duplicate_suppressed"] += 1
        log.info("delivery_already_done", delivery_id=intent.delivery_id)
        last: dict[str, Any] = entry["attempts"][-1] if entry["attempts"] else {}
        audit.append(
            outcome_record(
                intent,
                DeliveryStatus.delivered,
                datetime.now(UTC),
                attempt=last.get("attempt", intent.attempt),
                detail=f"already delivered ({last.get('detail') or 'no detail'}); not resent",
                http_status=last.get("http_status"),
            )
        )
        return
    started_at = datetime.now(UTC)
    outcome = await attempt(rt, intent)
    # Waits count from the end of the attempt: a 15 s timeout plus a 60 s floor is 75 s.
    now = datetime.now(UTC)
    decision = decide(intent.attempt, outcome, rt.retry_policy, now, rng)

    record_attempt(entry, intent.attempt, started_at, outcome, decision.status, decision.retry_at)
    rt.ledger.put(intent.delivery_id, entry, partition)

    n = intent.full
    rt.counters[f"delivery.{intent.channel_type}.{decision.status}"] += 1
    # A success is logged at debug: the ledger, the audit trail and the API hold every
    # attempt, and the agent logs a line per batch. Anything else is logged here, at info.
    (log.debug if decision.status is DeliveryStatus.delivered else log.info)(
        f"{intent.channel_type}_{decision.status}",
        delivery_id=intent.delivery_id,
        partner_id=n.partner_id,
        document_id=n.document.id,
        attempt=intent.attempt,
        detail=outcome.detail,
    )
    audit.append(
        outcome_record(
            intent,
            decision.status,
            now,
            attempt=intent.attempt,
            latency_ms=round(outcome.latency_ms, 2),
            detail=outcome.detail,
            reason=decision.reason,
            http_status=outcome.http_status or outcome.smtp_code,
            next_attempt_at=decision.retry_at,
        )
    )
    follow_ups: list[Coroutine[Any, Any, object]] = []
    if decision.retry_at is not None or decision.dead_letter:
        nxt = intent.model_copy(
            update={
                "first_attempt_at": intent.first_attempt_at or now,
                "last_error": outcome.detail,
            }
        )
    if decision.retry_at is not None:
        retry = nxt.model_copy(update={"attempt": intent.attempt + 1, "due_at": decision.retry_at})
        follow_ups.append(rt.send(topics.RETRY, n.partner_id, retry.model_dump_json().encode()))
    if decision.dead_letter:
        dead = nxt.model_copy(update={"dead_reason": decision.reason, "dead_at": now})
        follow_ups.append(
            rt.send(topics.DEAD_LETTER, n.partner_id, dead.model_dump_json().encode())
        )
    if follow_ups:
        await asyncio.gather(*follow_ups)
    await _track_health(rt, intent, outcome, now)


def outcome_record(
    intent: DeliveryIntent, status: DeliveryStatus, at: datetime, **fields: Any
) -> AuditRecord:
    """The audit record of one attempt's outcome."""
    n = intent.full
    return AuditRecord(
        kind=f"delivery.{status}",
        at=at,
        event_id=n.event_id,
        document_id=n.document.id,
        version=n.document.version,
        partner_id=n.partner_id,
        notification_id=n.notification_id,
        delivery_id=intent.delivery_id,
        channel_id=intent.channel_id,
        channel_type=intent.channel_type,
        status=status,
        **fields,
    )


async def attempt(rt: Runtime, intent: DeliveryIntent) -> Outcome:
    """Send it once over its channel; problems come back as an Outcome, never raised."""
    n = intent.full
    partner = rt.registry.book.get(n.partner_id)
    channel = partner.channel(intent.channel_id) if partner else None
    if channel is None:
        return Outcome(OutcomeStatus.failed, "channel no longer exists (the partner removed it)")
    if channel.disabled:
        return Outcome(OutcomeStatus.disabled, f"channel is disabled: {channel.disabled_reason}")
    wait = rt.limiter.reserve(f"{n.partner_id}/{channel.id}", time.monotonic())
    if wait > 0:
        await asyncio.sleep(wait)
    planned = PlannedDelivery(
        delivery_id=intent.delivery_id, channel_id=channel.id, channel_type=channel.type
    )
    started = time.perf_counter()
    if isinstance(channel, WebhookChannel):
        outcome = await _webhook(rt, intent, planned, channel)
    else:
        outcome = await _email(rt, intent, planned, channel)
    if not outcome.latency_ms:
        outcome = Outcome(
            outcome.status,
            outcome.detail,
            outcome.http_status,
            outcome.retry_after,
            (time.perf_counter() - started) * 1000,
            outcome.smtp_code,
        )
    return outcome


async def _webhook(
    rt: Runtime, intent: DeliveryIntent, planned: PlannedDelivery, channel: WebhookChannel
) -> Outcome:
    if rt.settings.profile == Profile.production and urlsplit(channel.url).scheme != "https":
        return Outcome(OutcomeStatus.failed, "refused: webhooks must use https in production")
    n = intent.full
    now = datetime.now(UTC)
    body = rendering.webhook_body(
        n,
        planned,
        why=explain(n.match),
        base_url=rt.settings.base_url,
        now=now,
        link_secret=rt.settings.link_secret,
    )
    return await rt.webhooks.send(
        url=channel.url,
        delivery_id=planned.delivery_id,
        body=body,
        secrets=channel.signing_secrets(now),
    )


async def _email(
    rt: Runtime, intent: DeliveryIntent, planned: PlannedDelivery, channel: EmailChannel
) -> Outcome:
    if rt.mail is None:
        return Outcome(OutcomeStatus.retry, "no SMTP server configured (RELAY_SMTP_HOST)")
    n = intent.full
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


async def _track_health(
    rt: Runtime, intent: DeliveryIntent, outcome: Outcome, now: datetime
) -> None:
    """Disable a channel that answered 410 or has failed without a break for too long."""
    key = f"{intent.partner_id}/{intent.channel_id}"
    stored = table_get(rt.channel_health, key)
    if stored is None and outcome.status is OutcomeStatus.delivered:
        return  # a healthy channel stays healthy (the common case: nothing to read or write)
    health = Health(
        failing_since=datetime.fromisoformat(stored["since"])
        if stored and stored["since"]
        else None,
        failures=stored["failures"] if stored else 0,
    )
    health, too_long = health_after(health, outcome, now, rt.settings.disable_after)
    if outcome.status is OutcomeStatus.disabled:
        reason = f"the receiver answered {outcome.detail}"
    elif too_long:
        reason = (
            f"failing without a success since {health.failing_since:%Y-%m-%d %H:%M} UTC "
            f"({health.failures} failed attempts)"
        )
    else:
        if stored or health.failing_since:
            rt.channel_health[key] = {
                "since": health.failing_since.isoformat() if health.failing_since else None,
                "failures": health.failures,
            }
        return
    rt.channel_health[key] = {"since": None, "failures": 0}
    await rt.disable_channel(intent.partner_id, intent.channel_id, reason)
