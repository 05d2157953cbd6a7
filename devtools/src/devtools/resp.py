"""The one Redis command the token front (devtools.redis_front) reads itself: the first a client sends.

A client command is a RESP array of bulk strings (`*2\\r\\n$4\\r\\nAUTH\\r\\n...`) or an inline line
(`PING\\r\\n`), as Redis itself accepts both. Everything after the first command is piped unread, so this
reader is deliberately small and strict: bounded in size and argument count, no other RESP type, and
anything malformed is a ProtocolError (the front answers as Redis does and closes the connection).
"""

from __future__ import annotations

# AUTH with a user and a token of a few KB, or HELLO 3 AUTH ... SETNAME ...: far below both.
MAX_COMMAND_BYTES = 16 * 1024
MAX_ARGUMENTS = 16
_CRLF = b"\r\n"


class ProtocolError(ValueError):
    pass


def encode_command(*args: bytes) -> bytes:
    """`args` as a RESP array of bulk strings, as a client sends them."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


def read_command(buffer: bytes) -> tuple[list[bytes], int] | None:
    """The first command in `buffer` and how many bytes it took; None if it is not complete yet.

    ProtocolError if it is malformed, or if it is, or would be, larger than MAX_COMMAND_BYTES.
    """
    if not buffer:
        return None
    if buffer[:1] != b"*":
        return _inline(buffer)
    count, pos = _number(buffer, 1)
    if count is None:
        return None
    if not 0 < count <= MAX_ARGUMENTS:
        raise ProtocolError("invalid multibulk length")
    args: list[bytes] = []
    for _ in range(count):
        if pos >= len(buffer):
            return None
        if buffer[pos : pos + 1] != b"$":
            raise ProtocolError(f"expected '$', got '{chr(buffer[pos])}'")
        size, pos = _number(buffer, pos + 1)
        if size is None:
            return None
        if not 0 <= size <= MAX_COMMAND_BYTES or pos + size + 2 > MAX_COMMAND_BYTES:
            raise ProtocolError("invalid bulk length")
        if len(buffer) < pos + size + 2:
            return None
        if buffer[pos + size : pos + size + 2] != _CRLF:
            raise ProtocolError("bulk string not followed by CRLF")
        args.append(buffer[pos : pos + size])
        pos += size + 2
    return args, pos


def _number(buffer: bytes, start: int) -> tuple[int | None, int]:
    """The decimal number from `start` to CRLF, and where what follows starts; None if the CRLF is not here."""
    end = buffer.find(_CRLF, start, start + 12)
    if end < 0:
        if len(buffer) - start >= 12:
            raise ProtocolError("invalid length")
        return None, start
    digits = buffer[start:end]
    if not digits.isdigit() or len(digits) > 10:
        raise ProtocolError("invalid length")
    return int(digits), end + 2


def _inline(buffer: bytes) -> tuple[list[bytes], int] | None:
    end = buffer.find(b"\n", 0, MAX_COMMAND_BYTES)
    if end < 0:
        if len(buffer) >= MAX_COMMAND_BYTES:
            raise ProtocolError("too big inline request")
        return None
    args = buffer[:end].rstrip(b"\r").split()
    if not args or len(args) > MAX_ARGUMENTS:
        raise ProtocolError("invalid inline request")
    return args, end + 1
