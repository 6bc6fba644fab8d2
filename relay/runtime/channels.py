"""Turning a partner's channel off (it answered 410, or failed too long), and saying so."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from relay.core import topics
from relay.core.logs import get_logger
from relay.core.models import AuditRecord, EmailChannel
from relay.core.outcome import MailTransport
from relay.core.rendering import channel_disabled_email
from relay.runtime.audit import AuditLog
from relay.runtime.producing import Producer
from relay.runtime.registry import Registry

log = get_logger(__name__)


class ChannelSwitch:
    def __init__(
        self,
        *,
        registry: Registry,
        out: Producer,
        audit: AuditLog,
        mail: MailTransport | None,
        mail_from: str,
        counters: Counter[str],
    ) -> None:
        self.registry = registry
        self.out = out
        self.audit = audit
        self.mail = mail
        self.mail_from = mail_from
        self.counters = counters

    async def disable(self, partner_id: str, channel_id: str, reason: str) -> None:
        """Turn a channel off through the partners topic and tell the partner by email."""
        partner = self.registry.book.get(partner_id)
        channel = partner.channel(channel_id) if partner else None
        if partner is None or channel is None or channel.disabled:
            return
        now = datetime.now(UTC)
        changed = channel.model_copy(update={"disabled": True, "disabled_reason": reason})
        updated = partner.model_copy(
            update={"channels": [changed if c.id == channel_id else c for c in partner.channels]}
        )
        _, offset = await self.out.send(
            topics.PARTNERS, partner_id, updated.model_dump_json().encode()
        )
        # Applied here before anything else, so nothing new is planned for the channel.
        await self.registry.wait_offset(offset)
        log.warning("channel_disabled", partner_id=partner_id, channel_id=channel_id, reason=reason)
        self.counters["channel.disabled"] += 1
        await self.audit.record(
            AuditRecord(
                kind="channel.disabled",
                at=now,
                partner_id=partner_id,
                channel_id=channel_id,
                detail=reason,
            )
        )
        to = [
            a
            for c in partner.channels
            if isinstance(c, EmailChannel) and not c.disabled and c.id != channel_id
            for a in c.to
        ]
        if to and self.mail is not None:
            notice = channel_disabled_email(
                partner, channel, to, reason=reason, mail_from=self.mail_from, now=now
            )
            outcome = await self.mail.send(notice)
            log.info(
                "channel_disabled_notice",
                partner_id=partner_id,
                status=outcome.status,
                detail=outcome.detail,
            )
