"""`relay demo` and `relay dev`: the embedded stack with sample partners and documents."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from relay.adapters import kafka
from relay.adapters.files import load_partners, read_events
from relay.core import topics
from relay.core.chatbots import FACTS, Platform
from relay.core.clock import rebase_sample
from relay.core.models import FINAL_STATUSES, DeliveryStatus, Document, DocumentEvent, audit_records
from relay.core.settings import Settings
from relay.core.settling import Progress
from relay.embedded import report
from relay.embedded.sinks import BotSink
from relay.embedded.stack import Stack

#: The samples: the repository's config/ and examples/ folders, package data in a wheel.
SAMPLE_PARTNERS = Path(str(files("relay.config"))) / "partners.yaml"
SAMPLE_DOCUMENTS = Path(str(files("relay.examples"))) / "documents"


def _printer(out: TextIO) -> Callable[[str], None]:
    def say(text: str) -> None:
        print(text, file=out, flush=True)

    return say


async def run_demo(settings: Settings, out: TextIO, *, timeout: float = 90.0) -> int:
    """Start the stack, publish the samples, wait for every delivery to settle, report."""
    t0 = time.monotonic()
    partners = load_partners(settings.partners_file or SAMPLE_PARTNERS)
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
        for path in files:
            for ev in read_events(path):
                value = rebase_sample(ev.data, today)
                data: dict[str, Any] = value if isinstance(value, dict) else {}
                doc: dict[str, Any] = data.get("document") or {}
                if not isinstance(doc, dict):
                    doc = {}
                eid = data.get("event_id")
                if isinstance(eid, str):
                    expected.append(eid)
                    with contextlib.suppress(ValidationError):
                        documents[eid] = DocumentEvent.model_validate(data).document
                    titles[eid] = (
                        f"■ {path.name}: {doc.get('id')} v{doc.get('version')} "
                        f"{data.get('type')} — {doc.get('title')}"
                    )
                # Published as they are, invalid ones included: the worker must refuse them.
                records.append(
                    (
                        topics.DOCUMENTS,
                        doc.get("id"),
                        json.dumps(value, ensure_ascii=False).encode(),
                    )
                )
        await kafka.produce(stack.worker_settings or settings, records)
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
