"""The operator dashboard's JSON, its document list, and the page and files it is made of."""

from __future__ import annotations

from typing import Any

import pytest

from relay.core.models import DeliveryStatus
from tests.helpers.api import bearer, create_partner, event, eventually, hook, publish, unique
from tests.helpers.receivers import respond
from tests.integration.conftest import ApiUnderTest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

STATUSES = {s.value for s in DeliveryStatus}


async def dashboard(api: ApiUnderTest, **params: Any) -> dict[str, Any]:
    r = await api.http.get("/api/v1/dashboard", params=params, headers=api.op)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def failing_hook(api: ApiUnderTest, name: str) -> dict[str, Any]:
    """A webhook whose receiver refuses with 400: the delivery fails at once, dead-lettered."""
    path, channel = hook(api, name)
    if not isinstance(api.hooks.behaviour, dict):
        api.hooks.behaviour = {}
    api.hooks.behaviour[path] = respond(400, body="no thanks")
    return channel


async def test_the_dashboard_shows_a_documents_funnel_throughput_lag_and_failures(
    api: ApiUnderTest,
) -> None:
    tag = unique("tag")
    ok, bad = unique("p-dash-ok"), unique("p-dash-bad")
    await create_partner(api, ok, tag, [hook(api, ok)[1]])
    await create_partner(api, bad, tag, [failing_hook(api, bad)])
    ev = event(unique("DOC-DASH"), tag, title="看板测试：接力漏斗")
    doc_id = ev["document"]["id"]
    await publish(api, ev)

    async def settled() -> dict[str, Any] | None:
        body = await dashboard(api)
        mine = [d for d in body["documents"] if d["document_id"] == doc_id]
        if not mine:
            return None
        by_status = mine[0]["funnel"]["deliveries_by_status"]
        done = by_status["delivered"] == 1 and by_status["failed"] == 1
        return body if done and body["lag"]["status"] == "ok" else None

    body = await eventually(settled)
    (doc,) = [d for d in body["documents"] if d["document_id"] == doc_id]
    assert doc["title"] == "看板测试：接力漏斗" and doc["version"] == 1
    assert doc["last_event"] == "document.matched" and doc["rejected_reason"] is None
    funnel = doc["funnel"]
    assert funnel["partners_matched"] == 2 and funnel["notifications"] == 2
    assert funnel["deliveries"] == 2
    assert funnel["deliveries_by_status"] == {
        **dict.fromkeys(STATUSES, 0),
        "delivered": 1,
        "failed": 1,
    }
    assert funnel["notifications_acknowledged"] == 0 and funnel["enterprises_reached"] == 0
    assert funnel["notifications_delivered"] == 1
    assert [v["version"] for v in doc["versions"]] == [1]
    assert doc["versions"][0]["funnel"] == funnel

    # The plain figures cover every document: at least this one's.
    ov = body["overview"]
    assert ov["notifications"] >= 2 and ov["notifications_delivered"] >= 1
    assert ov["documents"] >= 1 and ov["failed"] == body["dead_letters"]

    # Across every document: counts by status, dead letters, a rolling delivery rate.
    assert set(body["deliveries_by_status"]) == STATUSES
    assert body["deliveries_by_status"]["delivered"] >= 1
    dead = sum(body["deliveries_by_status"][s] for s in ("failed", "disabled", "dead"))
    assert body["dead_letters"] == dead >= 1
    rate = body["throughput"]
    assert rate["window_s"] == 60 and len(rate["delivered_per_second"]) == 60
    assert rate["delivered_per_s"] > 0 and rate["delivered_per_s_by_channel"]["webhook"] > 0
    assert rate["attempts_per_s"] >= rate["delivered_per_s"]

    # This worker holds every partition of the agents' topics, and has read them all.
    lag = {t["topic"]: t for t in body["lag"]["topics"]}
    assert {"documents.published", "relay.deliveries.webhook", "relay.retry"} <= set(lag)
    assert all(t["partitions"] >= 1 and t["lag"] >= 0 for t in lag.values())
    assert body["lag"]["total"] == sum(t["lag"] for t in lag.values())

    # The failure names the partner, the document and why.
    (failure,) = [f for f in body["failures"] if f["partner_id"] == bad]
    assert failure["document_id"] == doc_id and failure["title"] == "看板测试：接力漏斗"
    assert failure["status"] == "failed" and failure["channel_type"] == "webhook"
    assert failure["reason"] == "permanent_failure" and failure["reply_code"] == 400
    assert failure["partner_name"] == f"{bad}（测试协会）" and failure["detail"]

    assert body["worker"]["ready"] is True and body["worker"]["partners"] >= 2
    assert body["documents_total"] >= 1

    # The document list says the same, newest first, as many as asked.
    r = await api.http.get("/api/v1/documents", params={"limit": 500}, headers=api.op)
    assert r.status_code == 200, r.text
    listed = r.json()
    assert listed["total"] == len(listed["items"]) >= 1
    (same,) = [d for d in listed["items"] if d["document_id"] == doc_id]
    assert same["funnel"] == funnel
    times = [d["updated_at"] for d in listed["items"] if d["updated_at"]]
    assert times == sorted(times, reverse=True)
    r = await api.http.get("/api/v1/documents", params={"limit": 1}, headers=api.op)
    assert len(r.json()["items"]) == 1


async def test_the_document_list_names_a_limit_out_of_range(api: ApiUnderTest) -> None:
    # Partners get 403 and strangers 401 here too: tests/integration/test_api_security.py.
    for limit in (0, 501):
        r = await api.http.get("/api/v1/documents", params={"limit": limit}, headers=api.op)
        assert r.status_code == 422 and r.json()["error"]["message"].startswith("limit:")


@pytest.mark.parametrize(
    ("path", "heading", "script"),
    [("/", "工作台", "dashboard.js"), ("/documents/QE5320000-2023-01", "政策详情", "document.js")],
)
async def test_the_page_and_its_files_come_from_the_worker_under_a_strict_policy(
    api: ApiUnderTest, path: str, heading: str, script: str
) -> None:
    r = await api.http.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "connect-src 'self'" in csp
    assert r.headers["cache-control"] == "no-store" and r.headers["x-frame-options"] == "DENY"
    page = r.text
    assert heading in page and f'src="/static/{script}"' in page
    assert 'src="/static/common.js"' in page
    assert "<script>" not in page and "style=" not in page  # nothing inline
    assert "http://" not in page and "https://" not in page  # nothing from elsewhere

    for name, kind in [
        ("dashboard.js", "text/javascript"),
        ("common.js", "text/javascript"),
        ("publish.js", "text/javascript"),
        ("document.js", "text/javascript"),
        ("dashboard.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ]:
        r = await api.http.get(f"/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind), name
        assert r.headers["x-content-type-options"] == "nosniff"
    for name in ("nope.js", "..%2Fdashboard.html.j2", "dashboard.html.j2"):
        r = await api.http.get(f"/static/{name}")
        assert r.status_code == 404, name

    schema = (await api.http.get("/openapi.json")).json()
    op = schema["paths"]["/api/v1/dashboard"]["get"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DashboardOut"
    }
    assert "/api/v1/documents" in schema["paths"] and "get" in schema["paths"]["/api/v1/documents"]
    assert "post" in schema["paths"]["/api/v1/documents"]  # publishing is still there


async def test_a_document_reads_back_as_its_latest_version_for_the_operator(
    api: ApiUnderTest,
) -> None:
    tag = unique("tag")
    pid = unique("p-read")
    token = await create_partner(api, pid, tag, [hook(api, pid)[1]])
    ev = event(unique("DOC-READ"), tag, title="读回测试：第一版")
    doc_id = ev["document"]["id"]
    await publish(api, ev)
    revision = event(doc_id, tag, title="读回测试：第二版", version=2)
    revision["type"] = "document.revised"
    revision["document"]["id"] = doc_id

    async def read(version: int) -> dict[str, Any] | None:
        r = await api.http.get(f"/api/v1/documents/{doc_id}", headers=api.op)
        if r.status_code == 404:
            return None
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body if max(body["versions"]) == version else None

    first = await eventually(lambda: read(1), what="version 1 read back")
    assert first["document"]["title"] == "读回测试：第一版"
    assert first["document"]["scope"]["regions"] == ["310115"]
    await publish(api, revision)
    second = await eventually(lambda: read(2), what="version 2 read back")
    assert second["versions"] == [1, 2] and second["document"]["title"] == "读回测试：第二版"

    r = await api.http.get("/api/v1/documents/DOC-NEVER-PUBLISHED", headers=api.op)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await api.http.get(f"/api/v1/documents/{doc_id}", headers=bearer(token))
    assert r.status_code == 403
