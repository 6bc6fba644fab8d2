"""DESIGN §5 rule by rule: case tables run against the reference and the indexed engine."""

from __future__ import annotations

from typing import Any

import pytest

from relay.core.matching.engine import MatchIndex
from relay.core.matching.reference import match_partner
from relay.core.models import Dimension, Document, MatchResult, Partner, Reason


def doc(tags: list[str] | None = None, **scope: Any) -> Document:
    return Document.model_validate(
        {
            "id": "QE5320000-2023-01",
            "version": 1,
            "doc_number": "徐府〔2023〕32号",
            "title": "关于徐泾镇2023年政务公开工作要点",
            "issuer": "上海市青浦区徐泾镇人民政府",
            "published_on": "2023-06-07",
            "url": "https://example.gov.cn/xxgk/QE5320000-2023-01.html",
            "tags": tags if tags is not None else ["政务公开"],
            "scope": scope,
        }
    )


def partner(
    kind: str = "association",
    paused: bool = False,
    tags_any: list[str] | None = None,
    exclude_tags: list[str] | None = None,
    **coverage: Any,
) -> Partner:
    return Partner.model_validate(
        {
            "id": "xujing-ic-association",
            "kind": kind,
            "name": "徐泾镇集成电路产业协会（示例）",
            "coverage": coverage,
            "interests": {"tags_any": tags_any or [], "exclude_tags": exclude_tags or []},
            "paused": paused,
        }
    )


def judge(document: Document, p: Partner) -> MatchResult:
    """The reference's verdict, after checking the engine agrees with it exactly."""
    ref = match_partner(document, p)
    got = MatchIndex([p]).match(document)
    assert got == ([(p, ref)] if ref.matched else [])
    return ref


def reason(result: MatchResult, dim: Dimension) -> Reason:
    found = [r for r in result.reasons if r.dimension is dim]
    assert len(found) == 1, result
    return found[0]


# -- audiences ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("audiences", "kind", "matched"),
    [
        ([], "association", True),
        ([], "park", True),
        (["association"], "association", True),
        (["association"], "park", False),
        (["park"], "association", False),
        (["association", "park"], "park", True),
    ],
)
def test_audiences_refuse_partners_of_another_kind(
    audiences: list[str], kind: str, matched: bool
) -> None:
    result = judge(doc(audiences=audiences), partner(kind=kind))
    assert result.matched is matched
    if not matched:
        assert result.refused_by is Dimension.audiences
    elif audiences:
        assert reason(result, Dimension.audiences) == Reason(
            dimension=Dimension.audiences, scope_codes=audiences, partner_codes=[kind]
        )
    else:
        assert reason(result, Dimension.audiences).applies_to_all


# -- industries ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "coverage", "verdict"),
    [
        # empty lists
        ([], [], "all"),
        ([], ["C39"], "all"),
        (["C39"], [], "unknown"),
        # same branch, either way round
        (["C39"], ["3911"], "yes"),
        (["3911"], ["C39"], "yes"),
        (["391"], ["3911"], "yes"),
        (["39"], ["C3911"], "yes"),
        # a section letter stands for its division range, on either side
        (["C"], ["3911"], "yes"),
        (["C"], ["13"], "yes"),
        (["C"], ["43"], "yes"),
        (["C"], ["44"], "no"),
        (["3911"], ["C"], "yes"),
        (["I"], ["C"], "no"),
        (["A"], ["0111"], "yes"),
        # C3911 is 3911
        (["C3911"], ["3911"], "yes"),
        (["3911"], ["C3911"], "yes"),
        # siblings and strangers
        (["3911"], ["3912"], "no"),
        (["391"], ["392"], "no"),
        (["C39"], ["6513"], "no"),
        (["I65"], ["6513", "3911"], "yes"),
    ],
)
def test_industries_match_on_one_branch_of_the_hierarchy(
    scope: list[str], coverage: list[str], verdict: str
) -> None:
    result = judge(doc(industries=scope), partner(industries=coverage))
    if verdict == "no":
        assert not result.matched
        assert result.refused_by is Dimension.industries
        return
    assert result.matched
    if verdict == "unknown":
        assert result.unknowns == [Dimension.industries]
        assert all(r.dimension is not Dimension.industries for r in result.reasons)
    elif verdict == "all":
        assert reason(result, Dimension.industries).applies_to_all
        assert result.unknowns == []
    else:
        met = reason(result, Dimension.industries)
        assert not met.applies_to_all
        assert met.scope_codes and met.partner_codes


def test_industry_reason_names_the_codes_that_met_in_scope_then_coverage_order() -> None:
    result = judge(doc(industries=["C39", "I65", "K"]), partner(industries=["6513", "3911", "C"]))
    assert reason(result, Dimension.industries) == Reason(
        dimension=Dimension.industries,
        scope_codes=["C39", "I65"],
        partner_codes=["3911", "C", "6513"],
    )


def test_a_letter_prefixed_code_is_reported_as_written() -> None:
    result = judge(doc(industries=["C3911"]), partner(industries=["39"]))
    met = reason(result, Dimension.industries)
    assert (met.scope_codes, met.partner_codes) == (["C3911"], ["39"])


# -- regions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "coverage", "verdict"),
    [
        ([], ["310118106"], "all"),
        (["310118106"], [], "unknown"),
        # the city contains the town, and a city-wide partner contains the town's policy
        (["310000"], ["310118106"], "yes"),
        (["310118106"], ["310000"], "yes"),
        (["310118"], ["310118106"], "yes"),
        (["310100"], ["310118"], "yes"),
        # trailing zero groups are dropped: 12-digit NBS codes and 9-digit district codes
        (["310118106000"], ["310118106"], "yes"),
        (["310118106"], ["310118106000"], "yes"),
        (["310118000"], ["310118107"], "yes"),
        (["310118"], ["310118106001"], "yes"),
        # neighbours and other places
        (["310118106"], ["310118107"], "no"),
        (["310118106"], ["310118107000"], "no"),
        (["310118"], ["310115125"], "no"),
        (["320000"], ["310118"], "no"),
        (["310118106"], ["310115", "310118"], "yes"),
    ],
)
def test_regions_match_by_containment(scope: list[str], coverage: list[str], verdict: str) -> None:
    result = judge(doc(regions=scope), partner(regions=coverage))
    if verdict == "no":
        assert not result.matched
        assert result.refused_by is Dimension.regions
    elif verdict == "unknown":
        assert result.matched and result.unknowns == [Dimension.regions]
    elif verdict == "all":
        assert result.matched and reason(result, Dimension.regions).applies_to_all
    else:
        assert result.matched and not reason(result, Dimension.regions).applies_to_all


def test_region_reason_keeps_only_the_coverage_that_met() -> None:
    result = judge(doc(regions=["310118106"]), partner(regions=["310115", "310118"]))
    assert reason(result, Dimension.regions) == Reason(
        dimension=Dimension.regions, scope_codes=["310118106"], partner_codes=["310118"]
    )


# -- parks and scales (flat sets) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "scope", "coverage", "verdict"),
    [
        ("parks", [], ["徐泾园区"], "all"),
        ("parks", ["徐泾园区"], [], "unknown"),
        ("parks", ["徐泾园区", "华新园区"], ["华新园区"], "yes"),
        ("parks", ["徐泾园区"], ["华新园区"], "no"),
        ("scales", [], ["small"], "all"),
        ("scales", ["small"], [], "unknown"),
        ("scales", ["small", "micro"], ["micro", "medium"], "yes"),
        ("scales", ["large"], ["small", "micro"], "no"),
    ],
)
def test_parks_and_scales_match_when_the_sets_intersect(
    field: str, scope: list[str], coverage: list[str], verdict: str
) -> None:
    dim = Dimension(field)
    scoped: dict[str, Any] = {field: scope}
    covered: dict[str, Any] = {field: coverage}
    result = judge(doc(**scoped), partner(**covered))
    if verdict == "no":
        assert not result.matched and result.refused_by is dim
    elif verdict == "unknown":
        assert result.matched and result.unknowns == [dim]
    elif verdict == "all":
        assert result.matched and reason(result, dim).applies_to_all
    else:
        met = reason(result, dim)
        assert met.scope_codes == [s for s in scope if s in coverage]
        assert met.partner_codes == met.scope_codes


# -- interests ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "tags_any", "exclude", "matched"),
    [
        (["政务公开"], [], [], True),
        ([], [], [], True),
        (["集成电路", "科技创新"], ["科技创新"], [], True),
        (["政务公开"], ["集成电路"], [], False),
        ([], ["集成电路"], [], False),
        (["政务公开"], [], ["政务公开"], False),
        # an exclusion beats an inclusion
        (["集成电路", "政务公开"], ["集成电路"], ["政务公开"], False),
        (["集成电路"], ["集成电路"], ["政务公开"], True),
    ],
)
def test_interests_filter_by_policy_tags(
    tags: list[str], tags_any: list[str], exclude: list[str], matched: bool
) -> None:
    result = judge(doc(tags=tags), partner(tags_any=tags_any, exclude_tags=exclude))
    assert result.matched is matched
    if not matched:
        assert result.refused_by is Dimension.tags
    elif tags_any:
        met = reason(result, Dimension.tags)
        assert met.scope_codes == [t for t in tags if t in tags_any]
    else:
        assert reason(result, Dimension.tags).applies_to_all


# -- paused, order of refusal, the whole explanation --------------------------------------


def test_a_paused_partner_never_matches_even_a_scope_that_applies_to_all() -> None:
    result = judge(doc(), partner(paused=True))
    assert result == MatchResult(matched=False, paused=True)


def test_the_first_dimension_that_says_no_is_the_one_reported() -> None:
    result = judge(
        doc(tags=["政务公开"], audiences=["park"], industries=["I65"]),
        partner(industries=["C39"], tags_any=["集成电路"]),
    )
    assert result.refused_by is Dimension.audiences
    result = judge(
        doc(tags=["政务公开"], industries=["I65"], regions=["310118107"]),
        partner(industries=["C39"], regions=["310118106"], tags_any=["集成电路"]),
    )
    assert result.refused_by is Dimension.industries


def test_the_seed_document_reaches_a_xujing_association_with_reasons_and_unknowns() -> None:
    result = judge(
        doc(tags=["政务公开"], audiences=["association", "park"], regions=["310118106"]),
        partner(industries=["C39"], regions=["310118106"]),
    )
    assert result == MatchResult(
        matched=True,
        reasons=[
            Reason(
                dimension=Dimension.audiences,
                scope_codes=["association", "park"],
                partner_codes=["association"],
            ),
            Reason(dimension=Dimension.industries, applies_to_all=True),
            Reason(
                dimension=Dimension.regions,
                scope_codes=["310118106"],
                partner_codes=["310118106"],
            ),
            Reason(dimension=Dimension.parks, applies_to_all=True),
            Reason(dimension=Dimension.scales, applies_to_all=True),
            Reason(dimension=Dimension.tags, applies_to_all=True),
        ],
        unknowns=[],
    )


def test_unknowns_are_listed_in_dimension_order() -> None:
    result = judge(
        doc(industries=["C39"], regions=["310118106"], parks=["徐泾园区"], scales=["small"]),
        partner(),
    )
    assert result.matched
    assert result.unknowns == [
        Dimension.industries,
        Dimension.regions,
        Dimension.parks,
        Dimension.scales,
    ]
    assert [r.dimension for r in result.reasons] == [Dimension.audiences, Dimension.tags]
