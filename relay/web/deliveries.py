"""A partner's deliveries, and acknowledgements: "we forwarded it to N enterprises".

The link in every email and webhook (``.../ack?t=<HMAC>``) opens a confirmation page; only
the form's POST records, because mail scanners open (GET) every link they see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import ValidationError

from relay.core import tokens, topics
from relay.core.clock import SHANGHAI
from relay.core.errors import InvalidJSON
from relay.core.logs import get_logger
from relay.core.models import AuditRecord
from relay.core.models.limits import NOTE_MAX, read_json
from relay.core.trace import DeliveryTrace
from relay.runtime.app import Runtime
from relay.web import pages
from relay.web.errors import ApiError, describe, error, not_found, responses, unauthorized
from relay.web.schemas import AckIn, AckOut, DeliveryPage
from relay.web.security import Caller, Principal, Rt, bearer, identify, partner_for, token_index
from relay.web.views import delivery_page

log = get_logger(__name__)

partner_router = APIRouter(prefix="/api/v1/partners", tags=["deliveries"])
router = APIRouter(prefix="/api/v1/deliveries", tags=["deliveries"])

DeliveryId = Annotated[str, Path(description="the delivery id (webhook-id)", max_length=128)]
LinkToken = Annotated[
    str | None, Query(description="the token of the acknowledgement link", max_length=128)
]
FORM = "application/x-www-form-urlencoded"


@partner_router.get(
    "/{partner_id}/deliveries",
    response_model=DeliveryPage,
    responses=responses(401, 404, 422),
    summary="The partner's deliveries with their attempts, newest first",
)
async def list_deliveries(
    partner_id: Annotated[str, Path(max_length=128)],
    rt: Rt,
    who: Caller,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> DeliveryPage:
    partner_for(rt, who, partner_id)
    return delivery_page(rt.trace.book, partner_id, limit, cursor)


# ------------------------------------------------------------------ acknowledgements


@dataclass
class AckRequest:
    """What a POST carried, however it was encoded."""

    fields: dict[str, Any]
    link_token: str | None
    html: bool
    problem: str | None = None


async def read_ack_request(request: Request, query_token: str | None) -> AckRequest:
    raw = await request.body()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    html = ctype == FORM
    fields: dict[str, Any] = {}
    problem = None
    if html:
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            problem = "body: the form is not UTF-8"
        else:
            fields = dict(pairs)
            # An empty number or note box in the form means "not given".
            fields = {k: v for k, v in fields.items() if not (k == "note" and v == "")}
            # A form sends numbers as text; JSON must send a number (strictly, not "12").
            count = fields.get("forwarded_to", "").strip()
            if count.isascii() and count.isdigit() and len(count) <= 9:
                fields["forwarded_to"] = int(count)
    elif raw.strip():
        try:
            data = read_json(raw)
        except InvalidJSON as e:
            problem = f"body: {e.message}"
        else:
            if isinstance(data, dict):
                fields = data
            else:
                problem = 'body: expected a JSON object like {"forwarded_to": 12}'
    token = query_token or (fields.pop("t", None) if html else None)
    return AckRequest(fields, token if isinstance(token, str) else None, html, problem)


def authorise_ack(
    rt: Runtime,
    request: Request,
    credentials: HTTPAuthorizationCredentials | None,
    delivery_id: str,
    link_token: str | None,
) -> tuple[Principal | None, DeliveryTrace]:
    """Check the link token or the bearer token, then find the delivery (404 if not theirs).

    The token is checked before the lookup, so an unsigned request learns nothing about
    which deliveries exist.
    """
    who: Principal | None = None
    secret = rt.settings.link_secret.get_secret_value() if rt.settings.link_secret else None
    old = rt.settings.previous_link_secret
    previous = old.get_secret_value() if old else None
    if credentials is not None:
        who = identify(rt, token_index(request), credentials.credentials)
        if who is None:
            raise unauthorized("invalid or revoked token")
    elif link_token is None:
        raise unauthorized("missing token: open the link from the email, or send a bearer token")
    elif not tokens.link_token_ok(secret, delivery_id, link_token, previous=previous):
        raise unauthorized("this acknowledgement link is not valid (was it cut or altered?)")
    d = rt.trace.book.deliveries.get(delivery_id)
    if d is None or d.notification_id is None or d.document_id is None:
        raise not_found("delivery")
    if who is not None and not who.is_operator and who.partner_id != d.partner_id:
        raise not_found("delivery")
    return who, d


async def record_ack(
    rt: Runtime, d: DeliveryTrace, ack: AckIn, who: Principal | None
) -> AuditRecord:
    """Append the acknowledgement to the audit topic and wait until the trace holds it."""
    by = "link" if who is None else who.kind
    record = AuditRecord(
        kind="delivery.acked",
        at=datetime.now(UTC),
        document_id=d.document_id,
        version=d.version,
        partner_id=d.partner_id,
        notification_id=d.notification_id,
        delivery_id=d.delivery_id,
        channel_id=d.channel_id,
        forwarded_to=ack.forwarded_to,
        note=ack.note,
        detail=f"acknowledged by {by}",
    )
    partition, offset = await rt.out.send(
        topics.AUDIT, record.document_id, record.model_dump_json().encode()
    )
    rt.counters["audit.delivery.acked"] += 1
    try:
        await rt.trace.wait_applied(partition, offset)
    except TimeoutError as e:
        raise ApiError(
            503, "not_applied", "the acknowledgement was recorded but is not visible here yet"
        ) from e
    log.info(
        "delivery_acked",
        delivery_id=d.delivery_id,
        partner_id=d.partner_id,
        document_id=d.document_id,
        forwarded_to=ack.forwarded_to,
        by=by,
    )
    return record


def _title(rt: Runtime, d: DeliveryTrace) -> tuple[str | None, str | None]:
    doc = rt.trace.book.documents.get(d.document_id or "")
    info = doc.info(d.version) if doc else None
    return (info.title, info.doc_number) if info else (None, None)


ACK_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/AckIn"}},
        FORM: {"schema": {"$ref": "#/components/schemas/AckForm"}},
    },
}
HTML_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"description": d, "content": {"text/html": {"schema": {"type": "string"}}}}
    for s, d in ((401, "Invalid or missing link token"), (404, "No such delivery"))
}


HTML = {"text/html": {"schema": {"type": "string"}}}
#: A malformed query (a link token over its length) is refused in JSON, even on the page.
PAGE_QUERY_ERROR: dict[int | str, dict[str, Any]] = {
    422: {
        "description": responses(422)[422]["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
}
#: A form post (the confirmation page) is answered with a page, errors included.
ACK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": HTML},
    **{s: {**r, "content": HTML} for s, r in responses(401, 404, 422, 503).items()},
    **responses(413),
}


@router.post(
    "/{delivery_id}/ack",
    response_model=AckOut,
    responses=ACK_RESPONSES,
    openapi_extra={"requestBody": ACK_BODY},
    summary="Acknowledge a notice: how many enterprises it was forwarded to",
    description=(
        "Authorised by the link token `t` (query or form field) or a bearer token "
        "(partner or operator). JSON or form-encoded; a form post gets an HTML page back. "
        "Acknowledging again replaces the earlier count: it is never counted twice."
    ),
)
async def acknowledge(
    delivery_id: DeliveryId,
    request: Request,
    rt: Rt,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    t: LinkToken = None,
) -> Response:
    req = await read_ack_request(request, t)
    try:
        who, d = authorise_ack(rt, request, credentials, delivery_id, req.link_token)
        if req.problem is not None:
            raise ApiError(422, "invalid_request", req.problem)
        try:
            ack = AckIn.model_validate(req.fields)
        except ValidationError as e:
            raise ApiError(422, "invalid_request", describe(list(e.errors()))) from e
        record = await record_ack(rt, d, ack, who)
    except ApiError as e:
        if req.html:
            return pages.problem(e.status, _page_message(e))
        return error(e.status, e.code, e.message, e.headers)
    if req.html:
        title, _ = _title(rt, d)
        return pages.page(
            "acked.html.j2",
            title=title,
            forwarded_to=ack.forwarded_to,
            note=ack.note,
            delivery_id=delivery_id,
        )
    return JSONResponse(AckOut.of(record).model_dump(mode="json"))


@router.get(
    "/{delivery_id}/ack",
    response_class=HTMLResponse,
    responses={**HTML_ERRORS, **PAGE_QUERY_ERROR},
    summary="The confirmation page an acknowledgement link opens (records nothing)",
)
async def acknowledge_page(
    delivery_id: DeliveryId, request: Request, rt: Rt, t: LinkToken = None
) -> Response:
    try:
        _, d = authorise_ack(rt, request, None, delivery_id, t)
    except ApiError as e:
        return pages.problem(e.status, _page_message(e))
    title, doc_number = _title(rt, d)
    partner = rt.registry.book.get(d.partner_id or "")
    n = rt.trace.book.notifications.get(d.notification_id or "")
    return pages.page(
        "ack.html.j2",
        title=title,
        doc_number=doc_number,
        partner_name=partner.name if partner else (d.partner_id or ""),
        ack=n.ack if n else None,
        tz=SHANGHAI,
        action=f"/api/v1/deliveries/{delivery_id}/ack",
        token=t or "",
        note_max=NOTE_MAX,
        delivery_id=delivery_id,
    )


def _page_message(e: ApiError) -> str:
    if e.status == 401:
        return "确认链接无效或不完整。请直接点击邮件中的原始链接。"
    if e.status == 404:
        return "找不到这条推送记录。链接可能已过期，或推送尚在处理中，请稍后再试。"
    if e.status == 422:
        return f"请填写 0 或更大的整数作为企业数量。（{e.message}）"
    return e.message
