"""JSON request bodies read as a dependency, so they are read only once the caller is authorized.

FastAPI reads and parses a declared body before it runs any dependency: a malformed or huge body
from an anonymous caller would get a 422 (or be read whole) before the 401 it deserves. Declared
after the permission dependency instead, the body is read last, capped in size while it streams
(chunked uploads included) and validated by the model:

    @router.post("/things")
    async def create(principal: Writer, body: Annotated[ThingIn, Depends(json_body(ThingIn))]): ...
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

MAX_BODY_BYTES = 64 * 1024


class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, "The request body is too large.")


def declared_too_large(request: Request, max_bytes: int) -> bool:
    """A Content-Length over the cap (or not a number) is refused before a byte is read."""
    declared = request.headers.get("content-length")
    return declared is not None and (not declared.isdigit() or int(declared) > max_bytes)


async def read_body(request: Request, max_bytes: int = MAX_BODY_BYTES) -> bytes:
    """The whole body, counted as it streams (chunked uploads too), or BodyTooLarge past `max_bytes`."""
    if declared_too_large(request, max_bytes):
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise BodyTooLarge
    return bytes(body)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def json_body(model: type[M], *, max_bytes: int = MAX_BODY_BYTES) -> Callable[[Request], Awaitable[M]]:
    async def parse(request: Request) -> M:
        if media_type(request) != "application/json":
            raise HTTPException(415, "Send the body as application/json.")
        body = await read_body(request, max_bytes)
        try:
            return model.model_validate_json(body)
        except ValidationError as exc:
            # Say what is wrong and where, without echoing the caller's input back.
            errors = exc.errors(include_url=False, include_input=False, include_context=False)
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None

    return parse


def documented_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route reading `json_body(model)`: the schema shows (and fuzzers send) the
    body the route reads, although FastAPI no longer sees it as a declared parameter."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


__all__ = ["MAX_BODY_BYTES", "BodyTooLarge", "documented_body", "json_body", "media_type", "read_body"]
