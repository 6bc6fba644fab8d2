"""Starting and stopping the whole embedded stack: broker, sinks, partners, worker."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from aiokafka import ConsumerRecord
from pydantic import SecretStr, ValidationError

from relay.adapters import kafka
from relay.adapters.follower import TopicFollower
from relay.core import topics
from relay.core.chatbots import robot_of
from relay.core.errors import RelayError
from relay.core.models import BotChannel, Partner, WebhookChannel, WecomChannel
from relay.core.settings import EMBEDDED_BROKER_URL, Settings
from relay.embedded.broker import (
    EmbeddedBroker,
    die_with_parent,
    free_port,
    port_is_free,
    stop_process,
)
from relay.embedded.sinks import BotSink, SMTPSink, WebhookSink

#: Reserved documentation domains (RFC 2606): nothing real answers there, so dev and demo
#: send their webhooks to the local sink instead.
EXAMPLE_DOMAINS = ("example.org", "example.com", "example.net")


def is_example_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return any(host == d or host.endswith("." + d) for d in EXAMPLE_DOMAINS)


def redirect_examples(partners: list[Partner], sink: WebhookSink) -> list[Partner]:
    """Point every example-domain webhook at the sink, registering its secret there."""
    out = []
    for p in partners:
        channels = []
        for i, ch in enumerate(p.channels):
            if isinstance(ch, WebhookChannel) and is_example_url(ch.url):
                key = p.id if i == _first_webhook(p) else f"{p.id}--{ch.id}"
                sink.secrets[key] = ch.secret
                ch = ch.model_copy(update={"url": sink.url_for(key)})
            channels.append(ch)
        out.append(p.model_copy(update={"channels": channels}))
    return out


def register_robots(partner: Partner, sink: BotSink) -> int:
    """Tell the robot sink about the partner's group robots on the platforms' own hosts
    (their tokens, secrets and keywords), so it checks their messages as the platform would.
    Returns how many."""
    n = 0
    for ch in partner.channels:
        if not isinstance(ch, BotChannel):
            continue
        found = robot_of(ch.url)
        if found is None:
            continue  # not a platform URL: sent where it points, not to the sink
        platform, token = found
        if isinstance(ch, WecomChannel):
            sink.register(platform, token)
        else:
            sink.register(platform, token, ch.secret, ch.keyword)
        n += 1
    return n


class RobotFollower(TopicFollower):
    """Registers every group robot of every partner on the partners topic with the sink: the
    partners file's and those a partner adds through the API while the stack runs."""

    def __init__(self, settings: Settings, sink: BotSink, **kwargs: object) -> None:
        self.sink = sink
        super().__init__(settings, topics.PARTNERS, self._apply, **kwargs)
        self.quiet = True

    def _apply(self, msg: ConsumerRecord[bytes, bytes]) -> None:
        if msg.value is None:
            return  # a deleted partner: its robots may stay known
        try:
            partner = Partner.model_validate_json(msg.value)
        except ValidationError:
            return  # the worker's registry logs it
        register_robots(partner, self.sink)


def _env_value(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def _first_webhook(p: Partner) -> int:
    return next(i for i, c in enumerate(p.channels) if isinstance(c, WebhookChannel))


async def import_partners(settings: Settings, partners: list[Partner]) -> None:
    await kafka.produce(
        settings,
        [(topics.PARTNERS, p.id, p.model_dump_json().encode()) for p in partners],
    )


@dataclass
class Stack:
    """The embedded stack; use as ``async with Stack(...) as stack``."""

    settings: Settings
    partners: list[Partner]
    run_dir: Path
    #: demo picks free ports when the defaults are taken; dev insists on the defaults.
    flexible_ports: bool = False
    #: Where the embedded broker listens (tests pass a free port).
    broker_port: int = 9092
    broker: EmbeddedBroker | None = None
    smtp: SMTPSink | None = None
    hooks: WebhookSink = field(default_factory=lambda: WebhookSink(secrets={}))
    #: Stands in for 企业微信, 钉钉 and 飞书: messages to their hosts come here.
    bots: BotSink | None = None
    robots: RobotFollower | None = None
    worker: subprocess.Popen[bytes] | None = None
    worker_settings: Settings | None = None
    _supervisor: asyncio.Task[None] | None = None

    @property
    def worker_log(self) -> Path:
        return self.run_dir / "worker.log"

    @property
    def mail_dir(self) -> Path:
        return self.run_dir / "mail"

    @property
    def bot_dir(self) -> Path:
        return self.run_dir / "bots"

    async def __aenter__(self) -> Stack:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for old in [*self.mail_dir.glob("*.eml"), *self.bot_dir.glob("*.json")]:
            old.unlink()
        s = self.settings
        updates: dict[str, object] = {
            "profile": "dev",
            "allow_private_webhooks": True,
        }
        if s.link_secret is None:
            # Acknowledgement links in dev/demo mail work without any setup.
            updates["link_secret"] = secrets.token_urlsafe(32)
        if s.broker_url is None:
            port = self.broker_port
            if self.flexible_ports and not port_is_free("127.0.0.1", port):
                port = free_port()
            self.broker = EmbeddedBroker(port=port, log_path=self.run_dir / "broker.log")
            await self.broker.start()
            updates["broker_url"] = self.broker.url
        if s.smtp_host is None:
            self.smtp = SMTPSink(self.mail_dir)
            self.smtp.start()
            updates.update(
                smtp_host=self.smtp.host,
                smtp_port=self.smtp.port,
                smtp_username=None,
                smtp_password=None,
                smtp_starttls=False,
            )
        if s.bot_sink_url is None:
            self.bots = BotSink(self.bot_dir, grace=5.0)
            await self.bots.start()
            updates["bot_sink_url"] = self.bots.base_url
            for p in self.partners:
                register_robots(p, self.bots)
        if self.flexible_ports and not port_is_free(s.web_host, s.web_port):
            updates["web_port"] = free_port(s.web_host)
        self.worker_settings = ws = s.replace(**updates)
        await self.hooks.start()
        self.partners = redirect_examples(self.partners, self.hooks)
        await kafka.ensure_topics(ws)
        await import_partners(ws, self.partners)
        if self.bots is not None:
            self.robots = RobotFollower(ws, self.bots)
            await self.robots.start()
        self.start_worker()
        await self.wait_ready()
        self._supervisor = asyncio.create_task(self._supervise())

    async def _supervise(self) -> None:
        """Start the worker again if it exits on its own (the watchdog stops a stuck one)."""
        while True:
            await asyncio.sleep(0.5)
            proc = self.worker
            if proc is not None and proc.poll() is not None:
                with open(self.worker_log, "a") as log:
                    log.write(
                        f"relay stack: worker exited with code {proc.returncode}; "
                        "starting a new one\n"
                    )
                self.start_worker()

    def worker_env(self) -> dict[str, str]:
        """The worker's environment: ours, with every RELAY_* setting as the stack resolved it
        (from the same variables, with the stack's own changes), and RELAY_FAUST_* as is."""
        ws = self.worker_settings
        assert ws is not None
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("RELAY_") or k.startswith("RELAY_FAUST_")
        }
        for name, value in ws.model_dump().items():
            if value is None:
                continue
            env[f"RELAY_{name.upper()}"] = _env_value(value)
        env["RELAY_BROKER_URL"] = ws.broker
        env["RELAY_DATA_DIR"] = str(self.run_dir)
        return env

    def start_worker(self) -> None:
        self.worker = self.spawn_worker(self.worker_log)

    def spawn_worker(
        self, log_path: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """A `relay worker` process with the stack's settings (plus ``env``), logging to
        ``log_path``. More than the stack's own worker join its consumer group; give each a
        ``RELAY_WEB_PORT`` of its own. The caller stops those."""
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "relay", "worker"],
                env=self.worker_env() | (env or {}),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,  # noqa: PLW1509
            )

    async def kill_worker(self) -> None:
        """SIGKILL the worker, as a crash would (for fault tests)."""
        proc, self.worker = self.worker, None  # so the supervisor leaves it dead
        if proc is not None:
            proc.kill()
            await asyncio.to_thread(proc.wait, 10)

    async def restart_worker(self, settings: Settings) -> None:
        """Stop the worker (as its service manager would) and start one with ``settings``,
        e.g. its policy calendar moved; returns once it is ready."""
        proc, self.worker = self.worker, None  # so the supervisor does not start one too
        await asyncio.to_thread(stop_process, proc, 15)
        self.worker_settings = settings
        self.start_worker()
        await self.wait_ready()

    @property
    def web_url(self) -> str:
        assert self.worker_settings is not None
        return self.worker_settings.base_url

    async def wait_ready(self, timeout: float = 90.0) -> None:
        """Wait for the worker's /readyz; fail with the end of its log if it dies."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                if self.worker is not None and self.worker.poll() is not None:
                    raise RelayError(
                        f"the worker exited with code {self.worker.returncode}; "
                        f"last lines of {self.worker_log}:\n{self.log_tail()}"
                    )
                try:
                    async with http.get(
                        f"{self.web_url}/readyz", timeout=aiohttp.ClientTimeout(total=2)
                    ) as r:
                        if r.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise RelayError(
                        f"the worker was not ready after {timeout:.0f}s; see {self.worker_log}"
                    )
                await asyncio.sleep(0.25)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.worker_log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            self._supervisor = None
        stop_process(self.worker, timeout=15)
        self.worker = None
        await self.hooks.stop()
        if self.robots is not None:
            await self.robots.stop()
            self.robots = None
        if self.bots is not None:
            await self.bots.stop()
        if self.smtp is not None:
            self.smtp.stop()
        if self.broker is not None:
            self.broker.stop()

    @property
    def broker_url(self) -> str:
        return self.worker_settings.broker if self.worker_settings else EMBEDDED_BROKER_URL
