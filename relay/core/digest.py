"""Digest mode (pure): one message a day, at the partner's ``digest_at`` Shanghai time.

A notice to a partner in digest mode is held, per channel, for the digest of the day it
belongs to: the first ``digest_at`` after it was planned (a notice at 08:59 goes in the
same day's 09:00 digest, one at 09:01 in the next day's). At that time the digest goes out
as one email / webhook (``policy.digest``) listing the day's notices, each with its own
acknowledgement link. Its delivery id is deterministic (partner, channel, day), so a
digest sent again after a crash carries the same ``webhook-id`` / ``Message-ID``; a day
with no notice has no digest and sends nothing.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from typing import Any

from pydantic import BaseModel, Field

from relay.core import rendering
from relay.core.chat import DINGTALK_TITLE_MAX, md_url, within_limits
from relay.core.chatbots import Platform
from relay.core.clock import SHANGHAI
from relay.core.matching.explain import Words, explain
from relay.core.models import EmailChannel, Notification, Partner
from relay.core.models.partner import BotChannel, DeliveryMode
from relay.core.models.records import ChannelType

#: When a digest partner did not say (``delivery: {mode: digest}`` alone).
DEFAULT_DIGEST_AT = "09:00"
#: Channels whose notices are gathered into a digest (every kind: email, webhook, robots).
DIGEST_CHANNELS = frozenset({"email", "webhook", "wecom", "dingtalk", "feishu"})
DIGEST_TYPE = "policy.digest"
DIGEST_PREFIX = "[政策汇总]"


def holds(partner: Partner | None, channel_type: str) -> bool:
    """Whether a notice to this partner over this kind of channel waits for the digest."""
    return (
        partner is not None
        and partner.delivery.mode == DeliveryMode.digest
        and channel_type in DIGEST_CHANNELS
    )


def digest_time(partner: Partner) -> time:
    hours, minutes = (partner.delivery.digest_at or DEFAULT_DIGEST_AT).split(":")
    return time(int(hours), int(minutes))


def digest_day(now: datetime, at: time) -> date:
    """The day whose digest a notice planned ``now`` goes into (Shanghai calendar)."""
    local = now.astimezone(SHANGHAI)
    return local.date() if local.time() < at else local.date() + timedelta(days=1)


def due_at(day: date, at: time) -> datetime:
    """When the digest of ``day`` goes out, in UTC."""
    return datetime.combine(day, at, tzinfo=SHANGHAI).astimezone(UTC)


def digest_key(partner_id: str, channel_id: str, day: date) -> str:
    return f"{partner_id}/{channel_id}/{day.isoformat()}"


def digest_delivery_id(partner_id: str, channel_id: str, day: date) -> str:
    """One digest per (partner, channel, day); the webhook-id / Message-ID of it."""
    raw = "\0".join(("digest", partner_id, channel_id, day.isoformat())).encode()
    return f"dlv_{hashlib.sha256(raw).hexdigest()[:24]}"


class HeldDigest(BaseModel):
    """A day's digest of one channel while it waits (the ``digests`` table's value)."""

    partner_id: str
    channel_id: str
    channel_type: ChannelType
    day: date
    #: The delivery topic partition (the partner's): where the worker that sends it is.
    partition: int
    due: datetime
    #: delivery id of each held notice → the notification, in the order held.
    items: dict[str, Notification] = Field(default_factory=dict)
    #: Failed sends so far, and when to try again (real time, epoch seconds).
    attempts: int = 0
    next_try: float | None = None

    @property
    def delivery_id(self) -> str:
        return digest_delivery_id(self.partner_id, self.channel_id, self.day)


# ---------------------------------------------------------------- what a digest says


def _item(
    delivery_id: str,
    n: Notification,
    base_url: str,
    link_secret: rendering.LinkSecret,
    now: datetime,
) -> dict[str, Any]:
    return {
        "delivery_id": delivery_id,
        "type": n.type.value,
        "notification_id": n.notification_id,
        "event_id": n.event_id,
        "document": n.document,
        "match": {
            "reasons": n.match.reasons,
            "unknowns": [d.value for d in n.match.unknowns],
            "why": explain(n.match),
        },
        "previous_version": n.previous_version,
        "catch_up": n.catch_up,
        "ack_url": rendering.ack_url(base_url, delivery_id, link_secret=link_secret),
        "question_url": rendering.question_url(
            base_url, delivery_id, now=now, link_secret=link_secret
        ),
    }


def webhook_body(
    held: HeldDigest, *, base_url: str, now: datetime, link_secret: rendering.LinkSecret
) -> bytes:
    """The ``policy.digest`` payload, as the exact bytes that get signed and sent."""
    envelope = {
        "type": DIGEST_TYPE,
        "timestamp": now.astimezone(UTC).isoformat(),
        "data": {
            "delivery_id": held.delivery_id,
            "partner_id": held.partner_id,
            "channel_id": held.channel_id,
            "day": held.day.isoformat(),
            "count": len(held.items),
            "notices": [_item(did, n, base_url, link_secret, now) for did, n in held.items.items()],
        },
    }
    return rendering._PAYLOAD.dump_json(envelope)


_LABELS = {
    "policy.relayed": "政策推送",
    "policy.revised": "政策修订",
    "policy.repealed": "政策废止",
    "policy.expiring": "到期提醒",
}


def subject(held: HeldDigest) -> str:
    return f"{DIGEST_PREFIX} {rendering.cn_date(held.day)}政策通知汇总（共{len(held.items)}条）"


def build_email(
    held: HeldDigest,
    channel: EmailChannel,
    *,
    mail_from: str,
    base_url: str,
    now: datetime,
    link_secret: rendering.LinkSecret,
) -> EmailMessage:
    """The day's digest as one multipart/alternative email."""
    first = next(iter(held.items.values()))
    association = first.partner_kind.value == "association"
    context = {
        "partner_name": first.partner_name,
        "day": rendering.cn_date(held.day),
        "count": len(held.items),
        "unit": "协会" if association else "园区",
        "members": "会员企业" if association else "入驻企业",
        "delivery_id": held.delivery_id,
        "items": [
            {
                "label": _LABELS.get(n.type.value, "政策推送"),
                "doc": n.document,
                "validity": _validity(n),
                "catch_up": n.catch_up,
                "why": explain(n.match),
                "ack_url": rendering.ack_url(base_url, did, link_secret=link_secret),
                "question_url": rendering.question_url(
                    base_url, did, now=now, link_secret=link_secret
                ),
                "delivery_id": did,
            }
            for did, n in held.items.items()
        ],
    }
    env = rendering._environment()
    text = env.get_template("email/digest.txt.j2").render(context)
    html = env.get_template("email/digest.html.j2").render(context)
    msg = rendering._message(
        subject(held),
        mail_from,
        channel.to,
        now,
        rendering.message_id(held.delivery_id),
        event_type=DIGEST_TYPE,
        delivery_id=held.delivery_id,
    )
    msg.set_content(text, subtype="plain", charset="utf-8", cte="base64")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
    return msg


def _validity(n: Notification) -> str:
    doc = n.document
    if n.type.value == "policy.repealed":
        return "已废止，停止适用"
    if doc.expires_on is None:
        return "有效期未注明，以原文为准"
    return f"有效期至{rendering.cn_date(doc.expires_on)}"


# ---------------------------------------------------------------- the group robots' digest


def _chat_lines(
    held: HeldDigest, base_url: str, link_secret: rendering.LinkSecret, now: datetime
) -> list[tuple[str, str, str, str]]:
    """Per notice: its line of text, its original's URL, its acknowledgement URL and its
    question URL."""
    out = []
    for n, (did, notification) in enumerate(held.items.items(), 1):
        doc = notification.document
        label = _LABELS.get(notification.type.value, "政策推送")
        extra = "（补发）" if notification.catch_up else ""
        text = (
            f"{n}. 【{label}】{extra}《{rendering.one_line(doc.title)}》"
            f"（{rendering.one_line(doc.doc_number)}），{_validity(notification)}"
        )
        ack = rendering.ack_url(base_url, did, link_secret=link_secret)
        asking = rendering.question_url(base_url, did, now=now, link_secret=link_secret)
        out.append((text, doc.url, ack, asking))
    return out


def chat_body(
    held: HeldDigest,
    channel: BotChannel,
    *,
    base_url: str,
    link_secret: rendering.LinkSecret,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The day's digest as one group-robot message (企业微信/钉钉 markdown, a 飞书 card),
    without signature fields: each notice's title, 文号, validity and its three links (the
    original, its own question link, its own acknowledgement). When the platform's size
    limit cannot hold them all, as many as fit are listed, whole, and the message says how
    many more there are; the email and webhook digests, and the API, hold every one."""
    platform = Platform(channel.type)
    title = subject(held)
    if channel.keyword and channel.keyword not in title:
        title = f"{title}【{channel.keyword}】"
    lines = _chat_lines(held, base_url, link_secret, now or datetime.now(UTC))
    first = next(iter(held.items.values()), None)
    words = Words(first.partner_kind if first else None)
    head = (
        f"{words.you}今日的政策通知汇总如下，请逐条阅读原文，"
        f"转发后点“确认转发”填写转达的{words.members}数量。"
    )

    def build(shown: int) -> dict[str, Any]:
        rest = len(lines) - shown
        tail = f"另有 {rest} 条因长度限制未列出，请查看汇总邮件或联系政策接力平台。" if rest else ""
        if platform is Platform.feishu:
            elements: list[dict[str, Any]] = [
                {"tag": "div", "text": {"tag": "plain_text", "content": head}}
            ]
            for text, url, ack, asking in lines[:shown]:
                elements.append({"tag": "div", "text": {"tag": "plain_text", "content": text}})
                elements.append(
                    {
                        "tag": "action",
                        "actions": [
                            {
                                "tag": "button",
                                "text": {"tag": "plain_text", "content": "查看原文"},
                                "type": "default",
                                "url": url,
                            },
                            {
                                "tag": "button",
                                "text": {"tag": "plain_text", "content": "有疑问？"},
                                "type": "default",
                                "url": asking,
                            },
                            {
                                "tag": "button",
                                "text": {"tag": "plain_text", "content": "确认转发"},
                                "type": "primary",
                                "url": ack,
                            },
                        ],
                    }
                )
            if tail:
                elements.append(
                    {"tag": "note", "elements": [{"tag": "plain_text", "content": tail}]}
                )
            return {
                "msg_type": "interactive",
                "card": {
                    "config": {"enable_forward": True},
                    "header": {
                        "title": {"tag": "plain_text", "content": title},
                        "template": "blue",
                    },
                    "elements": elements,
                },
            }
        br = "  \n" if platform is Platform.dingtalk else "\n"
        items = [
            f"{text}{br}[查看原文]({md_url(url)}) · [有疑问]({md_url(asking)})"
            f" · [确认转发]({md_url(ack)})"
            for text, url, ack, asking in lines[:shown]
        ]
        text = "\n\n".join([f"### {title}{br}{head}", *items, *([tail] if tail else [])])
        if platform is Platform.wecom:
            return {"msgtype": "markdown", "markdown": {"content": text}}
        return {
            "msgtype": "markdown",
            "markdown": {"title": title[:DINGTALK_TITLE_MAX], "text": text},
            "at": {"isAtAll": False},
        }

    shown = len(lines)
    while shown > 0 and not within_limits(platform, build(shown)):
        shown -= 1
    return build(shown)
