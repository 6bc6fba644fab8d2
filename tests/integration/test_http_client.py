"""The webhook HTTP client against real servers on loopback: framing, reuse, limits, TLS.

Scripted raw servers answer exactly the bytes a test needs (chunked, close-delimited,
oversized, interim replies, dropped connections); the TLS test runs a real aiohttp server
with a certificate from a throwaway authority (trustme).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import struct
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest
import trustme
from aiohttp import web
from aiohttp.resolver import DefaultResolver
from yarl import URL

from relay.adapters.http import MAX_HEAD_BYTES, BadReply, Disconnected, HTTPClient
from relay.adapters.safety import AddressRefused, address_refusal
from relay.adapters.webhook import MAX_REPLY_BYTES, WebhookSender
from relay.core.outcome import OutcomeStatus
from tests.helpers.receivers import StaticResolver

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = b'{"hello":"world"}'


class AndClose(bytes):
    """A reply after which the server closes the connection (while the client holds it idle)."""


#: Read the request, then close the connection without a word (FIN).
CLOSE = None
#: Read the request, then reset the connection (RST).
RESET = b"<reset>"


class RawServer:
    """Reads one request at a time (head + Content-Length body) and answers from a list."""

    def __init__(self, replies: list[bytes | None]) -> None:
        self.replies = replies  # CLOSE or RESET: end the connection without answering
        self.requests: list[bytes] = []
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.replies:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                self.requests.append(head + await reader.readexactly(length))
                reply = self.replies.pop(0)
                if reply is CLOSE:
                    break
                if reply == RESET:
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                writer.write(reply)
                await writer.drain()
                if (
                    isinstance(reply, AndClose)
                    or b"connection: close" in reply.lower()
                    or b"content-length" not in (reply.lower())
                    and b"chunked" not in reply.lower()
                ):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    def url(self, path: str = "/hook") -> URL:
        return URL(f"http://127.0.0.1:{self.port}{path}")


class StreamingServer:
    """Answers every connection with ``head``, then ``filler`` again and again until the
    client hangs up; counts what it managed to send."""

    def __init__(self, head: bytes, filler: bytes) -> None:
        self.head = head
        self.filler = filler
        self.sent = 0
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(self.head)
            while True:
                writer.write(self.filler)
                self.sent += len(self.filler)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> StreamingServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    def url(self) -> URL:
        return URL(f"http://127.0.0.1:{self.port}/hook")


@asynccontextmanager
async def client(**options: object) -> AsyncIterator[HTTPClient]:
    options.setdefault("resolver", DefaultResolver())
    c = HTTPClient(**options)  # type: ignore[arg-type]
    try:
        yield c
    finally:
        await c.close()


def ok(body: bytes = b"", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def test_a_request_carries_host_length_headers_and_body_and_the_connection_is_reused() -> (
    None
):
    async with RawServer([ok(b"fine"), ok(b"again")]) as server, client() as c:
        first = await c.post(server.url("/hook?x=1"), BODY, {"webhook-id": "m1"}, timeout=5)
        second = await c.post(server.url(), BODY, {"webhook-id": "m2"}, timeout=5)
    assert (first.status, first.body, second.body) == (200, b"fine", b"again")
    head = server.requests[0].decode()
    assert head.startswith("POST /hook?x=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n" in head
    assert "Content-Length: 17\r\n" in head and "webhook-id: m1\r\n" in head
    assert server.requests[0].endswith(BODY)
    assert server.connections == 1


async def test_a_chunked_reply_with_trailers_is_read_whole_and_keeps_the_connection() -> None:
    chunked = (
        b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\nRetry-After: 7\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
    )
    async with RawServer([chunked, ok()]) as server, client() as c:
        reply = await c.post(server.url(), BODY, {}, timeout=5)
        again = await c.post(server.url(), BODY, {}, timeout=5)
    assert (reply.status, reply.body, reply.headers["retry-after"]) == (503, b"hello world", "7")
    assert again.status == 200
    assert server.connections == 1


async def test_interim_replies_are_skipped_and_connection_close_is_honoured() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"done", b"Connection: close\r\n")
    async with RawServer([interim, ok()]) as server, client() as c:
        reply = await c.post(server.url(), BODY, {}, timeout=5)
        await c.post(server.url(), BODY, {}, timeout=5)
    assert (reply.status, reply.body) == (200, b"done")
    assert server.connections == 2  # the first connection was not reused


async def test_a_reply_without_length_runs_to_the_end_of_the_connection() -> None:
    async with RawServer([b"HTTP/1.0 404 Not Found\r\n\r\nno such hook"]) as server:
        async with client() as c:
            reply = await c.post(server.url(), BODY, {}, timeout=5)
    assert (reply.status, reply.body) == (404, b"no such hook")


async def test_a_huge_reply_is_cut_at_the_limit_and_its_connection_dropped() -> None:
    huge = b"x" * (MAX_REPLY_BYTES * 4)
    async with RawServer([ok(huge), ok(b"next")]) as server, client() as c:
        reply = await c.post(server.url(), BODY, {}, timeout=5)
        nxt = await c.post(server.url(), BODY, {}, timeout=5)
    assert reply.status == 200 and reply.body == huge[:MAX_REPLY_BYTES]
    assert nxt.body == b"next"
    assert server.connections == 2


async def test_a_connection_the_server_closed_while_idle_is_replaced_without_a_failure() -> None:
    # The server answers and closes the connection; by the next request the loop has seen
    # that, and the request goes out, once, on a new connection.
    async with RawServer([AndClose(ok()), ok(b"second")]) as server, client() as c:
        await c.post(server.url(), BODY, {"webhook-id": "a"}, timeout=5)
        await asyncio.sleep(0.1)
        reply = await c.post(server.url(), BODY, {"webhook-id": "b"}, timeout=5)
    assert reply.body == b"second"
    assert server.connections == 2
    assert [r.count(b"webhook-id: b") for r in server.requests] == [0, 1]


@contextmanager
def thread_server(reply: bytes) -> Iterator[tuple[int, list[bytes]]]:
    """A server on its own thread: each connection gets one request read, ``reply``, and is
    closed at once, whatever the client's event loop is doing."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)  # so the thread sees ``stop`` soon
    requests: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                data = b""
                while b"\r\n\r\n" not in data or not data.endswith(BODY):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                requests.append(data)
                conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], requests
    finally:
        stop.set()
        thread.join(5)
        listener.close()


async def test_an_idle_connection_closed_before_the_loop_noticed_is_not_written_to() -> None:
    # The server's FIN reaches the socket while the event loop is blocked, so the client
    # still holds the connection as open; a poll of the socket finds it closed before a
    # byte is written, and the request goes out once, on a new connection.
    with thread_server(ok(b"fine")) as (port, requests):
        async with client() as c:
            url = URL(f"http://127.0.0.1:{port}/hook")
            await c.post(url, BODY, {"webhook-id": "a"}, timeout=5)
            time.sleep(0.3)  # the loop does not run: the server's close is not seen yet
            reply = await c.post(url, BODY, {"webhook-id": "b"}, timeout=5)
    assert reply.body == b"fine"
    assert [r.count(b"webhook-id: b") for r in requests] == [0, 1]


@pytest.mark.parametrize("end", [CLOSE, RESET], ids=["closed", "reset"])
async def test_a_request_the_server_read_before_hanging_up_is_not_sent_again(
    end: bytes | None,
) -> None:
    # POST is not idempotent (RFC 9110 §9.2.2): the server may have acted on it. The error
    # goes to the caller, whose retry keeps the same webhook-id.
    async with RawServer([ok(), end, ok(b"second")]) as server, client() as c:
        await c.post(server.url(), BODY, {"webhook-id": "a"}, timeout=5)
        with pytest.raises(Disconnected):
            await c.post(server.url(), BODY, {"webhook-id": "b"}, timeout=5)
    assert [r.count(b"webhook-id: b") for r in server.requests] == [0, 1]
    assert server.connections == 1


async def test_a_connection_dropped_mid_reply_or_a_garbled_reply_is_an_error() -> None:
    partial = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nonly part"
    async with RawServer([partial]) as server, client() as c:
        with pytest.raises(Disconnected):
            await c.post(server.url(), BODY, {}, timeout=5)
    async with RawServer([b"SMTP/9 what\r\n\r\n"]) as server, client() as c:
        with pytest.raises(BadReply):
            await c.post(server.url(), BODY, {}, timeout=5)


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    "reply",
    [
        CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n",
        CHUNKED + b"+5\r\nhello\r\n0\r\n\r\n",
        CHUNKED + b"0_5\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: ²\r\n\r\n".encode("latin-1"),  # str.isdigit: True
        b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n",
        # llhttp (strict, as uvicorn runs it) wants CRLF; lenient parsers take a bare LF.
        b"HTTP/1.1 200 OK\nContent-Length: 2\n\nhi",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\nX-A: 1\r\n\r\nhi",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n",
    ],
    ids=[
        "chunk-size-0x5",
        "chunk-size-plus5",
        "chunk-size-0_5",
        "content-length-superscript-2",
        "status-2000",
        "status-099",
        "bare-lf-everywhere",
        "bare-lf-in-a-header",
        "two-lengths",
        "unasked-101",
    ],
)
async def test_a_reply_llhttp_refuses_is_a_bad_reply_at_once(
    reply: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    # The server keeps the connection open: a parser waiting for more would hang until
    # the timeout; an exception inside data_received would be asyncio's "Fatal error".
    async with RawServer([reply + b"\r\n\r\n", ok()]) as server, client() as c:
        with pytest.raises(BadReply):
            await c.post(server.url(), BODY, {}, timeout=3)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("head", "filler"),
    [
        (CHUNKED + b"5\r\nhello\r\n0\r\nX-Trailer: ", b"a" * 65536),
        (CHUNKED + b"5\r\nhello\r\n0\r\n", b"X-Trailer: yes\r\n" * 4096),
        (CHUNKED + b"5\r\nhello\r\n5;", b"e" * 65536),
    ],
    ids=["one-endless-trailer", "endless-trailers", "endless-chunk-extension"],
)
async def test_what_follows_the_body_is_bounded_and_the_connection_dropped(
    head: bytes, filler: bytes
) -> None:
    # The status and body are whole; the server would go on for ever. The reply is taken
    # as it stands once the framing passes its cap, and the connection is not reused.
    async with StreamingServer(head, filler) as server, client() as c:
        reply = await c.post(server.url(), BODY, {}, timeout=5)
        again = await c.post(server.url(), BODY, {}, timeout=5)
    assert (reply.status, reply.body, again.body) == (200, b"hello", b"hello")
    assert server.connections == 2


async def test_endless_interim_replies_are_a_head_too_long() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" * 1000
    async with StreamingServer(b"", interim) as server, client() as c:
        with pytest.raises(BadReply, match=f"longer than {MAX_HEAD_BYTES}"):
            await c.post(server.url(), BODY, {}, timeout=5)


async def test_endless_headers_are_a_head_too_long() -> None:
    header = b"X-Padding: " + b"p" * 1000 + b"\r\n"
    async with StreamingServer(b"HTTP/1.1 200 OK\r\n", header) as server, client() as c:
        with pytest.raises(BadReply, match="too long|longer than"):
            await c.post(server.url(), BODY, {}, timeout=5)


@contextmanager
def black_hole(host: str, port: int) -> Iterator[None]:
    """``host:port`` swallows connection attempts: a listener whose backlog is full drops
    every SYN, as a broken route or firewall would."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as listener:
        listener.bind((host, port))
        listener.listen(0)
        with socket.create_connection((host, port), timeout=2):  # fills the backlog
            yield


async def test_an_address_that_swallows_packets_does_not_hold_up_the_next_one() -> None:
    # A name whose first answer is a dead IPv6 address: tried one after another, it would
    # eat the whole timeout; Happy Eyeballs tries the next address 250 ms later.
    async with RawServer([ok(b"over IPv4")]) as server:
        with black_hole("::1", server.port):
            dns = StaticResolver({"hooks.partner.example": ["::1", "127.0.0.1"]})
            url = URL(f"http://hooks.partner.example:{server.port}/hook")
            async with client(resolver=dns) as c:
                reply = await c.post(url, BODY, {}, timeout=5)
    assert reply.body == b"over IPv4"
    assert len(server.requests) == 1


async def test_the_address_actually_connected_to_is_judged_whatever_the_resolver_said() -> None:
    # A resolver without the guard's filter: only the check on the connected socket's peer
    # address stands between the name and the loopback receiver.
    dns = StaticResolver({"hooks.partner.example": ["127.0.0.1"]})
    async with RawServer([ok()]) as server:
        url = URL(f"http://hooks.partner.example:{server.port}/hook")
        async with client(resolver=dns, refuse=address_refusal) as c:
            with pytest.raises(AddressRefused, match=r"127\.0\.0\.1 \(loopback\)"):
                await c.post(url, BODY, {}, timeout=5)
        async with client(resolver=dns, refuse=address_refusal) as c:
            with pytest.raises(AddressRefused):  # a literal address: judged before connecting
                await c.post(server.url(), BODY, {}, timeout=5)
        async with client(resolver=dns) as c:
            allowed = await c.post(url, BODY, {}, timeout=5)
    assert allowed.status == 200
    assert len(server.requests) == 1


async def test_a_header_value_with_a_line_break_is_refused_before_sending() -> None:
    async with RawServer([ok()]) as server, client() as c:
        with pytest.raises(ValueError, match="line break"):
            await c.post(server.url(), BODY, {"webhook-id": "a\r\nX-Evil: 1"}, timeout=5)
    assert server.requests == []


async def test_https_is_verified_against_the_trust_store_it_is_given() -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("hooks.partner.example")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    seen: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append(await request.read())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"https://hooks.partner.example:{port}/hook"
    dns = StaticResolver({"hooks.partner.example": ["127.0.0.1"]})
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    try:
        async with WebhookSender(allow_private=True, resolver=dns, ssl_context=trusted) as s:
            good = await s.send(url=url, delivery_id="msg_tls", body=BODY, secrets=[SECRET])
        # The system's trust store does not know the throwaway authority: refused, retried.
        async with WebhookSender(allow_private=True, resolver=dns) as s:
            bad = await s.send(url=url, delivery_id="msg_tls2", body=BODY, secrets=[SECRET])
    finally:
        await runner.cleanup()
    assert good.status is OutcomeStatus.delivered and good.http_status == 204
    assert seen == [BODY]
    assert bad.status is OutcomeStatus.retry
    assert "certificate" in bad.detail.lower()


async def test_a_name_that_does_not_resolve_is_retried_and_says_so() -> None:
    dns = StaticResolver({})
    async with WebhookSender(allow_private=True, resolver=dns) as sender:
        outcome = await sender.send(
            url="http://hooks.nowhere.example/hook",
            delivery_id="msg_dns",
            body=BODY,
            secrets=[SECRET],
        )
    assert outcome.status is OutcomeStatus.retry
    assert outcome.detail.startswith("connection failed: cannot resolve hooks.nowhere.example")


async def test_ipv6_literals_and_credentials_in_the_url_reach_the_receiver() -> None:
    seen: list[tuple[str, str | None]] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append((request.host, request.headers.get("Authorization")))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "::1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with WebhookSender(allow_private=True) as sender:
            plain = await sender.send(
                url=f"http://[::1]:{port}/hook", delivery_id="msg_v6", body=BODY, secrets=[SECRET]
            )
            basic = await sender.send(
                url=f"http://relay:s3cret@[::1]:{port}/hook",
                delivery_id="msg_v6b",
                body=BODY,
                secrets=[SECRET],
            )
    finally:
        await runner.cleanup()
    assert plain.status is basic.status is OutcomeStatus.delivered
    assert seen == [(f"[::1]:{port}", None), (f"[::1]:{port}", "Basic cmVsYXk6czNjcmV0")]
