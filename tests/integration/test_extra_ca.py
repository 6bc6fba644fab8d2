"""RELAY_EXTRA_CA_FILE: partners behind an internal certificate authority (DESIGN §6).

A real HTTPS receiver on loopback with a certificate from a throwaway authority (trustme);
the worker's own senders, as its runtime builds them from the settings.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from relay.adapters.http import trust_store
from relay.core.errors import ConfigError
from relay.core.outcome import OutcomeStatus
from relay.core.settings import Settings, load_settings
from relay.runtime.app import Runtime

pytestmark = [pytest.mark.integration]

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@asynccontextmanager
async def https_receiver(ca: trustme.CA, seen: list[bytes]) -> AsyncIterator[str]:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)

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
    try:
        yield f"https://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


async def send_as_the_worker(settings: Settings, url: str, delivery_id: str) -> tuple[str, str]:
    rt = Runtime(settings)
    async with rt.webhooks as sender:
        out = await sender.send(url=url, delivery_id=delivery_id, body=b"{}", secrets=[SECRET])
    return str(out.status), out.detail


@pytest.mark.asyncio
async def test_an_internal_authority_is_trusted_once_named_and_opens_no_address(
    tmp_path: Path,
) -> None:
    ca = trustme.CA()
    bundle = tmp_path / "internal-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    base = Settings(app_id="ca-test", data_dir=tmp_path, web_port=6099)
    seen: list[bytes] = []
    async with https_receiver(ca, seen) as url:
        trusted = base.replace(extra_ca_file=bundle, allow_private_webhooks=True)
        status, _ = await send_as_the_worker(trusted, url, "msg_ca_1")
        assert status == OutcomeStatus.delivered
        assert seen == [b"{}"]

        # Without the bundle the system's trust store does not know the authority.
        status, detail = await send_as_the_worker(
            base.replace(allow_private_webhooks=True), url, "msg_ca_2"
        )
        assert status == OutcomeStatus.retry and "certificate" in detail.lower()

        # The bundle trusts an authority; it does not open loopback addresses.
        status, detail = await send_as_the_worker(
            base.replace(extra_ca_file=bundle), url, "msg_ca_3"
        )
        assert status == OutcomeStatus.failed
        assert "127.0.0.1" in detail or "private" in detail or "loopback" in detail
    assert seen == [b"{}"]


def test_a_missing_or_unusable_bundle_is_refused_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_EXTRA_CA_FILE", str(tmp_path / "nowhere.pem"))
    with pytest.raises(ConfigError, match="RELAY_EXTRA_CA_FILE.*no such file"):
        load_settings()
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="RELAY_EXTRA_CA_FILE.*no usable PEM"):
        trust_store(junk)
