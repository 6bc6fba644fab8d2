"""The delivery ledger: a Faust table whose changelog records each hold a batch of entries.

A plain Faust table writes one changelog record per key, and for the ledger that is one
per delivery attempt: the worker's single largest cost in a big fan-out (measured at a
quarter of its CPU). Here a delivery batch writes its entries with one record per
partition, keyed ``~batch~<uuid>``, whose value maps delivery id → entry; recovery and
standby replicas explode such a record back into one key per delivery. Lookups are
plain dictionary reads, as before.

An entry is in memory the moment it is put, so a repeat in the same process is caught at
once; the changelog record follows when the batch is flushed, before the batch is acked
(at once for an attempt that led to a retry or a dead letter: see relay.dispatch). A
crash in between loses only entries whose deliveries will be redone under the same ids.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import faust
from faust.stores.memory import Store as MemoryStore
from faust.types import EventT

#: Changelog keys that start with this hold many entries ({delivery id: entry}).
BATCH_KEY = "~batch~"


class BatchedStore(MemoryStore[str, Any]):
    """The in-memory store, reading batch records as one key per entry."""

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
            if isinstance(key, str) and key.startswith(BATCH_KEY):
                entries = to_value(event.value)
                if isinstance(entries, dict):
                    for k, v in entries.items():
                        self._key_partition[k] = partition
                        yield k, v
                continue
            if event.message.value is None:
                mark_as_delete(key)
            self._key_partition[key] = partition
            yield key, to_value(event.value)


class BatchedTable(faust.Table[str, Any]):
    """A table written by :meth:`put` and :meth:`flush`: one changelog record per partition.

    Single-key writes (``table[key] = value``) still work and still write one record.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[int, dict[str, Any]] = {}

    def _new_store_by_url(self, url: Any) -> BatchedStore:
        return BatchedStore(
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

    def lookup(self, key: str) -> Any:
        """The value of ``key``, or None (see :func:`table_get`)."""
        return table_get(self, key)

    def put(self, key: str, value: Any, partition: int) -> None:
        """Set ``key`` now; its changelog record goes out with the next :meth:`flush`.

        ``partition`` is the partition of the event being handled (tables are
        co-partitioned with their source topics).
        """
        store = self.data
        assert isinstance(store, BatchedStore)
        store.data[key] = value
        store._key_partition[key] = partition
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
                callback=self._on_changelog_sent,
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
    """``table.get(key)`` as a plain dictionary read, for tables on the memory store (the
    relay's, in every profile). Faust's ``get`` goes through its mapping machinery and
    raises and catches a KeyError for every missing key; this runs for every delivery."""
    store = table.data
    assert isinstance(store, MemoryStore)
    return store.data.get(key)


def batched_table(app: faust.App, name: str, partitions: int) -> BatchedTable:
    """Register a :class:`BatchedTable` with the app, as ``app.Table`` would."""
    table = BatchedTable(
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
