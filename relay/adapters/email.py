"""Relay emails over SMTP (aiosmtplib), one reused connection per sender."""

from __future__ import annotations

import asyncio
import time
from email.message import EmailMessage
from types import TracebackType
from typing import Self

import aiosmtplib

from relay.core.outcome import Outcome, OutcomeStatus
from relay.core.retry import smtp_status

DEFAULT_TIMEOUT = 30.0


class EmailSender:
    """Sends messages over one SMTP connection, reopened when the server drops it.

    ``send`` never raises for SMTP or network trouble; it returns an :class:`Outcome`:
    accepted → delivered; 4xx, timeouts and connection problems → retry; a 5xx for this
    message (sender, every recipient, or the data) → failed. Trouble that is about the relay
    rather than the message (greeting, EHLO, authentication) → retry, so fixing the
    configuration lets the deliveries through.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        local_hostname: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.starttls = starttls
        self.timeout = timeout
        self.local_hostname = local_hostname
        #: How many SMTP connections this sender has opened (for metrics and tests).
        self.connections_opened = 0
        self._smtp: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"EmailSender(host={self.host!r}, port={self.port}, username={self.username!r})"

    async def _connect(self) -> aiosmtplib.SMTP:
        smtp = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self._password,
            start_tls=self.starttls,
            timeout=self.timeout,
            local_hostname=self.local_hostname,
        )
        await smtp.connect()
        self.connections_opened += 1
        return smtp

    async def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    async def _send_once(self, message: EmailMessage) -> tuple[dict[str, object], str]:
        reused = self._smtp is not None and self._smtp.is_connected
        if not reused:
            await self._drop()
            self._smtp = await self._connect()
        assert self._smtp is not None
        try:
            refused, reply = await self._smtp.send_message(message)
        except aiosmtplib.SMTPServerDisconnected:
            if not reused:
                raise
            # An idle connection the server had already closed: open a fresh one, once.
            await self._drop()
            self._smtp = await self._connect()
            refused, reply = await self._smtp.send_message(message)
        return dict(refused), reply

    async def send(self, message: EmailMessage) -> Outcome:
        """Send one message; its To/Cc headers are the recipients."""
        async with self._lock:
            started = time.perf_counter()

            def outcome(
                status: OutcomeStatus, detail: str, code: int | None = None, *, late: bool = False
            ) -> Outcome:
                elapsed = (time.perf_counter() - started) * 1000
                return Outcome(status, detail, latency_ms=elapsed, smtp_code=code, timed_out=late)

            try:
                refused, reply = await self._send_once(message)
            except aiosmtplib.SMTPRecipientsRefused as e:
                worst = max(r.code for r in e.recipients) if e.recipients else 550
                listed = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in e.recipients)
                return outcome(smtp_status(worst), f"all recipients refused: {listed}", worst)
            except (aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPDataError) as e:
                return outcome(smtp_status(e.code), f"SMTP {e.code} {e.message}", e.code)
            except aiosmtplib.SMTPAuthenticationError as e:
                await self._drop()
                detail = f"SMTP authentication failed ({e.code} {e.message}); check the username"
                return outcome(OutcomeStatus.retry, detail + " and password", e.code)
            except aiosmtplib.SMTPResponseException as e:
                # Greeting or EHLO refused: the server, not this message.
                await self._drop()
                return outcome(OutcomeStatus.retry, f"SMTP {e.code} {e.message}", e.code)
            except aiosmtplib.SMTPTimeoutError as e:
                await self._drop()
                return outcome(OutcomeStatus.retry, f"SMTP timeout: {e}", late=True)
            except aiosmtplib.SMTPNotSupported as e:
                await self._drop()
                return outcome(OutcomeStatus.failed, f"SMTP server cannot take it: {e}")
            except (aiosmtplib.SMTPException, OSError) as e:
                await self._drop()
                return outcome(OutcomeStatus.retry, f"SMTP connection failed: {e}")
            except ValueError as e:
                # No From or no recipients: nothing a retry can fix.
                return outcome(OutcomeStatus.failed, f"message cannot be sent: {e}")

            detail = f"accepted: {reply}"
            if refused:
                detail += "; refused: " + "; ".join(f"{a}: {r}" for a, r in refused.items())
            return outcome(OutcomeStatus.delivered, detail, 250)

    async def close(self) -> None:
        """Say QUIT politely if connected, then drop the connection."""
        async with self._lock:
            smtp, self._smtp = self._smtp, None
            if smtp is None:
                return
            try:
                if smtp.is_connected:
                    await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                pass
            finally:
                smtp.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
