"""The indexed engine returns exactly what the reference scan returns, under any profiles."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.core.matching import engine, reference
from relay.core.matching.engine import MatchIndex, _bitmap, _slots
from relay.core.models import Document, MatchResult, Partner

# Realistic code pools: mostly 青浦/徐泾 and Shanghai, industries across the levels and
# sections, with letter prefixes, 12-digit region codes and a few codes from elsewhere.
INDUSTRIES = [
    "C", "I", "M", "A", "K", "T",
    "C39", "39", "I65", "65", "C36", "35", "13", "43", "M73", "01", "97",
    "391", "397", "651", "C391", "011",
    "3911", "C3911", "3912", "3973", "6513", "6520", "0111", "A0111", "A3911",
]  # fmt: skip
REGIONS = [
    "310000", "310100", "310118", "310115", "310101",
    "310118106", "310118107", "310118001", "310115125",
    "310118106000", "310118106001", "310118000", "310115000",
    "320000", "320500", "110101",
]  # fmt: skip
PARKS = ["徐泾园区", "华新园区", "市北高新"]
SCALES = ["large", "medium", "small", "micro"]
TAGS = ["政务公开", "科技创新", "集成电路", "稳增长", "人才"]

ids = st.sampled_from([f"p{i:02d}" for i in range(30)])


def few(pool: list[str], size: int = 3) -> st.SearchStrategy[list[str]]:
    # Duplicates allowed: the models accept them, and the reasons must still agree.
    return st.lists(st.sampled_from(pool), max_size=size)


@st.composite
def partner_data(draw: st.DrawFn, pid: str | None = None) -> dict[str, Any]:
    return {
        "id": pid if pid is not None else draw(ids),
        "kind": draw(st.sampled_from(["association", "park"])),
        "name": "示例",
        "coverage": {
            "industries": draw(few(INDUSTRIES)),
            "regions": draw(few(REGIONS, 2)),
            "parks": draw(few(PARKS, 2)),
            "scales": draw(few(SCALES)),
        },
        "interests": {"tags_any": draw(few(TAGS, 2)), "exclude_tags": draw(few(TAGS, 1))},
        "paused": draw(st.sampled_from([False, False, False, True])),
    }


partners = st.builds(Partner.model_validate, partner_data())


@st.composite
def documents(draw: st.DrawFn) -> Document:
    return Document.model_validate(
        {
            "id": "D-1",
            "version": 1,
            "doc_number": "青府〔2023〕1号",
            "title": "示例政策",
            "issuer": "上海市青浦区人民政府",
            "published_on": "2023-06-07",
            "url": "https://example.gov.cn/1.html",
            "tags": draw(few(TAGS)),
            "scope": {
                "audiences": draw(few(["association", "park"], 2)),
                "industries": draw(few(INDUSTRIES)),
                "regions": draw(few(REGIONS, 2)),
                "parks": draw(few(PARKS, 2)),
                "scales": draw(few(SCALES, 2)),
            },
        }
    )


def expected(document: Document, held: dict[str, Partner]) -> list[tuple[Partner, MatchResult]]:
    return sorted(reference.match_all(document, held.values()), key=lambda pr: pr[0].id)


def assert_same(index: MatchIndex, document: Document, held: dict[str, Partner]) -> None:
    got = index.match(document)
    want = expected(document, held)
    # Field by field: partner identity, matched, reasons in order, unknowns in order.
    assert [p.id for p, _ in got] == [p.id for p, _ in want]
    for (p, r), (q, s) in zip(got, want, strict=True):
        assert p is q
        assert r.model_dump() == s.model_dump()
        assert r == s


SLOW = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SLOW
@given(st.lists(partners, max_size=30), st.lists(documents(), min_size=1, max_size=4))
def test_engine_equals_the_reference_on_random_profiles(
    profiles: list[Partner], docs: list[Document]
) -> None:
    held = {p.id: p for p in profiles}  # a later profile with the same id replaces it
    index = MatchIndex()
    for p in profiles:
        index.upsert(p)
    assert len(index) == len(held)
    for document in docs:
        assert_same(index, document, held)


Op = tuple[str, str, dict[str, Any] | None]
ops = st.one_of(
    st.builds(lambda d: ("upsert", d["id"], d), partner_data()),
    st.builds(lambda pid: ("remove", pid, None), ids),
)


@SLOW
@given(
    st.lists(partners, max_size=20),
    st.lists(ops, max_size=40),
    st.lists(documents(), min_size=1, max_size=3),
)
def test_engine_stays_equal_to_the_reference_through_upserts_and_removes(
    initial: list[Partner], changes: list[Op], docs: list[Document]
) -> None:
    held = {p.id: p for p in initial}
    index = MatchIndex(held.values())
    for n, (op, pid, data) in enumerate(changes):
        if op == "upsert":
            assert data is not None
            held[pid] = Partner.model_validate(data)
            index.upsert(held[pid])
        else:
            assert index.remove(pid) is (held.pop(pid, None) is not None)
        if n % 10 == 9:
            assert_same(index, docs[0], held)
    assert len(index) == len(held)
    assert [p.id for p in index.partners()] == sorted(held)
    for document in docs:
        assert_same(index, document, held)


@pytest.mark.parametrize("few", [2, 64])
def test_engine_equals_the_reference_at_a_few_hundred_profiles_with_churn(
    few: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Larger sets exercise the sparse and dense bit extraction and the out-of-order path;
    # a tiny list limit makes keys move between sorted lists and bitmaps all the time.
    monkeypatch.setattr(engine, "_FEW", few)
    rnd = random.Random(2023)
    held: dict[str, Partner] = {}
    index = MatchIndex()
    for i in range(400):
        pid = f"p{rnd.randrange(10_000):04d}"
        held[pid] = Partner.model_validate(_random_partner(rnd, pid))
        index.upsert(held[pid])
        if i % 7 == 0:
            gone = rnd.choice(sorted(held))
            assert index.remove(gone)
            del held[gone]
    matched = 0
    for _ in range(60):
        document = _random_document(rnd)
        assert_same(index, document, held)
        matched += len(index.match(document))
    assert matched > 0


def _random_partner(rnd: random.Random, pid: str) -> dict[str, Any]:
    def some(pool: list[str], size: int) -> list[str]:
        return rnd.sample(pool, rnd.randint(0, size))

    return {
        "id": pid,
        "kind": rnd.choice(["association", "park"]),
        "name": "示例",
        "coverage": {
            "industries": some(INDUSTRIES, 3),
            "regions": some(REGIONS, 2),
            "parks": some(PARKS, 1),
            "scales": some(SCALES, 2),
        },
        "interests": {"tags_any": some(TAGS, 2), "exclude_tags": some(TAGS, 1)},
        "paused": rnd.random() < 0.05,
    }


def _random_document(rnd: random.Random) -> Document:
    def some(pool: list[str], size: int) -> list[str]:
        return rnd.sample(pool, rnd.randint(0, size))

    return Document.model_validate(
        {
            "id": "D-2",
            "version": 1,
            "doc_number": "青府〔2023〕2号",
            "title": "示例政策",
            "issuer": "上海市青浦区人民政府",
            "published_on": "2023-06-07",
            "url": "https://example.gov.cn/2.html",
            "tags": some(TAGS, 2),
            "scope": {
                "audiences": some(["association", "park"], 1),
                "industries": some(INDUSTRIES, 2),
                "regions": some(REGIONS, 1),
                "scales": some(SCALES, 2) if rnd.random() < 0.3 else [],
            },
        }
    )


@given(st.sets(st.integers(min_value=0, max_value=3_000), max_size=600))
def test_bit_extraction_lists_every_set_bit_in_order(bits: set[int]) -> None:
    bitmap = sum(1 << b for b in bits)
    assert _slots(bitmap) == sorted(bits)
    if bits:
        assert _bitmap(sorted(bits)) == bitmap


def test_an_upsert_replaces_the_partner_and_a_remove_forgets_it() -> None:
    data = {"id": "p01", "kind": "park", "name": "示例", "coverage": {"regions": ["310118106"]}}
    first = Partner.model_validate(data)
    index = MatchIndex([first])
    document = Document.model_validate(
        {
            "id": "D-3",
            "version": 1,
            "doc_number": "青府〔2023〕3号",
            "title": "示例政策",
            "issuer": "上海市青浦区人民政府",
            "published_on": "2023-06-07",
            "url": "https://example.gov.cn/3.html",
            "scope": {"regions": ["310118107"]},
        }
    )
    assert index.match(document) == []
    moved = Partner.model_validate(data | {"coverage": {"regions": ["310118"]}})
    index.upsert(moved)
    assert len(index) == 1 and index.get("p01") is moved
    [(p, result)] = index.match(document)
    assert p is moved and result == reference.match_partner(document, moved)
    paused = moved.model_copy(update={"paused": True})
    index.upsert(paused)
    assert index.match(document) == [] and index.get("p01") is paused
    assert index.remove("p01") is True
    assert index.remove("p01") is False
    assert len(index) == 0 and "p01" not in index
    index.upsert(moved)
    assert [p for p, _ in index.match(document)] == [moved]
