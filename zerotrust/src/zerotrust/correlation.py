"""A correlation id for every request: the W3C trace id of its server span (zerotrust.tracing), echoed in
X-Correlation-Id, carried down the chain in `traceparent`, written in every audit line and every error."""

from __future__ import annotations

import uuid

from fastapi import Request

from .tracing import HEADER

__all__ = ["HEADER", "correlation_id"]


def correlation_id(request: Request) -> str:
    return str(getattr(request.state, "correlation_id", "") or uuid.uuid4().hex)
