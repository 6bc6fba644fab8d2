"""The SSRF guard: which webhook URLs and resolved addresses are refused."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from relay.adapters.safety import (
    AddressRefused,
    SafeResolver,
    address_refusal,
    check_url,
    delivery_refusal,
    webhook_target,
)
from relay.core.errors import UnsafeWebhookURL
from tests.helpers.receivers import StaticResolver


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "private"),  # the IANA registry files 240/4 as not forwardable
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:7f00:1::1", "loopback"),
        ("192.0.2.1", "private"),
    ],
)
def test_private_and_special_addresses_are_refused(address: str, reason: str) -> None:
    assert address_refusal(ip_address(address)) == reason


@pytest.mark.parametrize("address", ["8.8.8.8", "202.96.209.133", "2400:3200::1", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert address_refusal(ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://[::1]:8443/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://localhost/hook",
        "https://api.localhost/hook",
        "https://printer.local/hook",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://intranet/hook",
        "https://2130706433/hook",
        "https://127.1/hook",
        "https://0x7f.0.0.1/hook",
        "https://10.0.0.8./hook",
    ],
)
def test_check_url_refuses_private_targets(url: str) -> None:
    with pytest.raises(UnsafeWebhookURL):
        check_url(url, allow_private=False, require_https=True)


def test_check_url_allows_private_targets_when_told() -> None:
    check_url("http://127.0.0.1:8080/hook", allow_private=True, require_https=False)
    check_url("http://localhost/hook", allow_private=True, require_https=False)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/x",
        "file:///etc/passwd",
        "https:///nohost",
        "https://example.org:99999/",
        "https://example.org:0/",  # the client would dial port 80
        "https://ex%41mple.org/",  # a host DNS cannot be asked for
        "https://exa mple.org/",
        "https://[::1%25lo]/",
        "http://example.org:80\\@127.0.0.1/",
    ],
)
def test_check_url_refuses_malformed_or_non_http_urls(url: str) -> None:
    with pytest.raises(UnsafeWebhookURL):
        check_url(url, allow_private=True, require_https=False)


def test_check_url_requires_https_only_when_asked() -> None:
    with pytest.raises(UnsafeWebhookURL, match="https"):
        check_url("http://hooks.example.org/x", allow_private=False, require_https=True)
    check_url("http://hooks.example.org/x", allow_private=False, require_https=False)
    check_url("https://hooks.example.org/x", allow_private=False, require_https=True)


def test_a_refused_delivery_names_the_address_and_why() -> None:
    def refusal(url: str) -> str | None:
        return delivery_refusal(webhook_target(url))

    assert refusal("http://127.0.0.1:8080/") == (
        "refused: resolves to private address 127.0.0.1 (loopback)"
    )
    assert refusal("http://localhost/") == (
        "refused: localhost is a local name; webhooks go to public addresses only"
    )
    assert refusal("http://8.8.8.8/") is None
    assert refusal("http://hooks.example.org/") is None


async def test_safe_resolver_drops_private_answers() -> None:
    inner = StaticResolver({"mixed.example": ["10.0.0.5", "93.184.216.34", "::1"]})

    answers = await SafeResolver(inner).resolve("mixed.example", 443)

    assert [a["host"] for a in answers] == ["93.184.216.34"]


async def test_safe_resolver_refuses_a_name_with_only_private_answers() -> None:
    inner = StaticResolver({"rebind.example": ["127.0.0.1", "169.254.169.254"]})

    with pytest.raises(AddressRefused) as info:
        await SafeResolver(inner).resolve("rebind.example", 443)

    assert str(info.value).startswith("refused: resolves to private address 127.0.0.1")
    assert "cloud metadata" in str(info.value)
