"""Validating raw document events at the edge: every refusal names its reason and field."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from relay.core.errors import InvalidEvent
from relay.core.intake import advisories, event_hints, parse_event, validate_event
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


def test_a_repeal_without_its_date_is_dated_the_day_it_occurred_in_shanghai() -> None:
    data = event(type="document.repealed")
    data["occurred_at"] = "2024-05-31T20:00:00+00:00"  # 1 June in Shanghai
    ev = validate_event(data, today=TODAY)
    assert ev.document.repealed_on == date(2024, 6, 1)
    given = validate_event(event(type="document.repealed", repealed_on="2024-07-01"), today=TODAY)
    assert given.document.repealed_on == date(2024, 7, 1)
    assert validate_event(event(), today=TODAY).document.repealed_on is None


def test_the_optional_notice_fields_are_accepted_and_bounded() -> None:
    ev = validate_event(
        event(
            index_no="11310118MB2F0123XY/2023-00007",
            disclosure="主动公开",
            contact={
                "unit": "徐泾镇经济发展办公室",
                "phone": "021-59761234",
                "email": "jj@example.gov.cn",
            },
        ),
        today=TODAY,
    )
    assert ev.document.index_no == "11310118MB2F0123XY/2023-00007"
    assert ev.document.contact is not None and ev.document.contact.phone == "021-59761234"
    bads: list[tuple[dict[str, Any], str]] = [
        ({"index_no": "索" * 101}, "document.index_no"),
        ({"disclosure": "主动\n公开"}, "document.disclosure"),
        ({"contact": {"unit": "某单位", "phone": "1" * 51}}, "document.contact.phone"),
        ({"contact": {"phone": "021-59761234"}}, "document.contact.unit"),
        ({"contact": {"unit": "某单位", "fax": "x"}}, "document.contact.fax"),
    ]
    for bad, where in bads:
        with pytest.raises(InvalidEvent) as info:
            validate_event(event(**bad), today=TODAY)
        assert info.value.field == where, bad


@pytest.mark.parametrize(
    ("doc", "codes"),
    [
        ({"normative": True, "expires_on": None}, ["normative_without_expiry"]),
        ({"normative": True, "expires_on": "2028-06-06"}, []),
        ({"normative": True, "expires_on": "2028-06-07"}, []),
        ({"normative": True, "expires_on": "2028-06-08"}, ["normative_validity_over_limit"]),
        ({"normative": False, "expires_on": None}, []),
    ],
    ids=["normative-no-expiry", "within-5y", "exactly-5y", "over-5y", "not-normative"],
)
def test_a_normative_document_is_accepted_with_a_warning_about_its_validity(
    doc: dict[str, Any], codes: list[str]
) -> None:
    # factories: published and effective 2023-06-07.
    accepted = validate_event(event(**doc), today=date(2023, 6, 7))
    found = advisories(accepted)
    assert [a.code for a in found] == codes
    assert all(a.field == "document.expires_on" and "DOC-1" in a.message for a in found)


def test_a_repeal_of_a_normative_document_gets_no_validity_warning() -> None:
    accepted = validate_event(
        event(type="document.repealed", normative=True, expires_on=None), today=TODAY
    )
    assert advisories(accepted) == []
