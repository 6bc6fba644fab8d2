"""The question view: every worker folds ``relay.questions`` into a :class:`QuestionBook`.

So any worker answers the API about questions, and the delivery agents, whichever
partner's partition they hold, put a document's published answers (its FAQ) in its notices.
"""

from __future__ import annotations

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from relay.adapters.follower import TopicFollower
from relay.core import topics
from relay.core.logs import get_logger
from relay.core.models.questions import Question
from relay.core.questions import QuestionBook
from relay.core.settings import Settings

log = get_logger(__name__)


class QuestionView(TopicFollower):
    """Keeps a :class:`QuestionBook` in step with the questions topic."""

    def __init__(self, settings: Settings, **kwargs: object) -> None:
        self.book = QuestionBook()
        super().__init__(settings, topics.QUESTIONS, self._apply, **kwargs)

    def _apply(self, msg: ConsumerRecord[bytes, bytes]) -> None:
        if not msg.value:
            return  # a tombstone: nothing deletes questions today
        try:
            self.book.put(Question.model_validate_json(msg.value))
        except ValidationError as e:
            log.error("question_record_invalid", offset=msg.offset, error=str(e.errors()[0]["msg"]))
