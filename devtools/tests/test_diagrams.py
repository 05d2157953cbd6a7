"""The sequence diagrams of docs/diagrams: each committed SVG is exactly what its Mermaid source draws (so
picture and source never drift), well-formed and accessible, readable on a phone, and shown where the
docs say; a source outside the subset the renderer draws is refused naming the file and the line."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from devtools.diagram_svg import width
from devtools.diagrams import DiagramError, build, main, parse, render
from devtools.paths import repo_root

ROOT = repo_root()
FOLDER = ROOT / "docs" / "diagrams"
SVG = "{http://www.w3.org/2000/svg}"
# The flows and the chapters that show them (issue 15: a picture for each flow).
SHOWN_IN = {
    "signin": ["user-authentication.md"],
    "on-behalf-of": ["api-calls-api.md"],
    "daemon": ["identity-non-user-applications.md", "developer-strategy-application-permissions.md"],
    "provisioning": ["identity-standards-based-development-methodologies.md"],
    "consent": ["permissions-require-admin-consent.md", "identity.md"],
    "database-token": ["identity-non-user-applications.md"],
    "cae": ["secure-with-cae.md"],
}
FLOWS = sorted(SHOWN_IN)
# Readable at 390 px (a phone) when the picture is scaled to fit: no text smaller than this there.
PHONE, SMALLEST_ON_PHONE = 390, 9.0


def svg_of(flow: str) -> ET.Element:
    # Our own committed files, not input from anyone: the standard parser is right here.
    return ET.fromstring((FOLDER / f"{flow}.svg").read_text())  # noqa: S314  # nosec B314


def test_every_flow_has_a_source_and_nothing_else_is_there() -> None:
    assert sorted(p.stem for p in FOLDER.glob("*.mmd")) == FLOWS
    assert sorted(p.stem for p in FOLDER.glob("*.svg")) == FLOWS, "an SVG without its source"


@pytest.mark.parametrize("flow", FLOWS)
def test_the_committed_svg_is_what_its_source_draws(flow: str) -> None:
    drawn = render(parse((FOLDER / f"{flow}.mmd").read_text(), f"{flow}.mmd"), flow)
    assert (FOLDER / f"{flow}.svg").read_text() == drawn, f"docs/diagrams/{flow}.svg is stale: run `make diagrams`"


def test_check_mode_finds_a_stale_svg_and_changes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "docs" / "diagrams"
    folder.mkdir(parents=True)
    (folder / "x.mmd").write_text(
        "sequenceDiagram\ntitle X\nparticipant A\nparticipant B\nloop every minute\nA->>A: tick\nend\n"
        "Note left of B: waits\nB-->>A: hello<br/>again\n"
    )
    assert build(folder, check=True) == [folder / "x.svg"] and not (folder / "x.svg").exists()
    assert build(folder) == [folder / "x.svg"]
    drawn = (folder / "x.svg").read_text()
    assert ET.fromstring(drawn).find(f"{SVG}title") is not None  # noqa: S314  # nosec B314
    assert ">loop</text>" in drawn and ">[every minute]</tspan>" in drawn and ">again</tspan>" in drawn
    assert build(folder, check=True) == [] and build(folder) == []  # the same bytes again
    assert (folder / "x.svg").read_text() == drawn
    assert main(["--check"]) == 0, "a committed SVG is stale: run `make diagrams`"


@pytest.mark.parametrize("flow", FLOWS)
def test_each_svg_is_well_formed_with_a_title_a_description_and_text(flow: str) -> None:
    root = svg_of(flow)
    source = parse((FOLDER / f"{flow}.mmd").read_text())
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and title.text == source.title
    assert desc is not None and desc.text and desc.text.startswith(source.description)
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    # Every message is said in the description, for a screen reader, and drawn as text, not as paths.
    messages = [s for s in source.steps if s.kind == "message"]
    assert len(messages) <= 20, "keep a diagram readable: at most about 20 messages"
    for step in messages:
        assert " ".join(step.text) in desc.text
    shown = " ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))
    for step in messages:
        assert step.text[0].split(" ")[0] in shown


@pytest.mark.parametrize("flow", FLOWS)
def test_each_diagrams_participants_appear_at_the_top_and_the_bottom(flow: str) -> None:
    root = svg_of(flow)
    lines = [t.text for t in root.iter(f"{SVG}tspan")]
    for name, _ in parse((FOLDER / f"{flow}.mmd").read_text()).participants.values():
        for line in name:
            assert lines.count(line) >= 2, f"{flow}: participant {line!r} not drawn"


@pytest.mark.parametrize("flow", FLOWS)
def test_each_svg_is_readable_on_a_phone_and_its_text_stays_inside(flow: str) -> None:
    root = svg_of(flow)
    _, _, wide, high = (float(v) for v in (root.get("viewBox") or "").split())
    assert root.get("width") == f"{wide:.0f}"
    base = float(root.get("font-size") or 0)
    for text in root.iter(f"{SVG}text"):
        size = float(text.get("font-size") or base)
        assert size * PHONE / wide >= SMALLEST_ON_PHONE or (text.text or "").isdigit(), (flow, size)
        anchor = text.get("text-anchor", "start")
        for span in text.iter(f"{SVG}tspan") if len(text) else [text]:
            x = float(span.get("x") or text.get("x") or 0)
            w = width(span.text or "", size, bold=text.get("font-weight") == "700")
            left = x - {"start": 0, "middle": w / 2, "end": w}[anchor]
            assert left >= 0 and left + w <= wide, f"{flow}: {span.text!r} runs off the picture"
            assert 0 < float(span.get("y") or text.get("y") or 0) <= high


@pytest.mark.parametrize("flow", FLOWS)
def test_each_flow_is_shown_in_the_diagrams_readme_and_its_chapters(flow: str) -> None:
    assert f"({flow}.svg)" in (FOLDER / "README.md").read_text()
    for chapter in SHOWN_IN[flow]:
        text = (ROOT / "docs" / "guidance" / chapter).read_text()
        assert f"(../diagrams/{flow}.svg)" in text, f"{chapter} does not show {flow}"
        asks, flow_at = text.find("\n## What the guidance asks"), text.find("\n## The flow")
        assert 0 <= asks < flow_at and "\n## " not in text[asks + 5 : flow_at], "right after What the guidance asks"


def test_every_image_in_the_docs_resolves() -> None:
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", page.read_text()):
            if "://" in target:
                continue
            found.append(target)
            assert (page.parent / target.split("#")[0]).resolve().is_file(), f"{page.relative_to(ROOT)}: {target}"
    assert len(found) >= 2 * len(FLOWS)


BAD = [
    ("participant A\nA->>A: hi", 1, "first statement must be `sequenceDiagram`"),
    ("sequenceDiagram\ntitle T\nparticipant A\nA->>B: hi", 4, "'B' is not declared"),
    ("sequenceDiagram\ntitle T\nparticipant A\nA-xA: lost", 4, "not in the Mermaid subset"),
    ("sequenceDiagram\ntitle T\nparticipant A\nactivate A", 4, "not in the Mermaid subset"),
    ("sequenceDiagram\ntitle T\nparticipant A\nopt maybe\nA->>A: hi\nelse no\nend", 6, "`else` outside an `alt`"),
    ("sequenceDiagram\ntitle T\nparticipant A\nloop again\nA->>A: hi", 5, "`loop` block is not closed"),
    ("sequenceDiagram\ntitle T\nparticipant A\nend", 4, "`end` without a block"),
    ("sequenceDiagram\ntitle T\nparticipant A\nA->>A: step 1; step 2", 4, "'#' and ';'"),
    ("sequenceDiagram\ntitle T\nparticipant A\nNote over A: issue #15", 4, "'#' and ';'"),
    ("sequenceDiagram\ntitle T\nparticipant A\nA->>A: <b>bold</b>", 4, "HTML other than <br/>"),
    ("sequenceDiagram\ntitle T\nparticipant Options", 3, "begins with a Mermaid keyword"),
    ("sequenceDiagram\ntitle T\nparticipant A\nparticipant A", 4, "declared twice"),
    ("sequenceDiagram\nparticipant A\nA->>A: hi", 1, "needs a `title`"),
]


@pytest.mark.parametrize(("source", "line", "says"), BAD)
def test_a_source_outside_the_subset_is_refused_naming_the_file_and_line(source: str, line: int, says: str) -> None:
    with pytest.raises(DiagramError) as refused:
        parse(source, "docs/diagrams/bad.mmd")
    assert str(refused.value).startswith(f"docs/diagrams/bad.mmd:{line}: ") and says in str(refused.value)


def test_the_subset_parses_as_mermaid_reads_it() -> None:
    d = parse(
        "%% a comment\nsequenceDiagram\n  title Flow\n  accDescr: What it shows.\n  autonumber\n"
        "  actor U as A person<br/>(browser)\n  participant W as web\n  U->>W: GET /\n  alt signed in\n"
        "    W-->>U: the page\n  else not\n    Note right of W: no session\n  end\n  Note over U,W: done\n"
    )
    assert (d.title, d.description) == ("Flow", "What it shows.")
    assert d.participants == {"U": (["A person", "(browser)"], True), "W": (["web"], False)}
    assert [(s.kind, s.who, s.how, s.number) for s in d.steps] == [
        ("message", ("U", "W"), "->>", 1),
        ("block", (), "alt", 0),
        ("message", ("W", "U"), "-->>", 2),
        ("else", (), "", 0),
        ("note", ("W",), "right of", 0),
        ("end", (), "alt", 0),
        ("note", ("U", "W"), "over", 0),
    ]


def test_the_make_target_draws_them_and_help_names_it() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "\ndiagrams: .venv-ready\n\t$(UV) run python -m devtools.diagrams\n" in makefile
    assert "make diagrams" in makefile.split("\nhelp:", 1)[1].split("\n\n", 1)[0]
