"""SSRF guard: webhooks never reach private, loopback, link-local or cloud-metadata addresses.

Three layers, one judgement. :func:`webhook_target` parses a URL exactly as the webhook
client will (yarl, so IDNA: full-width digits, 。 and the like become what the client
dials), and :func:`url_refusal` judges its host without DNS (literal IPs, legacy IPv4 forms,
local names); both run when a partner registers a URL (:func:`check_url`) and again before
each delivery. :class:`SafeResolver` filters what a hostname resolves to, and the client
judges the address it actually connected to (``address_refusal``) before sending a byte: a
DNS answer that changes between registration and delivery (rebinding) cannot slip through.
"""

from __future__ import annotations

import re
import socket
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from relay.core.errors import UnsafeWebhookURL

IPAddress = IPv4Address | IPv6Address

CGNAT = ip_network("100.64.0.0/10")
NAT64 = ip_network("64:ff9b::/96")
#: Cloud instance metadata services: AWS/GCP/Azure/Tencent, AWS over IPv6, Alibaba Cloud.
METADATA = frozenset(
    {ip_address("169.254.169.254"), ip_address("fd00:ec2::254"), ip_address("100.100.100.200")}
)

#: Names that only ever mean "this machine" or "this site's network".
_LOCAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".home.arpa", ".lan")
#: A host name as DNS can be asked for it, after IDNA (yarl lower-cases and encodes it).
_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")


def address_refusal(ip: IPAddress) -> str | None:
    """Why connecting to ``ip`` is refused (``"loopback"``, ``"private"``…), or None if public."""
    if ip in METADATA:
        return "cloud metadata"
    if isinstance(ip, IPv6Address):
        # An IPv4 address wrapped in IPv6 reaches the IPv4 host: judge that host.
        if ip.ipv4_mapped is not None:
            return address_refusal(ip.ipv4_mapped)
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in NAT64:
            embedded = IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and (reason := address_refusal(embedded)):
            return reason
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip in CGNAT:
        return "carrier-grade NAT"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "not globally routable"
    return None


def literal_ip(host: str) -> IPAddress | None:
    """The address a URL host spells out literally, or None for a name."""
    try:
        return ip_address(host)
    except ValueError:
        return None


def host_refusal(host: str) -> str | None:
    """Why a URL host is refused without resolving it, or None if only DNS can tell."""
    host = host.rstrip(".").lower()
    ip = literal_ip(host)
    if ip is not None:
        reason = address_refusal(ip)
        return f"{host} is a {reason} address" if reason else None
    try:
        # inet_aton accepts legacy forms (127.1, 0x7f.0.0.1, 2130706433) that libc maps onto
        # an address; they have no legitimate use in a URL.
        socket.inet_aton(host)
    except OSError:
        pass
    else:
        return f"{host} is not a canonical IPv4 address"
    if host == "localhost" or host.endswith(_LOCAL_SUFFIXES):
        return f"{host} is a local name"
    if "." not in host:
        return f"{host} is a single-label name that only resolves inside a local network"
    return None


def webhook_target(url: str) -> URL:
    """``url`` parsed exactly as the webhook client parses it; :class:`UnsafeWebhookURL` if
    the client could not use it (not http(s), no host, port 0, a host DNS cannot be asked)."""
    try:
        target = URL(url.strip())
        target.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as e:  # UnicodeError (IDNA) is one too
        raise UnsafeWebhookURL(f"{url!r} is not a valid URL: {e}") from None
    if target.scheme not in ("http", "https"):
        raise UnsafeWebhookURL(f"{url!r}: webhook URLs must use http or https")
    host = target.raw_host
    if not host:
        raise UnsafeWebhookURL(f"{url!r} has no host")
    if target.port == 0:
        raise UnsafeWebhookURL(f"{url!r}: port 0 cannot be connected to")
    is_ip = "%" not in host and literal_ip(host) is not None  # no IPv6 zone: never public
    if not (is_ip or _NAME.fullmatch(host)):
        raise UnsafeWebhookURL(f"{url!r}: {host!r} is neither an IP address nor a host name")
    return target


def url_refusal(target: URL) -> str | None:
    """Why no webhook may go to ``target`` (from :func:`webhook_target`) whatever DNS says,
    or None if only the addresses its host resolves to can tell.

    The one judgement for registration and delivery: both see the host the client dials.
    """
    return host_refusal(target.raw_host or "")


def check_url(url: str, *, allow_private: bool, require_https: bool) -> URL:
    """``url`` as the client will use it; :class:`UnsafeWebhookURL` if it may not receive
    webhooks."""
    target = webhook_target(url)
    if require_https and target.scheme != "https":
        raise UnsafeWebhookURL(f"{url!r}: webhook URLs must use https")
    if not allow_private:
        reason = url_refusal(target)
        if reason is not None:
            raise UnsafeWebhookURL(f"{url!r}: {reason}; webhooks go to public addresses only")
    return target


def refusal_detail(refused: list[tuple[str, str]], *, host: str | None = None) -> str:
    """The one-line detail of a refused delivery, naming the addresses and why."""
    shown = ", ".join(f"{addr} ({why})" for addr, why in refused[:4]) or "no address"
    return f"refused: resolves to private address {shown}" + (f" for {host}" if host else "")


def delivery_refusal(target: URL) -> str | None:
    """The detail of a delivery refused by :func:`url_refusal`, or None if not refused."""
    reason = url_refusal(target)
    if reason is None:
        return None
    host = (target.raw_host or "").rstrip(".")
    ip = literal_ip(host)
    why = address_refusal(ip) if ip is not None else None
    if why is not None:
        return refusal_detail([(host, why)])
    return f"refused: {reason}; webhooks go to public addresses only"


class AddressRefused(OSError):
    """Every address a host resolved to is refused, so nothing was connected to."""

    def __init__(self, host: str, refused: list[tuple[str, str]]) -> None:
        super().__init__(refusal_detail(refused, host=host))
        self.host = host
        self.refused = refused


class SafeResolver(AbstractResolver):
    """Wraps a resolver and drops every refused address from its answers.

    Without ``inner`` it wraps aiohttp's default resolver (build it inside the event loop).
    """

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._owns_inner = inner is None
        self._inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        safe: list[ResolveResult] = []
        refused: list[tuple[str, str]] = []
        for answer in answers:
            ip = literal_ip(answer["host"])
            reason = "unparsable" if ip is None else address_refusal(ip)
            if reason is None:
                safe.append(answer)
            else:
                refused.append((answer["host"], reason))
        if not safe:
            raise AddressRefused(host, refused)
        return safe

    async def close(self) -> None:
        if self._owns_inner:
            await self._inner.close()
