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


def json_body(model: type[M], *, max_bytes: int = MAX_BODY_BYTES) -> Callable[[Request], Awaitable[M]]:
    async def parse(request: Request) -> M:
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != "application/json":
            raise HTTPException(415, "Send the body as application/json.")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise HTTPException(413, "The request body is too large.")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise HTTPException(413, "The request body is too large.")
            chunks.append(chunk)
        try:
            return model.model_validate_json(b"".join(chunks))
        except ValidationError as exc:
            # Say what is wrong and where, without echoing the caller's input back.
            errors = exc.errors(include_url=False, include_input=False, include_context=False)
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None

    return parse


def documented_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route reading `json_body(model)`: the schema shows (and fuzzers send) the
    body the route reads, although FastAPI no longer sees it as a declared parameter."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


__all__ = ["MAX_BODY_BYTES", "documented_body", "json_body"]
