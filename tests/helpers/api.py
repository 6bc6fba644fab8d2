"""Building blocks for the HTTP API tests: partners and documents that only meet each other.

Every API test partner covers 浦东新区 (310115) and wants one tag of its own; its documents
carry that tag and that region. The sample partners (青浦区) never match them, and they never
match the other tests' documents, so the tests sharing one worker do not see each other.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tests.integration.conftest import ApiUnderTest, renamed, sample_event

REGION = "310115"
T = TypeVar("T")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def partner_body(
    pid: str, tag: str, channels: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "id": pid,
        "kind": "association",
        "name": f"{pid}（测试协会）",
        "coverage": {"regions": [REGION]},
        "interests": {"tags_any": [tag]},
        "channels": channels or [],
    }


def event(doc_id: str, tag: str, *, title: str | None = None, **doc: Any) -> dict[str, Any]:
    out = renamed(sample_event("02-ic-industry-support.json"), doc_id)
    d = out["document"]
    d["tags"] = [tag]
    d["scope"] = {"audiences": [], "industries": [], "regions": [REGION], "parks": [], "scales": []}
    d["title"] = title or f"接口测试政策 {doc_id}"
    d.update(doc)
    return out


def hook(api: ApiUnderTest, name: str, secret: str | None = None) -> tuple[str, dict[str, Any]]:
    """A webhook channel to the verifying receiver at ``/api-hooks/<name>``; (path, channel)."""
    path = f"/api-hooks/{name}"
    secret = secret or whsec()
    api.hooks.secrets[path] = [secret]
    return path, {"type": "webhook", "url": api.hooks.url_for(path), "secret": secret}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create_partner(
    api: ApiUnderTest, pid: str, tag: str, channels: list[dict[str, Any]] | None = None
) -> str:
    """Create a partner as the operator; its token."""
    r = await api.http.post(
        "/api/v1/partners", json=partner_body(pid, tag, channels), headers=api.op
    )
    assert r.status_code == 201, r.text
    token: str = r.json()["token"]
    return token


async def publish(api: ApiUnderTest, ev: dict[str, Any]) -> dict[str, Any]:
    r = await api.http.post("/api/v1/documents", json=ev, headers=api.op)
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    return body


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    timeout: float = 30.0,
    every: float = 0.2,
    what: str | None = None,
) -> T:
    """Poll ``probe`` until it returns something truthy; fails naming what was awaited
    (``what``, or the probe's name) and what the probe last said."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = await probe()
        if got:
            return got
        if loop.time() > deadline:
            awaited = what or getattr(probe, "__name__", repr(probe))
            raise AssertionError(f"{awaited}: not after {timeout:g} s (last: {got!r})")
        await asyncio.sleep(every)


async def deliveries(api: ApiUnderTest, pid: str, token: str, n: int) -> list[dict[str, Any]]:
    """Wait until the partner sees ``n`` settled deliveries; newest first."""

    async def settled() -> list[dict[str, Any]] | None:
        r = await api.http.get(f"/api/v1/partners/{pid}/deliveries", headers=bearer(token))
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        done = [d for d in items if d["status"] in ("delivered", "failed", "dead", "disabled")]
        return items if len(done) >= n else None

    return await eventually(settled, what=f"{n} settled deliveries of {pid}")


async def trace(api: ApiUnderTest, doc_id: str) -> dict[str, Any]:
    r = await api.http.get(f"/api/v1/documents/{doc_id}/trace", headers=api.op)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def matched_trace(api: ApiUnderTest, doc_id: str) -> dict[str, Any] | None:
    """The document's trace once the match agent has planned it, else None."""
    r = await api.http.get(f"/api/v1/documents/{doc_id}/trace", headers=api.op)
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body if any(e["kind"] == "document.matched" for e in body["events"]) else None
