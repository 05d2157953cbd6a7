"""A few lines of ASGI client for the lifted units' checks: the projects they run in have only what each
unit declares, so not even an HTTP client library (this file is copied in beside the unit)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


class Answer:
    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status, self.body = status, body
        self.headers = {k.decode().lower(): v.decode() for k, v in headers}
        self.cookies = [v.decode() for k, v in headers if k.lower() == b"set-cookie"]


async def request(
    app: Any, method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes = b""
) -> Answer:
    parts = urlsplit(url)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "server": ("app.test", 443),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        "path": parts.path,
        "raw_path": parts.path.encode(),
        "query_string": parts.query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    sent: list[dict[str, Any]] = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return pending.pop() if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return Answer(start["status"], start.get("headers", []), b"".join(m.get("body", b"") for m in sent[1:]))
