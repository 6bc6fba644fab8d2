"""Two workers and a stream of partner changes: both registries converge on the topic's state."""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import pytest

from relay.adapters import kafka
from relay.core import topics
from relay.core.models import Partner
from relay.embedded.broker import free_port, stop_process
from tests.integration.conftest import RelayUnderTest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


def changing_partner(pid: str, version: int) -> Partner:
    return Partner.model_validate(
        {
            "id": pid,
            "kind": "association",
            "name": f"注册表测试协会 {pid} v{version}",
            # 浦东新区 and a tag nobody publishes: no other test's documents reach them.
            "coverage": {"regions": ["310115"], "parks": [f"registry-{pid}"]},
            "interests": {"tags_any": ["注册表测试"]},
        }
    )


async def registry_of(http: httpx.AsyncClient, url: str, token: str) -> dict[str, str]:
    r = await http.get(
        f"{url}/api/v1/partners",
        params={"limit": 10_000},
        headers={"Authorization": f"Bearer {token}"},
    )
    r.raise_for_status()
    return {p["id"]: p["name"] for p in r.json() if p["id"].startswith("reg-")}


async def test_two_workers_converge_on_a_stream_of_partner_changes(
    relay: RelayUnderTest,
) -> None:
    stack = relay.stack
    assert relay.settings.operator_token is not None
    token = relay.settings.operator_token.get_secret_value()
    port = free_port()
    env = {"RELAY_WEB_PORT": str(port), "RELAY_INSTANCE_ID": "worker-2"}
    second = stack.spawn_worker(stack.run_dir / "worker2.log", env)
    rng = random.Random(7)
    ids = [f"reg-{i:03d}" for i in range(60)]
    expected: dict[str, str] = {}
    try:
        # 300 changes over ~6 s, so some land while the second worker joins the group and
        # the first one rebalances.
        for step in range(30):
            batch: list[tuple[str, str | None, bytes | None]] = []
            for _ in range(10):
                pid = rng.choice(ids)
                if pid in expected and rng.random() < 0.2:
                    batch.append((topics.PARTNERS, pid, None))
                    expected.pop(pid)
                else:
                    p = changing_partner(pid, step)
                    batch.append((topics.PARTNERS, pid, p.model_dump_json().encode()))
                    expected[pid] = p.name
            await kafka.produce(relay.settings, batch)
            await asyncio.sleep(0.2)

        urls = [stack.web_url, f"http://{relay.settings.web_host}:{port}"]
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=10) as http:
            while True:
                try:
                    views = [await registry_of(http, url, token) for url in urls]
                except httpx.HTTPError:
                    views = []
                if len(views) == 2 and all(v == expected for v in views):
                    break
                assert second.poll() is None, "the second worker died"
                assert time.monotonic() < deadline, (
                    f"registries did not converge: {[len(v) for v in views]} "
                    f"partners vs {len(expected)} expected"
                )
                await asyncio.sleep(0.5)
        assert len(expected) > 10  # the stream left a real mix of live and removed partners
    finally:
        stop_process(second, timeout=20)
