"""Every retry decision, in one place; pure.

What a receiver's answer means (:func:`http_outcome`, :func:`smtp_status`,
:func:`parse_retry_after`, a group robot's reply: :func:`chat_outcome`), when to try again
or give up (:class:`RetryPolicy`, :func:`decide`), when a channel has failed for too long
(:func:`health_after`), and how fast one channel may be sent to (:class:`RateLimiter`).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from relay.core.chatbots import FACTS, Platform
from relay.core.models import DeliveryStatus
from relay.core.outcome import MAX_RETRY_AFTER, Outcome, OutcomeStatus

#: ±20 % on every delay, so a thousand deliveries that failed together do not return together.
JITTER = 0.2


@dataclass(frozen=True)
class RetryPolicy:
    """``schedule[i]`` is the wait after attempt ``i + 1``; past its end a delivery is dead."""

    schedule: tuple[float, ...]
    floor: float = 60.0
    jitter: float = JITTER

    def delay(self, attempt: int, outcome: Outcome, rng: random.Random) -> float | None:
        """Seconds to wait before the next attempt, or None when the schedule is exhausted."""
        if attempt > len(self.schedule):
            return None
        base = self.schedule[attempt - 1]
        wait = base * rng.uniform(1 - self.jitter, 1 + self.jitter)
        after = outcome.retry_after
        if after is not None and not math.isnan(after):
            # Bounded whoever built the outcome: a datetime cannot hold now + 1e12 s.
            wait = max(wait, min(after, MAX_RETRY_AFTER))
        if slow_down(outcome):
            wait = max(wait, self.floor)
        return wait


def slow_down(outcome: Outcome) -> bool:
    """The receiver is overloaded (429) or too slow (a timeout, HTTP or SMTP): back off at
    least the floor."""
    return outcome.http_status == 429 or outcome.timed_out


@dataclass(frozen=True)
class Decision:
    """The delivery's new state after an attempt."""

    status: DeliveryStatus
    #: When to try again (status ``retrying``).
    retry_at: datetime | None = None
    #: Goes to the dead-letter topic (failed, disabled or exhausted).
    dead_letter: bool = False
    reason: str | None = None


def decide(
    attempt: int, outcome: Outcome, policy: RetryPolicy, now: datetime, rng: random.Random
) -> Decision:
    if outcome.status is OutcomeStatus.delivered:
        return Decision(DeliveryStatus.delivered)
    if outcome.status is OutcomeStatus.disabled:
        return Decision(DeliveryStatus.disabled, dead_letter=True, reason="channel_disabled")
    if outcome.status is OutcomeStatus.failed:
        return Decision(DeliveryStatus.failed, dead_letter=True, reason="permanent_failure")
    wait = policy.delay(attempt, outcome, rng)
    if wait is None:
        return Decision(DeliveryStatus.dead, dead_letter=True, reason="retries_exhausted")
    return Decision(DeliveryStatus.retrying, retry_at=now + timedelta(seconds=wait))


@dataclass(frozen=True)
class Health:
    """A channel's failure streak: when it began, if it is failing now."""

    failing_since: datetime | None = None
    failures: int = 0


def health_after(
    health: Health, outcome: Outcome, now: datetime, window: float
) -> tuple[Health, bool]:
    """The channel's new health, and whether it has now failed continuously for ``window``."""
    if outcome.status is OutcomeStatus.delivered:
        return Health(), False
    since = health.failing_since or now
    new = Health(failing_since=since, failures=health.failures + 1)
    return new, (now - since).total_seconds() >= window


class RateLimiter:
    """At most ``rate`` events per second per key: ``wait(key, now)`` says how long to hold."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next: dict[str, float] = {}

    def reserve(self, key: str, now: float) -> float:
        """Book the next slot for ``key``; returns the seconds to wait before using it."""
        slot = max(now, self._next.get(key, now))
        self._next[key] = slot + self.interval
        if len(self._next) > 100_000:  # forget keys whose slots are long past
            self._next = {k: v for k, v in self._next.items() if v > now}
        return slot - now


# ---------------------------------------------------------------- what an answer means

#: Characters of a receiver's error reply quoted in the attempt's detail.
SNIPPET_CHARS = 200


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, at most ``MAX_RETRY_AFTER``; None if
    there is none or it is neither form of RFC 9110 §10.2.3.

    delay-seconds are ASCII digits only (no sign, fraction, exponent, ``inf``); an HTTP-date
    in the past means now (0), one further than a day away means a day.
    """
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        # More than 6 digits is over a day anyway (and int() refuses over 4,300 digits).
        return MAX_RETRY_AFTER if len(value) > 6 else min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


def _snippet(raw: bytes) -> str:
    text = " ".join(raw.decode("utf-8", errors="replace").split())
    if not text:
        return ""
    return ": " + (text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS] + "…")


def http_outcome(
    status: int, headers: Mapping[str, str], reply: bytes, latency_ms: float
) -> Outcome:
    """What an HTTP reply means for a delivery, per DESIGN §6 and the Standard Webhooks spec:
    2xx delivered, 410 disabled, 429 and 5xx retried (after ``Retry-After``), the rest failed.

    ``headers`` is looked up by lower-case name (the client's headers ignore case anyway).
    """
    if 200 <= status < 300:
        return Outcome(OutcomeStatus.delivered, f"HTTP {status}", status, None, latency_ms)
    if status == 410:
        detail = "HTTP 410 Gone: the receiver asked for no more deliveries to this URL"
        return Outcome(OutcomeStatus.disabled, detail, status, None, latency_ms)
    if status == 429 or status >= 500:
        wait = parse_retry_after(headers.get("retry-after"))
        detail = f"HTTP {status}{_snippet(reply)}"
        return Outcome(OutcomeStatus.retry, detail, status, wait, latency_ms)
    if 300 <= status < 400:
        # Redirects are not followed: a receiver could bounce us to an internal address.
        where = headers.get("location", "")
        detail = f"HTTP {status} redirect not followed" + (f" (to {where[:200]})" if where else "")
        return Outcome(OutcomeStatus.failed, detail, status, None, latency_ms)
    detail = f"HTTP {status}{_snippet(reply)}"
    return Outcome(OutcomeStatus.failed, detail, status, None, latency_ms)


def smtp_status(code: int) -> OutcomeStatus:
    """An SMTP reply refusing a message: 5xx is the server's final word on it, 4xx and
    anything odd may pass later."""
    return OutcomeStatus.failed if 500 <= code < 600 else OutcomeStatus.retry


# ---------------------------------------------------------------- what a group robot's reply means
#
# The three platforms answer HTTP 200 to almost everything and put the verdict in the JSON
# body: ``errcode`` (企业微信, 钉钉) or ``code`` (飞书; older servers only ``StatusCode``).
# Only a code of 0 is delivered. Sources: docs/channels.md.


@dataclass(frozen=True)
class _Meaning:
    status: OutcomeStatus
    zh: str
    en: str
    #: The robot takes nothing for this long (every message to it waits), in seconds.
    throttle: float | None = None


#: How long a throttled robot is left alone. 钉钉 documents a 10-minute throttle after the
#: 21st message in a minute; 企业微信 (20 a minute) and 飞书 (100 a minute) document none, so
#: a whole window: after 60 s the rolling minute holds none of the messages that filled it.
THROTTLE_WAIT: dict[Platform, float] = {
    Platform.wecom: 60.0,
    Platform.dingtalk: 600.0,
    Platform.feishu: 60.0,
}

_BUSY = "平台系统繁忙", "the platform is busy"


def _retry(zh: str, en: str) -> _Meaning:
    return _Meaning(OutcomeStatus.retry, zh, en)


def _throttled(platform: Platform, zh: str, en: str) -> _Meaning:
    return _Meaning(OutcomeStatus.retry, zh, en, THROTTLE_WAIT[platform])


def _failed(zh: str, en: str) -> _Meaning:
    return _Meaning(OutcomeStatus.failed, zh, en)


def _disabled(zh: str, en: str) -> _Meaning:
    """The robot or its URL is gone: like HTTP 410, no message will ever get through, so the
    channel is turned off until the partner gives a new URL."""
    return _Meaning(OutcomeStatus.disabled, zh, en)


_DINGTALK_TOKEN = _disabled(
    "access_token 不存在（令牌错误，或机器人已被移除）",
    "the access token does not exist (a wrong token, or the robot was removed)",
)
_DINGTALK_THROTTLED = _throttled(
    Platform.dingtalk,
    "发送太快，每分钟超过 20 条，限流 10 分钟",
    "sending too fast: over 20 messages a minute, the robot is throttled for 10 minutes",
)
_KEYWORD = _failed(
    "消息不含机器人要求的关键词", "keyword missing: the message lacks the robot's keyword"
)
_IP = _failed(
    "发送方 IP 不在机器人的白名单中", "the sender's IP is not in the robot's IP allow-list"
)
_FEISHU_THROTTLED = _throttled(
    Platform.feishu,
    "发送频率受限（每分钟 100 条、每秒 5 条）",
    "frequency limited (100 messages a minute, 5 a second)",
)

CHAT_CODES: dict[Platform, dict[int, _Meaning]] = {
    Platform.wecom: {
        -1: _retry(*_BUSY),
        45009: _throttled(
            Platform.wecom,
            "发送太频繁（每个机器人每分钟最多 20 条）",
            "sending too fast (api freq out of limit: 20 messages a minute per robot)",
        ),
        93000: _disabled(
            "webhook 地址无效（key 错误，或机器人已被移出群聊）",
            "invalid webhook URL: a wrong key, or the robot was removed from the group",
        ),
        93004: _disabled("机器人已被停用", "the robot is disabled"),
        93008: _disabled("机器人不在群聊中", "the robot is not in the group"),
        40058: _failed("参数不合法（例如内容超长）", "invalid parameter (e.g. content too long)"),
        44004: _failed("消息内容为空", "empty content"),
        40008: _failed("消息类型不合法", "invalid message type"),
    },
    Platform.dingtalk: {
        -1: _retry(*_BUSY),
        130101: _DINGTALK_THROTTLED,
        410100: _DINGTALK_THROTTLED,
        300001: _DINGTALK_TOKEN,
        300005: _DINGTALK_TOKEN,
        400101: _DINGTALK_TOKEN,
        400102: _disabled("机器人已停用", "the robot is stopped"),
        400106: _disabled("机器人不存在", "the robot does not exist"),
        400013: _disabled("群已被解散", "the group was dissolved"),
        400105: _failed("不支持的消息类型", "unsupported message type"),
        400402: _failed("缺少必需的参数（例如 markdown 的 title）", "a required field is missing"),
        460101: _failed("消息体超过 20000 字节", "the body is over 20000 bytes"),
        430101: _failed("消息含有不安全的链接", "the message holds an unsafe link"),
        430102: _failed("消息含有不合适的文本", "the message holds inappropriate text"),
        430103: _failed("消息含有不合适的图片", "the message holds an inappropriate image"),
        430104: _failed("消息含有不合适的内容", "the message holds inappropriate content"),
    },
    Platform.feishu: {
        11232: _FEISHU_THROTTLED,
        # The general OpenAPI throttle (HTTP 429 elsewhere), should a robot answer it.
        99991400: _FEISHU_THROTTLED,
        19001: _disabled(
            "webhook 的 token 无效（地址错误，或机器人已被删除）",
            "invalid webhook token (a wrong URL, or the robot was deleted)",
        ),
        19021: _failed(
            "签名校验失败，或时间戳与平台时间相差超过 1 小时",
            "signature mismatch (check the robot's secret), or a timestamp over an hour off",
        ),
        19022: _IP,
        19024: _KEYWORD,
        9499: _failed("请求格式错误，或请求体超过 20 KB", "bad request: malformed, or over 20 KB"),
        19036: _failed("消息超过大小限制", "the message is over the size limit"),
    },
}

# 钉钉 answers 310000 for every failed security setting; its errmsg tells which one.
_DINGTALK_SECURITY: tuple[tuple[tuple[str, ...], _Meaning], ...] = (
    (("keyword", "关键词"), _KEYWORD),
    (("whitelist", "白名单", "ip "), _IP),
    (
        ("sign", "签名"),
        _failed("加签签名不匹配", "signature mismatch: check the robot's 加签 secret (SEC…)"),
    ),
    (
        ("timestamp", "时间戳"),
        _retry(
            "时间戳无效（与平台时间相差超过 1 小时）",
            "invalid timestamp (over an hour off): signed afresh next time; check the clock",
        ),
    ),
)
_DINGTALK_SECURITY_OTHER = _failed(
    "安全设置校验失败（关键词、加签或 IP 白名单）",
    "the robot's security check failed (keyword, signature or IP whitelist)",
)


def _reply_json(body: bytes) -> dict[str, object] | None:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return data if isinstance(data, dict) else None


def _platform_said(data: dict[str, object], *keys: str) -> str:
    for key in keys:
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            text = " ".join(value.split())
            text = text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS] + "…"
            return f" (the platform said: {text})"
    return ""


def _meaning(platform: Platform, code: int, message: str) -> _Meaning | None:
    if platform is Platform.dingtalk and code == 310000:
        lowered = message.lower()
        for words, meaning in _DINGTALK_SECURITY:
            if any(word in lowered for word in words):
                return meaning
        return _DINGTALK_SECURITY_OTHER
    if platform is Platform.feishu and code == 9499 and "too many request" in message.lower():
        return _FEISHU_THROTTLED  # 飞书 floods are sometimes 9499 "too many request"
    return CHAT_CODES[platform].get(code)


def chat_outcome(platform: Platform, http_status: int, body: bytes, latency_ms: float) -> Outcome:
    """What a group robot's reply means for a delivery.

    HTTP 2xx with ``errcode`` / ``code`` 0 is delivered; anything else never is. A known
    code means what :data:`CHAT_CODES` says (throttling waits :data:`THROTTLE_WAIT`, 钉钉's
    code-less ``{"status": 1111, "wait": N}`` waits N s); an unknown code, a body that is not
    a JSON object or has no code is a failure. 429 and 5xx are retried, 410 disables the
    channel, other statuses fail unless their body carries a known code.
    """
    facts = FACTS[platform]
    name = facts.name

    def out(
        status: OutcomeStatus, detail: str, wait: float | None = None, *, throttled: bool = False
    ) -> Outcome:
        if wait is not None:
            wait = min(max(wait, 0.0), MAX_RETRY_AFTER)
        return Outcome(status, detail, http_status, wait, latency_ms, throttled=throttled)

    if http_status == 429:
        detail = f"HTTP 429 from {name}: sending too fast{_snippet(body)}"
        return out(OutcomeStatus.retry, detail, THROTTLE_WAIT[platform], throttled=True)
    if http_status >= 500:
        return out(OutcomeStatus.retry, f"HTTP {http_status} from {name}{_snippet(body)}")
    if http_status == 410:
        detail = f"HTTP 410 Gone from {name}: the robot's URL asked for no more messages"
        return out(OutcomeStatus.disabled, detail)
    if 300 <= http_status < 400:
        return out(OutcomeStatus.failed, f"HTTP {http_status} from {name}: redirect not followed")
    ok_status = 200 <= http_status < 300
    prefix = f"{name}" if http_status == 200 else f"HTTP {http_status}, {name}"

    data = _reply_json(body)
    if data is None:
        if platform is Platform.feishu and b"too many request" in body.lower():
            detail = f"HTTP {http_status} from {name}: too many requests{_snippet(body)}"
            return out(OutcomeStatus.retry, detail, THROTTLE_WAIT[platform], throttled=True)
        what = "a reply that is not a JSON object" if ok_status else "an error"
        return out(OutcomeStatus.failed, f"HTTP {http_status}, {what} from {name}{_snippet(body)}")

    fields = ("code", "StatusCode") if platform is Platform.feishu else ("errcode",)
    message_keys = ("msg", "StatusMessage") if platform is Platform.feishu else ("errmsg",)
    field = next((f for f in fields if f in data), None)
    if field is None:
        wait = data.get("wait")
        if platform is Platform.dingtalk and ("punish" in data or "wait" in data):
            # 钉钉's flood guard answers without an errcode: {"status":1111,"wait":5,...}.
            seconds = (
                float(min(wait, MAX_RETRY_AFTER))  # min first: float(10**400) overflows
                if isinstance(wait, int | float) and not isinstance(wait, bool) and wait >= 0
                else THROTTLE_WAIT[platform]
            )
            detail = (
                f"{prefix} 限流: 请求被拒绝，{seconds:g} 秒后再试 / throttled without an errcode: "
                f"wait {seconds:g} s{_snippet(body)}"
            )
            return out(OutcomeStatus.retry, detail, seconds, throttled=True)
        detail = f"HTTP {http_status}, a reply without {' or '.join(fields)} from {name}"
        return out(OutcomeStatus.failed, detail + _snippet(body))
    code = data[field]
    if not isinstance(code, int) or isinstance(code, bool):
        detail = f"HTTP {http_status}, {name} {field} is not a number: {code!r}"[:300]
        return out(OutcomeStatus.failed, detail)
    said = _platform_said(data, *message_keys)
    if code == 0:
        if ok_status:
            return out(OutcomeStatus.delivered, f"{prefix} {field} 0")
        return out(OutcomeStatus.failed, f"{prefix} {field} 0 with an error status{said}")
    message = next((m for k in message_keys if isinstance(m := data.get(k), str)), "")
    meaning = _meaning(platform, code, message)
    if meaning is None:
        detail = f"{prefix} {field} {code}: 未知错误码 / unknown error code{said}"
        return out(OutcomeStatus.failed, detail)
    detail = f"{prefix} {field} {code}: {meaning.zh} / {meaning.en}{said}"
    throttled = meaning.throttle is not None
    return out(meaning.status, detail, meaning.throttle, throttled=throttled)
