"""``GET /api/v1/me`` (whose token this is) and the partner page's own files and headers."""

from __future__ import annotations

import pytest

from tests.helpers.api import bearer, create_partner, unique
from tests.integration.conftest import ApiUnderTest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_me_names_the_partner_a_token_belongs_to(api: ApiUnderTest) -> None:
    a, b = unique("p-me-a"), unique("p-me-b")
    token_a = await create_partner(api, a, unique("tag"))
    token_b = await create_partner(api, b, unique("tag"))
    r = await api.http.get("/api/v1/me", headers=bearer(token_a))
    assert r.status_code == 200, r.text
    assert r.json() == {"kind": "partner", "partner_id": a, "name": f"{a}（测试协会）"}
    r = await api.http.get("/api/v1/me", headers=bearer(token_b))
    assert r.json()["partner_id"] == b
    r = await api.http.get("/api/v1/me", headers=api.op)
    assert r.json() == {"kind": "operator", "partner_id": None, "name": None}


async def test_me_after_a_token_rotation_refuses_the_old_token(api: ApiUnderTest) -> None:
    pid = unique("p-me-rot")
    old = await create_partner(api, pid, unique("tag"))
    r = await api.http.post(f"/api/v1/partners/{pid}/token", headers=bearer(old))
    assert r.status_code == 200, r.text
    new = r.json()["token"]
    assert (await api.http.get("/api/v1/me", headers=bearer(new))).json()["partner_id"] == pid
    r = await api.http.get("/api/v1/me", headers=bearer(old))
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    assert (await api.http.get("/api/v1/me")).status_code == 401


async def test_the_partner_page_runs_only_its_own_script_and_styles(api: ApiUnderTest) -> None:
    r = await api.http.get("/partner")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert '<script src="/partner/static/partner.js"' in r.text
    assert "<style" not in r.text and " style=" not in r.text and "onclick" not in r.text
    for name, kind in (("partner.js", "text/javascript"), ("partner.css", "text/css")):
        r = await api.http.get(f"/partner/static/{name}")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith(kind)
        assert r.headers["x-content-type-options"] == "nosniff"
    assert (await api.http.get("/partner/static/../api.py")).status_code == 404
    assert (await api.http.get("/partner/static/dashboard.html.j2")).status_code == 404
