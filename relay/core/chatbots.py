"""The three group-robot platforms partners relay in (企业微信, 钉钉, 飞书): their facts; pure.

What each platform documents (``docs/channels.md`` has the sources): where its robots
live, how fast one robot may be sent to, and how large a message may be. Formatting
(``relay.core.chat``), pacing (``relay.core.pacing``), the senders
(``relay.adapters.chatbots``) and the dev sink (``relay.embedded.sinks``) all read them here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qs, unquote, urlsplit


class Platform(StrEnum):
    wecom = "wecom"
    dingtalk = "dingtalk"
    feishu = "feishu"


@dataclass(frozen=True)
class PlatformFacts:
    name: str
    #: The host a robot URL must have in production.
    host: str
    #: The path every robot URL of the platform starts with.
    path: str
    #: Messages one robot takes per rolling minute, and per second (None: no per-second limit).
    per_minute: int
    per_second: int | None
    #: Largest request body, in bytes of UTF-8 JSON.
    max_body: int
    #: Largest message content, in bytes (WeCom markdown ``content``); None: only the body.
    max_content: int | None
    #: Other hosts the platform documents for the same robots (钉钉's international
    #: ``oapi.dingtalk.io``, Lark's ``open.larksuite.com``).
    also_hosts: tuple[str, ...] = ()

    @property
    def hosts(self) -> tuple[str, ...]:
        return (self.host, *self.also_hosts)


FACTS: dict[Platform, PlatformFacts] = {
    Platform.wecom: PlatformFacts(
        name="企业微信",
        host="qyapi.weixin.qq.com",
        path="/cgi-bin/webhook/send",
        per_minute=20,
        per_second=None,
        max_body=20_000,
        max_content=4096,
    ),
    Platform.dingtalk: PlatformFacts(
        name="钉钉",
        host="oapi.dingtalk.com",
        path="/robot/send",
        per_minute=20,
        per_second=None,
        max_body=20_000,
        max_content=None,
        also_hosts=("oapi.dingtalk.io",),
    ),
    Platform.feishu: PlatformFacts(
        name="飞书",
        host="open.feishu.cn",
        path="/open-apis/bot/v2/hook/",
        per_minute=100,
        per_second=5,
        max_body=20_000,
        max_content=None,
        also_hosts=("open.larksuite.com",),
    ),
}

CHAT_TYPES = frozenset(p.value for p in Platform)


def robot_of(url: str) -> tuple[Platform, str] | None:
    """The platform and the robot's token (企业微信 ``key``, 钉钉 ``access_token``, 飞书 the
    hook's last path part) of a URL on a platform's own host and robot path; else None."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    for platform, facts in FACTS.items():
        if host not in facts.hosts:
            continue
        if platform is Platform.feishu:
            token = parts.path.removeprefix(facts.path) if parts.path.startswith(facts.path) else ""
            return (platform, unquote(token)) if token and "/" not in token else None
        if parts.path != facts.path:
            return None
        param = "key" if platform is Platform.wecom else "access_token"
        values = parse_qs(parts.query).get(param)
        return (platform, values[0]) if values and values[0] else None
    return None
