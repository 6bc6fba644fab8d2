"""Signed webhook deliveries over one shared connection pool (Standard Webhooks, DESIGN §6)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Sequence
from functools import lru_cache

from aiohttp.abc import AbstractResolver
from yarl import URL

from relay.adapters.http import ConnectError, GuardedClient, HTTPError
from relay.adapters.safety import (
    AddressRefused,
    delivery_refusal,
    webhook_target,
)
from relay.core.errors import UnsafeWebhookURL
from relay.core.outcome import Outcome, OutcomeStatus
from relay.core.retry import http_outcome
from relay.core.signing import webhook_headers

DEFAULT_TIMEOUT = 15.0
#: Enough in-flight requests to one receiver for a fast fan-out, few enough not to flood it.
DEFAULT_LIMIT_PER_HOST = 100
DEFAULT_LIMIT = 1000
#: How much of a receiver's reply we read: enough to keep the connection reusable and to
#: quote the start of an error page; a huge reply is cut and its connection dropped.
MAX_REPLY_BYTES = 64 * 1024


@lru_cache(maxsize=65_536)
def _parse_url(url: str) -> URL:
    """A webhook URL parsed as the SSRF check parses it, once per distinct URL (a fan-out
    repeats them)."""
    return webhook_target(url)


class _Slots:
    """A FIFO limit on requests in flight to one host, O(1) however many wait.

    asyncio.Semaphore (3.11) scans its waiters on every acquire while a permit is free,
    which a fan-out of thousands of requests to one host turns quadratic.
    """

    __slots__ = ("_free", "_waiters")

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # handed a permit just as it was cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():  # skips waiters that were cancelled
                fut.set_result(None)
                return
        self._free += 1


class WebhookSender(GuardedClient):
    """POSTs signed payloads; one connection pool for every delivery of a worker.

    ``send`` never raises for network trouble: it returns an :class:`Outcome` saying what
    happened. With ``allow_private=False`` it refuses private, loopback, link-local and
    metadata addresses, checked on the address actually connected to.
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        allow_private: bool = False,
        limit: int = DEFAULT_LIMIT,
        limit_per_host: int = DEFAULT_LIMIT_PER_HOST,
        resolver: AbstractResolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``resolver`` replaces DNS and ``ssl_context`` the system's trust store (tests);
        the SSRF filter still wraps the resolver."""
        super().__init__(
            timeout=timeout,
            allow_private=allow_private,
            max_reply=MAX_REPLY_BYTES,
            resolver=resolver,
            ssl_context=ssl_context,
        )
        self._limit_per_host = limit_per_host
        self._slots: dict[tuple[str, str, int | None], _Slots] = {}
        self._total = _Slots(limit)

    def _slot(self, target: URL) -> _Slots:
        # Requests queue here, before their timeout starts: a big fan-out to one
        # slow-but-healthy receiver must not time out requests that were never sent.
        key = (target.scheme, target.host or "", target.port)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slots(self._limit_per_host)
        return slot

    async def send(
        self,
        *,
        url: str,
        delivery_id: str,
        body: bytes,
        secrets: Sequence[str],
        now: int | None = None,
    ) -> Outcome:
        """Deliver one signed payload; ``delivery_id`` is the ``webhook-id``."""
        try:
            target = _parse_url(url)
        except UnsafeWebhookURL as e:
            return Outcome(OutcomeStatus.failed, f"invalid webhook URL: {e}")
        if not self.allow_private:
            # The same judgement as at registration (check_url), on the same parse.
            refusal = delivery_refusal(target)
            if refusal is not None:
                return Outcome(OutcomeStatus.failed, refusal)
        timestamp = int(time.time()) if now is None else now
        try:
            headers = webhook_headers(secrets, delivery_id, timestamp, body)
        except ValueError as e:
            return Outcome(OutcomeStatus.failed, f"cannot sign: {e}")
        if self._client is None:
            await self.start()
        slot = self._slot(target)
        await slot.acquire()
        try:
            await self._total.acquire()
            try:
                return await self._post(target, body, headers)
            finally:
                self._total.release()
        finally:
            slot.release()

    async def _post(self, target: URL, body: bytes, headers: dict[str, str]) -> Outcome:
        assert self._client is not None
        started = time.perf_counter()
        try:
            reply = await self._client.post(target, body, headers, timeout=self.timeout)
        except TimeoutError:
            detail = f"timeout: no complete reply within {self.timeout:g} s"
            return self._retry(detail, started, timed_out=True)
        except AddressRefused as e:
            return Outcome(OutcomeStatus.failed, str(e))
        except ConnectError as e:
            return self._retry(f"connection failed: {e}", started)
        except HTTPError as e:
            return self._retry(f"no complete reply: {e}", started)
        except OSError as e:
            return self._retry(f"network error: {e}", started)
        elapsed = (time.perf_counter() - started) * 1000
        if 200 <= reply.status < 300:  # as http_outcome says, without decoding headers unread
            return Outcome(
                OutcomeStatus.delivered, f"HTTP {reply.status}", reply.status, None, elapsed
            )
        return http_outcome(reply.status, reply.headers, reply.body, elapsed)

    @staticmethod
    def _retry(detail: str, started: float, *, timed_out: bool = False) -> Outcome:
        elapsed = (time.perf_counter() - started) * 1000
        return Outcome(OutcomeStatus.retry, detail, latency_ms=elapsed, timed_out=timed_out)
