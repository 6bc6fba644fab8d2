"""Reliable delivery under faults, against real servers on loopback and a real worker process.

The session stack runs with a compressed retry schedule (0.5, 1, 1, 2 s), a 1 s floor, a 2 s
webhook timeout and an 8 s health window (tests/integration/conftest.py).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from relay.adapters import kafka
from relay.core import topics
from relay.core.models import AuditRecord, DeliveryStatus, Partner, audit_records
from relay.core.settling import Progress
from relay.core.signing import new_secret
from relay.embedded.broker import free_port, stop_process
from tests.helpers.receivers import Received, Reply, accept, fail_first, flaky, respond
from tests.integration.conftest import RelayUnderTest, run_relay_cli

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

# Fault partners live in 浦东新区 and only want 故障测试 documents, so no other test's
# documents reach them and theirs reach no sample partner.
REGION, TAG = "310115", "故障测试"
KILL_RESTART_DELAY = 7.0
#: What the safety nets log when they act: the watchdog stopping a stuck worker (and the
#: stack's supervisor starting a new one), the group watch finding a partition held by no
#: worker, by two, or not moving, and forcing a rebalance. Recovery must not need them.
NET_EVENTS = (
    "consumer_stalled",
    "worker exited with code",
    "group_coverage_problem",
    "rebalance_forced",
)


def safety_net_lines(text: str) -> list[str]:
    """The lines of a worker log where a safety net acted."""
    return [line.strip()[:200] for line in text.splitlines() if any(e in line for e in NET_EVENTS)]


def log_since(path: Path, start: int) -> str:
    with open(path, "rb") as f:
        f.seek(start)
        return f.read().decode(errors="replace")


KILL_SETTLE = float(os.environ.get("KILL_SETTLE", "60"))


def fault_partner(
    relay: RelayUnderTest,
    pid: str,
    *,
    webhook: bool = True,
    email: bool = False,
    park: str | None = None,
) -> Partner:
    channels: list[dict[str, Any]] = []
    if webhook:
        secret = new_secret()
        path = f"/fault/{pid}"
        relay.hooks.secrets[path] = [secret]
        channels.append({"type": "webhook", "url": relay.hooks.url_for(path), "secret": secret})
    if email:
        channels.append({"type": "email", "to": [f"{pid}@fault.example.org"]})
    return Partner.model_validate(
        {
            "id": pid,
            "kind": "park",
            "name": f"故障测试园区 {pid}",
            "coverage": {"regions": [REGION], "parks": [park or pid]},
            "interests": {"tags_any": [TAG]},
            "channels": channels,
        }
    )


def behave(relay: RelayUnderTest, pid: str, behaviour: Any) -> None:
    if not isinstance(relay.hooks.behaviour, dict):
        relay.hooks.behaviour = {}
    relay.hooks.behaviour[f"/fault/{pid}"] = behaviour


async def add_partners(
    relay: RelayUnderTest, *partners: Partner, workers: Sequence[str] = ()
) -> None:
    """Load partners and wait until the registry of each worker (its URL; by default the
    stack's worker) holds them."""
    await kafka.produce(
        relay.settings, [(topics.PARTNERS, p.id, p.model_dump_json().encode()) for p in partners]
    )
    for url in workers or [relay.stack.web_url]:
        await wait_for_partners(relay, {p.id for p in partners}, url)


async def wait_for_partners(
    relay: RelayUnderTest, ids: set[str], url: str, timeout: float = 20
) -> None:
    """Wait until the registry of the worker at ``url`` holds as many partners as the
    partners topic."""
    records = await kafka.read_topic(relay.settings, topics.PARTNERS)
    latest = {(r.key or b"").decode(): r.value for r in records}
    assert ids <= set(latest)
    expected = sum(v is not None for v in latest.values())
    deadline = time.monotonic() + timeout
    held = 0
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(f"{url}/readyz") as r:
                    held = (await r.json()).get("partners", 0)
            except aiohttp.ClientError:
                pass  # a worker restarting: not listening yet
            if held >= expected:
                return
            assert time.monotonic() < deadline, f"{url}: registry holds {held} of {expected}"
            await asyncio.sleep(0.1)


def fault_event(park: str) -> dict[str, Any]:
    """A document for the fault partners of one park (each test has its own)."""
    doc_id = f"FAULT-{uuid.uuid4().hex[:8]}"
    return {
        "event_id": str(uuid.uuid4()),
        "type": "document.published",
        "occurred_at": "2026-11-26T09:00:00+08:00",
        "document": {
            "id": doc_id,
            "version": 1,
            "doc_number": "测试〔2026〕1号",
            "title": "故障注入测试通知",
            "issuer": "测试机关",
            "published_on": "2026-11-26",
            "url": "https://example.gov.cn/fault.html",
            "tags": [TAG],
            "scope": {"regions": [REGION], "parks": [park]},
        },
    }


def planned_deliveries(progress: Progress, ev: dict[str, Any]) -> set[str]:
    """The delivery ids the match agent planned for ``ev``."""
    return set(progress.trails[ev["event_id"]].matched.deliveries)  # type: ignore[union-attr]


async def fan_out(relay: RelayUnderTest, name: str, n: int) -> tuple[dict[str, Any], set[str]]:
    """A document to ``n`` partners of their own (``f-<name>-NN`` in park ``<name>``),
    settled; returns the event and the delivery ids planned for it."""
    partners = [fault_partner(relay, f"f-{name}-{i:02d}", park=name) for i in range(n)]
    await add_partners(relay, *partners)
    ev = fault_event(name)
    await relay.publish_events(ev)
    planned = planned_deliveries(await relay.settle([ev["event_id"]]), ev)
    assert len(planned) == n
    return ev, planned


async def audit_for(relay: RelayUnderTest, doc_id: str) -> list[AuditRecord]:
    return [
        rec
        for r in await kafka.read_topic(relay.settings, topics.AUDIT)
        for rec in audit_records(r.value or b"")
        if rec.document_id == doc_id
    ]


def outcomes_of(progress: Progress, event: dict[str, Any]) -> list[AuditRecord]:
    """The final outcomes of one event's deliveries (the audit holds every test's)."""
    return [o for o in progress.outcomes.values() if o.event_id == event["event_id"]]


async def relay_to(
    relay: RelayUnderTest, p: Partner, behaviour: Any, *, timeout: float = 60.0
) -> tuple[dict[str, Any], Progress]:
    """Give ``p``'s receiver ``behaviour``, load ``p``, publish a document that reaches
    ``p`` alone and wait until it settles."""
    behave(relay, p.id, behaviour)
    await add_partners(relay, p)
    ev = fault_event(p.id)
    await relay.publish_events(ev)
    return ev, await relay.settle([ev["event_id"]], timeout=timeout)


def requests_to(relay: RelayUnderTest, pid: str) -> list[Received]:
    return [r for r in relay.hooks.received if r.path == f"/fault/{pid}"]


async def test_failing_receiver_gets_retries_under_one_id_until_delivered(
    relay: RelayUnderTest,
) -> None:
    p = fault_partner(relay, f"f-flaky-{uuid.uuid4().hex[:6]}")
    ev, progress = await relay_to(relay, p, fail_first(3))

    got = requests_to(relay, p.id)
    assert [r.status for r in got] == [503, 503, 503, 200]
    assert len({r.webhook_id for r in got}) == 1
    assert all(r.verified for r in got)
    # Each wait is at least the schedule's step less the 20 % jitter.
    gaps = [b.at - a.at for a, b in zip(got, got[1:], strict=False)]
    assert all(g >= s * 0.8 - 0.05 for g, s in zip(gaps, (0.5, 1.0, 1.0), strict=True)), gaps
    (outcome,) = outcomes_of(progress, ev)
    assert outcome.status == DeliveryStatus.delivered and outcome.attempt == 4
    kinds = [
        r.kind
        for r in await audit_for(relay, ev["document"]["id"])
        if r.kind.startswith("delivery.")
    ]
    assert kinds == ["delivery.retrying"] * 3 + ["delivery.delivered"]


async def test_a_timeout_is_retried_no_sooner_than_the_floor(relay: RelayUnderTest) -> None:
    p = fault_partner(relay, f"f-slow-{uuid.uuid4().hex[:6]}")
    calls = 0

    def slow_once(request: Received) -> Reply:
        nonlocal calls
        calls += 1
        return Reply(200, delay=3.0) if calls == 1 else accept(request)

    ev, progress = await relay_to(relay, p, slow_once)
    first, second = requests_to(relay, p.id)
    assert first.webhook_id == second.webhook_id
    # 2 s timeout, then at least the 1 s floor (the schedule alone would say 0.5 s).
    assert second.at - first.at >= 2.9
    (outcome,) = outcomes_of(progress, ev)
    assert outcome.status == DeliveryStatus.delivered


async def test_retry_after_of_a_429_is_honoured(relay: RelayUnderTest) -> None:
    p = fault_partner(relay, f"f-busy-{uuid.uuid4().hex[:6]}")
    calls = 0

    def busy_once(request: Received) -> Reply:
        nonlocal calls
        calls += 1
        return Reply(429, {"Retry-After": "3"}) if calls == 1 else accept(request)

    await relay_to(relay, p, busy_once)
    first, second = requests_to(relay, p.id)
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 3.0
    assert first.webhook_id == second.webhook_id


async def test_410_disables_the_channel_and_tells_the_partner_by_email(
    relay: RelayUnderTest,
) -> None:
    p = fault_partner(relay, f"f-gone-{uuid.uuid4().hex[:6]}", email=True)
    ev, progress = await relay_to(relay, p, respond(410))
    statuses = {o.channel_type: o.status for o in outcomes_of(progress, ev)}
    assert statuses == {"webhook": DeliveryStatus.disabled, "email": DeliveryStatus.delivered}
    deadline = time.monotonic() + 15
    while not (
        notice := [
            m
            for m in relay.smtp.messages
            if m["X-Relay-Event-Type"] == "channel.disabled"
            and f"{p.id}@fault.example.org" in m["To"]
        ]
    ):
        assert time.monotonic() < deadline, "the partner was not told"
        await asyncio.sleep(0.2)
    assert len(notice) == 1 and "410" in notice[0].get_content()

    # The next document is not even attempted on the disabled channel.
    ev2 = fault_event(p.id)
    await relay.publish_events(ev2)
    progress2 = await relay.settle([ev2["event_id"]])
    assert {o.channel_type for o in outcomes_of(progress2, ev2)} == {"email"}
    assert len(requests_to(relay, p.id)) == 1


async def test_other_4xx_fails_at_once_goes_dead_and_replays_under_the_same_id(
    relay: RelayUnderTest,
) -> None:
    p = fault_partner(relay, f"f-404-{uuid.uuid4().hex[:6]}")
    ev, progress = await relay_to(relay, p, respond(404))
    (outcome,) = outcomes_of(progress, ev)
    assert outcome.status == DeliveryStatus.failed and outcome.attempt == 1
    dead = [
        json.loads(r.value or b"{}")
        for r in await kafka.read_topic(relay.settings, topics.DEAD_LETTER)
    ]
    mine = [d for d in dead if d.get("delivery_id") == outcome.delivery_id]
    assert len(mine) == 1 and mine[0]["dead_reason"] == "permanent_failure"
    assert "404" in mine[0]["last_error"]

    behave(relay, p.id, accept)
    assert outcome.delivery_id is not None
    done = await asyncio.to_thread(
        run_relay_cli, relay, "replay", "--delivery", outcome.delivery_id
    )
    assert done.returncode == 0, done.stderr
    assert f"re-queued {outcome.delivery_id}" in done.stdout
    await relay.hooks.wait_for(2, path=f"/fault/{p.id}", timeout=20)
    got = requests_to(relay, p.id)
    assert [r.status for r in got] == [404, 200]
    assert {r.webhook_id for r in got} == {outcome.delivery_id}

    # Replaying again sends nothing: the ledger knows it was delivered.
    again = await asyncio.to_thread(
        run_relay_cli, relay, "replay", "--delivery", str(outcome.delivery_id)
    )
    assert again.returncode == 0
    await asyncio.sleep(3)
    assert len(requests_to(relay, p.id)) == 2


async def test_exhausted_retries_go_dead_and_a_failing_channel_is_disabled(
    relay: RelayUnderTest,
) -> None:
    p = fault_partner(relay, f"f-down-{uuid.uuid4().hex[:6]}")
    ev, progress = await relay_to(relay, p, respond(503), timeout=60)
    (outcome,) = outcomes_of(progress, ev)
    assert outcome.status == DeliveryStatus.dead
    assert outcome.attempt == 5  # the first attempt and four retries
    assert len(requests_to(relay, p.id)) == 5
    records = await audit_for(relay, ev["document"]["id"])
    assert [r.reason for r in records if r.kind == "delivery.dead"] == ["retries_exhausted"]

    # The streak goes on with the next document; past the 8 s window (on a slow machine
    # already during the first one) the channel is disabled and attempts stop.
    ev2 = fault_event(p.id)
    await relay.publish_events(ev2)
    progress2 = await relay.settle([ev2["event_id"]], timeout=60)
    assert {o.status for o in outcomes_of(progress2, ev2)} <= {
        DeliveryStatus.disabled,
        DeliveryStatus.dead,
    }
    deadline = time.monotonic() + 20
    while not (
        disabled := [
            a
            for r in await kafka.read_topic(relay.settings, topics.AUDIT)
            for a in audit_records(r.value or b"")
            if a.kind == "channel.disabled" and a.partner_id == p.id
        ]
    ):
        assert time.monotonic() < deadline, "the failing channel was never disabled"
        await asyncio.sleep(0.5)
    assert len(disabled) == 1
    assert "failing without a success" in (disabled[0].detail or "")
    before = len(requests_to(relay, p.id))
    await asyncio.sleep(3)
    assert len(requests_to(relay, p.id)) == before  # a disabled channel is left alone


async def test_email_waits_out_an_smtp_outage(relay: RelayUnderTest) -> None:
    p = fault_partner(relay, f"f-mail-{uuid.uuid4().hex[:6]}", webhook=False, email=True)
    await add_partners(relay, p)
    relay.smtp.stop()
    try:
        ev = fault_event(p.id)
        await relay.publish_events(ev)
        deadline = time.monotonic() + 20
        while not any(
            r.kind == "delivery.retrying" for r in await audit_for(relay, ev["document"]["id"])
        ):
            assert time.monotonic() < deadline, "no retry was scheduled while SMTP was down"
            await asyncio.sleep(0.3)
    finally:
        relay.smtp.start()
    progress = await relay.settle([ev["event_id"]])
    (outcome,) = outcomes_of(progress, ev)
    assert outcome.status == DeliveryStatus.delivered and (outcome.attempt or 0) >= 2
    got = [m for m in relay.smtp.messages if f"{p.id}@fault.example.org" in m["To"]]
    assert len(got) == 1
    assert got[0]["X-Relay-Delivery-Id"] == outcome.delivery_id


async def test_malformed_intent_goes_to_the_dead_letter_with_a_reason(
    relay: RelayUnderTest,
) -> None:
    marker = uuid.uuid4().hex
    await kafka.produce(
        relay.settings,
        [
            (topics.DELIVER_WEBHOOK, "nobody", f'{{"broken": "{marker}"'.encode()),
        ],
    )
    deadline = time.monotonic() + 20
    while True:
        dead = [
            json.loads(r.value or b"{}")
            for r in await kafka.read_topic(relay.settings, topics.DEAD_LETTER)
        ]
        mine = [d for d in dead if marker in d.get("raw", "")]
        if mine:
            break
        assert time.monotonic() < deadline, "the malformed intent never reached the dead letter"
        await asyncio.sleep(0.3)
    assert mine[0]["dead_reason"] == "malformed"
    assert "malformed delivery intent" in mine[0]["detail"]
    assert mine[0]["source_topic"] == topics.DELIVER_WEBHOOK


async def start_fanout(
    relay: RelayUnderTest,
    name: str,
    n: int,
    *,
    delay: float,
    until: int,
    workers: Sequence[str] = (),
) -> tuple[dict[str, Any], Callable[[], list[Received]]]:
    """Publish a document to ``n`` partners of their own whose receivers answer 200 after
    ``delay`` s; return once ``until`` of them arrived, with the event and a way to see
    what arrived so far. ``workers``: as for :func:`add_partners`."""
    tag = f"{name}-{uuid.uuid4().hex[:6]}"
    partners = [fault_partner(relay, f"f-{tag}-{i:04d}", park=tag) for i in range(n)]
    for p in partners:
        behave(relay, p.id, respond(200, delay=delay))
    await add_partners(relay, *partners, workers=workers)
    ev = fault_event(tag)
    await relay.publish_events(ev)

    def arrived() -> list[Received]:
        return [r for r in relay.hooks.received if r.path.startswith(f"/fault/f-{tag}-")]

    deadline = time.monotonic() + 60
    while len(arrived()) < until:
        assert time.monotonic() < deadline, "the fan-out never got going"
        await asyncio.sleep(0.05)
    return ev, arrived


def assert_each_delivered_once_per_id(
    progress: Progress, ev: dict[str, Any], got: list[Received], n: int
) -> set[str]:
    """Nothing lost, every delivery delivered, and a repeat only ever under its own id."""
    planned = planned_deliveries(progress, ev)
    assert len(planned) == n
    ids_by_path: dict[str, set[str]] = defaultdict(set)
    for r in got:
        ids_by_path[r.path].add(r.webhook_id or "")
    assert {i for ids in ids_by_path.values() for i in ids} == planned  # nothing lost
    assert all(len(ids) == 1 for ids in ids_by_path.values())  # a repeat keeps its id
    assert len(ids_by_path) == n
    assert all(
        o.status == DeliveryStatus.delivered
        for o in progress.outcomes.values()
        if o.delivery_id in planned
    )
    return planned


async def test_worker_killed_mid_fanout_loses_nothing_and_repeats_keep_their_id(
    relay: RelayUnderTest,
) -> None:
    n = 1000
    log_start = relay.stack.worker_log.stat().st_size
    ev, arrived = await start_fanout(relay, "kill", n, delay=0.2, until=n // 5)
    killed_at = len(arrived())
    await relay.stack.kill_worker()
    await asyncio.sleep(KILL_RESTART_DELAY)
    relay.stack.start_worker()
    await relay.stack.wait_ready()
    t_restart = time.monotonic()
    progress = await relay.settle([ev["event_id"]], timeout=KILL_SETTLE)
    settled_after = time.monotonic() - t_restart

    got = arrived()
    assert_each_delivered_once_per_id(progress, ev, got, n)
    assert safety_net_lines(log_since(relay.stack.worker_log, log_start)) == []
    print(
        f"\nkill -9 after {killed_at}/{n} arrivals: {len(got)} requests, "
        f"{len(got) - n} repeats (all under their original id), 0 lost, "
        f"settled {settled_after:.0f}s after the restart"
    )


def _leading_failures(seed: int, rate: float = 0.5) -> int:
    """How many requests ``flaky(rate, seed=seed)`` fails before its first success."""
    rng = random.Random(seed)
    k = 0
    while rng.random() < rate:
        k += 1
    return k


async def test_receivers_failing_half_the_time_get_every_delivery_under_its_own_id(
    relay: RelayUnderTest,
) -> None:
    n, attempts = 200, 5  # the first try and the schedule's four retries
    tag = uuid.uuid4().hex[:6]
    partners = [fault_partner(relay, f"f-half-{tag}-{i:03d}", park=f"half-{tag}") for i in range(n)]
    # Each receiver fails half its requests at random (its own seed). Seeds that would fail
    # every attempt are skipped: this test is about repeats and ids, not dead letters.
    seeds = (s for s in itertools.count() if _leading_failures(s) < attempts)
    failures: dict[str, int] = {}
    for p in partners:
        seed = next(seeds)
        failures[f"/fault/{p.id}"] = _leading_failures(seed)
        behave(relay, p.id, flaky(0.5, seed=seed))
    await add_partners(relay, *partners)
    ev = fault_event(f"half-{tag}")
    await relay.publish_events(ev)
    progress = await relay.settle([ev["event_id"]], timeout=60)

    planned = planned_deliveries(progress, ev)
    assert len(planned) == n
    got = [r for r in relay.hooks.received if r.path.startswith(f"/fault/f-half-{tag}-")]
    assert all(r.verified for r in got)
    by_path: dict[str, list[Received]] = defaultdict(list)
    for r in got:
        by_path[r.path].append(r)
    assert {r.webhook_id for r in got} == planned  # nothing lost
    for path, requests in by_path.items():
        assert len({r.webhook_id for r in requests}) == 1, path  # repeats keep their id
        # Exactly the receiver's failures, then one success: no request more, none less.
        assert [r.status for r in requests] == [503] * failures[path] + [200], path
    outcomes = [o for o in progress.outcomes.values() if o.delivery_id in planned]
    assert len(outcomes) == n
    assert all(o.status == DeliveryStatus.delivered for o in outcomes)
    assert all(o.attempt == failures[f"/fault/{o.partner_id}"] + 1 for o in outcomes)
    failed = sum(r.status == 503 for r in got)
    assert 0.35 < failed / len(got) < 0.65, (failed, len(got))
    print(
        f"\nflaky receivers: {n} deliveries, {len(got)} requests ({failed} answered 503), "
        f"up to {max(failures.values()) + 1} attempts, 0 lost, every repeat under its id"
    )


def _assigned_webhook_partitions(log_text: str) -> set[int]:
    """The relay.deliveries.webhook partitions of the last assignment a worker logged."""
    found: set[int] = set()
    for block in log_text.split("Setting newly assigned partitions")[1:]:
        found = set()
        for line in block.splitlines()[:40]:
            if f"| {topics.DELIVER_WEBHOOK} " in line:
                spec = line.split("|")[2].strip().strip("{}")
                for part in spec.split(","):
                    lo, _, hi = part.strip().partition("-")
                    found.update(range(int(lo), int(hi or lo) + 1))
    return found


async def _wait_until_the_first_worker_owns_everything_again(
    relay: RelayUnderTest, timeout: float = 45
) -> None:
    """For the tests after this one (a static member leaves only on session expiry)."""
    deadline = time.monotonic() + timeout
    while True:
        text = relay.stack.worker_log.read_text(errors="replace")
        last = text.rsplit("Setting newly assigned partitions", 1)[-1]
        if _assigned_webhook_partitions(text) == {0, 1, 2, 3} and "Worker ready" in last:
            return
        assert time.monotonic() < deadline, (
            f"the first worker did not own every webhook partition again within {timeout:g} s "
            f"(its last assignment: {sorted(_assigned_webhook_partitions(text))})"
        )
        await asyncio.sleep(0.5)


async def test_a_second_worker_joining_mid_fanout_takes_partitions_and_loses_nothing(
    relay: RelayUnderTest,
) -> None:
    n = 1000
    log_start = relay.stack.worker_log.stat().st_size
    # Slow replies (under the 2 s timeout) keep the fan-out going while the worker joins.
    ev, arrived = await start_fanout(relay, "join", n, delay=1.5, until=n // 10)
    joined_at = len(arrived())
    stack = relay.stack
    name = f"worker-join-{uuid.uuid4().hex[:6]}"
    log_path = stack.run_dir / f"{name}.log"
    env = {"RELAY_WEB_PORT": str(free_port()), "RELAY_INSTANCE_ID": name}
    second = stack.spawn_worker(log_path, env)
    try:
        progress = await relay.settle([ev["event_id"]], timeout=90)
        assert second.poll() is None, "the second worker died"
    finally:
        stop_process(second, timeout=20)
        await _wait_until_the_first_worker_owns_everything_again(relay)
    # Read once it has stopped: a batch's line is logged after its ledger flush, which may
    # end after its audit records (that settled the fan-out) were written.
    second_log = log_path.read_text(errors="replace")

    got = arrived()
    assert_each_delivered_once_per_id(progress, ev, got, n)
    assert safety_net_lines(log_since(relay.stack.worker_log, log_start) + second_log) == []
    # The second worker really took part: it was given delivery partitions and sent some.
    taken = _assigned_webhook_partitions(second_log)
    assert taken and taken != {0, 1, 2, 3}, taken
    # It lived only during this fan-out, and logs a line per delivery batch it finished.
    sent_by_second = sum(
        int(line.split(" delivered=")[1].split()[0])
        for line in second_log.splitlines()
        if "event='delivery_batch'" in line and "channel_type='webhook'" in line
        if " delivered=" in line
    )
    assert sent_by_second > 0, "the second worker delivered nothing of the fan-out"
    repeats = len(got) - n
    print(
        f"\nsecond worker joined after {joined_at}/{n} arrivals, took webhook partitions "
        f"{sorted(taken)} and delivered {sent_by_second}: {len(got)} requests, "
        f"{repeats} repeats (all under their original id), 0 lost"
    )
