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
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, TypeVar

import faust
from faust.stores.memory import Store as MemoryStore

from relay.adapters.compat import (
    BatchReadingRocksStore,
    BatchReadingStore,
    TableWithStore,
    changelog_sent_callback,
)

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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[int, dict[str, Any]] = {}

    def put(self, key: str, value: Any, partition: int) -> None:
        """Set ``key`` now; its changelog record goes out with the next :meth:`flush`.

        ``partition`` is the partition of the event being handled (tables are
        co-partitioned with their source topics).
        """
        store = self.data
        assert isinstance(store, BatchedStore | BatchedRocksStore)
        store.put_in_partition(key, value, partition)
        self._pending.setdefault(partition, {})[key] = value

    async def flush(self) -> None:
        """Write every pending entry, one record per partition, and wait for the broker."""
        pending, self._pending = self._pending, {}
        futures = [
            await self.changelog_topic.send(
                key=f"{BATCH_KEY}{uuid.uuid4().hex}",
                value=entries,
                partition=partition,
                key_serializer=self.key_serializer,
                value_serializer=self.value_serializer,
                callback=changelog_sent_callback(self),
            )
            for partition, entries in pending.items()
        ]
        try:
            await asyncio.gather(*futures)
        except BaseException:
            # Not written: keep them for the next flush (merged under newer writes).
            for partition, entries in pending.items():
                self._pending[partition] = {**entries, **self._pending.get(partition, {})}
            raise


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
