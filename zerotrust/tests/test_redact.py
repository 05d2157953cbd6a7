"""Log redaction: whatever a library logs, a token-shaped string never reaches a log line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from zerotrust.redact import JWT_SHAPE, install_log_redaction

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
