"""Every private member of Faust and aiokafka the relay relies on, in one place, checked.

The relay needs a few things neither library offers publicly: fixes for three races in
faust-streaming (below), two workarounds for the embedded broker (:func:`install`,
``dev`` profile), and some private members (the current event of a stream, a consumer's
group coordinator, a table store's batch reader…). They are all here, and
:func:`check` (run when a worker starts) verifies that the installed versions still have
each member, and that the methods copied below are still the ones they were copied from,
and stops the worker with one line naming what changed otherwise (``relay worker`` then
exits instead of running on code it was not written for).

**The Faust fixes.**

Applied in every profile: the races are Faust's (with aiokafka), not the embedded broker's.
The first two happen when a worker starts (or rebalances) while its stream partitions hold
records: aiokafka prefetches every assigned partition during table recovery, paused or not.

**1. An empty set of active partitions means "all of them".** Faust's fetch loop hands its
live set of active partitions to the consumer thread, where aiokafka's
``Fetcher.fetched_records(partitions)`` waits up to a second for records and, on each
wake-up, drains every buffered partition when ``partitions`` is empty. At the end of
recovery Faust pauses the changelog partitions while the stream partitions are still
paused: the set becomes empty during that wait, aiokafka drains the prefetched stream
records, and Faust drops them because their partitions are not active. Their fetch
position is now at the end: the partition *stalls* (records waiting, nothing read, the
committed offset unchanged). Fixed by giving aiokafka a snapshot of the set, and nothing to
do when it is empty.

**2. Resuming stream partitions before seeking them** (``faust/tables/recovery.py``).
After table recovery, ``Recovery.on_recovery_completed`` does, in this order:

1. ``consumer.resume_partitions(stream partitions)``, so the fetch loop may now hand their
   records to the agents' channel queues (flow is already on since the changelogs were read);
2. ``await consumer.perform_seek()``, one OffsetFetch per assigned partition, which takes
   long enough for the fetch loop to run (aiokafka has prefetched those partitions during
   recovery, so their records are ready at once);
3. ``app.flow_control.resume()``, which *clears every channel queue*.

Records handed over during step 2 are dropped in step 3, unacked, while Faust's read
offset and aiokafka's fetch position have already moved past them. What follows depends on
which finished first, the hand-over or the seek of that partition:

* the partition is not read again (its position is at the end): it *stalls*, with records
  waiting and its committed offset unchanged (or empty when the previous worker never
  committed, since ``perform_seek`` does not seek partitions without a committed offset);
* or the seek set the read offset back while the fetch loop was still yielding the batch:
  the next record seen is more than one past the read offset, Faust records the range as a
  gap (``Consumer._add_gap``), and gaps count as acknowledged, so the commit moves past
  records no agent ever saw: they are *lost*; the re-fetched copies are then dropped as
  older than the read offset ("DROPPED MESSAGE ROFF").

Upstream: faust-streaming#596 describes this family (queue clearing after recovery leaves
gaps); #217 fixed the same ordering in ``_resume_streams`` only partly.

Fixed by seeking *before* resuming the stream partitions, then resuming them, clearing the
queues and turning the flow on without awaiting in between, so the fetch loop cannot hand
anything over that the clearing would drop.

**3. Partitions the group never committed are not sought back.** When records come back
from a fetch while the flow is off (a rebalance began meanwhile, or the fetch outlasted
one), ``Consumer.getmany`` drops them and calls ``perform_seek`` to read them again from
the committed offsets. But aiokafka's ``seek_to_committed`` seeks only partitions with a
committed offset above 0: in one the group never committed (every partition, until its
first records are done), the fetch position stays past the dropped records, and once the
records after them are done and committed, the dropped ones are lost. Seen in
``tests/integration/test_scale_out.py``: a document at offset 0 of a partition, published
while a worker joined, was never read, and the group committed the 6 after it (4 failed
runs in 17; none in 12 since, with 4 to 8 such drops a run). Fixed by seeking such stream
partitions to their beginning (the group has done nothing of them;
``consumer_auto_offset_reset`` is ``earliest``).

**The embedded broker** (Tansu), ``dev`` profile only; Apache Kafka needs neither:

1. A fetch is answered only when its wait runs out, never early when a record arrives, and
   Faust hard-codes a 1.5 s wait: every hop between agents would add up to 1.5 s. The
   worker's consumer gets the profile's short wait instead.
2. ListOffsets ("latest") answers the base offset of the last record batch + 1, not the
   end of the partition. Faust's table recovery reads changelogs up to that offset only,
   so a restarted worker would lose table entries written in batches (parked retries
   among them). The high watermark in fetch responses is right, so Faust asks for that.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib.metadata import version
from typing import Any

import aiokafka
import faust
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.errors import KafkaError
from aiokafka.protocol.group import LeaveGroupRequest
from faust.stores.memory import Store as MemoryStore
from faust.stores.rocksdb import Store as RocksStore
from faust.streams import _current_event
from faust.tables.recovery import Recovery
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as driver
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import EventT
from mode.threads import ServiceThread

from relay.adapters.batches import BatchIndex
from relay.core.errors import ConfigError
from relay.core.logs import get_logger

log = get_logger(__name__)

#: The releases this module was written and tested against (a prefix of the version).
TESTED: dict[str, tuple[str, ...]] = {
    "faust-streaming": ("0.15.",),
    "aiokafka": ("0.13.", "0.14."),
}

#: The Faust methods replaced (as whole copies, but ``_fetch_records``: wrapped).
ORIGINALS: dict[str, Callable[..., Any]] = {
    "on_recovery_completed": Recovery.on_recovery_completed,
    "_resume_streams": Recovery._resume_streams,
    "_fetch_records": AIOKafkaConsumerThread._fetch_records,
    "perform_seek": faust_consumer.Consumer.perform_seek,
}


async def _fetch_records(
    self: Any,
    consumer: Any,
    active_partitions: Any,
    timeout: float | None = None,
    max_records: int | None = None,
) -> Any:
    """Fetch only what is active now, and nothing when nothing is (race 1)."""
    if active_partitions is not None:
        # Faust passes its live set, which the event loop thread changes meanwhile.
        active_partitions = frozenset(active_partitions)
        if not active_partitions:
            return {}  # aiokafka would read "every partition"
    return await ORIGINALS["_fetch_records"](
        self, consumer, active_partitions, timeout=timeout, max_records=max_records
    )


async def perform_seek(self: Any) -> None:
    """``Consumer.perform_seek`` of faust-streaming 0.15.3, and the stream partitions the
    group never committed sought to their beginning (race 3)."""
    read_offset = self._read_offset
    _committed_offsets = await self.seek_to_committed()
    # aiokafka seeks only offsets above 0; None or 0: nothing done, start from the beginning.
    changelogs = self.app.tables.changelog_topics
    never = [tp for tp, offset in _committed_offsets.items() if not offset]
    never = [tp for tp in never if tp.topic not in changelogs]
    if never:
        await self._thread.seek_to_beginning(*never)
    read_offset.update(
        {
            tp: offset if offset is not None and offset >= 0 else None
            for tp, offset in _committed_offsets.items()
        }
    )
    committed_offsets = {
        faust_consumer.ensure_TP(tp): offset if offset else None
        for tp, offset in _committed_offsets.items()
        if offset is not None
    }
    self._committed_offset.update(committed_offsets)


async def on_recovery_completed(self: Any, generation_id: int = 0) -> None:
    """``Recovery.on_recovery_completed`` of faust-streaming 0.15.3, seek moved first (race 2)."""
    self.log.info("Restore complete!")
    await self.app.on_rebalance_complete.send()
    self._set_recovery_ended()
    callback_coros = [
        asyncio.ensure_future(
            table.on_recovery_completed(
                self.actives_for_table[table],
                self.standbys_for_table[table],
            )
        )
        for table in self.tables.values()
    ]
    if callback_coros:
        await asyncio.wait(callback_coros)
    if not await _seek_then_resume(self, generation_id):
        return
    # finally make sure the fetcher is running.
    await self.app._fetcher.maybe_start()
    self.tables.on_actives_ready()
    if not self.app.assignor.assigned_standbys():
        self.tables.on_standbys_ready()
    self.app.on_rebalance_end()
    self.log.info("Worker ready")


async def _resume_streams(self: Any, generation_id: int = 0) -> None:
    """``Recovery._resume_streams`` (apps without tables), seek moved first."""
    await self.app.on_rebalance_complete.send()
    if not await _seek_then_resume(self, generation_id):
        return
    await self.app._fetcher.maybe_start()
    self.tables.on_actives_ready()
    self.tables.on_standbys_ready()
    self.app.on_rebalance_end()
    self.log.info("Worker ready")


async def _seek_then_resume(self: Any, generation_id: int) -> bool:
    """Seek the stream partitions, then resume them; False if a rebalance came meanwhile."""
    if not _same_generation(self, generation_id):
        return False
    consumer = self.app.consumer
    if consumer.assignment():
        # Still paused for the fetch loop: nothing of theirs reaches a queue meanwhile.
        self.log.info("Seek stream partitions to committed offsets.")
        await self._wait(consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout)
        if not _same_generation(self, generation_id):
            return False
    else:
        self.log.info("Resuming streams with empty assignment")
    _resume_stream_partitions(self)
    return True


def _same_generation(self: Any, generation_id: int) -> bool:
    if self.app.consumer_generation_id != generation_id:
        self.log.warning(
            f"Recovery rebalancing again app id "
            f"{self.app.consumer_generation_id} param {generation_id}"
        )
        return False
    return True


def _resume_stream_partitions(self: Any) -> None:
    """Resume the stream partitions, clear the queues, start the flow: no await inside."""
    consumer = self.app.consumer
    consumer.resume_partitions(
        {tp for tp in consumer.assignment() if not self._is_changelog_tp(tp)}
    )
    self.completed.set()
    self.log.dev("Resume stream partitions")
    self.app.flow_control.resume()  # clears the channel queues
    consumer.resume_flow()


#: SHA-256 (first 16 hex digits) of the source of each method replaced or wrapped above,
#: as written in faust-streaming 0.15.3. When Faust changes one, the copy here may undo
#: Faust's change: check whether the race is still there and whether the copies still fit.
UPSTREAM = {
    "on_recovery_completed": "6ef567acf072e46d",
    "_resume_streams": "d986a6710c1aca98",
    "_fetch_records": "39a2c6c79fc1455a",
    "perform_seek": "0e8c130ff4b0afd8",
}

#: Private members used below and elsewhere through this module: (owner, name). Instance
#: attributes are looked for in their class's source (``self.<name>``).
MEMBERS: tuple[tuple[Any, str], ...] = (
    (faust_consumer.Consumer, "_committed_offset"),
    (faust_consumer.ThreadDelegateConsumer, "_thread"),
    (AIOKafkaConsumerThread, "_consumer"),
    (AIOKafkaConsumerThread, "_ensure_consumer"),
    (AIOKafkaConsumerThread, "_create_worker_consumer"),
    (AIOKafkaConsumerThread, "_highwaters"),
    (AIOKafkaConsumerThread, "seek_to_beginning"),
    (faust_consumer.Consumer, "_read_offset"),
    (AIOKafkaConsumerThread, "call_thread"),
    (ServiceThread, "thread_loop"),
    (driver.Producer, "_ensure_producer"),
    (MemoryStore, "_create_batch_iterator"),
    (MemoryStore, "_key_partition"),
    (RocksStore, "_db_for_partition"),
    (RocksStore, "_key_index"),
    (RocksStore, "_get"),
    (RocksStore, "_encode_key"),
    (RocksStore, "_encode_value"),
    (RocksStore, "_decode_value"),
    (RocksStore, "_visible_keys"),
    (RocksStore, "_visible_items"),
    (faust.Table, "_new_store_by_url"),
    (faust.Table, "_on_changelog_sent"),
    (aiokafka.AIOKafkaConsumer, "_client"),
    (aiokafka.AIOKafkaConsumer, "_coordinator"),
    (aiokafka.AIOKafkaConsumer, "_fetch_max_wait_ms"),
    (GroupCoordinator, "_send_req"),
    (GroupCoordinator, "reset_generation"),
    (GroupCoordinator, "generation"),
    (GroupCoordinator, "member_id"),
    (aiokafka.AIOKafkaClient, "force_metadata_update"),
)


def problems() -> list[str]:
    """What differs from the Faust and aiokafka this module was written for."""
    found = []
    for dist, prefixes in TESTED.items():
        installed = version(dist)
        if not installed.startswith(prefixes):
            found.append(f"{dist} {installed} (tested: {prefixes})")
    for name, fn in ORIGINALS.items():
        digest = hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()[:16]
        if digest != UPSTREAM[name]:
            found.append(f"{fn.__qualname__} changed upstream")
    for owner, name in MEMBERS:
        if not _has(owner, name):
            found.append(f"{owner.__module__}.{owner.__qualname__}.{name} is gone")
    return found


def _has(owner: Any, name: str) -> bool:
    if hasattr(owner, name):
        return True
    try:
        source = inspect.getsource(owner)
    except (OSError, TypeError):
        return False
    return f"self.{name} " in source or f"self.{name}:" in source


def check() -> None:
    """Raise :class:`ConfigError` (one line) if a member or copied method has changed."""
    found = problems()
    if found:
        raise ConfigError(
            "this relay was written for other releases of Faust/aiokafka: "
            + "; ".join(found)
            + " (see relay/adapters/compat.py)"
        )


def install(*, embedded_broker: bool, fetch_wait_ms: int) -> None:
    """Check, then apply the Faust fixes (and the embedded broker's workarounds), once."""
    check()
    if not getattr(Recovery, "_relay_fixed", False):
        Recovery.on_recovery_completed = on_recovery_completed  # type: ignore[method-assign]
        Recovery._resume_streams = _resume_streams  # type: ignore[method-assign]
        AIOKafkaConsumerThread._fetch_records = _fetch_records  # type: ignore[method-assign]
        faust_consumer.Consumer.perform_seek = perform_seek  # type: ignore[method-assign]
        Recovery._relay_fixed = True  # type: ignore[attr-defined]
    if embedded_broker:
        _embedded_broker(fetch_wait_ms)


def _embedded_broker(fetch_wait_ms: int) -> None:
    thread: Any = AIOKafkaConsumerThread
    if getattr(thread, "_relay_patched", False):
        return
    create_original = thread._create_worker_consumer

    def create(self: Any, transport: Any) -> Any:
        consumer = create_original(self, transport)
        consumer._fetch_max_wait_ms = fetch_wait_ms  # read when the consumer starts
        return consumer

    from relay.adapters.kafka import true_end_offsets  # kafka uses this module

    async def highwaters(self: Any, partitions: list[Any]) -> Mapping[Any, int]:
        servers = driver.server_list(self.transport.url, self.transport.default_port)
        return await true_end_offsets(servers, partitions)

    thread._create_worker_consumer = create
    thread._highwaters = highwaters
    thread._relay_patched = True


# ------------------------------------------------------------------ private members, used


class on_behalf_of:  # noqa: N801  (used like a function: ``with on_behalf_of(event):``)
    """Make ``event`` the current event while handling it.

    Table writes go to the current event's partition. A batch from ``take_events`` mixes
    partitions, and the stream's own notion of the current event is the last one taken,
    so each item of a batch sets its own (per asyncio task, as context variables are).
    A plain class: it runs once per delivery, and a generator-based manager costs more.
    """

    __slots__ = ("_event", "_token")

    def __init__(self, event: EventT[Any]) -> None:
        self._event = event

    def __enter__(self) -> None:
        self._token = _current_event.set(weakref.ref(self._event))

    def __exit__(self, *exc: object) -> None:
        _current_event.reset(self._token)


def committed_at_start(app: faust.App) -> Mapping[Any, int | None]:
    """The committed offsets the worker's consumer started from (read back from the group
    after an assignment), by topic partition."""
    return getattr(app.consumer, "_committed_offset", {})


def _thread(app: faust.App) -> Any:
    return getattr(app.consumer, "_thread", None)


def consumer_loop(app: faust.App) -> asyncio.AbstractEventLoop | None:
    """The event loop of Faust's Kafka consumer thread (it runs on a loop of its own)."""
    return getattr(_thread(app), "thread_loop", None)


def group_membership(app: faust.App) -> tuple[int, str]:
    """(generation, member id) of the worker's consumer; (-1, "") before it joined."""
    coordinator = getattr(getattr(_thread(app), "_consumer", None), "_coordinator", None)
    if coordinator is None:
        return -1, ""
    return int(coordinator.generation), str(coordinator.member_id)


async def force_rebalance(app: faust.App) -> None:
    """Leave the consumer group and join it again: a new generation for every member.

    aiokafka sends no LeaveGroup for a static member and offers no public way to rejoin
    as a new member, so this reaches into its coordinator, on the consumer's own thread.
    """
    thread = _thread(app)

    async def leave_and_rejoin() -> None:
        coordinator = thread._ensure_consumer()._coordinator
        if coordinator.member_id:
            request = LeaveGroupRequest(coordinator.group_id, coordinator.member_id)
            try:
                await coordinator._send_req(request)
            except KafkaError as e:
                log.warning("leave_group_failed", error=repr(e))
        coordinator.reset_generation()  # and so rejoin, as a new member

    await thread.call_thread(leave_and_rejoin)


async def partitions_for(app: faust.App, topic: str) -> list[int]:
    """The partitions of ``topic``, as the app's producer knows them (sorted)."""
    producer = app.producer._ensure_producer()  # type: ignore[attr-defined]
    return sorted(await producer.partitions_for(topic))


async def refresh_metadata(consumer: aiokafka.AIOKafkaConsumer) -> None:
    """Make a plain consumer learn every topic's partitions now (aiokafka has no public
    call that updates its own view)."""
    await consumer._client.force_metadata_update()


class BatchReadingStore(MemoryStore[str, Any]):
    """Faust's in-memory store, reading changelog records keyed ``<batch_prefix>…`` as one
    key per entry of their value (a dict), and keeping :attr:`batches`, the index of those
    not yet covered; see relay/runtime/ledger.py."""

    batch_prefix = "~batch~"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches = BatchIndex()

    def _create_batch_iterator(
        self,
        mark_as_delete: Callable[[Any], None],
        to_key: Callable[[Any], Any],
        to_value: Callable[[Any], Any],
        batch: Iterable[EventT[Any]],
    ) -> Iterator[tuple[Any, Any]]:
        for event in batch:
            key = to_key(event.key)
            partition = event.message.partition
            if isinstance(key, str) and key.startswith(self.batch_prefix):
                if event.message.value is None:  # covered: its entries follow it
                    self.batches.drop(partition, key)
                    continue
                entries = to_value(event.value)
                if isinstance(entries, dict):
                    self.batches.add(partition, key, entries)
                    for k, v in entries.items():
                        self._key_partition[k] = partition
                        yield k, v
                continue
            if event.message.value is None:
                mark_as_delete(key)
            self._key_partition[key] = partition
            yield key, to_value(event.value)

    def put_in_partition(self, key: str, value: Any, partition: int) -> None:
        """Set ``key`` as a changelog record of ``partition`` would (no record written)."""
        self.data[key] = value
        self._key_partition[key] = partition

    def batches_of(self, partition: int) -> list[tuple[str, tuple[str, ...]]]:
        """The partition's uncovered batch records, oldest first."""
        return self.batches.of(partition)

    def note_batch(self, partition: int, batch_key: str, keys: Iterable[str]) -> None:
        self.batches.add(partition, batch_key, keys)

    def drop_batch(self, partition: int, batch_key: str) -> None:
        self.batches.drop(partition, batch_key)

    def current(self, key: str, partition: int) -> Any:
        """The value of ``key`` (None when deleted or never set)."""
        return self.data.get(key)


def rocksdb_available() -> bool:
    """Whether the RocksDB bindings Faust uses (``rocksdict``) are installed."""
    try:
        import rocksdict  # noqa: F401
    except ImportError:
        return False
    return True


#: Where a partition's RocksDB database keeps its uncovered batch records (JSON): a table
#: key is JSON and never starts with "_"; hidden from the table as Faust hides its offset.
BATCHES_KEY = b"__relay\0batches__"


class BatchReadingRocksStore(RocksStore):
    """Faust's RocksDB store (one database per partition, on disk), reading changelog
    records keyed ``<batch_prefix>…`` as one key per entry, like :class:`BatchReadingStore`.

    Faust writes a changelog record's raw bytes into the partition's database and
    remembers the offset it reached, so a restarted worker reads the changelog only from
    there. A batch record is exploded into its entries, each encoded as the table would.
    The index of uncovered batch records is kept in the same database (and written in the
    same write batch as the records it learnt from), since a restarted worker does not
    read those records again.
    """

    batch_prefix = "~batch~"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches = BatchIndex()
        self._batches_loaded: set[int] = set()

    def apply_changelog_batch(
        self,
        batch: Iterable[EventT[Any]],
        to_key: Callable[[Any], Any],
        to_value: Callable[[Any], Any],
    ) -> None:
        import rocksdict

        writes: dict[int, Any] = {}
        offsets: dict[Any, int] = {}
        indexed: set[int] = set()
        for event in batch:
            msg = event.message
            offsets[msg.tp] = max(msg.offset, offsets.get(msg.tp, msg.offset))
            if msg.key is None:  # a table's changelog record always has a key
                continue
            out: Any = writes.get(msg.partition)
            if out is None:
                out = writes[msg.partition] = rocksdict.WriteBatch(raw_mode=True)
            key = to_key(event.key)
            if isinstance(key, str) and key.startswith(self.batch_prefix):
                index = self._index(msg.partition)
                indexed.add(msg.partition)
                if msg.value is None:  # covered: its entries follow it
                    index.drop(msg.partition, key)
                    continue
                entries = to_value(event.value)
                if isinstance(entries, dict):
                    index.add(msg.partition, key, entries)
                    for k, v in entries.items():
                        self._write(out, self._encode_key(k), v)
                continue
            if msg.value is None:
                out.delete(msg.key)
            else:
                out.put(msg.key, msg.value)
        for partition in indexed:
            writes[partition].put(BATCHES_KEY, self._dumped_index(partition))
        for partition, out in writes.items():
            self._db_for_partition(partition).write(out)
        for tp, offset in offsets.items():
            self.set_persisted_offset(tp, offset)

    def _write(self, out: Any, key: bytes, value: Any) -> None:
        if value is None:
            out.delete(key)
        else:
            out.put(key, self._encode_value(value))

    def _index(self, partition: int) -> BatchIndex:
        if partition not in self._batches_loaded:
            raw = self._db_for_partition(partition).get(BATCHES_KEY)
            self.batches.load(partition, json.loads(raw) if raw else {})
            self._batches_loaded.add(partition)
        return self.batches

    def _dumped_index(self, partition: int) -> bytes:
        return json.dumps(self.batches.dump(partition)).encode()

    def _save_index(self, partition: int) -> None:
        self._db_for_partition(partition).put(BATCHES_KEY, self._dumped_index(partition))

    def _visible_keys(self, db: Any) -> Iterator[bytes]:
        return (k for k in super()._visible_keys(db) if k != BATCHES_KEY)

    def _visible_items(self, db: Any) -> Iterator[tuple[bytes, bytes]]:
        return (kv for kv in super()._visible_items(db) if kv[0] != BATCHES_KEY)

    def put_in_partition(self, key: str, value: Any, partition: int) -> None:
        """Set ``key`` in ``partition``'s database (no changelog record written)."""
        raw = self._encode_key(key)
        db = self._db_for_partition(partition)
        if value is None:
            db.delete(raw)
        else:
            db.put(raw, self._encode_value(value))
        self._key_index[raw] = partition

    def lookup(self, key: str) -> Any:
        """The value of ``key``, or None."""
        raw = self._get(self._encode_key(key))
        return None if raw is None else self._decode_value(raw)

    def batches_of(self, partition: int) -> list[tuple[str, tuple[str, ...]]]:
        """The partition's uncovered batch records, oldest first."""
        return self._index(partition).of(partition)

    def note_batch(self, partition: int, batch_key: str, keys: Iterable[str]) -> None:
        self._index(partition).add(partition, batch_key, keys)
        self._save_index(partition)

    def drop_batch(self, partition: int, batch_key: str) -> None:
        self._index(partition).drop(partition, batch_key)
        self._save_index(partition)

    def current(self, key: str, partition: int) -> Any:
        """The value of ``key`` in ``partition``'s database (None when deleted)."""
        raw = self._db_for_partition(partition).get(self._encode_key(key))
        return None if raw is None else self._decode_value(raw)


class TableWithStore(faust.Table[str, Any]):
    """A Faust table whose store is an instance of ``store_class`` for ``memory://`` and
    of ``rocks_store_class`` for ``rocksdb://`` (Faust would pick its own by the URL)."""

    store_class: type[MemoryStore[str, Any]] = MemoryStore
    rocks_store_class: type[RocksStore] = RocksStore

    def _new_store_by_url(self, url: Any) -> Any:
        scheme = str(url).split(":", 1)[0]
        kind: type[Any] = self.rocks_store_class if scheme == "rocksdb" else self.store_class
        return kind(
            url,
            self.app,
            self,
            table_name=self.name,
            key_type=self.key_type,
            key_serializer=self.key_serializer,
            value_serializer=self.value_serializer,
            value_type=self.value_type,
            loop=self.loop,
            options=self.options,
        )


def changelog_sent_callback(table: faust.Table[Any, Any]) -> Callable[..., Any]:
    """What a table calls when one of its changelog records was written."""
    return table._on_changelog_sent


async def send_in_batches(
    table: faust.Table[Any, Any], partition: int, records: Iterable[tuple[bytes, bytes | None]]
) -> list[asyncio.Future[Any]]:
    """Hand (key, value) records for one partition of ``table``'s changelog to the producer
    in as few of aiokafka's record batches as they fit (``create_batch``/``send_batch``:
    a fraction of the cost of a send per record); the futures of their delivery. Records of
    a partition keep the order in which they were handed over, with every other send."""
    producer = table.app.producer._ensure_producer()  # type: ignore[attr-defined]
    topic = table.changelog_topic.get_topic_name()
    futures: list[asyncio.Future[Any]] = []
    batch = producer.create_batch()
    for key, value in records:
        if batch.append(key=key, value=value, timestamp=None) is not None:
            continue
        if batch.record_count():
            futures.append(await producer.send_batch(batch, topic, partition=partition))
            batch = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is not None:
                continue
        # Larger than a whole batch: on its own.
        futures.append(await producer.send(topic, value, key=key, partition=partition))
    if batch.record_count():
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures
