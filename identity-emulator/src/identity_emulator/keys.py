"""Token signing keys: generated at first run, persisted under the state dir, rotated on demand.

Like Entra, the key set publishes the active key and, for an overlap period after a rotation, the
previous one, so tokens already issued keep validating while relying parties pick up the new key.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from identity_emulator.certificates import certificate, common_name, rsa_key


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64(n: int) -> str:
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


@dataclass
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    created: float
    retired_at: float | None = None

    def jwk(self, issuer: str) -> dict[str, Any]:
        pub = self.private_key.public_key().public_numbers()
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": b64url(hashlib.sha1(der).digest()),  # noqa: S324 - the JWK x5t is defined as SHA-1  # nosec B324
            "n": _int_b64(pub.n),
            "e": _int_b64(pub.e),
            "x5c": [base64.b64encode(der).decode("ascii")],
            "issuer": issuer,
        }


def _new_key() -> SigningKey:
    key = rsa_key()
    now = dt.datetime.now(dt.UTC)
    cert = certificate(
        key,
        common_name("identity-emulator token signing (dev only)"),
        not_before=now - dt.timedelta(minutes=5),
        not_after=now + dt.timedelta(days=365),
    )
    kid = b64url(cert.fingerprint(hashes.SHA256()))[:27]
    return SigningKey(kid, key, cert, time.time())


class KeyStore:
    def __init__(self, directory: Path, overlap_seconds: int) -> None:
        self._dir = directory
        self._overlap = overlap_seconds
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = []
        self._load_or_create()

    @property
    def active(self) -> SigningKey:
        return self._keys[-1]

    def published(self) -> list[SigningKey]:
        now = time.time()
        return [k for k in self._keys if k.retired_at is None or now < k.retired_at + self._overlap]

    def public_key(self, kid: str) -> rsa.RSAPublicKey | None:
        key = next((k for k in self.published() if k.kid == kid), None)
        return key.private_key.public_key() if key else None

    def rotate(self) -> SigningKey:
        with self._lock:
            self.active.retired_at = time.time()
            self._keys.append(_new_key())
            self._save()
            return self.active

    def withdraw_retired(self) -> list[str]:
        """End the overlap now: stop publishing every key but the active one."""
        with self._lock:
            gone = [k.kid for k in self._keys[:-1] if k in self.published()]
            for k in self._keys[:-1]:
                k.retired_at = 0.0
            self._save()
            return gone

    def _load_or_create(self) -> None:
        index = self._dir / "keys.json"
        if index.exists():
            for entry in json.loads(index.read_text()):
                pem = (self._dir / f"{entry['kid']}.pem").read_bytes()
                priv = serialization.load_pem_private_key(pem, password=None)
                assert isinstance(priv, rsa.RSAPrivateKey)
                cert = x509.load_pem_x509_certificate((self._dir / f"{entry['kid']}.crt").read_bytes())
                self._keys.append(SigningKey(entry["kid"], priv, cert, entry["created"], entry["retired_at"]))
        if not self._keys:
            self._keys.append(_new_key())
            self._save()

    def _save(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for k in self._keys:
            pem_path = self._dir / f"{k.kid}.pem"
            if not pem_path.exists():
                pem = k.private_key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
                fd = os.open(pem_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(pem)
                (self._dir / f"{k.kid}.crt").write_bytes(k.certificate.public_bytes(serialization.Encoding.PEM))
        # Retired keys beyond the overlap are dropped from disk too, as a withdrawn key is gone for good.
        keep = [k for k in self._keys if k in self.published()]
        for k in self._keys:
            if k not in keep:
                for suffix in (".pem", ".crt"):
                    (self._dir / f"{k.kid}{suffix}").unlink(missing_ok=True)
        self._keys = keep
        tmp = self._dir / "keys.json.tmp"
        tmp.write_text(
            json.dumps([{"kid": k.kid, "created": k.created, "retired_at": k.retired_at} for k in self._keys])
        )
        os.replace(tmp, self._dir / "keys.json")
