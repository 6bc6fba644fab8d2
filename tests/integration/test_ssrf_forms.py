"""Hostile webhook URL forms: refused when a partner registers one iff delivery would refuse it.

Both sides run for real with private webhooks refused, as in production: the API's partner
routes (``create_api``; only the partners topic behind them is a stand-in, as the request
never gets that far when it is refused) and the webhook sender, whose DNS answers the
public-looking names from a table (no test needs the internet) and whose timeout is short,
as a permitted URL's public address is not reachable from a test.
"""

from __future__ import annotations

import base64
import secrets
import socket
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import pytest
from aiohttp.abc import ResolveResult
from aiohttp.resolver import DefaultResolver

from relay.adapters.safety import check_url
from relay.adapters.webhook import WebhookSender
from relay.core.errors import UnsafeWebhookURL
from relay.core.models import Partner
from relay.core.outcome import OutcomeStatus
from relay.core.settings import Profile, Settings
from relay.runtime.app import Runtime
from relay.web.api import create_api
from tests.helpers.receivers import StaticResolver

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

#: Every form points at this machine, its network or the cloud's metadata service.
HOSTILE = [
    "http://１２７.０.０.１:8099/x",  # full-width digits: IDNA maps them to 127.0.0.1
    "http://127。0。0。1/x",  # ideographic full stops
    "http://①②⑦.0.0.1/x",  # circled digits
    "http://ｌｏｃａｌｈｏｓｔ/x",
    "http://2130706433/x",  # 127.0.0.1 as one decimal number
    "http://0x7f000001/x",
    "http://0x7f.1/x",
    "http://0177.0.0.1/x",  # octal
    "http://127.1/x",
    "http://0/x",
    "http://0.0.0.0/x",
    "http://[::]/x",
    "http://[::1]/x",
    "http://[0:0:0:0:0:0:0:1]/x",
    "http://[::ffff:127.0.0.1]/x",  # IPv4-mapped IPv6
    "http://[::ffff:a9fe:a9fe]/x",  # 169.254.169.254, mapped
    "http://[64:ff9b::7f00:1]/x",  # NAT64
    "http://[fe80::1%25eth0]/x",  # a zone id
    "http://127.0.0.1./x",  # trailing dot
    "http://localhost./x",
    "http://%31%32%37.0.0.1/x",  # percent-encoded host
    "http://example.org@127.0.0.1/x",  # userinfo: the host is 127.0.0.1
    "http://hooks.example.org:80@10.0.0.7/x",
    "http://10.0.0.1:８０/x",  # a full-width port
    "http://169.254.169.254/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://printer.local/x",
    "http://intranet/x",
    "http://192.168.1.1/x",
    "http://[fd00:ec2::254]/x",
]

#: Public targets, some dressed up to look otherwise: neither side may refuse them.
ALLOWED = [
    "http://hooks.example.org/x",
    "http://127.0.0.1@hooks.example.org/x",  # userinfo: the host is hooks.example.org
    "http://10.0.0.1:80@hooks.example.org/x",
    "http://例え.jp/x",  # IDNA: xn--r8jz45g.jp
    "http://８.８.８.８:9/x",  # full-width digits of a public address
    "http://[2400:3200::1]:9/x",
]

#: The stand-in DNS: every public-looking name answers a public address.
DNS = {"hooks.example.org": ["93.184.215.14"], "xn--r8jz45g.jp": ["93.184.215.14"]}
SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
FORMS = [(url, True) for url in HOSTILE] + [(url, False) for url in ALLOWED]


def refused_at_registration(url: str) -> bool:
    try:
        check_url(url, allow_private=False, require_https=False)
    except UnsafeWebhookURL:
        return True
    return False


class TableThenSystemDNS(StaticResolver):
    """The table's names from the table; any other name from the system's resolver, as in
    production (numeric forms like 2130706433 resolve there without a network)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host in self.table:
            return await super().resolve(host, port, family)
        system = DefaultResolver()
        try:
            return await system.resolve(host, port, family)
        finally:
            await system.close()


async def refused_at_delivery(sender: WebhookSender, url: str) -> bool:
    """Whether the sender refused the URL. A permitted one goes out to its public address:
    unreachable from a test machine (a timeout, a connection error) or, where something
    answers for it (a proxy), any reply; none of those is a refusal."""
    outcome = await sender.send(url=url, delivery_id="msg_ssrf", body=b"{}", secrets=[SECRET])
    refused = outcome.detail.startswith(("refused:", "invalid webhook URL"))
    if refused:
        assert outcome.status is OutcomeStatus.failed, outcome  # never retried
    return refused


@pytest.mark.parametrize(("url", "hostile"), FORMS)
async def test_registration_refuses_a_url_iff_delivery_refuses_it(url: str, hostile: bool) -> None:
    dns = TableThenSystemDNS(DNS)
    async with WebhookSender(allow_private=False, resolver=dns, timeout=1) as s:
        at_delivery = await refused_at_delivery(s, url)
    assert refused_at_registration(url) == at_delivery == hostile


# ------------------------------------------------------------------ through the API


@dataclass
class _Book:
    partners: dict[str, Partner] = field(default_factory=dict)

    def get(self, partner_id: str) -> Partner | None:
        return self.partners.get(partner_id)


@dataclass
class _Registry:
    book: _Book = field(default_factory=_Book)
    listeners: list[Any] = field(default_factory=list)

    async def wait_offset(self, offset: int) -> None:
        pass


@dataclass
class _Runtime:
    """What the partner routes use of the worker's runtime; the topic write is recorded."""

    settings: Settings
    registry: _Registry = field(default_factory=_Registry)
    written: list[bytes] = field(default_factory=list)

    async def send(self, topic: str, key: str, value: bytes) -> tuple[int, int]:
        self.written.append(value)
        self.registry.book.partners[key] = Partner.model_validate_json(value)
        return 0, len(self.written)

    @property
    def out(self) -> _Runtime:
        return self  # the routes produce through rt.out.send


@pytest.fixture
async def production_api() -> Any:
    settings = Settings(
        profile=Profile.production,
        allow_private_webhooks=False,
        operator_token="test-operator-token",
    )
    api = create_api(cast(Runtime, _Runtime(settings)))
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://relay.test") as http:
        yield http


@pytest.mark.parametrize(("url", "hostile"), FORMS)
async def test_the_api_answers_422_naming_the_field_for_exactly_the_refused_forms(
    production_api: httpx.AsyncClient, url: str, hostile: bool
) -> None:
    # Production also wants https: the same host forms behind https://.
    url = "https" + url.removeprefix("http")
    body = {
        "id": f"ssrf-{secrets.token_hex(4)}",
        "kind": "association",
        "name": "SSRF 测试协会",
        "channels": [{"type": "webhook", "url": url}],
    }
    r = await production_api.post(
        "/api/v1/partners", json=body, headers={"Authorization": "Bearer test-operator-token"}
    )
    if hostile:
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "unsafe_webhook_url"
        assert error["message"].startswith("channels[0].url: "), error["message"]
    else:
        assert r.status_code == 201, r.text
