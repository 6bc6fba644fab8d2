"""Small builders for documents, events and partners used across unit tests."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from relay.models import DocumentEvent, Partner

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
