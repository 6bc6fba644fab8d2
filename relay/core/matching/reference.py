"""The straightforward matcher: every rule of DESIGN §5, one partner at a time.

It is the reference the indexed engine is tested against, so it favours being obviously
right over being fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from relay.core.matching.codes import industry_prefixes, on_one_branch, region_prefix
from relay.core.models import Dimension, Document, MatchResult, Partner, Reason

_YES, _NO, _UNKNOWN = "yes", "no", "unknown"


def _region_prefixes(code: str) -> tuple[str, ...]:
    return (region_prefix(code),)


def _hierarchical(
    dimension: Dimension,
    scope: list[str],
    coverage: list[str],
    expand: Callable[[str], tuple[str, ...]],
) -> tuple[str, Reason | None]:
    if not scope:
        return _YES, Reason(dimension=dimension, applies_to_all=True)
    if not coverage:
        return _UNKNOWN, None
    met_scope: list[str] = []
    met_cover: list[str] = []
    for s in scope:
        for c in coverage:
            if any(on_one_branch(a, b) for a in expand(s) for b in expand(c)):
                if s not in met_scope:
                    met_scope.append(s)
                if c not in met_cover:
                    met_cover.append(c)
    if not met_scope:
        return _NO, None
    return _YES, Reason(dimension=dimension, scope_codes=met_scope, partner_codes=met_cover)


def _flat(dimension: Dimension, scope: list[str], coverage: list[str]) -> tuple[str, Reason | None]:
    if not scope:
        return _YES, Reason(dimension=dimension, applies_to_all=True)
    if not coverage:
        return _UNKNOWN, None
    met = [s for s in scope if s in coverage]
    if not met:
        return _NO, None
    return _YES, Reason(dimension=dimension, scope_codes=met, partner_codes=met)


def match_partner(document: Document, partner: Partner) -> MatchResult:
    """Judge one document against one partner, dimension by dimension (three-valued)."""
    if partner.paused:
        return MatchResult(matched=False, paused=True)
    scope, cover = document.scope, partner.coverage
    reasons: list[Reason] = []
    unknowns: list[Dimension] = []

    if scope.audiences:
        if partner.kind not in scope.audiences:
            return MatchResult(matched=False, refused_by=Dimension.audiences)
        reasons.append(
            Reason(
                dimension=Dimension.audiences,
                scope_codes=[str(a) for a in scope.audiences],
                partner_codes=[str(partner.kind)],
            )
        )
    else:
        reasons.append(Reason(dimension=Dimension.audiences, applies_to_all=True))

    verdicts = [
        (
            Dimension.industries,
            _hierarchical(
                Dimension.industries, scope.industries, cover.industries, industry_prefixes
            ),
        ),
        (
            Dimension.regions,
            _hierarchical(Dimension.regions, scope.regions, cover.regions, _region_prefixes),
        ),
        (Dimension.parks, _flat(Dimension.parks, scope.parks, cover.parks)),
        (
            Dimension.scales,
            _flat(Dimension.scales, [str(s) for s in scope.scales], [str(s) for s in cover.scales]),
        ),
    ]
    for dimension, (verdict, reason) in verdicts:
        if verdict == _NO:
            return MatchResult(matched=False, refused_by=dimension)
        if verdict == _UNKNOWN:
            unknowns.append(dimension)
        elif reason is not None:
            reasons.append(reason)

    tags, wants = document.tags, partner.interests
    excluded = [t for t in tags if t in wants.exclude_tags]
    if excluded:
        return MatchResult(matched=False, refused_by=Dimension.tags)
    if wants.tags_any:
        met = [t for t in tags if t in wants.tags_any]
        if not met:
            return MatchResult(matched=False, refused_by=Dimension.tags)
        reasons.append(Reason(dimension=Dimension.tags, scope_codes=met, partner_codes=met))
    else:
        reasons.append(Reason(dimension=Dimension.tags, applies_to_all=True))

    return MatchResult(matched=True, reasons=reasons, unknowns=unknowns)


def match_all(document: Document, partners: Iterable[Partner]) -> list[tuple[Partner, MatchResult]]:
    """Every partner the document is relayed to, with why, in the order given."""
    out = []
    for partner in partners:
        result = match_partner(document, partner)
        if result.matched:
            out.append((partner, result))
    return out
