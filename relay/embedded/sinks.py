"""Local receivers for dev/demo: an SMTP sink that keeps every message, a verifying webhook sink,
and the three group-robot platforms (企业微信, 钉钉, 飞书) on loopback."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email
import email.policy
import hashlib
import hmac
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from relay.core.chatbots import FACTS, Platform


@dataclass
class ReceivedMail:
    path: Path
    message: EmailMessage
    recipients: list[str]


class _MailHandler:
    def __init__(self, sink: SMTPSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.sink.keep(raw, msg, [str(r) for r in envelope.rcpt_tos])
        return "250 Message accepted for delivery"


class SMTPSink:
    """An aiosmtpd server on loopback that writes each message to ``directory`` as ``.eml``."""

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.directory = directory
        self.host = host
        self.port = port
        self.received: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def keep(self, raw: bytes, msg: EmailMessage, recipients: list[str]) -> None:
        with self._lock:
            n = len(self.received) + 1
            ident = re.sub(r"[^A-Za-z0-9_-]", "", str(msg.get("X-Relay-Delivery-Id", "")))[:40]
            path = self.directory / f"{n:04d}-{ident or 'message'}.eml"
            path.write_bytes(raw)
            self.received.append(ReceivedMail(path, msg, recipients))

    def start(self) -> None:
        from relay.embedded.broker import free_port

        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port(self.host)
        self._controller = Controller(
            _MailHandler(self), hostname=self.host, port=self.port, ready_timeout=10
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@dataclass
class ReceivedHook:
    partner_id: str
    webhook_id: str
    verified: bool
    payload: dict[str, Any] | None
    error: str | None = None


@dataclass
class WebhookSink:
    """An HTTP receiver at ``/hooks/{partner_id}`` that verifies each request per Standard Webhooks.

    Answers 204 when the signature verifies with that partner's secret, 401 when it does not.
    """

    secrets: dict[str, str]
    host: str = "127.0.0.1"
    port: int = 0
    received: list[ReceivedHook] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    def url_for(self, partner_id: str) -> str:
        return f"http://{self.host}:{self.port}/hooks/{partner_id}"

    async def _handle(self, request: web.Request) -> web.Response:
        partner_id = request.match_info["partner_id"]
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        secret = self.secrets.get(partner_id)
        if secret is None:
            return web.Response(status=404, text="unknown partner")
        try:
            payload = Webhook(secret).verify(body, headers)
        except WebhookVerificationError as e:
            self.received.append(
                ReceivedHook(partner_id, headers.get("webhook-id", ""), False, None, str(e))
            )
            return web.Response(status=401, text=f"signature not verified: {e}")
        self.received.append(
            ReceivedHook(
                partner_id,
                headers["webhook-id"],
                True,
                payload if isinstance(payload, dict) else json.loads(body),
            )
        )
        return web.Response(status=204)

    async def start(self) -> None:
        from relay.embedded.broker import free_port

        app = web.Application()
        app.router.add_post("/hooks/{partner_id}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        if not self.port:
            self.port = free_port(self.host)
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


# --------------------------------------------------------------------------- group robots


@dataclass
class ReceivedBotMessage:
    """One request that reached :class:`BotSink`, accepted or not."""

    platform: Platform
    token: str
    #: The JSON body, or None when it was not a JSON object.
    body: dict[str, Any] | None
    #: Whether the signature verified; None when it was not checked (the robot has no
    #: secret, or the request was refused before: unknown robot, throttled, too big, not JSON).
    verified: bool | None
    #: What the sink answered (always HTTP 200, as the platforms do).
    answer: dict[str, Any]
    #: When it arrived, by the sink's clock (seconds since the epoch).
    at: float
    #: The raw query string as it came (钉钉's ``timestamp`` and ``sign`` still encoded).
    query: str = ""
    #: A 钉钉 ``msgUuid`` seen before: answered ok, not posted to the group again.
    duplicate: bool = False
    #: Where the accepted message was written, with a directory.
    path: Path | None = None

    @property
    def code(self) -> int:
        return int(self.answer.get("errcode", self.answer.get("code", -1)))

    @property
    def accepted(self) -> bool:
        """The message reached the group (a duplicate did already, once)."""
        return self.code == 0 and not self.duplicate


@dataclass
class _Robot:
    platform: Platform
    token: str
    secret: str | None
    keyword: str | None
    #: When each accepted message came, for the rolling windows.
    accepted_at: deque[float] = field(default_factory=deque)
    #: 钉钉's 10-minute throttle: nothing is accepted before this time.
    throttled_until: float = 0.0
    count: int = 0
    uuids: set[str] = field(default_factory=set)


#: How long 钉钉 refuses everything after a robot went over 20 messages a minute.
DINGTALK_PENALTY = 600.0
#: How far a signature's timestamp may be from the platform's clock (both platforms: 1 hour).
SIGNATURE_WINDOW = 3600.0
#: 企业微信's documented content limits, in UTF-8 bytes.
WECOM_CONTENT_MAX = {"text": 2048, "markdown": 4096, "markdown_v2": 4096}

_MSG_TYPES = {
    Platform.wecom: {"text", "markdown", "markdown_v2", "image", "news", "file", "template_card"},
    Platform.dingtalk: {"text", "markdown", "link", "actionCard", "feedCard"},
    Platform.feishu: {"text", "post", "image", "share_chat", "interactive"},
}


def busiest_window(times: Iterable[float], seconds: float = 60.0) -> int:
    """The most of ``times`` in any half-open window ``[t, t + seconds)``."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


class _Refusal(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _strings(value: Any, keys: frozenset[str] | None = None) -> Iterator[str]:
    """Every string in a JSON value (only those under ``keys``, when given)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, str):
                if keys is None or k in keys:
                    yield v
            else:
                yield from _strings(v, keys)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, keys)
    elif isinstance(value, str) and keys is None:
        yield value


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


class BotSink:
    """A loopback stand-in for the three platforms' group-robot APIs.

    It serves each platform's path (``/cgi-bin/webhook/send?key=K``,
    ``/robot/send?access_token=T[&timestamp=…&sign=…]``, ``/open-apis/bot/v2/hook/{T}``)
    and checks what the platform checks: the robot exists (:meth:`register`), the message's
    format and sizes, the signature (recomputed from the documented algorithm, timestamp
    within an hour), the keyword and the rate (per robot: 20 in any 60 s for 企业微信 and
    钉钉, after which 钉钉 refuses everything for 10 minutes; 飞书 100 in 60 s and 5 in 1 s).
    It answers as the platforms do, HTTP 200 with ``errcode``/``code``, and keeps every
    request in :attr:`received`; with a ``directory`` each accepted message is written to
    ``<platform>-<token>-<n>.json``. ``clock`` is its time (tests move it on).
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        grace: float = 0.0,
    ) -> None:
        self.directory = directory
        #: How long a message to an unknown robot waits for it to be registered before the
        #: platform's "invalid token" answer (the dev stack learns robots from the partners
        #: topic, a moment after the API wrote them).
        self.grace = grace
        self._registered = asyncio.Event()
        self.host = host
        self.port = port
        self.clock = clock
        self.received: list[ReceivedBotMessage] = []
        self._robots: dict[tuple[Platform, str], _Robot] = {}
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()

    # -- set-up

    def register(
        self,
        platform: Platform | str,
        token: str,
        secret: str | None = None,
        keyword: str | None = None,
    ) -> None:
        """A robot the sink knows: its token (key), its signing secret, its keyword."""
        platform = Platform(platform)
        if platform is Platform.wecom and (secret or keyword):
            raise ValueError("企业微信 robots have neither a signing secret nor a keyword")
        known = self._robots.get((platform, token))
        if known is not None:  # new settings, the same robot: its windows and history stay
            known.secret, known.keyword = secret, keyword
        else:
            self._robots[(platform, token)] = _Robot(platform, token, secret, keyword)
        self._registered.set()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url_for(self, platform: Platform | str, token: str) -> str:
        """The sink's URL for a robot, with the platform's path and query."""
        platform = Platform(platform)
        quoted = quote(token, safe="")
        if platform is Platform.wecom:
            return f"{self.base_url}{FACTS[platform].path}?key={quoted}"
        if platform is Platform.dingtalk:
            return f"{self.base_url}{FACTS[platform].path}?access_token={quoted}"
        return f"{self.base_url}{FACTS[platform].path}{quoted}"

    def rewrite(self, url: str) -> str:
        """A platform's robot URL pointed at the sink: the same path and query, so the same
        robot. ValueError for a URL that is no platform's robot path."""
        parts = urlsplit(url.strip())
        if not any(parts.path.startswith(facts.path) for facts in FACTS.values()):
            raise ValueError(f"{parts.path!r} is not a group-robot path")
        return self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")

    # -- what it got

    def accepted(
        self, platform: Platform | str | None = None, token: str | None = None
    ) -> list[ReceivedBotMessage]:
        """The messages that reached a group, in arrival order (one robot's, if named)."""
        return [
            r
            for r in self.received
            if r.accepted
            and (platform is None or r.platform == Platform(platform))
            and (token is None or r.token == token)
        ]

    def busiest_window(self, platform: Platform | str, token: str, seconds: float = 60.0) -> int:
        """The most messages one robot accepted in any ``seconds`` window."""
        return busiest_window((r.at for r in self.accepted(platform, token)), seconds)

    async def wait_for(
        self,
        count: int,
        *,
        platform: Platform | str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
    ) -> list[ReceivedBotMessage]:
        """Wait until ``count`` messages were accepted (by one robot, if named)."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.accepted(platform, token)) < count:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            got = len(self.accepted(platform, token))
            last = [(r.platform.value, r.answer) for r in self.received[-3:]]
            raise AssertionError(
                f"{got} of {count} bot messages accepted after {timeout:g} s (last: {last})"
            ) from None
        return self.accepted(platform, token)

    # -- the platforms

    async def _wecom(self, request: web.Request) -> web.Response:
        return await self._handle(Platform.wecom, request.query.get("key", ""), request)

    async def _dingtalk(self, request: web.Request) -> web.Response:
        return await self._handle(Platform.dingtalk, request.query.get("access_token", ""), request)

    async def _feishu(self, request: web.Request) -> web.Response:
        return await self._handle(Platform.feishu, request.match_info["token"], request)

    async def _handle(self, platform: Platform, token: str, request: web.Request) -> web.Response:
        raw = await request.read()
        if (platform, token) not in self._robots and self.grace > 0:
            await self._learned(platform, token)
        now = self.clock()
        query = request.rel_url.raw_query_string
        record = ReceivedBotMessage(platform, token, None, None, {}, now, query)
        try:
            self._check(platform, token, request, raw, now, record)
        except _Refusal as refusal:
            record.answer = _error(platform, refusal.code, refusal.message)
        else:
            record.answer = _success(platform)
            self._accept(record)
        self.received.append(record)
        self._changed.set()
        return web.json_response(record.answer)

    async def _learned(self, platform: Platform, token: str) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.grace):
                while (platform, token) not in self._robots:
                    self._registered.clear()
                    await self._registered.wait()

    def _check(
        self,
        platform: Platform,
        token: str,
        request: web.Request,
        raw: bytes,
        now: float,
        record: ReceivedBotMessage,
    ) -> None:
        robot = self._robots.get((platform, token))
        if robot is None:
            raise _Refusal(*_INVALID_TOKEN[platform])
        if now < robot.throttled_until:
            raise _Refusal(130101, "send too fast, exceed 20 times per minute")
        facts = FACTS[platform]
        if len(raw) > facts.max_body:
            raise _Refusal(*_TOO_BIG[platform])
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            body = None
        if not isinstance(body, dict):
            raise _Refusal(*_NOT_JSON[platform])
        record.body = body
        if robot.secret is not None:
            record.verified = _verify(platform, robot.secret, request, body, now)
            if not record.verified:
                raise _Refusal(_BAD_SIGN[platform], _why(platform, request, body, now))
        _check_format(platform, body)
        if robot.keyword is not None and not _has_keyword(platform, body, robot.keyword):
            raise _Refusal(*_NO_KEYWORD[platform])
        uuid = body.get("msgUuid") if platform is Platform.dingtalk else None
        if isinstance(uuid, str) and uuid in robot.uuids:
            record.duplicate = True
            return  # already posted: ok, and not again
        self._check_rate(robot, now)

    def _check_rate(self, robot: _Robot, now: float) -> None:
        facts = FACTS[robot.platform]
        times = robot.accepted_at
        while times and times[0] <= now - 60.0:
            times.popleft()
        if len(times) >= facts.per_minute:
            if robot.platform is Platform.dingtalk:
                robot.throttled_until = now + DINGTALK_PENALTY
            raise _Refusal(*_THROTTLED[robot.platform])
        if facts.per_second is not None:
            last_second = sum(1 for t in times if t > now - 1.0)
            if last_second >= facts.per_second:
                raise _Refusal(*_THROTTLED[robot.platform])

    def _accept(self, record: ReceivedBotMessage) -> None:
        if record.duplicate:
            return
        robot = self._robots[(record.platform, record.token)]
        robot.accepted_at.append(record.at)
        robot.count += 1
        assert record.body is not None
        uuid = record.body.get("msgUuid")
        if isinstance(uuid, str):
            robot.uuids.add(uuid)
        if self.directory is not None:
            safe = re.sub(r"[^A-Za-z0-9_-]", "_", record.token)[:64]
            path = self.directory / f"{record.platform.value}-{safe}-{robot.count:04d}.json"
            kept = {
                "platform": record.platform.value,
                "robot": record.token[-4:],
                "verified": record.verified,
                "received_at": datetime.fromtimestamp(record.at, UTC).isoformat(),
                "body": record.body,
            }
            path.write_text(json.dumps(kept, ensure_ascii=False, indent=2), encoding="utf-8")
            record.path = path

    # -- running

    async def start(self) -> None:
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post(FACTS[Platform.wecom].path, self._wecom)
        app.router.add_post(FACTS[Platform.dingtalk].path, self._dingtalk)
        app.router.add_post(FACTS[Platform.feishu].path + "{token}", self._feishu)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> BotSink:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# What each platform answers (the codes and messages its servers send; docs/channels.md).
_INVALID_TOKEN = {
    Platform.wecom: (93000, "invalid webhook url"),
    Platform.dingtalk: (300001, "token is not exist"),
    Platform.feishu: (19001, "param invalid: incoming webhook access token invalid"),
}
_TOO_BIG = {
    Platform.wecom: (40058, "request body exceed max length 20000"),
    Platform.dingtalk: (460101, "body 大小不合法;solution:请保持大小在 20000bytes 以内"),
    Platform.feishu: (9499, "Bad Request"),
}
_NOT_JSON = {
    Platform.wecom: (40058, "Warning: wrong json format."),
    Platform.dingtalk: (40035, "缺少参数 json"),
    Platform.feishu: (9499, "Bad Request"),
}
_BAD_SIGN = {Platform.dingtalk: 310000, Platform.feishu: 19021}
_NO_KEYWORD = {
    Platform.dingtalk: (310000, "keywords not in content"),
    Platform.feishu: (19024, "Key Words Not Found"),
}
_THROTTLED = {
    Platform.wecom: (45009, "api freq out of limit"),
    Platform.dingtalk: (130101, "send too fast, exceed 20 times per minute"),
    Platform.feishu: (11232, "frequency limited psm[lark.oapi.app_platform_runtime]"),
}


def _success(platform: Platform) -> dict[str, Any]:
    if platform is Platform.feishu:
        return {
            "StatusCode": 0,
            "StatusMessage": "success",
            "code": 0,
            "data": {},
            "msg": "success",
        }
    return {"errcode": 0, "errmsg": "ok"}


def _error(platform: Platform, code: int, message: str) -> dict[str, Any]:
    if platform is Platform.feishu:
        return {"code": code, "data": {}, "msg": message}
    if platform is Platform.wecom:
        message = (
            f"{message}, hint: [{int(time.time())}-sink], from ip: 127.0.0.1, "
            f"more info at https://open.work.weixin.qq.com/devtool/query?e={code}"
        )
    return {"errcode": code, "errmsg": message}


def _signature_timestamp(
    platform: Platform, request: web.Request, body: dict[str, Any]
) -> int | None:
    value = (
        request.query.get("timestamp") if platform is Platform.dingtalk else body.get("timestamp")
    )
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 15:
        return None
    return int(value)


def _timely(platform: Platform, timestamp: int, now: float) -> bool:
    seconds = timestamp / 1000 if platform is Platform.dingtalk else timestamp
    return abs(now - seconds) <= SIGNATURE_WINDOW


def _verify(
    platform: Platform, secret: str, request: web.Request, body: dict[str, Any], now: float
) -> bool:
    """The platform's own check, recomputed here from its documentation."""
    timestamp = _signature_timestamp(platform, request, body)
    if timestamp is None or not _timely(platform, timestamp, now):
        return False
    if platform is Platform.dingtalk:
        # aiohttp decodes the query once, as the platform does: a sign encoded twice fails.
        given = request.query.get("sign", "")
        key, msg = secret.encode(), f"{timestamp}\n{secret}".encode()
    else:
        given = body.get("sign", "")
        key, msg = f"{timestamp}\n{secret}".encode(), b""
    expected = base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def _why(platform: Platform, request: web.Request, body: dict[str, Any], now: float) -> str:
    """The message of a refused signature, as each platform words it."""
    if platform is Platform.feishu:
        return "sign match fail or timestamp is not within one hour from current time"
    timestamp = _signature_timestamp(platform, request, body)
    if timestamp is not None and not _timely(platform, timestamp, now):
        return "invalid timestamp"
    return "sign not match"  # a wrong sign, or none at all


def _check_format(platform: Platform, body: dict[str, Any]) -> None:
    kind_field = "msg_type" if platform is Platform.feishu else "msgtype"
    kind = body.get(kind_field)
    if kind not in _MSG_TYPES[platform]:
        if platform is Platform.wecom:
            raise _Refusal(40008, "invalid message type")
        if platform is Platform.dingtalk:
            raise _Refusal(400105, "不支持的消息类型")
        raise _Refusal(9499, "Bad Request")
    assert isinstance(kind, str)
    if platform is Platform.wecom:
        section = body.get(kind)
        if not isinstance(section, dict):
            raise _Refusal(40058, f"invalid {kind}")
        if kind in WECOM_CONTENT_MAX:
            content = section.get("content")
            if not isinstance(content, str) or not content.strip():
                raise _Refusal(44004, "empty content")
            limit = WECOM_CONTENT_MAX[kind]
            if len(content.encode()) > limit:
                raise _Refusal(40058, f"{kind}.content exceed max length {limit}")
    elif platform is Platform.dingtalk:
        section = body.get(kind)
        if not isinstance(section, dict):
            raise _Refusal(400402, f"参数 {kind} 缺失")
        required = {"text": ("content",), "markdown": ("title", "text")}.get(kind, ())
        for name in required:
            if not _nonempty_str(section.get(name)):
                raise _Refusal(400402, f"参数 {kind} --》 {name} 缺失")
    else:
        if kind == "interactive":
            ok = isinstance(body.get("card"), dict)  # the card is top-level, not in content
        elif kind == "text":
            content = body.get("content")
            ok = isinstance(content, dict) and _nonempty_str(content.get("text"))
        elif kind == "post":
            content = body.get("content")
            post = content.get("post") if isinstance(content, dict) else None
            ok = isinstance(post, dict) and any(
                isinstance(lang, dict) and isinstance(lang.get("content"), list)
                for lang in post.values()
            )
        else:
            ok = isinstance(body.get("content"), dict)
        if not ok:
            raise _Refusal(9499, "Bad Request")


_FEISHU_KEYWORD_KEYS = frozenset({"text", "title", "content"})


def _has_keyword(platform: Platform, body: dict[str, Any], keyword: str) -> bool:
    """钉钉 looks in the message's own fields; 飞书 only in text and title values (not links)."""
    if platform is Platform.dingtalk:
        kind = body.get("msgtype")
        texts = _strings(body.get(kind)) if isinstance(kind, str) else iter(())
    else:
        texts = _strings([body.get("content"), body.get("card")], _FEISHU_KEYWORD_KEYS)
    return any(keyword in text for text in texts)
