"""Group-robot deliveries (企业微信, 钉钉, 飞书): URL checks, signing, one POST, the reply judged.

A robot's URL carries its credential (企业微信 ``key``, 钉钉 ``access_token``, 飞书 the last
path part), so no detail, error or log line shows it whole: :func:`scrub` cuts it to its last
four characters, as :func:`relay.core.models.partner.mask_token` does. Robot URLs go through
the same SSRF guard as webhooks (:mod:`relay.adapters.safety`) and the same client
(:class:`relay.adapters.http.HTTPClient`); in production they must also be the platform's own
host and path (:func:`check_bot_url`). What a reply means: :func:`relay.core.retry.chat_outcome`.
"""

from __future__ import annotations

import json
import ssl
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from aiohttp.abc import AbstractResolver
from yarl import URL

from relay.adapters.http import ConnectError, GuardedClient, HTTPError
from relay.adapters.safety import (
    AddressRefused,
    check_url,
    delivery_refusal,
    webhook_target,
)
from relay.core.chatbots import FACTS, Platform, robot_of
from relay.core.errors import UnsafeWebhookURL
from relay.core.models.partner import BotChannel
from relay.core.outcome import Outcome, OutcomeStatus
from relay.core.retry import chat_outcome
from relay.core.signing import dingtalk_sign, feishu_sign

DEFAULT_TIMEOUT = 15.0
#: The platforms answer a few hundred bytes; more is cut (and the reply judged on that).
MAX_REPLY_BYTES = 64 * 1024
#: The query parameters that hold a robot's credential.
CREDENTIAL_PARAMS = ("key", "access_token")

_EXPECTED = {
    Platform.wecom: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…",
    Platform.dingtalk: "https://oapi.dingtalk.com/robot/send?access_token=… "
    "(or https://oapi.dingtalk.io/robot/send?access_token=…)",
    Platform.feishu: "https://open.feishu.cn/open-apis/bot/v2/hook/… "
    "(or https://open.larksuite.com/open-apis/bot/v2/hook/…)",
}


def credentials(url: str) -> list[str]:
    """The credential values in a robot URL (raw and percent-decoded), longest first."""
    parts = urlsplit(url.strip())
    found: set[str] = set()
    for pair in parts.query.split("&"):
        name, _, value = pair.partition("=")
        if name in CREDENTIAL_PARAMS and value:
            found |= {value, unquote(value)}
    hook = FACTS[Platform.feishu].path
    if hook in parts.path:  # every part after it: a stray "/x" must not leave the token whole
        for token in parts.path.split(hook, 1)[1].split("/"):
            if token:
                found |= {token, unquote(token)}
    return sorted(found, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` with every credential of ``url`` cut to its last four characters."""
    for value in credentials(url):
        if len(value) > 4:
            text = text.replace(value, "…" + value[-4:])
    return text


def check_bot_url(channel_type: str, url: str, *, production: bool) -> None:
    """Raise :class:`UnsafeWebhookURL` (a sentence naming the URL the platform gives) unless
    ``url`` may receive this platform's robot messages.

    In production: https on the platform's documented host, default port, its robot path and
    a credential. In dev anything the SSRF guard lets through with private addresses allowed
    (a local sink stands in for the platform).
    """
    try:
        platform = Platform(channel_type)
    except ValueError:
        choices = ", ".join(p.value for p in Platform)
        raise UnsafeWebhookURL(f"{channel_type!r} is not a group-robot type ({choices})") from None
    facts = FACTS[platform]
    expected = f"a {facts.name} robot URL looks like {_EXPECTED[platform]}"
    try:
        target = check_url(url, allow_private=not production, require_https=production)
    except UnsafeWebhookURL as e:
        raise UnsafeWebhookURL(f"{scrub(str(e), url)}; {expected}") from None
    if not production:
        return
    shown = scrub(url.strip(), url)
    host = target.raw_host or ""
    if host not in facts.hosts or target.explicit_port not in (None, 443) or target.user:
        raise UnsafeWebhookURL(f"{shown!r} is not on {facts.name}'s host; {expected}")
    path = target.raw_path
    if platform is Platform.feishu:
        token = path.removeprefix(facts.path)
        if not path.startswith(facts.path) or not token or "/" in token:
            raise UnsafeWebhookURL(f"{shown!r} is not a {facts.name} robot's path; {expected}")
        return
    if path != facts.path:
        raise UnsafeWebhookURL(f"{shown!r} is not a {facts.name} robot's path; {expected}")
    param = "key" if platform is Platform.wecom else "access_token"
    if not target.query.get(param):
        raise UnsafeWebhookURL(f"{shown!r} has no {param}; {expected}")


def _signed_dingtalk_url(target: URL, secret: str, when: datetime) -> URL:
    """``target`` with 钉钉's ``timestamp`` (ms) and ``sign`` query parameters, the sign
    URL-encoded exactly once (any stale pair in the stored URL is dropped)."""
    timestamp = int(when.timestamp() * 1000)
    sign = quote(dingtalk_sign(secret, timestamp), safe="")
    base = target.without_query_params("timestamp", "sign").with_fragment(None)
    sep = "&" if base.raw_query_string else "?"
    return URL(f"{base}{sep}timestamp={timestamp}&sign={sign}", encoded=True)


class ChatSender(GuardedClient):
    """POSTs messages to group robots; one connection pool for every robot of a worker.

    ``send`` never raises for network trouble: it returns an :class:`Outcome`. With
    ``allow_private=False`` it refuses private, loopback, link-local and metadata addresses,
    checked on the address actually connected to; with ``production=True`` a URL must be the
    platform's own (:func:`check_bot_url`).
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        allow_private: bool = False,
        production: bool = True,
        route: str | None = None,
        resolver: AbstractResolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``resolver`` replaces DNS and ``ssl_context`` the system's trust store (tests);
        the SSRF filter still wraps the resolver. ``route`` (dev only, refused with
        ``production``) is a base URL that messages for the platforms' own hosts go to
        instead, path and query kept: the local robot sink of ``relay dev``."""
        if route is not None and production:
            raise ValueError("robot messages are routed to a sink only outside production")
        super().__init__(
            timeout=timeout,
            allow_private=allow_private,
            max_reply=MAX_REPLY_BYTES,
            resolver=resolver,
            ssl_context=ssl_context,
        )
        self.route = route.rstrip("/") if route else None
        self.production = production

    async def send(
        self,
        channel: BotChannel,
        body: dict[str, Any],
        *,
        delivery_id: str,
        now: datetime | None = None,
    ) -> Outcome:
        """Sign ``body`` as the channel's platform wants and POST it to the robot.

        ``delivery_id`` is 钉钉's ``msgUuid`` (its idempotency key: a retry after a timeout is
        not posted twice); 企业微信 and 飞书 have none. ``now`` is the signing time.
        """
        platform = Platform(channel.type)
        facts = FACTS[platform]
        url = channel.url
        try:
            check_bot_url(channel.type, url, production=self.production)
            target = webhook_target(url)
        except UnsafeWebhookURL as e:
            return Outcome(
                OutcomeStatus.failed, f"invalid {facts.name} robot URL: {scrub(str(e), url)}"
            )
        if not self.allow_private:
            refusal = delivery_refusal(target)
            if refusal is not None:
                return Outcome(OutcomeStatus.failed, scrub(refusal, url))
        if self.route is not None and robot_of(url) is not None:
            query = f"?{target.raw_query_string}" if target.raw_query_string else ""
            target = URL(self.route + target.raw_path + query, encoded=True)
        when = now if now is not None else datetime.now(UTC)
        secret = getattr(channel, "secret", None)
        payload = dict(body)
        if platform is Platform.dingtalk:
            payload["msgUuid"] = delivery_id
            if secret:
                target = _signed_dingtalk_url(target, secret, when)
        elif platform is Platform.feishu and secret:
            timestamp = int(when.timestamp())
            rest = {k: v for k, v in payload.items() if k not in ("timestamp", "sign")}
            payload = {"timestamp": str(timestamp), "sign": feishu_sign(secret, timestamp), **rest}
        try:
            data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        except (TypeError, ValueError) as e:
            return Outcome(OutcomeStatus.failed, f"the message is not JSON: {e}")
        if len(data) > facts.max_body:
            size, limit = len(data), facts.max_body
            detail = (
                f"消息体 {size} 字节，超过{facts.name}的 {limit} 字节上限 / the body is "
                f"{size} bytes, over {facts.name}'s limit of {limit}"
            )
            return Outcome(OutcomeStatus.failed, detail)
        outcome = await self._post(platform, target, data)
        return outcome if outcome.ok else _scrubbed(outcome, url)

    async def _post(self, platform: Platform, target: URL, body: bytes) -> Outcome:
        client = await self.client()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        started = time.perf_counter()
        try:
            reply = await client.post(target, body, headers, timeout=self.timeout)
        except TimeoutError:
            detail = f"timeout: no complete reply within {self.timeout:g} s"
            return _retry(detail, started, timed_out=True)
        except AddressRefused as e:
            return Outcome(OutcomeStatus.failed, str(e))
        except ConnectError as e:
            return _retry(f"connection failed: {e}", started)
        except HTTPError as e:
            return _retry(f"no complete reply: {e}", started)
        except OSError as e:
            return _retry(f"network error: {e}", started)
        elapsed = (time.perf_counter() - started) * 1000
        return chat_outcome(platform, reply.status, reply.body, elapsed)


def _retry(detail: str, started: float, *, timed_out: bool = False) -> Outcome:
    elapsed = (time.perf_counter() - started) * 1000
    return Outcome(OutcomeStatus.retry, detail, latency_ms=elapsed, timed_out=timed_out)


def _scrubbed(outcome: Outcome, url: str) -> Outcome:
    """The outcome with the robot's credential cut from its detail (a platform may echo it)."""
    detail = scrub(outcome.detail, url)
    return outcome if detail == outcome.detail else replace(outcome, detail=detail)
