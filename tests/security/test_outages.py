"""A dependency down: the tiers in front answer a clean 503 at once, with the correlation id to quote, and
recover by themselves when it is back, with no restart (security catalog, section (f)).

Each test runs the chain (web, api, downstream-api) in processes of its own and takes one dependency away:
downstream-api, then the identity provider. The database's outage is proved in tests/postgres/test_faults.py,
and each tier killed under load in tests/e2e/test_kill_a_tier.py.
"""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.authz.chain import ALICE, BOB
from tests.authz.chain import Person as AuthzPerson
from tests.chain import Chain, start_chain
from tests.support.launch import LiveEmulator, ready, spawn, start_emulator
from tests.support.people import Person
from tests.support.tokens import Issuer, apis_at, pairwise_subject

pytestmark = pytest.mark.guidance("identity-iam-development-best-practices")

# An outage is answered within this long: no hanging on retries or on a connect that never completes.
FAST_SECONDS = 3.0
RECOVERY_SECONDS = 30.0
HANG_SECONDS = 15.0
CORRELATION_ID = re.compile(r"\A[0-9a-f]{32}\Z")


@pytest.fixture
def chains() -> Iterator[list[Chain]]:
    started: list[Chain] = []
    yield started
    for chain in started:
        chain.stop()


@pytest.fixture
def people() -> Iterator[list[Person]]:
    made: list[Person] = []
    yield made
    for person in made:
        person.http.close()


def _person(people: list[Person]) -> Person:
    people.append(Person())
    return people[-1]


def _api_client(chain: Chain, person: AuthzPerson) -> httpx.Client:
    """`person` at the api with a token the api has not exchanged on-behalf-of yet: to answer, it must
    reach the identity provider and then downstream-api."""
    api = apis_at(chain.api.base, chain.services[0].base)["api"]
    sub = pairwise_subject(person.oid, api.app_id)
    token = Issuer(chain.emulator).token(api, oid=person.oid, sub=sub, name=person.name, preferred_username=person.upn)
    verify = ssl.create_default_context(cafile=chain.emulator.tls.ca_bundle)
    bearer = {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=chain.api.base, verify=verify, timeout=HANG_SECONDS, headers=bearer)


def _timed(call: Callable[[], httpx.Response]) -> httpx.Response:
    started = time.monotonic()
    r = call()
    took = time.monotonic() - started
    assert took < FAST_SECONDS, f"{r.request.method} {r.request.url.path} took {took:.1f} s"
    return r


def _assert_api_503(r: httpx.Response) -> None:
    """RFC 6749's temporarily_unavailable, when to try again, and the id that finds its log lines."""
    assert r.status_code == 503, r.text
    body = r.json()
    assert set(body) == {"error", "error_description", "correlation_id"}, body
    assert body["error"] == "temporarily_unavailable"
    assert CORRELATION_ID.match(body["correlation_id"]) and body["correlation_id"] == r.headers["x-correlation-id"]
    assert r.headers["retry-after"] == "5"
    assert "Traceback" not in r.text


def _assert_page_503(r: httpx.Response, title: str, retry: str) -> None:
    """A page a person can act on: what is down, a way to try again, and the id to quote."""
    assert r.status_code == 503, r.text[:500]
    assert title in r.text and f'href="{retry}"' in r.text
    cid = r.headers["x-correlation-id"]
    assert CORRELATION_ID.match(cid) and cid in r.text  # shown, not only in a header the person can't see
    assert r.headers["cache-control"] == "no-store" and "Traceback" not in r.text


def _until_recovered(call: Callable[[], httpx.Response], while_down: Callable[[httpx.Response], None]) -> None:
    """Ask again until it works; every answer meanwhile is the clean refusal (`while_down` checks it)."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    while (r := _timed(call)).status_code not in (200, 303):
        while_down(r)
        assert time.monotonic() < deadline, "no recovery"
        time.sleep(0.2)  # polling a service that is starting, not waiting out a clock


def _pids(chain: Chain) -> list[int]:
    return [s.process.pid for s in chain.services if s.process.poll() is None]


def test_downstream_api_down_is_a_clean_503_at_the_api_and_the_web_app_and_both_recover_without_a_restart(
    live: LiveEmulator, tmp_path: Path, chains: list[Chain], people: list[Person]
) -> None:
    chain = start_chain(live, tmp_path)
    chains.append(chain)
    alice = _person(people)
    chain.sign_in(alice)
    web, downstream = chain.web.base, chain.services[0]
    front = [chain.api.process.pid, chain.web.process.pid]
    with _api_client(chain, BOB) as api:
        assert api.get("/tasks").status_code == 200
        assert alice.get(f"{web}/tasks").status_code == 200
        downstream.stop()

        for _ in range(3):  # each answer, not only the first: no pooled connection or retry makes one hang
            _assert_api_503(_timed(lambda: api.get("/tasks")))
            _assert_page_503(_timed(lambda: alice.get(f"{web}/tasks")), "Temporarily unavailable", "/tasks")

        # The platform starts it again where it was (same address, same data); nothing else is restarted.
        port = urlsplit(downstream.base).port
        settings = {"port": str(port), "state_dir": str(tmp_path / "downstream-state")}
        again = spawn(
            "downstream_api",
            "DOWNSTREAM",
            settings,
            emulator=live,
            log_dir=tmp_path / "logs",
            identity="downstream-api",
        )
        chain.services[0] = again
        ready(again)
        _until_recovered(lambda: api.get("/tasks"), _assert_api_503)
        _until_recovered(
            lambda: alice.get(f"{web}/tasks"), lambda r: _assert_page_503(r, "Temporarily unavailable", "/tasks")
        )
        assert alice.get(f"{web}/chain").text.count(ALICE.oid) >= 3  # the whole chain again
    assert [chain.api.process.pid, chain.web.process.pid] == front and len(_pids(chain)) == 3
    for name, log in chain.logs().items():
        assert "Traceback" not in log, name


def test_the_identity_provider_down_is_a_clean_503_where_it_is_needed_and_recovers_without_a_restart(
    fresh_emulator: LiveEmulator, tmp_path: Path, chains: list[Chain], people: list[Person]
) -> None:
    emulator = fresh_emulator
    chain = start_chain(emulator, tmp_path)
    chains.append(chain)
    web = chain.web.base
    alice, dave = _person(people), _person(people)
    chain.sign_in(alice)
    assert alice.get(f"{web}/tasks").status_code == 200
    # Dave is half-way: signed in at the identity provider, its answer not yet back at the web app.
    r = dave.get(f"{web}/auth/login?next=/tasks")
    action, fields = dave.sign_in_at_emulator(r.headers["location"], emulator.password, "dave@contoso.test")
    ports = (urlsplit(emulator.base).port, urlsplit(emulator.front).port)
    with _api_client(chain, BOB) as api:
        emulator.stop()

        # What needs the identity provider now: redeeming a code, exchanging a token never seen before.
        _assert_page_503(_timed(lambda: dave.post(action, fields)), "Sign-in is unavailable", "/auth/login")
        for _ in range(3):
            _assert_api_503(_timed(lambda: api.get("/tasks")))
        # What does not: a signed-in person's pages, on the tokens already held (as with Entra, for their lifetime).
        assert _timed(lambda: alice.get(f"{web}/tasks")).status_code == 200

        assert ports[0] and ports[1]
        back = start_emulator(emulator.local_dir, ports=(ports[0], ports[1]))
        try:
            _until_recovered(lambda: api.get("/tasks"), _assert_api_503)
            chain.sign_in(dave, "dave@contoso.test")  # starting again, as the page offered
            assert dave.get(f"{web}/tasks").status_code == 200
        finally:
            back.stop()
    assert len(_pids(chain)) == 3  # the same processes throughout
    for name, log in chain.logs().items():
        assert "Traceback" not in log, name
