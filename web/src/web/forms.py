"""Form posts, read with a cap while they stream.

Starlette's `request.form()` reads whatever arrives: a chunked post (no Content-Length) of many
megabytes, or a thousand fields, is read whole before anything can refuse it, and `/auth/callback`
takes posts from anyone. Every form here is read through `read_form` instead: URL-encoded only
(the pages post nothing else, nor does the identity provider's form_post), at most MAX_FORM_BYTES
counted as the bytes arrive, at most MAX_FIELDS fields, valid UTF-8.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import Request
from starlette.datastructures import FormData, UploadFile

# The largest legitimate post is the identity provider's form_post (an authorization code, state,
# session_state and, on failure, an error description): a few kilobytes.
MAX_FORM_BYTES = 16 * 1024
MAX_FIELDS = 20
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


class FormRefused(Exception):
    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(title)
        self.status, self.title, self.detail = status, title, detail


TOO_LARGE = FormRefused(413, "Too much data", "That form was larger than this app accepts.")


def declared_too_large(request: Request) -> bool:
    """A Content-Length over the cap (or not a number) is refused before a byte is read."""
    length = request.headers.get("content-length")
    return length is not None and (not length.isdigit() or int(length) > MAX_FORM_BYTES)


async def read_form(request: Request) -> FormData:
    if declared_too_large(request):
        raise TOO_LARGE
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise TOO_LARGE
    if not body:
        return FormData()
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != FORM_MEDIA_TYPE:
        raise FormRefused(415, "Unsupported form", "This app takes forms as its own pages send them.")
    try:
        pairs: list[tuple[str, str | UploadFile]] = list(
            parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
        )
    except (UnicodeDecodeError, ValueError):
        raise FormRefused(400, "Bad request", "That form is not valid here.") from None
    return FormData(pairs)
