"""The catalogues the pages' pickers offer: every code named, known, and under a listed parent."""

from __future__ import annotations

from pathlib import Path

from relay.adapters.files import load_partners
from relay.core.matching import catalogue as cat
from relay.web.catalogues import catalogues

ROOT = Path(__file__).resolve().parents[2]


def test_every_industry_and_region_offered_is_accepted_and_named_as_the_notices_name_it() -> None:
    c = catalogues()
    for e in c.industries.entries:
        assert cat.known_industry(e.code), e
        assert cat.industry_name(e.code) == e.name, e
    for e in c.regions.entries:
        assert cat.known_region(e.code), e
        assert cat.region_name(e.code) == e.name, e


def test_every_parent_is_offered_one_level_up() -> None:
    c = catalogues()
    for catalogue in (c.industries, c.regions):
        codes = {e.code: e for e in catalogue.entries}
        for e in catalogue.entries:
            if e.parent is not None:
                assert e.parent in codes, e
                assert e.code.startswith(e.parent.rstrip("0") or e.parent), e
    levels = {e.code: e.level for e in c.industries.entries}
    assert levels["C"] == "section" and levels["C39"] == "division"
    assert levels["C391"] == "group" and levels["C3911"] == "class"
    parents = {e.code: e.parent for e in c.regions.entries}
    assert parents["310118"] == "310000" and parents["310118106"] == "310118"
    assert "310100" not in parents  # 市辖区 is not a choice


def test_scales_and_the_open_vocabularies() -> None:
    c = catalogues()
    assert [(e.code, e.name) for e in c.scales.entries] == [
        ("large", "大型"),
        ("medium", "中型"),
        ("small", "小型"),
        ("micro", "微型"),
    ]
    assert c.tags.open and c.parks.open and not c.industries.open and not c.regions.open
    tags = {e.code: e.group for e in c.tags.entries}
    assert tags["集成电路"] == "科技"


def test_every_park_of_the_sample_partners_has_a_name() -> None:
    parks = {e.code: e.name for e in catalogues().parks.entries}
    for path in ("partners.yaml", "partners-joining.yaml"):
        for p in load_partners(ROOT / "config" / path):
            for park in p.coverage.parks:
                assert parks.get(park), f"{p.id}: park {park!r} has no name in parks.json"
    assert cat.park_name("xujing-sci-tech-park") == "徐泾镇科创园"
    assert cat.park_name("somewhere-else") is None


def test_the_audiences_are_every_kind_of_partner_with_its_name() -> None:
    from relay.core.models import Audience

    c = catalogues()
    assert {e.code for e in c.audiences.entries} == {str(a) for a in Audience}
    assert {e.code: e.name for e in c.audiences.entries}["park"] == "产业园区"
    assert not c.audiences.open
