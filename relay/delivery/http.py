"""A lean HTTP/1.1 client for webhook POSTs: keep-alive pools, checked addresses, bounded replies.

Why not aiohttp's client: a fan-out is thousands of small POSTs to few hosts, and aiohttp's
client spends about 0.1 ms of CPU on each (cookie jar, tracing hooks, redirects, proxies,
streaming bodies), three times what this one needs (measured in ``docs/benchmarks.md``),
and a worker is CPU-bound on exactly that. This client does only what a webhook sender
needs, and does it on a plain :class:`asyncio.Protocol`:

- ``POST`` with a complete body; no redirects (the reply is returned as it is), no proxies,
  no cookies;
- replies framed by ``Content-Length``, ``Transfer-Encoding: chunked`` or the end of the
  connection (RFC 9112 §6.3); 1xx interim replies skipped; at most ``max_reply`` bytes of
  a body kept, and a connection whose reply was longer is closed, never reused;
- connections kept alive per (scheme, host, port) and reused most-recent-first, closed
  after ``keepalive`` seconds idle; a request on a reused connection that the server had
  closed meanwhile is sent again once on a new one (same bytes, so the same webhook-id);
- names resolved by an aiohttp resolver (the SSRF guard wraps it), then the connection is
  made to those addresses, in order, and to nothing else; TLS verified by default.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
from collections import deque
from dataclasses import dataclass
from functools import cache, lru_cache

from aiohttp.abc import AbstractResolver
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from relay.delivery.safety import AddressRefused

#: Longest status line plus headers accepted in a reply.
MAX_HEAD_BYTES = 64 * 1024
#: Seconds an idle kept-alive connection is kept (aiohttp's default too).
KEEPALIVE = 15.0


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
    """The server's reply is not HTTP/1.x."""


@dataclass(slots=True)
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    #: At most ``max_reply`` bytes of the body.
    body: bytes


_NO_BODY = frozenset({204, 304})


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection, one exchange at a time, with an incremental reply parser."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_reply: int) -> None:
        self._loop = loop
        self._max_reply = max_reply
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[Reply] | None = None
        self._buf = bytearray()
        self._got_bytes = False
        self._reset()

    def _reset(self) -> None:
        self._status = 0
        self._headers: CIMultiDict[str] | None = None
        self._body = bytearray()
        self._mode = ""  # "length" | "chunked" | "close" | "none"
        self._remaining = 0  # bytes left of the body (length) or of the current chunk
        self._chunk_state = "size"  # "size" | "data" | "crlf" | "trailers"
        self._truncated = False
        self.reusable = True

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            # Bytes nobody asked for: the connection is out of step; never reuse it.
            self.close()
            return
        self._got_bytes = True
        self._buf += data
        try:
            reply = self._parse()
        except BadReply as e:
            self._fail(e)
            self.close()
            return
        if reply is not None:
            self._waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._mode == "close" and self._headers is not None:
            waiter.set_result(self._finish())  # the end of the connection ends the body
            return
        detail = f": {exc}" if exc else ""
        waiter.set_exception(Disconnected(f"server closed the connection before replying{detail}"))

    # -- an exchange

    async def exchange(self, request: bytes, deadline: float) -> Reply:
        """Send ``request`` and wait for the complete reply until ``deadline`` (loop time).

        At the deadline the connection is closed and TimeoutError raised. A timer handle of
        its own, not ``asyncio.timeout``: this runs for every webhook, and is cheaper.
        """
        assert self.transport is not None
        self._reset()
        self._buf.clear()
        self._got_bytes = False
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

    @property
    def got_bytes(self) -> bool:
        """Whether the last exchange received anything at all (a stale connection does not)."""
        return self._got_bytes

    def close(self) -> None:
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)

    # -- the reply parser

    def _parse(self) -> Reply | None:
        while self._headers is None:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEAD_BYTES:
                    raise BadReply("reply headers too long")
                return None
            head = bytes(self._buf[:end])
            del self._buf[: end + 4]
            self._head(head)
        if self._mode == "none":
            return self._finish()
        if self._mode == "length":
            return self._read_length()
        if self._mode == "chunked":
            return self._read_chunked()
        self._keep(self._buf)  # "close": everything until the connection ends
        self._buf.clear()
        return self._finish() if self._truncated else None

    def _head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        code = rest[:3]
        if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
            raise BadReply(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        status = int(code)
        pairs: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t") and pairs:  # obsolete line folding
                name, value = pairs[-1]
                pairs[-1] = (name, value + " " + line.strip().decode("latin-1"))
                continue
            raw_name, sep, raw_value = line.partition(b":")
            if not sep or not raw_name or raw_name != raw_name.strip():
                raise BadReply(f"malformed header line: {line[:80]!r}")
            pairs.append((raw_name.decode("latin-1"), raw_value.strip().decode("latin-1")))
        if 100 <= status < 200:
            return  # an interim reply (100 Continue, 103 Early Hints): the real one follows
        headers: CIMultiDict[str] = CIMultiDict(pairs)
        self._status = status
        self._headers = headers
        if version == b"HTTP/1.0":
            self.reusable = False
        elif "connection" in headers:
            tokens = {t.strip().lower() for t in headers.getone("connection").split(",")}
            if "close" in tokens:
                self.reusable = False
        coding = headers.get("transfer-encoding")
        if status in _NO_BODY:
            self._mode = "none"
        elif coding is not None:
            if coding.split(",")[-1].strip().lower() != "chunked":
                self._mode = "close"  # RFC 9112 §6.3: read until the connection closes
                self.reusable = False
            else:
                self._mode = "chunked"
        elif "content-length" in headers:
            lengths = {v.strip() for v in headers.getall("content-length")}
            only = lengths.pop() if len(lengths) == 1 else ""
            if not only.isdigit():
                raise BadReply("invalid Content-Length")
            self._remaining = int(only)
            self._mode = "length" if self._remaining else "none"
        else:
            self._mode = "close"
            self.reusable = False

    def _keep(self, data: bytes | bytearray | memoryview) -> None:
        room = self._max_reply - len(self._body)
        if len(data) > room:
            self._truncated = True
        if room > 0:
            self._body += data[:room]

    def _read_length(self) -> Reply | None:
        take = min(self._remaining, len(self._buf))
        self._keep(memoryview(self._buf)[:take])
        del self._buf[:take]
        self._remaining -= take
        if self._truncated:
            return self._finish()  # enough of it: the rest is dropped with the connection
        return self._finish() if self._remaining == 0 else None

    def _read_chunked(self) -> Reply | None:
        buf = self._buf
        while True:
            if self._chunk_state == "size":
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > 1024:
                        raise BadReply("chunk size line too long")
                    return None
                size = bytes(buf[:end]).split(b";", 1)[0].strip()
                del buf[: end + 2]
                try:
                    self._remaining = int(size, 16)
                except ValueError:
                    raise BadReply(f"invalid chunk size {size[:20]!r}") from None
                self._chunk_state = "data" if self._remaining else "trailers"
            elif self._chunk_state == "data":
                take = min(self._remaining, len(buf))
                self._keep(memoryview(buf)[:take])
                del buf[:take]
                self._remaining -= take
                if self._truncated:
                    return self._finish()
                if self._remaining:
                    return None
                self._chunk_state = "crlf"
            elif self._chunk_state == "crlf":
                if len(buf) < 2:
                    return None
                if buf[:2] != b"\r\n":
                    raise BadReply("chunk not followed by CRLF")
                del buf[:2]
                self._chunk_state = "size"
            else:  # trailers: header lines up to an empty one
                end = buf.find(b"\r\n")
                if end < 0:
                    return None
                del buf[: end + 2]
                if end == 0:
                    return self._finish()

    def _finish(self) -> Reply:
        assert self._headers is not None
        if self._truncated or self._buf:
            self.reusable = False  # cut short, or more bytes than the reply: drop it
        return Reply(self._status, CIMultiDictProxy(self._headers), bytes(self._body))


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
    ) -> None:
        self._resolver = resolver
        self._ssl = ssl_context
        self._max_reply = max_reply
        self._keepalive = keepalive
        #: Idle connections per (scheme, host, port), most recently used last.
        self._pools: dict[tuple[str, str, int], deque[_Connection]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    async def post(
        self, url: URL, body: bytes, headers: dict[str, str], *, timeout: float
    ) -> Reply:
        """POST ``body`` to ``url``; raises TimeoutError, ConnectError, Disconnected, BadReply.

        ``timeout`` covers resolving, connecting, sending and the whole reply.
        """
        if self._closed:
            raise HTTPError("the client is closed")
        request = _request(url, body, headers)
        key = (url.scheme, url.raw_host or "", url.port or 0)
        deadline = asyncio.get_running_loop().time() + timeout
        conn = self._idle(key)
        if conn is not None:
            try:
                return self._done(key, conn, await conn.exchange(request, deadline))
            except Disconnected:
                conn.close()
                if conn.got_bytes:
                    raise
                # Closed by the server while idle (it answered nothing): a new one.
            except BaseException:
                conn.close()
                raise
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
            if not conn.closed:
                return conn
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
        bare = (url.raw_host or "").strip("[]")
        port = url.port or (443 if url.scheme == "https" else 80)
        addresses: list[tuple[str, int, int]]
        if _is_ip(bare):
            family = socket.AF_INET6 if ":" in bare else socket.AF_INET
            addresses = [(bare, port, family)]
        else:
            try:
                answers = await self._resolver.resolve(bare, port, family=socket.AF_UNSPEC)
            except AddressRefused:
                raise  # the guard (SafeResolver) refused every address it resolved to
            except OSError as e:
                raise ConnectError(bare, port, e, resolving=True) from e
            addresses = [(a["host"], a["port"], a["family"]) for a in answers]
        tls: ssl.SSLContext | None = None
        if url.scheme == "https":
            tls = self._ssl or _default_ssl()
        loop = asyncio.get_running_loop()
        error: OSError = OSError("no address to connect to")
        for address, address_port, address_family in addresses:
            try:
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop, self._max_reply),
                    address,
                    address_port,
                    family=address_family,
                    ssl=tls,
                    server_hostname=bare if tls else None,
                )
            except OSError as e:
                error = e
                continue
            sock = conn.transport.get_extra_info("socket") if conn.transport else None
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return conn
        raise ConnectError(bare, port, error)

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


@cache
def _default_ssl() -> ssl.SSLContext:
    """The system's trust store, hostnames checked (built once: it is costly)."""
    return ssl.create_default_context()
