"""Local receivers for dev/demo: an SMTP sink that keeps every message, a verifying webhook sink."""

from __future__ import annotations

import email
import email.policy
import json
import re
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class ReceivedMail:
    path: Path
    message: EmailMessage
    recipients: list[str]


class _MailHandler:
    def __init__(self, sink: SMTPSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.sink.keep(raw, msg, [str(r) for r in envelope.rcpt_tos])
        return "250 Message accepted for delivery"


class SMTPSink:
    """An aiosmtpd server on loopback that writes each message to ``directory`` as ``.eml``."""

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.directory = directory
        self.host = host
        self.port = port
        self.received: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def keep(self, raw: bytes, msg: EmailMessage, recipients: list[str]) -> None:
        with self._lock:
            n = len(self.received) + 1
            ident = re.sub(r"[^A-Za-z0-9_-]", "", str(msg.get("X-Relay-Delivery-Id", "")))[:40]
            path = self.directory / f"{n:04d}-{ident or 'message'}.eml"
            path.write_bytes(raw)
            self.received.append(ReceivedMail(path, msg, recipients))

    def start(self) -> None:
        from relay.embedded.broker import free_port

        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port(self.host)
        self._controller = Controller(
            _MailHandler(self), hostname=self.host, port=self.port, ready_timeout=10
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@dataclass
class ReceivedHook:
    partner_id: str
    webhook_id: str
    verified: bool
    payload: dict[str, Any] | None
    error: str | None = None


@dataclass
class WebhookSink:
    """An HTTP receiver at ``/hooks/{partner_id}`` that verifies each request per Standard Webhooks.

    Answers 204 when the signature verifies with that partner's secret, 401 when it does not.
    """

    secrets: dict[str, str]
    host: str = "127.0.0.1"
    port: int = 0
    received: list[ReceivedHook] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    def url_for(self, partner_id: str) -> str:
        return f"http://{self.host}:{self.port}/hooks/{partner_id}"

    async def _handle(self, request: web.Request) -> web.Response:
        partner_id = request.match_info["partner_id"]
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        secret = self.secrets.get(partner_id)
        if secret is None:
            return web.Response(status=404, text="unknown partner")
        try:
            payload = Webhook(secret).verify(body, headers)
        except WebhookVerificationError as e:
            self.received.append(
                ReceivedHook(partner_id, headers.get("webhook-id", ""), False, None, str(e))
            )
            return web.Response(status=401, text=f"signature not verified: {e}")
        self.received.append(
            ReceivedHook(
                partner_id,
                headers["webhook-id"],
                True,
                payload if isinstance(payload, dict) else json.loads(body),
            )
        )
        return web.Response(status=204)

    async def start(self) -> None:
        from relay.embedded.broker import free_port

        app = web.Application()
        app.router.add_post("/hooks/{partner_id}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        if not self.port:
            self.port = free_port(self.host)
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
