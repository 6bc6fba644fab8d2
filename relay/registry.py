"""The partner registry: every worker reads the whole partners topic into memory and keeps up.

A plain consumer outside the consumer group (no GlobalTable: the research found one lost
updates during a rebalance on the embedded broker), applying each change incrementally.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from mode import Service
from pydantic import ValidationError

from relay import topics
from relay.logs import get_logger
from relay.matching.reference import match_all, match_partner
from relay.models import Document, MatchResult, Partner
from relay.settings import Settings

log = get_logger(__name__)


class PartnerBook:
    """The in-memory set of partners and the matcher over them; pure, no I/O."""

    def __init__(self) -> None:
        self.partners: dict[str, Partner] = {}

    def apply(self, partner_id: str, value: bytes | None) -> Partner | None:
        """Apply one partners-topic record (``None`` = removed); raises ValidationError."""
        if value is None:
            self.partners.pop(partner_id, None)
            return None
        partner = Partner.model_validate_json(value)
        self.partners[partner.id] = partner
        return partner

    def get(self, partner_id: str) -> Partner | None:
        return self.partners.get(partner_id)

    def match(self, document: Document) -> list[tuple[Partner, MatchResult]]:
        return match_all(document, (self.partners[k] for k in sorted(self.partners)))

    @staticmethod
    def judge(document: Document, partner: Partner) -> MatchResult:
        return match_partner(document, partner)


class Registry(Service):
    """Keeps a :class:`PartnerBook` in step with the partners topic."""

    def __init__(self, settings: Settings, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]  # mode's Service kwargs are loose
        self.settings = settings
        self.book = PartnerBook()
        self.position = 0
        self.caught_up = asyncio.Event()
        self._advanced = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self.listeners: list[Callable[[str, Partner | None], None]] = []

    async def on_start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await self._consumer.start()
        tp = TopicPartition(topics.PARTNERS, 0)
        self._consumer.assign([tp])
        await self._consumer.seek_to_beginning(tp)
        self.add_future(self._follow(tp))

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def _follow(self, tp: TopicPartition) -> None:
        assert self._consumer is not None
        while not self.should_stop:
            try:
                batch = await self._consumer.getmany(tp, timeout_ms=500)
            except KafkaError as e:
                log.warning("registry_fetch_failed", error=str(e))
                await asyncio.sleep(1)
                continue
            for msg in batch.get(tp, []):
                key = (msg.key or b"").decode("utf-8", "replace")
                try:
                    partner = self.book.apply(key, msg.value)
                except ValidationError as e:
                    log.error(
                        "registry_record_invalid",
                        offset=msg.offset,
                        partner_id=key,
                        error=str(e.errors()[0]["msg"]),
                    )
                    continue
                for listener in self.listeners:
                    listener(key, partner)
                self.position = msg.offset + 1
            hw = self._consumer.highwater(tp)
            if hw is not None and self.position >= hw and not self.caught_up.is_set():
                self.caught_up.set()
                log.info(
                    "registry_caught_up", partners=len(self.book.partners), offset=self.position
                )
            self._advanced.set()
            self._advanced = asyncio.Event()

    async def wait_ready(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self.caught_up.wait(), timeout)

    async def wait_applied(self, offset: int, timeout: float = 10.0) -> None:
        """Wait until the record at ``offset`` has been applied (read-after-write)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.position <= offset:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"partner change at offset {offset} not applied in {timeout}s")
            try:
                await asyncio.wait_for(asyncio.shield(self._advanced.wait()), remaining)
            except TimeoutError:
                continue
