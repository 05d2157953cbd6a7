"""What a JWT looks like in text, so pages, logs and tool output can be kept free of tokens."""

from __future__ import annotations

import re

# header.payload.signature, the first two base64url JSON objects ("eyJ" is `{"` encoded).
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")


def redact_tokens(text: str, placeholder: str = "[token]") -> str:
    return JWT_SHAPE.sub(placeholder, text)
