"""The delivery ledger: a Faust table whose changelog records each hold a batch of entries.

A plain Faust table writes one changelog record per key, and for the ledger that is one
per delivery attempt: the worker's single largest cost in a big fan-out (measured at a
quarter of its CPU). Here a delivery batch writes its entries with one record per
partition, keyed ``~batch~<uuid>``, whose value maps delivery id → entry; recovery and
standby replicas explode such a record back into one key per delivery. Lookups are
plain dictionary reads, as before.

An entry is in memory the moment it is put, so a repeat in the same process is caught at
once; the changelog record follows when the batch is flushed, before the batch is acked
(at once for an attempt that led to a retry or a dead letter: see relay.runtime.deliver). A
crash in between loses only entries whose deliveries will be redone under the same ids.

**Compaction.** A batch key is never written twice, so Kafka's log compaction (latest
record per key) alone would keep every batch record forever. After each flush, the
partitions it wrote keep at most :attr:`BatchedTable.keep_batches` batch records
*uncovered*: the oldest beyond that are covered by writing each of their entries under its
own key (its current value, a tombstone if deleted) and then, once the broker has those, a
tombstone for each batch key, all on the same partition. Compaction then keeps one record
per live key plus at most ``keep_batches`` batch records per partition. A crash between the
two steps leaves the batch record and the newer per-key records: read back in offset order
they give the same table, and the next owner covers the batch again. Only a partition's
owner writes its changelog, and covering runs inside the owner's flush.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, TypeVar

import faust
from faust.stores.memory import Store as MemoryStore
from faust.types import TP

from relay.adapters.compat import (
    BatchReadingRocksStore,
    BatchReadingStore,
    TableWithStore,
    changelog_sent_callback,
    send_in_batches,
)
from relay.core.logs import get_logger

log = get_logger(__name__)

#: Changelog keys that start with this hold many entries ({delivery id: entry}).
BATCH_KEY = "~batch~"


class BatchedStore(BatchReadingStore):
    """The in-memory store, reading batch records as one key per entry."""

    batch_prefix = BATCH_KEY


class BatchedRocksStore(BatchReadingRocksStore):
    """The RocksDB store (``RELAY_TABLE_STORE=rocksdb://``), reading batch records as one
    key per entry."""

    batch_prefix = BATCH_KEY


class LookupTable(TableWithStore):
    """A table read with :meth:`lookup`: a plain dictionary read on the in-memory store
    (the default), a read of the partition's database on RocksDB."""

    rocks_store_class = BatchedRocksStore

    def lookup(self, key: str) -> Any:
        """The value of ``key``, or None (see :func:`table_get`)."""
        return table_get(self, key)


class BatchedTable(LookupTable):
    """A table written by :meth:`put` and :meth:`flush`: one changelog record per partition.

    Single-key writes (``table[key] = value``) still work and still write one record.
    """

    store_class = BatchedStore
    rocks_store_class = BatchedRocksStore

    #: Batch records a partition's changelog keeps uncovered after a flush (see above).
    keep_batches = 8

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[int, dict[str, Any]] = {}
        # Records of one partition reach the broker in the order they are handed to the
        # producer; handing them over under this lock keeps that the order of the writes
        # (a cover's current value never lands after a newer batch).
        self._writing = asyncio.Lock()
        self._covering: set[int] = set()

    @property
    def _batch_store(self) -> BatchedStore | BatchedRocksStore:
        store = self.data
        assert isinstance(store, BatchedStore | BatchedRocksStore)
        return store

    def put(self, key: str, value: Any, partition: int) -> None:
        """Set ``key`` now; its changelog record goes out with the next :meth:`flush`.

        ``partition`` is the partition of the event being handled (tables are
        co-partitioned with their source topics).
        """
        self._batch_store.put_in_partition(key, value, partition)
        self._pending.setdefault(partition, {})[key] = value

    async def flush(self) -> None:
        """Write every pending entry, one record per partition, and wait for the broker;
        then cover the oldest batch records of those partitions beyond :attr:`keep_batches`."""
        store = self._batch_store
        async with self._writing:
            pending, self._pending = self._pending, {}
            futures = []
            for partition, entries in pending.items():
                batch_key = f"{BATCH_KEY}{uuid.uuid4().hex}"
                # Indexed first: a RocksDB worker killed after the write still covers it.
                store.note_batch(partition, batch_key, entries)
                futures.append(await self._send(batch_key, entries, partition))
        try:
            await asyncio.gather(*futures)
        except BaseException:
            # Not written: keep them for the next flush (merged under newer writes).
            for partition, entries in pending.items():
                self._pending[partition] = {**entries, **self._pending.get(partition, {})}
            raise
        for partition in pending:
            try:
                await self.cover(partition)
            except Exception as e:  # the batch itself is written; the next flush tries again
                log.warning("changelog_cover_failed", table=self.name, error=repr(e))

    async def cover(self, partition: int, keep: int | None = None) -> int:
        """Cover the partition's oldest batch records beyond ``keep`` (default
        :attr:`keep_batches`): their entries under their own keys, then the tombstones.
        Returns how many were covered."""
        keep = self.keep_batches if keep is None else keep
        store = self._batch_store
        batches = store.batches_of(partition)
        old = batches[: max(0, len(batches) - keep)]
        if not old or partition in self._covering or not self._active_for(partition):
            return 0
        self._covering.add(partition)
        try:
            keys = dict.fromkeys(k for _, entry_keys in old for k in entry_keys)
            async with self._writing:
                current = [
                    (self._key_bytes(k), self._value_bytes(store.current(k, partition)))
                    for k in keys
                ]
                futures = await send_in_batches(self, partition, current)
            await asyncio.gather(*futures)
            # Only now: every entry of these batches is on the broker under its own key.
            async with self._writing:
                futures = await send_in_batches(
                    self, partition, ((self._key_bytes(bk), None) for bk, _ in old)
                )
            await asyncio.gather(*futures)
            for batch_key, _ in old:
                store.drop_batch(partition, batch_key)
        finally:
            self._covering.discard(partition)
        return len(old)

    def _key_bytes(self, key: str) -> bytes:
        """``key`` as the changelog holds it (as Faust's own sends serialize it)."""
        raw = self.app.serializers.dumps_key(self.key_type, key, serializer=self.key_serializer)
        assert isinstance(raw, bytes)
        return raw

    def _value_bytes(self, value: Any) -> bytes | None:
        if value is None:
            return None  # a tombstone
        raw = self.app.serializers.dumps_value(
            self.value_type, value, serializer=self.value_serializer
        )
        assert isinstance(raw, bytes)
        return raw

    def _active_for(self, partition: int) -> bool:
        """Whether this worker owns ``partition`` (only the owner writes its changelog: a
        former owner's current values may be older than the new owner's)."""
        actives = self.app.assignor.assigned_actives()
        return TP(self.changelog_topic_name, partition) in actives

    async def _send(self, key: str, value: Any, partition: int) -> Any:
        """Hand one changelog record to the producer (None: a tombstone); its future."""
        return await self.changelog_topic.send(
            key=key,
            value=value,
            partition=partition,
            key_serializer=self.key_serializer,
            value_serializer="raw" if value is None else self.value_serializer,
            callback=changelog_sent_callback(self),
        )


def table_get(table: Any, key: str) -> Any:
    """``table.get(key)``: on the memory store (the default) a plain dictionary read.
    Faust's ``get`` goes through its mapping machinery and raises and catches a KeyError
    for every missing key; this runs for every delivery."""
    store = table.data
    if isinstance(store, MemoryStore):
        return store.data.get(key)
    assert isinstance(store, BatchReadingRocksStore)
    return store.lookup(key)


def table_items(table: Any) -> list[tuple[str, Any]]:
    """A snapshot of every key and value the worker holds of a table: on the memory store
    the partitions it is active or standby for, on RocksDB those it is active for."""
    store = table.data
    if isinstance(store, MemoryStore):
        return list(store.data.items())
    return [(k, v) for k, v in store.items() if v is not None]


_T = TypeVar("_T", bound=LookupTable)


def lookup_table(app: faust.App, name: str, partitions: int) -> LookupTable:
    """Register a :class:`LookupTable` with the app, as ``app.Table`` would."""
    return _register(app, LookupTable, name, partitions)


def batched_table(app: faust.App, name: str, partitions: int) -> BatchedTable:
    """Register a :class:`BatchedTable` with the app, as ``app.Table`` would."""
    return _register(app, BatchedTable, name, partitions)


def _register(app: faust.App, kind: type[_T], name: str, partitions: int) -> _T:
    table = kind(
        app,
        name=name,
        default=None,
        beacon=app.tables.beacon,
        partitions=partitions,
        key_type=str,
        value_type=None,
    )
    app.tables.add(table)
    return table
