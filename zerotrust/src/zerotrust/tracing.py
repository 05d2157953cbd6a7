"""Traces that join the tiers: W3C trace context in, out, and down to the database, with OpenTelemetry.

Each request gets a server span; its trace id is the request's correlation id, in every tier's audit
lines and in X-Correlation-Id, so one id finds the request everywhere. Spans go to a JSON-lines file
locally (`<PREFIX>_TRACE_FILE`) and to Azure Monitor when APPLICATIONINSIGHTS_CONNECTION_STRING is set.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)
T = TypeVar("T")

HEADER = "X-Correlation-Id"
_PROPAGATOR = TraceContextTextMapPropagator()
_NO_TRACER = trace.NoOpTracer()
# The tracer of the request being served: calls it makes (hops, queries) find it without being handed it.
_tracer: ContextVar[trace.Tracer] = ContextVar("zerotrust_tracer", default=_NO_TRACER)


class JsonLinesExporter(SpanExporter):
    """One JSON line per finished span, appended to a file created owner-only."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        weakref.finalize(self, os.close, self._fd)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(_plain(s), separators=(",", ":")) + "\n" for s in spans).encode()
        try:
            with self._lock:
                os.write(self._fd, lines)
        except OSError as exc:
            log.error("could not write the trace file %s: %s", self.path, exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


def _plain(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    return {
        "trace_id": format_trace_id(ctx.trace_id) if ctx else None,
        "span_id": format_span_id(ctx.span_id) if ctx else None,
        "parent_id": format_span_id(span.parent.span_id) if span.parent else None,
        "service": span.resource.attributes.get("service.name"),
        "name": span.name,
        "kind": span.kind.name,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
    }


class PerSecond(Sampler):
    """Keeps at most `rate` new traces a second (a token bucket), as Azure Monitor's rate-limited sampling
    does: every request while a person clicks, a bounded cost under load."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.clock = rate, clock
        self.tokens, self.last = rate, clock()

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            return SamplingResult(Decision.DROP)
        self.tokens -= 1
        return SamplingResult(Decision.RECORD_AND_SAMPLE, kwargs.get("attributes"))

    def get_description(self) -> str:
        return f"PerSecond{{{self.rate}}}"


class Tracing:
    """A service's tracer. Sampling keeps up to `per_second` new traces when something exports them and
    none otherwise; trace ids (the correlation ids) are made either way, and a caller's decision is followed."""

    def __init__(
        self,
        service: str,
        *,
        trace_file: Path | None = None,
        azure_monitor: str | None = None,
        managed_identity_client_id: str | None = None,
        per_second: float = 20.0,
    ) -> None:
        processors: list[SimpleSpanProcessor | BatchSpanProcessor] = []
        if trace_file is not None:
            # A span is in the file when it ends: one write(2), as an audit line costs.
            processors.append(SimpleSpanProcessor(JsonLinesExporter(trace_file)))
        if azure_monitor:
            processors.append(BatchSpanProcessor(_azure_monitor(azure_monitor, managed_identity_client_id)))
        sampler = ParentBased(PerSecond(per_second)) if processors and per_second > 0 else ALWAYS_OFF
        self.provider = TracerProvider(sampler=sampler, resource=Resource.create({"service.name": service}))
        for processor in processors:
            self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer("zerotrust")

    def shutdown(self) -> None:
        self.provider.shutdown()


def _azure_monitor(connection_string: str, managed_identity_client_id: str | None) -> SpanExporter:
    from azure.identity import ManagedIdentityCredential
    from azure.monitor.opentelemetry.exporter import AzureMonitorTraceExporter

    # Entra authentication to Application Insights (local auth disabled there): the service's own managed
    # identity (user-assigned: named by its client id, as the federated credential is), no instrumentation key
    # doing the work of a secret.
    credential = ManagedIdentityCredential(client_id=managed_identity_client_id)
    return AzureMonitorTraceExporter(connection_string=connection_string, credential=credential)


# zt: identity-iam-development-best-practices
class TraceRequests:
    """A server span per request, child of the caller's W3C `traceparent` when `trust_caller` (the inner
    tiers; the web app starts its own: a browser's trace ids would only let it forge a correlation)."""

    def __init__(self, app: ASGIApp, tracing: Tracing, trust_caller: bool = True) -> None:
        self.app, self.tracer, self.trust_caller = app, tracing.tracer, trust_caller

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        parent = None
        if self.trust_caller:
            carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k == b"traceparent"}
            parent = _PROPAGATOR.extract(carrier) if carrier else None
        method = scope["method"]
        span = self.tracer.start_span(method, context=parent, kind=SpanKind.SERVER)
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        tracer_token = _tracer.set(self.tracer)
        cid = format_trace_id(span.get_span_context().trace_id)
        scope.setdefault("state", {})["correlation_id"] = cid
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-correlation-id"]
                headers.append((b"x-correlation-id", cid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if span.is_recording():
                route = getattr(scope.get("route"), "path", None) or "(unmatched)"
                span.update_name(f"{method} {route}")
                span.set_attributes({"http.request.method": method, "http.route": route})
                span.set_attribute("http.response.status_code", status)
            span.end()
            _tracer.reset(tracer_token)
            otel_context.detach(token)


def outgoing(headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """`headers` plus the current trace context (`traceparent`), for a call to the next tier."""
    carrier = dict(headers or {})
    _PROPAGATOR.inject(carrier)
    return carrier


async def traced(name: str, work: Awaitable[T], **attributes: Any) -> T:
    """`await work` in a client span. A failure marks the span and is raised once the span has ended: an exception
    that is a frozen dataclass (zerotrust.onbehalf.OboError) can't pass through a context manager's exit."""
    with client_span(name, **attributes) as span:
        try:
            return await work
        except Exception as exc:
            span.set_status(StatusCode.ERROR, type(exc).__name__)
            failed = exc
    raise failed


def recorded() -> bool:
    """The current request's trace is kept (sampled and exported), so its spans can be looked at later."""
    return trace.get_current_span().is_recording()


@contextmanager
def client_span(name: str, **attributes: Any) -> Iterator[trace.Span]:
    """A span for a call the current request makes (the next tier, the database)."""
    current = trace.get_current_span()
    if not current.is_recording():
        # A trace not kept: a span nobody will see costs tens of microseconds a call under load; the next tier
        # continues the trace (its id, the correlation id) from this request's own span just the same.
        yield current
        return
    with _tracer.get().start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes) as span:
        yield span


__all__ = ["HEADER", "JsonLinesExporter", "TraceRequests", "Tracing", "client_span", "outgoing", "recorded", "traced"]
