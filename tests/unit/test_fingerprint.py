"""The registry fingerprint: equal for equal partner sets whatever the order of changes,
different when a worker missed or garbled a change."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from relay.core.fingerprint import SetFingerprint
from relay.core.models import Partner
from relay.runtime.registry import PartnerBook
from tests.unit import factories

KEYS = st.sampled_from(["p-a", "p-b", "p-c", "p-d"])
#: A change: put (key, value) or, with value None, discard key.
CHANGES = st.lists(st.tuples(KEYS, st.none() | st.binary(max_size=8)), max_size=30)


def applied(changes: list[tuple[str, bytes | None]]) -> tuple[SetFingerprint, dict[str, bytes]]:
    fp, final = SetFingerprint(), dict[str, bytes]()
    for key, value in changes:
        if value is None:
            fp.discard(key)
            final.pop(key, None)
        else:
            fp.put(key, value)
            final[key] = value
    return fp, final


@given(CHANGES, st.randoms())
def test_any_history_ends_at_the_fingerprint_of_what_it_left(
    changes: list[tuple[str, bytes | None]], rnd: random.Random
) -> None:
    fp, final = applied(changes)
    entries = list(final.items())
    rnd.shuffle(entries)
    fresh = SetFingerprint(entries)
    assert fp.hexdigest() == fresh.hexdigest()
    assert len(fp) == len(final)
    assert fp.hexdigest().startswith(f"{len(final)}-")


@given(CHANGES, KEYS, st.binary(min_size=1, max_size=8))
def test_a_missed_or_different_value_changes_the_fingerprint(
    changes: list[tuple[str, bytes | None]], key: str, other: bytes
) -> None:
    fp, final = applied(changes)
    changed = dict(final)
    if changed.get(key) == other:
        changed.pop(key)  # missed
    else:
        changed[key] = other  # a different version, or one the other never saw
    assert SetFingerprint(changed.items()).hexdigest() != fp.hexdigest()


def test_the_same_value_under_another_key_is_another_entry() -> None:
    assert (
        SetFingerprint([("p-a", b"x")]).hexdigest() != SetFingerprint([("p-b", b"x")]).hexdigest()
    )
    assert SetFingerprint().hexdigest() == "0-" + "0" * 32


def test_partner_books_that_applied_the_same_records_agree_and_one_behind_does_not() -> None:
    a1 = factories.partner("p-a")
    a2 = factories.partner("p-a", name="p-a（改名）")
    b = factories.partner("p-b")
    c = factories.partner("p-c")

    def record(p: Partner) -> bytes:
        return p.model_dump_json().encode()

    first, second, behind = PartnerBook(), PartnerBook(), PartnerBook()
    for book in (first, second, behind):
        book.apply("p-a", record(a1))
        book.apply("p-b", record(b))
        book.apply("p-c", record(c))
    for book in (first, second):
        book.apply("p-a", record(a2))
        book.apply("p-c", None)
    # A record the registry refuses changes nothing, in the book or its fingerprint.
    before = second.fingerprint.hexdigest()
    with pytest.raises(ValidationError):
        second.apply("p-b", b'{"id": "p-b", "kind": "nonsense"}')
    assert second.fingerprint.hexdigest() == before
    assert second.get("p-b") == b

    assert first.fingerprint.hexdigest() == second.fingerprint.hexdigest()
    assert first.fingerprint.hexdigest().startswith("2-")
    assert behind.fingerprint.hexdigest() != first.fingerprint.hexdigest()
    # A book loading the end state directly (a worker started later) agrees too.
    fresh = PartnerBook()
    fresh.apply("p-b", record(b))
    fresh.apply("p-a", record(a2))
    assert fresh.fingerprint.hexdigest() == first.fingerprint.hexdigest()
