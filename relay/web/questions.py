"""Questions to the drafting unit and their answers (item 6, DESIGN §7).

- ``POST /api/v1/deliveries/{id}/questions``: a partner (its own delivery), the operator,
  or the signed "有疑问？" link of the notice (``?e=<expiry>&t=<HMAC>``, form-encoded: the
  answer is a page). ``GET`` on the same path is the link's form page and records nothing,
  because mail scanners open every link they see.
- ``GET /api/v1/documents/{id}/questions``: the operator sees all; a partner its own
  questions (with their answers, published or not) and the published answers to others,
  without whose they were.
- ``POST /api/v1/questions/{qid}/answer`` (operator): answer, re-answer, publish or
  unpublish; the latest answer is the one that holds.
- ``GET /api/v1/questions`` (operator): the unanswered questions across documents, with
  counts per document (待处理问题); ``GET /api/v1/partners/{id}/questions``: a partner's own;
  ``GET /api/v1/documents/{id}/faq``: the published answers, open to anyone (they are
  public, like the policy).

Every question and every answer is written to ``relay.questions`` (the question's state)
and to the audit trail (document, version, partner), so the document's trace shows it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field, StrictBool, ValidationError

from relay.core import tokens, topics
from relay.core.errors import InvalidJSON
from relay.core.logs import get_logger
from relay.core.models import AuditRecord
from relay.core.models.limits import ID_MAX, NAME_MAX, QUESTION_MAX, Name, read_json
from relay.core.models.questions import (
    Answer,
    AnswerText,
    FaqEntry,
    Question,
    QuestionText,
)
from relay.core.questions import QUESTIONS_PER_DELIVERY, new_question_id
from relay.core.trace import DeliveryTrace
from relay.runtime.app import Runtime
from relay.web import pages
from relay.web.errors import ApiError, describe, error, not_found, responses, unauthorized
from relay.web.schemas import Strict
from relay.web.security import (
    Caller,
    Operator,
    Principal,
    Rt,
    bearer,
    identify,
    partner_for,
    token_index,
)

log = get_logger(__name__)

router = APIRouter(tags=["questions"])
FORM = "application/x-www-form-urlencoded"

DeliveryId = Annotated[str, Path(description="the delivery id (webhook-id)", max_length=128)]
DocumentId = Annotated[str, Path(max_length=ID_MAX)]
LinkToken = Annotated[
    str | None, Query(description="the token of the question link", max_length=128)
]
LinkExpiry = Annotated[
    str | None, Query(description="the question link's expiry (Unix seconds)", max_length=20)
]


# ------------------------------------------------------------------ bodies


class QuestionIn(Strict):
    question: QuestionText = Field(description="the question, as the enterprise asks it")
    asker: Name | None = Field(
        default=None, description="who asks (an enterprise, a person), optional"
    )


class QuestionForm(QuestionIn):
    """The question page's form: the fields, plus the link's expiry and token."""

    e: str | None = Field(default=None, description="the link's expiry", max_length=20)
    t: str | None = Field(default=None, description="the link token", max_length=ID_MAX)


class AnswerIn(Strict):
    answer: AnswerText = Field(description="the drafting unit's answer")
    publish: StrictBool = Field(
        default=False, description="true: the answer joins the document's FAQ (常见问题解答)"
    )


class AnswerOut(BaseModel):
    text: str
    answered_at: datetime
    published: bool


class QuestionOut(BaseModel):
    """A question as the caller may see it: another partner's published question shows
    only its text and answer (``own`` false; partner, asker and delivery left out)."""

    id: str
    document_id: str
    version: int | None
    partner_id: str | None
    delivery_id: str | None
    question: str
    asker: str | None
    asked_at: datetime | None
    via: str | None
    answer: AnswerOut | None
    own: bool

    @classmethod
    def of(cls, q: Question, *, full: bool = True) -> QuestionOut:
        answer = (
            AnswerOut(
                text=q.answer.text, answered_at=q.answer.answered_at, published=q.answer.published
            )
            if q.answer is not None
            else None
        )
        if not full:
            return cls(
                id=q.id,
                document_id=q.document_id,
                version=None,
                partner_id=None,
                delivery_id=None,
                question=q.question,
                asker=None,
                asked_at=None,
                via=None,
                answer=answer,
                own=False,
            )
        return cls(
            id=q.id,
            document_id=q.document_id,
            version=q.version,
            partner_id=q.partner_id,
            delivery_id=q.delivery_id,
            question=q.question,
            asker=q.asker,
            asked_at=q.asked_at,
            via=q.via,
            answer=answer,
            own=True,
        )


class DocumentQuestions(BaseModel):
    document_id: str
    title: str | None
    doc_number: str | None
    items: list[QuestionOut]


class FaqOut(BaseModel):
    """A document's FAQ (常见问题解答): its published answers, oldest question first."""

    document_id: str
    title: str | None
    doc_number: str | None
    items: list[FaqEntry]


class PendingDocument(BaseModel):
    document_id: str
    title: str | None
    doc_number: str | None
    questions: int
    unanswered: int


class PendingQuestions(BaseModel):
    """The operator's 待处理问题: unanswered questions, with counts per document."""

    unanswered: int
    documents: list[PendingDocument]
    items: list[QuestionOut]


class PartnerQuestions(BaseModel):
    partner_id: str
    items: list[QuestionOut]


# ------------------------------------------------------------------ writing


class QuestionStore:
    """Writes a question's state to its topic and the audit trail; reads it back.

    Answers are read-modify-write of the latest state, serialised within this worker (as
    partners are; across workers the record written last wins).
    """

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._lock = asyncio.Lock()

    async def _save(self, q: Question, record: AuditRecord) -> None:
        partition, offset = await self.rt.out.send(
            topics.QUESTIONS, q.id, q.model_dump_json().encode()
        )
        # On the trail like an acknowledgement: read back, so the trace shows it at once.
        audit_at = await self.rt.out.send(
            topics.AUDIT, record.document_id, record.model_dump_json().encode()
        )
        self.rt.counters[f"audit.{record.kind}"] += 1
        try:
            await self.rt.questions.wait_applied(partition, offset)
            await self.rt.trace.wait_applied(*audit_at)
        except TimeoutError as e:
            raise ApiError(
                503, "not_applied", "the question was recorded but is not visible here yet"
            ) from e

    async def ask(self, d: DeliveryTrace, body: QuestionIn, who: Principal | None) -> Question:
        if self.rt.questions.book.by_delivery[d.delivery_id] >= QUESTIONS_PER_DELIVERY:
            raise ApiError(
                429,
                "too_many_questions",
                f"this notice has brought {QUESTIONS_PER_DELIVERY} questions already; "
                "please contact the drafting unit directly",
            )
        via: Literal["partner", "operator", "link"] = "link" if who is None else who.kind
        assert d.document_id is not None and d.partner_id is not None and d.version is not None
        q = Question(
            id=new_question_id(),
            document_id=d.document_id,
            version=d.version,
            partner_id=d.partner_id,
            delivery_id=d.delivery_id,
            question=body.question,
            asker=body.asker,
            # On the policy calendar, like the daily email's window it falls in.
            asked_at=self.rt.clock.now(),
            via=via,
        )
        await self._save(
            q,
            AuditRecord(
                kind="question.asked",
                at=q.asked_at,
                document_id=q.document_id,
                version=q.version,
                partner_id=q.partner_id,
                notification_id=d.notification_id,
                delivery_id=q.delivery_id,
                channel_id=d.channel_id,
                question_id=q.id,
                note=q.question,
                detail=f"question {q.id} from {q.partner_id} (via {via})",
            ),
        )
        self.rt.counters["questions.asked"] += 1
        log.info(
            "question_asked",
            question_id=q.id,
            document_id=q.document_id,
            partner_id=q.partner_id,
            delivery_id=q.delivery_id,
            via=via,
        )
        return q

    async def answer(self, question_id: str, body: AnswerIn) -> Question:
        async with self._lock:
            current = self.rt.questions.book.get(question_id)
            if current is None:
                raise not_found("question")
            now = self.rt.clock.now()
            q = current.model_copy(
                update={"answer": Answer(text=body.answer, answered_at=now, published=body.publish)}
            )
            again = "re-answered" if current.answer is not None else "answered"
            shown = "published to the FAQ" if body.publish else "not published"
            await self._save(
                q,
                AuditRecord(
                    kind="question.answered",
                    at=now,
                    document_id=q.document_id,
                    version=q.version,
                    partner_id=q.partner_id,
                    delivery_id=q.delivery_id,
                    question_id=q.id,
                    note=body.answer,
                    detail=f"question {q.id} {again}, {shown}",
                ),
            )
        self.rt.counters["questions.answered"] += 1
        log.info(
            "question_answered",
            question_id=q.id,
            document_id=q.document_id,
            partner_id=q.partner_id,
            published=body.publish,
        )
        return q


def store(request: Request) -> QuestionStore:
    found: QuestionStore | None = getattr(request.app.state, "questions", None)
    if found is None:
        found = request.app.state.questions = QuestionStore(request.app.state.rt)
    return found


Store = Annotated[QuestionStore, Depends(store)]


# ------------------------------------------------------------------ asking


@dataclass
class AskRequest:
    """What a POST carried, however it was encoded."""

    fields: dict[str, Any]
    expires: str | None
    token: str | None
    html: bool
    problem: str | None = None


async def read_ask_request(request: Request, e: str | None, t: str | None) -> AskRequest:
    raw = await request.body()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    html = ctype == FORM
    fields: dict[str, Any] = {}
    problem = None
    if html:
        try:
            fields = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            problem = "body: the form is not UTF-8"
        # An empty asker box means "not given".
        if fields.get("asker", None) is not None and not fields["asker"].strip():
            del fields["asker"]
        e = e or fields.pop("e", None)
        t = t or fields.pop("t", None)
        fields.pop("e", None)
        fields.pop("t", None)
    elif raw.strip():
        try:
            data = read_json(raw)
        except InvalidJSON as err:
            problem = f"body: {err.message}"
        else:
            if isinstance(data, dict):
                fields = data
            else:
                problem = 'body: expected a JSON object like {"question": "…"}'
    else:
        problem = "body: required (a JSON object with the question)"
    return AskRequest(fields, e, t, html, problem)


def authorise_question(
    rt: Runtime,
    request: Request,
    credentials: HTTPAuthorizationCredentials | None,
    delivery_id: str,
    expires: str | None,
    token: str | None,
) -> tuple[Principal | None, DeliveryTrace]:
    """The link (signature, then expiry) or the bearer token; then the delivery, 404 if it
    is not the caller's. Checked before the lookup: an unsigned request learns nothing."""
    who: Principal | None = None
    if credentials is not None:
        who = identify(rt, token_index(request), credentials.credentials)
        if who is None:
            raise unauthorized("invalid or revoked token")
    elif token is None or expires is None:
        raise unauthorized("missing token: open the link from the notice, or send a bearer token")
    else:
        secret = rt.settings.link_secret.get_secret_value() if rt.settings.link_secret else None
        old = rt.settings.previous_link_secret
        previous = old.get_secret_value() if old else None
        when = int(expires) if expires.isascii() and expires.isdigit() else -1
        if when < 0 or not tokens.question_token_ok(
            secret, delivery_id, when, token, previous=previous
        ):
            raise unauthorized("this question link is not valid (was it cut or altered?)")
        # Real time: an expiry is about security, not the policy calendar (which tests move,
        # and which notices' links are dated on: a moved clock only makes them last longer).
        if when <= time.time():
            raise ApiError(401, "link_expired", "this question link has expired")
    d = rt.trace.book.deliveries.get(delivery_id)
    if d is None or d.notification_id is None or d.document_id is None or d.partner_id is None:
        raise not_found("delivery")
    if who is not None and not who.is_operator and who.partner_id != d.partner_id:
        raise not_found("delivery")
    return who, d


HTML = {"text/html": {"schema": {"type": "string"}}}
ASK_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/QuestionIn"}},
        FORM: {"schema": {"$ref": "#/components/schemas/QuestionForm"}},
    },
}
ASK_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"content": HTML},
    **{s: {**r, "content": HTML} for s, r in responses(401, 404, 422, 429, 503).items()},
    **responses(413),
}


@router.post(
    "/api/v1/deliveries/{delivery_id}/questions",
    status_code=201,
    response_model=QuestionOut,
    responses=ASK_RESPONSES,
    openapi_extra={"requestBody": ASK_BODY},
    summary="Ask the drafting unit a question about a notice",
    description=(
        "Authorised by the question link (`e` and `t`, query or form fields) or a bearer "
        "token (the partner owning the delivery, or the operator). JSON or form-encoded; a "
        "form post gets an HTML page back."
    ),
)
async def ask(
    delivery_id: DeliveryId,
    request: Request,
    rt: Rt,
    questions: Store,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    e: LinkExpiry = None,
    t: LinkToken = None,
) -> Response:
    req = await read_ask_request(request, e, t)
    try:
        who, d = authorise_question(rt, request, credentials, delivery_id, req.expires, req.token)
        if req.problem is not None:
            raise ApiError(422, "invalid_request", req.problem)
        try:
            body = QuestionIn.model_validate(req.fields)
        except ValidationError as err:
            raise ApiError(422, "invalid_request", describe(list(err.errors()))) from err
        q = await questions.ask(d, body, who)
    except ApiError as err:
        if req.html:
            return pages.problem(err.status, _page_message(err), kicker=KICKER)
        return error(err.status, err.code, err.message, err.headers)
    if req.html:
        title, _ = _title(rt, q.document_id, q.version)
        return pages.page("asked.html.j2", 201, title=title, q=q, delivery_id=delivery_id)
    return JSONResponse(QuestionOut.of(q).model_dump(mode="json"), status_code=201)


@router.get(
    "/api/v1/deliveries/{delivery_id}/questions",
    response_class=HTMLResponse,
    responses={
        **{
            s: {"description": d, "content": HTML}
            for s, d in ((401, "Invalid, expired or missing link"), (404, "No such delivery"))
        },
        422: {
            "description": responses(422)[422]["description"],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        },
    },
    summary="The page a question link opens: the FAQ and a form (records nothing)",
)
async def ask_page(
    delivery_id: DeliveryId, request: Request, rt: Rt, e: LinkExpiry = None, t: LinkToken = None
) -> Response:
    try:
        _, d = authorise_question(rt, request, None, delivery_id, e, t)
    except ApiError as err:
        return pages.problem(err.status, _page_message(err), kicker=KICKER)
    assert d.document_id is not None
    title, doc_number = _title(rt, d.document_id, d.version)
    partner = rt.registry.book.get(d.partner_id or "")
    return pages.page(
        "question.html.j2",
        title=title,
        doc_number=doc_number,
        partner_name=partner.name if partner else (d.partner_id or ""),
        faq=rt.questions.book.faq(d.document_id),
        action=f"/api/v1/deliveries/{delivery_id}/questions",
        expires=e or "",
        token=t or "",
        question_max=QUESTION_MAX,
        asker_max=NAME_MAX,
        delivery_id=delivery_id,
    )


KICKER = "政策接力 · 政策咨询"


def _page_message(e: ApiError) -> str:
    if e.code == "link_expired":
        return "该提问链接已过期。请打开最近一次推送中的链接，或直接联系推送单位。"
    if e.status == 401:
        return "提问链接无效或不完整。请直接点击通知中的原始链接。"
    if e.status == 404:
        return "找不到这条推送记录。推送可能尚在处理中，请稍后再试。"
    if e.status == 429:
        return "通过这条通知提出的问题已达上限，请直接联系推送单位或制文单位。"
    if e.status == 422:
        return f"请填写问题内容（不超过 {QUESTION_MAX} 字）。（{e.message}）"
    return e.message


def _title(rt: Runtime, document_id: str, version: int | None) -> tuple[str | None, str | None]:
    doc = rt.trace.book.documents.get(document_id)
    info = doc.info(version) if doc else None
    return (info.title, info.doc_number) if info else (None, None)


# ------------------------------------------------------------------ reading and answering


def _known(rt: Runtime, document_id: str) -> None:
    if (
        document_id not in rt.trace.book.documents
        and document_id not in rt.questions.book.by_document
    ):
        raise not_found("document")


@router.get(
    "/api/v1/documents/{document_id}/questions",
    response_model=DocumentQuestions,
    responses=responses(401, 404, 422),
    summary="A document's questions: all (operator), or a partner's own and the published",
)
async def document_questions(document_id: DocumentId, rt: Rt, who: Caller) -> DocumentQuestions:
    _known(rt, document_id)
    book = rt.questions.book
    if who.is_operator:
        items = [QuestionOut.of(q) for q in book.of_document(document_id)]
    else:
        items = [
            QuestionOut.of(q, full=q.partner_id == who.partner_id)
            for q in book.visible_to_partner(document_id, who.partner_id or "")
        ]
    title, doc_number = _title(rt, document_id, None)
    return DocumentQuestions(
        document_id=document_id, title=title, doc_number=doc_number, items=items
    )


@router.get(
    "/api/v1/documents/{document_id}/faq",
    response_model=FaqOut,
    responses=responses(404, 422),
    summary="A document's FAQ (常见问题解答): its published answers; open to anyone",
)
async def document_faq(document_id: DocumentId, rt: Rt) -> FaqOut:
    _known(rt, document_id)
    title, doc_number = _title(rt, document_id, None)
    return FaqOut(
        document_id=document_id,
        title=title,
        doc_number=doc_number,
        items=rt.questions.book.faq(document_id),
    )


@router.post(
    "/api/v1/questions/{question_id}/answer",
    response_model=QuestionOut,
    responses=responses(401, 403, 404, 422, 503),
    summary="Answer a question, and choose whether the answer is published (operator)",
    description=(
        "Answering again replaces the answer; `publish: false` takes a published answer "
        "out of the FAQ. Later notices carry the FAQ as it is when they are sent."
    ),
)
async def answer(
    question_id: Annotated[str, Path(max_length=ID_MAX)],
    body: AnswerIn,
    questions: Store,
    who: Operator,
) -> QuestionOut:
    return QuestionOut.of(await questions.answer(question_id, body))


@router.get(
    "/api/v1/questions",
    response_model=PendingQuestions,
    responses=responses(401, 403, 422, 503),
    summary="Unanswered questions across documents, with counts per document (operator)",
)
async def pending(
    rt: Rt,
    who: Operator,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> PendingQuestions:
    book = rt.questions.book
    open_ = book.unanswered()
    docs = []
    for doc_id, (total, unanswered) in sorted(book.counts().items()):
        if unanswered:
            title, doc_number = _title(rt, doc_id, None)
            docs.append(
                PendingDocument(
                    document_id=doc_id,
                    title=title,
                    doc_number=doc_number,
                    questions=total,
                    unanswered=unanswered,
                )
            )
    docs.sort(key=lambda p: (-p.unanswered, p.document_id))
    return PendingQuestions(
        unanswered=len(open_),
        documents=docs,
        items=[QuestionOut.of(q) for q in open_[:limit]],
    )


@router.get(
    "/api/v1/partners/{partner_id}/questions",
    response_model=PartnerQuestions,
    responses=responses(401, 404, 422),
    summary="The partner's own questions with their answers, newest first",
)
async def partner_questions(
    partner_id: Annotated[str, Path(max_length=128)], rt: Rt, who: Caller
) -> PartnerQuestions:
    partner_for(rt, who, partner_id)
    return PartnerQuestions(
        partner_id=partner_id,
        items=[QuestionOut.of(q) for q in rt.questions.book.of_partner(partner_id)],
    )


#: Bodies referenced by hand in /openapi.json (the ask route reads its raw body).
SCHEMAS: tuple[type[BaseModel], ...] = (QuestionIn, QuestionForm)
