"""The images and the compose stack keep the hardening rules (devtools.containers), checked on the files:
no Docker engine here. Each rule is also weakened, one at a time, on copies: the checker must say exactly that."""

from __future__ import annotations

import copy
import re
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from devtools.containers import (
    COMPOSE_FILE,
    DOCKERFILES,
    check_compose,
    check_dockerfile,
    check_repository,
    load_compose,
    parse_dockerfile,
)

from devtools import compose, containers

pytestmark = pytest.mark.guidance("secure-devops-platform-environment-zero-trust")

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^# zt: secure-devops-platform-environment-zero-trust$", re.M)


def _compose() -> dict[str, Any]:
    return load_compose(ROOT / COMPOSE_FILE)


def _dockerfile(service: str) -> str:
    return (ROOT / service / "Dockerfile").read_text()


def test_the_repository_keeps_every_rule() -> None:
    assert check_repository(ROOT) == []


def test_every_image_starts_from_the_same_slim_base_pinned_by_digest() -> None:
    bases = {i.args.split()[0] for s in DOCKERFILES for i in parse_dockerfile(_dockerfile(s)) if i.keyword == "FROM"}
    assert len(bases) == 1, bases
    [base] = bases
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base)


def test_images_install_the_lock_with_hashes_and_run_as_uid_10001() -> None:
    for service in DOCKERFILES:
        text = _dockerfile(service)
        package = "devtools" if service == "devtools" else service
        assert f"uv sync --frozen --no-dev --no-install-workspace --package {package}" in text, service
        assert "pip install --require-hashes -r /tmp/uv-requirements.txt" in text, service
        assert [i.args for i in parse_dockerfile(text) if i.keyword == "USER"][-1] == "10001:10001", service


def test_the_images_uv_is_the_installers_version() -> None:
    installer = re.search(r"^UV_VERSION=(\S+)$", (ROOT / "devtools" / "install.sh").read_text(), re.M)
    pinned = re.search(
        r"^uv==(\S+) \\\n\s+--hash=sha256:[0-9a-f]{64}$", (ROOT / "devtools" / "uv-requirements.txt").read_text(), re.M
    )
    assert installer and pinned and installer.group(1) == pinned.group(1)


def test_everything_an_image_copies_exists_and_no_local_state_enters_the_build() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for needed in (".git", "**/.venv", ".local", "**/.local", "test-artifacts", "**/*.pem", "**/*.env"):
        assert needed in ignored
    for service in DOCKERFILES:
        for ins in parse_dockerfile(_dockerfile(service)):
            if ins.keyword == "COPY" and not ins.args.startswith("--from"):
                *sources, _target = ins.args.split()
                for source in sources:
                    assert (ROOT / source).exists(), f"{service}/Dockerfile copies {source}, which does not exist"


def test_every_image_gives_uv_the_whole_workspace_to_check_the_lock_against() -> None:
    members = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]["members"]
    for service in DOCKERFILES:
        copied = [i.args.split()[0] for i in parse_dockerfile(_dockerfile(service)) if i.keyword == "COPY"]
        assert [c for c in copied if c.endswith("/pyproject.toml")] == [f"{m}/pyproject.toml" for m in members]


def test_only_the_gate_publishes_and_only_on_the_hosts_loopback() -> None:
    services = _compose()["services"]
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert list(published) == ["gate"]
    assert all(p.startswith("127.0.0.1:") for p in published["gate"])
    # Everyone else lives in the gate's namespace (loopback as under make run), or in none at all.
    modes = {name: s.get("network_mode") for name, s in services.items() if name != "gate"}
    assert set(modes.values()) == {"service:gate", "none"}
    assert [name for name, mode in modes.items() if mode == "none"] == ["init"]


def test_the_gate_relays_exactly_the_published_ports() -> None:
    gate = _compose()["services"]["gate"]
    relayed = [int(a) for a in gate["command"][3:]]
    assert relayed == [int(p.split(":")[2]) for p in gate["ports"]]


def test_no_secret_in_the_compose_file_only_references_to_the_env_file() -> None:
    services = _compose()["services"]
    referenced = set()
    for service in services.values():
        for key, value in (service.get("environment") or {}).items():
            if "HEADER" in key:
                found = re.fullmatch(r"\$\{(ZT_IDENTITY_HEADER_[A-Z_]+):\?[^}]+\}", str(value))
                assert found, f"{key}: {value}"
                referenced.add(found.group(1))
    assert referenced == {compose.header_variable(i) for i in compose.IDENTITIES}
    assert MARKER.search((ROOT / COMPOSE_FILE).read_text())


def test_the_checker_module_carries_the_articles_marker() -> None:
    assert MARKER.search(Path(containers.__file__).read_text())


def test_the_dockerfile_parser_joins_continuations_and_drops_comments() -> None:
    text = "# syntax=docker/dockerfile:1\nFROM a@sha256:" + "0" * 64 + " AS b\nRUN one \\\n# a comment\n    two\n"
    assert [(i.keyword, i.args, i.line) for i in parse_dockerfile(text)] == [
        ("FROM", "a@sha256:" + "0" * 64 + " AS b", 2),
        ("RUN", "one two", 3),
    ]


# -- each rule weakened on a copy: exactly that is reported ------------------------------------------------

Compose = dict[str, Any]


def _set(service: str, key: str, value: object) -> Callable[[Compose], None]:
    def change(doc: Compose) -> None:
        doc["services"][service][key] = value

    return change


def _drop(service: str, key: str) -> Callable[[Compose], None]:
    def change(doc: Compose) -> None:
        del doc["services"][service][key]

    return change


def _add_env(doc: Compose) -> None:
    doc["services"]["web"]["environment"]["WEB_CLIENT_SECRET"] = (
        "s3cr3t-value"  # pragma: allowlist secret (planted: the checker must find it)
    )


def _unpinned_image(doc: Compose) -> None:
    redis = doc["services"]["redis"]
    del redis["build"]
    redis["image"] = "redis:latest"


def _list_depends(doc: Compose) -> None:
    doc["services"]["api"]["depends_on"] = ["identity-emulator"]


COMPOSE_MUTATIONS = {
    "no read_only": (_drop("web", "read_only"), "web: read_only is not true"),
    "port on all interfaces": (
        _set("gate", "ports", ["127.0.0.1:8000:8000", "0.0.0.0:8001:8001"]),
        "gate: port 0.0.0.0:8001:8001 is not bound to 127.0.0.1",
    ),
    "privileged": (_set("api", "privileged", True), "api: privileged"),
    "capabilities kept": (_drop("downstream-api", "cap_drop"), "downstream-api: cap_drop does not include ALL"),
    "a capability added": (_set("web", "cap_add", ["NET_ADMIN"]), "web: cap_add ['NET_ADMIN']"),
    "privileges may grow": (
        _set("identity-emulator", "security_opt", []),
        "identity-emulator: security_opt lacks no-new-privileges:true",
    ),
    "root": (_set("postgres", "user", "0:0"), "postgres: user '0:0' is not a fixed non-root uid"),
    "no user": (_drop("pgtoken", "user"), "pgtoken: user '' is not a fixed non-root uid"),
    "host network": (_set("redis", "network_mode", "host"), "redis: network_mode: host"),
    "no healthcheck": (_drop("web", "healthcheck"), "web: no healthcheck"),
    "start order without condition": (
        _list_depends,
        "api: depends_on identity-emulator without a condition (service_healthy or service_completed_successfully)",
    ),
    "a literal secret": (
        _add_env,
        "web: environment WEB_CLIENT_SECRET holds a literal value (a secret belongs in the env file)",
    ),
    "unpinned image": (_unpinned_image, "redis: image redis:latest is not pinned by digest"),
    "docker socket": (
        _set("api", "volumes", ["/var/run/docker.sock:/var/run/docker.sock"]),
        "api: volume /var/run/docker.sock:/var/run/docker.sock exposes the host",
    ),
}


@pytest.mark.parametrize("mutation", list(COMPOSE_MUTATIONS))
def test_a_weakened_compose_file_is_caught(mutation: str, tmp_path: Path) -> None:
    change, expected = COMPOSE_MUTATIONS[mutation]
    doc = copy.deepcopy(_compose())
    change(doc)
    # Through a file, as the checker reads the real one.
    (tmp_path / COMPOSE_FILE).write_text(yaml.safe_dump(doc))
    assert check_compose(load_compose(tmp_path / COMPOSE_FILE)) == [f"{COMPOSE_FILE}: {expected}"]


BASE = re.compile(r"@sha256:[0-9a-f]{64}")
DOCKERFILE_MUTATIONS: dict[str, tuple[Callable[[str], str], list[str]]] = {
    "unpinned base": (
        lambda t: t[: t.rindex("@sha256:")] + BASE.sub("", t[t.rindex("@sha256:") :], count=1),
        ["FROM python:3.11.16-slim-bookworm is not pinned by @sha256 digest"],
    ),
    "latest base": (
        lambda t: BASE.sub("", t.replace("python:3.11.16-slim-bookworm", "python:latest")),
        ["FROM python:latest is not pinned by @sha256 digest", "FROM python:latest uses the latest tag"] * 2,
    ),
    "no user": (lambda t: t.replace("USER 10001:10001\n", ""), ["the final stage has no USER (it would run as root)"]),
    "root user": (lambda t: t.replace("USER 10001:10001", "USER root"), ["USER root is not a fixed non-root uid"]),
    "secret env": (
        lambda t: t.replace("WORKDIR /app\n", "WORKDIR /app\nENV CLIENT_SECRET=abc123\n"),
        ["ENV CLIENT_SECRET looks like a secret"],
    ),
    "secret arg": (
        lambda t: t.replace("WORKDIR /app\n", "WORKDIR /app\nARG DB_PASSWORD\n"),
        ["ARG DB_PASSWORD looks like a secret"],
    ),
    "no healthcheck": (
        lambda t: re.sub(r"HEALTHCHECK [^\n]*\\\n[^\n]*\n", "", t),
        ["the final stage has no HEALTHCHECK"],
    ),
    "shell-form command": (
        lambda t: t.replace('CMD ["python", "-m", "web"]', "CMD python -m web"),
        ["CMD in shell form (signals miss the process)"],
    ),
    "add": (
        lambda t: t.replace("WORKDIR /app\n", "WORKDIR /app\nADD https://example.com/x.tgz /x\n"),
        ["ADD (fetches and unpacks): use COPY"],
    ),
    "local state copied": (
        lambda t: t.replace("WORKDIR /app\n", "WORKDIR /app\nCOPY .local /app/.local\n"),
        ["COPY of local state (.local /app/.local)"],
    ),
}


@pytest.mark.parametrize("mutation", list(DOCKERFILE_MUTATIONS))
def test_a_weakened_dockerfile_is_caught(mutation: str, tmp_path: Path) -> None:
    change, expected = DOCKERFILE_MUTATIONS[mutation]
    path = tmp_path / "Dockerfile"
    path.write_text(change(_dockerfile("web")))
    found = [re.sub(r"^web/Dockerfile(:\d+)?: ", "", f) for f in check_dockerfile(path.read_text(), "web/Dockerfile")]
    assert sorted(found) == sorted(expected)


def test_the_checker_command_reports_a_weakened_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for service in DOCKERFILES:
        (tmp_path / service).mkdir()
        (tmp_path / service / "Dockerfile").write_text(_dockerfile(service))
    (tmp_path / COMPOSE_FILE).write_text((ROOT / COMPOSE_FILE).read_text())
    assert containers.main([str(tmp_path)]) == 0
    (tmp_path / COMPOSE_FILE).write_text((ROOT / COMPOSE_FILE).read_text().replace("  read_only: true\n", ""))
    assert containers.main([str(tmp_path)]) == 1
    # The anchor gave every service read_only: all of them are reported.
    assert capsys.readouterr().out.count("read_only is not true") == len(_compose()["services"])


# -- first-run material -------------------------------------------------------------------------------------


def test_the_env_file_is_owner_only_and_keeps_its_headers(tmp_path: Path) -> None:
    path = tmp_path / "local" / compose.ENV_FILE
    first = compose.write_env_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(first) == {compose.header_variable(i) for i in compose.IDENTITIES}
    assert len(set(first.values())) == len(first)
    assert compose.write_env_file(path) == first == compose.read_env_file(path)


def test_init_gives_the_emulator_the_env_files_headers(tmp_path: Path) -> None:
    values = compose.write_env_file(tmp_path / compose.ENV_FILE)
    local = tmp_path / "local"
    (local / "emulator").mkdir(parents=True)
    (local / "emulator" / compose.HEADERS_FILE).write_text('{"daemon": "kept", "web": "replaced"}')
    headers = yaml.safe_load(compose.init_state(local, values).read_text())
    assert headers == {"daemon": "kept", **{i: values[compose.header_variable(i)] for i in compose.IDENTITIES}}
    assert (local / "tls" / "server.pem").is_file() and (local / "tls" / "ca-bundle.pem").is_file()


def test_init_without_the_env_file_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"ZT_IDENTITY_HEADER_WEB.*python -m devtools.compose env"):
        compose.init_state(tmp_path, {})
