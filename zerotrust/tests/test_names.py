"""Names for people to read: the caller's groups (GroupMember.Read.All) and other users (User.ReadBasic.All),
from the configured Graph only, paged and batched as Graph is, and nothing when Graph can't say."""

from __future__ import annotations

import asyncio

import pytest
from zerotrust.graph import Answer
from zerotrust.groups import GroupResolver
from zerotrust.names import UserNames

from .test_groups import GRAPH, FakeObo, _principal, fake_graph

pytestmark = pytest.mark.guidance("configure-tokens-group-claims-app-roles")

ALICE, BOB = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912", "4c5d6e7f-8091-42a3-b4c5-d6e7f8091a2b"


def test_group_names_follow_graphs_pages_with_the_group_reading_scope() -> None:
    obo = FakeObo()
    graph, seen = fake_graph(
        Answer(200, {"value": [{"id": "g1", "displayName": "One"}], "@odata.nextLink": f"{GRAPH}/v1.0/next?p=2"}),
        Answer(200, {"value": [{"id": "g2", "displayName": " Two "}, {"id": "g3", "displayName": None}]}),
        obo=obo,
    )
    names = asyncio.run(GroupResolver(graph).names(_principal(), "a"))
    assert names == {"g1": "One", "g2": "Two"}  # a group Graph gave no name keeps its id on the page
    assert seen[0][0].startswith(f"{GRAPH}/v1.0/me/transitiveMemberOf/microsoft.graph.group?")
    assert seen[1][0] == f"{GRAPH}/v1.0/next?p=2"
    assert obo.calls == [["https://graph.microsoft.com/GroupMember.Read.All"]] * 2


def test_a_next_link_elsewhere_is_never_followed_and_its_page_gives_no_names() -> None:
    graph, seen = fake_graph(
        Answer(200, {"value": [{"id": "g1", "displayName": "One"}], "@odata.nextLink": "https://attacker.example/p2"}),
    )
    assert asyncio.run(GroupResolver(graph).names(_principal(), "a")) == {}
    assert [url for url, _, _ in seen if "attacker" in url] == []


def test_no_consent_for_group_names_is_no_names_and_is_asked_again_next_time() -> None:
    obo = FakeObo(fail=True)  # the token service refuses (no administrator consented)
    graph, seen = fake_graph(Answer(500, None), obo=obo)
    resolver = GroupResolver(graph)
    assert asyncio.run(resolver.names(_principal(), "a")) == {}
    assert asyncio.run(resolver.names(_principal(), "a")) == {}
    assert len(obo.calls) == 2 and seen == []  # not cached: a consent given meanwhile shows at once


def test_user_names_are_asked_fifteen_ids_at_a_time_and_cached() -> None:
    ids = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(20)]
    obo = FakeObo()
    graph, seen = fake_graph(
        Answer(200, {"value": [{"id": i, "displayName": f"P{n}"} for n, i in enumerate(ids[:15])]}),
        Answer(200, {"value": [{"id": i, "displayName": f"P{n + 15}"} for n, i in enumerate(ids[15:])]}),
        obo=obo,
    )
    people = UserNames(graph)
    names = asyncio.run(people.names(_principal(), "a", [*ids, "not-an-id", ids[0]]))
    assert len(names) == 20 and names[ids[19]] == "P19"
    assert len(seen) == 2 and seen[0][0].count("'") == 30 and "$select=id,displayName" in seen[0][0]
    assert obo.calls == [["https://graph.microsoft.com/User.ReadBasic.All"]] * 2
    assert asyncio.run(people.names(_principal(), "a", ids[:3])) == {i: names[i] for i in ids[:3]}
    assert len(seen) == 2  # from the cache


def test_user_names_keep_only_ids_asked_for_and_give_nothing_when_graph_is_away() -> None:
    graph, _ = fake_graph(
        Answer(200, {"value": [{"id": ALICE, "displayName": "Alice"}, {"id": "x", "displayName": "X"}]})
    )
    assert asyncio.run(UserNames(graph).names(_principal(), "a", [ALICE])) == {ALICE: "Alice"}
    away, _ = fake_graph(OSError("unreachable"))
    assert asyncio.run(UserNames(away).names(_principal(), "a", [BOB])) == {}
