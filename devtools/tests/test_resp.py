"""The front's reader of a client's first command (devtools.resp): what a client sends is read exactly,
in whatever pieces it arrives; anything else is a ProtocolError, never another exception, and never a read
past the limits."""

from __future__ import annotations

import pytest
from devtools.resp import MAX_ARGUMENTS, MAX_COMMAND_BYTES, ProtocolError, encode_command, read_command
from hypothesis import given
from hypothesis import strategies as st

ARGS = st.lists(st.binary(max_size=300), min_size=1, max_size=MAX_ARGUMENTS)


@given(ARGS, st.binary(max_size=50), st.data())
def test_a_command_is_read_exactly_whatever_pieces_it_arrives_in(
    args: list[bytes], after: bytes, data: st.DataObject
) -> None:
    encoded = encode_command(*args)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    assert read_command(encoded[:cut]) is None  # not complete yet: wait for more
    assert read_command(encoded + after) == (args, len(encoded))  # what follows is left for the pipe


@given(st.binary(max_size=2000))
def test_any_bytes_are_a_command_more_to_read_or_a_protocol_error(garbage: bytes) -> None:
    try:
        found = read_command(garbage)
    except ProtocolError:
        return
    if found is not None:
        args, used = found
        assert 0 < used <= len(garbage) and 0 < len(args) <= MAX_ARGUMENTS


WORD = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40).map(str.encode)


@given(st.lists(WORD, min_size=1, max_size=5).filter(lambda args: not args[0].startswith(b"*")))
def test_an_inline_command_is_read_as_redis_reads_it(args: list[bytes]) -> None:
    line = b" ".join(args) + b"\r\n"
    assert read_command(line) == (args, len(line))


@pytest.mark.parametrize(
    "data",
    [
        b"*0\r\n",
        b"*17\r\n",
        b"*-1\r\n",
        b"*1\r\n:1\r\n",
        b"*1\r\n$-1\r\n",
        b"*1\r\n$4\r\nPINGxx",
        b"*1\r\n$%d\r\n" % (MAX_COMMAND_BYTES + 1),
        b"*99999999999999\r\n",
        b"*1\r\n$123456789012345",
        b"x" * MAX_COMMAND_BYTES,
        b"\r\n",
    ],
)
def test_malformed_or_oversized_commands_are_refused(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        read_command(data)


def test_a_command_may_not_grow_past_the_limit_however_it_is_split() -> None:
    # Many bulk strings that are each small but add up to more than the limit.
    args = [b"x" * 2000] * 9
    with pytest.raises(ProtocolError):
        read_command(encode_command(*args))
