"""The code catalogues (industries, regions, parks, scales, tags): names and validation.

The data lives in ``relay/core/matching/catalogues/*.json``; each file records its standard, edition
and source. What validation accepts:

- **Industries** (GB/T 4754-2017): a section letter ``A``–``T``; a division that exists
  (``01``–``97``); a 3-digit group or 4-digit class whose division exists (the catalogue names
  only some of the 473 groups and 1,382 classes, so it cannot reject an unlisted one). A code
  may carry its section letter in front, but it must be the right one: ``C3911`` is fine,
  ``A3911`` is rejected.
- **Regions**: the catalogue covers 上海市 only, so any code outside ``31`` is rejected.

  - A 6-digit code must be listed (310000, 310100 and the 16 districts).
  - A 9-digit township code under a district whose townships are all listed
    (``towns_complete_for``: 青浦区 310118) must be listed.
  - Under the other districts we hold no township list. There a township code is accepted when
    its 3-digit part is not ``000``, rather than rejecting every partner in, say, 浦东新区
    who names its 街道.
  - A 12-digit code (NBS 统计用区划代码) is judged by its first 9 digits. Its last 3 digits
    (村/居委会) are not checked, and ``000`` means the township itself.
  - Trailing ``000`` groups count as absent: ``310118000`` is 青浦区 and
    ``310118106000`` is 徐泾镇.
- **Scales** are the four tiers of 工信部联企业〔2011〕300号. The models already reject
  anything else.
- **Tags** are an open vocabulary, because the city's tag catalogue keeps growing. Unknown tags
  are never rejected: ``known_tag`` and ``check_tags`` only report them.
- **Parks** are open too: ids the relay's users make up. The catalogue names the samples' parks
  (``park_name``), so a page can show 徐泾镇科创园 rather than ``xujing-sci-tech-park``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from relay.core.errors import UnknownCode
from relay.core.matching.codes import region_prefix
from relay.core.models import Coverage, Scale, Scope

_INDUSTRY = re.compile(r"^([A-T]?)(\d{2,4})$")
_REGION = re.compile(r"^\d{6}(?:\d{3}){0,2}$")


@dataclass(frozen=True, slots=True)
class Section:
    """A GB/T 4754-2017 section (门类) and the divisions it covers."""

    letter: str
    name: str
    first: int
    last: int

    @property
    def divisions(self) -> tuple[str, ...]:
        return tuple(f"{d:02d}" for d in range(self.first, self.last + 1))


@dataclass(frozen=True, slots=True)
class Region:
    """One administrative division; ``verified`` is False when the code is from knowledge only."""

    code: str
    name: str
    level: str
    verified: bool


def _load(name: str) -> dict[str, Any]:
    text = resources.files("relay.core.matching").joinpath("catalogues", name).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _edition(data: Mapping[str, Any]) -> str:
    return f"{data['standard']} — {data['edition']}"


_industries = _load("gbt4754_2017.json")
_regions = _load("regions_shanghai.json")
_scales = _load("scales.json")
_tags = _load("tags.json")
_parks = _load("parks.json")

#: Standard and edition of each catalogue, for "which codes are these" questions.
EDITIONS: Mapping[str, str] = MappingProxyType(
    {d["catalogue"]: _edition(d) for d in (_industries, _regions, _parks, _scales, _tags)}
)

SECTIONS: Mapping[str, Section] = MappingProxyType(
    {
        letter: Section(letter, s["name"], s["divisions"][0], s["divisions"][1])
        for letter, s in _industries["sections"].items()
    }
)
DIVISIONS: Mapping[str, str] = MappingProxyType(dict(_industries["divisions"]))
#: Only the groups and classes the catalogue names (a partial list, see the JSON's source).
GROUPS: Mapping[str, str] = MappingProxyType(dict(_industries["groups"]))
CLASSES: Mapping[str, str] = MappingProxyType(dict(_industries["classes"]))
_SECTION_OF_DIVISION = {d: s.letter for s in SECTIONS.values() for d in s.divisions}

REGIONS: Mapping[str, Region] = MappingProxyType(
    {
        e["code"]: Region(e["code"], e["name"], e["level"], e["verified"])
        for e in _regions["entries"]
    }
)
_REGION_BY_PREFIX = {region_prefix(code): r for code, r in REGIONS.items()}
_TOWNS_COMPLETE = frozenset(_regions["towns_complete_for"])

SCALE_NAMES: Mapping[Scale, str] = MappingProxyType(
    {Scale(k): v for k, v in _scales["scales"].items()}
)

#: Park id → its name, for the parks the catalogue lists (an open vocabulary).
PARKS: Mapping[str, str] = MappingProxyType(dict(_parks["parks"]))

#: Tag → its group in the sample vocabulary.
TAGS: Mapping[str, str] = MappingProxyType(
    {tag: group for group, tags in _tags["groups"].items() for tag in tags}
)


def _split_industry(code: str) -> tuple[str, str] | None:
    """``C3911`` → ``("C", "3911")``; None when it is not letter-plus-digits."""
    m = _INDUSTRY.match(code.strip().upper())
    return (m.group(1), m.group(2)) if m else None


@lru_cache(maxsize=4096)
def known_industry(code: str) -> bool:
    """Whether an industry code is acceptable (see the module docstring)."""
    code = code.strip().upper()
    if code in SECTIONS:
        return True
    parts = _split_industry(code)
    if parts is None:
        return False
    letter, digits = parts
    section = _SECTION_OF_DIVISION.get(digits[:2])
    if section is None:
        return False
    return not letter or letter == section


def industry_name(code: str) -> str | None:
    """The Chinese name of a section, division, or listed group/class; None if not named."""
    code = code.strip().upper()
    if code in SECTIONS:
        return SECTIONS[code].name
    if not known_industry(code):
        return None
    parts = _split_industry(code)
    assert parts is not None  # known_industry accepted it
    digits = parts[1]
    table = {2: DIVISIONS, 3: GROUPS, 4: CLASSES}[len(digits)]
    return table.get(digits)


def _region_parts(code: str) -> tuple[str, str, str]:
    """``310118106001`` → ``("310118", "106", "001")``; missing groups are ``"000"``."""
    code = code.strip()
    return code[:6], code[6:9] or "000", code[9:12] or "000"


@lru_cache(maxsize=4096)
def known_region(code: str) -> bool:
    """Whether a region code is acceptable (see the module docstring for the rules)."""
    code = code.strip()
    if not _REGION.match(code):
        return False
    county, town, village = _region_parts(code)
    entry = REGIONS.get(county)
    if entry is None:
        return False
    if town == "000":
        return village == "000"
    if entry.level != "district":
        return False
    if county in _TOWNS_COMPLETE:
        return county + town in REGIONS
    return True


def region_name(code: str) -> str | None:
    """The Chinese name of a listed region (``310118106000`` → 徐泾镇); None if not listed."""
    code = code.strip()
    if not _REGION.match(code):
        return None
    entry = _REGION_BY_PREFIX.get(region_prefix(code))
    return entry.name if entry else None


def scale_name(scale: Scale | str) -> str:
    """大型 / 中型 / 小型 / 微型."""
    return SCALE_NAMES[Scale(scale)]


def park_name(park: str) -> str | None:
    """The name of a listed park (``xujing-sci-tech-park`` → 徐泾镇科创园); None if not listed."""
    return PARKS.get(park.strip())


def known_tag(tag: str) -> bool:
    """Whether a tag is in the sample vocabulary (unknown tags are still accepted)."""
    return tag.strip() in TAGS


def _check_industries(codes: Iterable[str], at: str) -> None:
    for i, code in enumerate(codes):
        if not known_industry(code):
            raise UnknownCode(f"{at}.industries[{i}]", code)


def _check_regions(codes: Iterable[str], at: str) -> None:
    for i, code in enumerate(codes):
        if not known_region(code):
            raise UnknownCode(f"{at}.regions[{i}]", code)


def check_scope(scope: Scope, *, at: str = "document.scope") -> None:
    """Raise ``UnknownCode`` naming the first industry or region code not in the catalogues."""
    _check_industries(scope.industries, at)
    _check_regions(scope.regions, at)


def check_coverage(coverage: Coverage, *, at: str = "partner.coverage") -> None:
    """Raise ``UnknownCode`` naming the first industry or region code not in the catalogues."""
    _check_industries(coverage.industries, at)
    _check_regions(coverage.regions, at)


def check_tags(tags: Iterable[str], *, at: str = "document.tags") -> list[tuple[str, str]]:
    """The ``(field, tag)`` pairs not in the vocabulary, to log; never raises (open vocabulary)."""
    return [(f"{at}[{i}]", tag) for i, tag in enumerate(tags) if not known_tag(tag)]
