"""The partner registry: every worker reads the whole partners topic into memory and keeps up.

A plain consumer outside the consumer group (no GlobalTable: the research found one lost
updates during a rebalance on the embedded broker), applying each change incrementally.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from relay.adapters.follower import TopicFollower
from relay.core import topics
from relay.core.fingerprint import SetFingerprint
from relay.core.logs import get_logger
from relay.core.matching.engine import MatchIndex
from relay.core.matching.reference import match_partner
from relay.core.models import Document, MatchResult, Partner
from relay.core.settings import Settings

log = get_logger(__name__)

#: This many partner records applied since the registry was last frozen make a bulk load.
BULK_LOAD = 1000


class PartnerBook:
    """The in-memory set of partners and the indexed matcher over them; pure, no I/O.

    Each change updates the index incrementally (no rebuild per change), and the
    fingerprint of the records applied, which workers compare to see that they agree.
    """

    def __init__(self) -> None:
        self.partners: dict[str, Partner] = {}
        self.index = MatchIndex()
        self.fingerprint = SetFingerprint()

    def apply(self, partner_id: str, value: bytes | None) -> Partner | None:
        """Apply one partners-topic record (``None`` = removed); raises ValidationError."""
        if value is None:
            self.partners.pop(partner_id, None)
            self.index.remove(partner_id)
            self.fingerprint.discard(partner_id)
            return None
        partner = Partner.model_validate_json(value)
        self.partners[partner.id] = partner
        self.index.upsert(partner)
        self.fingerprint.put(partner.id, value)
        return partner

    def get(self, partner_id: str) -> Partner | None:
        return self.partners.get(partner_id)

    def match(self, document: Document) -> list[tuple[Partner, MatchResult]]:
        """Every partner the document reaches, with why, by partner id."""
        return self.index.match(document)

    @staticmethod
    def judge(document: Document, partner: Partner) -> MatchResult:
        return match_partner(document, partner)


class Registry(TopicFollower):
    """Keeps a :class:`PartnerBook` in step with the partners topic (one partition)."""

    def __init__(self, settings: Settings, **kwargs: object) -> None:
        self.book = PartnerBook()
        self.listeners: list[Callable[[str, Partner | None], None]] = []
        super().__init__(settings, topics.PARTNERS, self._apply, **kwargs)
        # Move the loaded profiles out of the cyclic collector's sight: with 100,000 of
        # them a full collection would otherwise stall matching for about a second. Again
        # after each bulk load while running (an import of many partners), not after each
        # change: freezing keeps whatever garbage is waiting for good.
        self.unfrozen = 0
        self.on_caught_up = self.freeze
        self.on_batch = self._after_batch

    def freeze(self) -> None:
        gc.freeze()
        self.unfrozen = 0

    def _after_batch(self, records: int) -> None:
        self.unfrozen += records
        if not self.caught_up.is_set():
            return
        # A bulk load is frozen once the topic goes quiet (a fetch brings nothing), so all
        # of it is; a long one along the way too.
        if self.unfrozen >= 10 * BULK_LOAD or (records == 0 and self.unfrozen >= BULK_LOAD):
            self.freeze()

    def _apply(self, msg: ConsumerRecord[bytes, bytes]) -> None:
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
            return
        for listener in self.listeners:
            listener(key, partner)

    async def wait_offset(self, offset: int, timeout: float = 10.0) -> None:
        """Wait until the partners-topic record at ``offset`` is applied (read-after-write)."""
        await self.wait_applied(0, offset, timeout)
