"""Python 3.11, 3.12 and 3.13 are supported: every project says so, and the lock can install on each.

A laptop with only 3.12 or 3.13 must be able to run the project (`make test-pythons` proves the install and
the in-process tests on every interpreter the machine has; CI's matrix on all three). Here, statically:
every locked package has a wheel (or a source) for each version on Linux x86-64, so `uv sync --frozen`
cannot fail for want of one. Style and types still target the oldest, 3.11.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from devtools.paths import repo_root
from packaging.markers import Marker

pytestmark = pytest.mark.guidance("secure-dev-environment-zero-trust")

ROOT = repo_root()
SUPPORTED = (11, 12, 13)
REQUIRES = ">=3.11,<3.14"


def _pyprojects() -> list[Path]:
    members = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]["members"]
    return [
        ROOT / "pyproject.toml",
        *(ROOT / m / "pyproject.toml" for m in members),
        ROOT / "devtools/gates/pyproject.toml",
    ]


def test_every_project_supports_3_11_to_3_13() -> None:
    for path in _pyprojects():
        assert tomllib.loads(path.read_text())["project"]["requires-python"] == REQUIRES, path
    for lock in (ROOT / "uv.lock", ROOT / "devtools/gates/uv.lock"):
        assert tomllib.loads(lock.read_text())["requires-python"] == ">=3.11, <3.14", lock


def test_style_and_types_target_the_oldest_supported_version() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    assert config["ruff"]["target-version"] == "py311"
    assert config["mypy"]["python_version"] == "3.11"


def wheel_fits(filename: str, minor: int) -> bool:
    """Whether a wheel installs on CPython 3.<minor>, Linux x86-64 (glibc)."""
    python_tags, abi_tags, platform_tags = filename[: -len(".whl")].split("-")[-3:]
    platform_ok = any(p == "any" or re.fullmatch(r"(many)?linux\w*_x86_64", p) for p in platform_tags.split("."))
    if not platform_ok:
        return False
    for python in python_tags.split("."):
        if python in ("py3", f"py3{minor}", f"cp3{minor}"):
            return "abi3" in abi_tags or any(a in ("none", f"cp3{minor}") for a in abi_tags.split("."))
        oldest = re.fullmatch(r"cp3(\d+)", python)
        if oldest and "abi3" in abi_tags.split(".") and int(oldest.group(1)) <= minor:
            return True
    return False


def test_the_wheel_rule_reads_tags_as_pip_does() -> None:
    assert wheel_fits("pydantic_core-2.27.2-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", 13)
    assert not wheel_fits("pydantic_core-2.27.2-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", 13)
    assert wheel_fits("cryptography-44.0.0-cp39-abi3-manylinux_2_28_x86_64.whl", 13)
    assert not wheel_fits("cryptography-44.0.0-cp39-abi3-macosx_10_9_universal2.whl", 11)
    assert wheel_fits("idna-3.10-py3-none-any.whl", 12)


def _linux(minor: int, patch: int) -> dict[str, str]:
    return {
        "python_version": f"3.{minor}",
        "python_full_version": f"3.{minor}.{patch}",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
    }


def _applies(markers: list[str | None], env: dict[str, str]) -> bool:
    return any(m is None or Marker(m).evaluate(env) for m in markers)


@pytest.mark.parametrize("lock", ["uv.lock", "devtools/gates/uv.lock"])
def test_every_locked_package_installs_on_each_supported_version(lock: str) -> None:
    packages = tomllib.loads((ROOT / lock).read_text())["package"]
    # Who asks for each package, under which marker (pywin32 only on Windows, numpy 2.5 only from 3.12).
    wanted: dict[str, list[str | None]] = {}
    for package in packages:
        edges = [*package.get("dependencies", [])]
        edges += [d for group in package.get("optional-dependencies", {}).values() for d in group]
        edges += [d for group in package.get("dev-dependencies", {}).values() for d in group]
        for edge in edges:
            wanted.setdefault(edge["name"], []).append(edge.get("marker"))
    missing = []
    for package in packages:
        if "wheels" not in package:  # the workspace's own members, built from source
            continue
        own = package.get("resolution-markers") or [None]
        for minor, patch in ((m, p) for m in SUPPORTED for p in (0, 99)):
            env = _linux(minor, patch)
            if not (_applies(own, env) and _applies(wanted.get(package["name"], [None]), env)):
                continue
            if not any(wheel_fits(wheel["url"].rsplit("/", 1)[-1], minor) for wheel in package["wheels"]):
                missing.append(f"{package['name']} {package['version']} on 3.{minor}.{patch}")
    # A package without a wheel for a version would be built from its sdist: compilers and headers that a
    # plain laptop (and the CI machine) may lack. None is allowed to need that.
    assert not missing, "no wheel for: " + ", ".join(missing)
