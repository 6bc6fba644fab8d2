"""Request and response bodies of the HTTP API; ``/openapi.json`` is generated from these."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
)

from relay.core.models import (
    AnyChannel,
    AuditRecord,
    Coverage,
    DeliveryPrefs,
    DeliveryStatus,
    Document,
    EmailChannel,
    Interests,
    MatchResult,
    Partner,
    WebhookChannel,
)
from relay.core.models.document import HttpURL
from relay.core.models.limits import (
    CHANNELS_MAX,
    DELIVERY_IDS_MAX,
    FORWARDED_TO_MAX,
    ID_MAX,
    RECIPIENTS_MAX,
    SECRET_MAX,
    Name,
    Note,
    ShortId,
    one_line,
)
from relay.core.models.partner import (
    BOT_KEYWORD_MAX,
    PARTNER_ID,
    BotKeyword,
    BotSecret,
    EmailAddress,
    PartnerKind,
    WebhookSecret,
)
from relay.core.outcome import OutcomeStatus

CHANNEL_ID = r"^[a-z0-9][a-z0-9._-]{0,63}$"


class Strict(BaseModel):
    """Request bodies: unknown fields are refused, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------ errors


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable, e.g. invalid_request, not_found")
    message: str = Field(description="a sentence naming the field or the problem")


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": {"code", "message"}}``."""

    error: ErrorDetail


# ------------------------------------------------------------------ channels


class EmailChannelIn(Strict):
    type: Literal["email"]
    id: str | None = Field(default=None, pattern=CHANNEL_ID, description="default: derived")
    to: list[EmailAddress] = Field(min_length=1, max_length=RECIPIENTS_MAX)


class WebhookChannelIn(Strict):
    type: Literal["webhook"]
    id: str | None = Field(default=None, pattern=CHANNEL_ID, description="default: derived")
    url: HttpURL
    secret: WebhookSecret | None = Field(
        default=None, description="whsec_… (Standard Webhooks); default: the relay makes one"
    )


class _BotChannelIn(Strict):
    id: str | None = Field(default=None, pattern=CHANNEL_ID, description="default: derived")
    url: HttpURL = Field(description="the robot's webhook URL, its key or token in it")
    keyword: BotKeyword | None = Field(
        default=None, description="a keyword the robot requires in every message (安全设置)"
    )


class WecomChannelIn(_BotChannelIn):
    """企业微信 群机器人: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"""

    type: Literal["wecom"]


class DingtalkChannelIn(_BotChannelIn):
    """钉钉 自定义机器人: https://oapi.dingtalk.com/robot/send?access_token=…"""

    type: Literal["dingtalk"]
    secret: BotSecret | None = Field(default=None, description="加签 secret (SEC…), if set")


class FeishuChannelIn(_BotChannelIn):
    """飞书 自定义机器人: https://open.feishu.cn/open-apis/bot/v2/hook/…"""

    type: Literal["feishu"]
    secret: BotSecret | None = Field(default=None, description="签名校验 secret, if set")


ChannelIn = Annotated[
    EmailChannelIn | WebhookChannelIn | WecomChannelIn | DingtalkChannelIn | FeishuChannelIn,
    Field(discriminator="type"),
]


def _keyword_change(text: str) -> str:
    return text if text == "" else one_line(text)


#: A robot's new keyword, or "" to remove it. One type, not a union with ``Literal[""]``:
#: an error then names the field alone, not the union's members.
KeywordChange = Annotated[str, Field(max_length=BOT_KEYWORD_MAX), AfterValidator(_keyword_change)]


class ChannelUpdate(Strict):
    """A change to a channel; what is left out stays. A webhook's secret changes only by
    rotation; a group robot's (which the platform makes) is set here."""

    to: list[EmailAddress] | None = Field(default=None, min_length=1, max_length=RECIPIENTS_MAX)
    url: HttpURL | None = None
    # Checked as the channel's own secret once its type is known: a webhook's answer is
    # to rotate it instead, whatever was sent.
    secret: str | None = Field(
        default=None,
        max_length=SECRET_MAX,
        description="a group robot's new secret (钉钉 SEC…, 飞书); never shown",
    )
    keyword: KeywordChange | None = Field(
        default=None, description='a group robot\'s required keyword; "" removes it'
    )
    disabled: StrictBool | None = Field(
        default=None, description="false re-enables a channel the relay disabled"
    )


class EmailChannelOut(BaseModel):
    type: Literal["email"] = "email"
    id: str
    to: list[str]
    disabled: bool
    disabled_reason: str | None


class WebhookChannelOut(BaseModel):
    type: Literal["webhook"] = "webhook"
    id: str
    url: str
    has_previous_secret: bool = Field(
        description="an old secret still signs alongside the new one (after a rotation)"
    )
    previous_secret_until: datetime | None
    disabled: bool
    disabled_reason: str | None


class BotChannelOut(BaseModel):
    type: Literal["wecom", "dingtalk", "feishu"]
    id: str
    url: str = Field(description="the robot's URL, its key or token cut to the last 4 characters")
    keyword: str | None
    has_secret: bool = Field(description="the robot signs (钉钉 加签, 飞书 签名校验)")
    disabled: bool
    disabled_reason: str | None


ChannelOut = Annotated[
    EmailChannelOut | WebhookChannelOut | BotChannelOut, Field(discriminator="type")
]


def channel_out(ch: AnyChannel, now: datetime) -> ChannelOut:
    """A channel as the API shows it: never its secrets, never a robot's key."""
    if isinstance(ch, EmailChannel):
        return EmailChannelOut(
            id=ch.id, to=list(ch.to), disabled=ch.disabled, disabled_reason=ch.disabled_reason
        )
    if not isinstance(ch, WebhookChannel):
        return BotChannelOut(
            type=ch.type,
            id=ch.id,
            url=ch.target,
            keyword=ch.keyword,
            has_secret=bool(getattr(ch, "secret", None)),
            disabled=ch.disabled,
            disabled_reason=ch.disabled_reason,
        )
    overlap = len(ch.signing_secrets(now)) > 1
    return WebhookChannelOut(
        id=ch.id,
        url=ch.url,
        has_previous_secret=overlap,
        previous_secret_until=ch.previous_secret_until if overlap else None,
        disabled=ch.disabled,
        disabled_reason=ch.disabled_reason,
    )


class ChannelCreated(BaseModel):
    channel: ChannelOut
    secret: str | None = Field(
        default=None, description="the webhook secret, when the relay made it; shown only now"
    )


class SecretRotated(BaseModel):
    channel_id: str
    secret: str = Field(description="the new whsec_ secret; shown only now")
    previous_secret_until: datetime = Field(
        description="until then the old secret signs too (both in webhook-signature)"
    )


class ChannelTestResult(BaseModel):
    channel_id: str
    channel_type: Literal["email", "webhook", "wecom", "dingtalk", "feishu"]
    delivery_id: str = Field(description="the webhook-id / X-Relay-Delivery-Id of the test")
    status: OutcomeStatus = Field(
        description="delivered, retry (a transient failure), failed, disabled"
    )
    detail: str
    http_status: int | None = None
    smtp_code: int | None = None
    latency_ms: float | None = None


# ------------------------------------------------------------------ partners


class PartnerCreate(Strict):
    id: str = Field(pattern=PARTNER_ID)
    kind: PartnerKind
    name: Name
    coverage: Coverage = Field(default_factory=Coverage)
    interests: Interests = Field(default_factory=Interests)
    paused: StrictBool = False
    delivery: DeliveryPrefs = Field(default_factory=DeliveryPrefs)
    catch_up: StrictBool = False
    channels: list[ChannelIn] = Field(default_factory=list, max_length=CHANNELS_MAX)


class PartnerUpdate(Strict):
    """A change to a profile; what is left out stays. Channels live under /channels."""

    name: Name | None = None
    coverage: Coverage | None = None
    interests: Interests | None = None
    paused: StrictBool | None = None
    delivery: DeliveryPrefs | None = None
    catch_up: StrictBool | None = None


class PartnerOut(BaseModel):
    id: str
    kind: PartnerKind
    name: str
    coverage: Coverage
    interests: Interests
    paused: bool
    delivery: DeliveryPrefs
    catch_up: bool = False
    channels: list[ChannelOut]


def partner_out(p: Partner, now: datetime) -> PartnerOut:
    """A partner as the API shows it: no token hashes, no secrets."""
    return PartnerOut(
        id=p.id,
        kind=p.kind,
        name=p.name,
        coverage=p.coverage,
        interests=p.interests,
        paused=p.paused,
        delivery=p.delivery,
        catch_up=p.catch_up,
        channels=[channel_out(c, now) for c in p.channels],
    )


class PartnerCreated(BaseModel):
    partner: PartnerOut
    token: str = Field(description="the partner's API token; shown only now, stored as a hash")
    webhook_secrets: dict[str, str] = Field(
        default_factory=dict, description="channel id → secret the relay made; shown only now"
    )


class TokenIssued(BaseModel):
    partner_id: str
    token: str = Field(description="the new API token; shown only now. Older tokens are revoked")


# ------------------------------------------------------------------ deliveries


class AttemptOut(BaseModel):
    kind: str
    at: datetime
    attempt: int | None = None
    status: DeliveryStatus | None = None
    detail: str | None = None
    reply_code: int | None = Field(
        default=None, description="the HTTP status (webhook) or SMTP reply code (email)"
    )
    latency_ms: float | None = None
    next_attempt_at: datetime | None = None

    @classmethod
    def of(cls, r: AuditRecord) -> AttemptOut:
        return cls(
            kind=r.kind,
            at=r.at,
            attempt=r.attempt,
            status=r.status,
            detail=r.detail,
            reply_code=r.http_status,
            latency_ms=r.latency_ms,
            next_attempt_at=r.next_attempt_at,
        )


class AckOut(BaseModel):
    delivery_id: str
    notification_id: str | None
    forwarded_to: int
    note: str | None
    at: datetime

    @classmethod
    def of(cls, r: AuditRecord) -> AckOut:
        return cls(
            delivery_id=r.delivery_id or "",
            notification_id=r.notification_id,
            forwarded_to=r.forwarded_to or 0,
            note=r.note,
            at=r.at,
        )


class DeliveryOut(BaseModel):
    delivery_id: str
    notification_id: str | None
    partner_id: str | None
    document_id: str | None
    version: int | None
    title: str | None = Field(description="the document's title, when known")
    channel_id: str | None
    channel_type: str | None
    status: DeliveryStatus
    planned_at: datetime | None
    attempts: list[AttemptOut]
    acknowledgement: AckOut | None = Field(
        description="the latest acknowledgement of this notice (through any of its channels)"
    )


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None = Field(description="pass as cursor for the next (older) page")


class AckIn(Strict):
    forwarded_to: StrictInt = Field(
        ge=0, le=FORWARDED_TO_MAX, description="enterprises the notice reached"
    )
    note: Note | None = None


class AckForm(AckIn):
    """The confirmation page's form: the fields, plus the link token."""

    t: str | None = Field(default=None, description="the link token", max_length=ID_MAX)


# ------------------------------------------------------------------ documents


class AdvisoryOut(BaseModel):
    """Accepted and relayed all the same, but the operator should know (e.g. no validity)."""

    code: str
    field: str
    message: str


class DocumentAccepted(BaseModel):
    event_id: str
    document_id: str
    version: int
    type: str
    partition: int
    offset: int
    warnings: list[AdvisoryOut] = Field(
        default_factory=list, description="e.g. a normative document without expires_on"
    )


class CurrentDocument(BaseModel):
    """The latest accepted version of a document, whole: the base of its next revision."""

    document: Document
    versions: list[int] = Field(description="the versions accepted, oldest first")


class TraceEvent(BaseModel):
    kind: str
    at: datetime
    event_id: str | None
    version: int | None
    detail: str | None
    reason: str | None


class NotificationOut(BaseModel):
    notification_id: str
    partner_id: str
    partner_name: str | None
    version: int | None
    type: str | None
    planned_at: datetime | None
    match: MatchResult | None
    deliveries: list[DeliveryOut]
    acknowledgement: AckOut | None
    acknowledgements: int = Field(description="how many times it was acknowledged (repeats)")


class TraceTotals(BaseModel):
    partners_matched: int
    notifications: int
    notifications_delivered: int = Field(
        default=0, description="notifications with at least one delivery that got through"
    )
    deliveries: int
    deliveries_by_status: dict[str, int]
    notifications_acknowledged: int
    enterprises_reached: int = Field(
        description="over notifications, the latest acknowledgement's forwarded_to"
    )


class VersionFunnel(BaseModel):
    """One version's own funnel: its notifications only (a revision's recipients)."""

    version: int
    funnel: TraceTotals


class DocumentTraceOut(BaseModel):
    document_id: str
    title: str | None
    doc_number: str | None
    versions: list[int]
    events: list[TraceEvent]
    notifications: list[NotificationOut]
    totals: TraceTotals = Field(description="every version together")
    funnels: list[VersionFunnel] = Field(
        default_factory=list, description="each version's own funnel, oldest first"
    )


class ReplayRequest(Strict):
    """Which dead letters to re-queue; every given criterion must hold."""

    delivery_ids: list[ShortId] | None = Field(default=None, max_length=DELIVERY_IDS_MAX)
    partner_id: ShortId | None = None
    document_id: ShortId | None = None
    since: AwareDatetime | None = Field(default=None, description="died at or after")
    until: AwareDatetime | None = Field(default=None, description="died at or before")
    all: StrictBool = Field(default=False, description="true to replay every dead letter")


class ReplayResult(BaseModel):
    requeued: int
    delivery_ids: list[str]


# ------------------------------------------------------------------ dashboard


class DocumentSummary(BaseModel):
    """One document in the operator's list, with its relay funnel."""

    document_id: str
    title: str | None
    doc_number: str | None
    version: int | None = Field(description="the latest version known")
    updated_at: datetime | None = Field(description="its latest event or notification")
    last_event: str | None = Field(
        description="kind of its latest event: event.accepted, event.rejected, document.matched…"
    )
    rejected_reason: str | None = Field(description="when its latest event is a rejection")
    funnel: TraceTotals = Field(
        description="the funnel of `version` alone; deliveries_by_status names every status"
    )
    versions: list[VersionFunnel] = Field(
        default_factory=list, description="each version's own funnel, oldest first"
    )


class DocumentList(BaseModel):
    items: list[DocumentSummary] = Field(description="newest activity first")
    total: int = Field(description="documents the trace view knows")


class Throughput(BaseModel):
    window_s: int = Field(description="the rolling window, in seconds")
    delivered_per_s: float = Field(description="deliveries that got through, per second")
    delivered_per_s_by_channel: dict[str, float] = Field(description="channel type → per second")
    attempts_per_s: float = Field(description="every recorded outcome (retries included)")
    delivered_per_second: list[int] = Field(
        description="deliveries per second over the window, oldest first"
    )


class TopicLagOut(BaseModel):
    topic: str
    partitions: int = Field(description="partitions of the topic this worker holds")
    lag: int = Field(description="records waiting: end offset − position, summed")


class ConsumerLag(BaseModel):
    """This worker's consumer only: it holds a share of the partitions."""

    status: Literal["ok", "rebalancing", "unavailable"]
    total: int | None
    topics: list[TopicLagOut]
    detail: str | None = None


class FailureOut(BaseModel):
    delivery_id: str
    partner_id: str | None
    partner_name: str | None
    document_id: str | None
    title: str | None
    channel_id: str | None
    channel_type: str | None
    status: DeliveryStatus = Field(description="failed, disabled or dead: in the dead letters")
    at: datetime
    attempt: int | None
    reason: str | None
    detail: str | None
    reply_code: int | None = Field(description="the HTTP status or SMTP reply code")


class WorkerOut(BaseModel):
    uptime_s: float
    ready: bool
    stalled: str | None
    partners: int


class RegistryOut(BaseModel):
    """This worker's partner registry in brief: workers that agree show the same."""

    partners: int = Field(description="partners held")
    fingerprint: str = Field(
        description="`<count>-<hash>` of every partner record applied, whatever their order"
    )
    position: int = Field(description="the next offset of the partners topic to apply")
    caught_up: bool = Field(description="the registry has read the partners topic to its end")


class Overview(BaseModel):
    """The plain figures at the top of the dashboard: every document, every version."""

    documents: int = Field(description="documents relayed to at least one partner")
    notifications: int = Field(description="已推送: notices planned (document version × partner)")
    notifications_delivered: int = Field(description="已送达: notices that reached a channel")
    notifications_acknowledged: int = Field(description="已确认: notices acknowledged")
    enterprises_reached: int = Field(description="触达企业: over notices, the latest ack's count")
    failed: int = Field(description="deliveries that failed and can be sent again")


class DashboardOut(BaseModel):
    """What the operator dashboard (``GET /``) shows, polled every few seconds."""

    generated_at: datetime
    overview: Overview
    worker: WorkerOut
    throughput: Throughput
    lag: ConsumerLag
    deliveries_by_status: dict[str, int] = Field(description="every status, now, all workers")
    dead_letters: int = Field(description="deliveries in the dead letters now (replayable)")
    events_rejected: int = Field(description="events refused at intake (relay.rejected)")
    failures: list[FailureOut] = Field(description="dead-lettered deliveries, newest first")
    documents: list[DocumentSummary] = Field(description="newest activity first")
    documents_total: int
