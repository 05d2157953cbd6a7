"""The pipeline's own rules, checked on .github/workflows/*.yml (tests/infra/test_workflows.py, `make gates`).

zizmor finds the general weaknesses of GitHub workflows; these are the project's decisions on top:
actions pinned by commit SHA with the version beside it, nothing writable by default, an OIDC token only
for a job that deploys through a protected environment, no stored secret for Azure, no persisted
checkout credentials, no trigger that runs a fork's code with the repository's rights, bounded jobs.
"""

# zt: secure-devops-environments-zero-trust
# zt: embed-zero-trust-dev-workflow

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SHA_PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"uses:\s*(\S+)\s+#\s*v\d+(\.\d+)*\b")
SECRET_REF = re.compile(r"secrets\.([A-Za-z_][A-Za-z0-9_]*)")
# Triggers that run with the base repository's rights on events a fork controls.
DANGEROUS_TRIGGERS = {"pull_request_target", "workflow_run"}
# azure/login inputs that carry a stored credential instead of the federated token.
STORED_CREDENTIAL_INPUTS = {"creds", "client-secret", "auth-type-secret"}
READ_ONLY = {"read", "none"}


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    where: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: [{self.rule}] {self.message}"


def _load(path: Path) -> dict[str, Any]:
    # PyYAML reads the key `on` as the boolean True (YAML 1.1); the workflow means the string.
    data: dict[Any, Any] = yaml.safe_load(path.read_text()) or {}
    if True in data:
        data["on"] = data.pop(True)
    return data


def _triggers(data: dict[str, Any]) -> set[str]:
    on = data.get("on")
    if isinstance(on, str):
        return {on}
    return set(on or [])


def _permission_problems(perms: Any, where: str, *, top: bool) -> list[tuple[str, str, str]]:
    found = []
    if perms is None:
        found.append((where, "permissions-missing", "declare `permissions:` (least privilege, nothing by default)"))
    elif isinstance(perms, str):
        if perms != "read-all" or not top:
            found.append((where, "permissions-broad", f"`permissions: {perms}`: name each scope the job needs"))
    else:
        for scope, level in perms.items():
            if level in READ_ONLY or (scope == "id-token" and level == "write" and not top):
                continue
            found.append((where, "permissions-write", f"`{scope}: {level}`: no job of this project writes"))
    return found


def _check_uses(uses: str, where: str) -> list[tuple[str, str, str]]:
    if uses.startswith(("./", "$/")) or (uses.startswith("docker://") and "@sha256:" in uses):
        return []
    if not SHA_PINNED.match(uses):
        return [(where, "unpinned-action", f"`{uses}`: pin the action by its full commit SHA (# vX.Y.Z beside)")]
    return []


def _check_step(step: dict[str, Any], where: str) -> list[tuple[str, str, str]]:
    found = []
    uses = str(step.get("uses", ""))
    inputs = step.get("with") or {}
    if uses:
        found += _check_uses(uses, where)
    action = uses.split("@", 1)[0].lower()
    if action == "actions/checkout" and inputs.get("persist-credentials") is not False:
        found.append((where, "checkout-credentials", "actions/checkout needs `persist-credentials: false`"))
    if action == "azure/login":
        stored = sorted(STORED_CREDENTIAL_INPUTS & set(inputs))
        if stored:
            found.append((where, "azure-stored-credential", f"azure/login with {stored}: sign in with OIDC"))
        for key in ("client-id", "tenant-id", "subscription-id"):
            if not str(inputs.get(key, "")).strip().startswith("${{ vars."):
                found.append((where, "azure-login-ids", f"azure/login `{key}` comes from `vars` (an id, no secret)"))
    return found


def check_workflow(path: Path) -> list[Problem]:
    """Every rule over one workflow file."""
    data = _load(path)
    text = path.read_text()
    found: list[tuple[str, str, str]] = []
    for trigger in sorted(_triggers(data) & DANGEROUS_TRIGGERS):
        found.append(("on", "dangerous-trigger", f"`{trigger}` runs untrusted code with this repository's rights"))
    found += _permission_problems(data.get("permissions"), "permissions", top=True)
    if "concurrency" not in data:
        found.append(("concurrency", "concurrency-missing", "declare `concurrency:` (one run per ref)"))
    for name, job in (data.get("jobs") or {}).items():
        where = f"jobs.{name}"
        perms = job.get("permissions")
        found += _permission_problems(perms, where, top=False)
        oidc = isinstance(perms, dict) and perms.get("id-token") == "write"
        if oidc and not job.get("environment"):
            found.append((where, "oidc-without-environment", "id-token: write only in a job with an `environment:`"))
        if "uses" in job:  # a reusable workflow: its own jobs are checked in their file
            found += _check_uses(str(job["uses"]), where)
            continue
        if "timeout-minutes" not in job:
            found.append((where, "timeout-missing", "set `timeout-minutes:` (a hung job holds a runner for 6 h)"))
        for index, step in enumerate(job.get("steps") or []):
            step_where = f"{where}.steps[{index}]" + (f" ({step['name']})" if step.get("name") else "")
            found += _check_step(step, step_where)
            if str(step.get("uses", "")).lower().startswith("azure/login@") and not oidc:
                found.append((step_where, "azure-login-without-oidc", "azure/login needs `id-token: write` (OIDC)"))
    for number, line in enumerate(text.splitlines(), 1):
        for secret in SECRET_REF.findall(line.split("#", 1)[0]):
            found.append((f"line {number}", "stored-secret", f"`secrets.{secret}`: Azure sign-in is OIDC, no secret"))
        uses = re.search(r"uses:\s*(\S+)", line)
        if uses and SHA_PINNED.match(uses.group(1)) and not VERSION_COMMENT.search(line):
            found.append((f"line {number}", "version-comment", "a pinned action says its version: `# vX.Y.Z`"))
    return sorted(Problem(path.name, where, rule, message) for where, rule, message in found)


def check_workflows(folder: Path) -> list[Problem]:
    files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])
    if not files:
        return [Problem(str(folder), "", "no-workflows", "no workflow files found")]
    return [problem for path in files for problem in check_workflow(path)]


def main(argv: list[str] | None = None) -> int:
    """`python -m devtools.workflow_rules [FOLDER]`: the problems, one a line; exit 1 if any."""
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else Path(".github/workflows")
    problems = check_workflows(folder)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
