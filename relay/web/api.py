"""The FastAPI application served inside the worker (``faust.contrib.asgi.serve_asgi``).

Health and metrics here; the API's routes live beside it: ``partners`` (profiles, channels,
tokens), ``deliveries`` (a partner's deliveries, acknowledgements), ``documents`` (operator),
``dashboard`` (the operator's page at ``/`` and the JSON it polls), ``partner_page`` (the
partner's page at ``/partner`` and ``/api/v1/me``), ``catalogues`` (the code catalogues
with their names, for the pages' pickers), ``docs`` (``/docs``, served offline),
``document_page`` (a document's page), ``questions``, ``registry`` (this worker's partner
registry in brief, to compare across workers).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from faust.contrib.asgi import serve_asgi
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from relay.core.logs import get_logger
from relay.core.models import DocumentEvent, Partner
from relay.core.tokens import TokenIndex
from relay.runtime.app import Runtime
from relay.web import (
    catalogues,
    dashboard,
    deliveries,
    docs,
    document_page,
    documents,
    partner_page,
    partners,
    questions,
    registry,
)
from relay.web.errors import ApiError, describe, error
from relay.web.limits import BodyLimit
from relay.web.schemas import AckForm, AckIn
from relay.web.store import PartnerStore

log = get_logger(__name__)

#: Bodies referenced by hand in /openapi.json (routes that read the raw body themselves).
EXTRA_SCHEMAS: tuple[type[BaseModel], ...] = (DocumentEvent, AckIn, AckForm, *questions.SCHEMAS)

DESCRIPTION = """\
Partner self-service and operator API of Policy Relay (DESIGN §7).

Authenticate with `Authorization: Bearer <token>`: the operator token (`RELAY_OPERATOR_TOKEN`)
or a partner token (`prt_…`, issued once when the partner is created). A partner sees only
its own data: anything else answers 404. Errors are `{"error": {"code", "message"}}`.
"""

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _openapi(api: FastAPI) -> dict[str, Any]:
    if api.openapi_schema:
        return api.openapi_schema
    schema = get_openapi(
        title=api.title,
        version=api.version,
        description=api.description,
        routes=api.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in EXTRA_SCHEMAS:
        extra = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in extra.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components[model.__name__] = extra
    api.openapi_schema = schema
    return schema


def create_api(rt: Runtime) -> FastAPI:
    # /docs is ours (relay.web.docs: served assets, strict CSP); FastAPI's loads a CDN's.
    api = FastAPI(
        title="Policy Relay",
        version="0.1.0",
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    api.state.rt = rt
    api.state.store = PartnerStore(rt)
    api.state.tokens = tokens = TokenIndex()
    api.state.lag = dashboard.LagSampler(rt)

    def index_tokens(partner_id: str, partner: Partner | None) -> None:
        tokens.update(partner_id, partner.token_hashes if partner else None)

    for pid, p in rt.registry.book.partners.items():
        index_tokens(pid, p)
    rt.registry.listeners.append(index_tokens)

    api.add_middleware(BodyLimit)
    api.openapi = lambda: _openapi(api)  # type: ignore[method-assign]

    @api.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.code, exc.message, exc.headers)

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        code = "not_json" if errors and errors[0].get("type") == "json_invalid" else None
        return error(422, code or "invalid_request", describe(errors))

    @api.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "error")
        return error(exc.status_code, code, str(exc.detail), exc.headers)

    @api.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        # Log the failure, never the request: it may carry tokens.
        log.exception("api_request_failed", method=request.method, path=request.url.path)
        return error(500, "internal_error", "internal error; the worker log has the details")

    @api.get("/healthz", tags=["operations"], responses={503: {"description": "Stalled"}})
    async def healthz() -> JSONResponse:
        """The process is up, and its consumer is not stuck (see relay/runtime/watchdog.py)."""
        stalled = rt.watchdog.stalled
        body = {
            "status": "stalled" if stalled else "ok",
            "uptime_s": round(time.time() - rt.started, 1),
            "detail": stalled,
        }
        return JSONResponse(body, status_code=503 if stalled else 200)

    @api.get("/readyz", tags=["operations"], responses={503: {"description": "Not ready"}})
    async def readyz() -> JSONResponse:
        """The registry has caught up and this worker holds partitions (listed by topic)."""
        body = {
            "ready": rt.ready,
            "partners": len(rt.registry.book.partners),
            "registry_caught_up": rt.registry.caught_up.is_set(),
            "assignment": rt.assignment(),
        }
        return JSONResponse(body, status_code=200 if rt.ready else 503)

    @api.get("/metrics", response_class=PlainTextResponse, tags=["operations"])
    async def metrics() -> Response:
        """Prometheus text exposition: step counts, gauges, delivery and match latencies."""
        await dashboard.measure_lag(api.state.lag, rt)
        return Response(rt.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    api.include_router(dashboard.page_router)
    api.include_router(docs.router)
    api.include_router(dashboard.router)
    api.include_router(documents.router)
    api.include_router(partners.router)
    api.include_router(registry.router)
    api.include_router(deliveries.partner_router)
    api.include_router(deliveries.router)
    api.include_router(catalogues.router)
    api.include_router(partner_page.page_router)
    api.include_router(partner_page.router)
    api.include_router(questions.router)
    api.include_router(document_page.router)
    return api


def install(rt: Runtime) -> None:
    if rt.settings.operator_token is None:
        log.warning("operator_api_disabled", hint="set RELAY_OPERATOR_TOKEN to enable it")
    if rt.settings.link_secret is None:
        log.warning(
            "ack_links_unsigned",
            hint="set RELAY_LINK_SECRET (the same on every worker) so email links can acknowledge",
        )
    # No access log: acknowledgement links carry their token in the query string.
    serve_asgi(
        rt.app,
        create_api(rt),
        host=rt.settings.web_host,
        port=rt.settings.web_port,
        access_log=False,
    )
