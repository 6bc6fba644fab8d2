"""The partner's own page at ``GET /partner``, its script and styles, and ``GET /api/v1/me``.

Like the operator dashboard, the page holds no data and no token: it asks for the partner's
token, keeps it in the tab's sessionStorage, learns from ``GET /api/v1/me`` whose it is, and
works through the partner API (profile, channels, deliveries, acknowledgements, questions).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from relay.web import pages
from relay.web.errors import responses
from relay.web.security import Caller, Rt

router = APIRouter(prefix="/api/v1", tags=["partners"])
page_router = APIRouter(tags=["operations"])

#: The only files served under /partner/static/, with their types.
STATIC_TYPES = {
    "partner.js": "text/javascript; charset=utf-8",
    "partner.css": "text/css; charset=utf-8",
}


class Me(BaseModel):
    """Whose token this is: the partner's page needs its id, which a secretary may not know."""

    kind: Literal["operator", "partner"]
    partner_id: str | None = Field(description="the partner's id (null for the operator)")
    name: str | None = Field(description="the partner's name (null for the operator)")


@router.get(
    "/me",
    response_model=Me,
    responses=responses(401),
    summary="Whose token this is: the operator, or a partner (its id and name)",
)
async def me(rt: Rt, who: Caller) -> Me:
    if who.is_operator or who.partner_id is None:
        return Me(kind="operator", partner_id=None, name=None)
    partner = rt.registry.book.get(who.partner_id)
    return Me(kind="partner", partner_id=who.partner_id, name=partner.name if partner else None)


@page_router.get(
    "/partner",
    response_class=HTMLResponse,
    summary="The partner's own page (signs in with the partner's token in the page)",
)
async def partner_page() -> HTMLResponse:
    return pages.page("partner.html.j2", headers=pages.DASHBOARD_HEADERS)


@page_router.get("/partner/static/{name}", include_in_schema=False)
async def static(name: str) -> Response:
    return pages.static_file(name, STATIC_TYPES, "/partner/static/")
