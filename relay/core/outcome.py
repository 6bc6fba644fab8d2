"""What a delivery attempt returns, and the small protocols the channel adapters implement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from enum import StrEnum
from typing import Protocol

#: The longest wait a receiver's ``Retry-After`` can ask for (one day): beyond it, one day.
MAX_RETRY_AFTER = 86_400.0


class OutcomeStatus(StrEnum):
    delivered = "delivered"
    #: Worth another attempt later (timeouts, 429, 5xx, SMTP 4xx, connection problems).
    retry = "retry"
    #: Retrying will not help (other 4xx, 3xx, SMTP 5xx, a refused address).
    failed = "failed"
    #: The receiver asked us to stop (HTTP 410): disable the channel.
    disabled = "disabled"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one attempt; adapters return it instead of raising for network trouble."""

    status: OutcomeStatus
    detail: str
    http_status: int | None = None
    #: Seconds the receiver asked us to wait (``Retry-After``), if it said; at most
    #: ``MAX_RETRY_AFTER``.
    retry_after: float | None = None
    latency_ms: float = 0.0
    #: The SMTP reply code, for email attempts that got one.
    smtp_code: int | None = None
    #: The attempt ran out of time (no complete HTTP reply, no SMTP answer): the receiver
    #: is slow, so the next attempt waits at least the retry floor, as after a 429.
    timed_out: bool = False
    #: A group-robot platform said the robot sends too fast (钉钉 130101, 企业微信 45009,
    #: 飞书 11232): every message to that robot waits ``retry_after``, not only this one.
    throttled: bool = False

    @property
    def ok(self) -> bool:
        return self.status is OutcomeStatus.delivered


class WebhookTransport(Protocol):
    async def send(
        self,
        *,
        url: str,
        delivery_id: str,
        body: bytes,
        secrets: Sequence[str],
        now: int | None = None,
    ) -> Outcome: ...


class MailTransport(Protocol):
    async def send(self, message: EmailMessage) -> Outcome: ...
