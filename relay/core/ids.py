"""Deterministic identifiers: the same notification or delivery always gets the same id."""

from __future__ import annotations

import hashlib


def notification_id(document_id: str, version: int, partner_id: str, notice: str = "") -> str:
    """One notification per (document version, partner), and per ``notice`` when given.

    A repeal (``policy.repealed``) or an expiry reminder (``policy.expiring``) names the
    version it concerns, the very version a publication or revision already notified: it
    passes its notice type, or its deliveries would share the earlier notice's ids and be
    taken for already delivered. Publications and revisions pass none (their ids stay as
    they always were).
    """
    if notice:
        return f"ntf_{_digest(document_id, str(version), partner_id, notice)}"
    return f"ntf_{_digest(document_id, str(version), partner_id)}"


def delivery_id(notification_id: str, channel_id: str) -> str:
    """One delivery per (notification, channel); stable across retries and replays.

    It is the webhook ``webhook-id`` and the email ``Message-ID``, so it holds no ``.``.
    """
    return f"dlv_{_digest(notification_id, channel_id)}"


def _digest(*parts: str) -> str:
    # NUL cannot occur in any of the parts, so distinct tuples never collide by concatenation.
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def reminder_notification_id(document_id: str, expires_on: str, partner_id: str) -> str:
    """One expiry reminder per (document, expiry date, partner): a revision that moves the
    expiry date gets a reminder of its own, a repeat of the same one never."""
    return f"ntf_{_digest('expiring', document_id, expires_on, partner_id)}"
