"""The security gates' tools (checkov, zizmor, bandit, pip-audit, cyclonedx-py, yamllint, pre-commit), run
from their own locked environment, devtools/gates/.venv, which devtools/install.sh syncs from its uv.lock.

Tests, `make gates` and the workflows call them the same way: `tool_command("checkov")` gives the argv,
`tool_env()` the environment that keeps them off the network.
"""

# zt: embed-zero-trust-dev-workflow
# zt: secure-dev-environment-zero-trust

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from devtools.paths import repo_root

# Each tool's console script in devtools/gates/.venv/bin (cyclonedx-bom installs `cyclonedx-py`).
TOOLS = {
    "checkov": "checkov",
    "zizmor": "zizmor",
    "bandit": "bandit",
    "pip-audit": "pip-audit",
    "cyclonedx-bom": "cyclonedx-py",
    "cyclonedx-py": "cyclonedx-py",
    "yamllint": "yamllint",
    "pre-commit": "pre-commit",
}

# Checkov without an API key scans locally, but still asks PyPI for a newer checkov at import and Prisma
# Cloud for policy metadata: both off, so a gate gives the same answer offline and never waits on a socket.
OFFLINE_ENV = {
    "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
    "BC_SKIP_MAPPING": "TRUE",
    "CHECKOV_REQUEST_CONNECT_TIMEOUT": "1",
    # zizmor reads GH_TOKEN for its online audits; `--offline` is passed too, this is belt and braces.
    "ZIZMOR_OFFLINE": "true",
}
# The arguments that keep each tool offline (checkov's --skip-download: no guidelines or custom policies
# from the platform; zizmor's --offline: no audits that call GitHub's API).
OFFLINE_ARGS = {
    "checkov": ["--skip-download"],
    "zizmor": ["--offline"],
}


class GateToolMissing(RuntimeError):
    """The gates environment is not installed, or lacks the tool."""


def gates_dir() -> Path:
    return repo_root() / "devtools" / "gates"


def _bin_dir() -> Path:
    return gates_dir() / ".venv" / ("Scripts" if sys.platform == "win32" else "bin")


def tool_command(name: str) -> list[str]:
    """The argv that runs a gate tool from devtools/gates/.venv (offline flags not included)."""
    if name not in TOOLS:
        raise ValueError(f"unknown gate tool {name!r}; known: {', '.join(sorted(TOOLS))}")
    path = _bin_dir() / TOOLS[name]
    if not path.is_file():
        raise GateToolMissing(
            f"{name} is not installed at {path}: run devtools/install.sh (it syncs devtools/gates from its "
            "uv.lock), or `python3 -m uv sync --frozen --project devtools/gates`"
        )
    return [str(path)]


def offline_command(name: str) -> list[str]:
    """tool_command plus the arguments that keep the tool off the network."""
    return [*tool_command(name), *OFFLINE_ARGS.get(name, [])]


def tool_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a gate tool: the caller's, plus the offline settings."""
    env = dict(os.environ if base is None else base)
    env.update(OFFLINE_ENV)
    return env


def run_tool(
    name: str, args: Sequence[str], *, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run a gate tool offline from the repository root; output captured, exit status left to the caller."""
    return subprocess.run(  # noqa: S603 - argv from TOOLS and the caller, no shell
        [*offline_command(name), *args],
        cwd=cwd or repo_root(),
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
