"""Operator endpoints: publish a document, read it back, follow its funnel, replay dead letters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from relay.core import topics
from relay.core.errors import InvalidEvent, InvalidJSON
from relay.core.intake import advisories, encode_event, too_large, validate_event
from relay.core.models.limits import ID_MAX, MAX_EVENT_BYTES, read_json
from relay.web.errors import ApiError, not_found, responses
from relay.web.schemas import (
    AdvisoryOut,
    CurrentDocument,
    DocumentAccepted,
    DocumentTraceOut,
    ReplayRequest,
    ReplayResult,
)
from relay.web.security import Operator, Rt
from relay.web.views import trace_out

router = APIRouter(prefix="/api/v1", tags=["operator"])

EVENT_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DocumentEvent"}}},
}


@router.post(
    "/documents",
    status_code=202,
    response_model=DocumentAccepted,
    responses=responses(401, 403, 413, 422, 503),
    openapi_extra={"requestBody": EVENT_BODY},
    summary="Publish one document event (DESIGN §4), validated like `relay publish`",
    description=(
        "Refused events get 422 with the reason as the code (`not_json`, `too_deep`, "
        "`invalid_event`, `unknown_code`, `expired`) and the field in the message; an event "
        f"over {MAX_EVENT_BYTES:,} bytes gets 413 `too_large`. Accepted ones are produced "
        "to `documents.published` keyed by document id."
    ),
)
async def publish(request: Request, rt: Rt, _: Operator) -> DocumentAccepted:
    raw = await request.body()
    try:
        if len(raw) > MAX_EVENT_BYTES:
            raise too_large(len(raw), "the body")
        try:
            data = read_json(raw)
        except InvalidJSON as e:
            raise InvalidEvent(e.reason, f"the body is {e.message}") from e
        event = validate_event(data, today=rt.clock.today(), checks=rt.checks)
        value = encode_event(event)
    except InvalidEvent as e:
        message = e.message
        if e.field and not message.startswith(e.field):
            message = f"{e.field}: {message}"
        raise ApiError(413 if e.reason == "too_large" else 422, e.reason, message) from e
    doc = event.document
    advice = advisories(event)
    partition, offset = await rt.out.send(topics.DOCUMENTS, doc.id, value)
    rt.counters["api.documents.published"] += 1
    return DocumentAccepted(
        event_id=event.event_id,
        document_id=doc.id,
        version=doc.version,
        type=event.type.value,
        partition=partition,
        offset=offset,
        warnings=[AdvisoryOut(code=a.code, field=a.field, message=a.message) for a in advice],
    )


@router.get(
    "/documents/{document_id}",
    response_model=CurrentDocument,
    responses=responses(401, 403, 404, 422, 503),
    summary="A document as its latest accepted version says it (to revise or repeal it)",
)
async def current(
    document_id: Annotated[str, Path(max_length=ID_MAX)], rt: Rt, _: Operator
) -> CurrentDocument:
    found = [d for d in list(rt.accepted.sources.values()) if d.id == document_id]
    if not found:
        raise not_found(f"document {document_id!r}")
    latest = max(found, key=lambda d: d.version)
    return CurrentDocument(document=latest, versions=sorted({d.version for d in found}))


@router.get(
    "/documents/{document_id}/trace",
    response_model=DocumentTraceOut,
    responses=responses(401, 403, 404, 422, 503),
    summary="A document's relay funnel: partners matched, deliveries, acknowledgements, reach",
)
async def trace(
    document_id: Annotated[str, Path(max_length=128)], rt: Rt, _: Operator
) -> DocumentTraceOut:
    doc = rt.trace.book.documents.get(document_id)
    if doc is None:
        raise not_found(f"document {document_id!r}")
    return trace_out(rt.trace.book, doc, rt.registry.book)


@router.post(
    "/dead-letters/replay",
    response_model=ReplayResult,
    responses=responses(401, 403, 413, 422, 503),
    summary="Re-queue dead letters (same delivery ids); every given criterion must hold",
)
async def replay(body: ReplayRequest, rt: Rt, _: Operator) -> ReplayResult:
    # Imported here: replaying reads the dead-letter topic with a client of its own, which
    # the rest of the API never needs.
    from relay.adapters.dead_letters import replay_dead_letters

    given = body.model_dump(exclude={"all"}, exclude_none=True)
    if not given and not body.all:
        raise ApiError(
            422,
            "invalid_request",
            "body: say which dead letters (delivery_ids, partner_id, document_id, since, "
            'until), or {"all": true} for every one',
        )
    ids = await replay_dead_letters(
        rt.settings,
        delivery_ids=body.delivery_ids,
        partner_id=body.partner_id,
        document_id=body.document_id,
        since=body.since,
        until=body.until,
    )
    rt.counters["api.dead_letters.replayed"] += len(ids)
    return ReplayResult(requeued=len(ids), delivery_ids=list(ids))
