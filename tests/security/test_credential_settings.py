"""The client credential is configuration: a managed identity by default, a certificate file as the
fallback, both at once refused, and a certificate file that cannot work refused at start."""

from __future__ import annotations

from pathlib import Path

import pytest
from api.settings import Settings as ApiSettings
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from devtools.credentials import create_certificate_credential
from pydantic import ValidationError
from web.settings import Settings as WebSettings
from zerotrust.credentials import CredentialConfigError, certificate_credential, client_credential

pytestmark = pytest.mark.guidance("identity-non-user-applications")


def test_the_default_is_the_managed_identity_as_a_federated_credential() -> None:
    credential = client_credential(managed_identity_client_id=None, certificate_file=None)
    assert set(credential) == {"client_assertion"} and callable(credential["client_assertion"])


def test_a_certificate_file_gives_msal_the_key_and_the_certificate(tmp_path: Path) -> None:
    pem = create_certificate_credential(tmp_path, "web")
    credential = client_credential(managed_identity_client_id=None, certificate_file=pem)
    assert isinstance(serialization.load_pem_private_key(credential["private_key"].encode(), None), rsa.RSAPrivateKey)
    assert credential["public_certificate"].startswith("-----BEGIN CERTIFICATE-----")
    # Registered where the identity provider looks, the private half kept apart.
    assert list((tmp_path / "credentials" / "web").glob("*.crt"))
    assert "PRIVATE KEY" not in next((tmp_path / "credentials" / "web").glob("*.crt")).read_text()


def test_both_credentials_at_once_are_refused(tmp_path: Path) -> None:
    pem = create_certificate_credential(tmp_path, "api")
    with pytest.raises(CredentialConfigError, match="set exactly one"):
        client_credential(managed_identity_client_id="4a5c7161-5885-4eab-8aa9-272c80f157c8", certificate_file=pem)
    with pytest.raises(ValidationError, match="both set"):
        WebSettings(managed_identity_client_id="0b0ee6a1-9e1d-411b-a3fb-5418c4c4c78c", client_certificate_file=pem)
    with pytest.raises(ValidationError, match="both set"):
        ApiSettings(managed_identity_client_id="4a5c7161-5885-4eab-8aa9-272c80f157c8", client_certificate_file=pem)


def test_settings_accept_a_certificate_alone(tmp_path: Path) -> None:
    pem = create_certificate_credential(tmp_path, "web")
    assert WebSettings(client_certificate_file=pem).client_certificate_file == pem
    assert ApiSettings(client_certificate_file=pem).client_certificate_file == pem


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    pem = create_certificate_credential(tmp_path, "web")
    pem.chmod(0o644)
    with pytest.raises(CredentialConfigError, match="chmod 600"):
        certificate_credential(pem)
    with pytest.raises(ValidationError, match="chmod 600"):
        WebSettings(client_certificate_file=pem)


def test_a_missing_file_a_certificate_alone_or_a_key_of_another_certificate_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CredentialConfigError, match="cannot read"):
        certificate_credential(tmp_path / "nowhere.pem")
    one = create_certificate_credential(tmp_path / "one", "web").read_text()
    two = create_certificate_credential(tmp_path / "two", "web").read_text()
    cert_only = tmp_path / "cert-only.pem"
    cert_only.write_text(one[one.index("-----BEGIN CERTIFICATE-----") :])
    cert_only.chmod(0o600)
    with pytest.raises(CredentialConfigError, match="one unencrypted PEM private key"):
        certificate_credential(cert_only)
    mixed = tmp_path / "mixed.pem"
    mixed.write_text(one[: one.index("-----BEGIN CERTIFICATE-----")] + two[two.index("-----BEGIN CERTIFICATE-----") :])
    mixed.chmod(0o600)
    with pytest.raises(CredentialConfigError, match="matches its private key"):
        certificate_credential(mixed)
