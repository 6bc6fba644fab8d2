"""Small builders for documents, events and partners used across unit tests."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime
from typing import Any

from relay.core import ids
from relay.core.models import (
    Dimension,
    Document,
    DocumentEvent,
    EmailChannel,
    MatchResult,
    NoticeType,
    Notification,
    Partner,
    PlannedDelivery,
    Reason,
)

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def document(**overrides: Any) -> dict[str, Any]:
    scope = overrides.pop("scope", {})
    doc = {
        "id": "DOC-1",
        "version": 1,
        "doc_number": "徐府〔2023〕32号",
        "title": "测试政策",
        "issuer": "上海市青浦区徐泾镇人民政府",
        "published_on": "2023-06-07",
        "effective_from": "2023-06-07",
        "expires_on": None,
        "normative": False,
        "url": "https://example.gov.cn/doc-1.html",
        "interpretation_url": None,
        "summary": "摘要",
        "tags": [],
        "scope": {
            "audiences": [],
            "industries": [],
            "regions": [],
            "parks": [],
            "scales": [],
            **scope,
        },
    }
    doc.update(overrides)
    return doc


def event(type: str = "document.published", event_id: str = "ev-1", **doc: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": type,
        "occurred_at": "2023-06-07T09:00:00+08:00",
        "document": document(**doc),
    }


def event_model(**kw: Any) -> DocumentEvent:
    return DocumentEvent.model_validate(event(**kw))


def partner(pid: str = "p-1", kind: str = "association", **overrides: Any) -> Partner:
    data: dict[str, Any] = {
        "id": pid,
        "kind": kind,
        "name": f"{pid}（测试）",
        "coverage": overrides.pop("coverage", {}),
        "interests": overrides.pop("interests", {}),
        "channels": overrides.pop(
            "channels",
            [
                {"type": "email", "to": [f"{pid}@example.org"]},
                {"type": "webhook", "url": f"https://{pid}.example.org/h", "secret": SECRET},
            ],
        ),
    }
    data.update(overrides)
    return Partner.model_validate(data)


NOW = datetime(2026, 11, 26, tzinfo=UTC)

# The seed document (item 7) relayed to one association by email: rendering and records.
NOW = datetime(2023, 6, 7, 9, 30, tzinfo=UTC)
TITLE = "关于徐泾镇2023年政务公开工作要点"
DOC_NUMBER = "徐府〔2023〕32号"


def make_document(**changes: Any) -> Document:
    fields: dict[str, Any] = {
        "id": "QE5320000-2023-01",
        "version": 1,
        "doc_number": DOC_NUMBER,
        "title": TITLE,
        "issuer": "上海市青浦区徐泾镇人民政府",
        "published_on": date(2023, 6, 7),
        "effective_from": date(2023, 6, 7),
        "url": "https://example.gov.cn/xxgk/QE5320000-2023-01.html",
        "summary": "推进“政府+”政策接力，向行业协会、产业园区精准推送政策。",
        "tags": ["政务公开", "营商环境"],
    }
    fields.update(changes)
    return Document(**fields)


def make_notification(
    notice: NoticeType = NoticeType.relayed,
    *,
    previous_version: int | None = None,
    prior_recipient_only: bool = False,
    **doc_changes: Any,
) -> tuple[Notification, PlannedDelivery, EmailChannel]:
    document = make_document(**doc_changes)
    channel = EmailChannel(to=["policy@assoc.example.org", "secretary@assoc.example.org"])
    ntf = ids.notification_id(document.id, document.version, "xujing-ic-association")
    delivery = PlannedDelivery(
        delivery_id=ids.delivery_id(ntf, channel.id), channel_id=channel.id, channel_type="email"
    )
    notification = Notification(
        notification_id=ntf,
        type=notice,
        event_id="0b6c0c9e-5a43-4c55-9a5e-6d9f0d1d8a11",
        document=document,
        partner_id="xujing-ic-association",
        partner_name="徐泾镇集成电路产业协会（示例）",
        partner_kind="association",
        match=MatchResult(
            matched=True,
            reasons=[
                Reason(
                    dimension=Dimension.regions,
                    scope_codes=["310118106"],
                    partner_codes=["310118106"],
                )
            ],
            unknowns=[Dimension.scales],
        ),
        deliveries=[delivery],
        previous_version=previous_version,
        prior_recipient_only=prior_recipient_only,
        planned_at=NOW,
    )
    return notification, delivery, channel
