"""Credentials of the HTTP API: operator token, partner tokens, signed acknowledgement links.

Pure: no I/O. Partner tokens are random and shown once; the relay keeps only their SHA-256,
in ``Partner.token_hashes``. Every comparison of a secret value uses ``hmac.compare_digest``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable

#: Partner tokens start with this, so a leaked one is recognisable (secret scanners, logs).
PARTNER_TOKEN_PREFIX = "prt_"
#: Hex digits of the HMAC kept in an acknowledgement link (128 bits).
LINK_TOKEN_HEX = 32


def new_partner_token() -> str:
    """A fresh partner API token (256 random bits)."""
    return PARTNER_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What the relay stores instead of a token: its SHA-256 in hex.

    A plain hash suffices (no salt, no slow KDF): the token is 256 random bits, so there is
    no dictionary to attack, and the hash must be recomputed on every request.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, hashes: Iterable[str]) -> bool:
    """Whether ``token`` hashes to one of ``hashes``; constant time per candidate."""
    digest = hash_token(token).encode()
    found = False
    for candidate in hashes:
        # No early exit: the time taken does not say which candidate matched.
        found |= hmac.compare_digest(digest, candidate.encode())
    return found


def operator_token_ok(given: str, expected: str | None) -> bool:
    """Whether ``given`` is the operator token; never true when no operator token is set."""
    if not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def link_token(link_secret: str, delivery_id: str) -> str:
    """The ``t`` of an acknowledgement link: HMAC-SHA256(link secret, delivery id), truncated."""
    mac = hmac.digest(link_secret.encode("utf-8"), delivery_id.encode("utf-8"), "sha256")
    return mac.hex()[:LINK_TOKEN_HEX]


def link_token_ok(
    link_secret: str | None, delivery_id: str, token: str, *, previous: str | None = None
) -> bool:
    """Whether ``token`` is the acknowledgement-link token of ``delivery_id``, signed with
    the link secret or (while rotating it) the ``previous`` one."""
    return _signed(token, (link_secret, previous), lambda secret: link_token(secret, delivery_id))


def question_token(link_secret: str, delivery_id: str, expires: int) -> str:
    """The ``t`` of a question link ("有疑问？"): HMAC-SHA256 over the delivery id and the
    link's expiry (Unix seconds), kept apart from acknowledgement tokens by its prefix."""
    message = f"question\0{delivery_id}\0{expires}".encode()
    return hmac.digest(link_secret.encode("utf-8"), message, "sha256").hex()[:LINK_TOKEN_HEX]


def question_token_ok(
    link_secret: str | None,
    delivery_id: str,
    expires: int,
    token: str,
    *,
    previous: str | None = None,
) -> bool:
    """Whether ``token`` signs (``delivery_id``, ``expires``) with the link secret or (while
    rotating it) the ``previous`` one; expiry is the caller's check."""
    return _signed(
        token, (link_secret, previous), lambda secret: question_token(secret, delivery_id, expires)
    )


def _signed(token: str, keys: tuple[str | None, ...], expected: Callable[[str], str]) -> bool:
    """Whether ``token`` is what ``expected`` makes with any of the (set) ``keys``; every
    key is compared, in constant time."""
    if not token:
        return False
    given = token.encode("utf-8", "replace")
    found = False
    for key in keys:
        if key:
            found |= hmac.compare_digest(expected(key).encode(), given)
    return found


class TokenIndex:
    """Which partner a token belongs to: SHA-256 of the token → partner id.

    Kept in step with the partner registry. Looking up by hash reveals nothing useful through
    timing (an attacker would need SHA-256 preimages); the hit is then confirmed in constant
    time.
    """

    def __init__(self) -> None:
        self._owner: dict[str, str] = {}
        self._hashes: dict[str, tuple[str, ...]] = {}

    def update(self, partner_id: str, hashes: Iterable[str] | None) -> None:
        """Set the token hashes of ``partner_id`` (``None`` = the partner is gone)."""
        for old in self._hashes.pop(partner_id, ()):
            if self._owner.get(old) == partner_id:
                del self._owner[old]
        if hashes is None:
            return
        kept = tuple(hashes)
        self._hashes[partner_id] = kept
        for h in kept:
            self._owner[h] = partner_id

    def find(self, token: str) -> str | None:
        """The partner whose token this is, or None."""
        digest = hash_token(token)
        partner_id = self._owner.get(digest)
        if partner_id is None:
            return None
        return partner_id if token_matches(token, self._hashes.get(partner_id, ())) else None

    def __len__(self) -> int:
        return len(self._owner)
