"""Limits at every edge, defined once: sizes, nesting depth, text and list lengths, characters.

Document events (intake, ``relay publish``, ``POST /api/v1/documents``), partner profiles
(files and the API) and the API's other bodies all take their limits from here; the README's
"Limits" table states the same numbers.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, NoReturn

import pydantic_core
from pydantic import AfterValidator, Field

from relay.core.errors import InvalidJSON

# ------------------------------------------------------------------ sizes

#: Largest document event, in bytes of UTF-8 JSON: as received, and as the relay writes it
#: again (to ``relay.documents.accepted``). The producer sends requests of at most 1,000,000
#: bytes (Faust's default), so an accepted event, a retry carrying it with its match, and a
#: rejection record (at most ~0.4 MB, see RAW_KEEP) each fit with room to spare.
MAX_EVENT_BYTES = 256 * 1024
#: Bytes of a refused record kept in its rejection (the rest is cut, marked "…"). JSON
#: escaping at most sextuples them (a NUL byte is written ``\u0000``): ≤ 384 KiB.
RAW_KEEP = 64 * 1024
#: Largest value the relay writes as one bundle of intents or batch of audit records: a
#: bundle of this size is split in two (a lone intent or record is written however large;
#: the limits here keep it well under the producer's 1,000,000 bytes).
MAX_BUNDLE_BYTES = 512 * 1024
#: Deepest nesting of arrays and objects read anywhere (JSON, or YAML in partner files). A
#: document event needs 4 levels, a partners file 6.
MAX_DEPTH = 32
#: Largest partners file or events file read (``relay partners import``, ``relay publish``).
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Values a YAML file may hold with its aliases expanded (a "billion laughs" holds 10⁹).
MAX_YAML_VALUES = 1_000_000

# ------------------------------------------------------------------ text, in characters

ID_MAX = 128
TAG_MAX = 64
CODE_MAX = 16
DOC_NUMBER_MAX = 100
PARK_MAX = 100
NAME_MAX = 200
TITLE_MAX = 500
URL_MAX = 2048
EMAIL_MAX = 254  # RFC 5321's longest path
SECRET_MAX = 100
NOTE_MAX = 2_000
CHANGES_MAX = 5_000
#: A question to the drafting unit, and its answer (item 6).
QUESTION_MAX = 2_000
ANSWER_MAX = 5_000
INDEX_NO_MAX = 100  # 索引号
DISCLOSURE_MAX = 64  # 公开方式
PHONE_MAX = 50
#: One side (before or after) of a computed revision change: longer is cut, marked "…".
CHANGE_VALUE_MAX = 300
SUMMARY_MAX = 20_000
#: A sentence the relay writes (why a channel was disabled): cut to this, never refused.
REASON_MAX = 500
#: A rejection's message and field, cut to these.
MESSAGE_MAX = 1_000
FIELD_MAX = 200

# ------------------------------------------------------------------ lists, in items

CODES_MAX = 200  # industries, regions of a scope or coverage
PARKS_MAX = 50
TAGS_MAX = 50  # a document's tags, a partner's tags_any / exclude_tags
CHOICES_MAX = 10  # audiences, scales
CHANNELS_MAX = 20
RECIPIENTS_MAX = 20  # addresses of one email channel
TOKENS_MAX = 10
DELIVERY_IDS_MAX = 10_000  # one replay request

# ------------------------------------------------------------------ numbers

#: A document version: a signed 32-bit integer, so date-stamped versions (20230607) fit and
#: so does every consumer's integer type.
VERSION_MAX = 2**31 - 1
#: Enterprises one acknowledgement may report (Shanghai has about 3 million in all).
FORWARDED_TO_MAX = 10_000_000

# ------------------------------------------------------------------ characters

_CONTROL = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # C0 and C1, but tab, LF and CR
_BIDI = "\u202a-\u202e\u2066-\u2069"  # embeddings, overrides, isolates
_SURROGATE = "\ud800-\udfff"  # only ever unpaired in a str
#: Not in any text field.
NOT_IN_TEXT = re.compile(f"[{_CONTROL}{_BIDI}{_SURROGATE}]")
#: Not in one-line fields (names, titles, tags, addresses, URLs): line breaks and tabs too.
NOT_IN_LINE = re.compile(f"[\t\n\r\u2028\u2029{_CONTROL}{_BIDI}{_SURROGATE}]")


def _refuse(found: re.Match[str]) -> NoReturn:
    c = found.group()
    if c in "\n\r\u2028\u2029":
        kind = "a line break"
    elif c == "\t":
        kind = "a tab"
    elif "\u202a" <= c <= "\u2069":
        kind = "a bidirectional control character"
    elif "\ud800" <= c <= "\udfff":
        kind = "an unpaired surrogate"
    else:
        kind = "a control character"
    raise ValueError(f"contains {kind} (U+{ord(c):04X}) at position {found.start()}")


def one_line(text: str) -> str:
    """Strip; refuse empty text and any control, bidi or line-break character."""
    text = text.strip()
    if not text:
        raise ValueError("must not be empty")
    if found := NOT_IN_LINE.search(text):
        _refuse(found)
    return text


def multi_line(text: str) -> str:
    """Refuse control and bidi characters; tabs and line breaks are fine."""
    if found := NOT_IN_TEXT.search(text):
        _refuse(found)
    return text


def text_block(text: str) -> str:
    """Strip; refuse empty text and control or bidi characters (line breaks are fine)."""
    text = text.strip()
    if not text:
        raise ValueError("must not be empty")
    return multi_line(text)


def cut_clean(text: str, limit: int = REASON_MAX) -> str:
    """For what the relay writes itself: control and bidi characters become spaces, cut."""
    text = NOT_IN_LINE.sub(" ", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _reason(text: str) -> str:
    return cut_clean(text)


# Lengths are checked first, by pydantic-core, so nothing long reaches a validator.
Tag = Annotated[str, Field(max_length=TAG_MAX), AfterValidator(one_line)]
DocNumber = Annotated[str, Field(max_length=DOC_NUMBER_MAX), AfterValidator(one_line)]
ParkName = Annotated[str, Field(max_length=PARK_MAX), AfterValidator(one_line)]
Name = Annotated[str, Field(max_length=NAME_MAX), AfterValidator(one_line)]
Title = Annotated[str, Field(max_length=TITLE_MAX), AfterValidator(one_line)]
Summary = Annotated[str, Field(max_length=SUMMARY_MAX), AfterValidator(multi_line)]
Changes = Annotated[str, Field(max_length=CHANGES_MAX), AfterValidator(multi_line)]
Note = Annotated[str, Field(max_length=NOTE_MAX), AfterValidator(multi_line)]
#: An id given in a request or a file (pattern-checked where it is defined).
ShortId = Annotated[str, Field(max_length=ID_MAX)]
#: Why the relay disabled a channel: relay-written, so cleaned and cut rather than refused.
RelayReason = Annotated[str, AfterValidator(_reason)]


# ------------------------------------------------------------------ JSON


def read_json(data: bytes | str) -> Any:
    """Parse JSON with pydantic-core's parser; raise :class:`InvalidJSON` if it is not JSON
    (NaN, Infinity and unpaired surrogates are not) or nests deeper than MAX_DEPTH."""
    try:
        value = pydantic_core.from_json(data, allow_inf_nan=False)
    except ValueError as e:
        # pydantic-core stops at its own recursion limit (200 levels), well past ours.
        if "recursion limit" in str(e):
            raise InvalidJSON("too_deep", too_deep_message()) from None
        raise InvalidJSON("not_json", f"not JSON: {e}") from None
    if nesting_exceeds(value, MAX_DEPTH):
        raise InvalidJSON("too_deep", too_deep_message())
    return value


def too_deep_message() -> str:
    return f"nested deeper than {MAX_DEPTH} levels of arrays and objects"


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects in ``value`` nest deeper than ``limit`` (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False
