"""Turning a notification into a webhook payload or a relay email; pure, no I/O but templates.

What every notice says (email, webhook, group robots) is worded here once, for
``relay.core.chat`` too: the subject per notice type (``NOTICE_LABELS``: ``[政策推送]``,
``[政策修订]``, ``[政策废止]``, ``[到期提醒]``), the labelled facts (``fact_lines``: 索引号,
公开方式, 发文机关, 发文字号, 发布日期 or 废止日期, 施行日期, 有效期, 文件性质, 政策解读, 咨询),
validity as the document states it (``validity``: never "长期有效"), the scope for the
enterprises (``scope_line``), a revision's computed changes (``change_lines``) and the
forwarding text (``forward_text``). An expiry reminder is a notification of type
``NoticeType.expiring`` built like any other: its subject, lead and forwarding text say
when the validity ends (``expiry_sentence``).
"""

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
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from pydantic import SecretStr, TypeAdapter

from relay.core.matching.explain import Words
from relay.core.matching.explain import scope_line as _scope_line
from relay.core.models import (
    AnyChannel,
    Document,
    EmailChannel,
    NoticeType,
    Notification,
    Partner,
    PlannedDelivery,
    WebhookChannel,
)
from relay.core.models.limits import NOT_IN_LINE
from relay.core.models.questions import FaqEntry
from relay.core.tokens import link_token, question_token

#: The jinja2 templates: the repository's templates/ folder, package data in a wheel.
TEMPLATES = Path(str(files("relay.templates")))

#: All-ASCII on the wire: bodies become base64 and headers RFC 2047 words, so no hop needs
#: 8BITMIME or SMTPUTF8 (domain.md §4.1).
MAIL_POLICY = email.policy.SMTP.clone(cte_type="7bit")

SUBJECT_PREFIX = "[政策推送]"
#: How a subject, a chat title and a forwarding text start, per notice type (DESIGN §6).
NOTICE_LABELS = {
    NoticeType.relayed: "[政策推送]",
    NoticeType.revised: "[政策修订]",
    NoticeType.repealed: "[政策废止]",
    NoticeType.expiring: "[到期提醒]",
}
#: Dates in notices are Shanghai calendar dates.
SHANGHAI = ZoneInfo("Asia/Shanghai")
#: The ``RELAY_LINK_SECRET`` as the settings hold it, or in plain; None = unsigned links.
LinkSecret = SecretStr | str | None
MESSAGE_ID_DOMAIN = "policy-relay"
#: A question link ("有疑问？") works for this many days after the notice was sent.
QUESTION_LINK_DAYS = 366
#: The heading under which notices carry a document's published answers (item 5).
FAQ_HEADING = "常见问题解答"


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


def question_url(
    base_url: str, delivery_id: str, *, now: datetime, link_secret: LinkSecret = None
) -> str:
    """Where the partner, or an enterprise it forwards to, asks a question (DESIGN §7).

    With ``link_secret`` the link carries ``?e=<expiry>&t=<HMAC of delivery id and
    expiry>``: it opens a form without an API token, for QUESTION_LINK_DAYS after ``now``.
    """
    url = f"{base_url.rstrip('/')}/api/v1/deliveries/{delivery_id}/questions"
    if isinstance(link_secret, SecretStr):
        link_secret = link_secret.get_secret_value()
    if link_secret:
        expires = int(_aware(now).timestamp()) + QUESTION_LINK_DAYS * 86400
        url += f"?e={expires}&t={question_token(link_secret, delivery_id, expires)}"
    return url


def subject(document: Document, notice: NoticeType = NoticeType.relayed) -> str:
    """``[政策推送] <title>（<doc_number>）``, ``[政策修订] …``, ``[政策废止] …`` or
    ``[到期提醒] …`` (DESIGN §6): each kind tells itself apart in an inbox."""
    label = NOTICE_LABELS[notice]
    return f"{label} {one_line(document.title)}（{one_line(document.doc_number)}）"


#: The subject label of an expiry reminder.
REMINDER_PREFIX = NOTICE_LABELS[NoticeType.expiring]


def notice_subject(notification: Notification) -> str:
    """The subject of one notification (its kind's label, title and 文号)."""
    return subject(notification.document, notification.type)


def shanghai_today(now: datetime) -> date:
    """The Shanghai calendar day at ``now`` (naive = UTC)."""
    return _aware(now).astimezone(SHANGHAI).date()


# ---------------------------------------------------------------- what every notice says


def validity(document: Document, notice: NoticeType, today: date) -> str:
    """The validity as the document states it; never invented (no 长期有效, item 2)."""
    if notice is NoticeType.repealed:
        return "已废止，请停止适用"
    if document.expires_on is None:
        return "有效期未注明，以原文为准"
    text = f"有效期至{cn_date(document.expires_on)}"
    return text + "（已到期）" if document.expires_on < today else text


def expiry_sentence(document: Document, today: date) -> str:
    """An expiry reminder's news: ``本政策有效期至2028年7月31日，还有30天到期。``"""
    if document.expires_on is None:
        return "本政策未注明有效期，以原文为准。"
    left = (document.expires_on - today).days
    when = cn_date(document.expires_on)
    if left < 0:
        return f"本政策有效期至{when}，已到期。"
    if left == 0:
        return f"本政策有效期至{when}，今日到期。"
    return f"本政策有效期至{when}，还有{left}天到期，到期后不再适用。"


def index_no(document: Document) -> str:
    """The 索引号: the publisher's, or the document id (DESIGN §4)."""
    return one_line(document.index_no or document.id)


def interpretation_text(document: Document) -> str:
    """The 政策解读 line's value when there is no link: its absence, stated."""
    return document.interpretation_url or "暂无政策解读（尚未发布）"


def contact_text(document: Document) -> str | None:
    """``制文单位，电话 …，邮箱 …``: who answers questions, when the event names one."""
    c = document.contact
    if c is None:
        return None
    parts = [one_line(c.unit)]
    if c.phone:
        parts.append(f"电话 {one_line(c.phone)}")
    if c.email:
        parts.append(f"邮箱 {one_line(c.email)}")
    return "，".join(parts)


def fact_lines(notification: Notification, today: date) -> list[tuple[str, str]]:
    """The labelled facts of the document, (label, value), in the order notices show them.

    A repeal shows its 废止日期 and no 施行日期 (the old date no longer holds).
    """
    doc = notification.document
    notice = notification.type
    facts = [("索引号", index_no(doc))]
    if doc.disclosure:
        facts.append(("公开方式", one_line(doc.disclosure)))
    facts += [
        ("发文机关", one_line(doc.issuer)),
        ("发文字号", one_line(doc.doc_number)),
        ("发布日期", cn_date(doc.published_on)),
    ]
    if notice is NoticeType.repealed:
        facts.append(("废止日期", cn_date(doc.repealed_on) if doc.repealed_on else "以原文为准"))
    else:
        facts.append(
            ("施行日期", cn_date(doc.effective_from) if doc.effective_from else "以原文为准")
        )
    facts += [
        ("有效期", validity(doc, notice, today)),
        ("文件性质", "规范性文件" if doc.normative else "非规范性文件"),
        ("政策版本", f"第{doc.version}版"),
    ]
    return facts


def scope_line(document: Document) -> str:
    """The 适用范围 of the forwarding block: industries, regions, parks, scales."""
    return _scope_line(document)


def interpretation_added(notification: Notification) -> bool:
    """A revision that brings the first 政策解读 (published after the policy, item 4)."""
    return any(
        c.field == "interpretation_url" and c.before is None and c.after
        for c in notification.changes_computed
    )


def change_lines(notification: Notification) -> list[str]:
    """A revision's computed changes, one line each: ``施行日期：2023年8月1日 → 2024年2月1日``."""
    lines = []
    for c in notification.changes_computed:
        if c.field == "interpretation_url" and c.before is None:
            lines.append(f"政策解读：新增 {c.after}（政策发布后补充发布的解读）")
            continue
        lines.append(f"{c.label}：{c.before or '未注明'} → {c.after or '（已删除）'}")
    return lines


def lead(notification: Notification, today: date) -> str:
    """The sentence to the partner under its name: what this is and what to do with it."""
    n = notification
    w = Words(n.partner_kind)
    earlier = f"第{n.previous_version}版" if n.previous_version else "本政策的早先版本"
    if n.type is NoticeType.repealed:
        got = f"（第{n.previous_version}版）" if n.previous_version else ""
        return (
            f"您此前收到过本政策{got}。它现已废止，停止执行；"
            f"如已转发，请告知相关{w.members}停止适用。"
        )
    if n.type is NoticeType.revised:
        was = f"，此前您收到第{n.previous_version}版" if n.previous_version else ""
        head = f"本政策已修订为第{n.document.version}版{was}。"
        if n.prior_recipient_only:
            return (
                f"{head}修订后的适用范围已不再涵盖{w.you}的{w.members}；因您此前收到过"
                f"{earlier}，特此告知。如已转发，请向相关{w.members}说明适用范围的变化。"
            )
        return f"{head}如您已转发此前的版本，请将修订情况告知相关{w.members}。"
    if n.type is NoticeType.expiring:
        return (
            f"{expiry_sentence(n.document, today)}如已转发，请提醒相关{w.members}"
            "留意到期时间，并关注发文机关是否发布延续或替代政策。"
        )
    return (
        f"现推送一项与{w.you}{w.members}相关的政策，请结合本{w.unit}实际，"
        f"转发给符合条件的{w.members}。"
    )


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
    faq: Sequence[FaqEntry] = (),
) -> dict[str, Any]:
    """The Standard Webhooks ``{type, timestamp, data}`` envelope of one delivery."""
    envelope = _envelope(notification, delivery, why, base_url, now, link_secret, faq)
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
    faq: Sequence[FaqEntry] = (),
) -> bytes:
    """The payload as compact UTF-8 JSON: the exact bytes that get signed and sent.

    The same bytes as ``json.dumps(webhook_payload(...), ensure_ascii=False,
    separators=(",", ":"))``, serialised in one pass by pydantic's serializer, the
    document and the match reasons straight from their models (a third of the time).
    """
    return _PAYLOAD.dump_json(
        _envelope(notification, delivery, why, base_url, now, link_secret, faq)
    )


#: Serialises an envelope whose values may be models (by their own schemas) or plain data.
_PAYLOAD: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


def _envelope(
    notification: Notification,
    delivery: PlannedDelivery,
    why: list[str],
    base_url: str,
    now: datetime,
    link_secret: LinkSecret,
    faq: Sequence[FaqEntry] = (),
) -> dict[str, Any]:
    match = notification.match
    today = shanghai_today(now)
    asking = question_url(base_url, delivery.delivery_id, now=now, link_secret=link_secret)
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
            "subject": subject(notification.document, notification.type),
            "validity": validity(notification.document, notification.type, today),
            "scope": scope_line(notification.document),
            "changes_computed": notification.changes_computed,
            "changes_from": notification.changes_from,
            "forward_text": forward_text(notification, today, question_url=asking),
            "catch_up": notification.catch_up,
            "ack_url": ack_url(base_url, delivery.delivery_id, link_secret=link_secret),
            "question_url": asking,
            "faq": list(faq),
        },
    }


# ---------------------------------------------------------------- email


def notice_context(notification: Notification, today: date) -> dict[str, Any]:
    """What the forwarding text and both email templates see about the policy."""
    doc = notification.document
    notice = notification.type
    words = Words(notification.partner_kind)
    repeal = notice is NoticeType.repealed
    return {
        "n": notification,
        "doc": doc,
        "notice": notice.name,  # relayed | revised | repealed | expiring
        "subject": subject(doc, notice),
        "facts": fact_lines(notification, today),
        "validity": validity(doc, notice, today),
        "scope": scope_line(doc),
        "changes": change_lines(notification),
        "interpretation_added": interpretation_added(notification),
        "interpretation": interpretation_text(doc),
        "contact": contact_text(doc),
        "expiry": expiry_sentence(doc, today),
        "lead": lead(notification, today),
        "words": words,
        "members": words.members,
        "unit": words.unit,
        "forward_head": (f"{'告知' if repeal else '转发给'}{words.members}（可直接复制以下内容）"),
        "forward_note": (
            f"请告知此前收到本政策的{words.members}停止适用。"
            if repeal
            else f"请只转发给符合条件的{words.members}。"
        ),
        "ack_when": "告知企业后" if repeal else "转发后",
        "ack_button": "已转发",
        "ack_count": f"已{'告知' if repeal else '转达'}的{words.members}数量",
        "question_url": None,
        "faq": [],
        "faq_heading": FAQ_HEADING,
    }


def forward_text(
    notification: Notification, today: date, *, question_url: str | None = None
) -> str:
    """The ready-to-paste text for the partner's enterprises (email, webhook ``forward_text``);
    with ``question_url``, where they can ask the drafting unit."""
    context = notice_context(notification, today) | {"question_url": question_url}
    return _environment().get_template("email/forward.txt.j2").render(context).strip()


def email_context(
    notification: Notification,
    delivery: PlannedDelivery,
    *,
    why: list[str],
    base_url: str,
    now: datetime,
    link_secret: LinkSecret = None,
    faq: Sequence[FaqEntry] = (),
) -> dict[str, Any]:
    """What both email templates see."""
    today = shanghai_today(now)
    context = notice_context(notification, today)
    context |= {
        "why": list(why),
        "ack_url": ack_url(base_url, delivery.delivery_id, link_secret=link_secret),
        "question_url": question_url(
            base_url, delivery.delivery_id, now=now, link_secret=link_secret
        ),
        "faq": list(faq),
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
    faq: Sequence[FaqEntry] = (),
) -> tuple[str, str]:
    """The plain-text and HTML bodies of a relay email."""
    context = email_context(
        notification,
        delivery,
        why=why,
        base_url=base_url,
        now=now,
        link_secret=link_secret,
        faq=faq,
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
    faq: Sequence[FaqEntry] = (),
) -> EmailMessage:
    """A UTF-8 multipart/alternative relay email, 7-bit clean on the wire."""
    text, html = render_email_bodies(
        notification,
        delivery,
        why=why,
        base_url=base_url,
        now=now,
        link_secret=link_secret,
        faq=faq,
    )
    msg = _message(
        subject(notification.document, notification.type),
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
