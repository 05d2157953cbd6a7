"""The registration manifest keeps the app-registration rules of the guidance (articles 7 and 23).

The rules are code (devtools.registration_rules, also run by `zt check-registrations` before a commit):
the real manifest has no problem, and each rule, broken on purpose in a copy, is named as exactly that
problem, so a rule that stopped checking anything would fail here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from devtools.registration_rules import Problem, main, problems

pytestmark = pytest.mark.guidance("app-registration")

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "infra" / "registrations.yaml"
REAL: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())

Mutation = Callable[[dict[str, Any]], None]


def _apps(manifest: dict[str, Any]) -> dict[str, Any]:
    apps: dict[str, Any] = manifest["applications"]
    return apps


def test_the_real_manifest_keeps_every_rule() -> None:
    assert problems(REAL) == []


def test_the_manifest_and_the_checker_carry_the_articles_markers() -> None:
    source = (ROOT / "devtools" / "src" / "devtools" / "registration_rules.py").read_text()
    for text in (MANIFEST.read_text(), source):
        lines = [line.strip() for line in text.splitlines()]
        assert "# zt: app-registration" in lines
        assert "# zt: developer-strategy-authorization-best-practices" in lines


def test_every_app_requires_assignment_and_people_have_a_baseline_role_to_be_assigned() -> None:
    apps = _apps(REAL)
    # The web app alone is exempt, with its reason: people consent to it for themselves (Entra allows no user
    # consent to an app that requires assignment); the api it gets tokens for requires assignment.
    exempt = {name for name, app in apps.items() if app["app_role_assignment_required"] is not True}
    assert exempt == {"web"} and apps["web"]["assignment_not_required_because"]
    assert apps["api"]["app_role_assignment_required"] is True
    for name in ("web", "api", "downstream-api", "cli"):
        [user] = [r for r in apps[name]["app_roles"] if r["value"] == "User"]
        assert user["allowed_member_types"] == ["User"], name
    ids = [r["id"] for app in apps.values() for r in app.get("app_roles", [])]
    assert len(ids) == len(set(ids)), "each app role has a GUID of its own"


def test_the_apis_app_only_identity_is_a_registration_of_its_own() -> None:
    apps = _apps(REAL)
    assert apps["api"]["required_resource_access"]["downstream-api"] == {
        "scopes": ["Records.Read", "Records.ReadWrite", "Records.Read.All"]
    }
    split = apps["api-app-only"]
    assert split["display_name"] == "Zero Trust Sample - API (app-only)"
    assert split["required_resource_access"] == {
        "downstream-api": {"app_roles": ["Records.Report.All", "Users.Manage"]}
    }
    assert [f["managed_identity"] for f in split["federated_credentials"]] == ["api"]


def _set(app: str, key: str, value: Any) -> Mutation:
    def mutate(m: dict[str, Any]) -> None:
        _apps(m)[app][key] = value

    return mutate


def _drop(app: str, key: str) -> Mutation:
    def mutate(m: dict[str, Any]) -> None:
        del _apps(m)[app][key]

    return mutate


def _add_redirect(app: str, uri: str) -> Mutation:
    def mutate(m: dict[str, Any]) -> None:
        _apps(m)[app]["redirect_uris"] = [*_apps(m)[app].get("redirect_uris", []), uri]

    return mutate


def _both_kinds(m: dict[str, Any]) -> None:
    _apps(m)["api"]["required_resource_access"]["downstream-api"]["app_roles"] = ["Records.Report.All"]


def _secret(m: dict[str, Any]) -> None:
    _apps(m)["web"]["password_credentials"] = [{"display_name": "ci"}]


def _secret_deep(m: dict[str, Any]) -> None:
    _apps(m)["daemon"]["federated_credentials"][0]["client_secret"] = "x"


def _fed_audience(m: dict[str, Any]) -> None:
    _apps(m)["provisioner"]["federated_credentials"][0]["audiences"] = ["api://another-audience"]


def _public_with_credential(m: dict[str, Any]) -> None:
    _apps(m)["cli"]["certificate_credentials"] = [{"name": "cli-certificate"}]


def _no_user_role(m: dict[str, Any]) -> None:
    _apps(m)["downstream-api"]["app_roles"] = [
        r for r in _apps(m)["downstream-api"]["app_roles"] if r["value"] != "User"
    ]


def _preauthorize_admin_scope(m: dict[str, Any]) -> None:
    _apps(m)["api"]["pre_authorized_applications"][0]["scopes"].append("Tasks.Read.All")


def _preauthorize_unasked(m: dict[str, Any]) -> None:
    _apps(m)["downstream-api"]["pre_authorized_applications"].append({"application": "web", "scopes": ["Records.Read"]})


def _api_lets_anyone_in(m: dict[str, Any]) -> None:
    # Exempt with a reason of its own (its own API downstream still gates), which takes the web's gate away.
    _apps(m)["api"]["app_role_assignment_required"] = False
    _apps(m)["api"]["assignment_not_required_because"] = "people consent to it"


def _no_privacy(m: dict[str, Any]) -> None:
    _apps(m)["api"]["info"] = {"terms_of_service_url": "{web_origin}/terms"}


# (what is broken, the mutation, the one problem it must produce: rule and app)
BROKEN: list[tuple[str, Mutation, tuple[str, str]]] = [
    (
        "wildcard redirect URI",
        _add_redirect("web", "https://*.contoso.test/auth/callback"),
        ("redirect-uri-wildcard", "web"),
    ),
    (
        "http, not loopback",
        _add_redirect("web", "http://web.contoso.test/auth/callback"),
        ("redirect-uri-https", "web"),
    ),
    ("a fragment", _add_redirect("web", "https://web.contoso.test/auth/callback#x"), ("redirect-uri-exact", "web")),
    (
        "implicit grant",
        _set("web", "implicit_grant", {"access_tokens": False, "id_tokens": True}),
        ("implicit-grant", "web"),
    ),
    ("a client secret", _secret, ("no-secrets", "web")),
    ("a secret, deep", _secret_deep, ("no-secrets", "daemon")),
    (
        "assignment off",
        _set("downstream-api", "app_role_assignment_required", False),
        ("assignment-required", "downstream-api"),
    ),
    ("assignment unset", _drop("daemon", "app_role_assignment_required"), ("assignment-required", "daemon")),
    (
        "an exception with no reason",
        _drop("web", "assignment_not_required_because"),
        ("assignment-required", "web"),
    ),
    (
        "an exception whose API lets anyone in",
        _api_lets_anyone_in,
        ("assignment-required", "web"),
    ),
    ("no baseline role", _no_user_role, ("baseline-user-role", "downstream-api")),
    ("no owners", _drop("api", "owners"), ("owners", "api")),
    ("empty owners", _set("cli", "owners", []), ("owners", "cli")),
    ("no privacy URL", _no_privacy, ("terms-and-privacy", "api")),
    ("both kinds on one resource", _both_kinds, ("mixed-permissions", "api")),
    ("no federated credential", _drop("provisioner", "federated_credentials"), ("federated-credential", "provisioner")),
    ("federated, wrong audience", _fed_audience, ("federated-credential", "provisioner")),
    ("a public client with a credential", _public_with_credential, ("public-client-credentials", "cli")),
    ("pre-authorized admin scope", _preauthorize_admin_scope, ("pre-authorization", "api")),
    ("pre-authorized, not asked", _preauthorize_unasked, ("pre-authorization", "downstream-api")),
]


@pytest.mark.parametrize(("mutation", "expected"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_each_rule_broken_in_a_copy_is_named_as_exactly_that_problem(
    mutation: Mutation, expected: tuple[str, str]
) -> None:
    broken = copy.deepcopy(REAL)
    mutation(broken)
    assert [(p.rule, p.app) for p in problems(broken)] == [expected]


def test_a_problem_says_what_to_change() -> None:
    broken = copy.deepcopy(REAL)
    _add_redirect("web", "https://*.contoso.test/auth/callback")(broken)
    [problem] = problems(broken)
    assert problem == Problem("redirect-uri-wildcard", "web", problem.detail)
    assert "https://*.contoso.test/auth/callback" in str(problem) and "exact" in problem.detail


def test_the_command_exits_1_naming_the_problem_and_0_on_the_real_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = copy.deepcopy(REAL)
    _both_kinds(broken)
    path = tmp_path / "registrations.yaml"
    path.write_text(yaml.safe_dump(broken))
    assert main([str(path)]) == 1
    assert "api: [mixed-permissions]" in capsys.readouterr().out
    assert main([]) == 0  # infra/registrations.yaml, as the pre-commit hook runs it
    assert main([str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
