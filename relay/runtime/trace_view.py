"""The trace view: every worker folds the audit topic into a :class:`TraceBook`.

So the API's questions are answered on any worker, whichever partitions it owns. The
titles the pages show come from the accepted documents (``relay/runtime/documents.py``).
"""

from __future__ import annotations

import time

from aiokafka import ConsumerRecord
from mode import Service
from pydantic import ValidationError

from relay.adapters.follower import TopicFollower
from relay.core import topics
from relay.core.logs import get_logger
from relay.core.models import DocumentEvent, audit_records
from relay.core.settings import Settings
from relay.core.trace import TraceBook

log = get_logger(__name__)

#: Bytes of audit values kept unparsed at most; the view folds them once the topic has been
#: quiet for QUIET seconds, when asked, or when they reach this size.
FOLD_AT_MOST = 32 * 1024 * 1024
QUIET = 0.5


class TraceView(TopicFollower):
    """Keeps a :class:`TraceBook` in step with the audit topic."""

    def __init__(self, settings: Settings, **kwargs: object) -> None:
        self._book = TraceBook()
        #: Audit values read but not folded yet, and when the last one came.
        self._pending: list[tuple[int, bytes]] = []
        self._pending_bytes = 0
        self._last_read = 0.0
        super().__init__(settings, topics.AUDIT, self._apply, **kwargs)

    @property
    def book(self) -> TraceBook:
        """The fold of every audit record read so far."""
        self._fold()
        return self._book

    def _apply(self, msg: ConsumerRecord[bytes, bytes]) -> None:
        # Parsing is most of the cost of the view, and a fan-out writes an audit record per
        # delivery: fold when asked, or once the topic is quiet, not while the worker sends.
        value = msg.value or b""
        self._pending.append((msg.offset, value))
        self._pending_bytes += len(value)
        self._last_read = time.monotonic()
        if self._pending_bytes >= FOLD_AT_MOST:
            self._fold()

    def _fold(self) -> None:
        pending, self._pending = self._pending, []
        self._pending_bytes = 0
        for offset, value in pending:
            try:
                records = audit_records(value)
            except ValidationError as e:
                log.error("audit_record_invalid", offset=offset, error=_first(e))
                continue
            for r in records:
                self._book.add(r)

    @Service.timer(QUIET)
    async def _fold_when_quiet(self) -> None:
        if self._pending and time.monotonic() - self._last_read >= QUIET:
            self._fold()

    def add_document(self, event: DocumentEvent) -> None:
        """Remember an accepted document version's title and number (for the pages)."""
        self._book.add_document(event)


def _first(e: ValidationError) -> str:
    return str(e.errors()[0]["msg"])
