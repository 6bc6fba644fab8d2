"""The accepted documents, by their place in ``relay.documents.accepted``, in every worker.

A first delivery attempt refers to its document by that place instead of carrying it
(``relay/core/models``: NotificationRef); the delivery agents complete it from here.
"""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from relay.adapters.follower import TopicFollower
from relay.core import topics
from relay.core.logs import get_logger
from relay.core.models import Document, DocumentEvent, DocumentSource
from relay.core.settings import Settings

log = get_logger(__name__)


class AcceptedDocuments(TopicFollower):
    """Follows the accepted-documents topic; ``listeners`` hear of each event read."""

    def __init__(self, settings: Settings, **kwargs: object) -> None:
        super().__init__(settings, topics.ACCEPTED, self._apply, **kwargs)
        #: Each accepted record's document, by its place in the topic (thin intents point here).
        self.sources: dict[DocumentSource, Document] = {}
        self.listeners: list[Callable[[DocumentEvent], None]] = []

    def _apply(self, msg: ConsumerRecord[bytes, bytes]) -> None:
        if msg.value == topics.CALENDAR_TICK:
            return
        try:
            event = DocumentEvent.model_validate_json(msg.value or b"")
        except ValidationError as e:
            log.error("accepted_record_invalid", offset=msg.offset, error=str(e.errors()[0]["msg"]))
            return
        self.sources[DocumentSource(partition=msg.partition, offset=msg.offset)] = event.document
        for listener in self.listeners:
            listener(event)

    async def document(self, source: DocumentSource, timeout: float = 10.0) -> Document | None:
        """The document accepted at ``source``, waiting up to ``timeout`` s for it to be read.

        None if it is not a document (or not read in time): the caller retries later.
        """
        found = self.sources.get(source)
        if found is None:
            try:
                await self.wait_applied(source.partition, source.offset, timeout)
            except TimeoutError:
                return None
            found = self.sources.get(source)
        return found
