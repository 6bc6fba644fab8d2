"""Sending the drafting units' daily emails of new questions (relay.core.question_digest).

Runs on a ticker in the worker that holds a unit's partition of the accepted-documents
topic. The ``question-digests`` table (co-partitioned with that topic) says how far each
unit was told; it is written only after the email went out (or when there was nothing to
send), so a crash in between sends the same email again, under the same Message-ID.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from relay.core import question_digest as qd
from relay.core.logs import get_logger
from relay.core.models import AuditRecord
from relay.core.outcome import OutcomeStatus

if TYPE_CHECKING:
    from relay.runtime.app import Runtime

log = get_logger(__name__)


def ready(rt: Runtime) -> bool:
    """Everything the emails are made of has been read (a worker just started has not)."""
    return rt.questions.caught_up.is_set() and rt.accepted.caught_up.is_set()


async def send_due(rt: Runtime, owned: set[int]) -> None:
    """Send the emails due now of the units whose partition is in ``owned``."""
    at = qd.digest_time(rt.settings.question_digest_at)
    now = rt.clock.now()
    book = rt.trace.book
    for key, unit in sorted(qd.drafting_units(book.documents.values()).items()):
        partition = qd.unit_partition(key, rt.settings.topic_partitions)
        if partition not in owned:
            continue
        state = qd.DigestState.model_validate(rt.question_digests.lookup(key) or {})
        when = qd.due(state, now, at)
        if when is None:
            continue
        day, cutoff = when
        found = rt.questions.book.asked_between(unit.documents, state.through, cutoff)
        if found:
            if rt.mail is None:
                log.warning("question_digest_not_sent", reason="no SMTP server configured")
                return
            message = qd.build_email(
                unit,
                day,
                at,
                found,
                documents=book.documents,
                partner_names={
                    q.partner_id: p.name
                    for q in found
                    if (p := rt.registry.book.get(q.partner_id)) is not None
                },
                mail_from=rt.settings.mail_from,
                base_url=rt.settings.base_url,
                now=now,
            )
            outcome = await rt.mail.send(message)
            if outcome.status is OutcomeStatus.retry:
                log.warning("question_digest_retry", day=day.isoformat(), detail=outcome.detail)
                continue  # the next tick tries again
            log.info(
                "question_digest_sent" if outcome.ok else "question_digest_failed",
                day=day.isoformat(),
                questions=len(found),
                detail=outcome.detail,
            )
            counts: dict[str, int] = {}
            for q in found:
                counts[q.document_id] = counts.get(q.document_id, 0) + 1
            said = "emailed to" if outcome.ok else f"not delivered ({outcome.detail}) to"
            await rt.audit.record_many(
                [
                    AuditRecord(
                        kind="question.digest",
                        at=datetime.now(UTC),
                        document_id=doc_id,
                        detail=f"{n} new questions of {day.isoformat()} {said} the drafting "
                        f"unit {unit.unit}",
                    )
                    for doc_id, n in counts.items()
                ]
            )
        rt.question_digests.put(
            key, qd.DigestState(day=day, through=cutoff).model_dump(mode="json"), partition
        )
        await rt.question_digests.flush()
