"""The demo's feedback loop (item 6): a question through a notice's "有疑问？" link, the
operator's published answer, and the later revision that carries it (常见问题解答).

Every step uses the real parts a secretary meets: the link is read from an email the SMTP
sink received, its page is fetched and its form posted as a browser would, the answer goes
through the operator API, and the revision's emails and webhooks are read back from the
sinks.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp

from relay.core import question_digest
from relay.core.clock import SHANGHAI
from relay.core.digest import due_at
from relay.core.models import DeliveryStatus
from relay.core.settling import Progress
from relay.embedded.sinks import ReceivedHook, ReceivedMail

#: What the demo's enterprise asks about the held-back revision's document, and the answer.
QUESTION = "研发投入补贴是按年度申报，还是同一项目只能申报一次？"
ASKER = "徐泾某芯片设计公司（示例）"
ANSWER = (
    "按年度申报：每年3月、9月集中受理，同一项目可在不同年度分别申报，"
    "单个企业年度累计不超过补贴上限。"
)
#: The question link in a notice's plain-text email.
LINK = re.compile(r"https?://\S+/questions\?e=\d+&t=[0-9a-f]+")
#: How long the loop waits for one HTTP answer, and for the worker to see a delivery.
HTTP_TIMEOUT = 15.0


class LoopFailed(Exception):
    """A step of the loop did not do what it should; the message says which, in one line."""


@dataclass
class Asked:
    """The question as the loop asked and answered it."""

    document_id: str
    version: int
    title: str
    partner_id: str
    delivery_id: str
    question_id: str = ""
    via: str = ""
    published: bool = False
    carried_by_email: list[str] = field(default_factory=list)
    carried_by_webhook: list[str] = field(default_factory=list)
    revision: int | None = None
    #: The drafting unit's daily email that listed the question: to whom, when due, subject.
    digest_to: str | None = None
    digest_at: datetime | None = None
    digest_subject: str | None = None
    #: Where the sink kept the revision's email to the asking partner, and the unit's email.
    revision_mail: Path | None = None
    digest_mail: Path | None = None

    @property
    def partners_carried(self) -> list[str]:
        return sorted({*self.carried_by_email, *self.carried_by_webhook})


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    return str(part.get_content()).replace("\r\n", "\n") if part is not None else ""


def mail_for(mails: Sequence[ReceivedMail], delivery_id: str) -> ReceivedMail | None:
    return next((m for m in mails if m.message["X-Relay-Delivery-Id"] == delivery_id), None)


def deliveries(progress: Progress, event_id: str, channel_type: str) -> list[tuple[str, str]]:
    """(partner id, delivery id) of the event's delivered notices on ``channel_type``, by
    partner id."""
    t = progress.trails.get(event_id)
    found = []
    for n in sorted(t.notifications if t else [], key=lambda r: r.partner_id or ""):
        for did in n.deliveries or []:
            o = progress.outcomes.get(did)
            if (
                o is not None
                and o.channel_type == channel_type
                and o.status == DeliveryStatus.delivered
            ):
                found.append((n.partner_id or "", did))
    return found


class _Form(HTMLParser):
    """The first form of a page: its action and its fields' values."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = a.get("action", "")
        elif tag in ("input", "textarea") and self.action is not None and not self._done:
            if a.get("name"):
                self.fields[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._done = True


async def ask_through_link(http: aiohttp.ClientSession, email_text: str) -> tuple[str, int]:
    """Open the question link of a notice's email, fill in its form and post it, as a
    browser would; the page the post returns and its status."""
    found = LINK.search(email_text)
    if found is None:
        raise LoopFailed("the notice's email has no 有疑问？ link")
    url = found.group()
    page = ""
    # The worker's trail may trail the delivery's outcome by a moment: 404 until it has it.
    for _ in range(int(HTTP_TIMEOUT / 0.25)):
        async with http.get(url) as r:
            page = await r.text()
            if r.status == 200:
                break
            if r.status != 404:
                raise LoopFailed(f"opening the 有疑问？ link gave HTTP {r.status}")
        await asyncio.sleep(0.25)
    else:
        raise LoopFailed("the 有疑问？ link's page stayed 404 (no such delivery)")
    form = _Form()
    form.feed(page)
    if form.action is None or "question" not in form.fields:
        raise LoopFailed("the 有疑问？ page has no question form")
    data = {**form.fields, "question": QUESTION, "asker": ASKER}
    async with http.post(urljoin(url, form.action), data=data) as r:
        return await r.text(), r.status


async def answer_as_operator(
    http: aiohttp.ClientSession, base: str, token: str, delivery_id: str
) -> dict[str, Any]:
    """Find the question among the operator's 待处理问题 and answer it, published."""
    auth = {"Authorization": f"Bearer {token}"}
    async with http.get(f"{base}/api/v1/questions", headers=auth) as r:
        if r.status != 200:
            raise LoopFailed(f"GET /api/v1/questions gave HTTP {r.status}")
        pending = await r.json()
    q = next(
        (
            i
            for i in pending["items"]
            if i["delivery_id"] == delivery_id and i["question"] == QUESTION
        ),
        None,
    )
    if q is None:
        raise LoopFailed("the question is not among the operator's unanswered questions")
    async with http.post(
        f"{base}/api/v1/questions/{q['id']}/answer",
        json={"answer": ANSWER, "publish": True},
        headers=auth,
    ) as r:
        if r.status != 200:
            raise LoopFailed(f"answering the question gave HTTP {r.status}: {await r.text()}")
        answered: dict[str, Any] = await r.json()
    return answered


def carried(
    asked: Asked,
    progress: Progress,
    event_id: str,
    mails: Sequence[ReceivedMail],
    hooks: Sequence[ReceivedHook],
) -> None:
    """Check that every delivered email and webhook of the revision carries the answer under
    常见问题解答; note which partners got it."""
    for pid, did in deliveries(progress, event_id, "email"):
        mail = mail_for(mails, did)
        text = text_of(mail.message) if mail else ""
        if f"常见问题解答\n------------\n问：{QUESTION}\n答：{ANSWER}" not in text:
            raise LoopFailed(f"the revision's email to {pid} does not carry the answer")
        asked.carried_by_email.append(pid)
        if mail is not None and (asked.revision_mail is None or pid == asked.partner_id):
            asked.revision_mail = mail.path
    for pid, did in deliveries(progress, event_id, "webhook"):
        hook = next((h for h in hooks if h.webhook_id == did and h.verified), None)
        data = (hook.payload or {}).get("data", {}) if hook else {}
        faq = data.get("faq") if isinstance(data, dict) else None
        if not any(
            isinstance(f, dict) and f.get("question") == QUESTION and f.get("answer") == ANSWER
            for f in faq or []
        ):
            raise LoopFailed(f"the revision's webhook to {pid} does not carry the answer")
        asked.carried_by_webhook.append(pid)
    if not asked.partners_carried:
        raise LoopFailed("no email or webhook of the revision was delivered")


def next_digest(asked_at: datetime, at: time) -> datetime:
    """When the drafting unit's daily email that lists a question asked at ``asked_at`` is
    due: the first ``at`` (Shanghai time) not before it."""
    day = asked_at.astimezone(SHANGHAI).date()
    due = due_at(day, at)
    return due if due >= asked_at else due_at(day + timedelta(days=1), at)


def digest_mail(mails: Sequence[ReceivedMail], address: str) -> ReceivedMail | None:
    """The drafting unit's daily email of new questions that lists the demo's question."""
    for m in mails:
        msg = m.message
        if (
            address.lower() in str(msg["To"]).lower()
            and str(msg["Subject"]).startswith(question_digest.SUBJECT_PREFIX)
            and QUESTION in text_of(msg)
        ):
            return m
    return None
