"""The code catalogues: sizes, names, editions, validation, and the Chinese explanations."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from relay.core.errors import UnknownCode
from relay.core.matching import catalogue
from relay.core.matching.catalogue import (
    DIVISIONS,
    REGIONS,
    SECTIONS,
    TAGS,
    check_coverage,
    check_scope,
    check_tags,
    industry_name,
    known_industry,
    known_region,
    known_tag,
    region_name,
    scale_name,
)
from relay.core.matching.codes import SECTION_DIVISIONS
from relay.core.matching.explain import dimension_label, explain
from relay.core.matching.reference import match_partner
from relay.core.models import (
    Audience,
    Coverage,
    Dimension,
    Document,
    MatchResult,
    Partner,
    Reason,
    Scale,
    Scope,
)

# -- industries ---------------------------------------------------------------------------


def test_gbt4754_has_20_sections_and_97_divisions_each_in_exactly_one_section() -> None:
    assert len(SECTIONS) == 20
    assert list(SECTIONS) == [chr(c) for c in range(ord("A"), ord("T") + 1)]
    assert len(DIVISIONS) == 97
    assert sorted(DIVISIONS) == [f"{d:02d}" for d in range(1, 98)]
    owners = [letter for s in SECTIONS.values() for letter in [s.letter] * len(s.divisions)]
    assert len(owners) == 97
    covered = [d for s in SECTIONS.values() for d in s.divisions]
    assert sorted(covered) == sorted(DIVISIONS)


def test_catalogue_sections_agree_with_the_matching_code_arithmetic() -> None:
    assert {k: (s.first, s.last) for k, s in SECTIONS.items()} == SECTION_DIVISIONS


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("A", "农、林、牧、渔业"),
        ("C", "制造业"),
        ("I", "信息传输、软件和信息技术服务业"),
        ("T", "国际组织"),
        ("01", "农业"),
        ("05", "农、林、牧、渔专业及辅助性活动"),
        ("11", "开采专业及辅助性活动"),
        ("39", "计算机、通信和其他电子设备制造业"),
        ("C39", "计算机、通信和其他电子设备制造业"),
        ("43", "金属制品、机械和设备修理业"),
        ("58", "多式联运和运输代理业"),
        ("59", "装卸搬运和仓储业"),
        ("65", "软件和信息技术服务业"),
        ("I65", "软件和信息技术服务业"),
        ("79", "土地管理业"),
        ("87", "广播、电视、电影和录音制作业"),
        ("96", "基层群众自治组织及其他组织"),
        ("97", "国际组织"),
        ("391", "计算机制造"),
        ("3911", "计算机整机制造"),
        ("C3911", "计算机整机制造"),
        ("3973", "集成电路制造"),
        ("6520", "集成电路设计"),
        ("0111", "稻谷种植"),
    ],
)
def test_industry_names_come_from_the_catalogue(code: str, name: str) -> None:
    assert industry_name(code) == name


@pytest.mark.parametrize(
    ("code", "known", "name"),
    [
        ("3919", True, "其他计算机制造"),
        ("3910", True, None),  # a class the catalogue does not list, under a real division
        ("A3911", False, None),  # wrong section letter for division 39
        ("I3911", False, None),
        ("98", False, None),
        ("00", False, None),
        ("U", False, None),
    ],
)
def test_industry_codes_are_known_when_their_division_exists_under_their_letter(
    code: str, known: bool, name: str | None
) -> None:
    assert known_industry(code) is known
    assert industry_name(code) == name


# -- regions ------------------------------------------------------------------------------


def test_region_catalogue_holds_shanghai_its_16_districts_and_qingpus_11_townships() -> None:
    districts = [r for r in REGIONS.values() if r.level == "district"]
    assert len(districts) == 16
    assert all(r.code.startswith("3101") for r in districts)
    towns = [r for r in REGIONS.values() if r.code.startswith("310118") and len(r.code) == 9]
    assert len(towns) == 11
    assert {r.name for r in towns} >= {"徐泾镇", "华新镇", "夏阳街道", "白鹤镇"}
    # the two codes the research verified are marked so
    assert REGIONS["310118106"].verified and REGIONS["310118107"].verified


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("310000", "上海市"),
        ("310118", "青浦区"),
        ("310115", "浦东新区"),
        ("310151", "崇明区"),
        ("310118106", "徐泾镇"),
        ("310118106000", "徐泾镇"),
        ("310118107", "华新镇"),
        ("310118000", "青浦区"),
        ("310118106001", None),
        ("310118108", None),
        ("320000", None),
    ],
)
def test_region_names(code: str, name: str | None) -> None:
    assert region_name(code) == name


@pytest.mark.parametrize(
    ("code", "known"),
    [
        ("310000", True),
        ("310100", True),
        ("310118", True),
        ("310118106", True),
        ("310118106000", True),
        ("310118106001", True),  # a 村/居委会 under a listed township
        ("310118108", False),  # 青浦区 lists all its townships; 108 is not one
        ("310115125", True),  # other districts: townships are not listed, so accepted
        ("310115000001", False),  # a village code needs a township
        ("310100001", False),  # townships sit under districts, not 市辖区
        ("310102", False),  # 南市区, merged away long ago
        ("320000", False),  # outside the catalogue
        ("31011810", False),
    ],
)
def test_region_codes_are_judged_by_the_documented_rules(code: str, known: bool) -> None:
    assert known_region(code) is known


# -- validation with field paths ----------------------------------------------------------


def test_check_scope_accepts_the_seed_scope() -> None:
    check_scope(Scope(industries=["C39", "3911", "I"], regions=["310118106", "310000"]))


@pytest.mark.parametrize(
    ("scope", "field", "code"),
    [
        (Scope(industries=["C39", "98"]), "document.scope.industries[1]", "98"),
        (Scope(industries=["A3911"]), "document.scope.industries[0]", "A3911"),
        (Scope(regions=["320000"]), "document.scope.regions[0]", "320000"),
        (Scope(regions=["310118106", "310118108"]), "document.scope.regions[1]", "310118108"),
    ],
)
def test_check_scope_names_the_field_and_the_code(scope: Scope, field: str, code: str) -> None:
    with pytest.raises(UnknownCode) as caught:
        check_scope(scope)
    assert (caught.value.field, caught.value.code) == (field, code)
    assert field in str(caught.value) and code in str(caught.value)


def test_check_coverage_names_the_partner_field() -> None:
    with pytest.raises(UnknownCode) as caught:
        check_coverage(Coverage(industries=["C39"], regions=["310000", "999999"]))
    assert caught.value.field == "partner.coverage.regions[1]"
    with pytest.raises(UnknownCode) as caught:
        check_coverage(Coverage(industries=["00"]), at="coverage")
    assert (caught.value.field, caught.value.code) == ("coverage.industries[0]", "00")


def test_unknown_tags_are_reported_but_never_rejected() -> None:
    required = [
        "政务公开", "科技创新", "产业发展", "集成电路", "人工智能", "中小企业", "稳增长",
        "就业创业", "营商环境", "财政补贴", "人才", "节能环保", "数字化转型", "安全生产",
    ]  # fmt: skip
    assert all(known_tag(t) for t in required)
    assert set(required) <= set(TAGS)
    assert not known_tag("低空经济")
    assert check_tags(["政务公开", "低空经济"]) == [("document.tags[1]", "低空经济")]
    assert check_tags(required) == []


@pytest.mark.parametrize(
    ("scale", "name"),
    [(Scale.large, "大型"), (Scale.medium, "中型"), (Scale.small, "小型"), ("micro", "微型")],
)
def test_scale_names(scale: Scale | str, name: str) -> None:
    assert scale_name(scale) == name


def test_every_catalogue_file_records_its_source_and_edition() -> None:
    folder = resources.files("relay.core.matching").joinpath("catalogues")
    files = sorted(p.name for p in folder.iterdir() if p.name.endswith(".json"))
    assert files == [
        "gbt4754_2017.json",
        "parks.json",
        "regions_shanghai.json",
        "scales.json",
        "tags.json",
    ]
    for name in files:
        data = json.loads(folder.joinpath(name).read_text("utf-8"))
        assert data["source"].strip() and data["edition"].strip() and data["standard"].strip()
    assert "GB/T 4754-2017" in catalogue.EDITIONS["industries"]
    assert "300号" in catalogue.EDITIONS["scales"]
    assert "sample" in catalogue.EDITIONS["tags"]
    assert "sample" in catalogue.EDITIONS["parks"]


# -- explanations -------------------------------------------------------------------------


def _doc(**scope: object) -> Document:
    return Document.model_validate(
        {
            "id": "QE5320000-2023-01",
            "version": 1,
            "doc_number": "徐府〔2023〕32号",
            "title": "关于徐泾镇2023年政务公开工作要点",
            "issuer": "上海市青浦区徐泾镇人民政府",
            "published_on": "2023-06-07",
            "url": "https://example.gov.cn/xxgk/QE5320000-2023-01.html",
            "tags": ["集成电路"],
            "scope": scope,
        }
    )


def _partner(**coverage: object) -> Partner:
    return Partner.model_validate(
        {"id": "xujing-ic", "kind": "association", "name": "示例协会", "coverage": coverage}
    )


def test_dimension_labels_are_chinese() -> None:
    assert [dimension_label(d) for d in Dimension] == [
        "对象",
        "行业",
        "区域",
        "园区",
        "规模",
        "标签",
    ]


def test_explain_names_codes_and_says_they_are_on_one_branch() -> None:
    result = match_partner(
        _doc(industries=["C39"], regions=["310118106"]),
        _partner(industries=["3911"], regions=["310118106"]),
    )
    assert explain(result) == [
        "本政策不限对象",
        "适用行业：C39 计算机、通信和其他电子设备制造业"
        " — 与贵单位覆盖的 3911 计算机整机制造 同属一支",
        "适用区域：310118106 徐泾镇",
        "本政策不限园区",
        "本政策不限规模",
        "政策标签：贵单位未限定关注标签，接收全部政策",
    ]


def test_explain_says_which_region_contains_which_and_shows_unnamed_codes_bare() -> None:
    lines = explain(
        match_partner(
            _doc(audiences=["association"], industries=["3910"], regions=["310118106"]),
            _partner(industries=["C39"], regions=["310118"]),
        )
    )
    assert "适用对象：行业协会 — 贵单位为行业协会" in lines
    assert "适用行业：3910 — 与贵单位覆盖的 C39 计算机、通信和其他电子设备制造业 同属一支" in lines
    assert "适用区域：310118106 徐泾镇 — 位于贵单位覆盖的 310118 青浦区 之内" in lines
    lines = explain(match_partner(_doc(regions=["310000"]), _partner(regions=["310118106"])))
    assert "适用区域：310000 上海市 — 贵单位覆盖的 310118106 徐泾镇 在此范围内" in lines


def test_every_reason_addresses_an_association_or_a_park_as_such() -> None:
    result = match_partner(
        _doc(audiences=["association"], industries=["3910"], regions=["310118106"]),
        _partner(industries=["C39"], regions=["310118"]),
    )
    lines = explain(result, kind="association")
    assert "适用对象：行业协会 — 贵协会为行业协会" in lines
    assert "适用区域：310118106 徐泾镇 — 位于贵协会覆盖的 310118 青浦区 之内" in lines
    assert not any("贵单位" in line for line in lines)
    park = explain(
        match_partner(_doc(regions=["310000"]), _partner(regions=["310118106"])), kind="park"
    )
    assert "适用区域：310000 上海市 — 贵园区覆盖的 310118106 徐泾镇 在此范围内" in park
    assert not any("贵单位" in line for line in park)


def test_explain_asks_the_partner_to_judge_unknown_dimensions() -> None:
    lines = explain(match_partner(_doc(scales=["small", "micro"], industries=["C39"]), _partner()))
    assert lines[-2:] == [
        "贵单位未登记行业信息，请结合企业实际判断是否转发",
        "贵单位未登记规模信息，请结合企业实际判断是否转发",
    ]
    lines = explain(
        match_partner(_doc(scales=["small", "micro"]), _partner(scales=["micro", "medium"])),
        kind=Audience.association,
    )
    assert "适用规模：小型、微型 — 与贵协会会员企业规模相符" not in lines
    assert "适用规模：微型 — 与贵协会会员企业规模相符" in lines


def test_an_unknown_dimension_names_what_the_policy_itself_targets() -> None:
    doc = _doc(scales=["medium", "small", "micro"], industries=["C39"])
    lines = explain(match_partner(doc, _partner()), doc, Audience.association)
    assert lines[-2:] == [
        "本政策适用行业：C39 计算机、通信和其他电子设备制造业；"
        "贵协会未登记行业信息，请结合会员企业实际判断是否转发",
        "本政策适用规模：中型企业、小型企业、微型企业；"
        "贵协会未登记规模信息，请结合会员企业实际判断是否转发",
    ]


def test_a_park_is_addressed_as_a_park_with_resident_enterprises() -> None:
    doc = _doc(scales=["small", "micro"], industries=["C39"])
    park = Partner.model_validate(
        {"id": "xujing-park", "kind": "park", "name": "示例园区", "coverage": {"scales": ["micro"]}}
    )
    lines = explain(match_partner(doc, park), doc, Audience.park)
    assert "适用规模：微型 — 与贵园区入驻企业规模相符" in lines
    assert lines[-1] == (
        "本政策适用行业：C39 计算机、通信和其他电子设备制造业；"
        "贵园区未登记行业信息，请结合入驻企业实际判断是否转发"
    )
    assert not any("会员" in line or "贵协会" in line for line in lines)


def test_explain_covers_parks_tags_refusals_and_pauses() -> None:
    reasons = [
        Reason(dimension=Dimension.parks, scope_codes=["徐泾园区"], partner_codes=["徐泾园区"]),
        Reason(dimension=Dimension.tags, scope_codes=["集成电路"], partner_codes=["集成电路"]),
    ]
    assert explain(MatchResult(matched=True, reasons=reasons)) == [
        "适用园区：徐泾园区 — 在贵单位覆盖的园区之列",
        "政策标签：集成电路 — 在贵单位关注的标签之列",
    ]
    assert explain(MatchResult(matched=False, refused_by=Dimension.regions)) == [
        "本政策不适用于贵单位：区域不符"
    ]
    assert explain(MatchResult(matched=False, paused=True)) == ["贵单位已暂停接收政策推送"]
