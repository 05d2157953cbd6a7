"""Rate limits at every tier, over HTTP: a flood from one peer (before any token is read) and from one caller
(after validation: a user, an app-only client, a web session) meets 429 with `Retry-After`; the window passes
with the clock setting (no sleeping); one caller's flood leaves another caller alone; and downstream-api's
429 reaches the api's caller as a 429, with when to retry.

The tiers run with small limits (tests/security/limitlab.py); the defaults are checked apart: far above
what the test suite and `make bench` send.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api.settings import Settings as ApiSettings
from downstream_api.settings import Settings as DownstreamSettings
from web.session_store import record_key
from web.settings import Settings as WebSettings

from tests.security.limitlab import CALLER, DOWNSTREAM_CALLER, PEER, LimitLab, start_limit_lab
from tests.support.launch import LiveEmulator, RunningStack
from tests.support.people import Person
from tests.support.tokens import Issuer, build_app_only_token

pytestmark = pytest.mark.guidance("protect-api")

BOB_OID = "4c5d6e7f-8091-42a3-b4c5-d6e7f8091a2b"
# What an anonymous request answers at each tier before any limit is met.
ANONYMOUS = {"web": ("/auth/login", 302), "api": ("/tasks", 401), "downstream-api": ("/records", 401)}


@pytest.fixture(scope="module")
def lab(live: LiveEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LimitLab]:
    yield from start_limit_lab(live, tmp_path_factory.mktemp("limit-lab"))


@pytest.fixture
def fresh(lab: LimitLab) -> LimitLab:
    lab.fresh()
    return lab


def _flood(http: httpx.Client, url: str, count: int, headers: dict[str, str] | None = None) -> list[httpx.Response]:
    return [http.get(url, headers=headers or {}) for _ in range(count)]


def _refused(response: httpx.Response) -> int:
    """A 429 as every tier must give it: with Retry-After in whole seconds (RATE's window at most)."""
    assert response.status_code == 429, response.text[:300]
    seconds = int(response.headers["retry-after"])
    assert 1 <= seconds <= 20
    assert response.headers["cache-control"] == "no-store"
    return seconds


@pytest.mark.parametrize("tier", ["web", "api", "downstream-api"])
def test_a_flood_from_one_peer_meets_429_until_the_window_passes(fresh: LimitLab, tier: str) -> None:
    path, normal = ANONYMOUS[tier]
    url = fresh.base(tier) + path
    with fresh.http() as http:
        answers = _flood(http, url, PEER + 10)
        # The burst is served (a second or two of real time may add one more), then refused.
        assert [r.status_code for r in answers[:PEER]] == [normal] * PEER
        assert answers[-1].status_code == 429
        seconds = _refused(answers[-1])
        if tier == "web":
            assert answers[-1].headers["content-type"].startswith("text/plain")
            assert "Too many requests from your address" in answers[-1].text
        else:
            body = answers[-1].json()
            assert body["error"] == "too_many_requests" and "try again" in body["error_description"]
            assert body["correlation_id"] == answers[-1].headers["x-correlation-id"]
            assert "www-authenticate" not in answers[-1].headers  # not about the token: no challenge
        assert http.get(f"{fresh.base(tier)}/healthz").status_code == 200  # the platform's probe still answers
        fresh.advance(seconds)  # the window, by the clock setting
        assert http.get(url).status_code == normal


def test_anonymous_logins_store_nothing_and_a_real_sign_in_still_works(stack: RunningStack) -> None:
    # A cross-site <img src=".../auth/login"> costs the attacker nothing; it must cost the server nothing
    # either: the pending sign-in travels in its sealed cookie, no row is written for it.
    state = stack.local_dir / "web"
    before = _stored_keys(state)
    with httpx.Client(timeout=15, follow_redirects=False) as http:
        for _ in range(200):
            r = http.get(f"{stack.web}/auth/login", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "image"})
            assert r.status_code == 302 and "__Host-signin=" in r.headers["set-cookie"]
            assert len(r.headers["set-cookie"]) < 4096  # what a browser keeps
    assert _stored_keys(state) == before
    person = Person()
    r = person.get(f"{stack.web}/auth/login?next=/tasks")
    action, fields = person.sign_in_at_emulator(r.headers["location"], str(stack.info["demo_password"]))
    back = person.post(action, fields)
    assert back.status_code == 303 and back.headers["location"] == "/tasks"
    assert person.get(f"{stack.web}/tasks").status_code == 200
    # The one who signed in: their session, and their recent traces if /tasks's trace was sampled (a row of its
    # own, web.traces); nothing else.
    session_id = person.jar.get("__Host-session")
    assert session_id
    added = _stored_keys(state) - before
    assert record_key(session_id) in added
    assert added <= {record_key(session_id), record_key(f"{session_id}|traces")}


def _stored_keys(state: Path) -> set[str]:
    db = sqlite3.connect(state / "sessions.sqlite3")
    try:
        return {str(row[0]) for row in db.execute("SELECT key FROM sessions")}
    finally:
        db.close()


@pytest.mark.parametrize("tier", ["api", "downstream-api"])
def test_a_flood_from_one_user_meets_429_after_validation_and_another_user_is_served(
    fresh: LimitLab, tier: str
) -> None:
    api = fresh.targets[tier]
    issuer = Issuer(fresh.emulator)
    alice = {"Authorization": f"Bearer {issuer.token(api)}"}
    bob = {"Authorization": f"Bearer {issuer.token(api, oid=BOB_OID)}"}
    burst = CALLER if tier == "api" else DOWNSTREAM_CALLER
    with fresh.http() as http:
        answers = _flood(http, api.url(), burst + 3, alice)
        assert [r.status_code for r in answers[:burst]] == [200] * burst
        seconds = _refused(answers[-1])
        assert answers[-1].json()["error"] == "too_many_requests"
        assert http.get(api.url(), headers=bob).status_code == 200  # per caller: bob has a bucket of his own
        fresh.advance(seconds)
        assert http.get(api.url(), headers=alice).status_code == 200


def test_an_app_only_flood_is_one_caller_whatever_its_tokens_say(fresh: LimitLab) -> None:
    downstream = fresh.targets["downstream-api"]
    with fresh.http() as http:
        # Each token names another object id: the key is the tenant and the calling app (azp).
        tokens = [
            build_app_only_token(fresh.emulator, downstream, ["Records.Report.All"])
            for _ in range(DOWNSTREAM_CALLER + 2)
        ]
        answers = [
            http.get(downstream.url("/reports/tenant"), headers={"Authorization": f"Bearer {token}"})
            for token in tokens
        ]
        assert [r.status_code for r in answers[:DOWNSTREAM_CALLER]] == [200] * DOWNSTREAM_CALLER
        _refused(answers[-1])
        # The same app acting for a user is another caller (the user).
        user = {"Authorization": f"Bearer {Issuer(fresh.emulator).token(downstream)}"}
        assert http.get(downstream.url(), headers=user).status_code == 200


def test_downstreams_429_reaches_the_apis_caller_with_when_to_retry(fresh: LimitLab) -> None:
    api = fresh.targets["api"]
    alice = {"Authorization": f"Bearer {Issuer(fresh.emulator).token(api)}"}
    with fresh.http() as http:
        # Each /tasks at the api is one call downstream, whose bucket for alice is the smaller.
        answers = _flood(http, api.url("/tasks"), DOWNSTREAM_CALLER + 1, alice)
        assert [r.status_code for r in answers[:DOWNSTREAM_CALLER]] == [200] * DOWNSTREAM_CALLER
        seconds = _refused(answers[-1])
        assert answers[-1].json()["error"] == "too_many_requests"
        fresh.advance(seconds)
        assert http.get(api.url("/tasks"), headers=alice).status_code == 200


def test_a_web_session_over_its_rate_gets_a_429_page_and_signing_in_again_is_not_needed(fresh: LimitLab) -> None:
    person = Person()
    fresh.chain.sign_in(person, next_path="/")
    web = fresh.base("web")
    answers = [person.get(f"{web}/") for _ in range(CALLER + 2)]
    assert answers[0].status_code == 200 and "Alice Adams" in answers[0].text
    refused = answers[-1]
    seconds = _refused(refused)
    assert "Too many requests" in refused.text and "text/html" in refused.headers["content-type"]
    fresh.advance(seconds)
    again = person.get(f"{web}/")
    assert again.status_code == 200 and "Alice Adams" in again.text  # the same session, still signed in


def test_the_defaults_leave_room_for_the_test_suite_and_the_bench() -> None:
    # make bench drives one user at up to ~900 requests a second, in runs of 4 s with others between: a
    # burst holds several seconds of it, and the rate a sustained flood must stay under.
    for settings in (WebSettings(), ApiSettings(), DownstreamSettings()):
        assert settings.rate_caller_burst >= 6 * 900 and settings.rate_peer_burst >= settings.rate_caller_burst
        assert settings.rate_caller_per_second >= 300 and settings.rate_peer_per_second >= 300
        assert settings.rate_clock_file is None and settings.rate_trusted_proxies == ()


def test_the_clock_setting_and_bad_proxies_are_refused_where_they_must_be(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="RATE_CLOCK_FILE moves the rate limits' clock"):
        ApiSettings(environment="production", rate_clock_file=tmp_path / "clock")
    with pytest.raises(ValidationError, match="is not an address or network"):
        ApiSettings(rate_trusted_proxies="10.0.0.0/8,not-a-network")
    with pytest.raises(ValidationError):
        ApiSettings(rate_caller_per_second=0)
