"""Your requests' traces: the recent ones, and one as a waterfall of its spans across web, api, downstream-api
and the database."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..dependencies import ClientsDep, CurrentSession
from ..pages import error_page, page
from ..traces import LANES, is_trace_id, read_spans, waterfall

router = APIRouter(tags=["traces"])

# Where Azure shows the same: Application Insights' end-to-end transaction details, by operation id (the
# trace id, which is also every tier's correlation id).
APP_INSIGHTS_DOCS = "https://learn.microsoft.com/azure/azure-monitor/app/transaction-search-and-diagnostics"


# zt: identity-iam-development-best-practices
# Assume breach needs to see what happened: one id joins every tier's spans (and audit lines).
@router.get("/traces")
async def recent(request: Request, c: ClientsDep, session: CurrentSession) -> Response:
    folder = c.settings.traces_folder
    if folder is None or c.traces is None:
        return page(request, "traces.html", traces=None, docs=APP_INSIGHTS_DOCS)
    ids: list[str] = getattr(request.state, "recent_traces", None) or await c.traces.of(session)
    spans = await anyio.to_thread.run_sync(read_spans, folder, set(ids))
    roots = {s["trace_id"]: s for s in spans if s.get("parent_id") is None}
    return page(request, "traces.html", traces=[(t, roots.get(t)) for t in ids], docs=APP_INSIGHTS_DOCS)


@router.get("/traces/{trace_id}")
async def one(request: Request, trace_id: str, c: ClientsDep, session: CurrentSession) -> Response:
    if not is_trace_id(trace_id):
        detail = (
            "A trace id is 32 lowercase hexadecimal digits, not all zero: the reference an error page shows, "
            "or the X-Correlation-Id of a response. Pick one of your requests from the list of your traces."
        )
        return error_page(request, 400, "That is not a trace id", detail, retry="/traces")
    folder = c.settings.traces_folder
    if folder is None or c.traces is None:
        return page(request, "traces.html", 404, traces=None, docs=APP_INSIGHTS_DOCS)
    # Only this session's own requests: another person's trace id, guessed or quoted, finds nothing.
    mine: list[str] = getattr(request.state, "recent_traces", None) or await c.traces.of(session)
    if trace_id not in mine:
        detail = (
            f"None of your last {len(mine)} requests in this session has this id. A trace shows only to the "
            "session that made the request, for its most recent requests."
        )
        return error_page(request, 404, "No trace of yours with this id", detail, retry="/traces")
    spans = await anyio.to_thread.run_sync(read_spans, folder, {trace_id})
    bars = waterfall(spans)
    lanes = [lane for lane in LANES if any(b.lane == lane for b in bars)]
    total = max((b.start_ms + b.duration_ms for b in bars), default=0.0)
    return page(request, "trace.html", trace_id=trace_id, bars=bars, lanes=lanes, total_ms=round(total, 1))
