"""Assume breach: every decision in the audit log (refusals too), one correlation id joining the tiers, and a
trace of one request with spans from web, api, downstream-api and the database. Against `make run`'s stack."""

from __future__ import annotations

import base64
import json
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from devtools.token import device_code_token
from zerotrust.redact import JWT_SHAPE

from tests.e2e.test_chain import sign_in
from tests.support.launch import RunningStack
from tests.support.people import Person

pytestmark = pytest.mark.guidance("identity-iam-development-best-practices")

TIERS = ("web", "api", "downstream-api")


def _jsonl(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for f in sorted(folder.glob("*.jsonl")) for line in f.read_text().splitlines() if line]


def _audit(stack: RunningStack, cid: str) -> list[dict[str, Any]]:
    return [line for line in _jsonl(stack.local_dir / "audit") if line.get("correlation_id") == cid]


def _spans(stack: RunningStack, cid: str) -> list[dict[str, Any]]:
    return [span for span in _jsonl(stack.local_dir / "traces") if span["trace_id"] == cid]


def _api(stack: RunningStack) -> httpx.Client:
    verify = ssl.create_default_context(cafile=stack.info["ca_bundle"])
    return httpx.Client(base_url=stack.info["api"], verify=verify, timeout=10)


def _unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def test_one_page_is_one_line_per_tier_joined_by_its_correlation_id_and_one_trace_down_to_the_database(
    stack: RunningStack,
) -> None:
    alice = Person()
    sign_in(alice, stack, "alice@contoso.test")
    page = alice.get(f"{stack.web}/tasks")
    assert page.status_code == 200
    cid = page.headers["x-correlation-id"]
    assert len(cid) == 32 and int(cid, 16)  # the W3C trace id

    lines = _audit(stack, cid)
    assert sorted(line["service"] for line in lines) == sorted(TIERS), lines
    by_tier = {line["service"]: line for line in lines}
    assert {line["decision"] for line in lines} == {"allow"}
    assert len({(line["tenant_id"], line["object_id"]) for line in lines}) == 1  # the same person everywhere
    assert by_tier["web"]["reason"] == "session" and by_tier["web"]["route"] == "/tasks"
    assert by_tier["api"]["permissions"] == ["Tasks.Read"]
    assert by_tier["downstream-api"]["permissions"] == ["Records.Read"]

    # A span is written when it ends, just after its tier answered: the api's and downstream's may land a
    # moment after the page. Poll for them (their processes write them), within a bound.
    deadline = time.monotonic() + 10
    spans = _spans(stack, cid)
    while {span["service"] for span in spans if span["kind"] == "SERVER"} != set(TIERS):
        assert time.monotonic() < deadline, f"spans of {cid}: {spans}"
        time.sleep(0.1)
        spans = _spans(stack, cid)
    by_id = {span["span_id"]: span for span in spans}
    servers = {span["service"]: span for span in spans if span["kind"] == "SERVER"}
    assert set(servers) == set(TIERS)
    assert servers["web"]["parent_id"] is None  # a browser's trace context is not taken: the web starts it
    for caller, callee in (("web", "api"), ("api", "downstream-api")):
        hop = by_id[servers[callee]["parent_id"]]  # the caller's client span for this hop
        assert hop["service"] == caller and hop["kind"] == "CLIENT"
    database = [s for s in spans if s["attributes"].get("db.system") == "sqlite"]
    assert database and database[0]["service"] == "downstream-api"
    assert by_id[database[0]["parent_id"]] == servers["downstream-api"]


def test_refusals_are_audited_with_their_reason(stack: RunningStack) -> None:
    forged = _unsigned({"aud": "api", "tid": stack.info["tenants"]["contoso"], "oid": "x", "scp": "Tasks.Read"})
    token = device_code_token(stack.info, "alice@contoso.test", list(stack.info["api_scopes"]))
    with _api(stack) as api:
        cases = {
            "unauthorized": api.get("/tasks"),
            "invalid_token: The token's signing algorithm is not accepted.": api.get(
                "/tasks", headers={"Authorization": f"Bearer {forged}"}
            ),
            "invalid_request": api.get("/tasks", headers={"Authorization": "Bearer two tokens"}),
            "insufficient_scope": api.get("/reports/tenant", headers={"Authorization": f"Bearer {token}"}),
        }
    for reason, answer in cases.items():
        assert answer.status_code in (400, 401, 403), (reason, answer.status_code)
        (line,) = _audit(stack, answer.headers["x-correlation-id"])
        assert (line["service"], line["decision"], line["reason"]) == ("api", "deny", reason)
        assert line["status"] == answer.status_code
    (scope_line,) = _audit(stack, cases["insufficient_scope"].headers["x-correlation-id"])
    assert scope_line["required"] and scope_line["object_id"]  # who was refused, and what was missing


def test_the_web_apps_refusals_are_audited(stack: RunningStack) -> None:
    stranger = Person()
    page = stranger.get(f"{stack.web}/tasks")
    assert page.status_code == 302
    (line,) = _audit(stack, page.headers["x-correlation-id"])
    assert (line["service"], line["decision"], line["reason"]) == ("web", "deny", "no_session")

    alice = Person()
    sign_in(alice, stack, "alice@contoso.test")
    forged = alice.post(f"{stack.web}/tasks", {"title": "x", "csrf_token": "not-the-token"})
    assert forged.status_code == 403
    (line,) = _audit(stack, forged.headers["x-correlation-id"])
    assert (line["decision"], line["reason"]) == ("deny", "csrf_token") and line["object_id"]


def test_no_audit_line_or_span_holds_a_token(stack: RunningStack) -> None:
    for folder in ("audit", "traces"):
        for path in (stack.local_dir / folder).glob("*.jsonl"):
            text = path.read_text()
            assert text and not JWT_SHAPE.search(text), path
            assert "@contoso.test" not in text and "Bearer" not in text, path
