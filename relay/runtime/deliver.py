"""Carrying out one delivery intent: check the ledger, send, record, then retry or dead-letter.

Called by the delivery agents with the intent's source event as the current event, so
table writes land in the intent's partition.

An attempt is made once. Copies of an intent come back: the batch whose offset was not
committed before a crash is read again, a retry can be released twice, an operator can
replay a dead letter twice. The ledger knows every attempt by (replay round, attempt), so
a copy of an attempt already made is dropped (:func:`verdict`). That is safe because an
attempt's entry is put only after its follow-up (the retry, the dead letter) is written,
and written to the changelog at once when there is one: whoever reads the entry may rely
on the follow-up existing.

Everything it touches comes through :class:`Ports` (the worker's :class:`Runtime` is one),
so this logic runs as well against fakes in unit tests (tests/unit/test_deliver.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections import Counter
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from relay.core import pacing, rendering, topics
from relay.core.chat import chat_message
from relay.core.chatbots import CHAT_TYPES, FACTS, Platform
from relay.core.clock import Clock
from relay.core.digest import holds
from relay.core.lifecycle import expired
from relay.core.logs import get_logger
from relay.core.matching.explain import explain
from relay.core.models import (
    AuditRecord,
    BotChannel,
    DeliveryIntent,
    DeliveryStatus,
    EmailChannel,
    Notification,
    Partner,
    PlannedDelivery,
    WebhookChannel,
)
from relay.core.models.questions import FaqEntry
from relay.core.outcome import MailTransport, Outcome, OutcomeStatus, WebhookTransport
from relay.core.questions import FAQ_IN_NOTICE, QuestionBook
from relay.core.retry import Health, RateLimiter, RetryPolicy, decide, health_after
from relay.core.settings import Profile, Settings

log = get_logger(__name__)
#: Jitter for retry waits (shared with the delivery agents).
rng = random.Random()


class Table(Protocol):
    """A changelogged table of the worker, as the delivery logic uses it."""

    def lookup(self, key: str) -> Any: ...

    def __setitem__(self, key: str, value: Any) -> None: ...


class ChatTransport(Protocol):
    async def send(
        self, channel: BotChannel, body: dict[str, Any], *, delivery_id: str
    ) -> Outcome: ...


class Ledger(Table, Protocol):
    def put(self, key: str, value: Any, partition: int) -> None: ...

    async def flush(self) -> None: ...


class Partners(Protocol):
    def get(self, partner_id: str) -> Partner | None: ...


class Registry(Protocol):
    @property
    def book(self) -> Partners: ...


class Out(Protocol):
    async def send(self, topic: str, key: str | None, value: bytes) -> tuple[int, int]: ...


class DeadLetters(Protocol):
    async def dead_letter(self, intent: DeliveryIntent, reason: str, detail: str) -> None: ...


class Channels(Protocol):
    async def disable(self, partner_id: str, channel_id: str, reason: str) -> None: ...


class Metrics(Protocol):
    def observe_delivery(self, channel_type: str, status: str, seconds: float) -> None: ...


class Questions(Protocol):
    @property
    def book(self) -> QuestionBook: ...


class Ports(Protocol):
    """What carrying out a delivery needs of the worker."""

    @property
    def settings(self) -> Settings: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def channel_health(self) -> Table: ...
    @property
    def registry(self) -> Registry: ...
    @property
    def limiter(self) -> RateLimiter: ...
    @property
    def retry_policy(self) -> RetryPolicy: ...
    @property
    def counters(self) -> Counter[str]: ...
    @property
    def webhooks(self) -> WebhookTransport: ...
    @property
    def mail(self) -> MailTransport | None: ...
    @property
    def chat(self) -> ChatTransport: ...
    @property
    def bot_windows(self) -> Ledger: ...
    @property
    def digests(self) -> Ledger: ...
    @property
    def out(self) -> Out: ...
    @property
    def parking(self) -> DeadLetters: ...
    @property
    def channels(self) -> Channels: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def questions(self) -> Questions: ...


def ledger_entry(rt: Ports, intent: DeliveryIntent) -> dict[str, Any]:
    """A copy of the delivery's entry as the ledger holds it (a :class:`LedgerEntry` in JSON
    form), to change and put back: the stored one changes only when it is put."""
    stored: dict[str, Any] | None = rt.ledger.lookup(intent.delivery_id)
    if not stored:
        return new_ledger_entry(intent)
    return {**stored, "attempts": list(stored["attempts"])}


def new_ledger_entry(intent: DeliveryIntent) -> dict[str, Any]:
    """A pending :class:`LedgerEntry` in JSON form.

    The ledger keeps JSON-ready dicts, built here and by :func:`record_attempt` with no
    model in between, as this runs for every delivery (a unit test holds them to the model).
    """
    return {
        "delivery_id": intent.delivery_id,
        "partner_id": intent.partner_id,
        "document_id": intent.document_id,
        "channel_id": intent.channel_id,
        "channel_type": intent.channel_type,
        "status": DeliveryStatus.pending.value,
        "attempts": [],
        "next_attempt_at": None,
        "reason": None,
    }


def record_attempt(
    entry: dict[str, Any],
    attempt: int,
    started_at: datetime,
    outcome: Outcome,
    status: DeliveryStatus,
    next_attempt_at: datetime | None,
    *,
    replay: int = 0,
    reason: str | None = None,
) -> None:
    """Add one attempt (an :class:`Attempt` in JSON form) and the state it led to."""
    entry["attempts"].append(
        {
            "attempt": attempt,
            "replay": replay,
            "at": started_at.isoformat(),
            "status": outcome.status.value,
            "http_status": outcome.http_status or outcome.smtp_code,
            "latency_ms": round(outcome.latency_ms, 2),
            "detail": outcome.detail,
        }
    )
    entry["status"] = status.value
    entry["next_attempt_at"] = next_attempt_at.isoformat() if next_attempt_at else None
    entry["reason"] = reason


#: What the ledger says of an intent about to be attempted (see :func:`verdict`).
NEW, MADE, EARLY = "new", "made", "early"


def verdict(entry: dict[str, Any], replays: int, attempt: int, now: datetime) -> str:
    """Whether attempt ``attempt`` of replay round ``replays`` is ``NEW``, already ``MADE``
    or ``EARLY``, by the ledger's last attempt of the delivery.

    ``MADE``: the ledger holds this attempt or a later one: this is a copy (its batch read
    again after a crash, a retry released twice, a second replay of the same dead letter).
    ``EARLY``: the last attempt is the one before and the next is not due yet: a stale copy
    of a retry (its attempt was made again after a crash, and the receiver asked for a
    later time then), which would otherwise go out sooner than the receiver's Retry-After.
    """
    if not entry["attempts"]:
        return NEW
    last = entry["attempts"][-1]
    made = (last.get("replay", 0), last["attempt"])
    if (replays, attempt) <= made:
        return MADE
    due = entry["next_attempt_at"]
    if (replays, attempt - 1) == made and due and now < datetime.fromisoformat(due):
        return EARLY
    return NEW


async def handle(
    rt: Ports, intent: DeliveryIntent, audit: list[AuditRecord], partition: int
) -> None:
    """One attempt of one intent, and everything that follows from its outcome.

    ``intent`` carries the whole notification and came from ``partition`` of its delivery
    topic. Its audit records are appended to ``audit`` and its ledger entry is put in the
    ledger, unflushed unless a retry or dead letter followed: the caller writes both once
    for a whole batch.
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
    seen = verdict(entry, intent.replays, intent.attempt, started_at)
    if seen == MADE:
        _made_already(rt, intent, entry, audit, started_at)
        return
    if seen == EARLY:
        await _not_due_yet(rt, intent, entry["next_attempt_at"])
        return
    if expired(intent.full, rt.clock.today()):
        _expired(rt, intent, entry, audit, partition, started_at)
        return
    if intent.attempt == 1 and intent.replays == 0:
        from relay.runtime import digests  # it builds on this module

        if digests.held_already(entry):
            rt.counters["delivery.repeat_suppressed"] += 1
            return
        if holds(rt.registry.book.get(intent.partner_id), intent.channel_type):
            digests.hold(rt, intent, entry, audit, partition)
            return
    if intent.channel_type in CHAT_TYPES and await _paced(rt, intent, partition):
        return  # not its turn at the robot yet: parked until its slot, not an attempt
    outcome = await attempt(rt, intent)
    # Waits count from the end of the attempt: a 15 s timeout plus a 60 s floor is 75 s.
    now = datetime.now(UTC)
    decision = decide(intent.attempt, outcome, rt.retry_policy, now, rng)
    if outcome.throttled and outcome.retry_after:
        await _throttled(rt, intent, partition, now.timestamp() + outcome.retry_after)
    rt.metrics.observe_delivery(intent.channel_type, decision.status, outcome.latency_ms / 1000)

    record_attempt(
        entry,
        intent.attempt,
        started_at,
        outcome,
        decision.status,
        decision.retry_at,
        replay=intent.replays,
        reason=decision.reason,
    )

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
        follow_ups.append(rt.out.send(topics.RETRY, n.partner_id, retry.model_dump_json().encode()))
    if decision.dead_letter:
        dead = nxt.model_copy(update={"dead_reason": decision.reason, "dead_at": now})
        follow_ups.append(
            rt.out.send(topics.DEAD_LETTER, n.partner_id, dead.model_dump_json().encode())
        )
    if follow_ups:
        await asyncio.gather(*follow_ups)
    # Only now that its follow-up is written (see the module's docstring).
    rt.ledger.put(intent.delivery_id, entry, partition)
    if follow_ups:
        # At once rather than with the batch: a crash while the rest of the batch is still
        # in flight would otherwise make this attempt again and dead-letter it twice.
        try:
            await rt.ledger.flush()
        except Exception:  # kept, and written with the batch's flush
            log.warning("ledger_flush_failed", delivery_id=intent.delivery_id, exc_info=True)
    try:
        await _track_health(rt, intent, outcome, now)
    except Exception:
        # The outcome and its follow-up are recorded: a health-keeping failure must not
        # dead-letter the delivery as well.
        log.exception("channel_health_failed", delivery_id=intent.delivery_id)


def _expired(
    rt: Ports,
    intent: DeliveryIntent,
    entry: dict[str, Any],
    audit: list[AuditRecord],
    partition: int,
    now: datetime,
) -> None:
    """Recorded as failed for the reason ``expired``: final, not retried, not dead-lettered
    (a replay would be refused the same way)."""
    n = intent.full
    detail = (
        f"not sent: the document expired on {n.document.expires_on}; an expired policy is "
        "no longer relayed"
    )
    rt.counters["delivery.expired_not_sent"] += 1
    log.info("delivery_expired_not_sent", delivery_id=intent.delivery_id, document_id=n.document.id)
    outcome = Outcome(OutcomeStatus.failed, detail)
    record_attempt(
        entry,
        intent.attempt,
        now,
        outcome,
        DeliveryStatus.failed,
        None,
        replay=intent.replays,
        reason="expired",
    )
    rt.ledger.put(intent.delivery_id, entry, partition)
    audit.append(
        outcome_record(
            intent,
            DeliveryStatus.failed,
            now,
            attempt=intent.attempt,
            detail=detail,
            reason="expired",
        )
    )


async def _paced(rt: Ports, intent: DeliveryIntent, partition: int) -> bool:
    """Hold a group-robot message to its platform's rate (relay.core.pacing): True when it
    was parked until its slot. The slot is written to the changelog before the message
    goes, so a restarted worker never sends more than the robot takes in a minute."""
    partner = rt.registry.book.get(intent.partner_id)
    channel = partner.channel(intent.channel_id) if partner else None
    if channel is None or channel.disabled:
        return False  # the attempt says why
    key = f"{intent.partner_id}/{intent.channel_id}"
    window = pacing.Window.of(rt.bot_windows.lookup(key))
    now = time.time()
    turn = pacing.turn(window, FACTS[Platform(intent.channel_type)], intent.delivery_id, now)
    if turn.now:
        pacing.sent(window, now)
    rt.bot_windows.put(key, window.dump(), partition)
    await rt.bot_windows.flush()
    if turn.now:
        return False
    rt.counters[f"delivery.{intent.channel_type}.paced"] += 1
    log.debug(
        "chat_paced",
        delivery_id=intent.delivery_id,
        channel_id=intent.channel_id,
        wait=round(turn.at - now, 1),
    )
    later = intent.model_copy(update={"due_at": datetime.fromtimestamp(turn.at, UTC)})
    await rt.out.send(topics.RETRY, intent.partner_id, later.model_dump_json().encode())
    return True


async def _throttled(rt: Ports, intent: DeliveryIntent, partition: int, until: float) -> None:
    """The platform said the robot sends too fast: nothing more to it before ``until``."""
    key = f"{intent.partner_id}/{intent.channel_id}"
    window = pacing.Window.of(rt.bot_windows.lookup(key))
    pacing.blocked(window, until)
    rt.bot_windows.put(key, window.dump(), partition)
    await rt.bot_windows.flush()
    log.warning(
        "chat_throttled",
        partner_id=intent.partner_id,
        channel_id=intent.channel_id,
        until=datetime.fromtimestamp(until, UTC).isoformat(),
    )


def _made_already(
    rt: Ports,
    intent: DeliveryIntent,
    entry: dict[str, Any],
    audit: list[AuditRecord],
    now: datetime,
) -> None:
    """A copy of an attempt the ledger holds: not made again (its follow-up exists)."""
    rt.counters["delivery.repeat_suppressed"] += 1
    last = entry["attempts"][-1]
    log.info(
        "delivery_attempt_already_made",
        delivery_id=intent.delivery_id,
        attempt=intent.attempt,
        replays=intent.replays,
        status=entry["status"],
    )
    if (intent.replays, intent.attempt) != (last.get("replay", 0), last["attempt"]):
        return  # an older one: the ledger's later attempts have their outcomes recorded
    # The latest: the crash may have come before its outcome reached the audit trail.
    due = entry["next_attempt_at"]
    audit.append(
        outcome_record(
            intent,
            DeliveryStatus(entry["status"]),
            now,
            attempt=intent.attempt,
            detail=f"attempt {intent.attempt} already made ({last.get('detail') or 'no detail'})"
            "; not made again",
            reason=entry.get("reason"),
            http_status=last.get("http_status"),
            next_attempt_at=datetime.fromisoformat(due) if due else None,
        )
    )


async def _not_due_yet(rt: Ports, intent: DeliveryIntent, due: str) -> None:
    """A copy of a retry that came before the time the ledger's last attempt set: parked
    again until then (the retries table keeps one per delivery, so it joins the other)."""
    rt.counters["delivery.early_copy_parked"] += 1
    log.info(
        "delivery_not_due_yet", delivery_id=intent.delivery_id, attempt=intent.attempt, due=due
    )
    later = intent.model_copy(update={"due_at": datetime.fromisoformat(due)})
    await rt.out.send(topics.RETRY, intent.partner_id, later.model_dump_json().encode())


async def unsendable(
    rt: Ports,
    intent: DeliveryIntent,
    partition: int,
    detail: str,
    *,
    wait: float | None = None,
    reason: str = "malformed",
) -> None:
    """An intent that cannot be sent as it is (its document not read yet, or not its own):
    tried again in ``wait`` seconds, or dead-lettered with ``reason``. Kept in the ledger
    like an attempt (nothing sent), so a copy of it is dropped as one would be."""
    entry = ledger_entry(rt, intent)
    now = datetime.now(UTC)
    if entry["status"] == DeliveryStatus.delivered.value or (
        verdict(entry, intent.replays, intent.attempt, now) == MADE
    ):
        rt.counters["delivery.repeat_suppressed"] += 1
        log.info("delivery_attempt_already_made", delivery_id=intent.delivery_id, detail=detail)
        return
    retry_at = now + timedelta(seconds=wait) if wait is not None else None
    if retry_at is not None:
        later = intent.model_copy(
            update={"attempt": intent.attempt + 1, "due_at": retry_at, "last_error": detail}
        )
        await rt.out.send(topics.RETRY, intent.partner_id, later.model_dump_json().encode())
        status, outcome = DeliveryStatus.retrying, Outcome(OutcomeStatus.retry, detail)
    else:
        await rt.parking.dead_letter(intent, reason, detail)
        status = DeliveryStatus.dead if reason == "retries_exhausted" else DeliveryStatus.failed
        outcome = Outcome(OutcomeStatus.failed, detail)
    record_attempt(
        entry,
        intent.attempt,
        now,
        outcome,
        status,
        retry_at,
        replay=intent.replays,
        reason=None if retry_at else reason,
    )
    rt.ledger.put(intent.delivery_id, entry, partition)
    try:
        await rt.ledger.flush()
    except Exception:  # kept, and written with the batch's flush
        log.warning("ledger_flush_failed", delivery_id=intent.delivery_id, exc_info=True)


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


async def attempt(rt: Ports, intent: DeliveryIntent) -> Outcome:
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
    elif isinstance(channel, EmailChannel):
        outcome = await _email(rt, intent, planned, channel)
    else:
        outcome = await _chat(rt, intent, planned, channel)
    if not outcome.latency_ms:
        outcome = dataclasses.replace(outcome, latency_ms=(time.perf_counter() - started) * 1000)
    return outcome


def faq_of(rt: Ports, n: Notification) -> list[FaqEntry]:
    """The document's published answers as they are now: every notice of it carries them
    (a retry of an older notice too), the newest FAQ_IN_NOTICE of them."""
    return rt.questions.book.faq(n.document.id, FAQ_IN_NOTICE)


async def _webhook(
    rt: Ports, intent: DeliveryIntent, planned: PlannedDelivery, channel: WebhookChannel
) -> Outcome:
    if rt.settings.profile == Profile.production and urlsplit(channel.url).scheme != "https":
        return Outcome(OutcomeStatus.failed, "refused: webhooks must use https in production")
    n = intent.full
    now = datetime.now(UTC)
    body = rendering.webhook_body(
        n,
        planned,
        why=explain(n.match, n.document, n.partner_kind),
        base_url=rt.settings.base_url,
        # What the notice says of dates (validity, days to expiry) is on the policy calendar.
        now=rt.clock.now(),
        link_secret=rt.settings.link_secret,
        faq=faq_of(rt, n),
    )
    return await rt.webhooks.send(
        url=channel.url,
        delivery_id=planned.delivery_id,
        body=body,
        secrets=channel.signing_secrets(now),
    )


async def _chat(
    rt: Ports, intent: DeliveryIntent, planned: PlannedDelivery, channel: BotChannel
) -> Outcome:
    n = intent.full
    body = chat_message(
        channel,
        n,
        planned,
        why=explain(n.match, n.document, n.partner_kind),
        base_url=rt.settings.base_url,
        now=rt.clock.now(),
        link_secret=rt.settings.link_secret,
        faq=faq_of(rt, n),
    )
    return await rt.chat.send(channel, body, delivery_id=planned.delivery_id)


async def _email(
    rt: Ports, intent: DeliveryIntent, planned: PlannedDelivery, channel: EmailChannel
) -> Outcome:
    if rt.mail is None:
        return Outcome(OutcomeStatus.retry, "no SMTP server configured (RELAY_SMTP_HOST)")
    n = intent.full
    message = rendering.build_email(
        n,
        planned,
        channel,
        why=explain(n.match, n.document, n.partner_kind),
        mail_from=rt.settings.mail_from,
        base_url=rt.settings.base_url,
        now=rt.clock.now(),
        link_secret=rt.settings.link_secret,
        faq=faq_of(rt, n),
    )
    return await rt.mail.send(message)


async def _track_health(rt: Ports, intent: DeliveryIntent, outcome: Outcome, now: datetime) -> None:
    """Disable a channel that answered 410 or has failed without a break for too long."""
    key = f"{intent.partner_id}/{intent.channel_id}"
    stored = rt.channel_health.lookup(key)
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
    await rt.channels.disable(intent.partner_id, intent.channel_id, reason)
