"""Tokens and link signatures: issued, hashed, found, revoked; links signed and checked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from relay.core import rendering, tokens
from relay.web.errors import describe
from tests.unit import factories


def test_partner_tokens_are_random_prefixed_and_stored_only_as_sha256() -> None:
    a, b = tokens.new_partner_token(), tokens.new_partner_token()
    assert a != b
    assert a.startswith("prt_") and len(a) > 40
    h = tokens.hash_token(a)
    assert len(h) == 64 and a not in h
    assert tokens.token_matches(a, ["0" * 64, h])
    assert not tokens.token_matches(b, [h])
    assert not tokens.token_matches(a, [])


def test_operator_token_never_matches_when_unset() -> None:
    assert tokens.operator_token_ok("op-secret", "op-secret")
    assert not tokens.operator_token_ok("op-secre", "op-secret")
    assert not tokens.operator_token_ok("", None)
    assert not tokens.operator_token_ok("", "")


def test_token_index_finds_the_owner_and_forgets_revoked_tokens() -> None:
    index = tokens.TokenIndex()
    old, new, other = (tokens.new_partner_token() for _ in range(3))
    index.update("p-1", [tokens.hash_token(old)])
    index.update("p-2", [tokens.hash_token(other)])
    assert index.find(old) == "p-1" and index.find(other) == "p-2"
    # A rotation replaces the hashes: the old token stops working at once.
    index.update("p-1", [tokens.hash_token(new)])
    assert index.find(old) is None and index.find(new) == "p-1"
    index.update("p-2", None)
    assert index.find(other) is None
    assert index.find("prt_guess") is None
    assert len(index) == 1


def test_link_token_is_an_hmac_of_the_delivery_id() -> None:
    t = tokens.link_token("secret", "dlv_1")
    assert len(t) == tokens.LINK_TOKEN_HEX
    assert t != tokens.link_token("secret", "dlv_2")
    assert t != tokens.link_token("other", "dlv_1")
    assert tokens.link_token_ok("secret", "dlv_1", t)
    assert not tokens.link_token_ok("secret", "dlv_2", t)
    assert not tokens.link_token_ok(None, "dlv_1", t)
    assert not tokens.link_token_ok("secret", "dlv_1", "")


@given(st.text(max_size=40))
def test_a_wrong_link_token_is_refused_whatever_it_is(guess: str) -> None:
    real = tokens.link_token("secret", "dlv_1")
    assert tokens.link_token_ok("secret", "dlv_1", guess) is (guess == real)


def test_ack_url_carries_the_link_token_only_when_a_secret_is_set() -> None:
    plain = rendering.ack_url("http://h:1/", "dlv_9")
    assert plain == "http://h:1/api/v1/deliveries/dlv_9/ack"
    signed = rendering.ack_url("http://h:1/", "dlv_9", link_secret=SecretStr("s3"))
    assert signed == f"{plain}?t={tokens.link_token('s3', 'dlv_9')}"
    assert rendering.ack_url("http://h:1", "dlv_9", link_secret="s3") == signed


def test_webhook_and_email_carry_the_signed_ack_url() -> None:
    from relay.core.models import Notification

    doc = factories.event_model().document
    p = factories.partner()
    n = Notification.model_validate(
        {
            "notification_id": "ntf_1",
            "type": "policy.relayed",
            "event_id": "ev-1",
            "document": doc.model_dump(mode="json"),
            "partner_id": p.id,
            "partner_name": p.name,
            "partner_kind": p.kind,
            "match": {"matched": True},
            "deliveries": [
                {"delivery_id": "dlv_1", "channel_id": "email-1", "channel_type": "email"}
            ],
            "planned_at": "2023-06-07T09:00:00+08:00",
        }
    )
    planned = n.deliveries[0]
    now = datetime(2023, 6, 7, tzinfo=UTC)
    t = tokens.link_token("s3", "dlv_1")
    payload = rendering.webhook_payload(
        n, planned, why=[], base_url="http://h", now=now, link_secret="s3"
    )
    assert payload["data"]["ack_url"].endswith(f"/dlv_1/ack?t={t}")
    text, html = rendering.render_email_bodies(
        n, planned, why=[], base_url="http://h", now=now, link_secret="s3"
    )
    assert f"/dlv_1/ack?t={t}" in text and f"/dlv_1/ack?t={t}" in html


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            {
                "loc": ("body", "coverage", "regions", 0),
                "type": "value_error",
                "msg": "bad",
                "input": "31",
            },
            "coverage.regions[0]: bad (got '31')",
        ),
        (
            {
                "loc": ("body", "channels", 1, "webhook", "url"),
                "type": "value_error",
                "msg": "Value error, 'x' is not an http(s) URL",
                "input": "x",
            },
            "channels[1].url: 'x' is not an http(s) URL",
        ),
        (
            {"loc": ("body", "name"), "type": "missing", "msg": "m"},
            "name: required field is missing",
        ),
        (
            {"loc": ("body", "channels"), "type": "extra_forbidden", "msg": "m"},
            "channels: unknown field (channels are managed under /api/v1/partners/{id}/channels)",
        ),
        (
            {"loc": ("query", "limit"), "type": "x", "msg": "too big", "input": 9},
            "limit: too big (got 9)",
        ),
    ],
)
def test_validation_errors_name_the_field(error: dict[str, Any], message: str) -> None:
    assert describe([error]) == message


async def test_operator_endpoints_stay_closed_without_an_operator_token() -> None:
    import httpx

    from relay.core.settings import Settings
    from relay.runtime.app import Runtime
    from relay.web.api import create_api

    api = create_api(Runtime(Settings(profile="dev")))
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://relay") as http:
        for token in ("", "anything"):
            r = await http.get("/api/v1/partners", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 503
            assert r.json()["error"]["code"] == "operator_api_disabled"
            assert "RELAY_OPERATOR_TOKEN" in r.json()["error"]["message"]


def test_while_rotating_the_link_secret_links_of_either_secret_are_accepted() -> None:
    old, new = tokens.link_token("old", "dlv_1"), tokens.link_token("new", "dlv_1")
    assert tokens.link_token_ok("new", "dlv_1", old, previous="old")
    assert tokens.link_token_ok("new", "dlv_1", new, previous="old")
    assert not tokens.link_token_ok("new", "dlv_1", old)  # rotation over: old links refused
    assert not tokens.link_token_ok("new", "dlv_2", old, previous="old")
    assert not tokens.link_token_ok(None, "dlv_1", "", previous="old")
    # The question links (有疑问？) are signed with the same secret, and rotate with it.
    asked = tokens.question_token("old", "dlv_1", 1_900_000_000)
    assert tokens.question_token_ok("new", "dlv_1", 1_900_000_000, asked, previous="old")
    assert not tokens.question_token_ok("new", "dlv_1", 1_900_000_000, asked)
    assert not tokens.question_token_ok("new", "dlv_1", 1_900_000_001, asked, previous="old")


def test_while_rotating_the_operator_token_either_is_the_operator() -> None:
    from types import SimpleNamespace

    from relay.web.security import identify

    def rt(current: str, previous: str | None) -> Any:
        settings = SimpleNamespace(
            operator_token=SecretStr(current),
            previous_operator_token=SecretStr(previous) if previous else None,
        )
        return SimpleNamespace(settings=settings)

    index = tokens.TokenIndex()
    for token in ("new-operator-token", "old-operator-token"):
        who = identify(rt("new-operator-token", "old-operator-token"), index, token)
        assert who is not None and who.is_operator
    assert identify(rt("new-operator-token", None), index, "old-operator-token") is None
