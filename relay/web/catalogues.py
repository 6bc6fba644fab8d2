"""The code catalogues for the pages' pickers: every code with its Chinese name.

Read-only and the same for everyone signed in (operator or partner): the catalogues are
package data (``relay/core/matching/catalogues``), so the answer is built once.
"""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter
from pydantic import BaseModel, Field

from relay.core.matching import catalogue
from relay.web.errors import responses
from relay.web.security import Caller

router = APIRouter(prefix="/api/v1", tags=["catalogues"])

AUDIENCES = {"association": "行业协会", "park": "产业园区"}


class CatalogueEntry(BaseModel):
    code: str = Field(description="what the API takes, e.g. C39, 310118106, small")
    name: str = Field(description="its Chinese name")
    group: str | None = Field(
        default=None, description="an industry's 门类, a region's level, a tag's group"
    )


class Catalogues(BaseModel):
    """Every code the scope and coverage fields take, with its name (DESIGN §4, §5).

    Industries and regions are checked against these lists (a group or class the list
    does not name may still be valid); tags and parks are open lists of known values.
    """

    industries: list[CatalogueEntry] = Field(
        description="GB/T 4754-2017: 门类, then divisions, groups, classes (with their letter)"
    )
    regions: list[CatalogueEntry] = Field(description="上海市, its districts, 青浦区's townships")
    scales: list[CatalogueEntry]
    audiences: list[CatalogueEntry]
    tags: list[CatalogueEntry] = Field(description="the sample vocabulary; others are accepted")
    parks: list[CatalogueEntry] = Field(description="the sample parks; other ids are accepted")
    editions: dict[str, str] = Field(description="catalogue → its standard and edition")


def _industries() -> list[CatalogueEntry]:
    out = []
    for letter, section in catalogue.SECTIONS.items():
        out.append(CatalogueEntry(code=letter, name=section.name, group="门类"))
        label = f"{letter} {section.name}"
        for division in section.divisions:
            name = catalogue.DIVISIONS.get(division)
            if name is None:
                continue
            out.append(CatalogueEntry(code=letter + division, name=name, group=label))
            finer = sorted([*catalogue.GROUPS.items(), *catalogue.CLASSES.items()])
            out += [
                CatalogueEntry(code=letter + code, name=n, group=label)
                for code, n in finer
                if code.startswith(division)
            ]
    return out


LEVELS = {
    "province": "省级",
    "prefecture": "地级",
    "district": "区",
    "town": "镇",
    "subdistrict": "街道",
}


@cache
def catalogues() -> Catalogues:
    return Catalogues(
        industries=_industries(),
        regions=[
            CatalogueEntry(code=r.code, name=r.name, group=LEVELS.get(r.level, r.level))
            for r in catalogue.REGIONS.values()
        ],
        scales=[CatalogueEntry(code=s.value, name=n) for s, n in catalogue.SCALE_NAMES.items()],
        audiences=[CatalogueEntry(code=c, name=n) for c, n in AUDIENCES.items()],
        tags=[CatalogueEntry(code=t, name=t, group=g) for t, g in catalogue.TAGS.items()],
        parks=[CatalogueEntry(code=c, name=n) for c, n in catalogue.PARKS.items()],
        editions=dict(catalogue.EDITIONS),
    )


@router.get(
    "/catalogues",
    response_model=Catalogues,
    responses=responses(401),
    summary="The codes of scopes and coverage with their Chinese names (for pickers)",
)
async def get_catalogues(_: Caller) -> Catalogues:
    return catalogues()
