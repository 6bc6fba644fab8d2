"""The drafting unit's daily email (relay.core.question_digest); pure."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from relay.core import question_digest as qd
from relay.core.clock import SHANGHAI
from relay.core.errors import ConfigError
from relay.core.settings import load_settings
from relay.core.trace import TraceBook
from tests.unit.factories import event_model
from tests.unit.test_questions import question

AT = time(17, 0)


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 6, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def test_the_email_is_due_once_a_day_from_its_hour() -> None:
    never = qd.DigestState()
    assert qd.due(never, shanghai(1, 16, 59), AT) is None
    day, cutoff = qd.due(never, shanghai(1, 17, 0), AT) or (None, None)
    assert day == date(2026, 6, 1) and cutoff == shanghai(1, 17, 0)
    sent = qd.DigestState(day=date(2026, 6, 1), through=shanghai(1, 17, 0))
    assert qd.due(sent, shanghai(1, 23, 59), AT) is None
    assert qd.due(sent, shanghai(2, 9, 0), AT) is None
    assert qd.due(sent, shanghai(2, 17, 30), AT) == (date(2026, 6, 2), shanghai(2, 17, 0))


def test_a_unit_is_known_by_its_address_whatever_its_case() -> None:
    assert qd.unit_partition("Unit@Gov.Example.org", 4) == qd.unit_partition(
        "unit@gov.example.org", 4
    )
    assert {qd.unit_partition(f"u{i}@x.org", 4) for i in range(50)} == {0, 1, 2, 3}


def test_documents_belong_to_the_contact_of_their_latest_version() -> None:
    book = TraceBook()
    book.add_document(event_model(id="DOC-A", contact={"unit": "甲办", "email": "a@gov.org"}))
    book.add_document(
        event_model(id="DOC-A", version=2, contact={"unit": "乙办", "email": "b@gov.org"})
    )
    book.add_document(event_model(id="DOC-B", contact={"unit": "乙办", "email": "B@gov.org"}))
    book.add_document(event_model(id="DOC-C", contact={"unit": "丙办", "phone": "021-1"}))
    book.add_document(event_model(id="DOC-D"))
    units = qd.drafting_units(book.documents.values())
    assert set(units) == {"b@gov.org"}
    assert units["b@gov.org"].documents == {"DOC-A", "DOC-B"}


def test_the_email_lists_the_questions_by_document() -> None:
    book = TraceBook()
    book.add_document(event_model(id="DOC-1", contact={"unit": "甲办", "email": "a@gov.org"}))
    unit = qd.drafting_units(book.documents.values())["a@gov.org"]
    asked = [question(1, doc="DOC-1"), question(2, doc="DOC-1", asker="丙公司")]
    msg = qd.build_email(
        unit,
        date(2026, 6, 1),
        AT,
        asked,
        documents=book.documents,
        partner_names={"park-a": "甲园区"},
        mail_from="relay@example.org",
        base_url="https://relay.example.org/",
        now=shanghai(1, 17, 0),
    )
    assert str(msg["Subject"]) == "[政策咨询] 2026年6月1日新收到的政策问题（共2条）"
    assert msg["To"] == "a@gov.org"
    assert msg["Message-ID"] == qd.message_id("A@gov.org", date(2026, 6, 1))
    body = msg.get_body(("plain",))
    assert body is not None
    text = str(body.get_content())
    assert "甲办：" in text and "1. 问题1" in text and "2. 问题2" in text
    assert "来自：甲园区（丙公司）" in text and asked[0].id in text
    assert "https://relay.example.org/" in text


def test_the_hour_setting_is_refused_naming_it() -> None:
    assert load_settings(question_digest_at="08:30").question_digest_at == "08:30"
    for bad in ("25:00", "8:30", "17:00:00", "noon"):
        with pytest.raises(ConfigError, match="RELAY_QUESTION_DIGEST_AT"):
            load_settings(question_digest_at=bad)
