"""The trace pages: a person sees the waterfall of their own requests' traces and nothing else (another
session's trace id, even one in the files, is a 404; a malformed id a clear 400); the waterfall places spans
by time under their parents; the session's trace ids are sealed in the store and bounded."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import pytest
from web.session_store import Sealer, SqliteSessionStore
from web.sessions import Session, SignedInUser
from web.traces import REMEMBERED, RecentTraces, is_trace_id, read_spans, waterfall

pytestmark = pytest.mark.guidance("identity-iam-development-best-practices")

ALICE_TRACE, OTHER = "1" * 32, "2" * 32
MS = 1_000_000


def span(trace: str, span_id: str, parent: str | None, service: str, start: int, end: int, **attrs: Any) -> dict:
    kind = "CLIENT" if "db.system" in attrs or "server.address" in attrs else "SERVER"
    return {
        "trace_id": trace,
        "span_id": span_id,
        "parent_id": parent,
        "service": service,
        "name": f"{service} {span_id}",
        "kind": kind,
        "start_ns": start,
        "end_ns": end,
        "status": "UNSET",
        "attributes": attrs,
    }


def write(folder: Path, name: str, *spans: dict, extra: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / name).open("a") as f:
        f.write(extra + "".join(json.dumps(s) + "\n" for s in spans))


def test_trace_ids_are_w3c_ids_only() -> None:
    assert is_trace_id("0af7651916cd43dd8448eb211c80319c")
    for bad in ("0" * 32, "A" * 32, "1" * 31, "1" * 33, "../../etc/passwd", "g" * 32, ""):
        assert not is_trace_id(bad), bad


def test_the_waterfall_puts_each_span_under_its_parent_placed_by_time() -> None:
    t0 = 1_000 * MS
    spans = [
        span(ALICE_TRACE, "db", "ds", "downstream-api", t0 + 60 * MS, t0 + 70 * MS, **{"db.system": "sqlite"}),
        span(ALICE_TRACE, "web", None, "web", t0, t0 + 100 * MS, **{"http.route": "/chain", "secret": "x"}),
        span(ALICE_TRACE, "ds", "hop", "downstream-api", t0 + 50 * MS, t0 + 80 * MS),
        span(ALICE_TRACE, "hop", "web", "web", t0 + 40 * MS, t0 + 90 * MS, **{"server.address": "api"}),
    ]
    bars = waterfall(spans)
    assert [(b.span_id, b.depth, b.lane) for b in bars] == [
        ("web", 0, "web"),
        ("hop", 1, "web"),
        ("ds", 2, "downstream-api"),
        ("db", 3, "database"),
    ]
    db = bars[-1]
    assert (db.left, db.width, db.start_ms, db.duration_ms) == (60.0, 10.0, 60.0, 10.0)
    assert bars[0].attributes == {"http.route": "/chain"}  # only the attributes a page shows


def test_a_span_without_its_parent_is_a_root_and_a_loop_ends() -> None:
    spans = [
        span(ALICE_TRACE, "a", "missing", "api", 10, 20),
        span(ALICE_TRACE, "b", "b", "web", 0, 30),  # its own parent
        span(ALICE_TRACE, "c", "d", "web", 5, 6),  # c and d each other's parent: no root, not drawn
        span(ALICE_TRACE, "d", "c", "web", 5, 6),
    ]
    assert [(b.span_id, b.depth) for b in waterfall(spans)] == [("b", 0), ("a", 0)]
    assert waterfall([]) == []


def test_only_the_asked_traces_well_formed_spans_are_read(tmp_path: Path) -> None:
    good = span(ALICE_TRACE, "a", None, "web", 1, 2)
    backwards = span(ALICE_TRACE, "b", None, "web", 5, 1)
    write(
        tmp_path, "web.jsonl", good, span(OTHER, "x", None, "web", 1, 2), backwards, extra=f'{{"cut": "{ALICE_TRACE}\n'
    )
    write(tmp_path, "api.jsonl", span(ALICE_TRACE, "c", "a", "api", 1, 2))
    (tmp_path / "notes.txt").write_text(json.dumps(span(ALICE_TRACE, "n", None, "web", 1, 2)))
    found = read_spans(tmp_path, {ALICE_TRACE})
    assert sorted(s["span_id"] for s in found) == ["a", "c"]


def _session(n: int) -> Session:
    user = SignedInUser("oid", "tid", None, None)
    return Session(f"session-{n}", 0.0, 0.0, "csrf", user)


def test_a_session_remembers_its_recent_traces_sealed_and_bounded(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await SqliteSessionStore.open(tmp_path / "sessions.sqlite3")
        traces = RecentTraces(store, Sealer(b"k" * 32))
        mine, theirs = _session(1), _session(2)
        ids = [f"{n:032x}" for n in range(1, REMEMBERED + 6)]
        for n, trace in enumerate(ids):
            await traces.remember(mine, trace, float(n))
        await traces.remember(theirs, OTHER, 0.0)
        assert await traces.of(mine) == ids[::-1][:REMEMBERED]  # newest first, the oldest gone
        assert await traces.of(theirs) == [OTHER]
        await traces.remember(mine, ids[-3], 99.0)  # seen again: moved to the front, not kept twice
        assert (await traces.of(mine))[:2] == [ids[-3], ids[-1]] and len(await traces.of(mine)) == REMEMBERED
        # Another key's sealer opens nothing: the ids are sealed, not merely stored.
        assert await RecentTraces(store, Sealer(b"o" * 32)).of(mine) == []
        await traces.forget(mine)
        assert await traces.of(mine) == [] and await traces.of(theirs) == [OTHER]
        await store.close()

    anyio.run(scenario)
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("sessions.sqlite3*"))
    assert stored and OTHER.encode() not in stored


# --- over HTTP, in process: the app with a trace folder, the web's own spans written there ---------------


@pytest.fixture
def traced(make_browser: Any, tmp_path: Path) -> Any:
    return make_browser(trace_file=tmp_path / "traces" / "web.jsonl")


def test_the_chain_links_to_its_own_trace_shown_with_every_tier(traced: Any, tmp_path: Path) -> None:
    traced.sign_in("alice", "/chain")
    chain = traced.get("/chain")
    link = re.search(r'href="/traces/([0-9a-f]{32})">See this request', chain.text)
    assert chain.status_code == 200 and link and link.group(1) == chain.headers["x-correlation-id"]
    trace = link.group(1)
    web = {s["kind"]: s for s in read_spans(tmp_path / "traces", {trace})}
    # What the api and downstream-api would write for the same request, children of the web's call.
    start, end = web["SERVER"]["start_ns"], web["SERVER"]["end_ns"]
    api = span(trace, "a1", web["CLIENT"]["span_id"], "api", start + 1, end - 4)
    down = span(trace, "d1", "a1", "downstream-api", start + 2, end - 3)
    db = span(trace, "q1", "d1", "downstream-api", start + 3, end - 2, **{"db.system": "sqlite"})
    write(tmp_path / "traces", "api.jsonl", api)
    write(tmp_path / "traces", "downstream-api.jsonl", down, db)
    page = traced.get(f"/traces/{trace}")
    assert page.status_code == 200, page.text
    rows = re.findall(r'<tr class="lane-([a-z-]+)" id="span-(\w+)" data-span="\w+" data-parent="(\w*)"', page.text)
    lanes = {lane for lane, _, _ in rows}
    assert lanes == {"web", "api", "downstream-api", "database"}, rows
    ids = {span_id for _, span_id, _ in rows}
    assert all(parent in ids for _, _, parent in rows if parent)  # every parent drawn above its children
    assert "secret" not in page.text and "Bearer" not in page.text
    for slug in ("identity-iam-development-best-practices", "api-calls-api"):  # the articles it demonstrates
        assert f'href="https://learn.microsoft.com/security/zero-trust/develop/{slug}"' in page.text
    assert page.headers["cache-control"] == "no-store"
    # The list of one's own traces names the /chain request.
    assert f'href="/traces/{trace}"' in traced.get("/traces").text


def test_someone_elses_trace_is_not_found_even_when_it_is_in_the_files(
    traced: Any, make_browser: Any, tmp_path: Path
) -> None:
    traced.sign_in("alice", "/chain")
    alices = traced.get("/tasks").headers["x-correlation-id"]
    bob = make_browser(trace_file=tmp_path / "traces" / "web.jsonl")
    bob.sign_in("bob", "/tasks")
    bobs = bob.get("/tasks").headers["x-correlation-id"]
    assert bob.get(f"/traces/{bobs}").status_code == 200
    for stranger_asks in (bob.get(f"/traces/{alices}"), traced.get(f"/traces/{bobs}")):
        assert stranger_asks.status_code == 404
        assert "No trace of yours with this id" in stranger_asks.text
        assert "GET /tasks" not in stranger_asks.text
    assert alices not in bob.get("/traces").text


def test_a_malformed_trace_id_is_a_clear_400(traced: Any) -> None:
    traced.sign_in("alice", "/tasks")
    for bad in ("xyz", "A" * 32, "0" * 32, "1" * 33, "%2e%2e", "web.jsonl", "1" * 31 + "%00"):
        r = traced.get(f"/traces/{bad}")
        assert r.status_code == 400, (bad, r.status_code)
        assert "32 lowercase hexadecimal digits" in r.text
    # A path with more segments is no trace page at all.
    assert traced.get("/traces/%2e%2e%2fweb.jsonl").status_code == 404


def test_trace_pages_need_a_session(traced: Any) -> None:
    for path in ("/traces", f"/traces/{ALICE_TRACE}"):
        r = traced.get(path)
        assert r.status_code == 302 and r.headers["location"].startswith("/auth/login?next=%2Ftraces")


def test_a_new_session_does_not_inherit_the_old_ones_traces(traced: Any) -> None:
    traced.sign_in("alice", "/tasks")
    old = traced.get("/tasks").headers["x-correlation-id"]
    assert traced.get(f"/traces/{old}").status_code == 200
    traced.post("/auth/logout", data={"csrf_token": traced.csrf("/")})
    traced.sign_in("alice", "/tasks")
    assert traced.get(f"/traces/{old}").status_code == 404


def test_an_error_pages_reference_links_to_its_trace_when_it_is_yours(
    make_browser: Any, tmp_path: Path, nothing_listening: str
) -> None:
    browser = make_browser(trace_file=tmp_path / "traces" / "web.jsonl", api_url=nothing_listening)
    browser.sign_in("alice", "/tasks")
    failed = browser.get("/tasks")
    cid = failed.headers["x-correlation-id"]
    assert failed.status_code == 503 and f'<a href="/traces/{cid}">' in failed.text
    assert browser.get(f"/traces/{cid}").status_code == 200
    # A page nobody's session loaded (no such route) has a reference but no trace to show.
    missing = browser.get("/nowhere")
    assert missing.status_code == 404 and "/traces/" not in missing.text


def test_without_a_trace_folder_the_pages_say_where_traces_are(browser: Any) -> None:
    browser.sign_in("alice", "/tasks")
    listing = browser.get("/traces")
    assert listing.status_code == 200 and "Application Insights" in listing.text
    assert "https://learn.microsoft.com/azure/azure-monitor/app/transaction-search-and-diagnostics" in listing.text
    cid = browser.get("/tasks").headers["x-correlation-id"]
    assert browser.get(f"/traces/{cid}").status_code == 404
    assert browser.get("/traces/nope").status_code == 400
    assert "/traces/" not in browser.get("/chain").text  # no link to a page that can't show it


def test_a_request_whose_trace_is_not_kept_is_not_offered(make_browser: Any, tmp_path: Path) -> None:
    # Sampling keeps no new trace: there would be nothing to show, so no link and no entry.
    browser = make_browser(trace_file=tmp_path / "traces" / "web.jsonl", trace_samples_per_second=0)
    browser.sign_in("alice", "/chain")
    chain = browser.get("/chain")
    assert chain.status_code == 200 and "See this request" not in chain.text
    assert browser.get(f"/traces/{chain.headers['x-correlation-id']}").status_code == 404
    assert "No request of yours yet" in browser.get("/traces").text


def test_the_trace_folder_is_set_or_that_of_the_apps_own_trace_file(settings: Any, tmp_path: Path) -> None:
    assert settings.traces_folder is None  # Azure: no file, no folder; the pages point to Application Insights
    own = settings.model_copy(update={"trace_file": tmp_path / "traces" / "web.jsonl"})
    assert own.traces_folder == tmp_path / "traces"
    named = own.model_copy(update={"trace_dir": tmp_path / "elsewhere"})
    assert named.traces_folder == tmp_path / "elsewhere"


def test_an_own_trace_with_no_span_written_yet_says_so(make_browser: Any, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    browser = make_browser(trace_file=tmp_path / "traces" / "web.jsonl", trace_dir=tmp_path / "empty")
    browser.sign_in("alice", "/tasks")
    cid = browser.get("/tasks").headers["x-correlation-id"]
    page = browser.get(f"/traces/{cid}")
    assert page.status_code == 200 and "No span of this request has been written yet" in page.text
    assert "(no span yet)" in browser.get("/traces").text
