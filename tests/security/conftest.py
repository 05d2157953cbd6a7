"""What the security suite holds against the running stack: real tokens, the key set, HTTPS clients."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msal
import pytest
import requests
from devtools.token import device_code_token

from tests.security.keylab import KeyLab, start_key_lab
from tests.support.launch import RunningStack
from tests.support.tokens import Api, Issuer, apis, app_id

TOKEN_EXCHANGE = "api://AzureADTokenExchange"


def tls_context(ca_bundle: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_bundle)


@pytest.fixture(scope="session")
def http(stack: RunningStack) -> Iterator[httpx.Client]:
    """HTTPS to the stack's tiers, trusting its dev CA and nothing from the environment."""
    with httpx.Client(verify=tls_context(stack.info["ca_bundle"]), timeout=15, trust_env=False) as client:
        yield client


@pytest.fixture(scope="session")
def targets(stack: RunningStack) -> dict[str, Api]:
    return apis(stack)


@pytest.fixture(scope="session")
def issuer(stack: RunningStack) -> Issuer:
    return Issuer(stack)


@pytest.fixture(scope="session")
def jwks(stack: RunningStack, http: httpx.Client) -> dict[str, Any]:
    """The provider's published key set, found the way the APIs find it (discovery)."""
    config = http.get(f"{stack.info['authority']}/v2.0/.well-known/openid-configuration").json()
    keys: dict[str, Any] = http.get(config["jwks_uri"]).json()
    return keys


@pytest.fixture(scope="session")
def alice_api_token(stack: RunningStack) -> str:
    """A real token for the api, as `zt token` gets one (device code, the CLI's registration)."""
    return device_code_token(stack.info, "alice@contoso.test")


def obo_token(info: dict[str, Any], local_dir: Path, user_token: str, scopes: list[str]) -> str:
    """A real downstream-api token, obtained as the api obtains it: on-behalf-of, the api's
    registration authenticating with its managed identity's token (a federated credential)."""
    headers = json.loads((local_dir / "emulator" / "managed-identity-headers.json").read_text())
    tls = tls_context(info["ca_bundle"])

    def assertion() -> str:
        with httpx.Client(verify=tls, timeout=10, trust_env=False) as client:
            r = client.get(
                f"{info['emulator']}/msi/token",
                params={"api-version": "2019-08-01", "resource": TOKEN_EXCHANGE},
                headers={"X-IDENTITY-HEADER": headers["api"]},
            )
            r.raise_for_status()
            token: str = r.json()["access_token"]
            return token

    session = requests.Session()
    session.verify = info["ca_bundle"]
    session.trust_env = False
    app = msal.ConfidentialClientApplication(
        app_id("api"),
        client_credential={"client_assertion": assertion},
        authority=info["authority"],
        instance_discovery=False,
        http_client=session,
    )
    result = app.acquire_token_on_behalf_of(user_token, scopes)
    assert "access_token" in result, result
    token: str = result["access_token"]
    return token


@pytest.fixture(scope="session")
def alice_downstream_token(stack: RunningStack, alice_api_token: str) -> str:
    return obo_token(stack.info, stack.local_dir, alice_api_token, [stack.info["downstream_scopes"][0]])


@pytest.fixture(scope="session")
def key_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyLab]:
    lab = start_key_lab(tmp_path_factory.mktemp("key-lab"))
    yield lab
    lab.stop()
