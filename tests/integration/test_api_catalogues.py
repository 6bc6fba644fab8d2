"""``GET /api/v1/catalogues``: the codes a partner may name, with their Chinese names."""

from __future__ import annotations

import pytest

from tests.helpers.api import bearer, create_partner, unique
from tests.integration.conftest import ApiUnderTest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_the_catalogues_name_every_code_for_a_partner_or_the_operator(
    api: ApiUnderTest,
) -> None:
    pid = unique("p-cat")
    token = await create_partner(api, pid, unique("tag"))
    for headers in (bearer(token), api.op):
        r = await api.http.get("/api/v1/catalogues", headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        industries = {e["code"]: e for e in body["industries"]["entries"]}
        assert industries["C39"]["name"] == "计算机、通信和其他电子设备制造业"
        assert industries["C39"]["parent"] == "C"
        regions = {e["code"]: e["name"] for e in body["regions"]["entries"]}
        assert regions["310118106"] == "徐泾镇" and regions["310115"] == "浦东新区"
        parks = {e["code"]: e["name"] for e in body["parks"]["entries"]}
        assert parks["xujing-sci-tech-park"] == "徐泾镇科创园"
        assert body["parks"]["open"] is True and body["regions"]["open"] is False
        assert [e["name"] for e in body["scales"]["entries"]] == ["大型", "中型", "小型", "微型"]
        assert "GB/T 4754-2017" in body["industries"]["edition"]


async def test_the_catalogues_need_a_token(api: ApiUnderTest) -> None:
    r = await api.http.get("/api/v1/catalogues")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    r = await api.http.get("/api/v1/catalogues", headers=bearer("prt_not-a-token"))
    assert r.status_code == 401
