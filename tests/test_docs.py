"""What the README and the docs tell a newcomer stays true: commands that run as written, one count for
dave's groups, how long `make test` takes and how two runs keep apart, the dev CA behind the api's /docs, and
the license."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from devtools.tls import tls_paths

from devtools import ports

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# What a person reads: the README, the docs, and the tour the web app renders.
READ = [README, *sorted((ROOT / "docs").rglob("*.md")), ROOT / "web" / "src" / "web" / "tour.yaml"]
CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^\s*(```|~~~)")


def _commands(text: str) -> list[str]:
    """Every line of a code block and every inline code span: what a reader copies into a shell."""
    found, in_block = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_block = not in_block
        elif in_block:
            found.append(line.strip().removeprefix("$ "))
        else:
            found += CODE_SPAN.findall(line)
    return found


def test_no_command_starts_with_a_bare_zt_which_is_not_on_path() -> None:
    bare = [
        f"{path.relative_to(ROOT)}: {command}"
        for path in READ
        for command in _commands(path.read_text())
        if re.match(r"zt\s", command)
    ]
    assert not bare, "use the make target or `python3 -m uv run zt ...`:\n" + "\n".join(bare)


def test_the_scan_finds_bare_zt_commands() -> None:
    text = "Run `zt token --user x` or\n```\nzt run\n$ zt scorecard\n```\n`python3 -m uv run zt run` is fine."
    assert [c for c in _commands(text) if re.match(r"zt\s", c)] == ["zt token --user x", "zt run", "zt scorecard"]


def _daves_groups() -> int:
    directory = yaml.safe_load((ROOT / "identity-emulator" / "demo" / "directory.yaml").read_text())
    contoso = directory["tenants"]["contoso"]
    dave = next(u for u in contoso["users"] if u["upn"] == "dave@contoso.test")
    generated = contoso["generated_groups"]
    return len(dave["groups"]) + (generated["count"] if "dave@contoso.test" in generated["members"] else 0)


def test_every_page_gives_dave_the_group_count_the_directory_gives_him() -> None:
    count = _daves_groups()
    assert count > 200  # more than fit in a token: the point of dave
    pages = [
        *READ,
        *sorted((ROOT / "web" / "src" / "web").rglob("*.html")),
        *(ROOT / "web/src/web/routes").glob("*.py"),
    ]
    said = {
        (str(path.relative_to(ROOT)), int(n))
        for path in pages
        for sentence in re.split(r"(?<=[.;])\s", path.read_text())
        if "dave" in sentence.lower()
        for n in re.findall(r"(\d{3}) groups", sentence)
    }
    assert said and {n for _, n in said} == {count}, said


def test_the_readme_says_how_long_make_test_takes_and_how_two_runs_keep_apart() -> None:
    text = " ".join(README.read_text().split())
    assert "about 11 to 15 on a machine with 2 cores" in text
    example = re.search(r"`ZT_PORT_BASE=(\d+) ZT_STACK_OFFSET=(\d+) make test`", text)
    assert example, "the README names the values a second clone uses"

    # The example's ports and the default's never meet: two workers each, every stack offset.
    def taken(base: int, offset: int) -> set[int]:
        blocks = {p for w in range(2) for p in range(base + w * ports.BLOCK, base + (w + 1) * ports.BLOCK)}
        step, per = ports.STACK_OFFSET_STEP, ports.STACK_OFFSETS_PER_WORKER
        stacks = {offset + i * step + p for i in range(2 * per) for p in range(8000, 8445)}
        return blocks | stacks

    assert not taken(ports.DEFAULT_BASE, ports.STACK_OFFSET) & taken(int(example[1]), int(example[2]))
    assert max(taken(int(example[1]), int(example[2]))) <= ports.HIGHEST


def test_the_readme_explains_the_certificate_warning_at_the_apis_docs() -> None:
    text = " ".join(README.read_text().split())
    tls = tls_paths(Path(".local/tls"))
    at = text.index("https://localhost:8001/docs")
    explained = text[at : at + 900]
    assert "certificate warning" in explained and f"`{tls.ca_cert}`" in explained
    assert f"curl --cacert {tls.ca_bundle} https://localhost:8001/openapi.json" in explained


def test_the_license_is_mit_and_the_readme_says_so() -> None:
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License")
    assert "Copyright (c) the Zero Trust reference application authors" in license_text
    assert "[LICENSE](LICENSE)" in README.read_text()


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_the_read_the_code_order_is_8_to_12_files_one_line_each_and_every_path_there_exists() -> None:
    section = _section("Read the code")
    listed = section.split("Read in this order, first to last:\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    order = [re.fullmatch(r"\d+\. `([^`]+)`: .+", line) for line in listed]
    assert all(order), f"one line each, `path`: why: {listed}"
    assert 8 <= len(order) <= 12
    spans = CODE_SPAN.findall(section) + re.findall(r"\]\(([^)#]+)\)", section)
    # Paths from the repository root: two parts or more (a bare `routes/` is every service's folder).
    paths = {p for p in spans if re.fullmatch(r"[\w.-]+(/[\w.-]+)+/?", p)}
    assert {m[1] for m in order if m} <= paths
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"paths in README's Read the code that do not exist: {missing}"


def test_the_troubleshooting_section_quotes_what_the_tools_print() -> None:
    section = " ".join(_section("Troubleshooting").split())
    supervisor = (ROOT / "devtools/src/devtools/supervisor.py").read_text()
    install = (ROOT / "devtools/install.sh").read_text()
    # What zt run says when a port is taken or a service never answers, and what install.sh prints.
    assert "is already in use; {s.name} needs it." in supervisor
    assert "zt: port 8001 on 127.0.0.1 is already in use; api needs it." in section
    assert 'f"timed out waiting for {names} to answer 200 on /healthz"' in supervisor
    assert "zt: timed out waiting for <service> to answer 200 on /healthz" in section
    assert 'echo "Missing system packages: ${missing[*]}. Install them with:"' in install
    assert "Missing system packages: chromium. Install them with: sudo apt-get install -y chromium" in section
    assert "about 11 to 15 minutes on 2 cores" in section
