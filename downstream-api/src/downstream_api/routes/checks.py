"""Input checks every route module of this tier shares: ids in paths and one-line text fields."""

from __future__ import annotations

import re
import unicodedata

from fastapi import HTTPException, status
from zerotrust.ids import OBJECT_ID

# Ids this tier makes itself: random UUID4s, which reveal nothing (no counter, no time, no owner).
__all__ = ["OBJECT_ID", "RANDOM_ID", "checked_id", "not_found", "printable"]

RANDOM_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def not_found(noun: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"No such {noun}.")


def checked_id(value: str, pattern: re.Pattern[str], noun: str) -> str:
    """An id that cannot be one of ours is answered exactly like an unknown one (404): a malformed id
    and another tenant's id must be indistinguishable, and neither reaches the database."""
    if not pattern.match(value):
        raise not_found(noun)
    return value


def printable(value: str) -> str:
    # Control characters and lone surrogates (valid in JSON, invalid in UTF-8) have no place in
    # a one-line field; PostgreSQL would refuse NUL and the database must not be the one to say so.
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise ValueError("must not contain control characters")
    return value
