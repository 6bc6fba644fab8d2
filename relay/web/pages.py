"""The few HTML pages of the API (the acknowledgement link, the dashboard), from jinja2."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from relay.core.rendering import TEMPLATES
from relay.web.errors import not_found

#: The pages' own scripts, styles and icons.
STATIC = TEMPLATES / "web" / "static"

#: The token is in the URL: no referrer, no caching, no framing, nothing loaded from elsewhere.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

#: The dashboard runs its own script and styles, served by the app, and talks only to it;
#: nothing inline, so an injected tag could do nothing.
DASHBOARD_HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
}

#: The dashboard's script, styles and icon: revalidated, never sniffed.
STATIC_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}

PROBLEMS = {
    401: "链接无效",
    404: "找不到该推送",
    413: "提交内容过长",
    422: "填写有误",
    429: "提交过多",
    503: "暂时无法记录",
}


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def page(
    template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    html = _environment().get_template(f"web/{template}").render(**context)
    return HTMLResponse(html, status_code=status, headers=headers or PAGE_HEADERS)


def problem(status: int, message: str, kicker: str = "政策接力 · 转发确认") -> HTMLResponse:
    """An error as a page, for people who came from an email link (``kicker``: the line
    above the heading, naming the page they were on)."""
    heading = PROBLEMS.get(status, "出错了")
    return page("problem.html.j2", status, heading=heading, message=message, kicker=kicker)


@cache
def _static(name: str) -> bytes:
    return (STATIC / name).read_bytes()


def static_file(name: str, types: Mapping[str, str], prefix: str) -> Response:
    """One of a page's own files (`types`: the only names served under `prefix`, with their
    media types); anything else is 404."""
    media_type = types.get(name)
    if media_type is None:
        raise not_found(f"{prefix}{name}")
    return Response(_static(name), media_type=media_type, headers=STATIC_HEADERS)
