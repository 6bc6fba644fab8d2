"""The API's limits over real HTTP: hostile bodies get 413/422 naming the problem, never 500."""

from __future__ import annotations

import json
from typing import Any

import pytest

from relay.core.models.limits import MAX_DEPTH, MAX_EVENT_BYTES
from tests.helpers.api import (
    bearer,
    create_partner,
    deliveries,
    event,
    hook,
    partner_body,
    publish,
    unique,
)
from tests.integration.conftest import ApiUnderTest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

JSON = {"Content-Type": "application/json"}


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def assert_error(r: Any, status: int, code: str | None, message: str) -> None:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"code", "message"}
    if code is not None:
        assert error["code"] == code, error
    assert message in error["message"], error


@pytest.mark.parametrize(
    "path", ["/api/v1/documents", "/api/v1/partners", "/api/v1/dead-letters/replay"]
)
@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 50_000, 200_000])
async def test_deeply_nested_bodies_get_422_too_deep(
    api: ApiUnderTest, path: str, levels: int
) -> None:
    r = await api.http.post(path, content=deep(levels), headers={**api.op, **JSON})
    assert_error(r, 422, "too_deep", f"body: nested deeper than {MAX_DEPTH} levels")


async def test_a_deep_acknowledgement_body_gets_422_too(api: ApiUnderTest) -> None:
    body = b'{"forwarded_to": 1, "note": ' + deep(200_000) + b"}"
    r = await api.http.post("/api/v1/deliveries/dlv_x/ack", content=body, headers=api.op)
    assert_error(r, 422, "too_deep", "body: nested deeper")


async def test_an_event_over_the_size_limit_gets_413_too_large(api: ApiUnderTest) -> None:
    ev = event(unique("DOC-BIG"), "x")
    body = json.dumps(ev).encode()
    body += b" " * (MAX_EVENT_BYTES + 1 - len(body))
    r = await api.http.post("/api/v1/documents", content=body, headers={**api.op, **JSON})
    assert_error(r, 413, "too_large", f"at most {MAX_EVENT_BYTES:,}")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": "1"}, "document.version: Input should be a valid integer"),
        ({"version": True}, "document.version: Input should be a valid integer"),
        ({"version": 10**40}, "document.version: Input should be less than or equal to"),
        ({"normative": "true"}, "document.normative: Input should be a valid boolean"),
        ({"tags": [f"t{i}" for i in range(1_000)]}, "document.tags: List should have at most 50"),
        ({"title": "关于\x00通知"}, "document.title: contains a control character (U+0000)"),
        ({"title": "关于\x07通知"}, "document.title: contains a control character (U+0007)"),
        ({"title": "关于\u202e通知"}, "document.title: contains a bidirectional control"),
        ({"summary": "第一段\x1b[31m"}, "document.summary: contains a control character"),
    ],
)
async def test_publishing_refuses_loose_types_long_lists_and_control_characters(
    api: ApiUnderTest, change: dict[str, Any], message: str
) -> None:
    ev = event(unique("DOC-LIM"), "x", **change)
    r = await api.http.post("/api/v1/documents", json=ev, headers=api.op)
    assert_error(r, 422, "invalid_event", message)


async def test_a_hundred_thousand_tags_are_refused(api: ApiUnderTest) -> None:
    ev = event(unique("DOC-TAGS"), "x", tags=[f"t{i}" for i in range(100_000)])
    r = await api.http.post("/api/v1/documents", json=ev, headers=api.op)
    assert_error(r, 413, "too_large", f"at most {MAX_EVENT_BYTES:,}")


@pytest.mark.parametrize("length", [100_000, 1_040_000])
async def test_a_long_partner_name_gets_422_naming_the_field(
    api: ApiUnderTest, length: int
) -> None:
    body = partner_body(unique("p-long"), "x")
    body["name"] = "n" * length
    r = await api.http.post("/api/v1/partners", json=body, headers=api.op)
    assert_error(r, 422, "invalid_request", "name: String should have at most 200 characters")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"paused": 1}, "paused: Input should be a valid boolean"),
        ({"paused": "false"}, "paused: Input should be a valid boolean"),
        ({"name": "协会\x07"}, "name: contains a control character (U+0007)"),
        ({"name": "\u202e协会"}, "name: contains a bidirectional control character"),
        ({"interests": {"tags_any": ["t"] * 100_000}}, "interests.tags_any: List should have"),
        ({"coverage": {"parks": ["园\x00区"]}}, "coverage.parks[0]: contains a control"),
        (
            {"channels": [{"type": "email", "to": ["a\x00b@example.org"]}]},
            "channels[0].to[0]: contains a control character",
        ),
    ],
)
async def test_partner_profiles_get_the_same_limits(
    api: ApiUnderTest, change: dict[str, Any], message: str
) -> None:
    body = {**partner_body(unique("p-lim"), "x"), **change}
    r = await api.http.post("/api/v1/partners", json=body, headers=api.op)
    assert_error(r, 422, "invalid_request", message)


async def test_profile_and_channel_updates_are_strict_too(api: ApiUnderTest) -> None:
    pid = unique("p-upd")
    token = await create_partner(api, pid, "x", [{"type": "email", "to": ["a@example.org"]}])
    me = bearer(token)
    r = await api.http.put(f"/api/v1/partners/{pid}", json={"paused": 1}, headers=me)
    assert_error(r, 422, "invalid_request", "paused: Input should be a valid boolean")
    r = await api.http.put(f"/api/v1/partners/{pid}", json={"name": "x" * 201}, headers=me)
    assert_error(r, 422, "invalid_request", "name: String should have at most 200")
    (channel,) = (await api.http.get(f"/api/v1/partners/{pid}/channels", headers=me)).json()
    r = await api.http.put(
        f"/api/v1/partners/{pid}/channels/{channel['id']}", json={"disabled": "yes"}, headers=me
    )
    assert_error(r, 422, "invalid_request", "disabled: Input should be a valid boolean")
    r = await api.http.post(
        "/api/v1/dead-letters/replay", json={"partner_id": "p" * 129}, headers=api.op
    )
    assert_error(r, 422, "invalid_request", "partner_id: String should have at most 128")


async def test_acknowledgements_take_a_count_strictly_and_a_clean_note(api: ApiUnderTest) -> None:
    pid, tag = unique("p-ack-lim"), unique("tag")
    token = await create_partner(api, pid, tag, [hook(api, pid)[1]])
    await publish(api, event(unique("DOC-ACK-LIM"), tag))
    (d,) = await deliveries(api, pid, token, 1)
    url = f"/api/v1/deliveries/{d['delivery_id']}/ack"
    for body, message in (
        ({"forwarded_to": "12"}, "forwarded_to: Input should be a valid integer"),
        ({"forwarded_to": True}, "forwarded_to: Input should be a valid integer"),
        ({"forwarded_to": 12.0}, "forwarded_to: Input should be a valid integer"),
        ({"forwarded_to": 10**40}, "forwarded_to: Input should be less than or equal to"),
        ({"forwarded_to": 1, "note": "好\x00"}, "note: contains a control character"),
        ({"forwarded_to": 1, "note": "n" * 2001}, "note: String should have at most 2000"),
    ):
        r = await api.http.post(url, json=body, headers=bearer(token))
        assert_error(r, 422, "invalid_request", message)
    # A form sends its number as text, as browsers do: still accepted there.
    form = await api.http.post(url, data={"forwarded_to": "12"}, headers=bearer(token))
    assert form.status_code == 200 and "12" in form.text
    # A note keeps its line breaks.
    r = await api.http.post(
        url, json={"forwarded_to": 13, "note": "第一行\n第二行"}, headers=bearer(token)
    )
    assert r.status_code == 200 and r.json()["note"] == "第一行\n第二行"
