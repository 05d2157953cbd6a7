"""The container hardening rules, checked on the files themselves (no Docker engine needed): each
Dockerfile (base pinned by digest, a fixed non-root user, a healthcheck, an exec-form command, no secret in
ENV or ARG) and docker-compose.yml (read-only, no capability, no privilege gain, ports on 127.0.0.1 only,
healthchecks, start order by condition, no secret in the environment).

`python -m devtools.containers [ROOT]` prints what breaks a rule (exit 1) or nothing (exit 0);
tests/infra/test_containers.py runs the same checks and weakens each rule on copies to see it caught.
"""

# zt: secure-devops-platform-environment-zero-trust

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DOCKERFILES = ("web", "api", "downstream-api", "identity-emulator", "devtools")
COMPOSE_FILE = "docker-compose.yml"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# Names that say "this holds a credential"; IDENTITY_HEADER is the managed identity's shared secret.
SECRET_NAME = re.compile(
    r"SECRET|PASSW(OR)?D|TOKEN|CREDENTIAL|PRIVATE_KEY|API_KEY|ACCESS_KEY|CONNECTION_STRING|IDENTITY_HEADER", re.I
)
REFERENCE = re.compile(r"^\$\{[A-Z0-9_]+(:?[?-][^}]*)?\}$")
CONDITIONS = ("service_healthy", "service_completed_successfully")
LOOPBACK_PORT = re.compile(r"^127\.0\.0\.1:\d+:\d+(/tcp|/udp)?$")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with their continuation lines joined; comments and parser directives dropped."""
    found: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker drops comment lines, inside a continued instruction too
        if not parts:
            start = number
        parts.append(line[:-1].rstrip() if line.endswith("\\") else line)
        if not line.endswith("\\"):
            keyword, _, args = " ".join(parts).partition(" ")
            found.append(Instruction(keyword.upper(), args.strip(), start))
            parts = []
    return found


def _names(instruction: Instruction) -> list[str]:
    if instruction.keyword == "ARG":
        return [instruction.args.split("=", 1)[0].strip()]
    if "=" not in instruction.args.split(" ", 1)[0]:
        return [instruction.args.split(" ", 1)[0]]  # ENV NAME value (the legacy form)
    return re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", instruction.args)


def check_dockerfile(text: str, name: str = "Dockerfile") -> list[str]:
    found = []
    instructions = parse_dockerfile(text)
    stages: set[str] = set()
    final: list[Instruction] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            image, *rest = ins.args.split()
            if image.lower() not in stages and not DIGEST.search(image):
                found.append(f"{name}:{ins.line}: FROM {image} is not pinned by @sha256 digest")
            if image.split("@")[0].endswith(":latest"):
                found.append(f"{name}:{ins.line}: FROM {image} uses the latest tag")
            if len(rest) == 2 and rest[0].upper() == "AS":
                stages.add(rest[1].lower())
            final = []
        final.append(ins)
        if ins.keyword in ("ENV", "ARG"):
            found += [
                f"{name}:{ins.line}: {ins.keyword} {n} looks like a secret"
                for n in _names(ins)
                if SECRET_NAME.search(n)
            ]
        if ins.keyword == "ADD":
            found.append(f"{name}:{ins.line}: ADD (fetches and unpacks): use COPY")
        if ins.keyword == "COPY" and re.search(r"(^|\s)\.?/?\.(local|git|env)\b", ins.args):
            found.append(f"{name}:{ins.line}: COPY of local state ({ins.args})")
    users = [i for i in final if i.keyword == "USER"]
    if not users:
        found.append(f"{name}: the final stage has no USER (it would run as root)")
    elif not re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", users[-1].args):
        found.append(f"{name}:{users[-1].line}: USER {users[-1].args} is not a fixed non-root uid")
    health = [i for i in final if i.keyword == "HEALTHCHECK"]
    if not health or health[-1].args.upper() == "NONE":
        found.append(f"{name}: the final stage has no HEALTHCHECK")
    commands = [i for i in final if i.keyword in ("CMD", "ENTRYPOINT")]
    if not commands:
        found.append(f"{name}: the final stage has no CMD")
    elif not commands[-1].args.startswith("["):
        found.append(f"{name}:{commands[-1].line}: {commands[-1].keyword} in shell form (signals miss the process)")
    return found


def command_of(text: str) -> list[str]:
    """The final stage's CMD (exec form) of a Dockerfile."""
    commands = [i for i in parse_dockerfile(text) if i.keyword == "CMD"]
    value = json.loads(commands[-1].args) if commands else []
    return [str(v) for v in value]


def _depends(service: Mapping[str, Any]) -> Mapping[str, Any]:
    depends = service.get("depends_on") or {}
    return depends if isinstance(depends, Mapping) else dict.fromkeys(depends)


def _upstream(services: Mapping[str, Any], name: str) -> set[str]:
    seen: set[str] = set()
    todo = [name]
    while todo:
        for other in _depends(services.get(todo.pop(), {})):
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return seen


def _one_shot(service: Mapping[str, Any]) -> bool:
    return str(service.get("restart", "")).lower() == "no"


def _health_disabled(service: Mapping[str, Any]) -> bool:
    health = service.get("healthcheck")
    return not health or bool(health.get("disable")) or health.get("test") in (["NONE"], "NONE")


def _environment(service: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    env = service.get("environment") or {}
    if isinstance(env, Mapping):
        yield from ((str(k), "" if v is None else str(v)) for k, v in env.items())
    else:
        for item in env:
            key, _, value = str(item).partition("=")
            yield key, value


def check_service(services: Mapping[str, Any], name: str) -> list[str]:
    s = services[name]
    found = []
    if s.get("read_only") is not True:
        found.append("read_only is not true")
    if "ALL" not in (s.get("cap_drop") or []):
        found.append("cap_drop does not include ALL")
    if s.get("cap_add"):
        found.append(f"cap_add {s['cap_add']}")
    if "no-new-privileges:true" not in (s.get("security_opt") or []):
        found.append("security_opt lacks no-new-privileges:true")
    if s.get("privileged"):
        found.append("privileged")
    user = str(s.get("user", ""))
    if not re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", user):
        found.append(f"user {user!r} is not a fixed non-root uid")
    for key in ("pid", "ipc", "userns_mode", "network_mode"):
        if str(s.get(key, "")) == "host":
            found.append(f"{key}: host")
    for port in s.get("ports") or []:
        host_ip = port.get("host_ip") if isinstance(port, Mapping) else None
        if not (LOOPBACK_PORT.match(str(port)) or host_ip == "127.0.0.1"):
            found.append(f"port {port} is not bound to 127.0.0.1")
    for volume in s.get("volumes") or []:
        source = str(volume.get("source", "") if isinstance(volume, Mapping) else str(volume).split(":")[0])
        if "docker.sock" in source or source in ("/", "/etc", "/proc", "/sys"):
            found.append(f"volume {volume} exposes the host")
    image = str(s.get("image", ""))
    if image.endswith(":latest") or (image and "build" not in s and not DIGEST.search(image)):
        found.append(f"image {image} is not pinned by digest")
    for key, value in _environment(s):
        if SECRET_NAME.search(key) and not REFERENCE.match(value):
            found.append(f"environment {key} holds a literal value (a secret belongs in the env file)")
    if _health_disabled(s) and not _one_shot(s):
        found.append("no healthcheck")
    for other, spec in _depends(s).items():
        condition = spec.get("condition") if isinstance(spec, Mapping) else None
        target = services.get(other, {})
        if condition not in CONDITIONS:
            found.append(f"depends_on {other} without a condition ({' or '.join(CONDITIONS)})")
        elif condition == "service_healthy" and _health_disabled(target):
            found.append(f"depends_on {other} healthy, but {other} has no healthcheck")
        elif condition == "service_completed_successfully" and not _one_shot(target):
            found.append(f"depends_on {other} completed, but {other} is not a one-shot (restart: 'no')")
    mode = str(s.get("network_mode", ""))
    if mode.startswith("service:"):
        if s.get("ports"):
            found.append("ports on a service in another's network namespace")
        if mode.removeprefix("service:") not in _upstream(services, name):
            found.append(f"network_mode {mode} without depends_on it")
    return found


def check_compose(doc: Mapping[str, Any], name: str = COMPOSE_FILE) -> list[str]:
    services = doc.get("services") or {}
    if not services:
        return [f"{name}: no services"]
    return [f"{name}: {service}: {problem}" for service in services for problem in check_service(services, service)]


def load_compose(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def check_repository(root: Path) -> list[str]:
    found = []
    for service in DOCKERFILES:
        path = root / service / "Dockerfile"
        if not path.is_file():
            found.append(f"{service}/Dockerfile is missing")
            continue
        found += check_dockerfile(path.read_text(), f"{service}/Dockerfile")
    return found + check_compose(load_compose(root / COMPOSE_FILE))


def main(argv: list[str] | None = None) -> int:
    from devtools.paths import repo_root

    args = sys.argv[1:] if argv is None else argv
    found = check_repository(Path(args[0]) if args else repo_root())
    for problem in found:
        print(problem)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
