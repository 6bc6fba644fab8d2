"""The relay loop over HTTP: publish, deliver, acknowledge by link or token, trace the reach."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.helpers.api import (
    bearer,
    create_partner,
    deliveries,
    event,
    eventually,
    hook,
    publish,
    trace,
    unique,
)
from tests.helpers.receivers import Behaviour, accept, respond
from tests.integration.conftest import ApiUnderTest, renamed, sample_event

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


@pytest.mark.parametrize(
    ("mutate", "code", "message"),
    [
        (lambda e: e["document"].pop("title"), "invalid_event", "document.title: required"),
        (
            lambda e: e["document"].update(
                expires_on="2020-01-01", effective_from="2019-01-01", published_on="2019-01-01"
            ),
            "expired",
            "document.expires_on:",
        ),
        (
            lambda e: e["document"]["scope"].update(regions=["31011"]),
            "invalid_event",
            "document.scope.regions[0]:",
        ),
        (lambda e: e.update(type="document.deleted"), "invalid_event", "type:"),
    ],
)
async def test_publish_refuses_invalid_events_naming_the_reason_and_field(
    api: ApiUnderTest, mutate: Callable[[dict[str, Any]], object], code: str, message: str
) -> None:
    ev = event(unique("DOC-BAD"), "x")
    mutate(ev)
    r = await api.http.post("/api/v1/documents", json=ev, headers=api.op)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["message"].startswith(message), r.json()["error"]["message"]


async def test_publish_rejects_a_body_that_is_not_json(api: ApiUnderTest) -> None:
    r = await api.http.post("/api/v1/documents", content=b"{nope", headers=api.op)
    assert r.status_code == 422 and r.json()["error"]["code"] == "not_json"


async def test_a_normative_document_without_validity_is_published_with_a_warning(
    api: ApiUnderTest,
) -> None:
    ev = event(unique("DOC-NORM"), unique("tag"), normative=True, expires_on=None)
    body = await publish(api, ev)
    assert [w["code"] for w in body["warnings"]] == ["normative_without_expiry"]
    assert body["warnings"][0]["field"] == "document.expires_on"
    assert "有效期未注明" in body["warnings"][0]["message"]
    # A stated validity of five years: nothing to warn about.
    ev = event(unique("DOC-NORM"), unique("tag"), normative=True)
    start = ev["document"].get("effective_from") or ev["document"]["published_on"]
    ev["document"]["expires_on"] = f"{int(start[:4]) + 5}{start[4:]}"
    assert (await publish(api, ev))["warnings"] == []


async def test_the_acknowledgement_loop_counts_each_notice_once(api: ApiUnderTest) -> None:
    pid, tag = unique("p-ack"), unique("tag")
    path, webhook = hook(api, pid)
    email = {"type": "email", "to": [f"{pid}@api.example.org"]}
    token = await create_partner(api, pid, tag, [webhook, email])
    ev = event(unique("DOC-ACK"), tag, title="接口测试：转发确认政策")
    doc_id = ev["document"]["id"]
    accepted = await publish(api, ev)
    assert accepted["event_id"] == ev["event_id"] and accepted["document_id"] == doc_id

    items = await deliveries(api, pid, token, 2)
    assert {d["channel_type"] for d in items} == {"email", "webhook"}
    assert all(d["status"] == "delivered" and d["attempts"] for d in items)
    assert all(d["title"] == "接口测试：转发确认政策" for d in items)
    hook_delivery = next(d for d in items if d["channel_type"] == "webhook")
    mail_delivery = next(d for d in items if d["channel_type"] == "email")

    # The webhook and the email carry a signed link.
    (h,) = await api.hooks.wait_for(1, path=path)
    link = h.payload["data"]["ack_url"]
    assert urlsplit(link).path == f"/api/v1/deliveries/{h.webhook_id}/ack"
    t = parse_qs(urlsplit(link).query)["t"][0]
    mail = next(
        m
        for m in api.relay.smtp.messages
        if m["X-Relay-Delivery-Id"] == mail_delivery["delivery_id"]
    )
    body = mail.get_body(("plain",))
    assert body is not None
    mail_text = body.get_content()
    mail_link = re.search(r"http\S+/ack\?t=\w+", mail_text)
    assert mail_link is not None

    # Opening the link shows the form and records nothing (mail scanners open links).
    page = await api.http.get(urlsplit(link).path, params={"t": t})
    assert page.status_code == 200
    assert "接口测试：转发确认政策" in page.text and f"{pid}（测试协会）" in page.text
    assert 'method="post"' in page.text and 'name="forwarded_to"' in page.text
    assert (await trace(api, doc_id))["totals"]["enterprises_reached"] == 0

    # The form posts with the link token: an HTML thank-you, and the trace shows the reach.
    done = await api.http.post(
        urlsplit(link).path, data={"t": t, "forwarded_to": "30", "note": "已转会员群"}
    )
    assert done.status_code == 200 and "已记录，谢谢" in done.text
    assert "text/html" in done.headers["content-type"]
    funnel = await trace(api, doc_id)
    assert funnel["totals"]["enterprises_reached"] == 30

    # The same notice acknowledged again, through its email delivery and a partner token:
    # the count is replaced, not added.
    r = await api.http.post(
        f"/api/v1/deliveries/{mail_delivery['delivery_id']}/ack",
        json={"forwarded_to": 42, "note": "更正"},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    assert r.json()["forwarded_to"] == 42
    funnel = await trace(api, doc_id)
    (n,) = [n for n in funnel["notifications"] if n["partner_id"] == pid]
    assert funnel["totals"]["enterprises_reached"] == 42
    assert funnel["totals"]["notifications_acknowledged"] == 1
    assert n["acknowledgement"]["forwarded_to"] == 42 and n["acknowledgement"]["note"] == "更正"
    assert n["acknowledgements"] == 2
    assert {d["delivery_id"] for d in n["deliveries"]} == {
        hook_delivery["delivery_id"],
        mail_delivery["delivery_id"],
    }
    assert funnel["totals"]["deliveries_by_status"] == {"delivered": 2}
    assert n["match"]["matched"] is True and n["partner_name"] == f"{pid}（测试协会）"

    # The partner sees the acknowledgement on its deliveries, and the page shows it now.
    mine = await api.http.get(f"/api/v1/partners/{pid}/deliveries", headers=bearer(token))
    assert {d["acknowledgement"]["forwarded_to"] for d in mine.json()["items"]} == {42}
    assert "已转发给 42 家企业" in (await api.http.get(urlsplit(link).path, params={"t": t})).text


async def test_acknowledgements_refuse_bad_counts_naming_the_field(api: ApiUnderTest) -> None:
    pid, tag = unique("p-ack-bad"), unique("tag")
    token = await create_partner(api, pid, tag, [hook(api, pid)[1]])
    await publish(api, event(unique("DOC-ACK-BAD"), tag))
    (d,) = await deliveries(api, pid, token, 1)
    url = f"/api/v1/deliveries/{d['delivery_id']}/ack"
    for body, field in (
        ({"forwarded_to": -1}, "forwarded_to"),
        ({}, "forwarded_to"),
        ({"forwarded_to": 1, "extra": 1}, "extra"),
    ):
        r = await api.http.post(url, json=body, headers=bearer(token))
        assert r.status_code == 422 and r.json()["error"]["message"].startswith(f"{field}:")
    form = await api.http.post(url, data={"forwarded_to": "many"}, headers=bearer(token))
    assert form.status_code == 422 and "text/html" in form.headers["content-type"]


async def test_reach_in_the_trace_is_the_sum_over_partners(api: ApiUnderTest) -> None:
    tag = unique("tag")
    pids = [unique("p-reach") for _ in range(3)]
    tokens = [await create_partner(api, pid, tag, [hook(api, pid)[1]]) for pid in pids]
    ev = event(unique("DOC-REACH"), tag)
    await publish(api, ev)
    counts = [5, 0, 12]
    for pid, token, count in zip(pids, tokens, counts, strict=True):
        (d,) = await deliveries(api, pid, token, 1)
        r = await api.http.post(
            f"/api/v1/deliveries/{d['delivery_id']}/ack",
            json={"forwarded_to": count},
            headers=api.op,
        )
        assert r.status_code == 200
    funnel = await trace(api, ev["document"]["id"])
    assert funnel["totals"]["partners_matched"] == 3
    assert funnel["totals"]["notifications_acknowledged"] == 3
    assert funnel["totals"]["enterprises_reached"] == sum(counts)
    assert {e["kind"] for e in funnel["events"]} >= {"event.accepted", "document.matched"}


async def test_unknown_documents_have_no_trace(api: ApiUnderTest) -> None:
    r = await api.http.get(f"/api/v1/documents/{unique('NO-SUCH-DOC')}/trace", headers=api.op)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_dead_letters_are_replayed_under_the_same_delivery_id(api: ApiUnderTest) -> None:
    pid, tag = unique("p-dead"), unique("tag")
    path, webhook = hook(api, pid)
    behaviours: dict[str, Behaviour] = {}
    api.hooks.behaviour = behaviours
    # A 400 is permanent: the delivery fails at once and goes to the dead letters.
    behaviours[path] = respond(400, body="no thanks")
    token = await create_partner(api, pid, tag, [webhook])
    ev = event(unique("DOC-DEAD"), tag)
    await publish(api, ev)

    async def settled() -> dict[str, Any] | None:
        r = await api.http.get(f"/api/v1/partners/{pid}/deliveries", headers=bearer(token))
        items = r.json()["items"]
        return items[0] if items and items[0]["status"] == "failed" else None

    d = await eventually(settled)
    nothing = await api.http.post("/api/v1/dead-letters/replay", json={}, headers=api.op)
    assert nothing.status_code == 422
    behaviours[path] = accept

    async def replayed() -> dict[str, Any] | None:
        # The dead letter is written next to the audit record: it may land a moment later.
        r = await api.http.post(
            "/api/v1/dead-letters/replay", json={"partner_id": pid}, headers=api.op
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body if body["requeued"] else None

    assert await eventually(replayed) == {"requeued": 1, "delivery_ids": [d["delivery_id"]]}
    got = await api.hooks.wait_for(1, path=path, timeout=30)
    assert got[-1].webhook_id == d["delivery_id"]


async def test_the_sample_document_can_be_published_through_the_api(api: ApiUnderTest) -> None:
    ev = renamed(sample_event("01-seed-government-openness.json"), unique("DOC-SEED"))
    # Its own title: other tests count the sample's emails by subject.
    ev["document"]["title"] = "经接口发布的示例政策"
    accepted = await publish(api, ev)
    assert accepted["type"] == "document.published" and accepted["version"] == 1
    await api.relay.settle([ev["event_id"]])
