"""Certificate credentials for local runs: the fallback where no managed identity exists.

`zt certificate --app web` does locally what an administrator does in Entra ID: creates a key pair
and a self-signed certificate, uploads the public half to the app registration (here: drops it
where the emulator reads registered certificates, `.local/credentials/<app>/`), and hands the
private half to the workload (`.local/<app>/client-certificate.pem`, owner-only; Key Vault in
Azure). Nothing of it is committed: `.local/` is git-ignored.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from identity_emulator.certificates import certificate, common_name, key_usage, private_pem, rsa_key

from devtools.files import write_private

# Short-lived on purpose: a local fallback credential, renewed by running the command again.
VALIDITY = dt.timedelta(days=30)
APPS = ("web", "api", "daemon")
# The registrations a workload's certificate is uploaded to: the api has two (its app-only calls are made
# as api-app-only, infra/registrations.yaml), and one credential of the workload serves both.
REGISTRATIONS = {"api": ("api", "api-app-only")}


def register_certificate(
    local_dir: Path, app: str, validity: dt.timedelta = VALIDITY
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A new key pair for `app`, its self-signed certificate registered where the emulator reads
    registered certificates (as an administrator uploads a .cer); the private half is returned."""
    key = rsa_key()
    now = dt.datetime.now(dt.UTC)
    cert = certificate(
        key,
        common_name(f"Zero Trust sample {app} (local credential)"),
        not_before=now - dt.timedelta(minutes=5),
        not_after=now + validity,
        extensions=[(key_usage(digital_signature=True), True)],
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    for registration in REGISTRATIONS.get(app, (app,)):
        registered = local_dir / "credentials" / registration
        registered.mkdir(mode=0o700, parents=True, exist_ok=True)
        (registered / f"{cert.fingerprint(hashes.SHA256()).hex()[:16]}.crt").write_bytes(cert_pem)
    return key, cert


def create_certificate_credential(local_dir: Path, app: str, validity: dt.timedelta = VALIDITY) -> Path:
    """Register a new certificate for `app` and return the PEM file (key + certificate) for it."""
    if app not in APPS:
        raise ValueError(f"no certificate credential for {app!r}; one of: {', '.join(APPS)}")
    key, cert = register_certificate(local_dir, app, validity)
    private = local_dir / app
    private.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = private / "client-certificate.pem"
    write_private(pem, private_pem(key) + cert.public_bytes(serialization.Encoding.PEM))
    return pem
