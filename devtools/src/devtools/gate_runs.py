"""The security gates, run the same way by `make gates|audit|sbom`, pre-commit and the CI workflow:

    python -m devtools.gate_runs offline [GATE...]   bandit, checkov, zizmor, workflows, secrets, yamllint
    python -m devtools.gate_runs audit                pip-audit of both locks (asks PyPI: needs the network)
    python -m devtools.gate_runs sbom [OUT_DIR]       CycloneDX SBOM of the locked runtime packages

Each gate is one command over the repository; a gate fails on any finding its reviewed exception list
(pyproject's [tool.bandit], .checkov.yaml, .github/zizmor.yml, `# pragma: allowlist secret`, .yamllint.yaml)
does not excuse.
"""

# zt: embed-zero-trust-dev-workflow
# zt: secure-dev-environment-zero-trust

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from devtools.gates import offline_command, tool_command, tool_env
from devtools.paths import repo_root

# What checkov scans: the Terraform roots, every Dockerfile and the workflows (its other frameworks find
# nothing here, and its secrets framework overlaps the secret scan).
CHECKOV_FRAMEWORKS = ["terraform", "dockerfile", "github_actions"]
# Never the installed environments or local state: they are not the repository's.
CHECKOV_SKIP_PATHS = [r"\.venv", r"\.local", "test-artifacts", "node_modules", r"\.terraform"]
# The YAML of the pipeline and the containers; the data files the code reads have their own tests.
YAML_FILES = [".github", "docker-compose.yml", ".pre-commit-config.yaml", ".yamllint.yaml", ".checkov.yaml"]
ZIZMOR_CONFIG = ".github/zizmor.yml"


def member_sources(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.glob("*/src") if p.is_dir())


def bandit_argv(root: Path) -> list[str]:
    return [*tool_command("bandit"), "-q", "-c", "pyproject.toml", "-r", *member_sources(root)]


def checkov_argv(root: Path) -> list[str]:
    skips = [arg for path in CHECKOV_SKIP_PATHS for arg in ("--skip-path", path)]
    config = ["--config-file", str(root / ".checkov.yaml")]
    return [
        *offline_command("checkov"),
        "-d",
        ".",
        *config,
        "--framework",
        *CHECKOV_FRAMEWORKS,
        *skips,
        "--compact",
        "--quiet",
    ]


def zizmor_argv(root: Path, workflows: Path | None = None) -> list[str]:
    target = workflows or root / ".github" / "workflows"
    return [*offline_command("zizmor"), "--persona", "auditor", "--config", str(root / ZIZMOR_CONFIG), str(target)]


def secrets_argv(root: Path) -> list[str]:
    # The project's own scan (detect-secrets plus its private-key and dashed-value checks) over tracked files.
    return [sys.executable, "-m", "tests.security.secretscan"]


def yamllint_argv(root: Path) -> list[str]:
    present = [name for name in YAML_FILES if (root / name).exists()]
    return [*tool_command("yamllint"), "--strict", "-c", ".yamllint.yaml", *present]


def workflows_argv(root: Path) -> list[str]:
    # The project's own workflow rules (devtools.workflow_rules), beside zizmor's general ones.
    return [sys.executable, "-m", "devtools.workflow_rules", ".github/workflows"]


# region quote: offline-gates
OFFLINE_GATES: dict[str, Callable[[Path], list[str]]] = {
    "bandit": bandit_argv,
    "checkov": checkov_argv,
    "zizmor": zizmor_argv,
    "workflows": workflows_argv,
    "secrets": secrets_argv,
    "yamllint": yamllint_argv,
}
# endregion


def _run(argv: Sequence[str], root: Path) -> int:
    print(f"$ {' '.join(argv)}", flush=True)
    return subprocess.run(list(argv), cwd=root, env=tool_env(), check=False).returncode  # noqa: S603


def offline(names: Sequence[str]) -> int:
    root = repo_root()
    unknown = sorted(set(names) - set(OFFLINE_GATES))
    if unknown:
        print(f"unknown gate(s) {', '.join(unknown)}; known: {', '.join(OFFLINE_GATES)}", file=sys.stderr)
        return 2
    results = []
    for name in names or list(OFFLINE_GATES):
        start = time.monotonic()
        code = _run(OFFLINE_GATES[name](root), root)
        results.append((name, code, time.monotonic() - start))
    print()
    for name, code, seconds in results:
        print(f"{name:10} {'ok' if code == 0 else f'FAILED (exit {code})':20} {seconds:6.1f} s")
    return 0 if all(code == 0 for _, code, _ in results) else 1


def _export(root: Path, out: Path, *, project: Path | None = None, dev: bool = True) -> list[str]:
    # The lock as a requirements file with every hash: what is audited is exactly what uv installs.
    # `uv run` names its own executable in UV; otherwise the project's usual `python3 -m uv`.
    uv = [os.environ["UV"]] if os.environ.get("UV") else ["python3", "-m", "uv"]
    argv = [*uv, "export", "--frozen", "--quiet", "--format", "requirements-txt"]
    argv += ["--project", str(project)] if project else ["--all-packages", "--no-emit-workspace"]
    argv += [] if dev else ["--no-dev"]
    return [*argv, "--output-file", str(out)]


def audit() -> int:
    root = repo_root()
    with tempfile.TemporaryDirectory() as folder:
        locks = {"uv.lock": None, "devtools/gates/uv.lock": root / "devtools" / "gates"}
        status = 0
        for lock, project in locks.items():
            requirements = Path(folder) / (lock.replace("/", "-") + ".txt")
            if _run(_export(root, requirements, project=project), root):
                return 1
            print(f"== pip-audit: {lock}", flush=True)
            argv = [*tool_command("pip-audit"), "--require-hashes", "--disable-pip", "--strict"]
            argv += ["--progress-spinner", "off"]
            status |= _run([*argv, "-r", str(requirements)], root)
        return 1 if status else 0


def sbom(out_dir: str | None = None) -> int:
    """The runtime packages of uv.lock (no dev tools) as a CycloneDX JSON SBOM."""
    root = repo_root()
    target = Path(out_dir) if out_dir else root / "test-artifacts" / "sbom"
    target.mkdir(parents=True, exist_ok=True)
    requirements = target / "requirements.txt"
    if _run(_export(root, requirements, dev=False), root):
        return 1
    out = target / "zero-trust-sample.cdx.json"
    argv = [*tool_command("cyclonedx-py"), "requirements", "--pyproject", "pyproject.toml"]
    argv += ["--output-reproducible", "--of", "JSON", "-o", str(out), str(requirements)]
    code = _run(argv, root)
    if code == 0:
        print(f"SBOM: {out}")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("offline", "audit", "sbom"):
        print(__doc__, file=sys.stderr)
        return 2
    if args[0] == "offline":
        return offline(args[1:])
    if args[0] == "audit":
        return audit()
    return sbom(args[1] if len(args) > 1 else None)


if __name__ == "__main__":
    raise SystemExit(main())
