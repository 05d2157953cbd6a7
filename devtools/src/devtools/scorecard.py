"""`zt scorecard`: every attack of the catalogue (devtools.attacks) fired at the api and downstream-api,
printed as a PASS/FAIL table with the rule that has to stop each one.

By default it targets the local stack (`.local/stack.json`: URLs, CA bundle, authority) with a token for
a demo user from the device code flow, as `zt token` gets it. Pointed at a deployment, it takes the URLs,
the authority and a user's token for the api from the command line; the token is never printed.

One user token for the api is all a client has, so it is used for both targets: at the api it is the
real token the attacks mutate; at downstream-api it is mutated the same way (the signature is checked
before the audience) and, untouched, it is the token for another audience. A token for downstream-api
is never available to a client (only the api gets one, on behalf of the user), so at the api the
audience-confusion attack is skipped, and a skip is not a pass.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import ssl
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import certifi
import httpx
import jwt
from zerotrust.redact import JWT_SHAPE as _JWT_SHAPE

from devtools.attacks import ATTACKS, Attack, AttackContext
from devtools.firing import fire

DEFAULT_USER = "alice@contoso.test"
REQUEST_TIMEOUT = 10.0
# Anything token-shaped is blanked from the output, whatever produced it (defence in depth).
_ERROR_ATTRIBUTE = re.compile(r'\berror="([A-Za-z0-9_.-]{1,40})"')

Verdict = Literal["PASS", "FAIL", "SKIP", "ERROR"]


class ScorecardError(RuntimeError):
    """The scorecard cannot run (no token, identity provider unreachable, ...); printed without a traceback."""


@dataclass(frozen=True)
class Target:
    name: str
    url: str  # a GET route that needs a valid token
    realm: str
    # The caller's token is for another API here (so it is the audience-confusion token too).
    token_is_other_audience: bool = False
    # The caller's token is meant to be accepted here: checked first, so a target that refuses
    # everything cannot pass every attack.
    accepts_token: bool = False


@dataclass(frozen=True)
class Row:
    id: str
    target: str
    expected: str
    got: str
    verdict: Verdict
    rule: str
    why: str = ""  # for FAIL, SKIP and ERROR: what went wrong, or why it was not fired


def targets(api: str | None, downstream: str | None) -> list[Target]:
    """The api's GET /tasks and downstream-api's GET /records, for the base URLs given."""
    found = []
    if api:
        found.append(Target("api", api.rstrip("/") + "/tasks", "api", accepts_token=True))
    if downstream:
        found.append(
            Target(
                "downstream-api", downstream.rstrip("/") + "/records", "downstream-api", token_is_other_audience=True
            )
        )
    return found


def check_token(token: str) -> None:
    """The attacks are built from a real access token: a JWS naming its key, with an expiry."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise ScorecardError("the token is not a JWT access token (three base64url parts)") from None
    if not header.get("kid") or "exp" not in claims:
        raise ScorecardError("the token has no kid or no exp: the attacks need a real access token for the api")


def fetch_jwks(client: httpx.Client, authority: str) -> dict[str, Any]:
    """The provider's published key set, found through its OpenID Connect discovery document."""
    discovery_url = authority.rstrip("/") + "/v2.0/.well-known/openid-configuration"
    try:
        response = client.get(discovery_url)
        response.raise_for_status()
        jwks_uri = response.json()["jwks_uri"]
        response = client.get(jwks_uri)
        response.raise_for_status()
        jwks: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise ScorecardError(f"cannot read the key set of {authority} ({type(exc).__name__})") from None
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ScorecardError(f"the key set of {authority} lists no keys")
    return jwks


def http_client(ca_bundle: str | Path | None, *, trust_env: bool = True) -> httpx.Client:
    """An HTTPS client that trusts `ca_bundle` (else SSL_CERT_FILE, else certifi's roots)."""
    cafile = str(ca_bundle or os.environ.get("SSL_CERT_FILE") or certifi.where())
    return httpx.Client(
        verify=ssl.create_default_context(cafile=cafile),
        timeout=REQUEST_TIMEOUT,
        follow_redirects=False,
        trust_env=trust_env,
    )


def run(targets: Sequence[Target], token: str, jwks: dict[str, Any], client: httpx.Client) -> list[Row]:
    rows: list[Row] = []
    for target in targets:
        if target.accepts_token:
            rows.append(_control(target, token, client))
        ctx = AttackContext(token, jwks, token if target.token_is_other_audience else None)
        for attack in ATTACKS:
            rows.append(_fire(attack, ctx, client, target))
    return rows


def _control(target: Target, token: str, client: httpx.Client) -> Row:
    expected = "200"
    rule = "The real token is accepted, so the refusals below are the checks at work, not a closed door."
    try:
        response = client.get(target.url, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        return Row("real-token", target.name, expected, "-", "ERROR", rule, f"could not send: {type(exc).__name__}")
    got = f"{response.status_code} {_challenge(response.headers.get('www-authenticate', ''), target.realm)}"
    if response.status_code == 200:
        return Row("real-token", target.name, expected, str(response.status_code), "PASS", rule)
    why = "the target refused the real token (expired? wrong API?): the results below prove nothing"
    return Row("real-token", target.name, expected, got, "FAIL", rule, why)


def _fire(attack: Attack, ctx: AttackContext, client: httpx.Client, target: Target) -> Row:
    expected = f"{attack.status} {attack.error or 'bare'}"
    if attack.needs_other_audience and ctx.other_audience_token is None:
        why = "needs a real token for another API; a client holds none for downstream-api (only the api gets one)"
        return Row(attack.id, target.name, expected, "-", "SKIP", attack.rule, why)
    try:
        outcome = fire(attack, ctx, client, target.url, target.realm)
    except httpx.HTTPError as exc:
        return Row(attack.id, target.name, expected, "-", "ERROR", attack.rule, f"could not send: {type(exc).__name__}")
    got = f"{outcome.status} {_challenge(outcome.www_authenticate, target.realm)}"
    if outcome.passed:
        return Row(attack.id, target.name, expected, got, "PASS", attack.rule)
    return Row(attack.id, target.name, expected, got, "FAIL", attack.rule, outcome.why)


def _challenge(www_authenticate: str, realm: str) -> str:
    """The challenge in a word or two; only a known-safe error code is quoted from the answer."""
    if not www_authenticate:
        return "no challenge"
    if not www_authenticate.lower().startswith("bearer"):
        return "other scheme"
    match = _ERROR_ATTRIBUTE.search(www_authenticate)
    kind = match.group(1) if match else "bare"
    return kind if f'realm="{realm}"' in www_authenticate else f"{kind}, wrong realm"


def counts(rows: Iterable[Row]) -> tuple[int, int, int]:
    """(passed, failed, skipped); an attack that could not be sent counts as failed."""
    verdicts = [r.verdict for r in rows]
    return verdicts.count("PASS"), verdicts.count("FAIL") + verdicts.count("ERROR"), verdicts.count("SKIP")


def render(rows: Sequence[Row], *, secrets: Iterable[str] = ()) -> str:
    """An aligned plain-text table, then the summary line `N passed, M failed` (last, for CI)."""
    header = ("ATTACK", "TARGET", "EXPECTED", "GOT", "RESULT", "RULE")
    cells = [header, *((r.id, r.target, r.expected, r.got, r.verdict, r.rule) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header) - 1)]
    lines = []
    for index, cell in enumerate(cells):
        lines.append("  ".join([*(v.ljust(w) for v, w in zip(cell, widths, strict=False)), cell[-1]]).rstrip())
        row = rows[index - 1] if index else None
        if row is not None and row.why:
            lines.append(" " * (sum(widths[:4]) + 8) + f"-> {row.why}")
    passed, failed, skipped = counts(rows)
    if skipped:
        lines.append(f"{skipped} skipped (not counted as passed)")
    lines.append(f"{passed} passed, {failed} failed")
    return redact("\n".join(lines), secrets)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[token]")
    return _JWT_SHAPE.sub("[token]", text)


@dataclass(frozen=True)
class Plan:
    """What to attack and with what: from stack.json or from the command line."""

    targets: list[Target]
    authority: str
    ca_bundle: str | None
    token: str | None  # None: get one for `user` from the local stack
    user: str = DEFAULT_USER
    stack: dict[str, Any] | None = None
    trust_env: bool = True


def token_from(token: str | None, token_file: str | None, environ: Mapping[str, str]) -> str | None:
    """--token, else --token-file (`-` for stdin), else ZT_TOKEN; None if none is given."""
    if token:
        return token.strip()
    if source := token_file:
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text()
        except OSError as exc:
            raise ScorecardError(f"cannot read the token file {source}: {exc.strerror}") from None
        return text.strip() or None
    return environ.get("ZT_TOKEN", "").strip() or None


def plan_for(
    api: str | None,
    downstream: str | None,
    authority: str | None,
    ca_bundle: str | None,
    token: str | None,
    user: str | None,
    stack_file: Path,
) -> Plan:
    """A deployment's plan when --api/--downstream are given, else the local stack's (`stack_file`)."""
    from devtools.token import TokenError, load_stack

    if api or downstream:
        if not authority:
            raise ScorecardError("with --api/--downstream, give the identity provider's --authority URL too")
        if not token:
            raise ScorecardError("with --api/--downstream, give a user's token for the api: --token-file or ZT_TOKEN")
        return Plan(targets(api, downstream), authority, ca_bundle, token)
    try:
        stack = load_stack(stack_file)
    except TokenError as exc:
        raise ScorecardError(str(exc)) from None
    return Plan(
        targets(stack["api"], stack["downstream_api"]),
        authority or stack["authority"],
        ca_bundle or stack["ca_bundle"],
        token,
        user=user or DEFAULT_USER,
        stack=stack,
        # Local services only: a developer's HTTP(S)_PROXY must not see these requests.
        trust_env=False,
    )


def execute(plan: Plan, out: Any = None) -> int:
    """Run the plan and print the table; 0 when every attack was stopped, 1 otherwise."""
    out = out or sys.stdout
    with http_client(plan.ca_bundle, trust_env=plan.trust_env) as client:
        token = plan.token or _device_code_token(plan)
        check_token(token)
        jwks = fetch_jwks(client, plan.authority)
        rows = run(plan.targets, token, jwks, client)
    print(render(rows, secrets=[token]), file=out)
    _, failed, _ = counts(rows)
    return 1 if failed else 0


def _device_code_token(plan: Plan) -> str:
    from devtools.token import TokenError, device_code_token

    assert plan.stack is not None
    # device_code_token prints the "open this page" message meant for a person; here nobody needs it.
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            return device_code_token(plan.stack, plan.user)
    except TokenError as exc:
        raise ScorecardError(str(exc)) from None
