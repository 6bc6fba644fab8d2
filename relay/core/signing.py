"""Standard Webhooks v1 signatures (HMAC-SHA256 over ``id.timestamp.body``), and the group
robots' (钉钉 加签, 飞书 签名校验); pure, no I/O."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets as _random
from collections.abc import Sequence
from functools import lru_cache

SECRET_PREFIX = "whsec_"
USER_AGENT = "PolicyRelay/0.1"


@lru_cache(maxsize=4096)
def _key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret (decoded once per secret: a fan-out repeats them)."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret must start with 'whsec_'")
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        # Tolerate missing padding, as the reference libraries do.
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the part of a webhook secret after 'whsec_' must be base64") from None
    if not key:
        raise ValueError("a webhook secret must not be empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return ``v1,<base64 HMAC-SHA256>`` of ``msg_id.timestamp.body`` under a ``whsec_`` secret."""
    # The spec forbids '.' in the id: it would make the signed content ambiguous.
    if not msg_id or "." in msg_id:
        raise ValueError(f"webhook id {msg_id!r} must be non-empty and hold no '.'")
    signed = f"{msg_id}.{int(timestamp)}.".encode() + body
    digest = hmac.digest(_key(secret), signed, "sha256")  # one C call, no HMAC object
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per secret, space-separated (rotation)."""
    if isinstance(secrets, str):
        raise TypeError("secrets must be a sequence of secrets, not one string")
    if not secrets:
        raise ValueError("at least one webhook secret is needed to sign")
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets)


def webhook_headers(
    secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Every header a signed delivery carries."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def new_secret() -> str:
    """A fresh ``whsec_`` secret holding 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(32)).decode("ascii")


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """钉钉 加签: base64 of HMAC-SHA256 keyed by the robot's secret (``SEC…``) over
    ``f"{timestamp_ms}\n{secret}"``, UTF-8. Not URL-encoded yet: the sender encodes it once,
    into the ``sign`` query parameter (encoding it twice is the classic "sign not match")."""
    digest = hmac.digest(secret.encode(), f"{int(timestamp_ms)}\n{secret}".encode(), "sha256")
    return base64.b64encode(digest).decode("ascii")


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """飞书 签名校验: base64 of HMAC-SHA256 keyed by ``f"{timestamp_s}\n{secret}"`` over an
    empty message (the docs' 计算空字符串的签名结果), sent with the timestamp in the body."""
    digest = hmac.digest(f"{int(timestamp_s)}\n{secret}".encode(), b"", "sha256")
    return base64.b64encode(digest).decode("ascii")
