"""Signing keys at both APIs: unknown kids, rotation, withdrawal and a provider outage.

- An unknown-kid storm costs the provider at most one key-set request per refresh interval.
- A rotated key is accepted after one refresh, without a restart; a withdrawn key is refused.
- With the provider down, tokens signed by cached keys still validate; an unknown kid is a 401 when
  keys are cached and a 503 (try again) only when none are.

The storm runs against the session's stack; the rest against a lab of its own (keylab.py).
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from api.settings import Settings as ApiSettings
from devtools.token import device_code_token
from downstream_api.settings import Settings as DownstreamSettings
from zerotrust.keyset import KeySet

from tests.security.keylab import INTERVAL, KeyLab
from tests.support.launch import RunningStack
from tests.support.tokens import ALICE, Api, Issuer

pytestmark = pytest.mark.guidance("protect-api")

# What the APIs promise by default (ApiSettings): an unknown kid looks the key set up again at most this
# often, and a cached key set is re-read once this old. The key lab's services use short intervals
# (keylab.INTERVAL), so the waits below are seconds.
REFRESH_INTERVAL = 30.0
MAX_AGE = 300.0
UNKNOWN_KEY = 'error_description="The token\'s signing key is not recognised."'
STORM = 1000
CONCURRENCY = 50


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _with_kid(token: str, kid: str) -> str:
    """The same token under another kid: what an attacker sends costs them nothing to vary."""
    _header, payload, signature = token.split(".")
    return ".".join((_b64({"alg": "RS256", "typ": "JWT", "kid": kid}), payload, signature))


def _key_set_requests(stack: RunningStack) -> int:
    return stack.administrator.stats()["key_set_requests"]


def _poll(deadline: float, probe: Callable[[], httpx.Response]) -> httpx.Response:
    """Ask until the answer settles or the deadline passes; returns the last answer."""
    while True:
        response = probe()
        if response.status_code != 401 or time.monotonic() > deadline:
            return response
        time.sleep(0.25)


def test_the_key_set_is_refreshed_as_often_as_promised() -> None:
    api, downstream = ApiSettings(), DownstreamSettings()
    for settings in (api, downstream):
        assert settings.key_set_refresh_seconds <= REFRESH_INTERVAL
        assert settings.key_set_max_age_seconds <= MAX_AGE
    assert KeySet.refresh_interval <= REFRESH_INTERVAL and KeySet.max_age <= MAX_AGE


def test_an_unknown_kid_storm_costs_at_most_one_key_set_request(
    stack: RunningStack, issuer: Issuer, targets: dict[str, Api]
) -> None:
    api = targets["api"]
    template = issuer.token(api)
    tokens = [_with_kid(template, secrets.token_urlsafe(12)) for _ in range(STORM)]
    tls = ssl.create_default_context(cafile=stack.info["ca_bundle"])
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    with httpx.Client(verify=tls, timeout=30, limits=limits, trust_env=False) as http:
        before = _key_set_requests(stack)
        started = time.monotonic()

        def send(token: str) -> tuple[int, str]:
            r = http.get(api.url("/tasks"), headers={"Authorization": f"Bearer {token}"})
            return r.status_code, r.headers.get("www-authenticate", "")

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            answers = list(pool.map(send, tokens))
        elapsed = time.monotonic() - started
        after = _key_set_requests(stack)
        # The storm fits in one interval, so one refresh at most may fall inside it.
        assert elapsed < REFRESH_INTERVAL
        assert after - before <= 1, f"{after - before} key-set requests for {STORM} unknown kids in {elapsed:.1f} s"
        assert {status for status, _ in answers} == {401}
        assert all(UNKNOWN_KEY in challenge for _, challenge in answers)
        # And the API still serves its real callers.
        valid = http.get(api.url(), headers={"Authorization": f"Bearer {issuer.token(api)}"})
        assert valid.status_code == 200


def test_a_rotated_key_is_accepted_by_both_apis_without_a_restart(key_lab: KeyLab) -> None:
    lab = key_lab
    assert lab.seen["api-first-key"][0] == 200 and lab.seen["downstream-first-key"][0] == 200
    # Right after the rotation the new kid was unknown to both and not looked up again at once.
    for target in ("api", "downstream"):
        status, challenge = lab.seen[f"{target}-second-key-early"]
        assert status == 401 and UNKNOWN_KEY in (challenge or "")
    # A real sign-in now: the emulator signs with the new key; the api validates alice's token and
    # downstream-api the on-behalf-of token the api gets for her. Both signed by the new key.
    token = device_code_token(lab.info, "alice@contoso.test")
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["kid"] == lab.second_kid
    deadline = max(lab.fetched_at["api"], lab.fetched_at["downstream"]) + INTERVAL + 10
    api = lab.targets["api"]
    with lab.http() as http:
        tasks = _poll(deadline, lambda: http.get(api.url("/tasks"), headers={"Authorization": f"Bearer {token}"}))
        assert tasks.status_code == 200, (tasks.status_code, tasks.headers.get("www-authenticate"), tasks.text[:300])
        me = http.get(api.url("/me"), headers={"Authorization": f"Bearer {token}"}).json()
        assert me["downstream_api"]["audience"] == lab.targets["downstream"].app_id
        direct = _poll(deadline, lambda: lab.get(http, "downstream", lab.token("downstream", lab.second_kid)))
        assert direct.status_code == 200
        # Tokens already issued under the retired key keep working during the overlap.
        assert lab.get(http, "downstream", lab.token("downstream", lab.first_kid)).status_code == 200


def test_a_withdrawn_key_is_refused_within_the_refresh_interval(key_lab: KeyLab) -> None:
    lab = key_lab
    assert lab.seen["witness-first-key"][0] == 200 and lab.seen["witness-second-key"][0] == 200
    old = lab.token("witness", lab.first_kid)
    with lab.http() as http:
        # Validated once before the withdrawal: the witness remembers the result (a cached validation).
        assert lab.get(http, "witness", old).status_code == 200
    withdrawn = lab.emulator.admin("keys/withdraw-retired")["withdrawn"]
    assert withdrawn == [lab.first_kid]
    withdrawn_at = time.monotonic()
    with lab.http() as http:
        # Refused as soon as the witness's cached key set reaches its maximum age, not at a restart.
        deadline = max(withdrawn_at, lab.fetched_at["witness"] + INTERVAL) + 10
        while (r := lab.get(http, "witness", old)).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.25)
        assert r.status_code == 401, "the withdrawn key was still accepted after the key set's maximum age"
        assert UNKNOWN_KEY in r.headers["www-authenticate"]
        assert lab.get(http, "witness", lab.token("witness", lab.second_kid)).status_code == 200


def test_with_the_provider_down_cached_keys_still_validate_and_only_a_keyless_api_answers_503(
    key_lab: KeyLab,
) -> None:
    lab = key_lab
    kid = lab.issuer.kids()[-1]
    with lab.http() as http:
        # Both warmed tiers hold the current key before the provider goes away.
        for target in ("api", "downstream"):
            warm = _poll(time.monotonic() + INTERVAL + 10, lambda t=target: lab.get(http, t, lab.token(t, kid)))
            assert warm.status_code == 200
        lab.emulator.stop()
        with pytest.raises(httpx.TransportError):
            http.get(f"{lab.emulator.base}/healthz")

        # Cached keys: the token validates. The api's /me answers from its own view even though
        # it can't reach the token service for downstream (that part reports the outage).
        records = lab.get(http, "downstream", lab.token("downstream", kid))
        assert records.status_code == 200
        me = lab.get(http, "api", lab.token("api", kid))
        assert me.status_code == 200
        assert me.json()["api"]["object_id"] == ALICE["oid"]
        # An unknown kid, keys cached: the token is bad, not the provider: 401.
        for target in ("api", "downstream"):
            unknown = lab.get(http, target, _with_kid(lab.token(target, kid), secrets.token_urlsafe(12)))
            assert unknown.status_code == 401 and UNKNOWN_KEY in unknown.headers["www-authenticate"]
        # No key cached at all: nothing can be validated, so 503 with Retry-After, for any token.
        for token in (lab.token("cold", kid), _with_kid(lab.token("cold", kid), secrets.token_urlsafe(12))):
            cold = lab.get(http, "cold", token)
            assert cold.status_code == 503, (cold.status_code, cold.text[:200])
            assert cold.headers["retry-after"] == "5"
            assert cold.json()["error"] == "temporarily_unavailable"
