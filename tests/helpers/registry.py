"""What a worker's partner registry should hold: computed from the partners topic itself."""

from __future__ import annotations

from pydantic import ValidationError

from relay.adapters import kafka
from relay.core import topics
from relay.core.fingerprint import SetFingerprint
from relay.core.models import Partner
from relay.core.settings import Settings


async def topic_fingerprint(settings: Settings) -> str:
    """The fingerprint (``GET /api/v1/registry``) of a registry that applied every record of
    the partners topic: the last valid record of each partner, none for a removed one."""
    latest: dict[str, bytes] = {}
    for rec in await kafka.read_topic(settings, topics.PARTNERS):
        if rec.value is None:
            latest.pop((rec.key or b"").decode(), None)
            continue
        try:
            latest[Partner.model_validate_json(rec.value).id] = rec.value
        except ValidationError:
            continue  # the registry refuses it and keeps what it had
    return SetFingerprint(latest.items()).hexdigest()
