"""Writing partner profiles: through the partners topic, then wait until this worker sees it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from relay.core import topics
from relay.core.models import Partner
from relay.runtime.app import Runtime
from relay.web.errors import ApiError, not_found


class PartnerStore:
    """Read-modify-write of partners, serialised within this worker.

    Across workers the partners topic decides: two workers changing one partner at the same
    moment means the record written last wins (there is no compare-and-set on a topic).
    """

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._lock = asyncio.Lock()

    async def _save(self, partner: Partner) -> None:
        _, offset = await self.rt.out.send(
            topics.PARTNERS, partner.id, partner.model_dump_json().encode()
        )
        try:
            await self.rt.registry.wait_offset(offset)
        except TimeoutError as e:
            raise ApiError(
                503,
                "not_applied",
                f"partner {partner.id!r} was written but this worker has not read it back yet; "
                "retry the read in a moment",
            ) from e

    async def create(self, build: Callable[[], Partner]) -> Partner:
        """Store a new partner; 409 if the id is taken."""
        async with self._lock:
            partner = build()
            if self.rt.registry.book.get(partner.id) is not None:
                raise ApiError(409, "conflict", f"partner {partner.id!r} already exists")
            await self._save(partner)
            return partner

    async def change(self, partner_id: str, edit: Callable[[Partner], Partner]) -> Partner:
        """Apply ``edit`` to the latest version of a partner and store the result."""
        async with self._lock:
            current = self.rt.registry.book.get(partner_id)
            if current is None:
                raise not_found("partner")
            updated = edit(current)
            if updated != current:
                await self._save(updated)
            return updated
