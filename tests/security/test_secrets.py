"""No secret anywhere (articles 15 and 16): not in the repository, not in a log line, not in a page.

The repository: detect-secrets over every file git tracks, a private-key check no allowlist
silences, and no `.local/` or key/certificate file tracked. No baseline file: the few reviewed false
positives (test fixtures shaped like secrets on purpose) carry `# pragma: allowlist secret` on
their own line, so a new finding anywhere fails here and a reviewer sees each exception in place.
A planted secret proves the scanner finds what it must.

The running stack: sign-in, tasks, the identity chain (/me at every tier), sign-out and the device
code flow (`zt token`), then every service's captured output and every page the browser got are
scanned for token shapes, private keys, and the exact secret values of this run (the demo password,
the managed-identity headers, the auth code, the tokens in the web's own cache). So is the process
environment of every service: configuration only, and each service's own managed-identity header
(as Azure gives every app one), never another's.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from devtools.paths import repo_root

from tests.chain import cache_secrets, csrf, web_token_caches
from tests.security.secretscan import git_tracked, scan_files, scan_text, tracked_credential_files
from tests.support.launch import RunningStack
from tests.support.people import Person

pytestmark = [
    pytest.mark.guidance("identity-non-user-applications"),
    pytest.mark.guidance("token-management"),
]

ROOT = repo_root()


@pytest.mark.live
def test_no_tracked_file_holds_a_secret() -> None:
    findings = scan_files(ROOT, git_tracked(ROOT))
    assert not findings, "secrets in tracked files (remove them; a reviewed false positive gets " + (
        "`# pragma: allowlist secret` on its line):\n" + "\n".join(map(str, findings))
    )


@pytest.mark.live
def test_no_local_state_or_key_file_is_tracked() -> None:
    tracked = git_tracked(ROOT)
    assert len(tracked) > 50  # the scan sees the repository, not an empty list
    assert not tracked_credential_files(tracked)


LETTER = "s"


def _planted(folder: Path) -> dict[str, str]:
    """Secrets as they leak in real code, generated fresh so none of them is in this file."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    aws = "AKIA" + "".join(secrets.choice(string.ascii_uppercase + "234567") for _ in range(16))
    files = {
        # A letter first: detect-secrets' keyword pattern misses a value that starts with "-" (1 run in 64).
        "settings.py": f'client_secret = "{LETTER}{secrets.token_urlsafe(30)}"\n',
        "deploy.sh": f"export AWS_ACCESS_KEY_ID={aws}\n",
        "creds/service.txt": "the key:\n" + pem.decode(),
    }
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return files


def test_a_planted_secret_is_found(tmp_path: Path) -> None:
    planted = _planted(tmp_path)
    (tmp_path / "clean.py").write_text('SCOPE = "api://AzureADTokenExchange/.default"\n')
    findings = scan_files(tmp_path, [*planted, "clean.py"])
    kinds = {(f.where, f.kind) for f in findings}
    assert ("settings.py", "Secret Keyword") in kinds
    assert ("deploy.sh", "AWS Access Key") in kinds
    assert ("creds/service.txt", "PEM private key block") in kinds
    assert not [f for f in findings if f.where == "clean.py"]


def test_a_secret_keyword_whose_value_starts_with_a_dash_is_found_too(tmp_path: Path) -> None:
    # The value detect-secrets' own keyword pattern misses; the scan's extra check finds it.
    (tmp_path / "settings.py").write_text(f'client_secret = "-{secrets.token_urlsafe(30)}"\n')
    (tmp_path / "flags.py").write_text('ARGS = ["--verbose", "-n", "--token-file"]\n')
    findings = scan_files(tmp_path, ["settings.py", "flags.py"])
    assert ("settings.py", "Secret Keyword") in {(f.where, f.kind) for f in findings}
    assert not [f for f in findings if f.where == "flags.py"]


def test_an_allowlist_pragma_does_not_hide_a_private_key(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    lines = pem.decode().splitlines()
    (tmp_path / "fixture.py").write_text(
        "\n".join(f"{line}  # pragma: allowlist secret" for line in lines)  # pragma: allowlist secret
    )
    assert [f.kind for f in scan_files(tmp_path, ["fixture.py"])] == ["PEM private key block"]


def test_key_and_local_files_are_refused_by_name() -> None:
    assert tracked_credential_files(
        [
            "README.md",
            ".local/stack.json",
            "web/.local/x",
            "certs/client.pem",
            "a/b.KEY",
            "c.pfx",
            "web/src/web/keys.py",
        ]
    ) == [".local/stack.json", "web/.local/x", "certs/client.pem", "a/b.KEY", "c.pfx"]


def test_a_token_or_known_secret_in_captured_text_is_found() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"  # pragma: allowlist secret
    found = scan_text("log", f"INFO got {token}\nINFO refresh=r-123-abc\nINFO fine\n", {"refresh token": ["r-123-abc"]})
    assert [(f.line, f.kind) for f in found][:2] == [(1, "JWT-shaped token"), (2, "refresh token")]
    assert not [f for f in found if f.line == 3]


@pytest.mark.live
def test_no_secret_in_any_log_line_or_page_of_the_running_stack(stack: RunningStack) -> None:
    local, web = stack.local_dir, stack.web
    alice = Person()
    r = alice.get(f"{web}/auth/login?next=/tasks")
    assert r.status_code == 302
    action, fields = alice.sign_in_at_emulator(r.headers["location"], stack.info["demo_password"])
    auth_code = fields["code"]
    r = alice.post(action, fields)
    assert r.status_code == 303, r.text[:300]
    page = alice.get(f"{web}/tasks")
    # The first write may ask alice for the write scope (incremental consent), once.
    r = alice.consent_if_asked(alice.post(f"{web}/tasks", {"csrf_token": csrf(page.text), "title": "Scan the logs"}))
    assert r.status_code == 303
    assert "Scan the logs" in alice.get(urljoin(web, r.headers["location"])).text
    assert alice.get(f"{web}/chain").status_code == 200  # /me at the api and at downstream-api
    held = cache_secrets(web_token_caches(local / "web"))
    assert held["AccessToken"] and held["RefreshToken"] and held["IdToken"]  # there is something to find

    cli = subprocess.run(
        [sys.executable, "-m", "devtools.cli", "token", "--user", "bob@contoso.test"],
        env={**os.environ, "ZT_LOCAL_DIR": str(local)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert cli.returncode == 0, cli.stderr
    device_token = cli.stdout.strip()

    r = alice.post(f"{web}/auth/logout", {"csrf_token": csrf(alice.get(f"{web}/").text)})
    assert r.status_code == 302
    alice.get(r.headers["location"])

    known = {
        "demo password": [stack.info["demo_password"]],
        "managed-identity header": list(
            json.loads((local / "emulator" / "managed-identity-headers.json").read_text()).values()
        ),
        "web session key": [(local / "web" / "session-key").read_text().strip()],
        "auth code": [auth_code],
        "refresh token": held["RefreshToken"],
        "access token": [*held["AccessToken"], device_token],
        "ID token": held["IdToken"],
    }
    log = stack.log_path.read_text(errors="replace")
    assert "[web]" in log and "[api]" in log and "[downstream-api]" in log and "[identity-emulator]" in log
    findings = scan_text("zt run output", log, known)
    for response in alice.seen:
        if str(response.url).startswith(web):
            shown = "\n".join([response.text, *(f"{k}: {v}" for k, v in response.headers.multi_items())])
            # The one secret a page must carry is its session's CSRF token, in the forms' hidden field.
            findings += [
                f
                for f in scan_text(str(response.url), shown, known)
                if not (f.kind.startswith("detect-secrets") and 'name="csrf_token"' in shown.splitlines()[f.line - 1])
            ]
    # The services' own environments: configuration only. Each holds its own managed-identity header, as
    # Azure hands one to every app (the one secret an environment is for), and no other service's.
    by_service = json.loads((local / "emulator" / "managed-identity-headers.json").read_text())
    in_environment = {kind: values for kind, values in known.items() if kind != "managed-identity header"}
    services = 0
    for pid in _descendants(stack.process.pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue  # gone meanwhile
        module = command[command.index(b"-m") + 1].decode() if b"-m" in command else ""
        own = by_service.get(module.replace("_", "-"))
        held = {value for _, _, value in (v.partition("=") for v in environ) if value in by_service.values()}
        assert held <= {own}, f"{module or pid} holds another identity's managed-identity header"
        services += own is not None
        lines = [v for v in environ if not v.startswith("IDENTITY_HEADER=")]
        findings += scan_text(f"environment of {module or pid}", "\n".join(lines), in_environment)
    assert services == 3  # web, api and downstream-api were all looked at
    assert not findings, "\n".join(map(str, findings))


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis.
            parents[int(stat_file.parent.name)] = int(stat_file.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    assert len(found) >= 4, f"expected the stack's services under pid {root}, found {found}"
    return found
