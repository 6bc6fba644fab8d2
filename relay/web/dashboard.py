"""The operator's workbench: the page at ``GET /``, its scripts, and the JSON it polls.

The page holds no data and no token: it asks the operator for the token, keeps it in the
tab's sessionStorage and polls ``GET /api/v1/dashboard`` with it. The plain figures, the
documents (each version its own funnel) and failures come from the trace view (the audit
topic: every worker's deliveries); lag is this worker's own consumer. The document page
(``relay/web/document_page.py``) and the publish form share the scripts served here.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Annotated, cast

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from relay.core.logs import get_logger
from relay.core.models import DeliveryStatus
from relay.core.stats import lag_by_topic
from relay.core.trace import DEAD_LETTERED, DocumentTrace, TraceBook
from relay.runtime.app import Runtime
from relay.runtime.registry import PartnerBook
from relay.runtime.watchdog import consumer_progress
from relay.web import pages
from relay.web.errors import responses
from relay.web.schemas import (
    ConsumerLag,
    DashboardOut,
    DocumentList,
    DocumentSummary,
    FailureOut,
    Overview,
    Throughput,
    TopicLagOut,
    WorkerOut,
)
from relay.web.security import Operator, Rt
from relay.web.views import totals_out, version_funnels

log = get_logger(__name__)

router = APIRouter(prefix="/api/v1", tags=["operator"])
page_router = APIRouter(tags=["operations"])

#: The only files served under /static/, with their types.
STATIC_TYPES = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "common.js": "text/javascript; charset=utf-8",
    "publish.js": "text/javascript; charset=utf-8",
    "document.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


# ------------------------------------------------------------------ lag


class LagSampler:
    """This worker's consumer lag, measured at most every ``max_age`` seconds.

    Each measurement opens a short-lived client for the end offsets (as the watchdog
    does), so however many dashboards poll, the broker sees one every ``max_age``.
    """

    def __init__(self, rt: Runtime, *, max_age: float = 1.5, timeout: float = 5.0) -> None:
        self.rt = rt
        self.max_age = max_age
        self.timeout = timeout
        self._lock = asyncio.Lock()
        self._last: ConsumerLag | None = None
        self._at = 0.0

    async def get(self) -> ConsumerLag:
        async with self._lock:
            if self._last is None or time.monotonic() - self._at >= self.max_age:
                self._last = await self._measure()
                self._at = time.monotonic()
            return self._last

    async def _measure(self) -> ConsumerLag:
        try:
            async with asyncio.timeout(self.timeout):
                progress = await consumer_progress(self.rt)
        except Exception as e:  # the broker or the consumer is not there (yet)
            log.warning("dashboard_lag_unavailable", error=repr(e))
            return ConsumerLag(
                status="unavailable", total=None, topics=[], detail=f"{type(e).__name__}: {e}"
            )
        if progress is None:
            return ConsumerLag(
                status="rebalancing",
                total=None,
                topics=[],
                detail="the consumer group is rebalancing",
            )
        lags = lag_by_topic(progress)
        return ConsumerLag(
            status="ok",
            total=sum(t.lag for t in lags),
            topics=[TopicLagOut(topic=t.topic, partitions=t.partitions, lag=t.lag) for t in lags],
        )


async def measure_lag(sampler: LagSampler, rt: Runtime) -> ConsumerLag:
    """This worker's lag now (at most ``max_age`` old), remembered for ``/metrics``."""
    lag = await sampler.get()
    rt.consumer_lag = {t.topic: float(t.lag) for t in lag.topics} if lag.status == "ok" else None
    return lag


def lag_sampler(request: Request) -> LagSampler:
    return cast(LagSampler, request.app.state.lag)


# ------------------------------------------------------------------ views


def document_summary(book: TraceBook, doc: DocumentTrace) -> DocumentSummary:
    """A document's row: its latest version's own funnel, and each version's beside it."""
    info = doc.info()
    last = doc.events[-1] if doc.events else None
    funnels = version_funnels(book, doc)
    # The latest version that was relayed; a document that was only ever refused shows the
    # version its event named.
    versions = {f.version for f in funnels} or {e.version for e in doc.events if e.version}
    version = max(versions) if versions else None
    return DocumentSummary(
        document_id=doc.document_id,
        title=info.title if info else None,
        doc_number=info.doc_number if info else None,
        version=version,
        updated_at=doc.updated_at,
        last_event=last.kind if last else None,
        rejected_reason=last.reason if last and last.kind == "event.rejected" else None,
        funnel=totals_out(book.funnel(doc, version)),
        versions=funnels,
    )


def overview(book: TraceBook) -> Overview:
    f = book.overall()
    return Overview(
        documents=sum(bool(d.notifications) for d in book.documents.values()),
        notifications=f.notifications,
        notifications_delivered=f.notifications_delivered,
        notifications_acknowledged=f.notifications_acknowledged,
        enterprises_reached=f.enterprises_reached,
        failed=sum(book.status_counts[s] for s in DEAD_LETTERED),
    )


def throughput(book: TraceBook, now: float) -> Throughput:
    window = book.rates.span
    counts = book.rates.counts(now)
    delivered = {k: n for k, n in counts.items() if k.endswith(f".{DeliveryStatus.delivered}")}
    by_channel = {k.rsplit(".", 1)[0]: round(n / window, 2) for k, n in sorted(delivered.items())}
    return Throughput(
        window_s=window,
        delivered_per_s=round(sum(delivered.values()) / window, 2),
        delivered_per_s_by_channel=by_channel,
        attempts_per_s=round(sum(counts.values()) / window, 2),
        delivered_per_second=book.rates.series(now, delivered),
    )


def failures_out(book: TraceBook, partners: PartnerBook, limit: int) -> list[FailureOut]:
    out = []
    for d, r in book.recent_failures(limit):
        partner = partners.get(d.partner_id or "")
        doc = book.documents.get(d.document_id or "")
        info = doc.info(d.version) if doc else None
        out.append(
            FailureOut(
                delivery_id=d.delivery_id,
                partner_id=d.partner_id,
                partner_name=partner.name if partner else None,
                document_id=d.document_id,
                title=info.title if info else None,
                channel_id=d.channel_id,
                channel_type=d.channel_type,
                status=d.status,
                at=r.at,
                attempt=r.attempt,
                reason=r.reason,
                detail=r.detail,
                reply_code=r.http_status,
            )
        )
    return out


# ------------------------------------------------------------------ JSON


@router.get(
    "/dashboard",
    response_model=DashboardOut,
    responses=responses(401, 403, 422, 503),
    summary="What the operator dashboard shows: throughput, lag, deliveries, failures, funnels",
    description=(
        "Throughput, delivery counts, failures and funnels cover every worker (from the audit "
        "topic); lag covers this worker's consumer, which holds a share of the partitions."
    ),
)
async def dashboard(
    request: Request,
    rt: Rt,
    _: Operator,
    documents: Annotated[int, Query(ge=1, le=200, description="recent documents")] = 20,
    failures: Annotated[int, Query(ge=1, le=200, description="recent failures")] = 20,
) -> DashboardOut:
    lag = await measure_lag(lag_sampler(request), rt)
    book = rt.trace.book
    now = time.time()
    counts = {s.value: book.status_counts[s] for s in DeliveryStatus}
    return DashboardOut(
        generated_at=datetime.fromtimestamp(now, UTC),
        overview=overview(book),
        worker=WorkerOut(
            uptime_s=round(now - rt.started, 1),
            ready=rt.ready,
            stalled=rt.watchdog.stalled,
            partners=len(rt.registry.book.partners),
        ),
        throughput=throughput(book, now),
        lag=lag,
        deliveries_by_status=counts,
        dead_letters=sum(counts[s] for s in ("failed", "disabled", "dead")),
        events_rejected=book.events_rejected,
        failures=failures_out(book, rt.registry.book, failures),
        documents=[document_summary(book, d) for d in book.recent_documents(documents)],
        documents_total=len(book.documents),
    )


@router.get(
    "/documents",
    response_model=DocumentList,
    responses=responses(401, 403, 422, 503),
    summary="Recent documents with their relay funnel, newest activity first",
)
async def list_documents(
    rt: Rt,
    _: Operator,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DocumentList:
    book = rt.trace.book
    return DocumentList(
        items=[document_summary(book, d) for d in book.recent_documents(limit)],
        total=len(book.documents),
    )


# ------------------------------------------------------------------ the page


@page_router.get(
    "/",
    response_class=HTMLResponse,
    summary="The operator dashboard (signs in with the operator token in the page)",
)
async def dashboard_page() -> HTMLResponse:
    return pages.page("dashboard.html.j2", headers=pages.DASHBOARD_HEADERS)


@page_router.get("/static/{name}", include_in_schema=False)
async def static(name: str) -> Response:
    return pages.static_file(name, STATIC_TYPES, "/static/")
