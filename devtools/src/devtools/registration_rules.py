"""The app-registration rules as code: a list of problems for a registration manifest (infra/registrations.yaml).

# zt: app-registration
# zt: developer-strategy-authorization-best-practices
One function, `problems(manifest)`, that the tests, the pre-commit hook and `make` share
(`zt check-registrations [PATH]`, or `python -m devtools.registration_rules [PATH]`): each problem names
its rule, the application and what to change. The rules are guidance articles 7 (registering
applications) and 23 (authorization best practices) as this sample keeps them; Terraform creates the
registrations from the same file, so a rule broken here would be broken in Entra ID.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from devtools.paths import repo_root

TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"  # noqa: S105  # nosec B105 - an audience, not a secret
LOOPBACK = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
BASELINE_ROLE = "User"
# Keys that would hold a shared secret: none may appear anywhere in a registration.
SECRET_WORDS = ("secret", "password")
# A URL filled in with the web app's origin where it is known (the emulator, Terraform).
WEB_ORIGIN = "{web_origin}"


@dataclass(frozen=True)
class Problem:
    rule: str  # a short, stable name, e.g. "redirect-uri-wildcard"
    app: str  # the registration's name in the manifest
    detail: str  # what is wrong and what to do

    def __str__(self) -> str:
        return f"{self.app}: [{self.rule}] {self.detail}"


def problems(manifest: dict[str, Any]) -> list[Problem]:
    """Every rule broken by `manifest` (the parsed YAML), sorted; empty when it keeps them all."""
    apps: dict[str, Any] = manifest.get("applications") or {}
    identities = set((manifest.get("managed_identities") or {}).keys())
    found: list[Problem] = []
    for name, spec in apps.items():
        spec = spec or {}
        for rule, detail in _app_problems(name, spec, apps, identities):
            found.append(Problem(rule, name, detail))
    return sorted(found, key=lambda p: (p.app, p.rule, p.detail))


def _app_problems(name: str, spec: dict[str, Any], apps: dict[str, Any], mis: set[str]) -> Iterator[tuple[str, str]]:
    yield from _assignment(spec, apps)
    yield from _redirects(spec)
    yield from _ownership(spec)
    yield from _credentials(spec, mis)
    yield from _permissions(name, spec, apps)


def _users_come(spec: dict[str, Any]) -> bool:
    """People sign in to it (redirect URIs, a public client) or call it through an app (it has scopes)."""
    return bool(spec.get("redirect_uris") or spec.get("scopes") or spec.get("client_type") == "public")


def _assignment(spec: dict[str, Any], apps: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if spec.get("app_role_assignment_required") is not True:
        # The one exception Entra forces (no user consent to an app that requires assignment): it gives its
        # reason, and every app of ours it gets tokens for requires assignment, so no one unassigned gets far.
        reason = str(spec.get("assignment_not_required_because") or "").strip()
        ours = [r for r in spec.get("required_resource_access") or {} if r in apps]
        gated = bool(ours) and all((apps[r] or {}).get("app_role_assignment_required") is True for r in ours)
        if not (reason and gated):
            yield (
                "assignment-required",
                (
                    "set app_role_assignment_required: true (only people and apps assigned get in), or give "
                    "assignment_not_required_because where people must consent for themselves and every API it "
                    "calls requires assignment"
                ),
            )
    if _users_come(spec):
        roles = [r for r in spec.get("app_roles") or [] if r.get("value") == BASELINE_ROLE]
        if not any("User" in (r.get("allowed_member_types") or []) and r.get("id") for r in roles):
            yield (
                "baseline-user-role",
                f"people sign in to or call this app: give it an app role {{value: {BASELINE_ROLE}, "
                "allowed_member_types: [User], id: <GUID>} to assign them to",
            )


def _redirects(spec: dict[str, Any]) -> Iterator[tuple[str, str]]:
    implicit = spec.get("implicit_grant") or {}
    for kind in ("access_tokens", "id_tokens"):
        if implicit.get(kind):
            yield "implicit-grant", f"implicit_grant.{kind} is on: use the authorization code flow with PKCE"
    for key in ("redirect_uris", "post_logout_redirect_uris"):
        for uri in spec.get(key) or []:
            uri = str(uri)
            if "*" in uri:
                yield "redirect-uri-wildcard", f"{key}: {uri!r} has a wildcard; register each exact URI"
                continue
            parts = urlsplit(uri)
            if parts.fragment or "#" in uri:
                yield "redirect-uri-exact", f"{key}: {uri!r} has a fragment; register the exact URI"
            if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK):
                yield "redirect-uri-https", f"{key}: {uri!r} must be https (http only for localhost/loopback)"


# region quote: ownership-rule
def _ownership(spec: dict[str, Any]) -> Iterator[tuple[str, str]]:
    owners = spec.get("owners")
    if not isinstance(owners, list) or not owners:
        yield "owners", "list the owners (owners: [deployer]): someone must answer for the registration"
    info = spec.get("info") or {}
    for key in ("terms_of_service_url", "privacy_statement_url"):
        url = str(info.get(key) or "")
        if not (url.startswith(WEB_ORIGIN) or url.startswith("https://")):
            yield "terms-and-privacy", f"info.{key} must be an https URL (or start with {WEB_ORIGIN})"


# endregion


def _secret_keys(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            where = f"{path}.{key}" if path else str(key)
            if any(word in str(key).lower() for word in SECRET_WORDS):
                yield where
            yield from _secret_keys(inner, where)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _secret_keys(inner, f"{path}[{i}]")


def _credentials(spec: dict[str, Any], mis: set[str]) -> Iterator[tuple[str, str]]:
    for where in _secret_keys(spec):
        yield "no-secrets", f"{where}: no client secret or password; use a federated credential or a certificate"
    feds = spec.get("federated_credentials") or []
    if spec.get("client_type", "confidential") == "public":
        if feds or spec.get("certificate_credentials"):
            yield "public-client-credentials", "a public client can keep no credential: remove its credentials"
        return
    if not feds:
        yield "federated-credential", "a confidential client authenticates with a managed identity: add one"
    for fed in feds:
        if list(fed.get("audiences") or []) != [TOKEN_EXCHANGE_AUDIENCE]:
            yield "federated-credential", f"{fed.get('name')}: audiences must be exactly [{TOKEN_EXCHANGE_AUDIENCE}]"
        if fed.get("managed_identity") not in mis:
            yield "federated-credential", f"{fed.get('name')}: names no managed identity of the manifest"


def _permissions(name: str, spec: dict[str, Any], apps: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for resource, need in (spec.get("required_resource_access") or {}).items():
        if (need or {}).get("scopes") and (need or {}).get("app_roles"):
            yield (
                "mixed-permissions",
                f"asks {resource} for delegated scopes and app roles both: give the app-only part a registration "
                "of its own",
            )
    scopes = {s.get("value"): s for s in spec.get("scopes") or []}
    for pre in spec.get("pre_authorized_applications") or []:
        client = apps.get(pre.get("application")) or {}
        asked = set(((client.get("required_resource_access") or {}).get(name) or {}).get("scopes") or [])
        for value in pre.get("scopes") or []:
            if value not in scopes or scopes[value].get("admin_consent_required"):
                yield (
                    "pre-authorization",
                    f"pre-authorizes {pre.get('application')} for {value}: only a scope of this app that needs no "
                    "administrator",
                )
            elif value not in asked:
                yield (
                    "pre-authorization",
                    f"pre-authorizes {pre.get('application')} for {value}, which that client does not ask for",
                )


def load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: not a registration manifest (a YAML mapping)")
    return loaded


def main(argv: Sequence[str] | None = None) -> int:
    """Print each problem; 0 when there is none, 1 when there are, 2 when the file can't be read."""
    args = list(sys.argv[1:] if argv is None else argv)
    path = Path(args[0]) if args else repo_root() / "infra" / "registrations.yaml"
    try:
        found = problems(load(path))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"check-registrations: {exc}", file=sys.stderr)
        return 2
    for problem in found:
        print(problem)
    if found:
        print(f"{len(found)} problem(s) in {path}", file=sys.stderr)
        return 1
    print(f"{path}: every registration keeps the rules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
