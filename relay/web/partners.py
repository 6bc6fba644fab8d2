"""Partner self-service: profiles, channels, tokens and webhook secrets (DESIGN §7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import ValidationError

from relay.adapters.chatbots import check_bot_url, scrub
from relay.adapters.safety import check_url
from relay.core import signing, tokens
from relay.core.errors import UnsafeWebhookURL
from relay.core.models import (
    AnyChannel,
    BotChannel,
    DingtalkChannel,
    EmailChannel,
    FeishuChannel,
    Partner,
    WebhookChannel,
    WecomChannel,
)
from relay.core.settings import Profile, Settings
from relay.web import probe
from relay.web.errors import ApiError, invalid, not_found, responses
from relay.web.schemas import (
    ChannelCreated,
    ChannelIn,
    ChannelOut,
    ChannelTestResult,
    ChannelUpdate,
    EmailChannelIn,
    PartnerCreate,
    PartnerCreated,
    PartnerOut,
    PartnerUpdate,
    SecretRotated,
    TokenIssued,
    WebhookChannelIn,
    channel_out,
    partner_out,
)
from relay.web.security import Caller, Operator, Rt, partner_for
from relay.web.store import PartnerStore

#: How long the old webhook secret keeps signing after a rotation.
SECRET_OVERLAP = timedelta(hours=24)

router = APIRouter(prefix="/api/v1/partners", tags=["partners"])

PartnerId = Annotated[str, Path(description="the partner's id", max_length=128)]
ChannelId = Annotated[str, Path(description="the channel's id", max_length=128)]
AUTH = responses(401, 404, 422)
WRITE = responses(401, 404, 413, 422, 503)


def store(request: Request) -> PartnerStore:
    store: PartnerStore = request.app.state.store
    return store


def check_webhook_url(settings: Settings, url: str, where: str) -> None:
    """Refuse private or (in production) plain-http webhook URLs at registration."""
    try:
        check_url(
            url,
            allow_private=settings.allow_private_webhooks,
            require_https=settings.profile == Profile.production,
        )
    except UnsafeWebhookURL as e:
        raise ApiError(422, "unsafe_webhook_url", f"{where}: {e}") from e


def check_robot_url(settings: Settings, channel_type: str, url: str, where: str) -> None:
    """A robot URL must be the platform's (in production: its https host and path), and,
    as a webhook's, not private unless allowed."""
    try:
        check_bot_url(channel_type, url, production=settings.profile == Profile.production)
    except UnsafeWebhookURL as e:
        raise ApiError(422, "unsafe_webhook_url", f"{where}: {e}") from e
    try:
        check_webhook_url(settings, url, where)
    except ApiError as e:  # its sentence quotes the URL: not the robot's credential
        raise ApiError(e.status, e.code, scrub(e.message, url)) from e


def revalidated(partner: Partner, **changes: Any) -> Partner:
    """``partner`` with ``changes``, checked again as a whole (model_copy would not check)."""
    try:
        return Partner.model_validate({**dict(partner), **changes})
    except ValidationError as e:
        raise invalid(e) from e


def build_channel(
    settings: Settings, data: ChannelIn, where: str = ""
) -> tuple[AnyChannel, str | None]:
    """A channel from its request, and the secret the relay made for it (if it made one).

    ``where`` is the channel's place in the request body (``channels[0]``), "" when it is
    the whole body: errors name the field as the request's own errors do (``url``)."""
    url_at = f"{where}.url" if where else "url"
    try:
        if isinstance(data, WebhookChannelIn):
            check_webhook_url(settings, data.url, url_at)
            made = None if data.secret else signing.new_secret()
            secret = data.secret or made
            return WebhookChannel(id=data.id or "", url=data.url, secret=secret or ""), made
        if isinstance(data, EmailChannelIn):
            return EmailChannel(id=data.id or "", to=data.to), None
        check_robot_url(settings, data.type, data.url, url_at)
        fields = data.model_dump(exclude_none=True)
        fields["id"] = data.id or ""
        return BOT_CHANNELS[data.type].model_validate(fields), None
    except ValidationError as e:
        raise invalid(e, (where,) if where else ()) from e


#: The model of each robot channel type.
BOT_CHANNELS: dict[str, type[BotChannel]] = {
    "wecom": WecomChannel,
    "dingtalk": DingtalkChannel,
    "feishu": FeishuChannel,
}


def find_channel(partner: Partner, channel_id: str) -> AnyChannel:
    channel = partner.channel(channel_id)
    if channel is None:
        raise not_found(f"channel {channel_id!r}")
    return channel


def _now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------ partners


@router.post(
    "",
    status_code=201,
    response_model=PartnerCreated,
    responses=responses(401, 403, 409, 413, 422, 503),
    summary="Create a partner (operator); returns its API token once",
)
async def create_partner(
    body: PartnerCreate, rt: Rt, _: Operator, request: Request
) -> PartnerCreated:
    token = tokens.new_partner_token()
    made: dict[str, str] = {}

    def build() -> Partner:
        channels = []
        for i, data in enumerate(body.channels):
            channel, secret = build_channel(rt.settings, data, f"channels[{i}]")
            channels.append(channel)
            if secret:
                made[channel.id] = secret
        try:
            return Partner(
                id=body.id,
                kind=body.kind,
                name=body.name,
                coverage=body.coverage,
                interests=body.interests,
                paused=body.paused,
                delivery=body.delivery,
                catch_up=body.catch_up,
                channels=channels,
                token_hashes=[tokens.hash_token(token)],
            )
        except ValidationError as e:
            raise invalid(e) from e

    partner = await store(request).create(build)
    return PartnerCreated(partner=partner_out(partner, _now()), token=token, webhook_secrets=made)


@router.get(
    "",
    response_model=list[PartnerOut],
    responses=responses(401, 403, 422, 503),
    summary="List partners (operator), by id",
)
async def list_partners(
    rt: Rt,
    _: Operator,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    after: Annotated[
        str | None, Query(description="only ids after this one (paging)", max_length=128)
    ] = None,
) -> list[PartnerOut]:
    now = _now()
    ids = sorted(k for k in rt.registry.book.partners if after is None or k > after)
    return [partner_out(rt.registry.book.partners[k], now) for k in ids[:limit]]


@router.get("/{partner_id}", response_model=PartnerOut, responses=AUTH, summary="Read a profile")
async def get_partner(partner_id: PartnerId, rt: Rt, who: Caller) -> PartnerOut:
    return partner_out(partner_for(rt, who, partner_id), _now())


@router.put(
    "/{partner_id}",
    response_model=PartnerOut,
    responses=WRITE,
    summary="Change a profile; fields left out keep their value",
)
async def update_partner(
    partner_id: PartnerId, body: PartnerUpdate, rt: Rt, who: Caller, request: Request
) -> PartnerOut:
    partner_for(rt, who, partner_id)
    changes = body.model_dump(exclude_unset=True)
    # null for a field means "leave it", like leaving it out; no field is nullable.
    changes = {k: getattr(body, k) for k, v in changes.items() if v is not None}
    updated = await store(request).change(partner_id, lambda p: revalidated(p, **changes))
    return partner_out(updated, _now())


@router.post(
    "/{partner_id}/token",
    response_model=TokenIssued,
    responses=WRITE,
    summary="Issue a new API token (shown once); every older token stops working",
)
async def rotate_token(partner_id: PartnerId, rt: Rt, who: Caller, request: Request) -> TokenIssued:
    partner_for(rt, who, partner_id)
    token = tokens.new_partner_token()
    await store(request).change(
        partner_id, lambda p: revalidated(p, token_hashes=[tokens.hash_token(token)])
    )
    return TokenIssued(partner_id=partner_id, token=token)


# ------------------------------------------------------------------ channels


@router.get(
    "/{partner_id}/channels",
    response_model=list[ChannelOut],
    responses=AUTH,
    summary="List channels (secrets are never shown)",
)
async def list_channels(partner_id: PartnerId, rt: Rt, who: Caller) -> list[ChannelOut]:
    now = _now()
    return [channel_out(c, now) for c in partner_for(rt, who, partner_id).channels]


@router.post(
    "/{partner_id}/channels",
    status_code=201,
    response_model=ChannelCreated,
    responses=responses(401, 404, 409, 413, 422, 503),
    summary="Add a channel; a webhook secret the relay makes is shown once",
)
async def add_channel(
    partner_id: PartnerId, body: ChannelIn, rt: Rt, who: Caller, request: Request
) -> ChannelCreated:
    partner_for(rt, who, partner_id)
    channel, made = build_channel(rt.settings, body)

    def add(p: Partner) -> Partner:
        if p.channel(channel.id) is not None:
            raise ApiError(409, "conflict", f"channel {channel.id!r} already exists")
        return revalidated(p, channels=[*p.channels, channel])

    await store(request).change(partner_id, add)
    return ChannelCreated(channel=channel_out(channel, _now()), secret=made)


def _changed_channel(settings: Settings, channel: AnyChannel, body: ChannelUpdate) -> AnyChannel:
    changes: dict[str, Any] = {}
    bot = not isinstance(channel, EmailChannel | WebhookChannel)
    if body.secret is not None and isinstance(channel, WebhookChannel):
        raise ApiError(
            422,
            "invalid_request",
            "secret: a webhook's secret changes only by POST "
            ".../channels/{channel_id}/rotate-secret",
        )
    if (body.secret is not None or body.keyword is not None) and not bot:
        field = "secret" if body.secret is not None else "keyword"
        raise ApiError(
            422, "invalid_request", f"{field}: only a group robot's channel has one to set"
        )
    if isinstance(channel, EmailChannel):
        if body.url is not None:
            raise ApiError(422, "invalid_request", "url: an email channel has no url; use to")
        if body.to is not None:
            changes["to"] = body.to
    else:
        if body.to is not None:
            raise ApiError(
                422, "invalid_request", f"to: a {channel.type} channel has no to; use url"
            )
        if body.url is not None:
            if bot:
                check_robot_url(settings, channel.type, body.url, "url")
            else:
                check_webhook_url(settings, body.url, "url")
            changes["url"] = body.url
        if body.secret is not None:
            if isinstance(channel, WecomChannel):
                raise ApiError(422, "invalid_request", "secret: a 企业微信 robot has no secret")
            changes["secret"] = body.secret
        if body.keyword is not None:
            changes["keyword"] = body.keyword or None
    if body.disabled is not None:
        changes["disabled"] = body.disabled
        # Re-enabling clears why the relay had disabled it; disabling says who did.
        changes["disabled_reason"] = "disabled by the partner" if body.disabled else None
    try:
        return type(channel).model_validate({**dict(channel), **changes})
    except ValidationError as e:
        raise invalid(e) from e


@router.put(
    "/{partner_id}/channels/{channel_id}",
    response_model=ChannelOut,
    responses=WRITE,
    summary="Change a channel (address, URL, enabled); secrets change only by rotation",
)
async def update_channel(
    partner_id: PartnerId,
    channel_id: ChannelId,
    body: ChannelUpdate,
    rt: Rt,
    who: Caller,
    request: Request,
) -> ChannelOut:
    partner_for(rt, who, partner_id)
    result: list[AnyChannel] = []

    def edit(p: Partner) -> Partner:
        new = _changed_channel(rt.settings, find_channel(p, channel_id), body)
        result.append(new)
        return revalidated(p, channels=[new if c.id == channel_id else c for c in p.channels])

    await store(request).change(partner_id, edit)
    return channel_out(result[0], _now())


@router.delete(
    "/{partner_id}/channels/{channel_id}",
    status_code=204,
    response_class=Response,
    responses=WRITE,
    summary="Remove a channel",
)
async def delete_channel(
    partner_id: PartnerId, channel_id: ChannelId, rt: Rt, who: Caller, request: Request
) -> Response:
    partner_for(rt, who, partner_id)

    def remove(p: Partner) -> Partner:
        find_channel(p, channel_id)
        return revalidated(p, channels=[c for c in p.channels if c.id != channel_id])

    await store(request).change(partner_id, remove)
    return Response(status_code=204)


@router.post(
    "/{partner_id}/channels/{channel_id}/rotate-secret",
    response_model=SecretRotated,
    responses=responses(401, 404, 409, 422, 503),
    summary="New webhook secret (shown once); the old one keeps signing for 24 h",
)
async def rotate_secret(
    partner_id: PartnerId, channel_id: ChannelId, rt: Rt, who: Caller, request: Request
) -> SecretRotated:
    partner_for(rt, who, partner_id)
    secret = signing.new_secret()
    until = _now() + SECRET_OVERLAP

    def rotate(p: Partner) -> Partner:
        channel = find_channel(p, channel_id)
        if isinstance(channel, EmailChannel):
            raise ApiError(409, "conflict", f"channel {channel_id!r} is email; it has no secret")
        if not isinstance(channel, WebhookChannel):
            raise ApiError(
                409,
                "conflict",
                f"channel {channel_id!r} is a group robot: its secret comes from the platform; "
                'set it with PUT …/channels/{channel_id} {"secret": …}',
            )
        # A rotation during an overlap drops the oldest secret: at most two sign at once.
        rotated = channel.model_copy(
            update={
                "secret": secret,
                "previous_secret": channel.secret,
                "previous_secret_until": until,
            }
        )
        return revalidated(p, channels=[rotated if c.id == channel_id else c for c in p.channels])

    await store(request).change(partner_id, rotate)
    return SecretRotated(channel_id=channel_id, secret=secret, previous_secret_until=until)


@router.post(
    "/{partner_id}/channels/{channel_id}/test",
    response_model=ChannelTestResult,
    responses=AUTH,
    summary="Send a test notice to this channel now and say what happened",
)
async def test_channel(
    partner_id: PartnerId, channel_id: ChannelId, rt: Rt, who: Caller
) -> ChannelTestResult:
    partner = partner_for(rt, who, partner_id)
    return await probe.send_test(rt, partner, find_channel(partner, channel_id))
