"""What a revision changed, field by field, computed from the two versions; pure.

The publisher's ``changes`` note says what it meant to change; this says what did: a
moved 施行日期 or a newly added 政策解读 is listed even when the note forgets it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from relay.core.matching.explain import scope_values
from relay.core.models import Dimension, Document, FieldChange
from relay.core.models.limits import CHANGE_VALUE_MAX, cut_clean


def cn_date_or_none(value: date | None) -> str | None:
    if value is None:
        return None
    return f"{value.year}年{value.month}月{value.day}日"


def _validity(doc: Document) -> str:
    if doc.expires_on is None:
        return "有效期未注明，以原文为准"
    return f"有效期至{cn_date_or_none(doc.expires_on)}"


def _scope(dim: Dimension) -> Callable[[Document], str | None]:
    def read(doc: Document) -> str | None:
        codes = [str(c) for c in getattr(doc.scope, dim.value)]
        return scope_values(dim, codes) if codes else "不限"

    return read


def _contact(doc: Document) -> str | None:
    c = doc.contact
    if c is None:
        return None
    return "，".join(x for x in (c.unit, c.phone, c.email) if x)


#: (field, label, how a notice shows the field's value), in the order a notice lists them.
FIELDS: tuple[tuple[str, str, Callable[[Document], str | None]], ...] = (
    ("title", "标题", lambda d: d.title),
    ("doc_number", "发文字号", lambda d: d.doc_number),
    ("issuer", "发文机关", lambda d: d.issuer),
    ("scope.audiences", "适用对象", _scope(Dimension.audiences)),
    ("scope.industries", "适用行业", _scope(Dimension.industries)),
    ("scope.regions", "适用区域", _scope(Dimension.regions)),
    ("scope.parks", "适用园区", _scope(Dimension.parks)),
    ("scope.scales", "适用规模", _scope(Dimension.scales)),
    ("published_on", "发布日期", lambda d: cn_date_or_none(d.published_on)),
    ("effective_from", "施行日期", lambda d: cn_date_or_none(d.effective_from)),
    ("expires_on", "有效期", _validity),
    ("normative", "文件性质", lambda d: "规范性文件" if d.normative else "非规范性文件"),
    ("url", "原文链接", lambda d: d.url),
    ("interpretation_url", "政策解读", lambda d: d.interpretation_url),
    ("summary", "内容摘要", lambda d: d.summary.strip() or None),
    ("tags", "政策标签", lambda d: "、".join(d.tags) or None),
    ("contact", "联系方式", _contact),
)


def _cut(value: str | None) -> str | None:
    """A value as a change shows it: one line, at most CHANGE_VALUE_MAX characters."""
    if value is None:
        return None
    return cut_clean(" ".join(value.split()), CHANGE_VALUE_MAX)


def compute_changes(before: Document, after: Document) -> list[FieldChange]:
    """The fields that differ between two versions of one document, old → new.

    Values are compared whole and shown cut (a long summary that changed near its end
    shows the same start on both sides: the notice says to read the original).
    """
    changes = []
    for field, label, read in FIELDS:
        old, new = read(before), read(after)
        if old != new:
            changes.append(FieldChange(field=field, label=label, before=_cut(old), after=_cut(new)))
    return changes
