"""`relay partners export` / `import` as a backup and a restore, and `relay status`, run as
a user runs them (subprocesses) against the test stack's broker and worker."""

from __future__ import annotations

import asyncio
import hashlib
import stat
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from relay.adapters import kafka
from relay.adapters.files import load_partners
from relay.core import topics
from relay.core.models import WebhookChannel
from relay.embedded.broker import free_port
from tests.helpers.api import bearer, create_partner, eventually, hook, unique
from tests.integration.conftest import ApiUnderTest, run_relay_cli

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


def cli(api: ApiUnderTest, *args: str, token: str | None = None) -> tuple[int, str, str]:
    port = str(urlsplit(api.relay.stack.web_url).port)
    env = {"RELAY_WEB_PORT": port}
    if token is not None:
        env["RELAY_OPERATOR_TOKEN"] = token
    done = run_relay_cli(api.relay, *args, env=env)
    return done.returncode, done.stdout, done.stderr


async def partner_answer(api: ApiUnderTest, pid: str, token: str) -> int:
    r = await api.http.get(f"/api/v1/partners/{pid}", headers=bearer(token))
    return r.status_code


async def test_an_export_restores_a_lost_partner_with_its_token_and_secrets(
    api: ApiUnderTest, tmp_path: Path
) -> None:
    pid = unique("p-backup")
    _, channel = hook(api, pid)
    token = await create_partner(api, pid, unique("tag"), [channel])
    backup = tmp_path / "partners.yaml"

    code, out, err = await asyncio.to_thread(cli, api, "partners", "export", str(backup))
    assert code == 0, err
    assert "partners to" in out and str(backup) in out
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    text = backup.read_text(encoding="utf-8")
    assert token not in text  # never in clear, only its hash
    assert hashlib.sha256(token.encode()).hexdigest() in text
    assert channel["secret"] in text  # the relay signs with it: a restore needs it
    saved = {p.id: p for p in load_partners(backup)}
    restored = saved[pid].channels[0]
    assert isinstance(restored, WebhookChannel) and restored.secret == channel["secret"]

    # The partner is lost (a tombstone on the partners topic): its token stops working.
    await kafka.produce(api.relay.settings, [(topics.PARTNERS, pid, None)])

    async def gone() -> bool:
        return await partner_answer(api, pid, token) == 401

    await eventually(gone, timeout=30, what="the lost partner's token refused")

    code, out, err = await asyncio.to_thread(cli, api, "partners", "import", str(backup))
    assert code == 0, err

    async def back() -> bool:
        return await partner_answer(api, pid, token) == 200

    await eventually(back, timeout=30, what="the restored partner's own token accepted")

    # Exported again, the registry is what the backup held: a round trip.
    again = tmp_path / "again.json"
    code, _, err = await asyncio.to_thread(cli, api, "partners", "export", str(again))
    assert code == 0, err
    assert {p.id: p for p in load_partners(again)} == saved


async def test_export_to_stdout_is_the_file_import_takes(api: ApiUnderTest, tmp_path: Path) -> None:
    code, out, err = await asyncio.to_thread(cli, api, "partners", "export")
    assert code == 0, err
    assert out.startswith("# Policy Relay partners")
    assert "exported" in err
    (tmp_path / "stdout.yaml").write_text(out, encoding="utf-8")
    assert len(load_partners(tmp_path / "stdout.yaml")) >= 1


async def test_status_shows_the_workers_figures(api: ApiUnderTest) -> None:
    code, out, err = await asyncio.to_thread(cli, api, "status", token=api.operator_token)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("worker ") and "ready" in lines[0] and "up " in lines[0]
    for heading in ("partners", "workers", "lag", "deliveries", "dead letters", "throughput"):
        assert any(line.startswith(heading) for line in lines), heading
    assert any(line.startswith("workers       1 alive") for line in lines)
    assert len(lines) <= 24  # one screen

    code, out, err = await asyncio.to_thread(cli, api, "status")
    assert code == 0, err
    assert "set RELAY_OPERATOR_TOKEN" in out
    assert not any(line.startswith("throughput") for line in out.splitlines())

    code, out, err = await asyncio.to_thread(cli, api, "status", token="not-the-token")
    assert code == 0, err
    assert "answered 401" in out


async def test_status_of_an_unreachable_worker_is_one_line(api: ApiUnderTest) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = await asyncio.to_thread(cli, api, "status", "--url", url)
    assert code == 1
    assert out == ""
    assert err.startswith(f"relay: error: no relay worker answers at {url}")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "(connection refused)" in err

    code, out, err = await asyncio.to_thread(cli, api, "status", "--url", "relay-worker-1:6066")
    assert code == 1
    assert err == (
        "relay: error: --url: expected a worker's address like http://host:6066, "
        "got 'relay-worker-1:6066'\n"
    )
