"""The question model, the question book and the question link's token; pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from relay.core.models.questions import Answer, Question
from relay.core.questions import QuestionBook, new_question_id
from relay.core.tokens import link_token, question_token, question_token_ok

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def question(n: int, *, partner: str = "park-a", doc: str = "DOC-1", **extra: Any) -> Question:
    return Question(
        id=f"q_{n:024x}",
        document_id=doc,
        version=1,
        partner_id=partner,
        delivery_id=f"dlv_{n}",
        question=f"问题{n}",
        asked_at=T0 + timedelta(minutes=n),
        via="partner",
        **extra,
    )


def answered(q: Question, text: str, *, published: bool, minutes: int = 100) -> Question:
    answer = Answer(text=text, answered_at=T0 + timedelta(minutes=minutes), published=published)
    return q.model_copy(update={"answer": answer})


def test_question_ids_are_random_and_well_formed() -> None:
    ids = {new_question_id() for _ in range(100)}
    assert len(ids) == 100
    for qid in ids:
        Question.model_validate({**question(1).model_dump(), "id": qid})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("question", ""),
        ("question", "  \n "),
        ("question", "x" * 2001),
        ("question", "a\x00b"),
        ("question", "a\u202eb"),
        ("asker", "a\nb"),
        ("asker", "x" * 201),
        ("id", "q_short"),
        ("partner_id", "Not A Partner"),
        ("version", "1"),
        ("via", "email"),
    ],
)
def test_questions_refuse_bad_fields(field: str, value: Any) -> None:
    data = {**question(1).model_dump(), field: value}
    with pytest.raises(ValidationError) as e:
        Question.model_validate(data)
    assert e.value.errors()[0]["loc"][0] == field


def test_text_is_stripped_and_keeps_its_line_breaks() -> None:
    q = Question.model_validate({**question(1).model_dump(), "question": "  第一行\n第二行  "})
    assert q.question == "第一行\n第二行"
    with pytest.raises(ValidationError):
        Answer(text="", answered_at=T0, published=True)


def test_a_partner_sees_its_own_and_the_published_answers_of_others() -> None:
    book = QuestionBook()
    mine = question(1, partner="park-a")
    theirs_open = question(2, partner="park-b")
    theirs_published = answered(question(3, partner="park-b"), "公开答复", published=True)
    theirs_private = answered(question(4, partner="park-b"), "私下答复", published=False)
    for q in (mine, theirs_open, theirs_published, theirs_private):
        book.put(q)
    assert [q.id for q in book.visible_to_partner("DOC-1", "park-a")] == [
        mine.id,
        theirs_published.id,
    ]
    assert [q.id for q in book.visible_to_partner("DOC-1", "park-b")] == [
        theirs_open.id,
        theirs_published.id,
        theirs_private.id,
    ]
    assert [e.answer for e in book.faq("DOC-1")] == ["公开答复"]
    assert book.faq("DOC-2") == []


def test_the_latest_record_of_a_question_is_its_state() -> None:
    book = QuestionBook()
    q = question(1)
    book.put(q)
    book.put(answered(q, "先公开", published=True))
    assert [e.answer for e in book.faq("DOC-1")] == ["先公开"]
    book.put(answered(q, "改为不公开", published=False))
    assert book.faq("DOC-1") == []
    assert book.get(q.id) is not None and book.get(q.id).answer.text == "改为不公开"  # type: ignore[union-attr]
    assert len(book.of_document("DOC-1")) == 1 and len(book.of_partner("park-a")) == 1


def test_the_faq_in_a_notice_keeps_the_newest_answers_in_question_order() -> None:
    book = QuestionBook()
    for n in range(5):
        # Answered in reverse order of asking: question 0 last.
        book.put(answered(question(n), f"答{n}", published=True, minutes=200 - n))
    assert [e.answer for e in book.faq("DOC-1", limit=2)] == ["答0", "答1"]
    assert [e.answer for e in book.faq("DOC-1")] == [f"答{n}" for n in range(5)]
    assert book.faq("DOC-1", limit=0) == []


def test_unanswered_questions_are_counted_per_document() -> None:
    book = QuestionBook()
    book.put(question(1, doc="DOC-1"))
    book.put(answered(question(2, doc="DOC-1"), "答", published=False))
    book.put(question(3, doc="DOC-2"))
    assert [q.id for q in book.unanswered()] == [question(1).id, question(3).id]
    assert book.counts() == {"DOC-1": (2, 1), "DOC-2": (1, 1)}


def test_questions_asked_in_a_window() -> None:
    book = QuestionBook()
    for n in range(1, 5):
        book.put(question(n, doc="DOC-1" if n % 2 else "DOC-2"))
    got = book.asked_between(
        {"DOC-1", "DOC-2"}, T0 + timedelta(minutes=1), T0 + timedelta(minutes=3)
    )
    assert [q.question for q in got] == ["问题2", "问题3"]
    assert [q.question for q in book.asked_between({"DOC-1"}, None, T0 + timedelta(hours=1))] == [
        "问题1",
        "问题3",
    ]


def test_a_question_token_signs_the_delivery_and_the_expiry() -> None:
    t = question_token("secret", "dlv_1", 2_000_000_000)
    assert question_token_ok("secret", "dlv_1", 2_000_000_000, t)
    assert not question_token_ok("secret", "dlv_1", 2_000_000_001, t)
    assert not question_token_ok("secret", "dlv_2", 2_000_000_000, t)
    assert not question_token_ok("other", "dlv_1", 2_000_000_000, t)
    assert not question_token_ok(None, "dlv_1", 2_000_000_000, t)
    assert not question_token_ok("secret", "dlv_1", 2_000_000_000, "")
    # Not the acknowledgement token: one link cannot stand in for the other.
    assert t != link_token("secret", "dlv_1")


def test_the_book_counts_the_questions_each_delivery_brought() -> None:
    book = QuestionBook()
    book.put(question(1))
    book.put(answered(question(1), "答", published=True))  # a new state, not a new question
    book.put(question(2))
    assert book.by_delivery == {"dlv_1": 1, "dlv_2": 1}
