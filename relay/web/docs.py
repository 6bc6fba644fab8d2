"""The API's interactive docs at ``/docs``: Swagger UI served by the worker itself.

Swagger UI is vendored from npm (``templates/web/static/swagger-ui``, with its licence and a
note of its version and source), so the docs work without internet; the page is started by
a served script (``docs.js``), so its Content-Security-Policy allows no inline script and
nothing from elsewhere. FastAPI's own ``/docs`` and ``/redoc`` (a CDN's scripts, an inline
one) are switched off in ``relay.web.api``.
"""

from __future__ import annotations

import hashlib
from functools import cache

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from relay.web import pages
from relay.web.errors import not_found

SWAGGER_UI_VERSION = "5.35.0"
STATIC = pages.STATIC
ASSETS = "/docs/static"

#: The only files served under /docs/static/: their place under STATIC and their types.
FILES = {
    "swagger-ui-bundle.js": ("swagger-ui/swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "swagger-ui.css": ("swagger-ui/swagger-ui.css", "text/css; charset=utf-8"),
    "LICENSE": ("swagger-ui/LICENSE", "text/plain; charset=utf-8"),
    "NOTICE": ("swagger-ui/NOTICE", "text/plain; charset=utf-8"),
    "docs.js": ("docs.js", "text/javascript; charset=utf-8"),
    "docs.css": ("docs.css", "text/css; charset=utf-8"),
}

#: Scripts and styles only from the worker, no inline script; Swagger UI's icons are data:
#: images in its stylesheet; "Try it out" talks only to this API.
DOCS_HEADERS = {
    **pages.PAGE_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
}

router = APIRouter(include_in_schema=False)


@cache
def _asset(name: str) -> tuple[bytes, str]:
    """The file's bytes and its ETag (the bundle is large: a reload revalidates, 304)."""
    body = (STATIC / FILES[name][0]).read_bytes()
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


@router.get("/docs", response_class=HTMLResponse)
async def docs_page(request: Request) -> HTMLResponse:
    return pages.page(
        "docs.html.j2",
        headers=DOCS_HEADERS,
        title=request.app.title,
        assets=ASSETS,
        openapi_url=request.app.openapi_url,
    )


@router.get(ASSETS + "/{name}")
async def docs_asset(name: str, request: Request) -> Response:
    if name not in FILES:
        raise not_found(f"{ASSETS}/{name}")
    body, etag = _asset(name)
    headers = {**pages.STATIC_HEADERS, "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=FILES[name][1], headers=headers)
