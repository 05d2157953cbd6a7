from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from devtools.tls import CA_COMMON_NAME, DevTls, ca_env, ensure_dev_tls


@pytest.fixture
def tls(tmp_path: Path) -> DevTls:
    return ensure_dev_tls(tmp_path)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@contextmanager
def _tls_server(cert: Path, key: Path) -> Iterator[int]:
    """Serve one TLS connection on 127.0.0.1 and say hello; yields the port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            with context.wrap_socket(conn, server_side=True) as tls_conn:
                tls_conn.sendall(b"hello")
        except (OSError, ssl.SSLError):
            pass  # the client rejecting our certificate is an expected outcome in some tests

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        thread.join(timeout=10)
        listener.close()


def _fetch_hello(port: int, bundle: Path, server_hostname: str) -> bytes:
    context = ssl.create_default_context(cafile=str(bundle))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_hostname) as conn,
    ):
        return conn.recv(5)


@pytest.mark.parametrize("server_hostname", ["localhost", "127.0.0.1"])
def test_server_cert_verifies_over_real_tls_with_the_bundle(tls: DevTls, server_hostname: str) -> None:
    with _tls_server(tls.server_cert, tls.server_key) as port:
        assert _fetch_hello(port, tls.ca_bundle, server_hostname) == b"hello"


def test_server_cert_names_usage_and_lifetime(tls: DevTls) -> None:
    cert = _cert(tls.server_cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(days=397)
    assert cert.issuer == _cert(tls.ca_cert).subject
    cert.verify_directly_issued_by(_cert(tls.ca_cert))


def test_ca_is_constrained_to_this_machine(tls: DevTls) -> None:
    ca = _cert(tls.ca_cert)
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == CA_COMMON_NAME
    basic = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    assert set(constraints.value.permitted_subtrees or []) == {
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_network("127.0.0.0/8")),
        x509.IPAddress(ipaddress.ip_network("::1/128")),
    }
    assert not constraints.value.excluded_subtrees


def _leaf_signed_by_dev_ca(tls: DevTls, dns_name: str, out_dir: Path) -> tuple[Path, Path]:
    """What someone holding a leaked dev CA key could mint."""
    ca = _cert(tls.ca_cert)
    ca_key = serialization.load_pem_private_key(tls.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        # Python 3.13 verifies strictly (VERIFY_X509_STRICT): a leaf without its issuer's key id is refused
        # before the name constraint is looked at, which would prove nothing here.
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = out_dir / f"{dns_name}.pem", out_dir / f"{dns_name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_dev_ca_cannot_vouch_for_real_hosts(tls: DevTls, tmp_path: Path) -> None:
    # Control: the same minting recipe for an allowed name verifies, so the rejection below is
    # caused by the name constraint and nothing else.
    cert_path, key_path = _leaf_signed_by_dev_ca(tls, "localhost", tmp_path)
    with _tls_server(cert_path, key_path) as port:
        assert _fetch_hello(port, tls.ca_bundle, "localhost") == b"hello"

    cert_path, key_path = _leaf_signed_by_dev_ca(tls, "example.com", tmp_path)
    with _tls_server(cert_path, key_path) as port, pytest.raises(ssl.SSLCertVerificationError) as error:
        _fetch_hello(port, tls.ca_bundle, "example.com")
    assert "permitted subtree violation" in error.value.verify_message


def test_second_call_reuses_every_file(tls: DevTls, tmp_path: Path) -> None:
    files = [tls.ca_cert, tls.ca_key, tls.server_cert, tls.server_key, tls.ca_bundle]
    before = {p: p.read_bytes() for p in files}
    again = ensure_dev_tls(tmp_path)
    assert again == tls
    assert {p: p.read_bytes() for p in files} == before


def test_files_are_private(tls: DevTls) -> None:
    assert stat.S_IMODE(tls.ca_cert.parent.stat().st_mode) == 0o700
    for path in (tls.ca_key, tls.server_key, tls.ca_cert, tls.server_cert, tls.ca_bundle):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_bundle_keeps_public_cas_and_adds_the_dev_ca(tls: DevTls) -> None:
    bundle = tls.ca_bundle.read_bytes()
    assert bundle.endswith(tls.ca_cert.read_bytes())
    # Counted, not parsed: some public roots carry serials that cryptography warns about.
    assert bundle.count(b"-----BEGIN CERTIFICATE-----") > 10
    assert ca_env(tls) == {"REQUESTS_CA_BUNDLE": str(tls.ca_bundle), "SSL_CERT_FILE": str(tls.ca_bundle)}


def test_server_cert_near_expiry_is_renewed_by_the_same_ca(tls: DevTls, tmp_path: Path) -> None:
    ca_before = tls.ca_cert.read_bytes()
    ca = _cert(tls.ca_cert)
    ca_key = serialization.load_pem_private_key(tls.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    server_key = serialization.load_pem_private_key(tls.server_key.read_bytes(), password=None)
    assert isinstance(server_key, ec.EllipticCurvePrivateKey)
    now = dt.datetime.now(dt.UTC)
    expiring = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=380))
        .not_valid_after(now + dt.timedelta(days=10))
        .add_extension(
            _cert(tls.server_cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value,
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls.server_cert.write_bytes(expiring.public_bytes(serialization.Encoding.PEM))

    ensure_dev_tls(tmp_path)

    renewed = _cert(tls.server_cert)
    assert renewed.not_valid_after_utc - now > dt.timedelta(days=300)
    assert tls.ca_cert.read_bytes() == ca_before


def test_lost_ca_regenerates_everything_and_the_bundle(tls: DevTls, tmp_path: Path) -> None:
    old_ca, old_server = tls.ca_cert.read_bytes(), tls.server_cert.read_bytes()
    tls.ca_key.unlink()

    ensure_dev_tls(tmp_path)

    assert tls.ca_cert.read_bytes() != old_ca
    assert tls.server_cert.read_bytes() != old_server
    _cert(tls.server_cert).verify_directly_issued_by(_cert(tls.ca_cert))
    bundle = tls.ca_bundle.read_bytes()
    assert tls.ca_cert.read_bytes() in bundle and old_ca not in bundle
    with _tls_server(tls.server_cert, tls.server_key) as port:
        assert _fetch_hello(port, tls.ca_bundle, "localhost") == b"hello"
