"""The production rules for webhooks, end to end: https only, and no private addresses.

A stack of its own (embedded broker, worker process) whose worker runs the production
profile with ``RELAY_ALLOW_PRIVATE_WEBHOOKS=false``, as a real deployment does. Partners
reach it as a partner file would bring them (the partners topic), so the channel checks of
the API are not what stops them: delivery is. The production profile tunes Faust for
Apache Kafka (60 s sessions, a group join would take half a minute on the embedded
broker); the worker gets the dev profile's timings back through Faust's own
``RELAY_FAUST_*`` variables, and nothing else of the dev profile.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from relay.adapters import kafka
from relay.core import topics
from relay.core.models import DeliveryStatus, Partner, audit_records
from relay.core.settings import Settings
from relay.core.settling import Progress
from relay.core.signing import new_secret
from relay.embedded.broker import free_port
from relay.embedded.stack import Stack
from tests.helpers.api import eventually
from tests.integration.test_faults import REGION, TAG, fault_event

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

#: Faust timings of the dev profile (relay.runtime.app.faust_settings), for the embedded broker.
EMBEDDED_BROKER_TIMINGS = {
    "RELAY_FAUST_BROKER_SESSION_TIMEOUT": "6",
    "RELAY_FAUST_BROKER_HEARTBEAT_INTERVAL": "1.5",
    "RELAY_FAUST_BROKER_REBALANCE_TIMEOUT": "10",
    "RELAY_FAUST_BROKER_REQUEST_TIMEOUT": "12",
    "RELAY_FAUST_BROKER_COMMIT_INTERVAL": "1.0",
}


class ProductionStack(Stack):
    """The embedded stack, its worker in the production profile refusing private webhooks."""

    def worker_env(self) -> dict[str, str]:
        # Production sends robot messages to the platforms, never to the stack's sink, and
        # keeps the real calendar (it refuses RELAY_CLOCK_OFFSET, which a test session may set).
        dev_only = ("RELAY_BOT_SINK_URL", "RELAY_CLOCK_OFFSET")
        env = {k: v for k, v in super().worker_env().items() if k not in dev_only}
        return env | {
            "RELAY_PROFILE": "production",
            "RELAY_ALLOW_PRIVATE_WEBHOOKS": "false",
            **EMBEDDED_BROKER_TIMINGS,
        }


class Listener:
    """A TCP server on 127.0.0.1 that counts connections (and answers none)."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    async def __aenter__(self) -> Listener:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def production(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    run_dir: Path = tmp_path_factory.mktemp("production")
    settings = Settings(
        app_id=f"relay-prod-{uuid.uuid4().hex[:8]}",
        web_port=free_port(),
        data_dir=run_dir,
        link_secret="test-link-secret",
        webhook_timeout=2.0,
    )
    async with ProductionStack(settings, [], run_dir=run_dir, broker_port=free_port()) as stack:
        yield stack


def partner(pid: str, url: str) -> Partner:
    return Partner.model_validate(
        {
            "id": pid,
            "kind": "park",
            "name": f"生产规则测试 {pid}",
            "coverage": {"regions": [REGION], "parks": ["prod"]},
            "interests": {"tags_any": [TAG]},
            "channels": [{"type": "webhook", "url": url, "secret": new_secret()}],
        }
    )


async def partners_held(stack: Stack) -> bool:
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{stack.web_url}/readyz")
    return int(r.json().get("partners", 0)) >= 4


async def settle(
    settings: Settings, event_id: str, receiver: Listener, timeout: float = 90
) -> Progress:
    progress = Progress([event_id])

    def on_record(rec: kafka.Record) -> None:
        for r in audit_records(rec.value or b""):
            progress.add(r)

    done = await kafka.follow(settings, topics.AUDIT, on_record, lambda: progress.settled, timeout)
    assert done, (
        f"not settled after {timeout:g} s: {progress.pending()}; "
        f"{receiver.connections} connections reached the receiver"
    )
    return progress


async def test_production_refuses_plain_http_and_private_addresses_and_connects_to_none(
    production: Stack,
) -> None:
    settings = production.worker_settings
    assert settings is not None
    async with Listener() as receiver:
        port = receiver.port
        partners = {
            "plain": partner("prod-plain", f"http://127.0.0.1:{port}/hook"),
            "loopback": partner("prod-loopback", f"https://127.0.0.1:{port}/hook"),
            "named": partner("prod-named", f"https://localhost:{port}/hook"),
            "private": partner("prod-private", "https://10.20.30.40/hook"),
        }
        await kafka.produce(
            settings,
            [(topics.PARTNERS, p.id, p.model_dump_json().encode()) for p in partners.values()],
        )
        await eventually(
            lambda: partners_held(production), what="the worker's registry holding the partners"
        )
        ev = fault_event("prod")
        await kafka.produce(
            settings,
            [(topics.DOCUMENTS, ev["document"]["id"], json.dumps(ev).encode())],
        )
        progress = await settle(settings, ev["event_id"], receiver)
        assert receiver.connections == 0

    outcomes = {o.partner_id: o for o in progress.outcomes.values()}
    assert set(outcomes) == {p.id for p in partners.values()}
    assert {(o.status, o.attempt) for o in outcomes.values()} == {(DeliveryStatus.failed, 1)}
    details = {name: outcomes[p.id].detail or "" for name, p in partners.items()}
    assert "https" in details["plain"], details
    assert "127.0.0.1" in details["loopback"] and "loopback" in details["loopback"], details
    # A local name is refused before any DNS lookup (relay.adapters.safety.url_refusal).
    assert "localhost is a local name" in details["named"], details
    assert "10.20.30.40" in details["private"] and "private" in details["private"], details

    letters = [
        json.loads(r.value or b"{}") for r in await kafka.read_topic(settings, topics.DEAD_LETTER)
    ]
    assert {d["delivery_id"] for d in letters} == {o.delivery_id for o in outcomes.values()}
    assert {d["dead_reason"] for d in letters} == {"permanent_failure"}
