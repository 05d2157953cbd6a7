"""A private, name-constrained development CA and a localhost server certificate.

Everything lives under the git-ignored local dir; nothing is installed system-wide. Child
processes trust the dev CA through a bundle passed in their environment (see `ca_env`).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import certifi
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from identity_emulator.certificates import certificate, common_name, ec_key, key_usage, private_pem

from devtools.files import write_private

CA_COMMON_NAME = "Zero Trust Sample local dev CA - never trust outside this laptop"
SYSTEM_CA_FILE = Path("/etc/ssl/certs/ca-certificates.crt")

# Renewing well before expiry means a long-running laptop setup never hits an expired cert mid-demo.
RENEW_BEFORE = dt.timedelta(days=30)
CA_LIFETIME = dt.timedelta(days=3 * 365)
# Browsers reject leaf certificates valid for more than 398 days, even from a private CA.
SERVER_LIFETIME = dt.timedelta(days=397)
# Tolerates small clock differences between the process that issues and the one that verifies.
BACKDATE = dt.timedelta(hours=1)

SERVER_DNS_NAMES = ("localhost",)
SERVER_IPS = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))


@dataclass(frozen=True)
class DevTls:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    ca_bundle: Path


def ca_env(tls: DevTls) -> dict[str, str]:
    """Environment for child processes so requests/httpx/ssl trust the dev CA and public CAs alike."""
    bundle = str(tls.ca_bundle)
    return {"REQUESTS_CA_BUNDLE": bundle, "SSL_CERT_FILE": bundle}


def tls_paths(tls_dir: Path) -> DevTls:
    """Where the dev CA and the server certificate are in `tls_dir` (ensure_dev_tls makes them)."""
    return DevTls(
        ca_cert=tls_dir / "ca.pem",
        ca_key=tls_dir / "ca-key.pem",
        server_cert=tls_dir / "server.pem",
        server_key=tls_dir / "server-key.pem",
        ca_bundle=tls_dir / "ca-bundle.pem",
    )


def ensure_dev_tls(local_dir: Path) -> DevTls:
    tls_dir = local_dir / "tls"
    tls_dir.mkdir(parents=True, exist_ok=True)
    # mkdir's mode is filtered by umask and ignored for an existing dir, so set it explicitly.
    tls_dir.chmod(0o700)
    paths = tls_paths(tls_dir)
    # `zt run` and tests may race on first run; a lock keeps cert and key files from pairing up wrongly.
    with (tls_dir / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _ensure_locked(paths)
    return paths


def _ensure_locked(paths: DevTls) -> None:
    now = dt.datetime.now(dt.UTC)

    ca_cert = _load_cert(paths.ca_cert)
    ca_key = _load_key(paths.ca_key)
    if ca_cert is None or ca_key is None or not _usable(ca_cert, ca_key, now):
        ca_cert, ca_key = _make_ca(now)
        write_private(paths.ca_key, private_pem(ca_key))
        write_private(paths.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))

    server_cert = _load_cert(paths.server_cert)
    server_key = _load_key(paths.server_key)
    if (
        server_cert is None
        or server_key is None
        or not _usable(server_cert, server_key, now)
        or not _issued_by(server_cert, ca_cert)
        or not _has_expected_names(server_cert)
    ):
        server_cert, server_key = _make_server(ca_cert, ca_key, now)
        write_private(paths.server_key, private_pem(server_key))
        write_private(paths.server_cert, server_cert.public_bytes(serialization.Encoding.PEM))

    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    try:
        bundle = paths.ca_bundle.read_bytes()
    except FileNotFoundError:
        bundle = b""
    if ca_pem not in bundle:
        write_private(paths.ca_bundle, _system_ca_pem().rstrip(b"\n") + b"\n" + ca_pem)


def _load_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (FileNotFoundError, ValueError):
        # A missing or damaged file is simply regenerated; it only ever held local dev material.
        return None


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey | None:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (FileNotFoundError, ValueError, TypeError):
        return None
    return key if isinstance(key, ec.EllipticCurvePrivateKey) else None


def _usable(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> bool:
    same_key = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return same_key and cert.not_valid_before_utc <= now and cert.not_valid_after_utc - now > RENEW_BEFORE


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    # The CA subject never changes, so only the signature tells a cert from a previous CA apart.
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _has_expected_names(cert: x509.Certificate) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return set(san.get_values_for_type(x509.DNSName)) == set(SERVER_DNS_NAMES) and set(
        san.get_values_for_type(x509.IPAddress)
    ) == set(SERVER_IPS)


def _make_ca(now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Zero Trust Sample"),
            x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME),
        ]
    )
    # Name constraints limit the damage of a leaked dev CA key to names that only reach this machine.
    constraints = x509.NameConstraints(
        permitted_subtrees=[
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_network("127.0.0.0/8")),
            x509.IPAddress(ipaddress.ip_network("::1/128")),
        ],
        excluded_subtrees=None,
    )
    extensions = [
        (x509.BasicConstraints(ca=True, path_length=0), True),
        (key_usage(cert_sign=True), True),
        (constraints, True),
        (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
    ]
    not_before = now - BACKDATE
    return certificate(key, name, not_before=not_before, not_after=not_before + CA_LIFETIME, extensions=extensions), key


def _make_server(
    ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec_key()
    san = x509.SubjectAlternativeName(
        [x509.DNSName(n) for n in SERVER_DNS_NAMES] + [x509.IPAddress(ip) for ip in SERVER_IPS]
    )
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    extensions = [
        (san, False),
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (key_usage(digital_signature=True), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
        # Strict verifiers (Python 3.13's default context among them) require the AKI on leaves.
        (x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), False),
    ]
    not_before = now - BACKDATE
    cert = certificate(
        key,
        common_name("localhost"),
        not_before=not_before,
        not_after=not_before + SERVER_LIFETIME,
        extensions=extensions,
        issuer=(ca_cert, ca_key),
    )
    return cert, key


def _system_ca_pem() -> bytes:
    # Children also call public endpoints (PyPI through tools, say), so the bundle must keep public CAs.
    source = SYSTEM_CA_FILE if SYSTEM_CA_FILE.is_file() else Path(certifi.where())
    return source.read_bytes()
