"""Turning a notification into a webhook payload or a relay email; pure, no I/O but templates."""

from __future__ import annotations

import email.policy
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from pydantic import SecretStr, TypeAdapter

from relay.core.models import (
    AnyChannel,
    Audience,
    Document,
    EmailChannel,
    NoticeType,
    Notification,
    Partner,
    PlannedDelivery,
    WebhookChannel,
)
from relay.core.models.limits import NOT_IN_LINE
from relay.core.tokens import link_token

#: The jinja2 templates: the repository's templates/ folder, package data in a wheel.
TEMPLATES = Path(str(files("relay.templates")))

#: All-ASCII on the wire: bodies become base64 and headers RFC 2047 words, so no hop needs
#: 8BITMIME or SMTPUTF8 (domain.md §4.1).
MAIL_POLICY = email.policy.SMTP.clone(cte_type="7bit")

SUBJECT_PREFIX = "[政策推送]"
#: The ``RELAY_LINK_SECRET`` as the settings hold it, or in plain; None = unsigned links.
LinkSecret = SecretStr | str | None
MESSAGE_ID_DOMAIN = "policy-relay"


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["cn_date"] = cn_date
    env.filters["nl2br"] = nl2br
    return env


def cn_date(value: date | None) -> str:
    """``2023-06-07`` → ``2023年6月7日``, the form official documents use."""
    if value is None:
        return ""
    return f"{value.year}年{value.month}月{value.day}日"


def nl2br(text: str) -> Markup:
    """Escape plain text and keep its line breaks in HTML."""
    return Markup("<br>\n").join(escape(line) for line in text.splitlines())


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def one_line(text: str) -> str:
    """Text fit for a header: no line breaks, control or bidi characters, single spaces.

    Intake refuses such characters in one-line fields; this keeps a record that predates
    the rule (or was built without validation) from putting them in a header.
    """
    return " ".join(NOT_IN_LINE.sub(" ", text).split())


def ack_url(base_url: str, delivery_id: str, *, link_secret: LinkSecret = None) -> str:
    """Where a partner confirms it forwarded a notice (DESIGN §7).

    With ``link_secret`` the link carries ``?t=<HMAC of the delivery id>``, so it works
    from an email client without an API token.
    """
    url = f"{base_url.rstrip('/')}/api/v1/deliveries/{delivery_id}/ack"
    if isinstance(link_secret, SecretStr):
        link_secret = link_secret.get_secret_value()
    if link_secret:
        url += f"?t={link_token(link_secret, delivery_id)}"
    return url


REMINDER_PREFIX = "[到期提醒]"


def subject(document: Document) -> str:
    """``[政策推送] <title>（<doc_number>）`` for every notice type (DESIGN §6)."""
    return f"{SUBJECT_PREFIX} {one_line(document.title)}（{one_line(document.doc_number)}）"


def notice_subject(notification: Notification) -> str:
    """The subject of a notice: an expiry reminder's says so (``[到期提醒] …``)."""
    doc = notification.document
    if notification.type is NoticeType.expiring:
        return f"{REMINDER_PREFIX} {one_line(doc.title)}（{one_line(doc.doc_number)}）"
    return subject(doc)


def message_id(delivery_id: str) -> str:
    return f"<{delivery_id}@{MESSAGE_ID_DOMAIN}>"


# ---------------------------------------------------------------- webhook


def webhook_payload(
    notification: Notification,
    delivery: PlannedDelivery,
    *,
    why: list[str],
    base_url: str,
    now: datetime,
    link_secret: LinkSecret = None,
) -> dict[str, Any]:
    """The Standard Webhooks ``{type, timestamp, data}`` envelope of one delivery."""
    envelope = _envelope(notification, delivery, why, base_url, now, link_secret)
    payload: dict[str, Any] = _PAYLOAD.dump_python(envelope, mode="json")
    return payload


def webhook_body(
    notification: Notification,
    delivery: PlannedDelivery,
    *,
    why: list[str],
    base_url: str,
    now: datetime,
    link_secret: LinkSecret = None,
) -> bytes:
    """The payload as compact UTF-8 JSON: the exact bytes that get signed and sent.

    The same bytes as ``json.dumps(webhook_payload(...), ensure_ascii=False,
    separators=(",", ":"))``, serialised in one pass by pydantic's serializer, the
    document and the match reasons straight from their models (a third of the time).
    """
    return _PAYLOAD.dump_json(_envelope(notification, delivery, why, base_url, now, link_secret))


#: Serialises an envelope whose values may be models (by their own schemas) or plain data.
_PAYLOAD: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


def _envelope(
    notification: Notification,
    delivery: PlannedDelivery,
    why: list[str],
    base_url: str,
    now: datetime,
    link_secret: LinkSecret,
) -> dict[str, Any]:
    match = notification.match
    return {
        "type": notification.type.value,
        "timestamp": _aware(now).isoformat(),
        "data": {
            "delivery_id": delivery.delivery_id,
            "notification_id": notification.notification_id,
            "event_id": notification.event_id,
            "partner_id": notification.partner_id,
            "channel_id": delivery.channel_id,
            "document": notification.document,
            "match": {
                "reasons": match.reasons,
                "unknowns": [d.value for d in match.unknowns],
                "why": list(why),
            },
            "previous_version": notification.previous_version,
            "prior_recipient_only": notification.prior_recipient_only,
            "catch_up": notification.catch_up,
            "ack_url": ack_url(base_url, delivery.delivery_id, link_secret=link_secret),
        },
    }


# ---------------------------------------------------------------- email


def _validity(document: Document, notice: NoticeType, today: date) -> str:
    if notice is NoticeType.repealed:
        return "已废止"
    if document.expires_on is None:
        return "长期有效"
    text = f"有效期至{cn_date(document.expires_on)}"
    return text + "（已到期）" if document.expires_on < today else text


def email_context(
    notification: Notification,
    delivery: PlannedDelivery,
    *,
    why: list[str],
    base_url: str,
    now: datetime,
    link_secret: LinkSecret = None,
) -> dict[str, Any]:
    """What both email templates see."""
    doc = notification.document
    association = notification.partner_kind is Audience.association
    context: dict[str, Any] = {
        "n": notification,
        "doc": doc,
        "notice": notification.type.name,  # relayed | revised | repealed
        "subject": notice_subject(notification),
        "members": "会员企业" if association else "入驻企业",
        "validity": _validity(doc, notification.type, _aware(now).date()),
        "unit": "协会" if association else "园区",
        "scope_word": "行业" if association else "园区",
        "why": list(why),
        "ack_url": ack_url(base_url, delivery.delivery_id, link_secret=link_secret),
        "delivery_id": delivery.delivery_id,
        "notification_id": notification.notification_id,
    }
    # Rendered once and shown verbatim in both parts, so what members get is the same text.
    forward = _environment().get_template("email/forward.txt.j2").render(context)
    context["forward_text"] = forward.strip()
    return context


def render_email_bodies(
    notification: Notification,
    delivery: PlannedDelivery,
    *,
    why: list[str],
    base_url: str,
    now: datetime,
    link_secret: LinkSecret = None,
) -> tuple[str, str]:
    """The plain-text and HTML bodies of a relay email."""
    context = email_context(
        notification, delivery, why=why, base_url=base_url, now=now, link_secret=link_secret
    )
    env = _environment()
    text = env.get_template("email/notice.txt.j2").render(context)
    html = env.get_template("email/notice.html.j2").render(context)
    return text, html


def build_email(
    notification: Notification,
    delivery: PlannedDelivery,
    channel: EmailChannel,
    *,
    why: list[str],
    mail_from: str,
    base_url: str,
    now: datetime,
    link_secret: LinkSecret = None,
) -> EmailMessage:
    """A UTF-8 multipart/alternative relay email, 7-bit clean on the wire."""
    text, html = render_email_bodies(
        notification, delivery, why=why, base_url=base_url, now=now, link_secret=link_secret
    )
    msg = _message(
        notice_subject(notification),
        mail_from,
        channel.to,
        now,
        message_id(delivery.delivery_id),
        event_type=notification.type.value,
        delivery_id=delivery.delivery_id,
    )
    msg["X-Relay-Notification-Id"] = notification.notification_id
    msg.set_content(text, subtype="plain", charset="utf-8", cte="base64")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
    return msg


def _message(
    subject_line: str,
    mail_from: str,
    to: Sequence[str],
    now: datetime,
    msg_id: str,
    *,
    event_type: str,
    delivery_id: str | None = None,
) -> EmailMessage:
    """The headers every relay email has; the caller adds the body.

    Bodies go base64 rather than quoted-printable: a CJK character costs 4/3 bytes, not 9
    (domain.md §4.1).
    """
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["Subject"] = subject_line
    msg["From"] = mail_from
    msg["To"] = ", ".join(to)
    msg["Date"] = format_datetime(_aware(now))
    msg["Message-ID"] = msg_id
    if delivery_id is not None:
        msg["X-Relay-Delivery-Id"] = delivery_id
    msg["X-Relay-Event-Type"] = event_type
    return msg


# ---------------------------------------------------------------- service notices
# Notices about a partner's own channels, not policies.

#: How a notice names each kind of channel.
CHANNEL_KINDS = {
    "email": "邮件",
    "webhook": "Webhook",
    "wecom": "企业微信群机器人",
    "dingtalk": "钉钉群机器人",
    "feishu": "飞书群机器人",
}

#: Not a policy type: a receiver that routes on ``type`` must not forward a test to members.
TEST_TYPE = "relay.test"
TEST_TEXT = "这是政策接力平台发送的测试通知，用于确认接收渠道畅通。无需转发，无需回复。"


def test_webhook_body(
    partner: Partner, channel: WebhookChannel, delivery_id: str, now: datetime
) -> bytes:
    """The body of a test notice to a webhook (``type`` ``relay.test``)."""
    payload = {
        "type": TEST_TYPE,
        "timestamp": _aware(now).isoformat(),
        "data": {
            "delivery_id": delivery_id,
            "partner_id": partner.id,
            "channel_id": channel.id,
            "test": True,
            "message": TEST_TEXT,
        },
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def test_email(
    partner: Partner, channel: EmailChannel, delivery_id: str, mail_from: str, now: datetime
) -> EmailMessage:
    """A test notice to an email channel: no policy, nothing to forward."""
    msg = _message(
        f"{SUBJECT_PREFIX} 测试通知（无需转发）",
        mail_from,
        channel.to,
        now,
        message_id(delivery_id),
        event_type=TEST_TYPE,
        delivery_id=delivery_id,
    )
    text = f"{partner.name}：\n\n{TEST_TEXT}\n\n渠道：{channel.id}\n编号：{delivery_id}\n"
    msg.set_content(text, subtype="plain", charset="utf-8", cte="base64")
    return msg


def channel_disabled_email(
    partner: Partner,
    channel: AnyChannel,
    to: list[str],
    *,
    reason: str,
    mail_from: str,
    now: datetime,
) -> EmailMessage:
    """Tell a partner that one of its channels was disabled, and how to turn it back on."""
    text = (
        _environment()
        .get_template("email/channel_disabled.txt.j2")
        .render(
            partner_name=partner.name,
            partner_id=partner.id,
            channel_id=channel.id,
            channel_kind=CHANNEL_KINDS[channel.type],
            channel_target=channel.target,
            reason=reason,
            when=f"{now:%Y-%m-%d %H:%M} UTC",
        )
    )
    msg = _message(
        f"{SUBJECT_PREFIX} 推送渠道已停用（{one_line(partner.name)}）",
        mail_from,
        to,
        now,
        make_msgid(domain=MESSAGE_ID_DOMAIN),
        event_type="channel.disabled",
    )
    msg.set_content(text, charset="utf-8")
    return msg
