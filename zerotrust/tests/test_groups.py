"""GroupResolver: the groups claim as is; on overage Graph at the configured URL, cached, checked."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import pytest
from zerotrust.graph import Answer, Graph
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
    def __init__(self, fail: bool = False, claims_refused: bool = False) -> None:
        self.fail, self.claims_refused = fail, claims_refused
        self.calls: list[list[str]] = []
        self.claims: list[str | None] = []

    async def token(self, principal: Principal, assertion: str, scopes: list[str], *, claims: str | None = None) -> str:
        self.calls.append(scopes)
        self.claims.append(claims)
        if self.fail:
            raise OboError(401, "invalid_token", "Your sign-in is no longer valid.", "invalid_grant", (65001,))
        if claims is not None and self.claims_refused:
            raise OboError(401, "invalid_token", "Sign in again.", "interaction_required", (50173,), claims)
        return "graph-token" if claims is None else "fresh-graph-token"


Reply = Answer | Exception
Sent = tuple[str, dict[str, Any] | None, dict[str, str]]
NBF_CLAIMS = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}'
CHALLENGE = f'Bearer realm="", error="insufficient_claims", claims="{base64.b64encode(NBF_CLAIMS.encode()).decode()}"'


def fake_graph(*answers: Reply, obo: FakeObo | None = None) -> tuple[Graph, list[Sent]]:
    """A Graph client whose requests get `answers` in turn (the last one from then on), and what it sent."""
    seen: list[Sent] = []
    replies = list(answers)

    async def send(method: str, url: str, body: dict[str, Any] | None, headers: dict[str, str]) -> Answer:
        seen.append((url, body, headers))
        answer = replies.pop(0) if len(replies) > 1 else replies[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return Graph(GRAPH, obo or FakeObo(), send), seen


def _resolver(*answers: Reply, obo: FakeObo | None = None) -> tuple[GroupResolver, list[Sent]]:
    graph, seen = fake_graph(*answers, obo=obo)
    return GroupResolver(graph), seen


def test_the_groups_claim_is_used_as_is_without_any_call() -> None:
    resolver, seen = _resolver(Answer(500, None))
    found = asyncio.run(resolver.groups(_principal(groups=["g1", "g2"]), "assertion"))
    assert found == {"g1", "g2"} and seen == []


def test_overage_asks_the_configured_graph_once_then_the_cache() -> None:
    obo = FakeObo()
    resolver, seen = _resolver(Answer(200, {"value": ["g1", "g9"]}), obo=obo)
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
        Answer(403, None),
        Answer(200, {"value": "g1"}),
        Answer(200, {"value": [1, 2]}),
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
    resolver, seen = _resolver(Answer(200, {"value": []}), obo=FakeObo(fail=True))
    with pytest.raises(GroupsUnavailable):
        asyncio.run(resolver.groups(_principal(**OVERAGE), "a"))
    assert seen == []


def test_the_token_supplied_url_is_not_even_kept() -> None:
    principal = _principal(**OVERAGE)
    assert principal.has_group_overage
    assert "attacker" not in principal.model_dump_json()


def test_a_graph_claims_challenge_asks_the_token_service_again_with_its_claims_once() -> None:
    obo = FakeObo()
    resolver, seen = _resolver(Answer(401, None, CHALLENGE), Answer(200, {"value": ["g1"]}), obo=obo)
    assert asyncio.run(resolver.groups(_principal(**OVERAGE), "a")) == {"g1"}
    assert obo.claims == [None, NBF_CLAIMS]
    assert [h["Authorization"] for _, _, h in seen] == ["Bearer graph-token", "Bearer fresh-graph-token"]


def test_when_only_a_fresh_sign_in_will_do_the_claims_go_to_the_caller_not_unavailable() -> None:
    resolver, seen = _resolver(Answer(401, None, CHALLENGE), obo=FakeObo(claims_refused=True))
    with pytest.raises(OboError) as refused:
        asyncio.run(resolver.groups(_principal(**OVERAGE), "a"))
    assert refused.value.claims is not None and "nbf" in refused.value.claims
    assert len(seen) == 1


def test_graph_challenging_a_fresh_token_again_is_not_asked_a_third_time() -> None:
    obo = FakeObo()
    resolver, seen = _resolver(Answer(401, None, CHALLENGE), obo=obo)
    with pytest.raises(OboError) as refused:
        asyncio.run(resolver.groups(_principal(**OVERAGE), "a"))
    assert refused.value.claims is not None and len(seen) == 2 and len(obo.calls) == 2


def test_a_401_without_claims_is_unavailable_and_not_retried() -> None:
    obo = FakeObo()
    resolver, seen = _resolver(Answer(401, None, 'Bearer realm="", error="invalid_token"'), obo=obo)
    with pytest.raises(GroupsUnavailable):
        asyncio.run(resolver.groups(_principal(**OVERAGE), "a"))
    assert len(seen) == 1 and obo.claims == [None]
