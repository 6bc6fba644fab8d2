"""Scale-out: workers join, leave and crash while documents keep coming.

Two ``relay worker`` processes in one group on a stack of their own (the dev profile's group
timing: 6 s sessions, 1.5 s heartbeats; 6 partitions). A document every half second, each for
the same eight partners (webhooks to a verifying receiver, three also by email to aiosmtpd).
Meanwhile a third worker joins; a partner is created through the API, later changed; the
second worker leaves with SIGTERM; the first is killed with SIGKILL and a replacement started.

The replacement is started, not left out, because then the end has two workers to compare:
one that followed both API changes live and one whose registry was rebuilt from the partners
topic afterwards. And it joins while its dead predecessor is still in the group (for the 6 s
of its session), the case that once left partitions to nobody (docs/reliability.md).

Then: every delivery that the documents and the partners' profiles call for has arrived
(computed here with the reference matcher and the id scheme, not taken from the relay), and
nothing else; a repeat only under the same id (``webhook-id``, verified with
``standardwebhooks``; ``X-Relay-Delivery-Id`` for mail); the group's committed offsets reach
the end of every partition of every topic the agents read; every partition is held by one
worker; the registries of all workers agree with each other and with the partners topic; and
no safety net had to act.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import httpx
import pytest
import pytest_asyncio

from relay.adapters import kafka
from relay.core import ids, topics
from relay.core.matching.reference import match_partner
from relay.core.models import DeliveryStatus, DocumentEvent, Partner, audit_records
from relay.core.settings import Membership
from relay.core.settling import Progress
from relay.embedded.broker import free_port
from tests.helpers.api import whsec
from tests.helpers.receivers import respond
from tests.helpers.registry import topic_fingerprint
from tests.integration.test_faults import (
    REGION,
    TAG,
    add_partners,
    behave,
    fault_event,
    fault_partner,
    planned_deliveries,
)
from tests.integration.test_group_faults import (
    Pair,
    Worker,
    running_pair,
    wait_until_each_partition_has_one_owner,
    wait_until_lag_is_zero,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="session"),
    # Four worker starts and three rebalances on a busy 2-core machine: about two minutes.
    pytest.mark.timeout(360),
]

OPERATOR_TOKEN = "scale-out-operator-token"
#: Seconds between two documents.
PERIOD = 0.5
#: Partners loaded before the stream starts; every third also has an email channel.
PARTNERS = 8
#: Partitions of the relay's topics. Faust's assignor is sticky up to ⌈P/N⌉ partitions a
#: worker: with 4, the two first workers keep 2 each when a third joins, and it gets none.
#: With 6 each of three gets 2, each of two 3.
PARTITIONS = 6
#: Seconds each webhook receiver takes to answer.
REPLY_DELAY = 0.3


@dataclass
class Stream:
    """Publishes a document every ``PERIOD`` s for the partners of ``park`` until stopped.

    ``epoch`` counts the registry changes made through the API so far; each document is
    published with the tags of the epoch it was made in (``tags``) and remembers that epoch.
    """

    pair: Pair
    park: str
    tags: tuple[str, ...] = ()
    epoch: int = 0
    published: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    def next_epoch(self, *tags: str) -> None:
        self.tags, self.epoch = tags, self.epoch + 1

    async def run(self) -> None:
        while not self.stopped.is_set():
            ev = fault_event(self.park)
            ev["document"]["tags"] = [TAG, *self.tags]
            self.published.append((ev, self.epoch))
            await self.pair.relay.publish_events(ev)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopped.wait(), PERIOD)

    @property
    def event_ids(self) -> list[str]:
        return [ev["event_id"] for ev, _ in self.published]


@contextlib.asynccontextmanager
async def streaming(stream: Stream) -> AsyncIterator[Stream]:
    task = asyncio.create_task(stream.run())
    try:
        yield stream
    finally:
        stream.stopped.set()
        await task


async def operator_call(w: Worker, method: str, path: str, body: Any = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=w.url, timeout=30) as http:
        return await http.request(
            method, path, json=body, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        )


async def registry_of(w: Worker) -> dict[str, Any] | None:
    """The worker's ``GET /api/v1/registry``, or None while it does not answer."""
    try:
        r = await operator_call(w, "GET", "/api/v1/registry")
    except httpx.HTTPError:
        return None
    body: dict[str, Any] = r.json()
    return body if r.status_code == 200 else None


async def wait_until_registries_agree(pair: Pair, timeout: float = 60) -> str:
    """Every running worker's registry holds what the partners topic holds; the fingerprint."""
    deadline = time.monotonic() + timeout
    while True:
        want = await topic_fingerprint(pair.relay.settings)
        got = {w.name: await registry_of(w) for w in pair.workers}
        if all(b is not None and b["fingerprint"] == want for b in got.values()):
            return want
        assert time.monotonic() < deadline, f"after {timeout:.0f}s, topic {want}: {got}"
        await asyncio.sleep(0.3)


async def why_unsettled(pair: Pair, event_ids: list[str]) -> str:
    """Where each event that did not settle got to: its records on the documents and
    accepted topics, against the group's committed offsets, what the audit says of it, and
    which worker logs name its document."""
    settings = pair.relay.settings
    progress = Progress(event_ids)
    for rec in await kafka.read_topic(settings, topics.AUDIT):
        for a in audit_records(rec.value or b""):
            progress.add(a)
    done = {
        (p.topic, p.partition): (p.done, p.end)
        for p in await kafka.group_progress(settings, settings.app_id, topics.CONSUMED)
    }
    where: dict[tuple[str, str], kafka.Record] = {}
    for topic in (topics.DOCUMENTS, topics.ACCEPTED):
        for rec in await kafka.read_topic(settings, topic):
            with contextlib.suppress(ValueError):
                where[(topic, json.loads(rec.value or b"{}").get("event_id", ""))] = rec
    logs = [*pair.workers, *pair.gone]
    lines = []
    for eid in progress.unsettled_events():
        trail = progress.trails.get(eid)
        found = []
        for topic in (topics.DOCUMENTS, topics.ACCEPTED):
            on = where.get((topic, eid))
            if on is None:
                found.append(f"not on {topic}")
                continue
            committed, end = done.get((topic, on.partition), (None, None))
            found.append(
                f"{topic}[{on.partition}]@{on.offset} (group done to {committed}, end {end})"
            )
        doc_id = json.loads(where[(topics.DOCUMENTS, eid)].value or b"{}")["document"]["id"]
        named = [w.name for w in logs if doc_id in w.log.read_text(errors="replace")]
        lines.append(
            f"{eid} ({doc_id}): {'; '.join(found)}; accepted={bool(trail and trail.accepted)}; "
            f"in the logs of {named}"
        )
    pending = set(progress.pending())
    if pending:
        planned = {
            d: (a.partner_id, a.document_id)
            for t in progress.trails.values()
            for a in t.notifications
            for d in a.deliveries
            if d in pending
        }
        seen: dict[str, list[str]] = defaultdict(list)
        for rec in await kafka.read_topic(settings, topics.AUDIT):
            for a in audit_records(rec.value or b""):
                if a.delivery_id in pending:
                    seen[a.delivery_id].append(f"{a.kind}/{a.status}@{a.at:%H:%M:%S.%f}")
        for topic in [*topics.DELIVERY_TOPICS, topics.RETRY]:
            for rec in await kafka.read_topic(settings, topic):
                for d in pending:
                    if d.encode() in (rec.value or b""):
                        at, end = done.get((topic, rec.partition), (None, None))
                        seen[d].append(
                            f"on {topic}[{rec.partition}]@{rec.offset} (done {at}, end {end})"
                        )
        hooks = {h.webhook_id: h.status for h in pair.relay.hooks.received}
        mails = {m["X-Relay-Delivery-Id"] for m in pair.relay.smtp.messages}
        for d in sorted(pending):
            pid, doc_id = planned.get(d, (None, None))
            lines.append(
                f"pending {d} ({pid}, {doc_id}): {seen[d]}; webhook reply {hooks.get(d)}, "
                f"mailed {d in mails}; in the logs of "
                f"{[w.name for w in logs if d in w.log.read_text(errors='replace')]}"
            )
    behind = [f"{t}[{p}] done {d} end {e}" for (t, p), (d, e) in done.items() if d + 1 < e]
    return "\n".join([*lines, f"behind: {behind}"])


class Expected(NamedTuple):
    partner_id: str
    channel_type: str
    document_id: str
    notification_id: str


async def partner_versions(pair: Pair, prefix: str) -> dict[str, list[Partner]]:
    """Every profile each test partner had, in order, from the partners topic."""
    versions: dict[str, list[Partner]] = defaultdict(list)
    for rec in await kafka.read_topic(pair.relay.settings, topics.PARTNERS):
        if (rec.key or b"").decode().startswith(prefix) and rec.value is not None:
            p = Partner.model_validate_json(rec.value)
            versions[p.id].append(p)
    return versions


def expected_deliveries(
    stream: Stream, profiles: dict[str, list[Partner | None]]
) -> dict[str, Expected]:
    """delivery id → what it is, for every delivery the documents call for.

    A document met a partner or not according to the profile the matching worker held, which
    may be a later one than when it was published (a worker behind on the documents topic).
    The stream's tags are chosen so that every later profile gives the same verdict; this
    checks that, so the expectation is exact.
    """
    out: dict[str, Expected] = {}
    for ev, epoch in stream.published:
        doc = DocumentEvent.model_validate(ev).document
        for pid, by_epoch in profiles.items():
            verdicts = {p is not None and match_partner(doc, p).matched for p in by_epoch[epoch:]}
            assert len(verdicts) == 1, f"{doc.id} meets {pid} in some epochs, not in others"
            partner = by_epoch[epoch]
            if partner is None or not verdicts.pop():
                continue
            ntf = ids.notification_id(doc.id, doc.version, pid)
            for ch in partner.channels:
                out[ids.delivery_id(ntf, ch.id)] = Expected(pid, ch.type, doc.id, ntf)
    return out


@pytest_asyncio.fixture(loop_scope="session")
async def pair(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pair]:
    """Two workers as `relay dev` runs them (dynamic members), with the operator API on."""
    run_dir = tmp_path_factory.mktemp("scale")
    async with running_pair(
        run_dir, Membership.auto, partitions=PARTITIONS, operator_token=OPERATOR_TOKEN
    ) as p:
        yield p


async def test_workers_join_leave_and_crash_under_a_steady_stream_and_lose_nothing(
    pair: Pair,
) -> None:
    relay = pair.relay
    tag = uuid.uuid4().hex[:6]
    prefix, park = f"f-scale-{tag}-", f"scale-{tag}"
    joining_tag, widening_tag = f"扩容-{tag}-甲", f"扩容-{tag}-乙"
    partners = [
        fault_partner(relay, f"{prefix}{i:02d}", email=i % 3 == 0, park=park)
        for i in range(PARTNERS)
    ]
    added = f"{prefix}api"  # the partner created through the API
    for pid in [*(p.id for p in partners), added]:
        # Replies take a moment, so deliveries are in flight whenever a worker goes.
        behave(relay, pid, respond(200, delay=REPLY_DELAY))
    await add_partners(relay, *partners, workers=pair.urls)
    first, second = pair.workers
    third = Worker("worker-3", relay.stack.run_dir / "worker-3.log", free_port())
    added_path = f"/fault/{added}"
    secret = whsec()
    relay.hooks.secrets[added_path] = [secret]
    marks: list[str] = []
    t0 = time.monotonic()

    def mark(what: str) -> None:
        marks.append(f"{time.monotonic() - t0:5.1f}s {what} (doc {len(stream.published)})")

    stream = Stream(pair, park)
    async with streaming(stream):
        await asyncio.sleep(3)

        # A third worker joins the group; the three share the partitions.
        pair.workers.append(third)
        pair.start(third)
        await wait_until_each_partition_has_one_owner(pair, timeout=90)
        mark("worker-3 joined")

        # A partner created through the API (on the newcomer), for documents from now on.
        body = {
            "id": added,
            "kind": "park",
            "name": "扩容测试园区（接口创建）",
            "coverage": {"regions": [REGION], "parks": [park]},
            "interests": {"tags_any": [joining_tag]},
            "channels": [
                {"type": "webhook", "url": relay.hooks.url_for(added_path), "secret": secret}
            ],
        }
        r = await operator_call(third, "POST", "/api/v1/partners", body)
        assert r.status_code == 201, r.text
        await wait_until_registries_agree(pair)
        stream.next_epoch(joining_tag)
        mark("partner created")

        # The second worker leaves cleanly.
        code = await pair.leave(second)
        assert code == 0, f"worker-2 exited with {code} on SIGTERM"
        await wait_until_each_partition_has_one_owner(pair, timeout=90)
        mark("worker-2 left")

        # The partner widens its interests (on the first worker).
        r = await operator_call(
            first,
            "PUT",
            f"/api/v1/partners/{added}",
            {"interests": {"tags_any": [joining_tag, widening_tag]}},
        )
        assert r.status_code == 200, r.text
        await wait_until_registries_agree(pair)
        stream.next_epoch(widening_tag)
        mark("partner changed")

        # The first worker crashes; a replacement starts a second later.
        await pair.kill(first)
        await asyncio.sleep(1)
        pair.start(first)
        await wait_until_each_partition_has_one_owner(pair, timeout=90)
        mark("worker-1 killed and replaced")
        await asyncio.sleep(3)
    mark("stream stopped")

    try:
        progress = await relay.settle(stream.event_ids, timeout=120)
    except AssertionError as failed:
        why = await why_unsettled(pair, stream.event_ids)
        raise AssertionError(f"{failed}\n{why}") from None
    mark("settled")
    # Each partner's profile in each epoch: the API partner came in epoch 1, changed in 2.
    versions = await partner_versions(pair, prefix)
    assert len(versions[added]) == 2, "the API partner was not created and changed once each"
    profiles: dict[str, list[Partner | None]] = {
        pid: [None, *vs] if pid == added else [*vs] * 3 for pid, vs in versions.items()
    }
    assert all(len(vs) == 3 for vs in profiles.values()), "a partner changed unexpectedly"
    expected = expected_deliveries(stream, profiles)
    by_type = {
        kind: {d: e for d, e in expected.items() if e.channel_type == kind}
        for kind in ("webhook", "email")
    }
    reached_added = {e.document_id for e in expected.values() if e.partner_id == added}
    assert 0 < len(reached_added) < len(stream.published), "the API partner's share is off"

    # The relay planned exactly these, and says each was delivered.
    planned = {d for ev, _ in stream.published for d in planned_deliveries(progress, ev)}
    assert planned == set(expected)
    outcomes = {
        o.delivery_id: o.status for o in progress.outcomes.values() if o.delivery_id in planned
    }
    assert outcomes == dict.fromkeys(planned, DeliveryStatus.delivered)

    # Every webhook arrived, signed, at its partner's receiver; nothing else came.
    got = [h for h in relay.hooks.received if h.path.startswith(f"/fault/{prefix}")]
    assert all(h.verified for h in got), [h.error for h in got if not h.verified][:3]
    assert {h.webhook_id for h in got} == set(by_type["webhook"])
    ids_per_notice: dict[tuple[str, str], set[str | None]] = defaultdict(set)
    for h in got:
        want = by_type["webhook"][h.webhook_id or ""]
        assert (h.path, h.payload["data"]["document"]["id"]) == (
            f"/fault/{want.partner_id}",
            want.document_id,
        )
        ids_per_notice[(h.path, want.document_id)].add(h.webhook_id)
    assert all(len(i) == 1 for i in ids_per_notice.values())  # a repeat keeps its id
    assert {h.webhook_id for h in got if h.status == 200} == set(by_type["webhook"])

    # Every email arrived, to its partner, under its delivery id.
    mails = [m for m in relay.smtp.messages if prefix in str(m["To"])]
    assert {m["X-Relay-Delivery-Id"] for m in mails} == set(by_type["email"])
    for m in mails:
        want = by_type["email"][m["X-Relay-Delivery-Id"]]
        assert f"{want.partner_id}@fault.example.org" in str(m["To"])
        assert m["X-Relay-Notification-Id"] == want.notification_id
        assert m["Message-ID"] == f"<{m['X-Relay-Delivery-Id']}@policy-relay>"

    # The group caught up everywhere, each partition held once, the registries agree.
    await wait_until_each_partition_has_one_owner(pair)
    await wait_until_lag_is_zero(pair)
    fingerprint = await wait_until_registries_agree(pair)
    assert fingerprint.startswith(f"{PARTNERS + 1}-")
    for w in pair.workers:
        r = await operator_call(w, "GET", f"/api/v1/partners/{added}")
        assert r.json()["interests"]["tags_any"] == [joining_tag, widening_tag], w.name
    assert pair.net_events() == [], "recovery needed a safety net"

    repeats = len(got) + len(mails) - len(expected)
    print(
        f"\n{len(stream.published)} documents, {len(expected)} deliveries "
        f"({len(by_type['webhook'])} webhooks, {len(by_type['email'])} emails; "
        f"{len(reached_added)} to the API partner), {repeats} repeats under their ids\n  "
        + "\n  ".join(marks)
    )
