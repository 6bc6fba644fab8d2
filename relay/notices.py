"""Service notices to partners about their own channels (not policies); pure."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from relay.models import EmailChannel, Partner, WebhookChannel
from relay.rendering import MAIL_POLICY, _environment, one_line


def channel_disabled_email(
    partner: Partner,
    channel: EmailChannel | WebhookChannel,
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
            channel_kind="Webhook" if isinstance(channel, WebhookChannel) else "邮件",
            channel_target=channel.target,
            reason=reason,
            when=f"{now:%Y-%m-%d %H:%M} UTC",
        )
    )
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["Subject"] = f"[政策推送] 推送渠道已停用（{one_line(partner.name)}）"
    msg["From"] = mail_from
    msg["To"] = ", ".join(to)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain="policy-relay")
    msg["X-Relay-Event-Type"] = "channel.disabled"
    msg.set_content(text, charset="utf-8")
    return msg
