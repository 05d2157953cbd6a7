"""Log redaction: whatever a library logs, a token-shaped string never reaches a log line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from zerotrust.redact import CONTROL, JWT_SHAPE, install_log_redaction

pytestmark = pytest.mark.guidance("token-management")

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz"  # pragma: allowlist secret


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    factory = logging.getLogRecordFactory()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger = logging.getLogger("some.library")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    install_log_redaction()
    install_log_redaction()  # idempotent: one wrapper, not two
    yield out
    logger.removeHandler(handler)
    logging.setLogRecordFactory(factory)


def test_a_token_in_a_message_its_arguments_or_a_traceback_is_redacted(captured: io.StringIO) -> None:
    log = logging.getLogger("some.library")
    log.info("sending Authorization: Bearer %s", TOKEN)
    log.warning(f"refused {TOKEN}")
    try:
        raise ValueError(f"bad token {TOKEN!r}")
    except ValueError:
        log.exception("token endpoint answered")
    text = captured.getvalue()
    assert not JWT_SHAPE.search(text), text
    assert text.count("[token]") == 3 and "ValueError: bad token" in text
    assert "sending Authorization: Bearer [token]" in text


def test_other_messages_are_untouched(captured: io.StringIO) -> None:
    logging.getLogger("some.library").info("user %s read %d tasks", "3b4c5d6e", 4)
    assert captured.getvalue() == "some.library user 3b4c5d6e read 4 tasks\n"


# Each value would write a second line reading like a record of the log's own, or rewrite a terminal.
FORGERIES = [
    "alice\nsome.library forged: bind accepted for role postgres",
    "alice\r\nsome.library forged",
    "alice\rsome.library forged",
    "alice\x85some.library forged",
    "alice\u2028some.library forged",
    "alice\x1b[2K\x1b[1Gsome.library forged",
    "alice\x0bsome.library\x0cforged\x00",
]


@pytest.mark.parametrize("value", FORGERIES, ids=repr)
def test_a_control_character_in_a_message_or_its_arguments_is_escaped(captured: io.StringIO, value: str) -> None:
    log = logging.getLogger("some.library")
    log.warning("bind refused for role %s", value)
    log.warning(f"request to /{value}")
    lines = captured.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert all(line.startswith("some.library ") for line in lines)
    # Nothing of the value's controls is left but its escapes: the two newlines are the records' own.
    assert CONTROL.findall(captured.getvalue()) == ["\n", "\n"]
    assert lines[0].startswith("some.library bind refused for role alice\\")


def test_a_traceback_quoting_a_request_starts_no_line_of_its_own(captured: io.StringIO) -> None:
    log = logging.getLogger("some.library")
    try:
        raise ValueError("no route for /x\nsome.library forged: all is well")
    except ValueError:
        log.exception("unexpected error")
    lines = captured.getvalue().splitlines()
    # The record's own line, then the traceback, every line of it indented: nothing else starts a line.
    assert lines[0] == "some.library unexpected error"
    assert all(line.startswith("    ") for line in lines[1:]), lines
    assert "    ValueError: no route for /x" in lines and "    some.library forged: all is well" in lines
