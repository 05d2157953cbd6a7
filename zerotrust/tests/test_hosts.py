"""The trusted-host allowlist, in process: which Host header values a tier answers, and how it says no."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from zerotrust.hosts import TrustedHosts
from zerotrust.settings import ApiSettings, Guid, GuidList

APP = "1bfffa1d-5b3b-44d5-a14d-ff982dd305d0"


class Tier(ApiSettings):
    model_config = SettingsConfigDict(env_prefix="TIER_")

    client_id: Guid = APP
    allowed_client_ids: GuidList = (APP,)


def client(*allowed: str) -> TestClient:
    app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))])
    return TestClient(TrustedHosts(app, allowed), base_url="http://localhost:8001")


@pytest.mark.parametrize(
    ("allowed", "host", "answered"),
    [
        (("localhost:8001",), "localhost:8001", True),
        (("localhost:8001",), "LOCALHOST:8001", True),
        (("localhost:8001",), "localhost:8002", False),
        (("localhost:8001",), "localhost", False),
        (("localhost",), "localhost:9", True),
        (("localhost",), "localhost", True),
        (("api.contoso.example",), "api.contoso.example", True),
        (("api.contoso.example",), "evil.api.contoso.example", False),
        (("api.contoso.example",), "api.contoso.example.evil.test", False),
        (("localhost",), "localhost.", False),
        (("localhost",), "evil.test@localhost", False),
        (("localhost",), "localhost:8001/x", False),
        (("localhost",), "localhost:abc", False),
        (("[::1]:8001",), "[::1]:8001", True),
        (("localhost",), "", False),
    ],
)
def test_only_an_allowed_name_is_answered(allowed: tuple[str, ...], host: str, answered: bool) -> None:
    r = client(*allowed).get("/", headers={"Host": host})
    if answered:
        assert (r.status_code, r.text) == (200, "ok")
    else:
        assert r.status_code == 400
        assert r.json()["error"] == "invalid_request" and "ALLOWED_HOSTS" in r.json()["error_description"]


def test_the_defaults_are_the_public_address_and_this_machines_names_on_its_port() -> None:
    assert Tier(port=8001).trusted_hosts == ("localhost:8001", "127.0.0.1:8001", "[::1]:8001")
    public = Tier(port=8001, public_url="https://api.contoso.example")
    assert public.trusted_hosts == ("api.contoso.example",)
    assert Tier(allowed_hosts="api.contoso.example,localhost").trusted_hosts == ("api.contoso.example", "localhost")


@pytest.mark.parametrize("entry", ["*.contoso.example", "https://api.contoso.example", "API.contoso.example", "a/b"])
def test_an_allowlist_entry_that_names_no_host_is_refused(entry: str) -> None:
    with pytest.raises(ValidationError, match="is not a host name"):
        Tier(allowed_hosts=entry)
