"""Secretless clients (article 15): the certificate fallback runs the whole chain with no managed
identity at all, and a certificate the registration does not hold gets nobody in.

The managed-identity path is what every other live test runs (`zt run` gives each tier an identity
endpoint); here the web and the api have none, only `WEB_CLIENT_CERTIFICATE_FILE` and
`API_CLIENT_CERTIFICATE_FILE`, and the same code signs the user in and does on-behalf-of.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from devtools.credentials import create_certificate_credential
from zerotrust.redact import JWT_SHAPE

from tests.chain import Chain, start_chain
from tests.contract.helpers import api_scope, sign_in, web_client
from tests.support.launch import LiveEmulator
from tests.support.people import ALICE_OID, Person

pytestmark = [pytest.mark.live, pytest.mark.guidance("identity-non-user-applications")]


@pytest.fixture
def chains() -> Iterator[list[Chain]]:
    started: list[Chain] = []
    yield started
    for chain in started:
        chain.stop()


def test_web_and_api_with_certificates_only_sign_in_and_call_on_behalf_of(
    live: LiveEmulator, tmp_path: Path, chains: list[Chain]
) -> None:
    web_pem = create_certificate_credential(live.local_dir, "web")
    api_pem = create_certificate_credential(live.local_dir, "api")
    assert web_pem.stat().st_mode & 0o777 == 0o600
    chain = start_chain(
        live,
        tmp_path,
        web={"client_certificate_file": str(web_pem)},
        api={"client_certificate_file": str(api_pem)},
        managed_identities=False,
    )
    chains.append(chain)
    alice = Person()
    chain.sign_in(alice, next_path="/chain")  # the web redeemed the code with its certificate
    page = alice.get(f"{chain.web.base}/chain")
    assert page.status_code == 200, page.text[:500]
    # Alice at all three tiers: the api's on-behalf-of exchange, signed with its certificate, worked.
    assert page.text.count(ALICE_OID) >= 3
    assert "56416278-656a-410f-9888-db490850ca20" in page.text  # downstream-api's audience
    assert alice.get(f"{chain.web.base}/tasks").status_code == 200
    for name, log in chain.logs().items():
        assert "PRIVATE KEY" not in log and not JWT_SHAPE.search(log), name


def test_a_certificate_the_registration_does_not_hold_signs_nobody_in(
    live: LiveEmulator, tmp_path: Path, chains: list[Chain]
) -> None:
    # A well-formed key and certificate, registered nowhere this emulator looks.
    elsewhere = tmp_path / "elsewhere"
    pem = create_certificate_credential(elsewhere, "web")
    shutil.rmtree(elsewhere / "credentials")
    chain = start_chain(live, tmp_path, web={"client_certificate_file": str(pem)}, managed_identities=False)
    chains.append(chain)
    alice = Person()
    r = alice.get(f"{chain.web.base}/auth/login?next=/tasks")
    action, fields = alice.sign_in_at_emulator(r.headers["location"], live.password)
    r = alice.post(action, fields)
    # The code is refused at the token endpoint: a clear page naming the reason, no session.
    assert r.status_code == 400, r.text[:500]
    assert "AADSTS700027" in r.text
    assert alice.get(f"{chain.web.base}/tasks").status_code == 302


def test_no_credential_at_all_is_a_clean_503_that_names_the_fix(
    live: LiveEmulator, tmp_path: Path, chains: list[Chain], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No managed identity endpoint and no certificate: the default (the managed identity) can't work.
    chain = start_chain(live, tmp_path, managed_identities=False)
    chains.append(chain)
    alice = Person()
    r = alice.get(f"{chain.web.base}/auth/login?next=/tasks")
    action, fields = alice.sign_in_at_emulator(r.headers["location"], live.password)
    r = alice.post(action, fields)
    assert r.status_code == 503 and "Sign-in is unavailable" in r.text
    assert alice.get(f"{chain.web.base}/tasks").status_code == 302  # no session came of it

    # The api, asked to call downstream-api on alice's behalf, can't authenticate either: a 503.
    token = sign_in(live, web_client(live, monkeypatch), "alice@contoso.test", [api_scope(live, "Tasks.Read")])
    with chain.api.http() as http:
        r = http.get("/tasks", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable"
    logs = chain.logs()
    for name in ("web", "api"):
        assert "CLIENT_CERTIFICATE_FILE" in logs[name], name  # the log line says what to configure
        assert "Traceback" not in logs[name], name
