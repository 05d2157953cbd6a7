"""The secret scan behind tests/security/test_secrets.py (guidance: no secret anywhere).

Three checks, each a plain function so a test can prove it finds what it must:

- `scan_files`: detect-secrets (Yelp's scanner, its default plugins and filters) over files, plus a
  check of our own for PEM private key blocks that no `pragma: allowlist secret` can silence: a
  false positive can be allowlisted on its line after review, a private key never.
- `tracked_credential_files`: paths git must never hold (`.local/`, key and certificate files).
- `scan_text`: text the running stack produced (logs, pages): token shapes, private key blocks,
  detect-secrets' line plugins, and the exact values of secrets known to the test (the demo
  password, the refresh tokens in the web's cache, the auth code the browser carried...).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from detect_secrets import SecretsCollection
from detect_secrets.settings import default_settings
from zerotrust.redact import JWT_SHAPE

PRIVATE_KEY_BLOCK = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
# detect-secrets' keyword plugin misses a quoted value that starts with "-" (a token_urlsafe value does, one
# time in 64): the same assignment, for such values only, is checked here.
DASHED_KEYWORD_VALUE = re.compile(
    r"(?i)\b\w*(?:secret|password|passwd|pwd|api_?key|token)\w*\s*[:=]\s*[\"']-[A-Za-z0-9_\-]{15,}[\"']"
)
CREDENTIAL_SUFFIXES = {".pem", ".key", ".pfx", ".p12", ".jks", ".keystore"}
# A line of log or page text is scanned up to this length (a pathological line stays cheap).
MAX_LINE = 20_000


@dataclass(frozen=True)
class Finding:
    where: str
    line: int
    kind: str

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: {self.kind}"


def git_tracked(root: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, check=True, capture_output=True).stdout
    return [p for p in out.decode().split("\0") if p]


def scan_files(root: Path, paths: Iterable[str]) -> list[Finding]:
    """detect-secrets and the private-key check over `paths` (relative to `root`)."""
    paths = [p for p in paths if (root / p).is_file()]
    collection = SecretsCollection(root=str(root))
    with default_settings():
        for path in paths:
            collection.scan_file(path)
    findings = [Finding(filename, secret.line_number or 0, secret.type) for filename, secret in collection]
    for path in paths:
        try:
            text = (root / path).read_text()
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if PRIVATE_KEY_BLOCK.search(line):
                findings.append(Finding(path, number, "PEM private key block"))
            if DASHED_KEYWORD_VALUE.search(line) and "pragma: allowlist secret" not in line:
                findings.append(Finding(path, number, "Secret Keyword"))
    return sorted(set(findings), key=lambda f: (f.where, f.line, f.kind))


def tracked_credential_files(paths: Iterable[str]) -> list[str]:
    """Tracked paths under .local/ or named like key, certificate or keystore files."""
    bad = []
    for path in paths:
        pure = PurePosixPath(path)
        if ".local" in pure.parts or pure.suffix.lower() in CREDENTIAL_SUFFIXES:
            bad.append(path)
    return bad


LABELLED_TRACE_ID = re.compile(
    r"((?:reference <code>|correlation[ _-]id[=: ]\s*|\"(?:correlation_id|trace_id|span_id|parent_id)\":\s*\"))"
    r"([0-9a-f]{32}|[0-9a-f]{16})\b|(traceparent='00-)([0-9a-f]{32}-[0-9a-f]{16})"
)


def _masked(match: re.Match[str]) -> str:
    label = match.group(1) or match.group(3)
    value = match.group(2) or match.group(4)
    return label + re.sub(r"[0-9a-f]", "0", value)


def scan_text(where: str, text: str, known: Mapping[str, Iterable[str]] | None = None) -> list[Finding]:
    """Findings in text a service or page produced; `known` maps a kind to exact secret values."""
    values = [(kind, v) for kind, vs in (known or {}).items() for v in vs if v]
    findings = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line[:MAX_LINE]
        if JWT_SHAPE.search(line):
            findings.append(Finding(where, number, "JWT-shaped token"))
        if PRIVATE_KEY_BLOCK.search(line):
            findings.append(Finding(where, number, "PEM private key block"))
        findings.extend(Finding(where, number, kind) for kind, value in values if value in line)
    # detect-secrets scans files (its filters need the file's context): the text goes through a
    # private temporary file, as a log file would. Trace ids (the correlation ids pages and logs show on
    # purpose) are hex of a secret's entropy: masked where they are labelled as such, and only there.
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "captured.log"
        path.write_text(LABELLED_TRACE_ID.sub(_masked, text))
        findings.extend(
            Finding(where, f.line, f"detect-secrets: {f.kind}") for f in scan_files(Path(folder), ["captured.log"])
        )
    return findings


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.security.secretscan [FILE...]`: the repository scan of test_secrets.py, for `make gates`
    and the pre-commit hook (the staged files), or every tracked file when none is named."""
    root = Path.cwd()
    paths = list(sys.argv[1:] if argv is None else argv) or git_tracked(root)
    findings = scan_files(root, paths)
    bad_files = tracked_credential_files(paths)
    for finding in findings:
        print(f"{finding}  (a reviewed false positive gets `# pragma: allowlist secret` on its line)")
    for path in bad_files:
        print(f"{path}: local state or a key/certificate file must not be committed")
    return 1 if findings or bad_files else 0


if __name__ == "__main__":
    raise SystemExit(main())
