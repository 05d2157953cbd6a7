"""The settings base every tier shares: written once, so each rule is tested once, here, on a tier of its own."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict
from zerotrust.settings import HOME_TENANT_ID, ApiSettings, Guid, GuidList, is_loopback_host, split_list

ENTRA = f"https://login.microsoftonline.com/{HOME_TENANT_ID}"
APP = "11111111-2222-4333-8444-555555555555"


class Tier(ApiSettings):
    model_config = SettingsConfigDict(env_prefix="TIER_")

    client_id: Guid = APP
    allowed_client_ids: GuidList = (APP,)


def _certificate_file(folder: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from identity_emulator.certificates import certificate, common_name, private_pem, rsa_key

    key, now = rsa_key(), dt.datetime.now(dt.UTC)
    cert = certificate(key, common_name("tier"), not_before=now, not_after=now + dt.timedelta(days=1))
    pem = folder / "client.pem"
    pem.write_bytes(private_pem(key) + cert.public_bytes(serialization.Encoding.PEM))
    pem.chmod(0o600)
    return pem


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("TIER_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("api.localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        (None, False),
        ("", False),
        ("login.microsoftonline.com", False),
        ("10.0.0.1", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback_is_recognised_one_way(host: str | None, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_every_list_setting_reads_commas_spaces_or_a_json_list() -> None:
    assert split_list("a,b") == ["a", "b"]
    assert split_list(" a , b  c ") == ["a", "b", "c"]
    assert split_list('["a", "b"]') == ["a", "b"]
    assert split_list(("a",)) == ("a",)
    with pytest.raises(ValueError, match="JSON list"):
        split_list("[not json")


def test_the_allowlist_defaults_to_the_authoritys_own_tenant_and_refuses_non_ids() -> None:
    assert Tier().tenants == (HOME_TENANT_ID,)
    with pytest.raises(ValidationError, match="not an id"):
        Tier(allowed_tenants=("common",))
    with pytest.raises(ValidationError, match="TIER_ALLOWED_TENANTS must name the tenants"):
        Tier(authority="https://login.microsoftonline.com/organizations")
    other = "7e8f9a0b-1c2d-4e3f-9a4b-5c6d7e8f9a0b"
    assert Tier(authority="https://login.microsoftonline.com/organizations", allowed_tenants=(other,)).tenants == (
        other,
    )


def test_one_credential_at_most(tmp_path: Path) -> None:
    pem = _certificate_file(tmp_path)
    assert Tier(client_certificate_file=pem).client_certificate_file == pem
    with pytest.raises(ValidationError, match="TIER_CLIENT_CERTIFICATE_FILE are both set"):
        Tier(managed_identity_client_id=APP, client_certificate_file=pem)
    with pytest.raises(ValidationError, match="cannot read the client certificate file"):
        Tier(client_certificate_file=tmp_path / "missing.pem")
    assert Tier(managed_identity_client_id="").managed_identity_client_id is None  # empty: the platform's own


PUBLIC = "https://tier.contoso.example"


def test_production_refuses_what_only_a_laptop_may_do_naming_each_variable() -> None:
    with pytest.raises(ValidationError) as refused:
        Tier(environment="production", clock_leeway_seconds=600, key_set_refresh_seconds=1)
    message = str(refused.value)
    assert "TIER_AUTHORITY points at this machine" in message
    assert "TIER_CLOCK_LEEWAY_SECONDS is over 300" in message
    assert "TIER_KEY_SET_REFRESH_SECONDS and TIER_KEY_SET_MAX_AGE_SECONDS must be at least 30" in message
    assert "TIER_PUBLIC_URL must be this app's address" in message
    with pytest.raises(ValidationError, match="TIER_INSTANCE_DISCOVERY must stay on"):
        Tier(environment="production", authority=ENTRA, public_url=PUBLIC)
    sound = Tier(environment="production", authority=ENTRA, instance_discovery=True, public_url=PUBLIC)
    assert sound.trusted_hosts == ("tier.contoso.example",)
    assert sound.clock_leeway_seconds == 60 and sound.key_set_refresh_seconds == 30


def test_short_clocks_are_for_development_only() -> None:
    quick = Tier(clock_leeway_seconds=0, key_set_refresh_seconds=0.5, key_set_max_age_seconds=0.5)
    assert quick.clock_leeway_seconds == 0
    with pytest.raises(ValidationError):
        Tier(key_set_refresh_seconds=0)
    with pytest.raises(ValidationError):
        Tier(clock_leeway_seconds=-1)


def test_tls_ends_at_the_ingress_only_behind_an_https_public_address() -> None:
    # Container Apps: the ingress serves HTTPS and the container plain HTTP; without it, HTTPS in the process.
    assert Tier().require_tls
    behind = Tier(
        environment="production", authority=ENTRA, instance_discovery=True, public_url=PUBLIC, tls_at_ingress=True
    )
    assert not behind.require_tls and behind.public_base_url == PUBLIC
    with pytest.raises(ValidationError, match="TIER_TLS_AT_INGRESS needs TIER_PUBLIC_URL"):
        Tier(environment="production", authority=ENTRA, instance_discovery=True, tls_at_ingress=True)
