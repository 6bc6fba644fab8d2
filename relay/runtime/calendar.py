"""What the calendar tick works through: partners waiting for a catch-up, per partition.

Every worker follows the whole partners topic, so every worker hears of each partner with
``catch_up: true`` (on start-up, when replaying the topic, too). A partner is kept pending
in every partition of the accepted-documents topic until the worker that owns that
partition has looked through the documents there for it: a partition that moves to another
worker in a rebalance is looked through by that worker, which heard the partner as well.
Catch-up plans are idempotent (relay.core.lifecycle), so hearing a partner again only costs
a look.
"""

from __future__ import annotations

from relay.core.models import Partner


class PendingCatchUps:
    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._pending: dict[int, set[str]] = {p: set() for p in range(partitions)}

    def heard(self, partner_id: str, partner: Partner | None) -> None:
        """A partners-topic record (a registry listener)."""
        if partner is None or not partner.catch_up or partner.paused:
            return
        for waiting in self._pending.values():
            waiting.add(partner_id)

    def waiting(self) -> set[int]:
        """The partitions with partners pending."""
        return {p for p, ids in self._pending.items() if ids}

    def take(self, partition: int) -> set[str]:
        """The partners pending in ``partition``, no longer pending."""
        taken = self._pending.get(partition, set())
        self._pending[partition] = set()
        return taken

    def put_back(self, partition: int, partner_ids: set[str]) -> None:
        self._pending.setdefault(partition, set()).update(partner_ids)
