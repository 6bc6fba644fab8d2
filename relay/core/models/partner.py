"""Partners (associations and parks): who their members are, what they want, where to send it."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, model_validator

from relay.core.chatbots import FACTS, Platform
from relay.core.models.document import Audience, HttpURL, IndustryCode, RegionCode, Scale
from relay.core.models.limits import (
    CHANNELS_MAX,
    CHOICES_MAX,
    CODES_MAX,
    EMAIL_MAX,
    PARKS_MAX,
    RECIPIENTS_MAX,
    SECRET_MAX,
    TAGS_MAX,
    TOKENS_MAX,
    Name,
    ParkName,
    RelayReason,
    ShortId,
    Tag,
    one_line,
)

PARTNER_ID = r"^[a-z0-9][a-z0-9._-]{1,63}$"
EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")

PartnerKind = Audience


def _email(address: str) -> str:
    address = address.strip()
    if not EMAIL.match(address):
        raise ValueError(f"{address!r} is not an email address")
    return address


def _whsec(secret: str) -> str:
    if not secret.startswith("whsec_"):
        raise ValueError("must start with 'whsec_' (Standard Webhooks secret)")
    try:
        raw = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the part after 'whsec_' must be base64") from None
    if not 24 <= len(raw) <= 64:
        raise ValueError(f"must hold 24 to 64 random bytes, not {len(raw)}")
    return secret


EmailAddress = Annotated[
    str, Field(max_length=EMAIL_MAX), AfterValidator(one_line), AfterValidator(_email)
]
WebhookSecret = Annotated[str, Field(max_length=SECRET_MAX), AfterValidator(_whsec)]


class DeliveryMode(StrEnum):
    immediate = "immediate"
    digest = "digest"


class Coverage(BaseModel):
    """Who the partner's members are; an empty list means "we don't say"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    industries: list[IndustryCode] = Field(default_factory=list, max_length=CODES_MAX)
    regions: list[RegionCode] = Field(default_factory=list, max_length=CODES_MAX)
    parks: list[ParkName] = Field(default_factory=list, max_length=PARKS_MAX)
    scales: list[Scale] = Field(default_factory=list, max_length=CHOICES_MAX)


class Interests(BaseModel):
    """Which policy tags the partner wants (empty ``tags_any`` = everything)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tags_any: list[Tag] = Field(default_factory=list, max_length=TAGS_MAX)
    exclude_tags: list[Tag] = Field(default_factory=list, max_length=TAGS_MAX)


class DeliveryPrefs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: DeliveryMode = DeliveryMode.immediate
    digest_at: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


def _channel_id(kind: str, target: str) -> str:
    return f"{kind}-{hashlib.sha256(target.encode()).hexdigest()[:10]}"


class EmailChannel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["email"] = "email"
    id: str = Field(default="", pattern=r"^$|^[a-z0-9][a-z0-9._-]{0,63}$")
    to: list[EmailAddress] = Field(min_length=1, max_length=RECIPIENTS_MAX)
    disabled: StrictBool = False
    disabled_reason: RelayReason | None = None

    @model_validator(mode="after")
    def _default_id(self) -> EmailChannel:
        if not self.id:
            object.__setattr__(self, "id", _channel_id("email", ",".join(sorted(self.to))))
        return self

    @property
    def target(self) -> str:
        return ", ".join(self.to)


class WebhookChannel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["webhook"] = "webhook"
    id: str = Field(default="", pattern=r"^$|^[a-z0-9][a-z0-9._-]{0,63}$")
    url: HttpURL
    secret: WebhookSecret = Field(repr=False)
    #: After a rotation the old secret keeps signing alongside the new one until this time.
    previous_secret: WebhookSecret | None = Field(default=None, repr=False)
    previous_secret_until: datetime | None = None
    disabled: StrictBool = False
    #: Why the relay disabled it (410 Gone, failing for too long), when it did.
    disabled_reason: RelayReason | None = None

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets that sign a request now: the current one, plus the old one in overlap."""
        out = [self.secret]
        if self.previous_secret and self.previous_secret_until and now < self.previous_secret_until:
            out.append(self.previous_secret)
        return out

    @model_validator(mode="after")
    def _default_id(self) -> WebhookChannel:
        if not self.id:
            object.__setattr__(self, "id", _channel_id("webhook", self.url))
        return self

    @property
    def target(self) -> str:
        return self.url


def _bot_url(platform: Platform) -> AfterValidator:
    """The URL must be one of the platform's robot URLs (any host: in dev a local sink
    stands in for the platform; the production host is checked where the profile is known,
    see relay.adapters.chatbots.check_bot_url)."""
    facts = FACTS[platform]

    def check(url: str) -> str:
        path = urlsplit(url).path
        if not path.startswith(facts.path):
            raise ValueError(
                f"a {facts.name} robot URL looks like https://{facts.host}{facts.path}…"
            )
        return url

    return AfterValidator(check)


#: A robot's signing secret (钉钉 ``SEC…``, 飞书's), as the platform shows it.
BotSecret = Annotated[str, Field(min_length=8, max_length=SECRET_MAX), AfterValidator(one_line)]
#: The longest keyword a 钉钉 or 飞书 robot's 安全设置 takes, in characters.
BOT_KEYWORD_MAX = 20
#: A keyword the robot requires in every message (its 安全设置), if it was set up that way.
BotKeyword = Annotated[
    str, Field(min_length=1, max_length=BOT_KEYWORD_MAX), AfterValidator(one_line)
]


class _BotChannel(BaseModel):
    """A group robot: messages go into the group it belongs to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(default="", pattern=r"^$|^[a-z0-9][a-z0-9._-]{0,63}$")
    url: HttpURL = Field(repr=False)  # the key or access token is in it
    keyword: BotKeyword | None = None
    disabled: StrictBool = False
    disabled_reason: RelayReason | None = None

    @property
    def target(self) -> str:
        """The URL with its credential masked, fit to show and to log."""
        return mask_token(self.url)


class WecomChannel(_BotChannel):
    """企业微信 群机器人: ``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…``."""

    type: Literal["wecom"] = "wecom"
    url: Annotated[HttpURL, _bot_url(Platform.wecom)] = Field(repr=False)

    @model_validator(mode="after")
    def _default_id(self) -> WecomChannel:
        if not self.id:
            object.__setattr__(self, "id", _channel_id("wecom", self.url))
        return self


class DingtalkChannel(_BotChannel):
    """钉钉 自定义机器人: ``https://oapi.dingtalk.com/robot/send?access_token=…``, with its
    加签 secret (``SEC…``) when the robot signs."""

    type: Literal["dingtalk"] = "dingtalk"
    url: Annotated[HttpURL, _bot_url(Platform.dingtalk)] = Field(repr=False)
    secret: BotSecret | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _default_id(self) -> DingtalkChannel:
        if not self.id:
            object.__setattr__(self, "id", _channel_id("dingtalk", self.url))
        return self


class FeishuChannel(_BotChannel):
    """飞书 自定义机器人: ``https://open.feishu.cn/open-apis/bot/v2/hook/…``, with its
    签名校验 secret when the robot signs."""

    type: Literal["feishu"] = "feishu"
    url: Annotated[HttpURL, _bot_url(Platform.feishu)] = Field(repr=False)
    secret: BotSecret | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _default_id(self) -> FeishuChannel:
        if not self.id:
            object.__setattr__(self, "id", _channel_id("feishu", self.url))
        return self


BotChannel = WecomChannel | DingtalkChannel | FeishuChannel
AnyChannel = EmailChannel | WebhookChannel | WecomChannel | DingtalkChannel | FeishuChannel
Channel = Annotated[AnyChannel, Field(discriminator="type")]


def mask_token(url: str) -> str:
    """``url`` with the robot's key or access token (query value or last path part) cut to
    its last 4 characters: enough to tell robots apart, not to post to one."""
    parts = urlsplit(url)
    if parts.query:
        query = "&".join(
            f"{k}=…{v[-4:]}" if k in ("key", "access_token") else f"{k}={v}"
            for k, _, v in (pair.partition("=") for pair in parts.query.split("&"))
        )
        return urlunsplit(parts._replace(query=query))
    head, _, token = parts.path.rpartition("/")
    return urlunsplit(parts._replace(path=f"{head}/…{token[-4:]}")) if token else url


class Partner(BaseModel):
    """An association or park subscribed to the relay (DESIGN §5)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=PARTNER_ID)
    kind: PartnerKind
    name: Name
    coverage: Coverage = Field(default_factory=Coverage)
    interests: Interests = Field(default_factory=Interests)
    paused: StrictBool = False
    delivery: DeliveryPrefs = Field(default_factory=DeliveryPrefs)
    #: On joining, or widening coverage or interests: receive the still-valid documents
    #: that now match, each once, marked as catch-up.
    catch_up: StrictBool = False
    channels: list[Channel] = Field(default_factory=list, max_length=CHANNELS_MAX)
    #: SHA-256 hashes of the partner's API tokens (the tokens themselves are never stored).
    token_hashes: list[ShortId] = Field(default_factory=list, repr=False, max_length=TOKENS_MAX)

    @model_validator(mode="after")
    def _unique_channel_ids(self) -> Partner:
        seen: set[str] = set()
        for i, ch in enumerate(self.channels):
            if ch.id in seen:
                raise ValueError(f"channels.{i}.id: {ch.id!r} is used twice")
            seen.add(ch.id)
        return self

    def channel(self, channel_id: str) -> AnyChannel | None:
        return next((c for c in self.channels if c.id == channel_id), None)
