"""Plain-Chinese "why you received this" lines for a match result (email, webhook, demo report)."""

from __future__ import annotations

from relay.core.matching.catalogue import industry_name, region_name, scale_name
from relay.core.matching.codes import industry_prefixes, region_prefix
from relay.core.models import Audience, Dimension, MatchResult, Reason

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


def _industry_line(reason: Reason) -> str:
    scope = _join([_industry(c) for c in reason.scope_codes])
    same = {p for c in reason.scope_codes for p in industry_prefixes(c)} == {
        p for c in reason.partner_codes for p in industry_prefixes(c)
    }
    if same:
        return f"适用行业：{scope} — 与贵单位覆盖的行业相同"
    cover = _join([_industry(c) for c in reason.partner_codes])
    return f"适用行业：{scope} — 与贵单位覆盖的 {cover} 同属一支"


def _region_line(reason: Reason) -> str:
    scope = _join([_region(c) for c in reason.scope_codes])
    ours, theirs = reason.scope_codes, reason.partner_codes
    if {region_prefix(c) for c in ours} == {region_prefix(c) for c in theirs}:
        return f"适用区域：{scope}"
    cover = _join([_region(c) for c in theirs])
    if _within(theirs, ours):
        return f"适用区域：{scope} — 贵单位覆盖的 {cover} 在此范围内"
    if _within(ours, theirs):
        return f"适用区域：{scope} — 位于贵单位覆盖的 {cover} 之内"
    return f"适用区域：{scope} — 与贵单位覆盖的 {cover} 有上下级包含关系"


def _reason_line(reason: Reason) -> str:
    dim = reason.dimension
    if reason.applies_to_all:
        if dim is Dimension.tags:
            return "政策标签：贵单位未限定关注标签，接收全部政策"
        return f"本政策不限{_LABELS[dim]}"
    if dim is Dimension.audiences:
        scope = _join([_AUDIENCES.get(a, a) for a in reason.scope_codes])
        kind = _join([_AUDIENCES.get(a, a) for a in reason.partner_codes])
        return f"适用对象：{scope} — 贵单位为{kind}"
    if dim is Dimension.industries:
        return _industry_line(reason)
    if dim is Dimension.regions:
        return _region_line(reason)
    if dim is Dimension.parks:
        return f"适用园区：{_join(reason.scope_codes)} — 在贵单位覆盖的园区之列"
    if dim is Dimension.scales:
        scales = _join([_scale(s) for s in reason.scope_codes])
        return f"适用规模：{scales} — 与贵单位会员企业规模相符"
    return f"政策标签：{_join(reason.scope_codes)} — 在贵单位关注的标签之列"


def explain(result: MatchResult) -> list[str]:
    """Why the partner received (or did not receive) the document, one line per dimension."""
    if result.paused:
        return ["贵单位已暂停接收政策推送"]
    if not result.matched:
        if result.refused_by is None:
            return ["本政策不适用于贵单位"]
        return [f"本政策不适用于贵单位：{_LABELS[result.refused_by]}不符"]
    lines = [_reason_line(r) for r in result.reasons]
    lines += [
        f"贵单位未登记{_UNKNOWN.get(d, _LABELS[d])}信息，请结合会员企业实际判断是否转发"
        for d in result.unknowns
    ]
    return lines
