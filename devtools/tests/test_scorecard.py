"""`zt scorecard` against deliberately weak targets (a tiny HTTP server); the live, all-pass run against
the real stack is in tests/e2e/test_scorecard_and_lab.py."""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from devtools.attacks import ATTACKS
from devtools.cli import main
from devtools.scorecard import Row, render, token_from
from zerotrust.redact import JWT_SHAPE

SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$")
KEY = rsa.generate_private_key(65537, 2048)


def _token() -> str:
    now = int(time.time())
    claims = {"aud": "api://weak", "oid": "o1", "scp": "Tasks.Read", "iat": now, "exp": now + 600}
    return jwt.encode(claims, KEY, algorithm="RS256", headers={"kid": "k1"})


class WeakTarget:
    """Publishes a key set like an identity provider, and answers every other request with `answer`
    (200: lets every attack through; 401: refuses even the real token)."""

    def __init__(self) -> None:
        self.answer = 200
        self.requests: list[tuple[str, dict[str, str]]] = []
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                target.requests.append((self.path, dict(self.headers.items())))
                if self.path == "/tenant/v2.0/.well-known/openid-configuration":
                    self._json({"issuer": "x", "jwks_uri": f"{target.base}/keys"})
                elif self.path == "/keys":
                    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
                    self._json({"keys": [{**public, "kid": "k1", "use": "sig"}]})
                else:
                    self.send_response(target.answer)
                    if target.answer == 401:
                        self.send_header("WWW-Authenticate", 'Bearer realm="api"')
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")

            def _json(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def weak() -> Iterator[WeakTarget]:
    target = WeakTarget()
    yield target
    target.close()


def _scorecard(weak: WeakTarget, *extra: str) -> list[str]:
    return ["scorecard", "--api", weak.base, "--downstream", weak.base, "--authority", f"{weak.base}/tenant", *extra]


@pytest.mark.live
def test_a_target_that_lets_everything_through_fails_and_exits_1(
    weak: WeakTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    token = _token()
    assert main([*_scorecard(weak), "--token", token]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert SUMMARY.match(lines[-1])
    passed, failed = map(int, SUMMARY.match(lines[-1]).groups())  # type: ignore[union-attr]
    # api: the real-token check passes (200), every attack fails; audience-confusion skipped there.
    # downstream-api: every attack fails.
    assert (passed, failed) == (1, 2 * len(ATTACKS) - 1)
    assert "1 skipped (not counted as passed)" in lines
    fails = [line for line in lines if " FAIL " in line]
    assert len(fails) == failed
    assert any(
        line.startswith("alg-none ") and "401 invalid_token" in line and "200 no challenge" in line for line in fails
    )
    assert "-> expected HTTP 401, got 200" in out
    assert token not in out + err and not JWT_SHAPE.search(out + err)
    # Fired where they should be: the api's /tasks and downstream-api's /records.
    paths = {path.split("?")[0] for path, _ in weak.requests}
    assert paths == {"/tenant/v2.0/.well-known/openid-configuration", "/keys", "/tasks", "/records"}


@pytest.mark.live
def test_a_target_that_refuses_even_the_real_token_is_not_a_pass(
    weak: WeakTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    # 401 with a bare challenge to everything: the bare-challenge attacks "pass", but the real-token
    # check fails, so the scorecard does too.
    weak.answer = 401
    assert main(["scorecard", "--api", weak.base, "--authority", f"{weak.base}/tenant", "--token", _token()]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^real-token +api +200 +401 bare +FAIL", out, re.MULTILINE)
    assert "the target refused the real token" in out
    assert re.search(r"^no-credentials +api .* PASS ", out, re.MULTILINE)


def test_the_table_is_aligned_and_the_summary_is_the_last_line() -> None:
    rows = [
        Row("a", "api", "401 bare", "401 bare", "PASS", "rule one"),
        Row("a-much-longer-id", "downstream-api", "400 invalid_request", "200 no challenge", "FAIL", "rule two", "why"),
        Row("skipped", "api", "401 invalid_token", "-", "SKIP", "rule three", "because"),
    ]
    lines = render(rows).splitlines()
    table = [line for line in lines if not line.lstrip().startswith("->")][:4]
    columns = [line.index("RESULT") for line in table[:1]] + [
        line.index(v) for line, v in zip(table[1:], ("PASS", "FAIL", "SKIP"), strict=True)
    ]
    assert len(set(columns)) == 1
    assert [line.strip() for line in lines if line.lstrip().startswith("->")] == ["-> why", "-> because"]
    assert lines[-2:] == ["1 skipped (not counted as passed)", "1 passed, 1 failed"]


def test_the_token_comes_from_the_flag_the_file_stdin_or_zt_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "token"
    file.write_text(" from-file\n")
    env = {"ZT_TOKEN": "from-env"}
    assert token_from("from-flag", str(file), env) == "from-flag"
    assert token_from(None, str(file), env) == "from-file"
    assert token_from(None, None, env) == "from-env"
    assert token_from(None, None, {}) is None
    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin\n"))
    assert token_from(None, "-", env) == "from-stdin"


@pytest.mark.live
def test_zt_token_in_the_environment_is_used(
    weak: WeakTarget, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _token()
    monkeypatch.setenv("ZT_TOKEN", token)
    assert main(["scorecard", "--api", weak.base, "--authority", f"{weak.base}/tenant"]) == 1
    out = capsys.readouterr().out
    assert SUMMARY.match(out.splitlines()[-1]) and token not in out
    real = [h for path, h in weak.requests if path == "/tasks" and h.get("Authorization") == f"Bearer {token}"]
    assert len(real) == 1  # the real-token check; every attack sent something else


@pytest.mark.parametrize(
    "args, complaint",
    [
        (["--api", "https://api.example.net", "--token", "t"], "--authority"),
        (["--api", "https://api.example.net", "--authority", "https://login.example.net/t"], "ZT_TOKEN"),
    ],
)
def test_a_deployment_needs_the_authority_and_a_token(
    args: list[str], complaint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZT_TOKEN", raising=False)
    assert main(["scorecard", *args]) == 2
    assert complaint in capsys.readouterr().err


@pytest.mark.live
def test_a_token_that_is_not_an_access_token_is_refused_without_echoing_it(
    weak: WeakTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "not-a-jwt-but-maybe-a-secret"  # pragma: allowlist secret
    assert main([*_scorecard(weak), "--token", secret]) == 2
    out, err = capsys.readouterr()
    assert "not a JWT" in err and secret not in out + err


@pytest.mark.live
def test_an_unreachable_identity_provider_is_a_clear_error(
    weak: WeakTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["scorecard", "--api", weak.base, "--authority", f"{weak.base}/other-tenant", "--token", _token()]
    assert main(args) == 2
    assert "cannot read the key set" in capsys.readouterr().err


def test_without_a_running_stack_it_says_what_to_do(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZT_LOCAL_DIR", str(tmp_path))
    assert main(["scorecard"]) == 2
    assert "make run" in capsys.readouterr().err
