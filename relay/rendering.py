"""Turning a notification into a webhook payload or a relay email; pure, no I/O but templates."""

from __future__ import annotations

import email.policy
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from pydantic import SecretStr, TypeAdapter

from relay.auth import link_token
from relay.models import (
    Audience,
    Document,
    EmailChannel,
    NoticeType,
    Notification,
    PlannedDelivery,
)
from relay.models.limits import NOT_IN_LINE

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

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


def subject(document: Document) -> str:
    """``[政策推送] <title>（<doc_number>）`` for every notice type (DESIGN §6)."""
    return f"{SUBJECT_PREFIX} {one_line(document.title)}（{one_line(document.doc_number)}）"


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
        "subject": subject(doc),
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
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["Subject"] = subject(notification.document)
    msg["From"] = mail_from
    msg["To"] = ", ".join(channel.to)
    msg["Date"] = format_datetime(_aware(now))
    msg["Message-ID"] = message_id(delivery.delivery_id)
    msg["X-Relay-Delivery-Id"] = delivery.delivery_id
    msg["X-Relay-Notification-Id"] = notification.notification_id
    msg["X-Relay-Event-Type"] = notification.type.value
    # base64 rather than quoted-printable: a CJK character costs 4/3 bytes, not 9 (§4.1).
    msg.set_content(text, subtype="plain", charset="utf-8", cte="base64")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
    return msg
