"""A per-worker reader of a whole topic (all partitions, from the beginning), outside any group.

The registry and the trace view use it: every worker holds the full picture, and a writer
can wait until its own record has been applied (read-after-write).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from mode import Service

from relay.adapters.compat import refresh_metadata
from relay.core.logs import get_logger
from relay.core.settings import Settings

log = get_logger(__name__)


class TopicFollower(Service):
    """Feeds every record of ``topic`` to ``apply``, in order per partition, and keeps up."""

    def __init__(
        self,
        settings: Settings,
        topic: str,
        apply: Callable[[ConsumerRecord[bytes, bytes]], None],
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]  # mode's Service kwargs are loose
        self.settings = settings
        self.topic = topic
        self.apply = apply
        #: partition → next offset to apply.
        self.positions: dict[int, int] = {}
        self.caught_up = asyncio.Event()
        #: Called once, when the follower first reaches the end of the topic.
        self.on_caught_up: Callable[[], None] | None = None
        #: Called after each fetch, with how many records it applied (0: the topic is quiet).
        self.on_batch: Callable[[int], None] | None = None
        #: Log catching up at debug (a follower outside the worker, e.g. the dev stack's).
        self.quiet = False
        self._advanced = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None

    async def on_start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
        )
        await self._consumer.start()
        await refresh_metadata(self._consumer)
        parts = sorted(self._consumer.partitions_for_topic(self.topic) or {0})
        tps = [TopicPartition(self.topic, p) for p in parts]
        self.positions = {p: 0 for p in parts}
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        self.add_future(self._follow(tps))

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def _follow(self, tps: list[TopicPartition]) -> None:
        consumer = self._consumer
        assert consumer is not None
        while not self.should_stop:
            try:
                batch = await consumer.getmany(timeout_ms=500)
            except KafkaError as e:
                log.warning("follower_fetch_failed", topic=self.topic, error=str(e))
                await asyncio.sleep(1)
                continue
            for tp, msgs in batch.items():
                for msg in msgs:
                    try:
                        self.apply(msg)
                    except Exception:  # one bad record must not stop the view
                        log.exception(
                            "follower_apply_failed",
                            topic=self.topic,
                            partition=tp.partition,
                            offset=msg.offset,
                        )
                    self.positions[tp.partition] = msg.offset + 1
            # The embedded broker's ListOffsets is unreliable; fetch highwater marks are not.
            if not self.caught_up.is_set() and all(
                (hw := consumer.highwater(tp)) is not None and self.positions[tp.partition] >= hw
                for tp in tps
            ):
                self.caught_up.set()
                (log.debug if self.quiet else log.info)(
                    "follower_caught_up", topic=self.topic, positions=self.positions
                )
                if self.on_caught_up is not None:
                    self.on_caught_up()
            if self.on_batch is not None:
                self.on_batch(sum(len(msgs) for msgs in batch.values()))
            self._advanced.set()
            self._advanced = asyncio.Event()

    async def wait_ready(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self.caught_up.wait(), timeout)

    async def wait_applied(self, partition: int, offset: int, timeout: float = 10.0) -> None:
        """Wait until the record at (partition, offset) has been applied."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.positions.get(partition, 0) <= offset:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"{self.topic}[{partition}]@{offset} not applied within {timeout}s"
                )
            try:
                await asyncio.wait_for(asyncio.shield(self._advanced.wait()), remaining)
            except TimeoutError:
                continue
