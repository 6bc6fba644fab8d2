"""A fingerprint of a keyed set (the partner registry) that two holders can compare.

Each (key, value) contributes a 128-bit BLAKE2b digest; the fingerprint is their XOR with
the count, so it does not depend on the order the entries came in and is kept up to date
one change at a time (no walk over 100,000 partners per request). Two workers that applied
the same partners-topic records hold the same fingerprint; one that missed or garbled a
record almost surely does not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def entry_digest(key: str, value: bytes) -> int:
    # NUL cannot occur in a partner id, so (key, value) pairs never collide by concatenation.
    return int.from_bytes(hashlib.blake2b(key.encode() + b"\0" + value, digest_size=16).digest())


class SetFingerprint:
    """The fingerprint of a set of ``key → value`` entries, updated per change."""

    __slots__ = ("_digests", "_combined")

    def __init__(self, entries: Iterable[tuple[str, bytes]] = ()) -> None:
        self._digests: dict[str, int] = {}
        self._combined = 0
        for key, value in entries:
            self.put(key, value)

    def put(self, key: str, value: bytes) -> None:
        """``key`` now holds ``value`` (a new entry or a replacement)."""
        self.discard(key)
        digest = entry_digest(key, value)
        self._digests[key] = digest
        self._combined ^= digest

    def discard(self, key: str) -> None:
        """``key`` is gone (nothing happens if it was not there)."""
        self._combined ^= self._digests.pop(key, 0)

    def __len__(self) -> int:
        return len(self._digests)

    def hexdigest(self) -> str:
        """``<count>-<32 hex digits>``: equal for equal sets, whatever the order of changes."""
        return f"{len(self._digests)}-{self._combined:032x}"
