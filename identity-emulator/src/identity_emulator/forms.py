"""Request plumbing shared by the routers: the emulator instance, bounded form parsing, channels."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from fastapi import Request
from zerotrust.bodies import BodyTooLarge, media_type, read_body

from .errors import EntraError

if TYPE_CHECKING:
    from .core import Emulator

# Entra caps request bodies too; real token requests are a few kilobytes (an assertion included).
MAX_FORM_BYTES = 64 * 1024
MAX_FIELDS = 64


def emulator(request: Request) -> Emulator:
    emu: Emulator = request.app.state.emulator
    return emu


async def read_form(request: Request) -> dict[str, str]:
    """Parse an application/x-www-form-urlencoded body with hard limits; first value of a name wins."""
    if media_type(request) != "application/x-www-form-urlencoded":
        raise EntraError("invalid_request", 9002313)
    try:
        body = await read_body(request, MAX_FORM_BYTES)
    except BodyTooLarge:
        raise EntraError("invalid_request", 9002313, status=413) from None
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise EntraError("invalid_request", 9002313) from None
    form: dict[str, str] = {}
    for key, value in pairs:
        if "\x00" in key or "\x00" in value:
            raise EntraError("invalid_request", 9002313)
        form.setdefault(key, value)
    return form


def require_back_channel(request: Request) -> None:
    """Tokens are only ever handed out over TLS, never on the http front channel."""
    if request.url.scheme != "https":
        raise EntraError("invalid_request", 9002313, status=403)
