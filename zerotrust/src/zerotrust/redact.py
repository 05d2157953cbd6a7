"""What a JWT looks like in text, so pages, logs and tool output can be kept free of tokens."""

from __future__ import annotations

import logging
import re
from typing import Any

# header.payload.signature, the first two base64url JSON objects ("eyJ" is `{"` encoded).
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")


def redact_tokens(text: str, placeholder: str = "[token]") -> str:
    return JWT_SHAPE.sub(placeholder, text)


# zt: token-management
def install_log_redaction() -> None:
    """Every log record of this process, from any library, has token-shaped text replaced.

    Defence in depth: the code logs no token, but a library's error message or a traceback can
    quote one (a request body, a header, an exception's repr). Redacting when the record is made
    covers every logger and handler, uvicorn's included. Installed once by `zerotrust.serve`.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts_tokens", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        message = record.getMessage()
        redacted = redact_tokens(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact_tokens(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact_tokens(record.stack_info)
        return record

    factory.redacts_tokens = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
