"""A request's trace through the tiers, for the person who made it: which traces are theirs, and the spans.

An observability view, not a security decision: the spans say which routes ran, for how long, and how the
tiers called each other (never a token, a claim or a body). Still, a trace shows only to the session that
made the request: the session remembers its recent trace ids (sealed, in the session store, beside the
session), and the page takes no other. The spans come from the JSON-lines files the tiers write locally
(zerotrust.tracing, `<PREFIX>_TRACE_FILE`); in Azure, Application Insights' transaction view is the place.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .session_store import Sealer, SessionStore, StoredRecord, record_key
from .sessions import Session

# A W3C trace id: 32 lowercase hex digits, not all zero (zerotrust.tracing writes them so).
TRACE_ID = re.compile(r"[0-9a-f]{32}")
# The traces a session remembers: its most recent requests, enough to find the last few pages' traces.
REMEMBERED = 20
# Spans are appended for every request: only each file's newest part is read (the remembered traces
# are recent), so the page costs the same on a stack that has run for days.
TAIL_BYTES = 4 * 1024 * 1024
# The lanes (colours) of the waterfall, in the order a request goes down; any other service is "other".
LANES = ("web", "api", "downstream-api", "database", "other")
# The span attributes a page shows: what ran and how it ended, nothing a person did not see already.
SHOWN_ATTRIBUTES = ("http.route", "http.response.status_code", "server.address", "db.system")


def is_trace_id(value: str) -> bool:
    return TRACE_ID.fullmatch(value) is not None and value != "0" * 32


class RecentTraces:
    """Each session's recent trace ids, sealed in the session store under a key of their own (the session id's
    hash with a suffix: a copy of the store yields neither). Gone with the session: purged as it is."""

    def __init__(self, store: SessionStore, sealer: Sealer) -> None:
        self.store, self.sealer = store, sealer

    @staticmethod
    def _key(session: Session) -> str:
        return record_key(f"{session.id}|traces")

    async def of(self, session: Session) -> list[str]:
        """The session's remembered trace ids, newest first."""
        key = self._key(session)
        record = await self.store.get(key)
        raw = self.sealer.open(record.data, f"{key}|traces") if record is not None else None
        found = json.loads(raw) if raw is not None else None
        return [t for t in found if isinstance(t, str) and is_trace_id(t)] if isinstance(found, list) else []

    async def remember(self, session: Session, trace_id: str, now: float) -> list[str]:
        """Adds `trace_id` (newest first, at most REMEMBERED); the ids the session now has."""
        kept = [trace_id, *(t for t in await self.of(session) if t != trace_id)][:REMEMBERED]
        key = self._key(session)
        sealed = self.sealer.seal(json.dumps(kept).encode(), f"{key}|traces")
        await self.store.put(StoredRecord(key, session.created_at, now, sealed))
        return kept

    async def forget(self, session: Session) -> None:
        await self.store.delete(self._key(session))


def read_spans(folder: Path, trace_ids: set[str]) -> list[dict[str, Any]]:
    """The spans of `trace_ids` in the newest part of every tier's file in `folder` (blocking: run in a thread)."""
    spans: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.jsonl")):
        try:
            with path.open("rb") as f:
                size = f.seek(0, 2)
                f.seek(max(0, size - TAIL_BYTES))
                tail = f.read()
        except OSError:
            continue
        for line in tail.splitlines():
            # A cheap test first: most lines are other requests'.
            if not any(t.encode() in line for t in trace_ids):
                continue
            try:
                span = json.loads(line)
            except ValueError:
                continue  # the first line of a tail may be cut, a line being written may be short
            if isinstance(span, dict) and span.get("trace_id") in trace_ids and _well_formed(span):
                spans.append(span)
    return spans


def _well_formed(span: dict[str, Any]) -> bool:
    start, end = span.get("start_ns"), span.get("end_ns")
    return type(start) is int and type(end) is int and start <= end and isinstance(span.get("span_id"), str)


@dataclass(frozen=True)
class Bar:
    """One span as a row of the waterfall: offsets in percent of the trace's duration, depth for the indent."""

    name: str
    service: str
    kind: str
    status: str
    depth: int
    left: float
    width: float
    start_ms: float
    duration_ms: float
    span_id: str
    parent_id: str | None
    attributes: dict[str, Any]

    @property
    def lane(self) -> str:
        """The colour it is drawn in: its tier's, the database's for a query, one for any other service."""
        if "db.system" in self.attributes:
            return "database"
        return self.service if self.service in LANES else "other"


def waterfall(spans: list[dict[str, Any]]) -> list[Bar]:
    """The spans of one trace, each after its parent (siblings by start time), placed on one time axis from
    the earliest start to the latest end. A span whose parent is missing (not sampled, or not yet written)
    is drawn as a root."""
    if not spans:
        return []
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in sorted(spans, key=lambda s: (s["start_ns"], s["span_id"])):
        parent = span.get("parent_id")
        parent = parent if parent in ids and parent != span["span_id"] else None
        children.setdefault(parent, []).append(span)
    start = min(s["start_ns"] for s in spans)
    total = max(max(s["end_ns"] for s in spans) - start, 1)
    bars: list[Bar] = []

    def place(parent: str | None, depth: int) -> None:
        for span in children.get(parent, []):
            found = span.get("attributes")
            attributes: dict[str, Any] = found if isinstance(found, dict) else {}
            bars.append(
                Bar(
                    name=str(span.get("name")),
                    service=str(span.get("service")),
                    kind=str(span.get("kind")),
                    status=str(span.get("status")),
                    depth=depth,
                    left=round(100 * (span["start_ns"] - start) / total, 2),
                    width=round(100 * (span["end_ns"] - span["start_ns"]) / total, 2),
                    start_ms=round((span["start_ns"] - start) / 1e6, 1),
                    duration_ms=round((span["end_ns"] - span["start_ns"]) / 1e6, 1),
                    span_id=span["span_id"],
                    parent_id=span.get("parent_id"),
                    attributes={k: attributes[k] for k in SHOWN_ATTRIBUTES if k in attributes},
                )
            )
            place(span["span_id"], depth + 1)

    place(None, 0)
    return bars
