"""A lean HTTP/1.1 client for webhook POSTs: keep-alive pools, checked addresses, bounded replies.

Why not aiohttp's client: a fan-out is thousands of small POSTs to few hosts, and aiohttp's
client spends about 0.1 ms of CPU on each (cookie jar, tracing hooks, redirects, proxies,
streaming bodies), three times what this one needs (measured in ``docs/benchmarks.md``),
and a worker is CPU-bound on exactly that. This client does only what a webhook sender
needs, on a plain :class:`asyncio.Protocol`; the risky bytes go to kept libraries:

- ``POST`` with a complete body; no redirects (the reply is returned as it is), no proxies,
  no cookies;
- replies parsed by llhttp (``httptools``, as uvicorn uses) in its strict mode: framed by
  ``Content-Length``, ``Transfer-Encoding: chunked`` or the end of the connection (RFC 9112
  §6.3). Whatever llhttp refuses is a :class:`BadReply` at once: a line ended by a bare LF,
  a chunk size that is not plain hex, a ``Content-Length`` that is not plain digits, two
  lengths, obsolete line folding. So is a status outside 100–599 (RFC 9110 §15) and a 101
  (we never ask to switch protocols); other 1xx interim replies are skipped;
- bounded: the head (status line and headers, interim replies included) at most
  ``MAX_HEAD_BYTES``, else :class:`BadReply`; at most ``max_reply`` bytes of a body kept, and
  at most ``MAX_FRAMING_BYTES`` of chunk framing and trailers read besides; a reply that runs
  longer is cut there (status and headers intact) and its connection closed, never reused;
- connections kept alive per (scheme, host, port), reused most-recent-first, closed after
  ``keepalive`` seconds idle. An idle connection is reused only when a poll of its socket
  shows the server has not closed it. A request, once written, is never written again:
  ``POST`` is not idempotent (RFC 9110 §9.2.2) and the server may have acted on it, so a
  reply that does not come is the caller's error to retry on its own schedule (the
  webhook-id stays the same, so the receiver can tell a repeat);
- names resolved by the given resolver (the SSRF guard wraps it); connections made to those
  addresses only, by Happy Eyeballs (``aiohappyeyeballs``, RFC 8305: each next address is
  tried ``happy_eyeballs_delay`` after the previous one, which keeps trying), so an address
  that swallows packets costs 250 ms, not the whole timeout. ``refuse`` judges the address
  actually connected to before a byte is sent. TLS verified by default.
"""

from __future__ import annotations

import asyncio
import base64
import select
import socket
import ssl
from collections import deque
from collections.abc import Callable
from functools import cache, lru_cache
from ipaddress import ip_address
from pathlib import Path
from types import TracebackType
from typing import Self

import aiohappyeyeballs
import httptools
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from relay.adapters.safety import AddressRefused, IPAddress, SafeResolver, address_refusal
from relay.core.errors import ConfigError

#: Longest head accepted: status line plus headers, interim replies included.
MAX_HEAD_BYTES = 64 * 1024
#: Most bytes of chunk framing (size lines, extensions) and trailers read besides the body.
MAX_FRAMING_BYTES = 64 * 1024
#: Seconds an idle kept-alive connection is kept (aiohttp's default too).
KEEPALIVE = 15.0
#: Seconds before the next address is tried while the others still try (RFC 8305 §5).
HAPPY_EYEBALLS_DELAY = 0.25

#: Why an address may not be connected to, or None when it may (``safety.address_refusal``).
Refuse = Callable[[IPAddress], str | None]


class HTTPError(Exception):
    """A request that got no complete reply."""


class ConnectError(HTTPError):
    """The host's name did not resolve, or no connection could be made to any address."""

    def __init__(self, host: str, port: int, error: OSError, *, resolving: bool = False) -> None:
        what = f"cannot resolve {host}" if resolving else f"cannot connect to {host}:{port}"
        super().__init__(f"{what}: {error.strerror or error}")
        self.os_error = error


class Disconnected(HTTPError):
    """The server closed the connection before its reply was complete."""


class BadReply(HTTPError):
    """The server's reply is not HTTP/1.x as llhttp reads it, or breaks a limit."""


class Reply:
    """A reply: its status, its headers and at most ``max_reply`` bytes of its body.

    The headers are decoded on first use: a webhook's reply is 2xx nearly always, and
    nobody reads a 2xx's headers.
    """

    __slots__ = ("status", "body", "_raw", "_headers")

    def __init__(self, status: int, raw_headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.body = body
        self._raw = raw_headers
        self._headers: CIMultiDictProxy[str] | None = None

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        if self._headers is None:
            decoded = [(n.decode("latin-1"), v.decode("latin-1").strip()) for n, v in self._raw]
            self._headers = CIMultiDictProxy(CIMultiDict(decoded))
        return self._headers

    def __repr__(self) -> str:
        return f"Reply(status={self.status}, headers={self.headers!r}, body={self.body!r})"


class _PastTheEnd(Exception):
    """Raised from a parser callback to stop at bytes that follow the reply."""


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection, one exchange at a time; llhttp parses the replies.

    httptools calls the ``on_*`` methods while it parses what :meth:`data_received` feeds it.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, max_reply: int, sock: socket.socket
    ) -> None:
        self._loop = loop
        self._max_reply = max_reply
        #: Polls the socket: whether the server closed it while idle (poll(0) raises no
        #: exception when there is nothing to read, as a non-blocking recv would).
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[Reply] | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._start()

    def _start(self) -> None:
        """Forget the previous exchange."""
        self._pairs: list[tuple[bytes, bytes]] = []
        self._status = 0
        self._final = False  # the head of the final (non-1xx) reply is complete
        self._body = bytearray()
        self._seen = 0  # body bytes received, kept or not
        self._head_bytes = 0
        self._after_head = 0  # bytes read after the read that completed the head
        self._seen_at_head = 0
        self._reply: Reply | None = None
        self._error: HTTPError | None = None
        self.reusable = False

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            # Bytes nobody asked for: the connection is out of step; never reuse it.
            self.close()
            return
        try:
            if self._final:
                self._after_head += len(data)
                self._parser.feed_data(data)
            else:
                self._feed_head(data)
        except httptools.HttpParserUpgrade:
            self._error = self._error or BadReply("the server switched protocols unasked (101)")
        except httptools.HttpParserError as e:
            if self._reply is not None:
                self.reusable = False  # bytes past the end of the reply: out of step
            elif self._error is None:
                self._error = BadReply(f"not a valid HTTP/1.1 reply: {e}")
        if self._error is not None:
            waiter.set_exception(self._error)
            self.close()
            return
        if self._reply is None and self._final and self._too_long():
            self._reply = self._make_reply()  # cut: the rest is dropped with the connection
            self.reusable = False
        if self._reply is not None:
            waiter.set_result(self._reply)

    def _feed_head(self, data: bytes) -> None:
        room = MAX_HEAD_BYTES - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            self._parser.feed_data(data)
        else:  # feed no more than the head may still take
            self._head_bytes = MAX_HEAD_BYTES
            self._parser.feed_data(data[:room])
            if not self._final:
                self._error = BadReply(f"reply head longer than {MAX_HEAD_BYTES} bytes")
                return
            self._parser.feed_data(data[room:])
        if self._final:
            self._seen_at_head = self._seen

    def _too_long(self) -> bool:
        framing = self._after_head - (self._seen - self._seen_at_head)
        return self._seen > self._max_reply or framing > MAX_FRAMING_BYTES

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._final and self._reply is None and self._ends_with_connection():
            waiter.set_result(self._make_reply())  # the end of the connection ends the body
            return
        detail = f": {exc}" if exc else ""
        waiter.set_exception(Disconnected(f"server closed the connection before replying{detail}"))

    # -- llhttp's callbacks

    def on_message_begin(self) -> None:
        if self._reply is not None:
            self.reusable = False
            raise _PastTheEnd  # more after the reply: stop here; the connection is dropped
        self._pairs = []

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._final:  # a trailer's bytes count as framing; trailers are not kept
            self._pairs.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 200 <= status <= 599:
            self._status = status
            self._final = True
        elif status == 101 or not 100 <= status <= 599:
            self._error = BadReply(f"status {status} is not a reply to a POST")
            raise self._error
        # else an interim reply (100 Continue, 103 Early Hints): llhttp ends it here, and the
        # real reply follows

    def on_body(self, body: bytes) -> None:
        room = self._max_reply - self._seen
        self._seen += len(body)
        if room >= len(body):
            self._body += body
        elif room > 0:
            self._body += body[:room]

    def on_message_complete(self) -> None:
        if not self._final:
            return  # an interim reply ended
        self._reply = self._make_reply()
        self.reusable = self._parser.should_keep_alive()

    # -- an exchange

    async def exchange(self, request: bytes, deadline: float) -> Reply:
        """Send ``request`` and wait for the complete reply until ``deadline`` (loop time).

        At the deadline the connection is closed and TimeoutError raised. A timer handle of
        its own, not ``asyncio.timeout``: this runs for every webhook, and is cheaper.
        """
        assert self.transport is not None
        self._start()
        waiter: asyncio.Future[Reply] = self._loop.create_future()
        self._waiter = waiter
        timer = self._loop.call_at(deadline, self._time_out, waiter)
        self.transport.write(request)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _time_out(self, waiter: asyncio.Future[Reply]) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError())
            self.close()  # mid-exchange: never reusable

    def open_while_idle(self) -> bool:
        """Whether the server left this idle connection open and quiet.

        The loop may not have read the server's FIN yet; the socket has. Anything readable
        on an idle connection (the end of it, a reset, bytes nobody asked for) means no.
        """
        return not self.closed and not self._poll.poll(0)

    def close(self) -> None:
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    # -- the reply

    def _make_reply(self) -> Reply:
        return Reply(self._status, self._pairs, bytes(self._body))

    def _ends_with_connection(self) -> bool:
        """Whether this reply's body runs to the end of the connection (RFC 9112 §6.3)."""
        if self._status in (204, 304):
            return False
        coding = b""
        for name, value in self._pairs:
            lower = name.lower()
            if lower == b"content-length":
                return False
            if lower == b"transfer-encoding":
                coding = value
        return coding.split(b",")[-1].strip().lower() != b"chunked"


class HTTPClient:
    """POSTs over kept-alive HTTP/1.1 connections (see the module's docstring).

    Callers bound concurrency (the webhook sender's per-host slots); this client opens a
    connection whenever none is idle.
    """

    def __init__(
        self,
        *,
        resolver: AbstractResolver,
        ssl_context: ssl.SSLContext | None = None,
        max_reply: int = 64 * 1024,
        keepalive: float = KEEPALIVE,
        refuse: Refuse | None = None,
        happy_eyeballs_delay: float = HAPPY_EYEBALLS_DELAY,
    ) -> None:
        self._resolver = resolver
        self._ssl = ssl_context
        self._max_reply = max_reply
        self._keepalive = keepalive
        self._refuse = refuse
        self._happy_eyeballs_delay = happy_eyeballs_delay
        #: Idle connections per (scheme, host, port), most recently used last.
        self._pools: dict[tuple[str, str, int], deque[_Connection]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    async def post(
        self, url: URL, body: bytes, headers: dict[str, str], *, timeout: float
    ) -> Reply:
        """POST ``body`` to ``url``; raises TimeoutError, ConnectError, AddressRefused,
        Disconnected, BadReply.

        ``timeout`` covers resolving, connecting, sending and the whole reply.
        """
        if self._closed:
            raise HTTPError("the client is closed")
        request = _request(url, body, headers)
        key = (url.scheme, url.raw_host or "", url.port or 0)
        deadline = asyncio.get_running_loop().time() + timeout
        conn = self._idle(key)
        if conn is None:
            async with asyncio.timeout_at(deadline):
                conn = await self._connect(url)
        try:
            return self._done(key, conn, await conn.exchange(request, deadline))
        except BaseException:
            conn.close()
            raise

    def _idle(self, key: tuple[str, str, int]) -> _Connection | None:
        pool = self._pools.get(key)
        while pool:
            conn = pool.pop()
            if conn.open_while_idle():
                return conn
            conn.close()
        return None

    def _done(self, key: tuple[str, str, int], conn: _Connection, reply: Reply) -> Reply:
        if conn.reusable and not conn.closed and not self._closed:
            loop = asyncio.get_running_loop()
            conn.idle_since = loop.time()
            self._pools.setdefault(key, deque()).append(conn)
            if self._sweeper is None:
                self._sweeper = loop.call_later(self._keepalive, self._sweep)
        else:
            conn.close()
        return reply

    def _sweep(self) -> None:
        """Close connections idle for longer than ``keepalive``; run while any are idle."""
        self._sweeper = None
        loop = asyncio.get_running_loop()
        cutoff = loop.time() - self._keepalive
        for key, pool in list(self._pools.items()):
            while pool and (pool[0].idle_since <= cutoff or pool[0].closed):
                pool.popleft().close()
            if not pool:
                del self._pools[key]
        if self._pools:
            self._sweeper = loop.call_later(self._keepalive / 2, self._sweep)

    async def _connect(self, url: URL) -> _Connection:
        host = (url.raw_host or "").strip("[]")
        port = url.port or (443 if url.scheme == "https" else 80)
        addresses = await self._addresses(host, port)
        try:
            sock = await aiohappyeyeballs.start_connection(
                addresses, happy_eyeballs_delay=self._happy_eyeballs_delay, interleave=1
            )
        except OSError as e:
            raise ConnectError(host, port, e) from e
        try:
            self._check_peer(host, sock)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls: ssl.SSLContext | None = None
            if url.scheme == "https":
                tls = self._ssl or _default_ssl()
            loop = asyncio.get_running_loop()
            try:
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop, self._max_reply, sock),
                    sock=sock,
                    ssl=tls,
                    server_hostname=host if tls else None,
                )
            except OSError as e:  # the TLS handshake failed (a certificate, most often)
                raise ConnectError(host, port, e) from e
        except BaseException:
            sock.close()
            raise
        return conn

    async def _addresses(self, host: str, port: int) -> list[aiohappyeyeballs.AddrInfoType]:
        """The addresses to try: the literal one, or what the resolver answers."""
        answers: list[tuple[str, int]]  # (address, family)
        if _is_ip(host):
            if self._refuse is not None:
                reason = self._refuse(ip_address(host))
                if reason is not None:
                    raise AddressRefused(host, [(host, reason)])
            answers = [(host, socket.AF_INET6 if ":" in host else socket.AF_INET)]
        else:
            try:
                resolved = await self._resolver.resolve(host, port, family=socket.AF_UNSPEC)
            except AddressRefused:
                raise  # the guard (SafeResolver) refused every address it resolved to
            except OSError as e:
                raise ConnectError(host, port, e, resolving=True) from e
            answers = [(a["host"], a["family"]) for a in resolved]
        return [
            (
                family,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (address, port, 0, 0) if family == socket.AF_INET6 else (address, port),
            )
            for address, family in answers
        ]

    def _check_peer(self, host: str, sock: socket.socket) -> None:
        """Refuse the connection if the address it reached may not be (the SSRF guard's
        last word, whatever the resolver said)."""
        if self._refuse is None:
            return
        peer = str(sock.getpeername()[0])
        try:
            reason = self._refuse(ip_address(peer))
        except ValueError:
            reason = "unparsable"
        if reason is not None:
            raise AddressRefused(host, [(peer, reason)])

    async def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for pool in self._pools.values():
            while pool:
                pool.pop().close()
        self._pools.clear()
        await asyncio.sleep(0)  # let the transports finish closing


class GuardedClient:
    """An :class:`HTTPClient` behind the SSRF guard, built inside the event loop (as
    aiohttp's default resolver must be): what the webhook and group-robot senders share.

    With ``allow_private=False`` the resolver drops private, loopback, link-local and
    metadata addresses, and each connection is checked on the address it reached.
    ``resolver`` replaces DNS and ``ssl_context`` the system's trust store (tests); the SSRF
    filter still wraps the resolver.
    """

    def __init__(
        self,
        *,
        timeout: float,
        allow_private: bool,
        max_reply: int,
        resolver: AbstractResolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self._max_reply = max_reply
        self._custom_resolver = resolver
        self._ssl_context = ssl_context
        self._resolver: AbstractResolver | None = None
        self._client: HTTPClient | None = None

    async def start(self) -> None:
        if self._client is not None:
            return
        self._resolver = self._custom_resolver or DefaultResolver()
        if not self.allow_private:
            self._resolver = SafeResolver(self._resolver)
        self._client = HTTPClient(
            resolver=self._resolver,
            ssl_context=self._ssl_context,
            max_reply=self._max_reply,
            # The guard's last word: the address each connection actually reached.
            refuse=None if self.allow_private else address_refusal,
        )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        resolver, self._resolver = self._resolver, None
        if resolver is not None and resolver is not self._custom_resolver:
            await resolver.close()

    async def client(self) -> HTTPClient:
        """The client, started on first use."""
        if self._client is None:
            await self.start()
        assert self._client is not None
        return self._client

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


def _request(url: URL, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [_request_head(url), f"Content-Length: {len(body)}"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            raise ValueError(f"header {name!r} holds a line break or colon")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@lru_cache(maxsize=65_536)
def _request_head(url: URL) -> str:
    """The request line and the headers that depend on the URL only (a fan-out repeats it)."""
    host = url.raw_host or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    default = 443 if url.scheme == "https" else 80
    authority = host if url.port in (None, default) else f"{host}:{url.port}"
    lines = [f"POST {url.raw_path_qs or '/'} HTTP/1.1", f"Host: {authority}"]
    if url.user is not None:
        # A URL with user:password@ means Basic authentication, as browsers and aiohttp do.
        secret = f"{url.user}:{url.password or ''}".encode()
        lines.append("Authorization: Basic " + base64.b64encode(secret).decode("ascii"))
    return "\r\n".join(lines)


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


def trust_store(extra_ca_file: Path | None) -> ssl.SSLContext | None:
    """The system's trust store plus the authorities in ``extra_ca_file`` (PEM), hostnames
    checked; None without one (the default store). :class:`ConfigError` naming the setting
    for a file that holds no certificate."""
    if extra_ca_file is None:
        return None
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=str(extra_ca_file))
    except (ssl.SSLError, OSError) as e:
        raise ConfigError(
            f"RELAY_EXTRA_CA_FILE: {extra_ca_file} holds no usable PEM certificate ({e})"
        ) from e
    return context


@cache
def _default_ssl() -> ssl.SSLContext:
    """The system's trust store, hostnames checked (built once: it is costly)."""
    return ssl.create_default_context()
