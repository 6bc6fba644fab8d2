"""An attempt is made once: kills, redeliveries and replays repeat none and dead-letter once.

Against the session's stack (embedded broker, worker process, verifying receiver; retry
schedule 0.5, 1, 1, 2 s). A *duplicate dead letter* is a second record on
``relay.dead-letter`` for the same (delivery id, replay round, attempt): the same
dead-ending told twice. A replay that dies again is a new dead-ending (its ``replays`` is
one more) and rightly gets a record of its own.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner

from relay.adapters import kafka
from relay.core import topics
from relay.core.models import DeliveryIntent, DeliveryStatus, Partner
from tests.helpers.receivers import Hold, Received, Reply, accept, respond
from tests.helpers.waits import record_on, until, wait_consumed
from tests.integration.conftest import RelayUnderTest, run_relay_cli
from tests.integration.test_faults import (
    add_partners,
    behave,
    fault_event,
    fault_partner,
    outcomes_of,
    requests_to,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

BUSY = {"Retry-After": "2"}


def partners_in_one_partition(relay: RelayUnderTest, park: str, names: list[str]) -> list[Partner]:
    """Fault partners (one per name) whose ids hash to the same partition, so their first
    attempts travel in one record and are handled in one delivery batch."""
    partitions = list(range(relay.settings.topic_partitions))
    hashed = DefaultPartitioner()
    for n in range(1000):
        ids = [f"f-{park}-{name}-{n}" for name in names]
        if len({hashed(i.encode(), partitions, partitions) for i in ids}) == 1:
            return [fault_partner(relay, i, park=park) for i in ids]
    raise AssertionError("no ids sharing a partition")  # 1000 tries at 1 in 16 each


def gaps(requests: list[Received]) -> list[float]:
    return [round(b.at - a.at, 3) for a, b in zip(requests, requests[1:], strict=False)]


async def dead_letters(relay: RelayUnderTest, ids: set[str]) -> list[dict[str, Any]]:
    found = []
    for r in await kafka.read_topic(relay.settings, topics.DEAD_LETTER):
        value = json.loads(r.value or b"{}")
        if value.get("delivery_id") in ids:
            found.append(value)
    return found


def dead_endings(letters: list[dict[str, Any]]) -> Counter[tuple[str, int, int]]:
    """How often each (delivery id, replay round, attempt) was dead-lettered."""
    return Counter((d["delivery_id"], d.get("replays", 0), d["attempt"]) for d in letters)


async def recorded_in_ledger(relay: RelayUnderTest, delivery_id: str, attempt: int) -> None:
    """Wait until the ledger's changelog holds ``attempt`` of the delivery (its outcome is
    then known to any worker that takes over the partition)."""
    changelog = f"{relay.settings.app_id}-ledger-changelog"

    def holds(rec: kafka.Record) -> bool:
        entry = json.loads(rec.value or b"{}").get(delivery_id)
        return bool(entry) and any(a["attempt"] == attempt for a in entry["attempts"])

    await record_on(
        relay.settings,
        changelog,
        holds,
        what=f"attempt {attempt} of {delivery_id} recorded in the ledger while its batch is open",
        timeout=10,
    )


class OwnWorker:
    """The stack's worker run with ``env`` on top of its settings, for one test."""

    def __init__(self, relay: RelayUnderTest, env: dict[str, str]) -> None:
        self.stack, self.env = relay.stack, env

    async def start(self) -> None:
        self.stack.worker = self.stack.spawn_worker(self.stack.worker_log, self.env)
        await self.stack.wait_ready()

    async def crash_and_restart(self) -> None:
        """SIGKILL, as a crash would, and start it again at once."""
        await self.stack.kill_worker()
        await self.start()


@asynccontextmanager
async def own_worker(relay: RelayUnderTest, env: dict[str, str]) -> AsyncIterator[OwnWorker]:
    """Swap the session's worker for one with ``env``; the session's comes back after."""
    own = OwnWorker(relay, env)
    await relay.stack.kill_worker()
    try:
        await own.start()
        yield own
    finally:
        await relay.stack.kill_worker()
        relay.stack.start_worker()
        await relay.stack.wait_ready()


async def test_a_kill_after_attempts_were_recorded_repeats_none_and_dead_letters_once(
    relay: RelayUnderTest,
) -> None:
    # Three partners whose first attempts share one batch: `busy` answers 503 with
    # Retry-After: 2 every time (five attempts, then dead), `gone` 404 (dead at once), and
    # `slow` is held by the test, so the batch stays open and unacknowledged.
    park = f"rk-{uuid.uuid4().hex[:6]}"
    busy, gone, slow = partners_in_one_partition(relay, park, ["busy", "gone", "slow"])
    hold = Hold()
    behave(relay, busy.id, respond(503, headers=BUSY))
    behave(relay, gone.id, respond(404))
    behave(relay, slow.id, hold)
    await add_partners(relay, busy, gone, slow)
    ev = fault_event(park)
    # A worker whose webhook timeout outlasts the hold (the batch stays open until the
    # kill), and whose health window outlasts the restart (`busy` keeps its channel).
    env = {"RELAY_WEBHOOK_TIMEOUT": "60", "RELAY_DISABLE_AFTER": "600"}
    async with own_worker(relay, env) as worker:
        await relay.publish_events(ev)
        await until(
            lambda: hold.waiting and requests_to(relay, busy.id) and requests_to(relay, gone.id),
            what="the first attempts of the three deliveries at their receivers",
        )
        busy_id = requests_to(relay, busy.id)[0].webhook_id
        gone_id = requests_to(relay, gone.id)[0].webhook_id
        assert busy_id and gone_id
        # The moment that matters: both attempts were made and their follow-ups (a retry,
        # a dead letter) written, the batch is still open, so its offset is not committed:
        # the next worker reads both intents again.
        await recorded_in_ledger(relay, busy_id, 1)
        await recorded_in_ledger(relay, gone_id, 1)
        assert hold.waiting == 1, "the held request ended before the kill"
        await worker.crash_and_restart()
        hold.release()
        progress = await relay.settle([ev["event_id"]], timeout=90)
        await wait_consumed(relay.settings, [topics.DELIVER_WEBHOOK, topics.RETRY])

    statuses = {o.partner_id: (o.status, o.attempt) for o in outcomes_of(progress, ev)}
    assert statuses == {
        busy.id: (DeliveryStatus.dead, 5),
        gone.id: (DeliveryStatus.failed, 1),
        slow.id: (DeliveryStatus.delivered, 1),
    }
    # Each attempt once, and never sooner than the receiver's Retry-After.
    to_busy = requests_to(relay, busy.id)
    assert [r.status for r in to_busy] == [503] * 5, gaps(to_busy)
    assert all(g >= 2.0 for g in gaps(to_busy)), gaps(to_busy)
    assert [r.status for r in requests_to(relay, gone.id)] == [404]
    # The held request was cut by the kill; the new worker sent it again, under its id.
    (slow_id,) = {r.webhook_id for r in requests_to(relay, slow.id)}
    assert [o.delivery_id for o in outcomes_of(progress, ev) if o.partner_id == slow.id] == [
        slow_id
    ]
    # One dead letter per dead-ending.
    letters = await dead_letters(relay, {busy_id, gone_id})
    assert dead_endings(letters) == Counter({(busy_id, 0, 5): 1, (gone_id, 0, 1): 1})


async def test_a_copy_of_an_attempt_already_made_or_not_yet_due_is_not_sent(
    relay: RelayUnderTest,
) -> None:
    # After a crash, copies of intents come back: the attempt whose offset was not
    # committed, and a retry released again. Here the copies are fed in by hand, right
    # after the first attempt, as a crash would feed them.
    p = fault_partner(relay, f"f-copy-{uuid.uuid4().hex[:6]}")
    seen: set[str] = set()

    def busy_first(request: Received) -> Reply:
        first = request.webhook_id not in seen
        seen.add(request.webhook_id or "")
        return Reply(503, BUSY) if first else accept(request)

    behave(relay, p.id, busy_first)
    await add_partners(relay, p)
    ev = fault_event(p.id)
    await relay.publish_events(ev)
    await until(
        lambda: [r for r in requests_to(relay, p.id) if r.status],
        what="the first attempt answered",
    )
    delivery_id = requests_to(relay, p.id)[0].webhook_id
    assert delivery_id
    retry = await record_on(
        relay.settings,
        topics.RETRY,
        lambda r: delivery_id.encode() in (r.value or b""),
        what=f"the retry of {delivery_id}",
    )
    await recorded_in_ledger(relay, delivery_id, 1)
    second = DeliveryIntent.model_validate_json(retry.value or b"")
    assert second.attempt == 2
    first = second.model_copy(update={"attempt": 1, "due_at": None})
    await kafka.produce(
        relay.settings,
        [
            (topics.DELIVER_WEBHOOK, p.id, first.model_dump_json().encode()),
            (topics.DELIVER_WEBHOOK, p.id, second.model_dump_json().encode()),
        ],
    )

    progress = await relay.settle([ev["event_id"]], timeout=60)
    await wait_consumed(relay.settings, [topics.DELIVER_WEBHOOK, topics.RETRY])
    (outcome,) = outcomes_of(progress, ev)
    assert (outcome.status, outcome.attempt) == (DeliveryStatus.delivered, 2)
    got = requests_to(relay, p.id)
    assert [r.status for r in got] == [503, 200], gaps(got)
    assert gaps(got)[0] >= 2.0, gaps(got)


async def test_a_dead_letter_replayed_twice_at_once_is_attempted_and_dead_lettered_once(
    relay: RelayUnderTest,
) -> None:
    park = f"rp-{uuid.uuid4().hex[:6]}"
    partners = [fault_partner(relay, f"f-{park}-{i}", park=park) for i in range(6)]
    for p in partners:
        behave(relay, p.id, respond(404))
    await add_partners(relay, *partners)
    ev = fault_event(park)
    await relay.publish_events(ev)
    progress = await relay.settle([ev["event_id"]])
    ids = {str(o.delivery_id) for o in outcomes_of(progress, ev)}
    assert len(ids) == 6 and {o.status for o in outcomes_of(progress, ev)} == {"failed"}

    # Two replays of the same dead letters (a double click, or the CLI and the dashboard)
    # before the first has an outcome: the receivers hold the first replay's attempts until
    # the second replay is out. Its own worker, whose webhook timeout outlasts the hold (the
    # session's 2 s would turn a held attempt into a timeout, then a disabled channel).
    hold = Hold(then=respond(404))
    for p in partners:
        behave(relay, p.id, hold)
    async with own_worker(relay, {"RELAY_WEBHOOK_TIMEOUT": "60", "RELAY_DISABLE_AFTER": "600"}):
        for i in range(2):
            done = await asyncio.to_thread(
                run_relay_cli, relay, "replay", "--document", ev["document"]["id"]
            )
            assert done.returncode == 0, done.stderr
            assert "6 dead letters re-queued" in done.stdout, done.stdout
            if i == 0:
                # The delivery agent handles a batch at a time: at least the first of the
                # first replay's attempts is held, and so every later one is unanswered too.
                await until(lambda: hold.waiting >= 1, what="a replayed attempt held")
        hold.release()
        await until(
            lambda: sum(len(requests_to(relay, p.id)) for p in partners) >= 12,
            what="the six replayed attempts answered",
        )
        await wait_consumed(relay.settings, [topics.DELIVER_WEBHOOK])

    # Each receiver saw the first attempt and one replayed attempt, under the same id.
    for p in partners:
        assert [r.status for r in requests_to(relay, p.id)] == [404, 404], p.id
    # Each delivery dead-ended twice (the first time, and once in the replay round).
    letters = await dead_letters(relay, ids)
    assert dead_endings(letters) == Counter({(i, round_, 1): 1 for i in ids for round_ in (0, 1)})
