"""The audit topic (item 24, 全程留痕): every step of every document, in order per document."""

from __future__ import annotations

from collections import Counter

from relay.core import topics
from relay.core.models import AuditRecord, audit_value, fit
from relay.runtime.producing import Producer

#: Audit records of one document written as one value, at most (about 0.5 kB each).
AUDIT_BATCH = 250


class AuditLog:
    def __init__(self, out: Producer, counters: Counter[str]) -> None:
        self.out = out
        self.counters = counters

    async def record(self, record: AuditRecord) -> None:
        """Append a step to the audit topic, keyed by document so its trail stays in order."""
        await self.record_many([record])

    async def record_many(self, records: list[AuditRecord]) -> None:
        """Append several steps, waiting for the broker once for all of them.

        The records of one document travel together, up to ``AUDIT_BATCH`` in one value
        and within MAX_BUNDLE_BYTES (see :func:`relay.core.models.audit_records`), in order.
        """
        by_document: dict[str | None, list[AuditRecord]] = {}
        for r in records:
            by_document.setdefault(r.document_id, []).append(r)
            self.counters[f"audit.{r.kind}"] += 1
        await self.out.send_many(
            topics.AUDIT,
            [
                (doc_id, value)
                for doc_id, group in by_document.items()
                for i in range(0, len(group), AUDIT_BATCH)
                for _, value in fit(group[i : i + AUDIT_BATCH], audit_value)
            ],
        )
