"""Tenant isolation: every partner endpoint against another partner's token, and no token at all.

- another partner's data → 404, the very answer a partner that does not exist gets;
- operator endpoints with a partner token → 403;
- no token or a bad one → 401 with ``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from relay.core.tokens import link_token
from tests.helpers.api import bearer, create_partner, deliveries, event, hook, publish, unique
from tests.integration.conftest import ApiUnderTest

pytestmark = pytest.mark.integration
session_loop = pytest.mark.asyncio(loop_scope="session")

MISSING = "nobody-here"


@dataclass
class Tenants:
    a: str
    a_token: str
    a_channel: str
    a_delivery: str
    b: str
    b_token: str


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tenants(api: ApiUnderTest) -> AsyncIterator[Tenants]:
    a, b, tag = unique("tenant-a"), unique("tenant-b"), unique("tag")
    _, webhook = hook(api, a)
    a_token = await create_partner(api, a, tag, [webhook])
    b_token = await create_partner(api, b, unique("tag"), [hook(api, b)[1]])
    await publish(api, event(unique("DOC-TENANT"), tag))
    (delivery,) = await deliveries(api, a, a_token, 1)
    channel = delivery["channel_id"]
    yield Tenants(a, a_token, channel, delivery["delivery_id"], b, b_token)


def partner_requests(pid: str, cid: str) -> list[tuple[str, str, Any]]:
    """Every partner endpoint: (method, path, JSON body)."""
    base = f"/api/v1/partners/{pid}"
    return [
        ("GET", base, None),
        ("PUT", base, {"paused": True}),
        ("POST", f"{base}/token", None),
        ("GET", f"{base}/channels", None),
        ("POST", f"{base}/channels", {"type": "email", "to": ["intruder@api.example.org"]}),
        ("PUT", f"{base}/channels/{cid}", {"disabled": True}),
        ("DELETE", f"{base}/channels/{cid}", None),
        ("POST", f"{base}/channels/{cid}/rotate-secret", None),
        ("POST", f"{base}/channels/{cid}/test", None),
        ("GET", f"{base}/deliveries", None),
    ]


OPERATOR_REQUESTS: list[tuple[str, str, Any]] = [
    ("POST", "/api/v1/documents", {"event_id": "x"}),
    ("GET", "/api/v1/documents/QE5320000-2023-01/trace", None),
    ("POST", "/api/v1/partners", {"id": "x-y", "kind": "park", "name": "x"}),
    ("GET", "/api/v1/partners", None),
    ("POST", "/api/v1/dead-letters/replay", {"all": True}),
    ("GET", "/api/v1/dashboard", None),
    ("GET", "/api/v1/documents", None),
    ("GET", "/api/v1/registry", None),
]


async def call(
    api: ApiUnderTest, method: str, path: str, body: Any, headers: dict[str, str]
) -> Any:
    return await api.http.request(method, path, json=body, headers=headers)


@session_loop
async def test_another_partners_data_is_404_exactly_like_a_missing_partner(
    api: ApiUnderTest, tenants: Tenants
) -> None:
    as_b = bearer(tenants.b_token)
    attacks = partner_requests(tenants.a, tenants.a_channel)
    missing = partner_requests(MISSING, tenants.a_channel)
    for (method, path, body), (_, missing_path, _) in zip(attacks, missing, strict=True):
        r = await call(api, method, path, body, as_b)
        m = await call(api, method, missing_path, body, as_b)
        assert r.status_code == 404, (method, path, r.text)
        assert (r.json(), m.status_code) == (m.json(), 404), (method, path)

    ack = f"/api/v1/deliveries/{tenants.a_delivery}/ack"
    r = await api.http.post(ack, json={"forwarded_to": 99}, headers=as_b)
    m = await api.http.post(
        "/api/v1/deliveries/dlv_missing/ack", json={"forwarded_to": 99}, headers=as_b
    )
    assert r.status_code == m.status_code == 404 and r.json() == m.json()

    # Nothing of A changed: not paused, same channel, its token still works, no ack counted.
    a = await api.http.get(f"/api/v1/partners/{tenants.a}", headers=bearer(tenants.a_token))
    assert a.status_code == 200
    assert a.json()["paused"] is False
    assert [c["id"] for c in a.json()["channels"]] == [tenants.a_channel]
    assert a.json()["channels"][0]["has_previous_secret"] is False
    page = await api.http.get(
        f"/api/v1/partners/{tenants.a}/deliveries", headers=bearer(tenants.a_token)
    )
    assert page.json()["items"][0]["acknowledgement"] is None


@session_loop
async def test_partner_tokens_cannot_use_operator_endpoints(
    api: ApiUnderTest, tenants: Tenants
) -> None:
    for method, path, body in OPERATOR_REQUESTS:
        r = await call(api, method, path, body, bearer(tenants.a_token))
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["error"]["code"] == "forbidden"


@session_loop
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer prt_not-a-real-token"}, {"Authorization": "Basic b3A6b3A="}],
    ids=["none", "bad", "not-bearer"],
)
async def test_no_or_bad_token_is_401_everywhere(
    api: ApiUnderTest, tenants: Tenants, headers: dict[str, str]
) -> None:
    requests = partner_requests(tenants.a, tenants.a_channel) + OPERATOR_REQUESTS
    requests.append(("POST", f"/api/v1/deliveries/{tenants.a_delivery}/ack", {"forwarded_to": 1}))
    for method, path, body in requests:
        r = await call(api, method, path, body, headers)
        assert r.status_code == 401, (method, path, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["code"] == "unauthorized"


@session_loop
async def test_the_operator_may_act_on_any_partner(api: ApiUnderTest, tenants: Tenants) -> None:
    r = await api.http.get(f"/api/v1/partners/{tenants.b}/channels", headers=api.op)
    assert r.status_code == 200 and len(r.json()) == 1
    r = await api.http.get(f"/api/v1/partners/{MISSING}", headers=api.op)
    assert r.status_code == 404


@session_loop
async def test_a_link_token_opens_only_its_own_delivery(
    api: ApiUnderTest, tenants: Tenants
) -> None:
    own = link_token(api.link_secret, tenants.a_delivery)
    page = f"/api/v1/deliveries/{tenants.a_delivery}/ack"
    ok = await api.http.get(page, params={"t": own})
    assert ok.status_code == 200 and "已转发给" in ok.text
    assert ok.headers["referrer-policy"] == "no-referrer"
    for t in (
        link_token(api.link_secret, "dlv_other"),
        link_token("wrong", tenants.a_delivery),
        "",
    ):
        r = await api.http.get(page, params={"t": t})
        assert r.status_code == 401 and "链接无效" in r.text
        r = await api.http.post(page, params={"t": t}, json={"forwarded_to": 3})
        assert r.status_code == 401
    # A valid signature for a delivery that does not exist is a 404, not a 500.
    ghost = "dlv_000000000000000000000000"
    r = await api.http.get(
        f"/api/v1/deliveries/{ghost}/ack", params={"t": link_token(api.link_secret, ghost)}
    )
    assert r.status_code == 404


@session_loop
async def test_bodies_over_one_mebibyte_are_refused_with_413(api: ApiUnderTest) -> None:
    big = b'{"event_id": "' + b"x" * (1024 * 1024) + b'"}'
    r = await api.http.post(
        "/api/v1/documents", content=big, headers={**api.op, "Content-Type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


@session_loop
async def test_health_readiness_metrics_and_openapi_stay_open(api: ApiUnderTest) -> None:
    assert (await api.http.get("/healthz")).json()["status"] == "ok"
    assert (await api.http.get("/readyz")).status_code == 200
    metrics = await api.http.get("/metrics")
    assert metrics.status_code == 200 and "relay_partners" in metrics.text
    spec = (await api.http.get("/openapi.json")).json()
    assert "/api/v1/partners/{partner_id}/channels/{channel_id}/rotate-secret" in spec["paths"]
    assert "DocumentEvent" in spec["components"]["schemas"]
    assert (await api.http.get("/docs")).status_code == 200
