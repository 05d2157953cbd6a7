"""Tracing: the correlation id is the W3C trace id, a caller's trace is continued only where trusted, spans reach
the file, and sampling keeps a bounded number of new traces a second."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.sampling import Decision
from zerotrust.tracing import PerSecond, TraceRequests, Tracing, client_span, outgoing, traced

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def _app(tracing: Tracing, trust_caller: bool) -> TestClient:
    app = FastAPI()

    @app.get("/items/{item}")
    async def item(item: str) -> dict[str, str]:
        with client_span("sqlite transaction", **{"db.system": "sqlite"}):
            return {"item": item}

    app.add_middleware(TraceRequests, tracing=tracing, trust_caller=trust_caller)
    return TestClient(app)


def test_a_trusted_callers_trace_is_continued_and_its_spans_written(tmp_path: Path) -> None:
    tracing = Tracing("api", trace_file=tmp_path / "spans.jsonl")
    r = _app(tracing, trust_caller=True).get("/items/secret-1", headers={"traceparent": TRACEPARENT})
    assert r.headers["x-correlation-id"] == TRACE_ID
    spans = [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text().splitlines()]
    server = next(s for s in spans if s["kind"] == "SERVER")
    database = next(s for s in spans if s["kind"] == "CLIENT")
    assert {s["trace_id"] for s in spans} == {TRACE_ID}
    assert server["parent_id"] == "00f067aa0ba902b7" and server["name"] == "GET /items/{item}"
    assert database["parent_id"] == server["span_id"] and database["attributes"] == {"db.system": "sqlite"}
    assert "secret-1" not in (tmp_path / "spans.jsonl").read_text()  # the route template, never the path


def test_an_untrusted_callers_trace_context_is_ignored_and_a_malformed_one_too(tmp_path: Path) -> None:
    web = _app(Tracing("web", trace_file=tmp_path / "spans.jsonl"), trust_caller=False)
    assert web.get("/items/1", headers={"traceparent": TRACEPARENT}).headers["x-correlation-id"] != TRACE_ID
    api = _app(Tracing("api"), trust_caller=True)
    cid = api.get("/items/1", headers={"traceparent": "00-zz-<script>-01"}).headers["x-correlation-id"]
    assert len(cid) == 32 and int(cid, 16) and cid != TRACE_ID


def test_at_most_rate_new_traces_a_second_are_kept() -> None:
    now = [100.0]
    sampler = PerSecond(2, clock=lambda: now[0])
    kept = [sampler.should_sample(None, 1, "GET").decision for _ in range(3)]
    assert kept == [Decision.RECORD_AND_SAMPLE, Decision.RECORD_AND_SAMPLE, Decision.DROP]
    now[0] += 0.5  # half a second: one more
    assert sampler.should_sample(None, 1, "GET").decision == Decision.RECORD_AND_SAMPLE
    assert sampler.should_sample(None, 1, "GET").decision == Decision.DROP


def test_nothing_is_recorded_without_an_exporter_yet_the_trace_id_is_there(tmp_path: Path) -> None:
    r = _app(Tracing("api"), trust_caller=True).get("/items/1", headers={"traceparent": TRACEPARENT})
    assert r.status_code == 200 and r.headers["x-correlation-id"] == TRACE_ID


def _hop_headers(tracing: Tracing, traceparent: str) -> dict[str, str]:
    """What a route sends the next tier as its trace context, outside and inside a client span."""
    app = FastAPI()

    @app.get("/hop")
    async def hop() -> dict[str, str]:
        before = outgoing()["traceparent"]
        with client_span("GET next tier"):
            return {"outside": before, "inside": outgoing()["traceparent"]}

    app.add_middleware(TraceRequests, tracing=tracing, trust_caller=True)
    return dict(TestClient(app).get("/hop", headers={"traceparent": traceparent}).json())


def test_a_kept_trace_gets_a_span_per_call_and_one_not_kept_continues_from_the_requests_own(tmp_path: Path) -> None:
    kept = _hop_headers(Tracing("api", trace_file=tmp_path / "spans.jsonl"), TRACEPARENT)
    assert kept["inside"] != kept["outside"] and kept["inside"].split("-")[1] == TRACE_ID
    (client,) = [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text().splitlines() if "CLIENT" in line]
    assert kept["inside"].split("-")[2] == client["span_id"]
    # The caller did not keep it (flags 00): no span for the call, the same trace id carried on.
    not_kept = _hop_headers(Tracing("api", trace_file=tmp_path / "other.jsonl"), TRACEPARENT[:-2] + "00")
    assert not_kept["inside"] == not_kept["outside"] and not_kept["inside"].split("-")[1] == TRACE_ID


@dataclass(frozen=True)
class _Refused(Exception):
    """Frozen, as zerotrust.onbehalf.OboError is: a context manager's exit can't set its traceback."""

    reason: str


def test_a_traced_call_that_fails_marks_its_span_and_raises_the_callers_own_error(tmp_path: Path) -> None:
    app = FastAPI()

    async def refuse() -> str:
        raise _Refused("no")

    async def answer() -> str:
        return "token"

    @app.get("/exchange")
    async def exchange() -> dict[str, str]:
        got = await traced("on-behalf-of token", answer(), **{"server.address": "token service"})
        try:
            await traced("on-behalf-of token", refuse())
        except _Refused as exc:
            return {"got": got, "refused": exc.reason}
        return {"got": got}

    app.add_middleware(TraceRequests, tracing=Tracing("api", trace_file=tmp_path / "spans.jsonl"))
    assert TestClient(app).get("/exchange").json() == {"got": "token", "refused": "no"}
    spans = [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text().splitlines()]
    calls = [s for s in spans if s["kind"] == "CLIENT"]
    assert [s["status"] for s in calls] == ["UNSET", "ERROR"]
    server = next(s for s in spans if s["kind"] == "SERVER")
    assert all(s["parent_id"] == server["span_id"] for s in calls)


def test_a_global_opentelemetry_provider_gets_no_second_span_per_request_from_fastapi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a deployment that also configures OpenTelemetry globally (Azure Monitor's distro does): FastAPI's own
    # telemetry would start its spans too, and ask those providers on every request.
    from contextlib import asynccontextmanager

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from zerotrust.service import create_service

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # type: ignore[no-untyped-def]
        yield

    bare = FastAPI()
    bare.get("/healthz")(lambda: {"status": "ok"})
    service = create_service(
        "api", "test", lifespan, allowed_hosts=["testserver"], tracing=Tracing("api", trace_file=tmp_path / "s")
    )
    with TestClient(bare) as client:
        assert client.get("/healthz").status_code == 200
    assert exported.get_finished_spans()  # FastAPI left to itself does start spans there
    exported.clear()
    with TestClient(service) as client:
        assert client.get("/healthz").status_code == 200
    assert exported.get_finished_spans() == ()
    spans = [json.loads(line) for line in (tmp_path / "s").read_text().splitlines()]
    assert [s["kind"] for s in spans] == ["SERVER"]  # the service's own span, once
