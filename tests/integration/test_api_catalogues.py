"""The catalogues behind the pages' pickers: every code with its Chinese name, for anyone
signed in, and for nobody else."""

from __future__ import annotations

import pytest

from tests.helpers.api import bearer, create_partner, unique
from tests.integration.conftest import ApiUnderTest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_the_catalogues_name_every_code_the_scope_takes(api: ApiUnderTest) -> None:
    r = await api.http.get("/api/v1/catalogues", headers=api.op)
    assert r.status_code == 200, r.text
    body = r.json()
    names = {k: {e["code"]: e["name"] for e in body[k]} for k in body if k != "editions"}
    assert names["industries"]["C"] == "制造业"
    assert names["industries"]["C39"] == "计算机、通信和其他电子设备制造业"
    assert names["regions"]["310118106"] == "徐泾镇"
    assert names["regions"]["310118"] == "青浦区"
    assert names["scales"] == {"large": "大型", "medium": "中型", "small": "小型", "micro": "微型"}
    assert names["audiences"] == {"association": "行业协会", "park": "产业园区"}
    assert "集成电路" in names["tags"]
    assert names["parks"]["qingpu-industrial-zone"] == "青浦工业园区"
    c39 = next(e for e in body["industries"] if e["code"] == "C39")
    assert c39["group"] == "C 制造业"
    assert "GB/T 4754-2017" in body["editions"]["industries"]


async def test_a_partner_reads_the_catalogues_and_nobody_else_does(api: ApiUnderTest) -> None:
    pid = unique("p-cat")
    token = await create_partner(api, pid, unique("tag"))
    r = await api.http.get("/api/v1/catalogues", headers=bearer(token))
    assert r.status_code == 200, r.text
    assert any(e["code"] == "C39" for e in r.json()["industries"])
    nobody = await api.http.get("/api/v1/catalogues")
    assert nobody.status_code == 401
    assert nobody.json()["error"]["code"] == "unauthorized"
    wrong = await api.http.get("/api/v1/catalogues", headers=bearer("prt_not-a-token"))
    assert wrong.status_code == 401
