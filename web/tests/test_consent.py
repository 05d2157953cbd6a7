"""The write that waits for consent: what may be stored, and read back, in the pending sign-in.

It comes back from the web app's own sealed store, so a bad one means a bug or tampering: it is
refused whole (nothing is done) rather than repaired.
"""

from __future__ import annotations

from typing import Any

import pytest
from web.consent import Incremental, PendingWrite, needs_admin_approval
from web.token_caches import Acquired

pytestmark = pytest.mark.guidance("acquire-application-authorization-to-access-resources")

OID, TID = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912", "9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d"


@pytest.mark.parametrize(
    "write",
    [
        PendingWrite("add", title="Water the plants"),
        PendingWrite("complete", task_id="abc-1"),
        PendingWrite("delete", task_id="x_2"),
        PendingWrite("share", task_id="abc-1", group_id="2a3b4c5d-6e7f-4081-9213-243546576879"),
        PendingWrite("unshare", task_id="abc-1"),
    ],
)
def test_a_write_survives_the_round_trip(write: PendingWrite) -> None:
    asked = Incremental(OID, TID, write)
    assert Incremental.from_dict(asked.to_dict()) == asked
    assert Incremental.from_dict(Incremental(OID, TID).to_dict()) == Incremental(OID, TID)


@pytest.mark.parametrize(
    "write",
    [
        {"action": "add", "title": ""},
        {"action": "add", "title": "x" * 201},
        {"action": "add", "title": "ok", "task_id": "abc"},
        {"action": "complete", "task_id": "../../admin"},
        {"action": "delete", "task_id": "abc", "title": "extra"},
        {"action": "delete"},
        {"action": "share", "task_id": "abc"},
        {"action": "share", "task_id": "abc", "group_id": "everyone"},
        {"action": "share", "task_id": "abc", "group_id": ["2a3b4c5d-6e7f-4081-9213-243546576879"]},
        {"action": "unshare", "task_id": "abc", "group_id": "2a3b4c5d-6e7f-4081-9213-243546576879"},
        {"action": "complete", "task_id": "abc", "group_id": "2a3b4c5d-6e7f-4081-9213-243546576879"},
        {"action": "add", "title": 5},
        "add",
    ],
)
def test_a_malformed_stored_write_is_refused_whole(write: Any) -> None:
    assert Incremental.from_dict({"oid": OID, "tid": TID, "write": write}) is None


@pytest.mark.parametrize("data", [None, {}, {"oid": OID}, {"oid": OID, "tid": 7}, {"tid": TID, "write": None}])
def test_who_asked_is_required(data: Any) -> None:
    assert Incremental.from_dict(data) is None


def test_needs_admin_approval_is_aadsts90094_only() -> None:
    assert needs_admin_approval(Acquired(None, "invalid_grant", (90094,)))
    assert not needs_admin_approval(Acquired(None, "invalid_grant", (65001,)))
    assert not needs_admin_approval(Acquired("token"))
