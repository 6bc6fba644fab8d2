"""Signed webhook deliveries over one shared aiohttp session (Standard Webhooks, DESIGN §6)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from types import TracebackType
from typing import Self

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from relay.delivery.base import Outcome, OutcomeStatus
from relay.delivery.safety import AddressRefused, SafeResolver, literal_refusal
from relay.signing import webhook_headers

DEFAULT_TIMEOUT = 15.0
#: Enough in-flight requests to one receiver for a fast fan-out, few enough not to flood it.
DEFAULT_LIMIT_PER_HOST = 100
DEFAULT_LIMIT = 1000
#: How much of a receiver's reply we read: enough to keep the connection reusable and to
#: quote the start of an error page; a huge reply is cut and its connection dropped.
MAX_REPLY_BYTES = 64 * 1024
SNIPPET_CHARS = 200


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@lru_cache(maxsize=65_536)
def _parse_url(url: str) -> URL:
    """A webhook URL, parsed once per distinct URL (a fan-out repeats them)."""
    target = URL(url)
    if target.scheme not in ("http", "https") or not target.host:
        raise ValueError("not an absolute http(s) URL")
    return target


def _snippet(raw: bytes) -> str:
    text = " ".join(raw.decode("utf-8", errors="replace").split())
    if not text:
        return ""
    return ": " + (text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS] + "…")


def classify(status: int, headers: Mapping[str, str], reply: bytes, latency_ms: float) -> Outcome:
    """Map an HTTP reply to an outcome per DESIGN §6 and the Standard Webhooks spec.

    ``headers`` is looked up by lower-case name (aiohttp's headers ignore case anyway).
    """
    if 200 <= status < 300:
        return Outcome(OutcomeStatus.delivered, f"HTTP {status}", status, None, latency_ms)
    if status == 410:
        detail = "HTTP 410 Gone: the receiver asked for no more deliveries to this URL"
        return Outcome(OutcomeStatus.disabled, detail, status, None, latency_ms)
    if status == 429 or status >= 500:
        wait = parse_retry_after(headers.get("retry-after"))
        detail = f"HTTP {status}{_snippet(reply)}"
        return Outcome(OutcomeStatus.retry, detail, status, wait, latency_ms)
    if 300 <= status < 400:
        # Redirects are not followed: a receiver could bounce us to an internal address.
        where = headers.get("location", "")
        detail = f"HTTP {status} redirect not followed" + (f" (to {where[:200]})" if where else "")
        return Outcome(OutcomeStatus.failed, detail, status, None, latency_ms)
    detail = f"HTTP {status}{_snippet(reply)}"
    return Outcome(OutcomeStatus.failed, detail, status, None, latency_ms)


async def _read_reply(response: aiohttp.ClientResponse) -> bytes:
    buf = bytearray()
    try:
        while len(buf) < MAX_REPLY_BYTES:
            chunk = await response.content.read(MAX_REPLY_BYTES - len(buf))
            if not chunk:
                break
            buf += chunk
    except (aiohttp.ClientError, TimeoutError):
        # The status line already decided the outcome; a broken reply body does not change it.
        pass
    return bytes(buf)


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


class WebhookSender:
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
    ) -> None:
        """``resolver`` replaces DNS (tests); the SSRF filter still wraps it."""
        self.timeout = timeout
        self.allow_private = allow_private
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._custom_resolver = resolver
        self._resolver: AbstractResolver | None = None
        self._session: aiohttp.ClientSession | None = None
        self._slots: dict[tuple[str, str, int | None], _Slots] = {}

    async def start(self) -> None:
        if self._session is not None:
            return
        resolver: AbstractResolver | None = self._custom_resolver
        if not self.allow_private:
            resolver = self._resolver = SafeResolver(self._custom_resolver)
        connector = aiohttp.TCPConnector(
            limit=self._limit, limit_per_host=self._limit_per_host, resolver=resolver
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            trust_env=False,  # a proxy from the environment would bypass the address check
        )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        resolver, self._resolver = self._resolver, None
        if resolver is not None:
            await resolver.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _slot(self, target: URL) -> _Slots:
        # Queue here, not in the connection pool: aiohttp counts time spent waiting for a
        # pooled connection against the request timeout, which would time out a big fan-out
        # to one slow-but-healthy receiver before its requests were even sent.
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
        except ValueError as e:
            return Outcome(OutcomeStatus.failed, f"invalid webhook URL: {e}")
        if not self.allow_private:
            # Literal IPs never reach the resolver, so they are checked here.
            refusal = literal_refusal(target.host or "")
            if refusal is not None:
                return Outcome(OutcomeStatus.failed, refusal)
        timestamp = int(time.time()) if now is None else now
        try:
            headers = webhook_headers(secrets, delivery_id, timestamp, body)
        except ValueError as e:
            return Outcome(OutcomeStatus.failed, f"cannot sign: {e}")
        if self._session is None:
            await self.start()
        assert self._session is not None
        slot = self._slot(target)
        await slot.acquire()
        try:
            return await self._post(target, body, headers)
        finally:
            slot.release()

    async def _post(self, target: URL, body: bytes, headers: dict[str, str]) -> Outcome:
        assert self._session is not None
        started = time.perf_counter()
        try:
            async with self._session.post(
                target, data=body, headers=headers, allow_redirects=False
            ) as response:
                reply = await _read_reply(response)
                elapsed = (time.perf_counter() - started) * 1000
                return classify(response.status, response.headers, reply, elapsed)
        except TimeoutError:
            detail = f"timeout: no complete reply within {self.timeout:g} s"
            return self._retry(detail, started)
        except aiohttp.ClientConnectorError as e:
            if isinstance(e.os_error, AddressRefused):
                return Outcome(OutcomeStatus.failed, str(e.os_error))
            return self._retry(f"connection failed: {e}", started)
        except aiohttp.ClientError as e:
            return self._retry(f"{type(e).__name__}: {e}", started)
        except OSError as e:
            return self._retry(f"network error: {e}", started)

    @staticmethod
    def _retry(detail: str, started: float) -> Outcome:
        elapsed = (time.perf_counter() - started) * 1000
        return Outcome(OutcomeStatus.retry, detail, latency_ms=elapsed)
