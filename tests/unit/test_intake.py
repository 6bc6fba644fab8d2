"""Validating raw document events at the edge: every refusal names its reason and field."""

from __future__ import annotations

import json
from datetime import date

import pytest

from relay.core.errors import InvalidEvent
from relay.core.intake import event_hints, parse_event, validate_event
from tests.unit.factories import event

TODAY = date(2026, 11, 26)


def raw(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


def test_valid_event_is_parsed() -> None:
    ev = parse_event(raw(event()), today=TODAY)
    assert ev.document.id == "DOC-1"
    assert ev.type == "document.published"


@pytest.mark.parametrize(
    ("payload", "reason", "fragment"),
    [
        (b"", "not_json", "no value"),
        (b"\xff\xfe", "not_json", "not UTF-8"),
        (b"{not json", "not_json", "not JSON"),
        (b"[1, 2]", "invalid_event", "expected a JSON object"),
    ],
    ids=["empty", "binary", "broken-json", "array"],
)
def test_unreadable_records_are_refused_as_such(payload: bytes, reason: str, fragment: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(payload, today=TODAY)
    assert info.value.reason == reason
    assert fragment in info.value.message


def test_missing_field_is_named() -> None:
    data = event()
    del data["document"]["title"]
    with pytest.raises(InvalidEvent) as info:
        validate_event(data, today=TODAY)
    assert info.value.field == "document.title"
    assert "document.title" in info.value.message
    assert "missing" in info.value.message


def test_bad_region_code_names_field_index_and_value() -> None:
    data = event(scope={"regions": ["310118106", "31x"]})
    with pytest.raises(InvalidEvent) as info:
        validate_event(data, today=TODAY)
    assert info.value.field == "document.scope.regions[1]"
    assert "'31x'" in info.value.message


def test_unknown_event_type_is_refused() -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event(event(type="document.deleted"), today=TODAY)
    assert info.value.field == "type"
    assert "document.deleted" in info.value.message


def test_naive_timestamp_is_refused() -> None:
    data = event()
    data["occurred_at"] = "2023-06-07T09:00:00"
    with pytest.raises(InvalidEvent) as info:
        validate_event(data, today=TODAY)
    assert info.value.field == "occurred_at"


def test_expired_document_is_refused_with_its_date() -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event(event(expires_on="2024-12-31"), today=TODAY)
    assert info.value.reason == "expired"
    assert "2024-12-31" in info.value.message


def test_document_expiring_today_is_still_valid() -> None:
    ev = validate_event(event(expires_on="2026-11-26"), today=TODAY)
    assert ev.document.expires_on == TODAY


def test_repeal_of_an_expired_document_is_accepted() -> None:
    ev = validate_event(event(type="document.repealed", expires_on="2024-12-31"), today=TODAY)
    assert ev.type == "document.repealed"


def test_expiry_before_start_is_refused() -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event(event(effective_from="2025-01-01", expires_on="2024-12-31"), today=TODAY)
    assert "expires_on" in info.value.message


def test_hints_recover_ids_from_invalid_events() -> None:
    data = event(event_id="abc")
    data["document"]["version"] = "x"
    assert event_hints(raw(data)) == ("abc", "DOC-1")
    assert event_hints(b"garbage") == (None, None)
