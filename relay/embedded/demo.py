"""`relay demo` and `relay dev`: the embedded stack with sample partners and documents."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import signal
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any, TextIO

import aiohttp
from pydantic import SecretStr, ValidationError

from relay.adapters import kafka
from relay.adapters.files import load_partners, read_events
from relay.core import question_digest, topics
from relay.core.chatbots import FACTS, Platform
from relay.core.clock import rebase_sample, rebase_sample_days
from relay.core.errors import RelayError
from relay.core.lifecycle import catch_up_event_id, reminder_event_id
from relay.core.matching.reference import match_partner
from relay.core.models import (
    FINAL_STATUSES,
    DeliveryStatus,
    Document,
    DocumentEvent,
    EventType,
    Partner,
    audit_records,
)
from relay.core.settings import Settings
from relay.core.settling import Progress
from relay.embedded import feedback, report
from relay.embedded.sinks import BotSink
from relay.embedded.stack import Stack, import_partners

#: The samples: the repository's config/ and examples/ folders, package data in a wheel.
SAMPLE_PARTNERS = Path(str(files("relay.config"))) / "partners.yaml"
SAMPLE_DOCUMENTS = Path(str(files("relay.examples"))) / "documents"
#: A sample partner that joins once the first notices have settled (catch-up).
JOINING_PARTNERS = Path(str(files("relay.config"))) / "partners-joining.yaml"
#: Samples whose dates move by days, not years, with the calendar: the one the demo's expiry
#: reminder is about stays 20 days from expiring.
DAY_SHIFTED = "expiring-soon"
#: The sample revision held back until an enterprise has asked about its document through a
#: notice's 有疑问？ link and the answer is published: it then carries the answer (FAQ).
HELD_REVISION = "-revised"


def _printer(out: TextIO) -> Callable[[str], None]:
    def say(text: str) -> None:
        print(text, file=out, flush=True)

    return say


async def run_demo(settings: Settings, out: TextIO, *, timeout: float = 90.0) -> int:
    """Start the stack, publish the samples, wait for every delivery to settle, report."""
    t0 = time.monotonic()
    partners = load_partners(settings.partners_file or SAMPLE_PARTNERS)
    joining = [] if settings.partners_file else load_partners(JOINING_PARTNERS)
    # Reminders and catch-ups are looked for every second, not every minute.
    settings = settings.replace(calendar_tick=min(settings.calendar_tick, 1.0))
    if settings.operator_token is None:
        # The demo answers the question as the operator, through the API.
        settings = settings.replace(operator_token=SecretStr(secrets.token_urlsafe(32)))
    files = sorted(SAMPLE_DOCUMENTS.glob("*.json"))
    say = _printer(out)
    say("Policy Relay demo — embedded broker (in memory: it forgets everything when it stops)")
    async with Stack(
        settings, partners, run_dir=settings.data_dir / "demo", flexible_ports=True
    ) as stack:
        say(
            f"  broker {stack.broker_url} · worker {stack.web_url} · "
            f"{len(partners)} sample partners loaded ({time.monotonic() - t0:.1f}s)"
        )
        # The samples' dates move with the calendar, so the demo's outcomes do not.
        today = (stack.worker_settings or settings).clock.today()
        records: list[tuple[str, str | None, bytes | None]] = []
        expected: list[str] = []
        titles: dict[str, str] = {}
        documents: dict[str, Document] = {}
        events: dict[str, DocumentEvent] = {}
        held: list[tuple[str, str | None, bytes | None]] = []
        held_ids: list[str] = []
        for path in files:
            holding = HELD_REVISION in path.name and not held
            for ev in read_events(path):
                rebase = rebase_sample_days if DAY_SHIFTED in path.name else rebase_sample
                value = rebase(ev.data, today)
                data: dict[str, Any] = value if isinstance(value, dict) else {}
                doc: dict[str, Any] = data.get("document") or {}
                if not isinstance(doc, dict):
                    doc = {}
                eid = data.get("event_id")
                if isinstance(eid, str):
                    (held_ids if holding else expected).append(eid)
                    with contextlib.suppress(ValidationError):
                        parsed = DocumentEvent.model_validate(data)
                        documents[eid] = parsed.document
                        if not holding:
                            events[eid] = parsed
                    titles[eid] = (
                        f"■ {path.name}: {doc.get('id')} v{doc.get('version')} "
                        f"{data.get('type')} — {doc.get('title')}"
                    )
                # Published as they are, invalid ones included: the worker must refuse them.
                (held if holding else records).append(
                    (
                        topics.DOCUMENTS,
                        doc.get("id"),
                        json.dumps(value, ensure_ascii=False).encode(),
                    )
                )
        ws = stack.worker_settings or settings
        # Expiry reminders the calendar will send (normative, expiring within the days).
        for d in _current_versions(events, today):
            if reminder_due_for(d, today, ws.reminder_days):
                assert d.expires_on is not None
                rid = reminder_event_id(d.id, d.expires_on)
                expected.append(rid)
                titles[rid] = f"■ 到期提醒 expiry reminder: {d.id} — {d.title}"
        await kafka.produce(ws, records)
        say(f"  published {len(records)} sample document events; waiting for deliveries…")
        progress = Progress(expected)

        def on_record(rec: kafka.Record) -> None:
            try:
                records = audit_records(rec.value or b"")
            except ValidationError:
                return
            for r in records:
                progress.add(r)

        settled = await kafka.follow(
            stack.worker_settings or settings,
            topics.AUDIT,
            on_record,
            lambda: progress.settled,
            timeout,
        )
        say(report.render(progress, titles, partners=partners, documents=documents))
        if settled and joining:
            later = await _catch_up(ws, joining, events, today, say, timeout)
            settled = later is not None
            if later is not None:
                progress.outcomes.update(later.outcomes)
        loop_failed: str | None = None
        if settled and held:
            asked, later = await _feedback_loop(
                stack,
                ws,
                progress,
                (held, held_ids),
                (events, documents, titles),
                [*partners, *joining],
                say,
                timeout,
            )
            if isinstance(asked, str):
                loop_failed = asked
            if later is not None:
                progress.outcomes.update(later.outcomes)
                settled = later.settled
        say("")
        outcomes = list(progress.outcomes.values())
        delivered = sum(o.status == DeliveryStatus.delivered for o in outcomes)
        verified = sum(h.verified for h in stack.hooks.received)
        mails = len(stack.smtp.received) if stack.smtp else 0
        say(
            f"Deliveries: {delivered} delivered of {len(outcomes)} settled "
            f"({len(progress.pending())} still pending). Webhooks verified by the sink "
            f"(standardwebhooks): {verified}. Emails received: {mails}"
            + (f", saved in {stack.mail_dir}/" if stack.smtp else "")
            + "."
        )
        if stack.bots is not None:
            say(bot_summary(stack.bots, stack.bot_dir))
        say(f"Worker log: {stack.worker_log}. Took {time.monotonic() - t0:.1f}s.")
        if loop_failed is not None:
            say(f"relay demo: the question loop failed: {loop_failed}")
            return 1
        if not settled:
            say(
                f"relay demo: not settled after {timeout:.0f}s: events "
                f"{progress.unsettled_events()} / deliveries {progress.pending()[:5]}"
            )
            return 1
        bad = [
            o
            for o in outcomes
            if o.status in FINAL_STATUSES and o.status != DeliveryStatus.delivered
        ]
        if bad:
            say(
                f"relay demo: {len(bad)} deliveries did not succeed, e.g. "
                f"{bad[0].delivery_id}: {bad[0].detail}"
            )
            return 1
        return 0


def reminder_due_for(document: Document, today: date, days: int) -> bool:
    """A normative document whose reminder window (``days`` before ``expires_on``) is open."""
    expires = document.expires_on
    return (
        document.normative
        and expires is not None
        and expires - timedelta(days=days) <= today <= expires
    )


def _current_versions(events: dict[str, DocumentEvent], today: date) -> list[Document]:
    """The documents still in force after the samples: the last version of each, unless it
    was repealed or has expired."""
    current: dict[str, Document | None] = {}
    for ev in events.values():
        repealed = ev.type == EventType.repealed
        current[ev.document.id] = None if repealed else ev.document
    return [
        d
        for d in current.values()
        if d is not None and (d.expires_on is None or d.expires_on >= today)
    ]


async def _catch_up(
    settings: Settings,
    joining: list[Partner],
    events: dict[str, DocumentEvent],
    today: date,
    say: Callable[[str], None],
    timeout: float,
) -> Progress | None:
    """Load the partners that join late and wait for their catch-up notices: each still-valid
    document that matches one of them, once."""
    due = [
        d
        for d in _current_versions(events, today)
        if any(p.catch_up and match_partner(d, p).matched for p in joining)
    ]
    ids = [catch_up_event_id(d.id, d.version) for d in due]
    names = ", ".join(p.id for p in joining)
    say("")
    say(f"  {names} joins now (catch_up: true): the still-valid policies that match it follow")
    progress = Progress(ids)

    def on_record(rec: kafka.Record) -> None:
        with contextlib.suppress(ValidationError):
            for r in audit_records(rec.value or b""):
                progress.add(r)

    await import_partners(settings, joining)
    settled = await kafka.follow(
        settings, topics.AUDIT, on_record, lambda: progress.settled, timeout
    )
    titles = {
        catch_up_event_id(d.id, d.version): f"■ 补发 catch-up: {d.id} v{d.version} — {d.title}"
        for d in due
    }
    say(report.render(progress, titles, partners=joining))
    if not settled:
        say(f"relay demo: catch-up not settled after {timeout:.0f}s: {progress.pending()[:5]}")
        return None
    return progress


async def _feedback_loop(
    stack: Stack,
    settings: Settings,
    progress: Progress,
    revision: tuple[list[tuple[str, str | None, bytes | None]], list[str]],
    samples: tuple[dict[str, DocumentEvent], dict[str, Document], dict[str, str]],
    partners: list[Partner],
    say: Callable[[str], None],
    timeout: float,
) -> tuple[feedback.Asked | str | None, Progress | None]:
    """An enterprise asks about a document through the 有疑问？ link of a notice's email, the
    operator answers and publishes the answer, and the held-back revision of that document
    goes out carrying it. The question as asked (or why the loop failed, in one line; None
    without the demo's SMTP sink, whose email has the link) and the revision's progress, once
    published."""
    records, ids = revision
    events, documents, titles = samples
    shown = (titles, documents, partners)
    doc = documents.get(ids[0]) if ids else None
    earlier = [e for e, ev in events.items() if doc is not None and ev.document.id == doc.id]
    if doc is None or not earlier:
        return "the sample revision or its first version is missing", None
    first = events[earlier[-1]].document
    emailed = feedback.deliveries(progress, earlier[-1], "email")
    if stack.smtp is None or not emailed:
        why = (
            "RELAY_SMTP_HOST points away from the demo's SMTP sink, where it reads the link"
            if stack.smtp is None
            else f"no partner got {first.id} by email, whose 有疑问？ link it would use"
        )
        say("")
        say(f"  (no question this time: {why})")
        return None, (await _publish_revision(settings, records, ids, shown, say, timeout))[0]
    mail = next(
        (m for _, did in emailed if (m := feedback.mail_for(stack.smtp.received, did))), None
    )
    if mail is None:
        return f"no email of {first.id} v{first.version} reached the SMTP sink", None
    delivery_id = str(mail.message["X-Relay-Delivery-Id"])
    partner_id = next(pid for pid, did in emailed if did == delivery_id)
    asked = feedback.Asked(first.id, first.version, first.title, partner_id, delivery_id)
    token = settings.operator_token.get_secret_value() if settings.operator_token else ""
    http_timeout = aiohttp.ClientTimeout(total=feedback.HTTP_TIMEOUT)
    async with aiohttp.ClientSession(timeout=http_timeout) as http:
        try:
            page, status = await feedback.ask_through_link(http, feedback.text_of(mail.message))
            if status != 201 or feedback.QUESTION not in page:
                return f"posting the 有疑问？ form gave HTTP {status}", None
            answered = await feedback.answer_as_operator(http, stack.web_url, token, delivery_id)
        except (feedback.LoopFailed, aiohttp.ClientError, TimeoutError) as e:
            return str(e) or type(e).__name__, None
    asked.question_id, asked.via = answered["id"], answered["via"]
    asked.published = bool(answered["answer"] and answered["answer"]["published"])
    if not asked.published:
        return "the operator's answer was not published", None
    asked.revision = doc.version
    say("")
    say(
        f"  an enterprise asked about {first.id} through the 有疑问？ link of "
        f"{partner_id}'s email; the operator answered and published the answer; "
        f"the revision v{doc.version} follows"
    )
    later, settled = await _publish_revision(settings, records, ids, shown, say, timeout)
    if not settled:
        return f"the revision did not settle after {timeout:.0f}s", later
    try:
        feedback.carried(asked, later, ids[0], stack.smtp.received, stack.hooks.received)
    except feedback.LoopFailed as e:
        return str(e), later
    if doc.contact is not None and doc.contact.email:
        say("")
        say(
            f"  the drafting unit's daily email of questions is due at "
            f"{settings.question_digest_at} (RELAY_QUESTION_DIGEST_AT): the worker restarts "
            "with its calendar moved there…"
        )
        try:
            await _question_digest(stack, asked, answered["asked_at"], doc.contact.email, timeout)
        except (feedback.LoopFailed, RelayError) as e:
            return str(e), later
    names = {p.id: p.name for p in partners}
    say(report.feedback(asked, names))
    return asked, later


async def _publish_revision(
    settings: Settings,
    records: list[tuple[str, str | None, bytes | None]],
    ids: list[str],
    shown: tuple[dict[str, str], dict[str, Document], list[Partner]],
    say: Callable[[str], None],
    timeout: float,
) -> tuple[Progress, bool]:
    """Publish the held-back revision, wait for its deliveries, and report them."""
    titles, documents, partners = shown
    later = Progress(ids)

    def on_record(rec: kafka.Record) -> None:
        with contextlib.suppress(ValidationError):
            for r in audit_records(rec.value or b""):
                later.add(r)

    await kafka.produce(settings, records)
    settled = await kafka.follow(settings, topics.AUDIT, on_record, lambda: later.settled, timeout)
    say(report.render(later, titles, partners=partners, documents=documents))
    return later, settled


async def _question_digest(
    stack: Stack, asked: feedback.Asked, asked_at: str, address: str, timeout: float
) -> None:
    """The drafting unit's daily email of new questions (RELAY_QUESTION_DIGEST_AT): the
    worker is restarted with its policy calendar moved to just past the hour it is due, as
    if the office's day had run on; then the email is awaited in the SMTP sink."""
    ws = stack.worker_settings
    assert ws is not None and stack.smtp is not None
    due = feedback.next_digest(
        datetime.fromisoformat(asked_at), question_digest.digest_time(ws.question_digest_at)
    )
    ahead = due - ws.clock.now() + timedelta(seconds=2)
    if ahead > timedelta(0):
        offset = ws.clock.offset + ahead
        await stack.restart_worker(ws.replace(clock_offset=f"{offset.total_seconds():.0f}s"))
    deadline = time.monotonic() + timeout
    while (mail := feedback.digest_mail(stack.smtp.received, address)) is None:
        if time.monotonic() > deadline:
            raise feedback.LoopFailed(
                f"the drafting unit's daily email of questions to {address} did not arrive "
                f"within {timeout:.0f}s"
            )
        await asyncio.sleep(0.2)
    asked.digest_to, asked.digest_at = address, due
    asked.digest_subject = str(mail.message["Subject"])
    asked.digest_mail = mail.path


def _platform_hosts() -> str:
    return ", ".join(FACTS[p].host for p in Platform)


def bot_summary(bots: BotSink, directory: Path) -> str:
    """One line: the group-robot messages the sink took, per platform, and how many were
    signed and verified."""
    accepted = bots.accepted()
    per = ", ".join(f"{FACTS[p].name} {sum(r.platform is p for r in accepted)}" for p in Platform)
    signed = sum(r.verified is True for r in accepted)
    refused = sum(not r.accepted and not r.duplicate for r in bots.received)
    return (
        f"Group-robot messages received by the sink: {len(accepted)} ({per}); "
        f"signatures verified: {signed}; refused: {refused}"
        + (f"; saved in {directory}/." if accepted else ".")
    )


async def run_dev(settings: Settings, out: TextIO) -> int:
    """Start the stack and keep it running until Ctrl-C."""
    partners = load_partners(settings.partners_file or SAMPLE_PARTNERS)
    say = _printer(out)
    async with Stack(settings, partners, run_dir=settings.data_dir / "dev") as stack:
        say(
            "Policy Relay dev stack is up (the embedded broker is in memory: it forgets "
            "everything when it stops)."
        )
        if settings.operator_token is not None:
            say(f"  dashboard   {stack.web_url}/ (sign in with your RELAY_OPERATOR_TOKEN)")
        else:
            say(
                f"  dashboard   {stack.web_url}/ (closed: set RELAY_OPERATOR_TOKEN before "
                "`relay dev` to sign in)"
            )
        say(f"  API docs    {stack.web_url}/docs")
        say(f"  broker      {stack.broker_url}")
        if stack.smtp:
            say(f"  SMTP sink   {stack.smtp.host}:{stack.smtp.port} → {stack.mail_dir}/")
        say(f"  webhooks    {stack.hooks.url_for('<partner-id>')} (verifies signatures)")
        if stack.bots:
            say(
                f"  group bots  {stack.bots.base_url} stands in for {_platform_hosts()} "
                f"(checks formats, signatures, keywords, rate limits) → {stack.bot_dir}/"
            )
        say(f"  worker log  {stack.worker_log}")
        say(f"  partners    {len(partners)} loaded")
        say(f"Publish with: relay publish {SAMPLE_DOCUMENTS / '02-ic-industry-support.json'}")
        say("Press Ctrl-C to stop.")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        say("stopping…")
    return 0
