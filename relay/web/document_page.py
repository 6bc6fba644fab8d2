"""One document's page for the operator (``GET /documents/{id}``): an HTML shell.

Like the dashboard it holds no data and no token: its script takes the operator token from
the tab's sessionStorage and reads the document's trace and questions from the API.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse

from relay.core.models.limits import ID_MAX
from relay.web import pages

router = APIRouter(tags=["operations"])


@router.get(
    "/documents/{document_id}",
    response_class=HTMLResponse,
    summary="A document's page: its funnel per version, partners, questions (operator token)",
)
async def document_page(document_id: Annotated[str, Path(max_length=ID_MAX)]) -> HTMLResponse:
    return pages.page("document.html.j2", headers=pages.DASHBOARD_HEADERS)
