"""What a JWT looks like in text, so pages, logs and tool output can be kept free of tokens; and log lines that
text from a request can't break into two."""

from __future__ import annotations

import logging
import re
from typing import Any

# header.payload.signature, the first two base64url JSON objects ("eyJ" is `{"` encoded).
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
# What ends a line or moves a terminal's cursor: C0 controls (CR, LF, ESC...), DEL, C1 controls (NEL among
# them) and the Unicode line and paragraph separators, which str.splitlines and many log viewers break on.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Every line of a traceback starts with this, so none of them can pass for a record of its own.
TRACEBACK_INDENT = "    "


def redact_tokens(text: str, placeholder: str = "[token]") -> str:
    return JWT_SHAPE.sub(placeholder, text)


def escape_controls(text: str) -> str:
    """Control characters as visible escapes (`\\n`, `\\r`, `\\x1b`): text a caller chose (a path, a user name)
    can't start a line that reads like one of the log's own, nor rewrite what a terminal shows."""
    if not CONTROL.search(text):
        return text
    return CONTROL.sub(lambda found: found[0].encode("unicode_escape").decode("ascii"), text)


def _indented(text: str) -> str:
    """A traceback (or stack) with each line indented and escaped: its last line quotes the exception's
    message, which may quote a request."""
    return "\n".join(TRACEBACK_INDENT + escape_controls(line) for line in text.rstrip("\n").split("\n"))


# zt: token-management
def install_log_redaction() -> None:
    """Every log record of this process, from any library, has token-shaped text replaced and control
    characters escaped, so one record is one line and no token is in it.

    Defence in depth: the code logs no token, but a library's error message or a traceback can quote one (a
    request body, a header, an exception's repr); and text from a request (a path, a bind name) with a CR or
    LF in it would otherwise write a second, forged line. Done when the record is made, it covers every logger
    and handler, uvicorn's included. Installed once by `zerotrust.serve` (and the emulator and dev servers).
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts_tokens", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        message = record.getMessage()
        cleaned = escape_controls(redact_tokens(message))
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = _indented(redact_tokens(logging.Formatter().formatException(record.exc_info)))
        if record.stack_info:
            record.stack_info = _indented(redact_tokens(record.stack_info))
        return record

    factory.redacts_tokens = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
