"""Digest mode at run time: holding a digest partner's notices, and sending each day's digest.

Holding runs in the delivery agents (relay.runtime.deliver.handle), in the partner's
partition; sending runs on the digest ticker (relay.agents.delivery) in the worker that
owns that partition of the channel's delivery topic. Both write the ``digests`` table (a
changelogged BatchedTable, written with explicit partitions), so a held notice survives
restarts and moves with its partition in a rebalance. A digest is removed from the table
only once it is sent (or given up on), after which each held notice's ledger entry says
how it ended; a crash in between sends it again under the same delivery id.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from relay.core import digest, topics
from relay.core.lifecycle import expired
from relay.core.logs import get_logger
from relay.core.models import (
    AuditRecord,
    DeliveryIntent,
    DeliveryStatus,
    EmailChannel,
    Notification,
    WebhookChannel,
)
from relay.core.outcome import Outcome, OutcomeStatus
from relay.core.settings import Profile
from relay.runtime import deliver
from relay.runtime.deliver import Ports

log = get_logger(__name__)

HELD = "held for the digest of "


def held_already(entry: dict[str, Any]) -> bool:
    """The ledger says this notice waits in a digest (a copy of its intent came again)."""
    reason = entry.get("reason") or ""
    return entry["status"] == DeliveryStatus.pending.value and reason.startswith(HELD)


def hold(
    rt: Ports,
    intent: DeliveryIntent,
    entry: dict[str, Any],
    audit: list[AuditRecord],
    partition: int,
) -> None:
    """Put the notice in its day's digest instead of sending it now."""
    partner = rt.registry.book.get(intent.partner_id)
    assert partner is not None
    at = digest.digest_time(partner)
    day = digest.digest_day(rt.clock.now(), at)
    key = digest.digest_key(intent.partner_id, intent.channel_id, day)
    stored = rt.digests.lookup(key)
    held = (
        digest.HeldDigest.model_validate(stored)
        if stored
        else digest.HeldDigest(
            partner_id=intent.partner_id,
            channel_id=intent.channel_id,
            channel_type=intent.channel_type,
            day=day,
            partition=partition,
            due=digest.due_at(day, at),
        )
    )
    held.items[intent.delivery_id] = intent.full
    rt.digests.put(key, held.model_dump(mode="json"), partition)
    entry["reason"] = f"{HELD}{day.isoformat()}"
    entry["next_attempt_at"] = held.due.isoformat()
    rt.ledger.put(intent.delivery_id, entry, partition)
    rt.counters[f"delivery.{intent.channel_type}.held"] += 1
    audit.append(
        deliver.outcome_record(
            intent,
            DeliveryStatus.pending,
            datetime.now(UTC),
            detail=f"held for the digest of {day.isoformat()} at {at:%H:%M} (Asia/Shanghai)",
            next_attempt_at=held.due,
        )
    )


def due_digests(
    rt: Ports, owned: set[tuple[str, int]], items: list[tuple[str, Any]]
) -> list[tuple[str, digest.HeldDigest]]:
    """The held digests that are due now and whose partition this worker owns."""
    now, real = rt.clock.now(), time.time()
    out = []
    for key, stored in items:
        if not stored:
            continue
        held = digest.HeldDigest.model_validate(stored)
        if held.due > now or (held.next_try is not None and held.next_try > real):
            continue
        if (topics.DELIVER[held.channel_type], held.partition) in owned and held.items:
            out.append((key, held))
    return out


async def send_digest(rt: Ports, key: str, held: digest.HeldDigest) -> list[AuditRecord]:
    """Send one day's digest of one channel and record how each of its notices ended (in
    the ledger; the audit records are returned for the caller to write).

    Notices of documents that expired while they waited are not listed: they end failed
    for the reason ``expired``, as an immediate one would (relay.core.lifecycle.expired).
    """
    today = rt.clock.today()
    stale = {did: n for did, n in held.items.items() if expired(n, today)}
    gone: list[AuditRecord] = []
    if stale:
        detail = "not sent: the document expired before the digest; it is no longer relayed"
        gone = _settle(
            rt, held, stale, DeliveryStatus.failed, Outcome(OutcomeStatus.failed, detail), "expired"
        )
        for did in stale:
            del held.items[did]
        if not held.items:  # nothing left to send
            rt.digests.put(key, None, held.partition)
            await rt.ledger.flush()
            await rt.digests.flush()
            return gone
    return gone + await _send(rt, key, held)


async def _send(rt: Ports, key: str, held: digest.HeldDigest) -> list[AuditRecord]:
    partner = rt.registry.book.get(held.partner_id)
    channel = partner.channel(held.channel_id) if partner else None
    now = datetime.now(UTC)
    started = time.perf_counter()
    if channel is None:
        outcome = Outcome(OutcomeStatus.failed, "channel no longer exists (the partner removed it)")
    elif channel.disabled:
        outcome = Outcome(OutcomeStatus.disabled, f"channel is disabled: {channel.disabled_reason}")
    elif isinstance(channel, WebhookChannel):
        if rt.settings.profile == Profile.production and urlsplit(channel.url).scheme != "https":
            outcome = Outcome(
                OutcomeStatus.failed, "refused: webhooks must use https in production"
            )
        else:
            body = digest.webhook_body(
                held, base_url=rt.settings.base_url, now=now, link_secret=rt.settings.link_secret
            )
            outcome = await rt.webhooks.send(
                url=channel.url,
                delivery_id=held.delivery_id,
                body=body,
                secrets=channel.signing_secrets(now),
            )
    elif isinstance(channel, EmailChannel):
        if rt.mail is None:
            outcome = Outcome(OutcomeStatus.retry, "no SMTP server configured (RELAY_SMTP_HOST)")
        else:
            message = digest.build_email(
                held,
                channel,
                mail_from=rt.settings.mail_from,
                base_url=rt.settings.base_url,
                now=now,
                link_secret=rt.settings.link_secret,
            )
            outcome = await rt.mail.send(message)
    else:  # a group robot: one message, its delivery id as 钉钉's msgUuid
        try:
            robot_body = digest.chat_body(
                held,
                channel,
                base_url=rt.settings.base_url,
                link_secret=rt.settings.link_secret,
                now=now,
            )
        except ValueError as e:
            outcome = Outcome(OutcomeStatus.failed, f"the digest cannot be written: {e}")
        else:
            outcome = await rt.chat.send(channel, robot_body, delivery_id=held.delivery_id)
    rt.metrics.observe_delivery(
        held.channel_type, outcome.status.value, time.perf_counter() - started
    )
    log.info(
        "digest_sent" if outcome.ok else "digest_not_sent",
        partner_id=held.partner_id,
        channel_id=held.channel_id,
        day=held.day.isoformat(),
        delivery_id=held.delivery_id,
        notices=len(held.items),
        detail=outcome.detail,
    )
    if outcome.status is OutcomeStatus.retry:
        wait = rt.retry_policy.delay(held.attempts + 1, outcome, deliver.rng)
        if wait is not None:
            held.attempts += 1
            held.next_try = time.time() + wait
            rt.digests.put(key, held.model_dump(mode="json"), held.partition)
            await rt.digests.flush()
            return []
        return await _finish(rt, key, held, DeliveryStatus.dead, outcome, "retries_exhausted")
    if outcome.ok:
        return await _finish(rt, key, held, DeliveryStatus.delivered, outcome, None)
    return await _finish(rt, key, held, DeliveryStatus.failed, outcome, "permanent_failure")


async def _finish(
    rt: Ports,
    key: str,
    held: digest.HeldDigest,
    status: DeliveryStatus,
    outcome: Outcome,
    reason: str | None,
) -> list[AuditRecord]:
    """Each held notice ends as the digest did; the digest leaves the table. Returns the
    audit records of the notices' outcomes, for the caller to write."""
    detail = f"in the digest {held.delivery_id} of {held.day.isoformat()}: {outcome.detail}"
    audit = _settle(
        rt,
        held,
        held.items,
        status,
        Outcome(outcome.status, detail, outcome.http_status, smtp_code=outcome.smtp_code),
        reason,
    )
    rt.digests.put(key, None, held.partition)
    await rt.ledger.flush()
    await rt.digests.flush()
    return audit


def _settle(
    rt: Ports,
    held: digest.HeldDigest,
    items: dict[str, Notification],
    status: DeliveryStatus,
    outcome: Outcome,
    reason: str | None,
) -> list[AuditRecord]:
    """Record how each of ``items`` ended, in the ledger; their audit records."""
    now = datetime.now(UTC)
    audit: list[AuditRecord] = []
    for delivery_id, n in items.items():
        intent = DeliveryIntent(
            delivery_id=delivery_id,
            channel_id=held.channel_id,
            channel_type=held.channel_type,
            notification=n,
        )
        entry = deliver.ledger_entry(rt, intent)
        deliver.record_attempt(
            entry,
            1,
            now,
            outcome,
            status,
            None,
            reason=reason,
        )
        rt.ledger.put(delivery_id, entry, held.partition)
        audit.append(
            deliver.outcome_record(
                intent,
                status,
                now,
                attempt=1,
                detail=outcome.detail,
                reason=reason,
                http_status=outcome.http_status or outcome.smtp_code,
            )
        )
    return audit
