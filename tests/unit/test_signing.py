"""Standard Webhooks signatures, checked against the reference ``standardwebhooks`` package."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from relay.core import signing

TITLE = "关于徐泾镇2023年政务公开工作要点"
BODY = json.dumps({"type": "policy.relayed", "data": {"title": TITLE}}, ensure_ascii=False).encode()


def test_signature_verifies_with_the_reference_library() -> None:
    secret = signing.new_secret()
    now = int(time.time())
    headers = signing.webhook_headers([secret], "dlv_abc123", now, BODY)

    assert Webhook(secret).verify(BODY, headers)["data"]["title"] == TITLE


def test_headers_carry_id_timestamp_content_type_and_user_agent() -> None:
    headers = signing.webhook_headers([signing.new_secret()], "dlv_abc123", 1700000000, BODY)

    assert headers["webhook-id"] == "dlv_abc123"
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "PolicyRelay/0.1"


def test_sign_matches_the_reference_signer() -> None:
    secret = signing.new_secret()
    expected = Webhook(secret).sign("dlv_x", datetime.fromtimestamp(1700000000, UTC), BODY.decode())

    assert signing.sign(secret, "dlv_x", 1700000000, BODY) == expected


def test_each_secret_of_a_rotation_header_verifies() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    headers = signing.webhook_headers([old, new], "dlv_rot", int(time.time()), BODY)

    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(BODY, headers)
    Webhook(new).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(BODY, headers)


def test_tampered_body_fails_verification() -> None:
    secret = signing.new_secret()
    headers = signing.webhook_headers([secret], "dlv_abc", int(time.time()), BODY)

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace("徐泾镇".encode(), "某某镇".encode()), headers)


def test_changed_id_or_timestamp_fails_verification() -> None:
    secret = signing.new_secret()
    now = int(time.time())
    headers = signing.webhook_headers([secret], "dlv_abc", now, BODY)

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "dlv_abd"})
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-timestamp": str(now + 1)})


def test_new_secret_holds_32_random_bytes() -> None:
    a, b = signing.new_secret(), signing.new_secret()

    assert a.startswith("whsec_") and a != b
    assert len(base64.b64decode(a.removeprefix("whsec_"))) == 32


@pytest.mark.parametrize("bad", ["abc", "whsec_", "whsec_!!notbase64!!"])
def test_malformed_secret_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        signing.sign(bad, "dlv_x", 1, BODY)


def test_id_with_a_dot_is_refused() -> None:
    # "a.b" + "1" and "a" + "b.1" would sign the same bytes.
    with pytest.raises(ValueError):
        signing.sign(signing.new_secret(), "dlv.x", 1, BODY)


def test_signing_needs_at_least_one_secret() -> None:
    with pytest.raises(ValueError):
        signing.signature_header([], "dlv_x", 1, BODY)
    with pytest.raises(TypeError):
        signing.signature_header(signing.new_secret(), "dlv_x", 1, BODY)


@given(body=st.binary(max_size=512).map(lambda b: b.decode("latin-1").encode("utf-8")))
def test_any_utf8_body_verifies(body: bytes) -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    headers = signing.webhook_headers([secret], "dlv_prop", int(time.time()), body)

    Webhook(secret).verify(body, headers, json_parse=False)
