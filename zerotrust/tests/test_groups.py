"""GroupResolver: the groups claim as is; on overage Graph at the configured URL, cached, checked."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from zerotrust.groups import GroupResolver, GroupsUnavailable
from zerotrust.onbehalf import OboError
from zerotrust.tokens import Principal

pytestmark = pytest.mark.guidance("configure-tokens-group-claims-app-roles")

GRAPH = "https://graph.example.test"


def _principal(**claims: Any) -> Principal:
    base = {
        "tid": "t1",
        "oid": "o1",
        "sub": "s",
        "aud": "a",
        "iss": "i",
        "azp": "z",
        "ver": "2.0",
        "scp": "Records.Read",
        "exp": int(time.time()) + 60,
    }
    return Principal.from_claims({**base, **claims})


OVERAGE = {
    "_claim_names": {"groups": "src1"},
    "_claim_sources": {"src1": {"endpoint": "https://attacker.example/steal"}},
}


class FakeObo:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[list[str]] = []

    async def token(self, principal: Principal, assertion: str, scopes: list[str]) -> str:
        self.calls.append(scopes)
        if self.fail:
            raise OboError(401, "invalid_token", "Your sign-in is no longer valid.", "invalid_grant", (65001,))
        return "graph-token"


Answer = tuple[int, Any] | Exception
Sent = tuple[str, dict[str, Any], dict[str, str]]


def _resolver(answer: Answer, obo: FakeObo | None = None) -> tuple[GroupResolver, list[Sent]]:
    seen: list[Sent] = []

    async def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        seen.append((url, body, headers))
        if isinstance(answer, Exception):
            raise answer
        return answer

    return GroupResolver(GRAPH, obo or FakeObo(), post), seen


def test_the_groups_claim_is_used_as_is_without_any_call() -> None:
    resolver, seen = _resolver((500, None))
    found = asyncio.run(resolver.groups(_principal(groups=["g1", "g2"]), "assertion"))
    assert found == {"g1", "g2"} and seen == []


def test_overage_asks_the_configured_graph_once_then_the_cache() -> None:
    obo = FakeObo()
    resolver, seen = _resolver((200, {"value": ["g1", "g9"]}), obo)
    principal = _principal(**OVERAGE)

    async def twice() -> tuple[frozenset[str], frozenset[str]]:
        return await resolver.groups(principal, "a"), await resolver.groups(principal, "a")

    first, second = asyncio.run(twice())
    assert first == second == {"g1", "g9"}
    assert [url for url, _, _ in seen] == [f"{GRAPH}/v1.0/me/getMemberObjects"]  # never the token's URL
    assert seen[0][1] == {"securityEnabledOnly": True}
    assert seen[0][2]["Authorization"] == "Bearer graph-token"
    assert obo.calls == [["https://graph.microsoft.com/User.Read"]]


@pytest.mark.parametrize(
    "answer",
    [
        (403, None),
        (200, {"value": "g1"}),
        (200, {"value": [1, 2]}),
        ValueError("not json"),
        ConnectionRefusedError("refused"),
    ],
    ids=["refused", "not-a-list", "not-ids", "not-json", "unreachable"],
)
def test_a_graph_answer_that_is_not_a_list_of_ids_is_unavailable_not_empty(answer: Any) -> None:
    resolver, _ = _resolver(answer)
    with pytest.raises(GroupsUnavailable):
        asyncio.run(resolver.groups(_principal(**OVERAGE), "a"))


def test_no_graph_token_on_the_users_behalf_is_unavailable() -> None:
    resolver, seen = _resolver((200, {"value": []}), FakeObo(fail=True))
    with pytest.raises(GroupsUnavailable):
        asyncio.run(resolver.groups(_principal(**OVERAGE), "a"))
    assert seen == []


def test_the_token_supplied_url_is_not_even_kept() -> None:
    principal = _principal(**OVERAGE)
    assert principal.has_group_overage
    assert "attacker" not in principal.model_dump_json()
