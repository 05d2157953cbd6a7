"""The container stack's first-run material, without a secret in docker-compose.yml.

`python -m devtools.compose env` (on this machine, once): writes `.local/compose.env`, owner-only and
git-ignored, with one managed-identity header per tier (random, kept across runs). `docker compose
--env-file .local/compose.env up` substitutes them: each tier finds its IDENTITY_HEADER in its environment,
where Azure Container Apps puts it, and the compose file holds only `${...}` references.

`python -m devtools.compose init` (the stack's one-shot `init` service, uid 10001, in its volumes): makes
the dev CA and the localhost certificate (devtools.tls, as `make run` does) and gives the emulator the same
headers, read from the environment, before it starts (it keeps headers it finds and makes the others).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from devtools.files import write_private
from devtools.paths import local_dir
from devtools.tls import ensure_dev_tls

# The identities whose header the stack's containers need in their environment (the others are the
# emulator's own business: the daemon and the provisioner run on this machine, `zt daemon`/`zt provision`).
IDENTITIES = ("web", "api", "downstream-api", "database-admin")
ENV_FILE = "compose.env"
HEADERS_FILE = "managed-identity-headers.json"


def header_variable(identity: str) -> str:
    """`ZT_IDENTITY_HEADER_DOWNSTREAM_API` for `downstream-api`: the variable docker-compose.yml references."""
    return "ZT_IDENTITY_HEADER_" + identity.upper().replace("-", "_")


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def write_env_file(path: Path) -> dict[str, str]:
    """`.local/compose.env`: the headers already there, new ones for identities without."""
    old = read_env_file(path) if path.is_file() else {}
    values = {var: old.get(var) or secrets.token_urlsafe(24) for var in map(header_variable, IDENTITIES)}
    lines = ["# Written by `python -m devtools.compose env`: managed-identity headers of the compose stack."]
    lines += ["# Owner-only and git-ignored; docker compose --env-file .local/compose.env up", ""]
    lines += [f"{k}={v}" for k, v in values.items()]
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(path, ("\n".join(lines) + "\n").encode())
    return values


def init_state(local: Path, environ: Mapping[str, str]) -> Path:
    """The dev TLS material and the emulator's headers for the tiers' identities; returns the headers file."""
    missing = [header_variable(i) for i in IDENTITIES if not environ.get(header_variable(i))]
    if missing:
        raise ValueError(f"{', '.join(missing)} not set: run `python -m devtools.compose env` and pass --env-file")
    local.mkdir(mode=0o700, parents=True, exist_ok=True)
    ensure_dev_tls(local)
    state = local / "emulator"
    state.mkdir(mode=0o700, exist_ok=True)
    path = state / HEADERS_FILE
    headers: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
    headers.update({i: environ[header_variable(i)] for i in IDENTITIES})
    write_private(path, json.dumps(headers).encode())
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.compose", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["env", "init"])
    args = parser.parse_args(argv)
    local = local_dir()
    if args.action == "env":
        path = local / ENV_FILE
        write_env_file(path)
        print(f"devtools.compose: {path} (owner-only); now: docker compose --env-file {path} up --build")
        return 0
    try:
        init_state(local, os.environ)
    except (ValueError, OSError) as exc:
        print(f"devtools.compose init: {exc}", file=sys.stderr)
        return 2
    print(f"devtools.compose init: dev CA, certificate and identity headers in {local}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
