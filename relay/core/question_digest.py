"""The drafting unit's daily email of new questions on its documents (item 6); pure.

Once a day at ``RELAY_QUESTION_DIGEST_AT`` (Shanghai time), each drafting unit named with
an email in its documents' ``contact`` gets the questions asked on them since its last
email (up to that day's time), grouped by document. One worker sends for each unit: the one
holding the partition of the accepted-documents topic its address hashes to, where the
``question-digests`` table remembers how far the unit was told. The Message-ID is derived
from (address, day), so an email sent again after a crash is recognisably the same one.
A unit without an email gets none: its questions wait in the operator's 待处理问题.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, datetime, time
from email.message import EmailMessage

from pydantic import BaseModel

from relay.core import rendering
from relay.core.clock import SHANGHAI
from relay.core.digest import due_at
from relay.core.models.questions import Question
from relay.core.trace import DocumentTrace

SUBJECT_PREFIX = "[政策咨询]"
EVENT_TYPE = "questions.digest"


class DigestState(BaseModel):
    """How far a drafting unit was told (the ``question-digests`` table's value)."""

    #: The last day whose email went out (or had nothing to say).
    day: date | None = None
    #: Questions asked up to this time were in an email already.
    through: datetime | None = None


class DraftingUnit(BaseModel):
    email: str
    unit: str
    documents: set[str]


def digest_time(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def unit_key(email: str) -> str:
    return email.strip().lower()


def unit_partition(email: str, partitions: int) -> int:
    """The partition whose owner sends this unit's email (stable on every worker)."""
    digest = hashlib.sha256(unit_key(email).encode()).digest()
    return int.from_bytes(digest[:4], "big") % partitions


def drafting_units(documents: Iterable[DocumentTrace]) -> dict[str, DraftingUnit]:
    """Address → the unit and the documents whose latest version names it as contact."""
    units: dict[str, DraftingUnit] = {}
    for doc in documents:
        info = doc.info()
        if info is None or not info.contact_email:
            continue
        key = unit_key(info.contact_email)
        unit = units.setdefault(
            key,
            DraftingUnit(email=info.contact_email, unit=info.contact_unit or "", documents=set()),
        )
        unit.documents.add(doc.document_id)
    return units


def due(state: DigestState, now: datetime, at: time) -> tuple[date, datetime] | None:
    """(day, up to when) of the email due now, or None (not yet today, or sent today)."""
    local = now.astimezone(SHANGHAI)
    if local.time() < at:
        return None
    day = local.date()
    if state.day is not None and state.day >= day:
        return None
    return day, due_at(day, at)


def message_id(email: str, day: date) -> str:
    raw = "\0".join(("questions", unit_key(email), day.isoformat())).encode()
    return f"<qdg_{hashlib.sha256(raw).hexdigest()[:24]}@{rendering.MESSAGE_ID_DOMAIN}>"


def build_email(
    unit: DraftingUnit,
    day: date,
    at: time,
    questions: list[Question],
    *,
    documents: dict[str, DocumentTrace],
    partner_names: dict[str, str],
    mail_from: str,
    base_url: str,
    now: datetime,
) -> EmailMessage:
    """The day's email to one drafting unit: its new questions, by document, oldest first."""
    by_document: dict[str, list[Question]] = {}
    for q in questions:
        by_document.setdefault(q.document_id, []).append(q)
    groups = []
    for doc_id, asked in by_document.items():
        doc = documents.get(doc_id)
        info = doc.info() if doc else None
        groups.append(
            {
                "title": info.title if info else doc_id,
                "doc_number": info.doc_number if info else "",
                "questions": [
                    {
                        "q": q,
                        "partner": partner_names.get(q.partner_id, q.partner_id),
                        "when": q.asked_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
                    }
                    for q in asked
                ],
            }
        )
    context = {
        "unit": unit.unit or "制文单位",
        "day": rendering.cn_date(day),
        "at": f"{at:%H:%M}",
        "count": len(questions),
        "groups": groups,
        "base_url": base_url.rstrip("/"),
    }
    text = rendering._environment().get_template("email/questions.txt.j2").render(context)
    subject = f"{SUBJECT_PREFIX} {rendering.cn_date(day)}新收到的政策问题（共{len(questions)}条）"
    msg = rendering._message(
        subject, mail_from, [unit.email], now, message_id(unit.email, day), event_type=EVENT_TYPE
    )
    msg.set_content(text, subtype="plain", charset="utf-8", cte="base64")
    return msg
