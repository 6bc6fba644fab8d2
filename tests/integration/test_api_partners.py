"""Partner self-service over real HTTP: profiles, tokens, channels, tests, secret rotation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from relay.core import tokens
from tests.helpers.api import (
    bearer,
    create_partner,
    deliveries,
    event,
    eventually,
    hook,
    matched_trace,
    partner_body,
    publish,
    unique,
)
from tests.helpers.registry import topic_fingerprint
from tests.integration.conftest import ApiUnderTest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_operator_creates_a_partner_and_gets_its_token_once(api: ApiUnderTest) -> None:
    pid, tag = unique("p-create"), unique("tag")
    path, webhook = hook(api, pid)
    body = partner_body(
        pid, tag, [webhook, {"type": "webhook", "url": api.hooks.url_for(path + "/2")}]
    )
    r = await api.http.post("/api/v1/partners", json=body, headers=api.op)
    assert r.status_code == 201, r.text
    created = r.json()
    token = created["token"]
    assert token.startswith("prt_")
    # The relay made the second channel's secret, and shows it only now.
    made = created["webhook_secrets"]
    assert len(made) == 1 and next(iter(made.values())).startswith("whsec_")

    again = await api.http.post("/api/v1/partners", json=body, headers=api.op)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"

    mine = await api.http.get(f"/api/v1/partners/{pid}", headers=bearer(token))
    assert mine.status_code == 200 and mine.json()["interests"]["tags_any"] == [tag]
    # The whole list: other tests of the session may have added over 1,000 partners.
    listed = await api.http.get("/api/v1/partners?limit=10000", headers=api.op)
    assert listed.status_code == 200
    assert pid in [p["id"] for p in listed.json()]
    # Neither tokens, nor their hashes, nor webhook secrets are ever shown again. (The
    # sample partners' 钉钉 robots show "access_token=…" with all but 4 characters cut.)
    for text in (mine.text, listed.text):
        assert "whsec_" not in text and "token_hash" not in text and token not in text
        assert tokens.hash_token(token) not in text
        assert "token" not in text.replace("access_token=…", "")


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ({"coverage": {"regions": ["31011"]}}, "invalid_request", "coverage.regions[0]:"),
        (
            {"channels": [{"type": "webhook", "url": "ftp://x"}]},
            "invalid_request",
            "channels[0].url:",
        ),
        (
            {"channels": [{"type": "email", "to": ["nobody"]}]},
            "invalid_request",
            "channels[0].to[0]:",
        ),
        (
            {"channels": [{"type": "webhook", "url": "http://[::1"}]},
            "unsafe_webhook_url",
            "channels[0].url:",
        ),
        ({"token_hashes": ["x"]}, "invalid_request", "token_hashes: unknown field"),
        ({"kind": "factory"}, "invalid_request", "kind:"),
    ],
)
async def test_invalid_partners_get_422_naming_the_field(
    api: ApiUnderTest, change: dict[str, Any], code: str, message: str
) -> None:
    body = {**partner_body(unique("p-bad"), "x"), **change}
    r = await api.http.post("/api/v1/partners", json=body, headers=api.op)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == code
    assert err["message"].startswith(message), err["message"]


async def test_put_is_seen_by_the_next_read_and_by_the_next_document(api: ApiUnderTest) -> None:
    pid, tag = unique("p-raw"), unique("tag")
    path, webhook = hook(api, pid)
    token = await create_partner(api, pid, tag, [webhook])
    who = bearer(token)

    r = await api.http.put(f"/api/v1/partners/{pid}", json={"paused": True}, headers=who)
    assert r.status_code == 200 and r.json()["paused"] is True
    # Read-after-write: the very next read sees it, and what was left out kept its value.
    got = (await api.http.get(f"/api/v1/partners/{pid}", headers=who)).json()
    assert got["paused"] is True and got["interests"]["tags_any"] == [tag]

    paused_doc = event(unique("DOC-PAUSED"), tag)
    await publish(api, paused_doc)
    matched = await eventually(
        lambda: matched_trace(api, paused_doc["document"]["id"]), what="the document matched"
    )
    assert matched["totals"]["partners_matched"] == 0
    r = await api.http.put(
        f"/api/v1/partners/{pid}", json={"paused": False, "name": "改名后的协会"}, headers=who
    )
    assert r.status_code == 200 and r.json()["name"] == "改名后的协会"
    live_doc = event(unique("DOC-LIVE"), tag)
    await publish(api, live_doc)
    items = await deliveries(api, pid, token, 1)
    assert {d["document_id"] for d in items} == {live_doc["document"]["id"]}
    arrived = await api.hooks.wait_for(1, path=path)
    assert [h.payload["data"]["document"]["id"] for h in arrived] == [live_doc["document"]["id"]]


async def test_the_registry_fingerprint_follows_each_change_as_the_partners_topic_has_it(
    api: ApiUnderTest,
) -> None:
    async def registry() -> dict[str, Any]:
        r = await api.http.get("/api/v1/registry", headers=api.op)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def matches_topic() -> dict[str, Any] | None:
        # Another test's change (a channel disabled) may land between the two reads.
        mine, topic = await registry(), await topic_fingerprint(api.relay.settings)
        return mine if mine["fingerprint"] == topic else None

    before = await eventually(matches_topic, what="the registry as the topic has it")
    pid, tag = unique("p-print"), unique("tag")
    token = await create_partner(api, pid, tag, [hook(api, pid)[1]])
    created = await eventually(matches_topic, what="the registry with the new partner")
    assert created["partners"] == before["partners"] + 1
    assert created["fingerprint"].startswith(f"{created['partners']}-")
    assert created["position"] > before["position"] and created["caught_up"] is True

    r = await api.http.put(
        f"/api/v1/partners/{pid}", json={"name": "改名的协会"}, headers=bearer(token)
    )
    assert r.status_code == 200
    renamed = await eventually(matches_topic, what="the registry with the renamed partner")
    assert renamed["partners"] == created["partners"]
    assert renamed["fingerprint"] != created["fingerprint"]
    listed = await api.http.get("/api/v1/partners", params={"limit": 10_000}, headers=api.op)
    assert len(listed.json()) == renamed["partners"]
    # Operator only: a partner's own token does not read it.
    mine = await api.http.get("/api/v1/registry", headers=bearer(token))
    assert mine.status_code == 403


async def test_put_refuses_what_it_does_not_manage(api: ApiUnderTest) -> None:
    pid = unique("p-put")
    token = await create_partner(api, pid, "x")
    for field, hint in (("channels", "/channels"), ("token_hashes", "/token"), ("id", "cannot")):
        r = await api.http.put(f"/api/v1/partners/{pid}", json={field: []}, headers=bearer(token))
        assert r.status_code == 422
        assert r.json()["error"]["message"].startswith(f"{field}: unknown field")
        assert hint in r.json()["error"]["message"]


async def test_a_new_token_revokes_the_old_one(api: ApiUnderTest) -> None:
    pid = unique("p-tok")
    old = await create_partner(api, pid, "x")
    r = await api.http.post(f"/api/v1/partners/{pid}/token", headers=bearer(old))
    assert r.status_code == 200
    new = r.json()["token"]
    assert new != old
    assert (await api.http.get(f"/api/v1/partners/{pid}", headers=bearer(new))).status_code == 200
    refused = await api.http.get(f"/api/v1/partners/{pid}", headers=bearer(old))
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"


async def test_channels_are_added_changed_listed_without_secrets_and_removed(
    api: ApiUnderTest,
) -> None:
    pid = unique("p-ch")
    token = await create_partner(api, pid, "x")
    who = bearer(token)
    base = f"/api/v1/partners/{pid}/channels"

    r = await api.http.post(
        base, json={"type": "email", "to": [f"{pid}@api.example.org"]}, headers=who
    )
    assert r.status_code == 201, r.text
    email_id = r.json()["channel"]["id"]
    r = await api.http.post(
        base, json={"type": "webhook", "id": "hook-1", "url": "http://127.0.0.1:9/x"}, headers=who
    )
    assert r.status_code == 201 and r.json()["secret"].startswith("whsec_")
    dup = await api.http.post(
        base, json={"type": "webhook", "id": "hook-1", "url": "http://127.0.0.1:9/y"}, headers=who
    )
    assert dup.status_code == 409

    r = await api.http.put(
        f"{base}/hook-1", json={"url": "http://127.0.0.1:9/z", "disabled": True}, headers=who
    )
    assert r.status_code == 200, r.text
    assert r.json()["url"] == "http://127.0.0.1:9/z" and r.json()["disabled"] is True
    secret_change = await api.http.put(f"{base}/hook-1", json={"secret": "whsec_x"}, headers=who)
    assert secret_change.status_code == 422
    assert "rotate-secret" in secret_change.json()["error"]["message"]

    listed = await api.http.get(base, headers=who)
    assert listed.status_code == 200
    assert {c["id"] for c in listed.json()} == {email_id, "hook-1"}
    assert "whsec_" not in listed.text
    assert not any("secret" in c or "previous_secret" in c for c in listed.json())

    assert (await api.http.delete(f"{base}/hook-1", headers=who)).status_code == 204
    assert (await api.http.delete(f"{base}/hook-1", headers=who)).status_code == 404
    listed = await api.http.get(base, headers=who)
    assert [c["id"] for c in listed.json()] == [email_id]


async def test_channel_test_sends_now_and_reports_the_outcome(api: ApiUnderTest) -> None:
    pid = unique("p-test")
    path, webhook = hook(api, pid)
    email = {"type": "email", "to": [f"{pid}@api.example.org"]}
    token = await create_partner(api, pid, "x", [webhook, email])
    who = bearer(token)
    channels = (await api.http.get(f"/api/v1/partners/{pid}/channels", headers=who)).json()
    by_type = {c["type"]: c["id"] for c in channels}

    r = await api.http.post(
        f"/api/v1/partners/{pid}/channels/{by_type['webhook']}/test", headers=who
    )
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["status"] == "delivered" and result["http_status"] == 200
    arrived = await api.hooks.wait_for(1, path=path)
    assert arrived[-1].webhook_id == result["delivery_id"]
    assert arrived[-1].payload["type"] == "relay.test"

    r = await api.http.post(f"/api/v1/partners/{pid}/channels/{by_type['email']}/test", headers=who)
    assert r.status_code == 200 and r.json()["status"] == "delivered", r.text
    mails = [
        m for m in api.relay.smtp.messages if m["X-Relay-Delivery-Id"] == r.json()["delivery_id"]
    ]
    assert len(mails) == 1 and mails[0]["To"] == f"{pid}@api.example.org"

    # A receiver that refuses says so in the result, without a 5xx from the API.
    api.hooks.secrets[path] = ["whsec_" + "A" * 43]  # the receiver now expects another key
    r = await api.http.post(
        f"/api/v1/partners/{pid}/channels/{by_type['webhook']}/test", headers=who
    )
    assert r.status_code == 200
    assert r.json()["status"] == "failed" and r.json()["http_status"] == 401


async def test_rotated_secret_signs_alongside_the_old_one_on_a_real_delivery(
    api: ApiUnderTest,
) -> None:
    pid, tag = unique("p-rot"), unique("tag")
    path, webhook = hook(api, pid)
    old = webhook["secret"]
    token = await create_partner(api, pid, tag, [webhook])
    who = bearer(token)
    channel_id = (await api.http.get(f"/api/v1/partners/{pid}/channels", headers=who)).json()[0][
        "id"
    ]

    r = await api.http.post(
        f"/api/v1/partners/{pid}/channels/{channel_id}/rotate-secret", headers=who
    )
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    assert new != old and new.startswith("whsec_")
    listed = (await api.http.get(f"/api/v1/partners/{pid}/channels", headers=who)).json()
    assert listed[0]["has_previous_secret"] is True and listed[0]["previous_secret_until"]

    # The receiver now knows only the new secret; a receiver that has not updated yet
    # (knows only the old one) must still verify the same request.
    api.hooks.secrets[path] = [new]
    doc = event(unique("DOC-ROT"), tag)
    await publish(api, doc)
    got = await api.hooks.wait_for(1, path=path)
    h = got[-1]
    assert h.payload["data"]["document"]["id"] == doc["document"]["id"]
    assert len(h.headers["webhook-signature"].split()) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(h.body, h.headers)["data"]["delivery_id"] == h.webhook_id
    assert json.loads(h.body)["type"] == "policy.relayed"

    email = await api.http.post(
        f"/api/v1/partners/{pid}/channels",
        json={"type": "email", "to": ["a@api.example.org"]},
        headers=who,
    )
    r = await api.http.post(
        f"/api/v1/partners/{pid}/channels/{email.json()['channel']['id']}/rotate-secret",
        headers=who,
    )
    assert r.status_code == 409
