"""Plain-Chinese "why you received this" lines for a match result (email, webhook, demo report)."""

from __future__ import annotations

from relay.core.matching.catalogue import industry_name, region_name, scale_name
from relay.core.matching.codes import industry_prefixes, region_prefix
from relay.core.models import Audience, Dimension, Document, MatchResult, Reason

_LABELS = {
    Dimension.audiences: "对象",
    Dimension.industries: "行业",
    Dimension.regions: "区域",
    Dimension.parks: "园区",
    Dimension.scales: "规模",
    Dimension.tags: "标签",
}
_AUDIENCES = {Audience.association.value: "行业协会", Audience.park.value: "产业园区"}
#: How the unknown dimensions are named to the partner ("贵单位未登记…信息").
_UNKNOWN = {
    Dimension.industries: "行业",
    Dimension.regions: "区域",
    Dimension.parks: "园区",
    Dimension.scales: "规模",
}


def dimension_label(dim: Dimension) -> str:
    """行业 / 区域 / 园区 / 规模 / 对象 / 标签."""
    return _LABELS[dim]


def _named(code: str, name: str | None) -> str:
    return f"{code} {name}" if name else code


def _industry(code: str) -> str:
    return _named(code, industry_name(code))


def _region(code: str) -> str:
    return _named(code, region_name(code))


def _scale(value: str) -> str:
    try:
        return scale_name(value)
    except ValueError:
        return value


def _join(items: list[str]) -> str:
    return "、".join(items)


def _within(inner: list[str], outer: list[str]) -> bool:
    """Every inner region lies inside some outer region."""
    return all(any(region_prefix(i).startswith(region_prefix(o)) for o in outer) for i in inner)


def _industry_line(reason: Reason, you: str) -> str:
    scope = _join([_industry(c) for c in reason.scope_codes])
    same = {p for c in reason.scope_codes for p in industry_prefixes(c)} == {
        p for c in reason.partner_codes for p in industry_prefixes(c)
    }
    if same:
        return f"适用行业：{scope} — 与{you}覆盖的行业相同"
    cover = _join([_industry(c) for c in reason.partner_codes])
    return f"适用行业：{scope} — 与{you}覆盖的 {cover} 同属一支"


def _region_line(reason: Reason, you: str) -> str:
    scope = _join([_region(c) for c in reason.scope_codes])
    ours, theirs = reason.scope_codes, reason.partner_codes
    if {region_prefix(c) for c in ours} == {region_prefix(c) for c in theirs}:
        return f"适用区域：{scope}"
    cover = _join([_region(c) for c in theirs])
    if _within(theirs, ours):
        return f"适用区域：{scope} — {you}覆盖的 {cover} 在此范围内"
    if _within(ours, theirs):
        return f"适用区域：{scope} — 位于{you}覆盖的 {cover} 之内"
    return f"适用区域：{scope} — 与{you}覆盖的 {cover} 有上下级包含关系"


class Words:
    """How a notice addresses a partner: 贵协会 / 会员企业, or 贵园区 / 入驻企业.

    Without a kind (a record that predates it): 贵单位 / 企业.
    """

    def __init__(self, kind: Audience | str | None) -> None:
        kind = Audience(kind) if kind else None  # a record copied unvalidated holds a str
        if kind is Audience.association:
            self.unit, self.members = "协会", "会员企业"
        elif kind is Audience.park:
            self.unit, self.members = "园区", "入驻企业"
        else:
            self.unit, self.members = "单位", "企业"
        self.you = f"贵{self.unit}"


def scope_values(dim: Dimension, codes: list[str]) -> str:
    """A scope's codes on one dimension as a notice names them (C39 计算机…、中型、小型)."""
    if dim is Dimension.industries:
        return _join([_industry(c) for c in codes])
    if dim is Dimension.regions:
        return _join([_region(c) for c in codes])
    if dim is Dimension.scales:
        return _join([f"{_scale(s)}企业" for s in codes])
    if dim is Dimension.audiences:
        return _join([_AUDIENCES.get(a, a) for a in codes])
    return _join(codes)


def _scope_codes(document: Document, dim: Dimension) -> list[str]:
    return [str(c) for c in getattr(document.scope, dim.value)]


def criteria(document: Document, dim: Dimension) -> str:
    """What the policy itself targets on ``dim``: ``本政策适用行业：C39 计算机…``."""
    codes = _scope_codes(document, dim)
    if not codes:
        return f"本政策不限{_LABELS[dim]}"
    return f"本政策适用{_LABELS[dim]}：{scope_values(dim, codes)}"


#: The dimensions an enterprise is judged on, in the order a 适用范围 line names them.
SCOPE_DIMENSIONS = (Dimension.industries, Dimension.regions, Dimension.parks, Dimension.scales)


def scope_line(document: Document) -> str:
    """The policy's whole scope for the enterprises, in one sentence (the 适用范围 line)."""
    parts = [
        f"{_LABELS[d]}：{scope_values(d, _scope_codes(document, d))}"
        for d in SCOPE_DIMENSIONS
        if _scope_codes(document, d)
    ]
    if not parts:
        return "不限行业、区域和企业规模，详见原文"
    return "；".join(parts)


def _reason_line(reason: Reason, words: Words) -> str:
    dim = reason.dimension
    if reason.applies_to_all:
        if dim is Dimension.tags:
            return f"政策标签：{words.you}未限定关注标签，接收全部政策"
        return f"本政策不限{_LABELS[dim]}"
    if dim is Dimension.audiences:
        scope = _join([_AUDIENCES.get(a, a) for a in reason.scope_codes])
        kind = _join([_AUDIENCES.get(a, a) for a in reason.partner_codes])
        return f"适用对象：{scope} — {words.you}为{kind}"
    if dim is Dimension.industries:
        return _industry_line(reason, words.you)
    if dim is Dimension.regions:
        return _region_line(reason, words.you)
    if dim is Dimension.parks:
        return f"适用园区：{_join(reason.scope_codes)} — 在{words.you}覆盖的园区之列"
    if dim is Dimension.scales:
        scales = _join([_scale(s) for s in reason.scope_codes])
        return f"适用规模：{scales} — 与{words.you}{words.members}规模相符"
    return f"政策标签：{_join(reason.scope_codes)} — 在{words.you}关注的标签之列"


def explain(
    result: MatchResult, document: Document | None = None, kind: Audience | str | None = None
) -> list[str]:
    """Why the partner received (or did not receive) the document, one line per dimension.

    With ``document``, the line of each dimension the partner did not state says what the
    policy itself targets there; with ``kind``, the partner is addressed as a 协会 with
    会员企业 or a 园区 with 入驻企业.
    """
    words = Words(kind)
    if result.paused:
        return [f"{words.you}已暂停接收政策推送"]
    if not result.matched:
        if result.refused_by is None:
            return [f"本政策不适用于{words.you}"]
        return [f"本政策不适用于{words.you}：{_LABELS[result.refused_by]}不符"]
    lines = [_reason_line(r, words) for r in result.reasons]
    for d in result.unknowns:
        judge = (
            f"{words.you}未登记{_UNKNOWN.get(d, _LABELS[d])}信息，"
            f"请结合{words.members}实际判断是否转发"
        )
        lines.append(f"{criteria(document, d)}；{judge}" if document is not None else judge)
    return lines
