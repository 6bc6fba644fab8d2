"""Parsing and validating raw document events at the edge, with precise reasons."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

from pydantic import ValidationError

from relay.errors import InvalidEvent, UnknownCode
from relay.models import DocumentEvent, EventType

#: Extra checks run on a parsed event (the code catalogues plug in here).
Check = Callable[[DocumentEvent], None]


def check_codes(event: DocumentEvent) -> None:
    """Every industry and region code of the scope is in its catalogue."""
    from relay.matching.catalogue import check_scope

    check_scope(event.document.scope, at="document.scope")


def default_checks() -> tuple[Check, ...]:
    """The checks every accepted event passes."""
    return (check_codes,)


def field_path(loc: tuple[int | str, ...]) -> str:
    """``('document', 'scope', 'regions', 0)`` → ``document.scope.regions[0]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def describe_validation_error(e: ValidationError) -> tuple[str, str]:
    """The first problem of a pydantic error as (field path, sentence naming the bad value)."""
    err = e.errors()[0]
    path = field_path(tuple(err["loc"])) or "(event)"
    value = err.get("input")
    msg = err["msg"]
    if err["type"] == "missing":
        return path, f"{path}: required field is missing"
    if err["type"] == "extra_forbidden":
        return path, f"{path}: unknown field"
    shown = "" if isinstance(value, dict | list) else f" (got {_short(value)})"
    return path, f"{path}: {msg}{shown}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_event(raw: bytes | None, *, today: date, checks: tuple[Check, ...] = ()) -> DocumentEvent:
    """Turn one raw record value into a valid event, or raise :class:`InvalidEvent`."""
    if not raw:
        raise InvalidEvent("not_json", "the record has no value")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidEvent("not_json", f"the record is not UTF-8 text ({e.reason})") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidEvent(
            "not_json", f"the record is not JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from e
    return validate_event(data, today=today, checks=checks)


def validate_event(data: Any, *, today: date, checks: tuple[Check, ...] = ()) -> DocumentEvent:
    """Validate an already-decoded JSON value as a document event."""
    if not isinstance(data, dict):
        raise InvalidEvent("invalid_event", f"expected a JSON object, got {type(data).__name__}")
    try:
        event = DocumentEvent.model_validate(data)
    except ValidationError as e:
        path, sentence = describe_validation_error(e)
        raise InvalidEvent("invalid_event", sentence, field=path) from e
    for check in checks:
        try:
            check(event)
        except UnknownCode as e:
            raise InvalidEvent("unknown_code", str(e), field=e.field) from e
    doc = event.document
    if event.type != EventType.repealed and doc.expires_on is not None and doc.expires_on < today:
        raise InvalidEvent(
            "expired",
            f"document {doc.id} expired on {doc.expires_on.isoformat()} "
            f"(today is {today.isoformat()}); an expired policy is not relayed",
            field="document.expires_on",
        )
    return event


def event_hints(raw: bytes | None) -> tuple[str | None, str | None]:
    """Best-effort (event_id, document_id) of a record that failed validation."""
    try:
        data = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    event_id = data.get("event_id")
    doc = data.get("document")
    doc_id = doc.get("id") if isinstance(doc, dict) else None
    return (
        event_id if isinstance(event_id, str) else None,
        doc_id if isinstance(doc_id, str) else None,
    )
