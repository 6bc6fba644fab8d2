"""The code catalogues as the pages' pickers need them: ``GET /api/v1/catalogues``.

Every code with its Chinese name, its level and its parent, so a page can offer 制造业 ›
计算机、通信和其他电子设备制造业 instead of asking for ``C39``. Industry codes carry their
section letter (``C39``), as the sample partners write them. Open vocabularies (parks, tags)
are marked ``open``: a code outside the list is still accepted.
"""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter
from pydantic import BaseModel, Field

from relay.core.matching import catalogue as cat
from relay.core.models import Audience
from relay.web.errors import responses
from relay.web.security import Caller

router = APIRouter(prefix="/api/v1", tags=["catalogues"])

#: Who a document is for (``scope.audiences``) and who a partner is (``kind``).
AUDIENCES = {Audience.association: "行业协会", Audience.park: "产业园区"}


class CatalogueEntry(BaseModel):
    code: str
    name: str
    level: str = Field(
        description="industries: section, division, group, class; regions: province, district, "
        "subdistrict, town; parks: park; scales: scale; tags: tag; audiences: audience"
    )
    parent: str | None = Field(default=None, description="the code one level up, if listed")
    group: str | None = Field(default=None, description="tags: the group of the vocabulary")


class Catalogue(BaseModel):
    title: str
    edition: str
    open: bool = Field(description="codes outside the list are accepted (parks, tags)")
    entries: list[CatalogueEntry]


class Catalogues(BaseModel):
    """What a partner's coverage and interests may name, with the names to show."""

    industries: Catalogue
    regions: Catalogue
    parks: Catalogue
    scales: Catalogue
    tags: Catalogue
    audiences: Catalogue


def _industries() -> list[CatalogueEntry]:
    out = []
    for section in cat.SECTIONS.values():
        out.append(CatalogueEntry(code=section.letter, name=section.name, level="section"))
        for division in section.divisions:
            name = cat.DIVISIONS.get(division)
            if name is None:
                continue
            code = section.letter + division
            out.append(
                CatalogueEntry(code=code, name=name, level="division", parent=section.letter)
            )
            for group, group_name in sorted(cat.GROUPS.items()):
                if group.startswith(division):
                    out.append(
                        CatalogueEntry(
                            code=section.letter + group, name=group_name, level="group", parent=code
                        )
                    )
            for klass, class_name in sorted(cat.CLASSES.items()):
                if klass.startswith(division):
                    parent = klass[:3] if klass[:3] in cat.GROUPS else division
                    out.append(
                        CatalogueEntry(
                            code=section.letter + klass,
                            name=class_name,
                            level="class",
                            parent=section.letter + parent,
                        )
                    )
    return out


def _regions() -> list[CatalogueEntry]:
    out = []
    for region in cat.REGIONS.values():
        if region.level == "prefecture":  # 市辖区: a statistical layer, not a choice
            continue
        if region.level == "province":
            parent = None
        elif region.level == "district":
            parent = region.code[:2] + "0000"
        else:
            parent = region.code[:6]
        out.append(
            CatalogueEntry(code=region.code, name=region.name, level=region.level, parent=parent)
        )
    return out


@cache
def catalogues() -> Catalogues:
    return Catalogues(
        industries=Catalogue(
            title="国民经济行业分类",
            edition=cat.EDITIONS["industries"],
            open=False,
            entries=_industries(),
        ),
        regions=Catalogue(
            title="行政区划", edition=cat.EDITIONS["regions"], open=False, entries=_regions()
        ),
        parks=Catalogue(
            title="园区",
            edition=cat.EDITIONS["parks"],
            open=True,
            entries=[
                CatalogueEntry(code=code, name=name, level="park")
                for code, name in cat.PARKS.items()
            ],
        ),
        scales=Catalogue(
            title="企业规模",
            edition=cat.EDITIONS["scales"],
            open=False,
            entries=[
                CatalogueEntry(code=str(scale), name=name, level="scale")
                for scale, name in cat.SCALE_NAMES.items()
            ],
        ),
        audiences=Catalogue(
            title="推送对象",
            edition="DESIGN §4",
            open=False,
            entries=[
                CatalogueEntry(code=str(a), name=AUDIENCES[a], level="audience") for a in Audience
            ],
        ),
        tags=Catalogue(
            title="政策标签",
            edition=cat.EDITIONS["tags"],
            open=True,
            entries=[
                CatalogueEntry(code=tag, name=tag, level="tag", group=group)
                for tag, group in cat.TAGS.items()
            ],
        ),
    )


@router.get(
    "/catalogues",
    response_model=Catalogues,
    responses=responses(401),
    summary="The code catalogues with their Chinese names (industries, regions, parks, scales, "
    "tags), for pickers",
)
async def get_catalogues(_: Caller) -> Catalogues:
    return catalogues()
