"""The FastAPI application served inside the worker (``faust.contrib.asgi.serve_asgi``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from faust.contrib.asgi import serve_asgi
from starlette.exceptions import HTTPException as StarletteHTTPException

from relay.intake import field_path

if TYPE_CHECKING:
    from relay.app import Runtime


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def create_api(rt: Runtime) -> FastAPI:
    api = FastAPI(title="Policy Relay", version="0.1.0")

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if p != "body")
        return error(422, "invalid_request", f"{field_path(loc) or 'body'}: {err['msg']}")

    @api.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            404: "not_found",
            401: "unauthorized",
            403: "forbidden",
            405: "method_not_allowed",
        }.get(exc.status_code, "error")
        return error(exc.status_code, code, str(exc.detail))

    @api.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """The process is up."""
        return {"status": "ok", "uptime_s": round(time.time() - rt.started, 1)}

    @api.get("/readyz")
    async def readyz() -> JSONResponse:
        """The registry has caught up and this worker holds partitions."""
        body = {
            "ready": rt.ready,
            "partners": len(rt.registry.book.partners),
            "registry_caught_up": rt.registry.caught_up.is_set(),
        }
        return JSONResponse(body, status_code=200 if rt.ready else 503)

    @api.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> str:
        """Prometheus text exposition of the relay's counters."""
        lines = [
            "# HELP relay_events_total Relay steps by kind.",
            "# TYPE relay_events_total counter",
        ]
        for key, value in sorted(rt.counters.items()):
            lines.append(f'relay_events_total{{kind="{key}"}} {value}')
        lines += [
            "# HELP relay_partners Partners held by this worker's registry.",
            "# TYPE relay_partners gauge",
            f"relay_partners {len(rt.registry.book.partners)}",
        ]
        return "\n".join(lines) + "\n"

    return api


def install(rt: Runtime) -> None:
    serve_asgi(rt.app, create_api(rt), host=rt.settings.web_host, port=rt.settings.web_port)
