"""The `relay` command line (DESIGN §3): demo, dev, worker, publish, partners, replay, status."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

from relay.core.errors import InvalidEvent, InvalidInput, RelayError
from relay.core.settings import Settings, load_settings

if TYPE_CHECKING:
    from relay.runtime.registry import PartnerBook


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage dump: "relay: error: ..." and exit 2.
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="relay",
        description="Policy Relay: carry government policies to the "
        "associations and parks they concern.",
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser(
        "demo",
        help="run the whole relay on the embedded stack with samples, print the report and exit",
    )
    dev = sub.add_parser("dev", help="start the embedded stack and keep it running")
    dev.add_argument(
        "--partners", type=Path, metavar="FILE", help="partners file to load instead of the samples"
    )
    sub.add_parser("worker", help="run a worker configured from RELAY_* variables")
    pub = sub.add_parser("publish", help="validate document events and publish them")
    pub.add_argument("file", metavar="FILE|-", help="JSON object, JSON array or JSON lines")
    partners = sub.add_parser("partners", help="import or list partners")
    psub = partners.add_subparsers(dest="partners_command", required=True, parser_class=_Parser)
    imp = psub.add_parser("import", help="validate a YAML/JSON partners file and load it")
    imp.add_argument("file", type=Path, metavar="FILE")
    psub.add_parser("list", help="list the partners the relay holds")
    exp = psub.add_parser(
        "export",
        help="write every partner to a file 'partners import' takes back (the registry's backup)",
    )
    exp.add_argument(
        "file",
        nargs="?",
        default="-",
        metavar="FILE",
        help="a .yaml/.yml or .json file (written readable by you only); - or none: stdout",
    )
    st = sub.add_parser("status", help="a running worker's key figures: lag, deliveries, workers")
    st.add_argument(
        "--url",
        metavar="URL",
        help="the worker's address (default: http://RELAY_WEB_HOST:RELAY_WEB_PORT)",
    )
    rep = sub.add_parser("replay", help="re-queue dead letters with their delivery ids")
    rep.add_argument("--delivery", action="append", metavar="ID", help="a delivery id (repeatable)")
    rep.add_argument("--partner", metavar="ID", help="only this partner's")
    rep.add_argument("--document", metavar="ID", help="only this document's")
    rep.add_argument("--since", type=_when, metavar="TIME", help="dead since (ISO 8601)")
    rep.add_argument("--until", type=_when, metavar="TIME", help="dead until (ISO 8601)")
    rep.add_argument("--all", action="store_true", help="every dead letter")
    return p


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time like 2026-11-26T09:00+08:00"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "dev" and args.partners is not None:
            settings = settings.replace(partners_file=args.partners)
        return run(args, settings, sys.stdout)
    except RelayError as e:
        print(f"relay: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from relay.core import logs

    logs.configure(settings.log_level)
    if args.command == "worker":
        from relay.worker import run_worker

        return run_worker(settings)
    if args.command == "demo":
        from relay.embedded.demo import run_demo

        return asyncio.run(run_demo(settings, out))
    if args.command == "dev":
        from relay.embedded.demo import run_dev

        return asyncio.run(run_dev(settings, out))
    if args.command == "publish":
        return asyncio.run(publish(settings, args.file, out))
    if args.command == "partners" and args.partners_command == "import":
        return asyncio.run(import_partners(settings, args.file, out))
    if args.command == "partners" and args.partners_command == "list":
        return asyncio.run(list_partners(settings, out))
    if args.command == "partners" and args.partners_command == "export":
        return asyncio.run(export_partners(settings, args.file, out))
    if args.command == "status":
        return asyncio.run(status(settings, args.url, out))
    if args.command == "replay":
        return asyncio.run(replay(settings, args, out))
    raise AssertionError(args)


async def replay(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    from relay.adapters.dead_letters import replay_dead_letters

    filters = (args.delivery, args.partner, args.document, args.since, args.until)
    if not args.all and all(f is None for f in filters):
        raise InvalidInput(
            "say which dead letters to replay (--delivery, --partner, "
            "--document, --since/--until) or --all"
        )
    ids = await replay_dead_letters(
        settings,
        delivery_ids=args.delivery,
        partner_id=args.partner,
        document_id=args.document,
        since=args.since,
        until=args.until,
    )
    for did in ids:
        print(f"re-queued {did}", file=out)
    print(f"{len(ids)} dead letters re-queued", file=out)
    return 0


async def publish(settings: Settings, source: str, out: TextIO) -> int:
    from relay.adapters import kafka
    from relay.adapters.files import read_events
    from relay.core import topics
    from relay.core.intake import advisories, default_checks, encode_event, validate_event
    from relay.core.models.limits import MAX_FILE_BYTES

    if source == "-":
        text = sys.stdin.read(MAX_FILE_BYTES + 1)
        if len(text) > MAX_FILE_BYTES:
            raise InvalidInput(f"stdin: more than {MAX_FILE_BYTES:,} characters, the most read")
        events = read_events(None, text)
    else:
        events = read_events(Path(source))
    today: date = settings.clock.today()
    accepted: list[tuple[str, str | None, bytes | None]] = []
    rejected = 0
    for ev in events:
        try:
            if ev.error:
                raise InvalidEvent(ev.reason, ev.error)
            event = validate_event(ev.data, today=today, checks=default_checks())
            value = encode_event(event)
        except InvalidEvent as e:
            rejected += 1
            print(f"rejected {ev.position}: [{e.reason}] {e.message}", file=out)
            continue
        accepted.append((topics.DOCUMENTS, event.document.id, value))
        print(
            f"accepted {ev.position}: {event.event_id} {event.type} {event.document.id} "
            f"v{event.document.version}",
            file=out,
        )
        for a in advisories(event):
            print(f"warning {ev.position}: [{a.code}] {a.message}", file=out)
    if accepted:
        await kafka.ensure_topics(settings)
        await kafka.produce(settings, accepted)
    print(f"{len(accepted)} published, {rejected} rejected", file=out)
    return 1 if rejected else 0


async def import_partners(settings: Settings, path: Path, out: TextIO) -> int:
    from relay.adapters import kafka
    from relay.adapters.files import load_partners
    from relay.core import topics

    partners = load_partners(path)
    await kafka.ensure_topics(settings)
    await kafka.produce(
        settings, [(topics.PARTNERS, p.id, p.model_dump_json().encode()) for p in partners]
    )
    print(f"imported {len(partners)} partners from {path}", file=out)
    return 0


async def read_registry(settings: Settings) -> PartnerBook:
    """The partners as the workers hold them: the partners topic read to its end."""
    from pydantic import ValidationError

    from relay.adapters import kafka
    from relay.core import topics
    from relay.runtime.registry import PartnerBook

    book = PartnerBook()
    for rec in await kafka.read_topic(settings, topics.PARTNERS):
        try:
            book.apply((rec.key or b"").decode(), rec.value)
        except ValidationError:
            continue
    return book


async def list_partners(settings: Settings, out: TextIO) -> int:
    book = await read_registry(settings)
    if not book.partners:
        print("no partners", file=out)
        return 0
    for p in sorted(book.partners.values(), key=lambda p: p.id):
        c = p.coverage
        state = "paused" if p.paused else "active"
        print(
            f"{p.id:36} {p.kind:11} {state:6} industries={','.join(c.industries) or '-'} "
            f"regions={','.join(c.regions) or '-'} channels={len(p.channels)}  {p.name}",
            file=out,
        )
    return 0


async def export_partners(settings: Settings, target: str, out: TextIO) -> int:
    """Every partner as ``partners import`` reads it back. Channel secrets are in it (the
    relay signs with them), so the file is written readable by its owner only; partners'
    API tokens are only ever held as SHA-256 hashes, and only those are in it."""
    from relay.adapters.files import dump_partners, write_private

    book = await read_registry(settings)
    partners = sorted(book.partners.values(), key=lambda p: p.id)
    as_json = target.lower().endswith(".json")
    text = dump_partners(partners, as_json=as_json)
    if target == "-":
        out.write(text)
        print(f"exported {len(partners)} partners", file=sys.stderr)
        return 0
    write_private(Path(target), text)
    print(
        f"exported {len(partners)} partners to {target} (it holds the channels' secrets: "
        "keep it like a password; API tokens only as hashes)",
        file=out,
    )
    return 0


def worker_url(settings: Settings) -> str:
    """This machine's worker, as RELAY_WEB_HOST/RELAY_WEB_PORT say."""
    host = settings.web_host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.web_port}"


async def status(settings: Settings, url: str | None, out: TextIO) -> int:
    from relay.adapters.worker_api import read_worker
    from relay.core.status import status_lines

    if url is not None and not url.startswith(("http://", "https://")):
        raise InvalidInput(f"--url: expected a worker's address like http://host:6066, got {url!r}")
    token = settings.operator_token.get_secret_value() if settings.operator_token else None
    view = await read_worker(url or worker_url(settings), token)
    gauges = {
        name: view.value(name)
        for name in (
            "relay_partners",
            "relay_group_workers",
            "relay_group_partition_problems",
            "relay_dead_letters",
            "relay_oldest_pending_delivery_seconds",
            "relay_bot_channels_throttled",
        )
    }
    lag: dict[str, float] | None = view.by_label("relay_consumer_lag", "topic")
    dash = view.dashboard
    if dash is not None and dash.get("lag", {}).get("status") != "ok":
        lag = None
    elif dash is None and not lag and view.ready.get("assignment"):
        lag = None  # the scrape could not measure it
    lines = status_lines(
        view.url,
        view.ready,
        gauges,
        lag,
        view.by_label("relay_deliveries", "status"),
        dash,
        view.dashboard_note,
    )
    print("\n".join(lines), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
