"""Loopback stand-ins for partner systems: a verifying webhook receiver and an SMTP recorder.

async with WebhookReceiver(secrets={"/hooks/a": secret}) as r:
    ... r.url_for("/hooks/a") ...
    await r.wait_for(1)
    assert r.verified[0].payload["type"] == "policy.relayed"

with SMTPRecorder() as s:
    ... EmailSender(host=s.host, port=s.port) ...
    await s.wait_for(1)
    assert s.messages[0]["Subject"].startswith("[政策推送]")
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import inspect
import random
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, cast

from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

# --------------------------------------------------------------------------- webhooks


@dataclass(slots=True)
class Received:
    """One request that reached the receiver, verified or not."""

    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    verified: bool
    error: str | None = None
    #: The parsed JSON body, when the signature verified.
    payload: Any = None
    #: The status the receiver answered (0 while the reply is still pending).
    status: int = 0
    #: The client's (address, port): one value per TCP connection, to see keep-alive at work.
    peer: Any = None
    at: float = field(default_factory=time.monotonic)

    @property
    def webhook_id(self) -> str | None:
        return self.headers.get("webhook-id")


@dataclass(frozen=True, slots=True)
class Reply:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str = ""
    #: Seconds to wait before answering (for timeout tests).
    delay: float = 0.0


Behaviour = Callable[[Received], Reply | Awaitable[Reply]]


def accept(request: Received) -> Reply:
    """The default: 200 for a valid signature, 401 otherwise."""
    return Reply(200) if request.verified else Reply(401, body=request.error or "bad signature")


def respond(
    status: int, *, headers: Mapping[str, str] | None = None, body: str = "", delay: float = 0.0
) -> Behaviour:
    """Always answer the same way."""
    reply = Reply(status, dict(headers or {}), body, delay)
    return lambda request: reply


def fail_first(n: int, status: int = 503) -> Behaviour:
    """Answer ``status`` to the first ``n`` requests, then behave like :func:`accept`."""
    seen = 0

    def behaviour(request: Received) -> Reply:
        nonlocal seen
        seen += 1
        return Reply(status) if seen <= n else accept(request)

    return behaviour


def flaky(rate: float = 0.5, *, status: int = 503, seed: int = 0) -> Behaviour:
    """Fail a ``rate`` share of requests (reproducibly, from ``seed``), accept the rest."""
    rng = random.Random(seed)
    return lambda request: Reply(status) if rng.random() < rate else accept(request)


class Hold:
    """A behaviour that keeps every request waiting until :meth:`release`, then answers
    as ``then`` would.

    A fault test uses it to keep a delivery in flight (and so its batch unacknowledged)
    for exactly as long as it needs, e.g. until it has killed the worker.
    """

    def __init__(self, then: Behaviour = accept) -> None:
        self.then = then
        self.released = asyncio.Event()
        #: Requests that arrived and are still waiting.
        self.waiting = 0

    async def __call__(self, request: Received) -> Reply:
        self.waiting += 1
        try:
            await self.released.wait()
        finally:
            self.waiting -= 1
        reply = self.then(request)
        return await reply if inspect.isawaitable(reply) else reply

    def release(self) -> None:
        self.released.set()


class WebhookReceiver:
    """An aiohttp server on 127.0.0.1, port 0, verifying Standard Webhooks signatures.

    ``secrets`` maps each path to its secret (or several, for rotation); other paths get
    404. ``behaviour`` decides the reply, for every path or per path.
    """

    def __init__(
        self,
        secrets: Mapping[str, str | Sequence[str]],
        behaviour: Behaviour | Mapping[str, Behaviour] | None = None,
        *,
        host: str = "127.0.0.1",
    ) -> None:
        self.secrets = {path: [s] if isinstance(s, str) else list(s) for path, s in secrets.items()}
        self.behaviour = behaviour
        self.host = host
        self.port = 0
        self.received: list[Received] = []
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url_for(self, path: str) -> str:
        return self.base_url + path

    @property
    def verified(self) -> list[Received]:
        return [r for r in self.received if r.verified]

    def ids(self, path: str | None = None) -> list[str]:
        """The ``webhook-id`` of every verified request, in arrival order."""
        return [r.headers["webhook-id"] for r in self.verified if path is None or r.path == path]

    async def wait_for(
        self, count: int, *, timeout: float = 10.0, path: str | None = None
    ) -> list[Received]:
        """Wait until ``count`` verified requests arrived (on ``path``), and return them."""

        def done() -> list[Received]:
            return [r for r in self.verified if path is None or r.path == path]

        try:
            async with asyncio.timeout(timeout):
                while len(done()) < count:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            where = f" on {path}" if path else ""
            seen = [(r.path, r.status, r.error) for r in self.received][-5:]
            raise AssertionError(
                f"{len(done())} of {count} verified requests{where} after {timeout:g} s "
                f"({len(self.received)} requests in all; the last: {seen})"
            ) from None
        return done()

    def _behaviour_for(self, path: str) -> Behaviour:
        if self.behaviour is None:
            return accept
        if isinstance(self.behaviour, Mapping):
            return self.behaviour.get(path, accept)
        return self.behaviour

    def _verify(self, path: str, headers: dict[str, str], body: bytes) -> Received:
        secrets = self.secrets.get(path)
        if secrets is None:
            return Received(path, headers, body, verified=False, error="unknown path")
        error = "no secret"
        for secret in secrets:
            try:
                payload = Webhook(secret).verify(body, headers)
            except (WebhookVerificationError, ValueError) as e:
                error = f"{type(e).__name__}: {e}"
                continue
            return Received(path, headers, body, verified=True, payload=payload)
        return Received(path, headers, body, verified=False, error=error)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        received = self._verify(request.path, headers, body)
        received.peer = request.transport.get_extra_info("peername") if request.transport else None
        self.received.append(received)
        if received.error == "unknown path":
            received.status = 404
            self._changed.set()
            return web.Response(status=404, text="unknown path")
        reply = self._behaviour_for(request.path)(received)
        if inspect.isawaitable(reply):
            reply = await reply
        if reply.delay:
            await asyncio.sleep(reply.delay)
        received.status = reply.status
        self._changed.set()
        return web.Response(status=reply.status, headers=dict(reply.headers), text=reply.body)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # Cancel a slow handler when the client gives up, so stopping never waits on it.
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> WebhookReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class StaticResolver(AbstractResolver):
    """A DNS stand-in: ``{"partner.example": ["127.0.0.1"]}``; unknown names do not resolve."""

    def __init__(self, table: Mapping[str, Sequence[str]]) -> None:
        self.table = {name: list(addrs) for name, addrs in table.items()}
        self.lookups: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups.append(host)
        if host not in self.table:
            raise OSError(socket.EAI_NONAME, f"{host} does not resolve")
        return [
            ResolveResult(
                hostname=host,
                host=addr,
                port=port,
                family=socket.AF_INET6 if ":" in addr else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
            for addr in self.table[host]
        ]

    async def close(self) -> None:
        pass


# --------------------------------------------------------------------------- SMTP


@dataclass(frozen=True, slots=True)
class Envelope:
    mail_from: str
    rcpt_tos: list[str]
    peer: Any


class _PortZeroController(Controller):
    """aiosmtpd's threaded controller, able to listen on port 0 and report the port."""

    def _trigger_server(self) -> None:
        server = cast(asyncio.Server, self.server)
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SMTPRecorder:
    """A real aiosmtpd server on 127.0.0.1 that parses and records what it accepts.

    ``rcpt_reply(address)`` may return an SMTP reply (e.g. ``"550 no such user"``) to refuse
    a recipient; ``data_reply`` (a string or a function of the envelope) may refuse the
    message at DATA. ``connections`` counts the SMTP sessions that greeted (EHLO/HELO).
    After :meth:`stop`, :meth:`start` listens again on the same port.
    """

    def __init__(
        self,
        *,
        rcpt_reply: Callable[[str], str | None] | None = None,
        data_reply: str | Callable[[Envelope], str | None] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply
        self.host = host
        self.port = 0
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []
        self.envelopes: list[Envelope] = []
        self._peers: list[Any] = []
        self._lock = threading.Lock()
        self._controller: _PortZeroController | None = None

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._peers)

    # aiosmtpd handler hooks (run in the server's thread) ---------------------------

    def _greeted(self, session: Any, hostname: str) -> None:
        session.host_name = hostname
        with self._lock:
            if session.peer not in self._peers:
                self._peers.append(session.peer)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self._greeted(session, hostname)
        return responses

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:
        self._greeted(session, hostname)
        return f"250 {server.hostname}"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.rcpt_reply(address) if self.rcpt_reply else None
        if reply is not None and not reply.startswith("2"):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        env = Envelope(envelope.mail_from, list(envelope.rcpt_tos), session.peer)
        reply = self.data_reply(env) if callable(self.data_reply) else self.data_reply
        if reply is not None and not reply.startswith("2"):
            return reply
        raw = bytes(envelope.original_content or envelope.content)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.raw.append(raw)
            self.messages.append(message)
            self.envelopes.append(env)
            n = len(self.messages)
        return f"250 OK queued as {n}"

    # lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._controller = _PortZeroController(self, hostname=self.host, port=self.port)
        self._controller.start()
        self.port = self._controller.port

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    async def wait_for(self, count: int, *, timeout: float = 10.0) -> list[EmailMessage]:
        """Wait until ``count`` messages were accepted, and return them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
                got = len(self.messages)
            if loop.time() > deadline:
                raise AssertionError(
                    f"{got} of {count} messages accepted after {timeout:g} s "
                    f"({self.connections} SMTP sessions greeted)"
                )
            await asyncio.sleep(0.02)

    def __enter__(self) -> SMTPRecorder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
