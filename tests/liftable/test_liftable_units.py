"""The three units a developer can lift (protecting a FastAPI API, on-behalf-of, sign-in for a
backend-for-frontend), each copied alone into an empty project that has only the packages the unit
declares, and used there in process. If a unit reached for anything else (the rest of zerotrust, a
package it does not declare, an `app.state` name), its project would fail to import or to answer.

Each unit's files carry `# region liftable: <unit> (<k> of <n>) requires: <packages>` at the top and the
matching `# endregion` at the bottom; the chapters quote those regions.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from devtools.paths import repo_root
from packaging.requirements import Requirement

pytestmark = pytest.mark.live

HERE = Path(__file__).parent
REGION = re.compile(r"^# region liftable: ([a-z-]+) \((\d+) of (\d+)\) requires: (.+)$", re.M)
SEARCHED = ("zerotrust/src", "web/src", "api/src", "downstream-api/src")
# What a lifted unit's project must not have: this workspace's packages, and an HTTP client it never declared.
FOREIGN = ("zerotrust", "web", "api", "downstream_api", "devtools", "tests", "httpx")


@dataclass(frozen=True)
class Unit:
    name: str
    files: tuple[Path, ...]
    requires: tuple[str, ...]
    at_most: int
    script: str


def _units() -> dict[str, Unit]:
    found: dict[str, list[tuple[int, int, Path, list[str]]]] = {}
    for folder in SEARCHED:
        for path in sorted((repo_root() / folder).rglob("*.py")):
            for match in REGION.finditer(path.read_text()):
                name, k, n, requires = match.groups()
                found.setdefault(name, []).append((int(k), int(n), path, [r.strip() for r in requires.split(",")]))
    plan = {
        "protect-fastapi-api": (3, "use_protect.py"),
        "on-behalf-of": (2, "use_onbehalf.py"),
        "bff-sign-in": (4, "use_signin.py"),
    }
    units = {}
    for name, parts in found.items():
        at_most, script = plan[name]
        parts.sort()
        assert [k for k, *_ in parts] == list(range(1, parts[0][1] + 1)), f"{name}: parts {[k for k, *_ in parts]}"
        requires = sorted({r for *_, reqs in parts for r in reqs})
        units[name] = Unit(name, tuple(p for _, _, p, _ in parts), tuple(requires), at_most, script)
    return units


UNITS = _units()


def test_the_three_units_are_marked_and_small() -> None:
    assert sorted(UNITS) == ["bff-sign-in", "on-behalf-of", "protect-fastapi-api"]
    for unit in UNITS.values():
        assert len(unit.files) <= unit.at_most, (unit.name, unit.files)
        for path in unit.files:
            text = path.read_text()
            part = f"({unit.files.index(path) + 1} of {len(unit.files)})"
            assert text.rstrip().endswith(f"# endregion liftable: {unit.name} {part}"), path
            # Within a unit only relative imports of its own files, so a copy works as a package of its own.
            own = {p.stem for p in unit.files}
            for module in re.findall(r"^from \.(\w+) import", text, re.M):
                assert module in own, f"{path.name} imports .{module}, which is not part of {unit.name}"


def _closure(requirements: tuple[str, ...]) -> set[str]:
    """The distributions `requirements` need, as installed here (the lock's versions), extras included."""
    found: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        distribution = importlib.metadata.distribution(requirement.name)
        key = (distribution.metadata["Name"].lower(), *sorted(requirement.extras))
        if "|".join(key) in found:
            continue
        found.add("|".join(key))
        for text in distribution.requires or ():
            needed = Requirement(text)
            wanted = [{"extra": extra} for extra in (*requirement.extras, "")]
            if needed.marker is None or any(needed.marker.evaluate(env) for env in wanted):
                todo.append(needed)
    return {key.split("|", 1)[0] for key in found}


def _install(distributions: set[str], site_packages: Path) -> None:
    """Copy each distribution's installed files (its RECORD) from this environment: offline, exact versions."""
    for name in distributions:
        distribution = importlib.metadata.distribution(name)
        for file in distribution.files or ():
            if file.parts[0] == "..":
                continue  # scripts in bin/: nothing imports them
            target = site_packages / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(distribution.locate_file(file), target)


@pytest.mark.parametrize("name", sorted(UNITS))
def test_a_unit_works_alone_in_a_project_with_only_its_declared_packages(name: str, tmp_path: Path) -> None:
    unit = UNITS[name]
    package = tmp_path / "project" / "lifted"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for path in (*unit.files, HERE / "asgi.py"):
        shutil.copy(path, package / path.name)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "")}
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    # The machine's Python (the project's base interpreter), with the unit's packages and nothing else.
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], env=env, check=True, timeout=120)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    _install(_closure(unit.requires), Path(site.stdout.strip()))
    # Nothing of this workspace is importable there: not zerotrust, not the services, not the tests.
    absent = subprocess.run(
        [str(python), "-I", "-c", f"import importlib.util as u; print([m for m in {FOREIGN!r} if u.find_spec(m)])"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert absent.stdout.strip() == "[]", absent
    ran = subprocess.run(
        [str(python), str(HERE / unit.script), str(tmp_path / "state")],
        cwd=tmp_path / "project",
        env={**env, "PYTHONPATH": str(tmp_path / "project")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0 and f"{name}: ok" in ran.stdout, ran.stderr[-3000:]
