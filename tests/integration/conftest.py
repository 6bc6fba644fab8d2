"""One embedded stack per test session: real Tansu broker, real worker process, real receivers.

The sample partners of config/partners.yaml are loaded, with their webhooks pointed at a
verifying receiver and their email going to an aiosmtpd recorder owned by the tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser

from relay.adapters import kafka
from relay.adapters.files import load_partners
from relay.core import topics
from relay.core.models import WebhookChannel, audit_records
from relay.core.settings import Settings
from relay.core.settling import Progress
from relay.embedded.broker import free_port
from relay.embedded.stack import Stack
from tests.helpers import clock
from tests.helpers.browser import chromium
from tests.helpers.receivers import SMTPRecorder, WebhookReceiver

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "examples" / "documents"


def sample_event(name: str) -> dict[str, Any]:
    """A sample event, its dates moved with the session's calendar (tests.helpers.clock)."""
    data: dict[str, Any] = clock.sample(json.loads((DOCS / name).read_text(encoding="utf-8")))
    return data


def renamed(event: dict[str, Any], doc_id: str, event_id: str | None = None) -> dict[str, Any]:
    """A copy of a sample event under a fresh document id, so tests do not share documents."""
    out = json.loads(json.dumps(event))
    out["document"]["id"] = doc_id
    # Its own title too: tests find their emails by subject.
    out["document"]["title"] = f"{out['document']['title']}［{doc_id}］"
    out["event_id"] = event_id or str(uuid.uuid4())
    copied: dict[str, Any] = out
    return copied


@dataclass
class RelayUnderTest:
    stack: Stack
    hooks: WebhookReceiver
    smtp: SMTPRecorder
    settings: Settings

    async def publish(self, *records: tuple[str | None, bytes]) -> None:
        await kafka.produce(self.settings, [(topics.DOCUMENTS, k, v) for k, v in records])

    async def publish_events(self, *events: dict[str, Any]) -> None:
        await self.publish(
            *[(e["document"]["id"], json.dumps(e, ensure_ascii=False).encode()) for e in events]
        )

    async def settle(self, event_ids: list[str], timeout: float = 60.0) -> Progress:
        progress = Progress(event_ids)

        def on_record(rec: kafka.Record) -> None:
            for r in audit_records(rec.value or b""):
                progress.add(r)

        ok = await kafka.follow(
            self.settings, topics.AUDIT, on_record, lambda: progress.settled, timeout
        )
        assert ok, f"not settled: {progress.unsettled_events()} {progress.pending()[:5]}"
        return progress

    async def rejections(self) -> list[dict[str, Any]]:
        return [
            json.loads(r.value or b"{}")
            for r in await kafka.read_topic(self.settings, topics.REJECTED)
        ]


def run_relay_cli(
    relay: RelayUnderTest | None,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m relay ARGS`` as a user would, against the test broker if given."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    if "RELAY_CLOCK_OFFSET" in os.environ:
        # The session's moved calendar reaches the commands too (a dev-only setting).
        full_env["RELAY_CLOCK_OFFSET"] = os.environ["RELAY_CLOCK_OFFSET"]
        full_env["RELAY_PROFILE"] = "dev"
    if relay is not None:
        full_env["RELAY_BROKER_URL"] = relay.settings.broker
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "relay", *args],
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def stack_settings(name: str, smtp: SMTPRecorder, run_dir: Path, **tuned: Any) -> Settings:
    """A test stack's settings: an app id of its own, a free web port, the SMTP recorder,
    the run's data dir, the tests' operator token and link secret; ``tuned``: the rest."""
    return Settings(
        app_id=f"relay-{name}-{uuid.uuid4().hex[:8]}",
        web_port=free_port(),
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        data_dir=run_dir,
        operator_token="test-operator-token",
        link_secret="test-link-secret",
        **tuned,
    )


@asynccontextmanager
async def own_relay(name: str, run_dir: Path, **tuned: Any) -> AsyncIterator[RelayUnderTest]:
    """A stack of a module's own, without partners, with its own SMTP recorder and webhook
    receiver (see :func:`stack_settings`)."""
    with SMTPRecorder() as smtp:
        async with WebhookReceiver({}) as hooks:
            settings = stack_settings(name, smtp, run_dir, **tuned)
            async with Stack(settings, [], run_dir=run_dir, broker_port=free_port()) as stack:
                assert stack.worker_settings is not None
                yield RelayUnderTest(stack, hooks, smtp, stack.worker_settings)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def relay(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RelayUnderTest]:
    partners = load_partners(ROOT / "config" / "partners.yaml")
    secrets = {
        f"/hooks/{p.id}": ch.secret
        for p in partners
        for ch in p.channels
        if isinstance(ch, WebhookChannel)
    }
    run_dir = tmp_path_factory.mktemp("relay")
    with SMTPRecorder() as smtp:
        async with WebhookReceiver(secrets) as hooks:
            partners = [
                p.model_copy(
                    update={
                        "channels": [
                            ch.model_copy(update={"url": hooks.url_for(f"/hooks/{p.id}")})
                            if isinstance(ch, WebhookChannel)
                            else ch
                            for ch in p.channels
                        ]
                    }
                )
                for p in partners
            ]
            settings = stack_settings(
                "test",
                smtp,
                run_dir,
                # A compressed retry schedule, floor and timeouts: the fault tests see the
                # whole retry life of a delivery in seconds.
                retry_schedule=(0.5, 1.0, 1.0, 2.0),
                retry_floor=1.0,
                retry_tick=0.2,
                webhook_timeout=2.0,
                disable_after=8.0,
                stall_timeout=15.0,
            )
            stack = Stack(settings, partners, run_dir=run_dir, broker_port=free_port())
            async with stack:
                assert stack.worker_settings is not None
                yield RelayUnderTest(stack, hooks, smtp, stack.worker_settings)


@dataclass
class ApiUnderTest:
    """The worker's HTTP API over real HTTP, with the operator's credentials.

    ``hooks`` is a receiver of its own for the partners the API tests create, so their
    test notices never show up among the deliveries other tests count.
    """

    relay: RelayUnderTest
    http: httpx.AsyncClient
    operator_token: str
    link_secret: str
    hooks: WebhookReceiver

    @property
    def op(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.operator_token}"}


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def api(relay: RelayUnderTest) -> AsyncIterator[ApiUnderTest]:
    ws = relay.settings
    assert ws.operator_token is not None and ws.link_secret is not None
    async with (
        WebhookReceiver({}) as hooks,
        httpx.AsyncClient(base_url=relay.stack.web_url, timeout=30) as http,
    ):
        yield ApiUnderTest(
            relay,
            http,
            ws.operator_token.get_secret_value(),
            ws.link_secret.get_secret_value(),
            hooks,
        )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, launched once for the session's browser tests."""
    async with chromium() as launched:
        yield launched
