"""Form posts, read with a cap while they stream.

Starlette's `request.form()` reads whatever arrives: a chunked post (no Content-Length) of many
megabytes, or a thousand fields, is read whole before anything can refuse it, and `/auth/callback`
takes posts from anyone. Every form here is read through `read_form` instead, over the one capped body
reader (zerotrust.bodies): URL-encoded only (the pages post nothing else, nor does the identity
provider's form_post), at most MAX_FORM_BYTES counted as the bytes arrive, at most MAX_FIELDS fields,
valid UTF-8.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from zerotrust.bodies import BodyTooLarge, media_type, read_body

# The largest legitimate post is the identity provider's form_post (an authorization code, state,
# session_state and, on failure, an error description): a few kilobytes.
MAX_FORM_BYTES = 16 * 1024
MAX_FIELDS = 20
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


class FormRefused(Exception):
    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(title)
        self.status, self.title, self.detail = status, title, detail


def too_large() -> FormRefused:
    return FormRefused(413, "Too much data", "That form was larger than this app accepts.")


async def read_form(request: Request) -> FormData:
    try:
        body = await read_body(request, MAX_FORM_BYTES)
    except BodyTooLarge:
        raise too_large() from None
    if not body:
        return FormData()
    if media_type(request) != FORM_MEDIA_TYPE:
        raise FormRefused(415, "Unsupported form", "This app takes forms as its own pages send them.")
    try:
        pairs: list[tuple[str, str | UploadFile]] = list(
            parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
        )
    except (UnicodeDecodeError, ValueError):
        raise FormRefused(400, "Bad request", "That form is not valid here.") from None
    return FormData(pairs)
