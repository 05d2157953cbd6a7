"""Step-up for sensitive actions, over HTTP through the chain against the emulator.

Deleting all of one's tasks, sharing a task with a group and the admin summary need authentication
context c1. A cp1 token without it gets the api's claims challenge naming c1; the claims go back to the
identity provider (unmodified MSAL), whose Conditional Access policy asks for the second factor (the
one-time code); the new token names c1 and the action is done, downstream-api checking c1 on its own
token. A token naming another context is refused as if it named none.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from zerotrust.cae import challenged_claims

from tests.authz.chain import ALICE, BOB, EVERYONE_AT_CONTOSO, Chain

pytestmark = [pytest.mark.live, pytest.mark.guidance("secure-with-cae")]

C1 = {"access_token": {"acrs": {"essential": True, "value": "c1"}}}


def _challenge_naming_c1(answer: httpx.Response) -> str:
    assert answer.status_code == 401, answer.text[:300]
    header = answer.headers["www-authenticate"]
    assert header.startswith('Bearer realm="api", error="insufficient_claims"'), header
    claims = challenged_claims(header)
    assert claims is not None and json.loads(claims) == C1
    return claims


def _send(chain: Chain, token: str, method: str, path: str, body: Any = None) -> httpx.Response:
    with chain.api.http() as http:
        return http.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})


def test_deleting_all_tasks_steps_up_then_deletes_only_the_callers(chain: Chain) -> None:
    plain = chain.signed_in(ALICE, capable=True)
    for title in ("one", "two"):
        assert _send(chain, plain, "POST", "/tasks", {"title": title}).status_code == 201
    bob = chain.signed_in(BOB, capable=True)
    assert _send(chain, bob, "POST", "/tasks", {"title": "bob's"}).status_code == 201

    claims = _challenge_naming_c1(_send(chain, plain, "DELETE", "/tasks"))
    assert len(_send(chain, plain, "GET", "/tasks").json()) >= 2  # nothing was deleted

    stepped_up = chain.signed_in(ALICE, capable=True, claims_challenge=claims)
    assert _send(chain, stepped_up, "DELETE", "/tasks").status_code == 204
    assert _send(chain, plain, "GET", "/tasks").json() == []
    assert [t["title"] for t in _send(chain, bob, "GET", "/tasks").json()] == ["bob's"]


def test_sharing_with_a_group_steps_up_and_unsharing_does_not(chain: Chain) -> None:
    plain = chain.signed_in(ALICE, capable=True)
    task = _send(chain, plain, "POST", "/tasks", {"title": "lunch"}).json()["id"]
    share = {"group_id": EVERYONE_AT_CONTOSO}
    claims = _challenge_naming_c1(_send(chain, plain, "PUT", f"/tasks/{task}/share", share))

    stepped_up = chain.signed_in(ALICE, capable=True, claims_challenge=claims)
    shared = _send(chain, stepped_up, "PUT", f"/tasks/{task}/share", share)
    assert shared.status_code == 200 and shared.json()["shared_with_group"] == EVERYONE_AT_CONTOSO
    unshared = _send(chain, plain, "PUT", f"/tasks/{task}/share", {"group_id": None})
    assert unshared.status_code == 200 and unshared.json()["shared_with_group"] is None


def test_the_admin_summary_steps_up(chain: Chain) -> None:
    # bob is assigned Tasks.Admin; the summary is read with the read scope.
    plain = chain.signed_in(BOB, capable=True, scope="Tasks.Read")
    claims = _challenge_naming_c1(_send(chain, plain, "GET", "/admin/tasks/summary"))
    stepped_up = chain.signed_in(BOB, capable=True, claims_challenge=claims, scope="Tasks.Read")
    summary = _send(chain, stepped_up, "GET", "/admin/tasks/summary")
    assert summary.status_code == 200 and summary.json()["tenant_id"] == BOB.tid


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("DELETE", "/tasks", None), ("GET", "/admin/tasks/summary", None)],
    ids=["delete-all", "admin-summary"],
)
def test_a_token_naming_another_context_is_refused(chain: Chain, method: str, path: str, body: Any) -> None:
    # Signed by the emulator's key, shaped as it issues them: only acrs differs.
    token = chain.user_token(
        "api", BOB, "Tasks.Read Tasks.ReadWrite", xms_cc=["cp1"], acrs=["c2"], roles=["Tasks.Admin"]
    )
    _challenge_naming_c1(_send(chain, token, method, path, body))


def test_without_cp1_a_sensitive_action_is_a_403_not_a_dead_end_challenge(chain: Chain) -> None:
    token = chain.signed_in(ALICE, capable=False)
    refused = _send(chain, token, "DELETE", "/tasks")
    assert refused.status_code == 403 and "c1" in refused.json()["error_description"]
    assert "claims=" not in refused.headers["www-authenticate"]
