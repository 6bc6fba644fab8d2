"""Refused events and dead letters: recorded with their reasons, so nothing is dropped."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from faust.types import EventT

from relay.core import topics
from relay.core.errors import InvalidEvent
from relay.core.intake import rejection
from relay.core.logs import get_logger
from relay.core.models import AuditRecord, DeliveryIntent
from relay.core.models.limits import RAW_KEEP
from relay.runtime.audit import AuditLog
from relay.runtime.producing import Producer

log = get_logger(__name__)


class Parking:
    """``relay.rejected`` for events, ``relay.dead-letter`` for deliveries."""

    def __init__(self, out: Producer, audit: AuditLog, counters: Counter[str]) -> None:
        self.out = out
        self.audit = audit
        self.counters = counters

    async def reject(self, err: InvalidEvent, raw: bytes | None, event: EventT[Any] | None) -> None:
        """Record a refused event in ``relay.rejected`` with its reason; nothing is dropped.

        Whatever the record holds, the rejection is bounded (see
        :func:`relay.core.intake.rejection`).
        """
        msg = event.message if event is not None else None
        key = event.key if event is not None and isinstance(event.key, bytes) else None
        r = rejection(
            err,
            raw,
            now=datetime.now(UTC),
            key=key,
            source=(msg.topic, msg.partition, msg.offset) if msg else None,
        )
        self.counters[f"rejected.{r.reason}"] += 1
        log.warning(
            "event_rejected",
            reason=r.reason,
            message=r.message,
            event_id=r.event_id,
            document_id=r.document_id,
            raw_bytes=r.raw_bytes,
        )
        await self.out.send(topics.REJECTED, r.document_id, r.model_dump_json().encode())
        await self.audit.record(
            AuditRecord(
                kind="event.rejected",
                at=r.rejected_at,
                event_id=r.event_id,
                document_id=r.document_id,
                reason=r.reason,
                detail=r.message,
            )
        )

    async def dead_letter(self, intent: DeliveryIntent, reason: str, detail: str) -> None:
        """Park one intent in the dead letters with the reason (replayable by its id)."""
        self.counters[f"dead_letter.{reason}"] += 1
        log.error("dead_lettered", delivery_id=intent.delivery_id, reason=reason, detail=detail)
        dead = intent.model_copy(
            update={"dead_reason": reason, "dead_at": datetime.now(UTC), "last_error": detail}
        )
        await self.out.send(topics.DEAD_LETTER, intent.partner_id, dead.model_dump_json().encode())

    async def dead_letter_raw(self, event: EventT[Any], reason: str) -> None:
        """Park a record we could not even read, with the reason, in the dead-letter topic."""
        msg = event.message
        self.counters["dead_letter.malformed"] += 1
        log.error(
            "dead_lettered",
            reason=reason,
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
        )
        body = {
            "dead_reason": "malformed",
            "detail": reason,
            "source_topic": msg.topic,
            "source_partition": msg.partition,
            "source_offset": msg.offset,
            "raw": (event.value or b"").decode("utf-8", "replace")[:RAW_KEEP],
            "dead_at": datetime.now(UTC).isoformat(),
        }
        key = event.key.decode("utf-8", "replace") if isinstance(event.key, bytes) else None
        await self.out.send(topics.DEAD_LETTER, key, json.dumps(body, ensure_ascii=False).encode())
