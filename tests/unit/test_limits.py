"""Hostile input at the edge: sizes, depth, field lengths, strict types, control characters.

Every refusal is an InvalidEvent with a reason and a sentence naming the field; nothing
hostile makes the parser, the id hints or the rejection record raise anything else.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import faust
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from relay.core.errors import InvalidEvent
from relay.core.intake import encode_event, event_hints, parse_event, rejection, validate_event
from relay.core.models import DocumentEvent, Partner
from relay.core.models.limits import (
    MAX_DEPTH,
    MAX_EVENT_BYTES,
    NAME_MAX,
    NOT_IN_LINE,
    NOT_IN_TEXT,
    RAW_KEEP,
    SUMMARY_MAX,
    TAGS_MAX,
    VERSION_MAX,
    read_json,
)
from relay.core.settings import Settings
from relay.runtime.app import faust_settings
from tests.unit.factories import event, partner

TODAY = date(2026, 11, 26)
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def raw(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


def refused(data: dict[str, Any]) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as info:
        validate_event(data, today=TODAY)
    return info.value


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def padded(size: int) -> bytes:
    """A valid event padded with spaces to ``size`` bytes."""
    record = raw(event(event_id="ev-big"))
    return record + b" " * (size - len(record))


#: Four bytes in UTF-8 (CJK Extension B): the most a character can take.
WIDE = "𠀀"


def largest_event() -> dict[str, Any]:
    """An event with every text field and list at its limit, in four-byte characters."""
    return event(
        event_id="e" * 128,
        id="D" * 128,
        version=VERSION_MAX,
        doc_number=WIDE * 100,
        title=WIDE * 500,
        issuer=WIDE * 500,
        url="https://example.gov.cn/" + WIDE * (2048 - 23),
        interpretation_url="https://example.gov.cn/" + WIDE * (2048 - 23),
        summary=WIDE * SUMMARY_MAX,
        changes=WIDE * 5_000,
        tags=[WIDE * 64] * TAGS_MAX,
        scope={
            "audiences": ["association"] * 10,
            "industries": ["C3911"] * 200,
            "regions": ["310118106001"] * 200,
            "parks": [WIDE * 100] * 50,
            "scales": ["micro"] * 10,
        },
    )


# ------------------------------------------------------------------ size


@pytest.mark.parametrize("size", [MAX_EVENT_BYTES + 1, 1_100_000, 2_000_000, 10_000_000])
def test_an_event_over_the_size_limit_is_too_large(size: int) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(padded(size), today=TODAY)
    assert info.value.reason == "too_large"
    assert f"{size:,} bytes" in info.value.message and f"{MAX_EVENT_BYTES:,}" in info.value.message


def test_an_event_at_the_size_limit_is_accepted() -> None:
    assert parse_event(padded(MAX_EVENT_BYTES), today=TODAY).event_id == "ev-big"


def test_the_largest_event_the_field_limits_allow_is_written_within_the_size_limit() -> None:
    # So the check in encode_event is a guard: whatever validates, the relay can write.
    largest = validate_event(largest_event(), today=TODAY)
    assert 100_000 < len(encode_event(largest)) < MAX_EVENT_BYTES


def test_what_the_relay_writes_fits_the_producers_requests_with_room_to_spare() -> None:
    """The largest accepted event and the worst rejection fit Faust's producer requests."""
    conf = faust.App("limits-test", **faust_settings(Settings())).conf
    budget = conf.producer_max_request_size // 2
    assert MAX_EVENT_BYTES <= budget
    # The worst rejections: NULs and invalid UTF-8 grow most when written as JSON.
    for junk in (b"\x00" * 10_000_000, b"\xff" * 10_000_000, b"\xc3" * RAW_KEEP * 2):
        r = rejection(InvalidEvent("too_large", "x" * 10_000_000), junk, now=NOW)
        assert len(r.model_dump_json().encode()) <= budget
        assert r.raw.endswith("…") and r.raw_bytes == len(junk)
        assert len(r.message) <= 1_000


# ------------------------------------------------------------------ depth


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 300, 50_000, 120_000])
def test_deep_nesting_is_refused_as_too_deep(levels: int) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(deep(levels), today=TODAY)
    assert info.value.reason == "too_deep"
    assert f"deeper than {MAX_DEPTH} levels" in info.value.message


def test_nesting_within_the_limit_is_read() -> None:
    assert read_json(deep(MAX_DEPTH)) == json.loads(deep(MAX_DEPTH))


def test_deep_nesting_inside_a_field_is_too_deep_not_a_crash() -> None:
    record = raw(event(summary="S")).replace(b'"summary": "S"', b'"summary": ' + deep(50_000))
    assert len(record) > 100_000
    with pytest.raises(InvalidEvent) as info:
        parse_event(record, today=TODAY)
    assert info.value.reason == "too_deep"


def test_hints_and_rejection_of_a_deep_record_do_not_raise() -> None:
    record = b'{"event_id": "ev-deep", "document": {"id": "D-1", "x": ' + deep(50_000) + b"}}"
    assert event_hints(record) == (None, None)
    r = rejection(InvalidEvent("too_deep", "nested"), record, now=NOW, key=b"D-1")
    assert r.document_id == "D-1" and r.raw.startswith('{"event_id"')


# ------------------------------------------------------------------ hints


def test_hints_of_an_oversize_event_come_from_its_start() -> None:
    data = event(event_id="ev-big", summary="政" * 700_000)
    record = raw(data)
    assert len(record) > 2_000_000
    assert event_hints(record) == ("ev-big", "DOC-1")
    r = rejection(InvalidEvent("too_large", "big"), record, now=NOW)
    assert (r.event_id, r.document_id, r.raw_bytes) == ("ev-big", "DOC-1", len(record))
    assert len(r.raw.encode()) <= RAW_KEEP + 3 and r.raw.endswith("…")
    # The cut falls inside a three-byte character: it is left out, not garbled.
    assert "\ufffd" not in r.raw


def test_hints_that_are_long_or_hold_control_characters_are_not_kept() -> None:
    data = event(event_id="x" * 1_000)
    data["document"]["id"] = "D\x00-1"
    assert event_hints(raw(data)) == (None, None)
    assert event_hints(raw({"event_id": "ok-1", "document": {"id": "\u202eD"}})) == ("ok-1", None)


# ------------------------------------------------------------------ strict types


@pytest.mark.parametrize("version", ["1", True, 1.0, 10**40, 0, -1, VERSION_MAX + 1, None])
def test_version_must_be_an_integer_in_range(version: Any) -> None:
    err = refused(event(version=version))
    assert err.reason == "invalid_event" and err.field == "document.version"


def test_the_largest_version_is_accepted() -> None:
    assert validate_event(event(version=VERSION_MAX), today=TODAY).document.version == VERSION_MAX


@pytest.mark.parametrize("normative", ["true", 1, 0, "yes"])
def test_normative_must_be_a_boolean(normative: Any) -> None:
    assert refused(event(normative=normative)).field == "document.normative"


# ------------------------------------------------------------------ lengths and lists


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "题" * 501),
        ("issuer", "机" * 501),
        ("doc_number", "号" * 101),
        ("summary", "摘" * (SUMMARY_MAX + 1)),
        ("changes", "改" * 5_001),
        ("url", "https://example.gov.cn/" + "a" * 2_048),
        ("tags", ["政务公开"] * (TAGS_MAX + 1)),
        ("tags", ["标" * 65]),
    ],
)
def test_text_lengths_and_list_sizes_are_bounded(field: str, value: Any) -> None:
    err = refused(event(**{field: value}))
    assert err.field is not None and err.field.startswith(f"document.{field}")
    assert len(err.message) < 300  # the sentence names the field, not the whole value


def test_a_hundred_thousand_tags_are_refused() -> None:
    err = refused(event(tags=[f"t{i}" for i in range(100_000)]))
    assert err.field == "document.tags" and f"at most {TAGS_MAX} items" in err.message


@pytest.mark.parametrize(
    ("dimension", "value"),
    [
        ("industries", ["C39"] * 201),
        ("regions", ["310118106"] * 201),
        ("parks", ["园区"] * 51),
        ("parks", ["园" * 101]),
        ("audiences", ["park"] * 11),
        ("industries", ["C" * 1_000_000]),
    ],
)
def test_scope_lists_and_codes_are_bounded(dimension: str, value: list[str]) -> None:
    err = refused(event(scope={dimension: value}))
    assert err.field is not None and err.field.startswith(f"document.scope.{dimension}")
    assert len(err.message) < 300


# ------------------------------------------------------------------ characters


@pytest.mark.parametrize(
    ("field", "char"),
    [
        ("title", "\x00"),
        ("title", "\x07"),
        ("title", "\u202e"),
        ("title", "\n"),
        ("title", "\x85"),
        ("issuer", "\u2066"),
        ("doc_number", "\x1b"),
        ("url", "\x00"),
        ("summary", "\x00"),
        ("summary", "\u202d"),
        ("changes", "\x7f"),
    ],
)
def test_control_and_bidi_characters_are_refused_naming_the_field(field: str, char: str) -> None:
    value = "https://example.gov.cn/a" + char if field == "url" else f"关于{char}的通知"
    err = refused(event(**{field: value}))
    assert err.field == f"document.{field}"
    assert f"U+{ord(char):04X}" in err.message and f"document.{field}" in err.message


def test_tags_and_park_names_refuse_control_characters_too() -> None:
    assert refused(event(tags=["政务\x00公开"])).field == "document.tags[0]"
    assert refused(event(scope={"parks": ["园\u202e区"]})).field == "document.scope.parks[0]"


def test_summary_and_changes_keep_their_line_breaks_and_tabs() -> None:
    ev = validate_event(event(summary="第一段\n\t第二段\r\n", changes="一\n二"), today=TODAY)
    assert ev.document.summary == "第一段\n\t第二段\r\n" and ev.document.changes == "一\n二"


def test_an_unpaired_surrogate_is_not_json() -> None:
    record = raw(event()).replace("测试政策".encode(), b"\\ud800")
    with pytest.raises(InvalidEvent) as info:
        parse_event(record, today=TODAY)
    assert info.value.reason == "not_json"


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"9" * 5_000])
def test_numbers_json_does_not_have_are_not_json(number: bytes) -> None:
    record = raw(event()).replace(b'"version": 1', b'"version": ' + number)
    with pytest.raises(InvalidEvent) as info:
        parse_event(record, today=TODAY)
    assert info.value.reason == "not_json"


# ------------------------------------------------------------------ partners


@pytest.mark.parametrize("length", [NAME_MAX + 1, 100_000, 1_040_000])
def test_a_long_partner_name_is_refused(length: int) -> None:
    with pytest.raises(ValidationError) as info:
        partner(name="会" * length)
    assert info.value.errors()[0]["loc"] == ("name",)


@pytest.mark.parametrize(
    "overrides",
    [
        {"paused": 1},
        {"paused": "false"},
        {"name": "协会\x07"},
        {"name": "\u202e协会"},
        {"interests": {"tags_any": ["t"] * (TAGS_MAX + 1)}},
        {"coverage": {"regions": ["310118106"] * 201}},
        {"channels": [{"type": "email", "to": ["a\x00b@example.org"]}]},
        {"channels": [{"type": "email", "to": [f"a{i}@example.org" for i in range(21)]}]},
        {"channels": [{"type": "email", "to": ["a@example.org"], "disabled": "no"}]},
        {"token_hashes": ["x" * 129]},
    ],
)
def test_partner_profiles_are_bounded_and_strict(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        partner(**overrides)


def test_a_reason_the_relay_wrote_is_cleaned_and_cut_not_refused() -> None:
    p = partner(
        channels=[
            {
                "type": "email",
                "to": ["a@example.org"],
                "disabled": True,
                "disabled_reason": "the receiver answered 410 \x00\u202e" + "x" * 2_000,
            }
        ]
    )
    reason = p.channels[0].disabled_reason
    assert reason is not None and len(reason) == 500
    assert reason.startswith("the receiver answered 410   x")
    assert Partner.model_validate_json(p.model_dump_json()) == p


# ------------------------------------------------------------------ properties

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
FIELDS = {
    "": ["event_id", "type", "occurred_at", "document", "extra"],
    "document": [
        "id",
        "version",
        "doc_number",
        "title",
        "issuer",
        "published_on",
        "expires_on",
        "normative",
        "url",
        "summary",
        "tags",
        "scope",
        "changes",
    ],
    "scope": ["audiences", "industries", "regions", "parks", "scales"],
}
HOSTILE_TEXT = st.text(
    st.characters(codec="utf-8") | st.sampled_from(["\x00", "\x07", "\u202e", "\ud800", "\n"]),
    max_size=30,
)


def outcome(record: bytes) -> DocumentEvent | InvalidEvent:
    try:
        return parse_event(record, today=TODAY)
    except InvalidEvent as e:
        assert e.reason in {"not_json", "too_deep", "too_large", "invalid_event", "expired"}
        return e


@seed(20261126)
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=JSON)
def test_any_json_value_is_an_event_or_invalid_event(value: Any) -> None:
    outcome(json.dumps(value).encode())


@seed(20261126)
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(record=st.binary(max_size=400))
def test_any_bytes_are_an_event_or_invalid_event_and_their_rejection_fits(record: bytes) -> None:
    result = outcome(record)
    if isinstance(result, InvalidEvent):
        r = rejection(result, record, now=NOW, key=record[:40])
        assert len(r.model_dump_json()) < 2 * RAW_KEEP


@seed(20261126)
@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    where=st.sampled_from(["", "document", "scope"]),
    data=st.data(),
    value=JSON | HOSTILE_TEXT | st.integers(min_value=-(10**50), max_value=10**50),
)
def test_a_valid_event_with_one_field_made_hostile_is_an_event_or_invalid_event(
    where: str, data: st.DataObject, value: Any
) -> None:
    ev = event()
    target = {"": ev, "document": ev["document"], "scope": ev["document"]["scope"]}[where]
    target[data.draw(st.sampled_from(FIELDS[where]))] = value
    result = outcome(json.dumps(ev, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if isinstance(result, DocumentEvent):
        # Whatever got through keeps the rules, is written back within the limits and
        # reads the same.
        assert_within_limits(result)
        written = encode_event(result)
        assert DocumentEvent.model_validate_json(written) == result


def assert_within_limits(ev: DocumentEvent) -> None:
    doc = ev.document
    assert type(doc.version) is int and 1 <= doc.version <= VERSION_MAX
    assert type(doc.normative) is bool
    assert len(doc.tags) <= TAGS_MAX
    lines = [doc.title, doc.issuer, doc.doc_number, doc.url, *doc.tags, *doc.scope.parks]
    for text in lines:
        assert not NOT_IN_LINE.search(text), text
    for text in (doc.summary, doc.changes or ""):
        assert not NOT_IN_TEXT.search(text), text
