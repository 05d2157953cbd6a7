"""infra/ keeps the Zero Trust rules: parsed with python-hcl2 and checked offline (tests/infra/terraform_rules.py).

`terraform validate` is not run: it needs the azurerm and azuread providers, which cannot be downloaded
where these tests run (no internet). `terraform fmt -check` needs no provider and runs; a machine without
terraform fails here with the install hint, never skips.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.infra.terraform_rules import RULES, Config, no_secret_resources, outputs_no_secrets, problems

pytestmark = pytest.mark.guidance("secure-devops-platform-environment-zero-trust")

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
ADMIN = INFRA / "admin"


def terraform() -> str:
    found = shutil.which("terraform")
    assert found, (
        "terraform is not installed: the formatting check needs it (no provider, no network). Install Terraform "
        ">= 1.11 (https://developer.hashicorp.com/terraform/install) and put it on PATH"
    )
    return found


@pytest.mark.live
def test_terraform_is_formatted() -> None:
    result = subprocess.run(
        [terraform(), "fmt", "-check", "-recursive", "-diff", str(INFRA)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"run `terraform fmt -recursive infra`:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
def test_the_developer_root_keeps_each_rule(rule: object) -> None:
    assert callable(rule)
    assert rule(Config.load(INFRA)) == []


def test_the_rules_see_what_they_check() -> None:
    """A rule that finds nothing to look at would pass anything: the resources it reads exist and resolve."""
    config = Config.load(INFRA)
    apps = config.of_type("azurerm_container_app")
    assert [k for _, body in apps.items() for k, _ in config.instances(body)] == ["web", "api", "downstream-api"]
    assert config.value("${var.min_replicas}") == 2
    for rtype in (
        "azurerm_postgresql_flexible_server",
        "azurerm_redis_cache",
        "azurerm_redis_cache_access_policy_assignment",
        "azurerm_key_vault",
        "azurerm_container_registry",
        "azurerm_container_app_job",
        "azuread_application_registration",
        "azuread_application_federated_identity_credential",
        "azuread_service_principal",
    ):
        assert config.of_type(rtype), f"no {rtype} in infra/"


def test_every_manifest_identity_is_created_and_every_workload_runs_as_its_own() -> None:
    config = Config.load(INFRA)
    manifest = config.manifest()
    assert config.resources["azurerm_user_assigned_identity.workload"]["for_each"] == "${local.identities}"
    assert config.locals["identities"] == "${local.manifest.managed_identities}"
    jobs = config.of_type("azurerm_container_app_job")
    used = {re.search(r'workload\["([\w-]+)"\]', str(body["identity"])).group(1) for body in jobs.values()}  # type: ignore[union-attr]
    assert used == {"daemon", "database-admin"}
    assert used | {"web", "api", "downstream-api"} <= set(manifest["managed_identities"])


@pytest.mark.guidance("identity-developer-administrator-responsibilities")
def test_the_admin_root_holds_no_secret_and_no_azure_resource() -> None:
    """The administrator's root changes Entra only (consent, assignments, Conditional Access)."""
    config = Config.load(ADMIN)
    assert no_secret_resources(config) == [] and outputs_no_secrets(config) == []
    assert config.resources, "infra/admin has no resource"
    assert all(name.startswith("azuread_") for name in config.resources), sorted(config.resources)
    for rtype in (
        "azuread_app_role_assignment",
        "azuread_service_principal_delegated_permission_grant",
        "azuread_conditional_access_policy",
    ):
        assert config.of_type(rtype), f"no {rtype} in infra/admin"


ADMIN_ONLY = (
    "azuread_app_role_assignment",
    "azuread_service_principal_delegated_permission_grant",
    "azuread_conditional_access_policy",
    "azuread_directory_role_assignment",
)


@pytest.mark.guidance("identity-developer-administrator-responsibilities")
def test_the_developer_root_grants_no_consent_assignment_or_policy() -> None:
    """What only an administrator decides stays out of the developer's root (article 4), so the developer's
    identity needs no right to grant it, and a developer's `azd up` can never consent for the tenant."""
    config = Config.load(INFRA)
    granted = sorted(name for name in config.resources if name.split(".")[0] in ADMIN_ONLY)
    assert granted == [], f"infra/ grants what infra/admin owns: {granted}"
    # Both roots keep their state remotely, with Entra auth (never a laptop's file, never a storage key).
    for root in (INFRA, ADMIN):
        text = (root / "providers.tf").read_text()
        assert re.search(r'^\s*backend "azurerm" \{\}', text, re.M), f"{root.name}: no azurerm backend"


def test_each_root_is_marked_with_the_articles_it_implements() -> None:
    text = "\n".join(p.read_text() for p in INFRA.rglob("*.tf"))
    for slug in (
        "identity-developer-administrator-responsibilities",
        "integrate-apps-microsoft-identity-platform",
        "app-registration",
        "secure-devops-platform-environment-zero-trust",
    ):
        assert re.search(rf"^\s*# zt: {slug}$", text, re.M), f"no '# zt: {slug}' line in infra/*.tf"
    admin = "\n".join(p.read_text() for p in ADMIN.glob("*.tf"))
    assert "# zt: identity-developer-administrator-responsibilities" in admin


def test_azure_yaml_provisions_with_terraform_and_deploys_the_services_and_the_daemon() -> None:
    import yaml

    azure = yaml.safe_load((ROOT / "azure.yaml").read_text())
    assert azure["infra"] == {"provider": "terraform", "path": "infra"}
    assert {name: s["docker"]["path"] for name, s in azure["services"].items()} == {
        "web": "web/Dockerfile",
        "api": "api/Dockerfile",
        "downstream-api": "downstream-api/Dockerfile",
        "daemon": "devtools/Dockerfile",
    }
    assert all(s["host"] == "containerapp" for s in azure["services"].values())
    # azd finds each deployment target by its tag: the three apps, and the daemon's scheduled job, which runs
    # `zt daemon` from the devtools image (its settings from the job's environment).
    daemon = Config.load(INFRA).resources["azurerm_container_app_job.daemon"]
    assert "azd-service-name" in str(daemon["tags"]) and '"daemon"' in str(daemon["tags"])
    assert daemon["template"][0]["container"][0]["command"] == ["python", "-m", "devtools.cli", "daemon"]
    hook = azure["hooks"]["postdeploy"]["run"]
    assert (ROOT / hook).is_file(), f"{hook} missing"


@pytest.mark.guidance("integrate-apps-microsoft-identity-platform")
def test_the_whole_developer_root_has_no_problem() -> None:
    assert problems(INFRA) == []
