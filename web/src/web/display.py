"""Template filters that turn what the tiers store into what a person reads: a time for people, and the
tour's `code` spans. Both escape everything they are given and add only markup of their own."""

from __future__ import annotations

import datetime as dt
import re

from markupsafe import Markup, escape

# A code span: text between two backticks, on one line or across a folded one.
_CODE_SPAN = re.compile(r"`([^`]+)`")
# English month names whatever the server's locale (%b follows it).
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _as_utc(value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        moment = dt.datetime.fromtimestamp(value, dt.UTC)
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    # The tiers store UTC; a time without a zone (SQLite keeps none) is UTC too.
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def when(value: object) -> Markup:
    """`2 Dec 2026, 17:45 UTC` in a <time> whose datetime is the ISO value (seconds, no fraction), for
    machines and assistive technology; a value that is not a time is shown escaped, as it came."""
    moment = _as_utc(value)
    if moment is None:
        return escape("" if value is None else str(value))
    machine = moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    person = f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}, {moment:%H:%M} UTC"
    return Markup('<time datetime="{}">{}</time>').format(machine, person)


def code_spans(text: object) -> Markup:
    """Backticks become <code> and nothing else is markup: each piece is escaped where it goes, so a
    `<script>` in the tour stays text, inside code or out. An unpaired backtick stays a backtick."""
    # split() with one group alternates: text, code, text, ...
    pieces = _CODE_SPAN.split("" if text is None else str(text))
    return Markup("").join(
        Markup("<code>{}</code>").format(piece) if i % 2 else escape(piece) for i, piece in enumerate(pieces)
    )
