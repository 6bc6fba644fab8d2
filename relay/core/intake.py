"""Parsing and validating raw document events at the edge, with precise reasons."""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from relay.core.clock import REAL, SHANGHAI, Clock
from relay.core.errors import InvalidEvent, InvalidJSON, UnknownCode
from relay.core.models import DocumentEvent, EventType, Rejection
from relay.core.models.limits import (
    FIELD_MAX,
    ID_MAX,
    MAX_EVENT_BYTES,
    MESSAGE_MAX,
    NOT_IN_LINE,
    RAW_KEEP,
    read_json,
)

#: Extra checks run on a parsed event (the code catalogues plug in here).
Check = Callable[[DocumentEvent], None]


def today_in_shanghai(clock: Clock = REAL) -> date:
    """Today in Shanghai on ``clock``: what "expired" is judged against."""
    return clock.today()


def check_codes(event: DocumentEvent) -> None:
    """Every industry and region code of the scope is in its catalogue."""
    from relay.core.matching.catalogue import check_scope

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
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        return path, f"{path}: required field is missing"
    if err["type"] == "extra_forbidden":
        return path, f"{path}: unknown field"
    shown = "" if isinstance(value, dict | list) else f" (got {_short(value)})"
    return path, f"{path}: {msg}{shown}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def too_large(size: int, what: str = "the record") -> InvalidEvent:
    return InvalidEvent(
        "too_large",
        f"{what} is {size:,} bytes; a document event may have at most {MAX_EVENT_BYTES:,}",
    )


def parse_event(raw: bytes | None, *, today: date, checks: tuple[Check, ...] = ()) -> DocumentEvent:
    """Turn one raw record value into a valid event, or raise :class:`InvalidEvent`."""
    if not raw:
        raise InvalidEvent("not_json", "the record has no value")
    if len(raw) > MAX_EVENT_BYTES:
        raise too_large(len(raw))
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidEvent("not_json", f"the record is not UTF-8 text ({e.reason})") from e
    try:
        data = read_json(raw)
    except InvalidJSON as e:
        raise InvalidEvent(e.reason, f"the record is {e.message}") from e
    return validate_event(data, today=today, checks=checks)


def encode_event(event: DocumentEvent) -> bytes:
    """The event as the relay writes it; :class:`InvalidEvent` ``too_large`` if over the limit.

    Re-serialising adds the defaults of fields left out, so a record just under the limit
    can come out just over it.
    """
    value = event.model_dump_json().encode()
    if len(value) > MAX_EVENT_BYTES:
        raise too_large(len(value), "the event, with its defaults filled in,")
    return value


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
    if event.type == EventType.repealed and doc.repealed_on is None:
        # A repeal notice names the day the policy stopped applying (废止日期), never the
        # day it was published: without one from the publisher, the day of the repeal.
        repealed_on = event.occurred_at.astimezone(SHANGHAI).date()
        event = event.model_copy(
            update={"document": doc.model_copy(update={"repealed_on": repealed_on})}
        )
    return event


@dataclass(frozen=True)
class Advisory:
    """Something an operator should know about an accepted event; it is relayed all the same."""

    code: str
    field: str
    message: str


#: Shanghai's rule for normative documents: a validity period of generally at most 5 years.
NORMATIVE_YEARS = 5


def advisories(event: DocumentEvent) -> list[Advisory]:
    """What the operator is warned of on an accepted event (DESIGN §4, source item 2).

    A normative document (规范性文件) should state its validity period, generally at most
    five years: without ``expires_on`` it is relayed as "有效期未注明，以原文为准", and the
    operator is told so; a longer period is pointed out too.
    """
    doc = event.document
    if event.type == EventType.repealed or not doc.normative:
        return []
    if doc.expires_on is None:
        return [
            Advisory(
                "normative_without_expiry",
                "document.expires_on",
                f"document {doc.id} is normative (规范性文件) but has no expires_on: notices "
                "will say 有效期未注明，以原文为准; a normative document's validity is "
                f"generally at most {NORMATIVE_YEARS} years",
            )
        ]
    start = doc.effective_from or doc.published_on
    try:
        limit = start.replace(year=start.year + NORMATIVE_YEARS)
    except ValueError:  # 29 February
        limit = start.replace(year=start.year + NORMATIVE_YEARS, day=28)
    if doc.expires_on > limit:
        return [
            Advisory(
                "normative_validity_over_limit",
                "document.expires_on",
                f"document {doc.id} is normative and valid from {start.isoformat()} to "
                f"{doc.expires_on.isoformat()}, longer than the usual {NORMATIVE_YEARS} years",
            )
        ]
    return []


#: Where the ids usually are in an event too large to parse (DESIGN §4's order).
_EVENT_ID = re.compile(rb'"event_id"\s*:\s*"([^"\\]{1,%d})"' % ID_MAX)
_DOCUMENT_ID = re.compile(rb'"document"\s*:\s*\{\s*"id"\s*:\s*"([^"\\]{1,%d})"' % ID_MAX)


def event_hints(raw: bytes | None) -> tuple[str | None, str | None]:
    """Best-effort (event_id, document_id) of a record that failed validation.

    Never raises: a hint is kept only if it is a short, printable string.
    """
    if not raw:
        return None, None
    if len(raw) > MAX_EVENT_BYTES:  # not parsed: look near the start
        head = raw[:RAW_KEEP]
        event_id, doc_id = _EVENT_ID.search(head), _DOCUMENT_ID.search(head)
        return (
            _hint(event_id.group(1).decode("utf-8", "replace")) if event_id else None,
            _hint(doc_id.group(1).decode("utf-8", "replace")) if doc_id else None,
        )
    try:
        data = read_json(raw)
    except Exception:  # InvalidJSON, or anything a parser may raise on bytes it never saw
        return None, None
    if not isinstance(data, dict):
        return None, None
    doc = data.get("document")
    return _hint(data.get("event_id")), _hint(doc.get("id") if isinstance(doc, dict) else None)


def _hint(value: Any) -> str | None:
    if not isinstance(value, str) or not 0 < len(value) <= ID_MAX or NOT_IN_LINE.search(value):
        return None
    return value


def _kept(raw: bytes) -> str:
    """The first RAW_KEEP bytes as text (bad bytes as U+FFFD), marked "…" when cut."""
    if len(raw) <= RAW_KEEP:
        return raw.decode("utf-8", "replace")
    # Incremental: a character split by the cut is left out, not turned into U+FFFD.
    return codecs.getincrementaldecoder("utf-8")("replace").decode(raw[:RAW_KEEP]) + "…"


def _cut(text: str, limit: int) -> str:
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # no unpaired surrogates
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rejection(
    err: InvalidEvent,
    raw: bytes | None,
    *,
    now: datetime,
    key: bytes | None = None,
    source: tuple[str, int, int] | None = None,
) -> Rejection:
    """The ``relay.rejected`` record of a refused record, whatever the record held.

    Bounded (at most ~0.4 MB as JSON, see RAW_KEEP) and never raising, so a hostile record
    cannot break the path that records it. ``source`` is (topic, partition, offset); the
    record's key stands in for the document id when the value gives none.
    """
    raw = raw or b""
    event_id, doc_id = event_hints(raw)
    if doc_id is None and key:
        doc_id = _hint(key.decode("utf-8", "replace"))
    topic, partition, offset = source if source else (None, None, None)
    return Rejection(
        reason=_cut(err.reason, FIELD_MAX),
        message=_cut(err.message, MESSAGE_MAX),
        field=_cut(err.field, FIELD_MAX) if err.field is not None else None,
        event_id=event_id,
        document_id=doc_id,
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        raw=_kept(raw),
        raw_bytes=len(raw),
        rejected_at=now,
    )
