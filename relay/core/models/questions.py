"""Questions from the front line to the drafting unit, and their answers (item 6).

A question is asked about one delivery (so about one document version, one partner); the
operator answers it and chooses whether the answer is published. Published answers are the
document's FAQ (常见问题解答): later notices of that document carry them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt

from relay.core.models.document import ID_PATTERN
from relay.core.models.limits import (
    ANSWER_MAX,
    ID_MAX,
    QUESTION_MAX,
    VERSION_MAX,
    Name,
    text_block,
)
from relay.core.models.partner import PARTNER_ID

#: ``q_`` and 24 hex digits (96 random bits).
QUESTION_ID = r"^q_[0-9a-f]{24}$"

QuestionText = Annotated[str, Field(max_length=QUESTION_MAX), AfterValidator(text_block)]
AnswerText = Annotated[str, Field(max_length=ANSWER_MAX), AfterValidator(text_block)]
#: How a question reached the relay: a partner's token, the operator, or the notice's link.
Via = Literal["partner", "operator", "link"]


class Answer(BaseModel):
    """The operator's answer; ``published`` puts it in the document's FAQ."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: AnswerText
    answered_at: datetime
    published: StrictBool = False


class Question(BaseModel):
    """One question and, once given, its answer: the value of ``relay.questions``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=QUESTION_ID)
    document_id: str = Field(pattern=ID_PATTERN)
    version: StrictInt = Field(ge=1, le=VERSION_MAX)
    partner_id: str = Field(pattern=PARTNER_ID)
    delivery_id: str = Field(max_length=ID_MAX)
    question: QuestionText
    #: Who asked (an enterprise, a person), as the asker wrote it; optional.
    asker: Name | None = None
    asked_at: datetime
    via: Via
    answer: Answer | None = None

    @property
    def published(self) -> bool:
        return self.answer is not None and self.answer.published


class FaqEntry(BaseModel):
    """One published question and answer, as notices carry them (no partner, no asker)."""

    model_config = ConfigDict(frozen=True)

    question: str
    answer: str
    answered_at: datetime
