"""`zt daemon` and `zt provision`: two app-only workloads, each proving itself with its managed identity.

# zt: developer-strategy-application-permissions
Each is a confidential client with no secret: MSAL's client assertion is a token of the
workload's managed identity (zerotrust.credentials.federated_client_assertion), as in Azure. The
only local part is configuration: the managed-identity endpoint and header that App Service or
Container Apps would set (IDENTITY_ENDPOINT / IDENTITY_HEADER) are taken from the running
emulator when the environment doesn't already hold them. Tokens are never printed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msal
import requests
import yaml

from devtools.paths import repo_root
from devtools.token import TokenError


def registrations() -> dict[str, Any]:
    apps: dict[str, Any] = yaml.safe_load((repo_root() / "infra" / "registrations.yaml").read_text())["applications"]
    return apps


@dataclass
class Workload:
    """One app-only client as it runs: its registration, its authority, its managed identity."""

    name: str
    client_id: str
    authority: str
    # A CA bundle file (the dev CA locally), or True: the system's trust store (Azure).
    ca_bundle: str | bool
    managed_identity_client_id: str | None = None

    @classmethod
    def local(cls, name: str, stack: dict[str, Any], local_dir: Path) -> Workload:
        """The workload against the local stack: its managed identity served by the emulator."""
        headers_file = local_dir / "emulator" / "managed-identity-headers.json"
        if "IDENTITY_ENDPOINT" not in os.environ:
            try:
                header = json.loads(headers_file.read_text())[name]
            except (OSError, ValueError, KeyError):
                raise TokenError(
                    f"no managed identity '{name}' in {headers_file}: restart the stack (`make run`) so the "
                    "emulator creates it"
                ) from None
            # What the platform sets for a workload's managed identity; the code below is Azure's.
            os.environ["IDENTITY_ENDPOINT"] = f"{stack['emulator']}/msi/token"
            os.environ["IDENTITY_HEADER"] = header
            # The emulator's endpoint is served under the stack's dev CA (the bundle holds the public CAs too).
            os.environ["REQUESTS_CA_BUNDLE"] = os.environ["SSL_CERT_FILE"] = stack["ca_bundle"]
        return cls(name, registrations()[name]["application_id"], stack["authority"], stack["ca_bundle"])

    @classmethod
    def from_environment(cls, name: str, environ: dict[str, str]) -> Workload:
        """The workload as a scheduled job runs it (Container Apps job): its settings from the environment,
        the identity endpoint from the platform. `<NAME>_*`, e.g. DAEMON_CLIENT_ID."""
        prefix = name.upper().replace("-", "_") + "_"
        missing = [k for k in ("AUTHORITY", "CLIENT_ID", "API_URL", "API_APP_ID_URI") if not environ.get(prefix + k)]
        if missing:
            raise TokenError(f"{', '.join(prefix + k for k in missing)} must be set (the job's environment)")
        return cls(
            name,
            environ[prefix + "CLIENT_ID"],
            environ[prefix + "AUTHORITY"],
            # The system's trust store unless the environment names a bundle (the dev CA's, on a laptop).
            environ.get("SSL_CERT_FILE") or True,
            environ.get(prefix + "MANAGED_IDENTITY_CLIENT_ID") or None,
        )

    def token(self, resource_app_id_uri: str) -> str:
        # Imported here: only these commands need zerotrust (and azure-identity through it).
        from zerotrust.credentials import federated_client_assertion

        http = requests.Session()
        http.verify = self.ca_bundle
        http.trust_env = False
        app = msal.ConfidentialClientApplication(
            self.client_id,
            client_credential={"client_assertion": federated_client_assertion(self.managed_identity_client_id)},
            authority=self.authority,
            instance_discovery=False,
            http_client=http,
        )
        try:
            result = app.acquire_token_for_client([f"{resource_app_id_uri}/.default"])
        except Exception as exc:  # azure-identity and MSAL raise several types when the provider is away
            raise TokenError(f"{self.name}: could not get a token: {exc}") from None
        if "access_token" not in result:
            raise TokenError(f"{self.name}: {result.get('error')}: {result.get('error_description', '')}".strip())
        token: str = result["access_token"]
        return token

    def client(self, base_url: str, resource_app_id_uri: str) -> httpx.Client:
        token = self.token(resource_app_id_uri)
        return httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            verify=self.ca_bundle,
            trust_env=False,
            timeout=15,
        )


def api_app_id_uri() -> str:
    api = registrations()["api"]
    return str(api["identifier_uri"]).replace("{application_id}", api["application_id"])


def tenant_report(stack: dict[str, Any], local_dir: Path) -> dict[str, Any]:
    """The daemon's job: the tenant report from the api, app-only (Tasks.Report.All)."""
    return report_from(Workload.local("daemon", stack, local_dir), stack["api"], api_app_id_uri())


def daemon_report(environ: dict[str, str], local_dir: Path) -> dict[str, Any]:
    """A scheduled job (infra/jobs.tf) has its settings in its environment; a laptop's stack in stack.json."""
    if "DAEMON_API_URL" in environ:
        return scheduled_report(environ)
    from devtools.token import load_stack

    return tenant_report(load_stack(local_dir / "stack.json"), local_dir)


def scheduled_report(environ: dict[str, str]) -> dict[str, Any]:
    """The daemon as a Container Apps job runs it: DAEMON_* settings, the platform's managed identity."""
    daemon = Workload.from_environment("daemon", environ)
    return report_from(daemon, environ["DAEMON_API_URL"], environ["DAEMON_API_APP_ID_URI"])


def report_from(daemon: Workload, api_url: str, api_id_uri: str) -> dict[str, Any]:
    with daemon.client(api_url, api_id_uri) as http:
        response = http.get("/reports/tenant")
    if response.status_code != 200:
        raise TokenError(f"the api answered {response.status_code}: {response.text[:300]}")
    report: dict[str, Any] = response.json()
    return report


def _object_id(user: str) -> str:
    """A demo user's Entra object id, from the demo directory (the key SCIM sends as externalId)."""
    directory = yaml.safe_load((repo_root() / "identity-emulator" / "demo" / "directory.yaml").read_text())
    for tenant in directory["tenants"].values():
        for entry in tenant.get("users") or []:
            if entry["upn"].lower() == user.lower():
                return str(entry["object_id"])
    raise TokenError(f"{user!r} is not a demo user")


SCIM = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def provision(stack: dict[str, Any], local_dir: Path, action: str, user: str) -> tuple[int, Any]:
    """The provisioning service's job, one SCIM call (or two: find, then act) for a demo user."""
    # zt: identity-standards-based-development-methodologies
    provisioner = Workload.local("provisioner", stack, local_dir)
    oid = _object_id(user)
    headers = {"Content-Type": SCIM, "Accept": SCIM}
    with provisioner.client(stack["api"], api_app_id_uri()) as http:
        if action == "create":
            body = {"schemas": [USER_SCHEMA], "externalId": oid, "userName": user, "active": True}
            response = http.post("/scim/v2/Users", json=body, headers=headers)
            return response.status_code, response.json()
        found = http.get("/scim/v2/Users", params={"filter": f'externalId eq "{oid}"'}, headers=headers)
        if found.status_code != 200:
            return found.status_code, found.json()
        resources = found.json()["Resources"]
        if action == "show":
            return 200, resources[0] if resources else None
        if not resources:
            raise TokenError(f"{user} is not provisioned; run `make provision ACTION=create USER={user}` first")
        path = f"/scim/v2/Users/{resources[0]['id']}"
        if action == "delete":
            response = http.delete(path)
            return response.status_code, None
        active = action == "activate"
        patch = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": "active", "value": active}]}
        response = http.patch(path, json=patch, headers=headers)
        return response.status_code, response.json()
