"""The questions of every document folded into one book; pure.

Every worker keeps a :class:`QuestionBook` in step with the compacted ``relay.questions``
topic (``relay/runtime/questions.py``), whose record per question id is that question's
whole state (text, answer, published flag): the topic is the table's changelog.
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from relay.core.models.questions import FaqEntry, Question

#: Published answers a notice carries at most (the newest; the FAQ page has them all).
FAQ_IN_NOTICE = 20
#: Questions one notice (one delivery) may bring at most: its link is in a forwarded text,
#: so a stranger holding it must not be able to flood the drafting unit.
QUESTIONS_PER_DELIVERY = 100


def new_question_id() -> str:
    return f"q_{secrets.token_hex(12)}"


@dataclass
class QuestionBook:
    questions: dict[str, Question] = field(default_factory=dict)
    #: document id → its question ids, in the order they were asked.
    by_document: dict[str, dict[str, None]] = field(default_factory=dict)
    #: partner id → its question ids.
    by_partner: dict[str, dict[str, None]] = field(default_factory=dict)
    #: delivery id → how many questions it brought.
    by_delivery: Counter[str] = field(default_factory=Counter)

    def put(self, q: Question) -> None:
        """A record of the topic: the question's latest state."""
        if q.id not in self.questions:
            self.by_delivery[q.delivery_id] += 1
        self.questions[q.id] = q
        self.by_document.setdefault(q.document_id, {})[q.id] = None
        self.by_partner.setdefault(q.partner_id, {})[q.id] = None

    def get(self, question_id: str) -> Question | None:
        return self.questions.get(question_id)

    def of_document(self, document_id: str) -> list[Question]:
        """The document's questions, oldest first."""
        found = [self.questions[i] for i in self.by_document.get(document_id, {})]
        return sorted(found, key=_asked)

    def of_partner(self, partner_id: str) -> list[Question]:
        """The partner's questions, newest first."""
        found = [self.questions[i] for i in self.by_partner.get(partner_id, {})]
        return sorted(found, key=_asked, reverse=True)

    def visible_to_partner(self, document_id: str, partner_id: str) -> list[Question]:
        """What a partner may read of a document: its own questions (answered or not, the
        answer published or not) and the published answers to anyone else's."""
        return [
            q for q in self.of_document(document_id) if q.partner_id == partner_id or q.published
        ]

    def faq(self, document_id: str, limit: int | None = None) -> list[FaqEntry]:
        """The document's FAQ: its published answers, oldest question first; with
        ``limit``, the newest ``limit`` of them (still oldest first)."""
        published = [q for q in self.of_document(document_id) if q.published]
        if limit is not None:
            published = sorted(published, key=_answered)[-limit:] if limit > 0 else []
            published.sort(key=_asked)
        return [
            FaqEntry(question=q.question, answer=q.answer.text, answered_at=q.answer.answered_at)
            for q in published
            if q.answer is not None
        ]

    def unanswered(self) -> list[Question]:
        """Questions no answer was given to yet, oldest first (the operator's 待处理问题)."""
        return sorted((q for q in self.questions.values() if q.answer is None), key=_asked)

    def counts(self) -> dict[str, tuple[int, int]]:
        """document id → (questions, unanswered)."""
        total: Counter[str] = Counter()
        open_: Counter[str] = Counter()
        for q in self.questions.values():
            total[q.document_id] += 1
            open_[q.document_id] += q.answer is None
        return {d: (total[d], open_[d]) for d in total}

    def asked_between(
        self, document_ids: set[str], after: datetime | None, until: datetime
    ) -> list[Question]:
        """Questions on ``document_ids`` asked in (after, until], oldest first."""
        found = [self.questions[i] for d in document_ids for i in self.by_document.get(d, {})]
        return sorted(
            (q for q in found if (after is None or q.asked_at > after) and q.asked_at <= until),
            key=_asked,
        )


def _asked(q: Question) -> tuple[datetime, str]:
    return q.asked_at, q.id


def _answered(q: Question) -> tuple[datetime, str]:
    assert q.answer is not None
    return q.answer.answered_at, q.id
