"""`make screenshots` makes every picture the README shows: each a PNG at the fixed viewport, small enough to
keep in the repository, and nothing in docs/images/ the command would not make again."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from devtools.screenshots import NAMES, VIEWPORT, fresh_stack

from tests.support.launch import MAKE_RUN_STACK_OFFSET, inherited

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "images"
PNG = b"\x89PNG\r\n\x1a\n"
MAX_BYTES = 250 * 1024


def _size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG) and png[12:16] == b"IHDR", "not a PNG"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_the_readme_shows_the_committed_pictures_the_command_makes() -> None:
    shown = set(re.findall(r"docs/images/([\w.-]+\.png)", (ROOT / "README.md").read_text()))
    assert shown == set(NAMES), "the README shows each picture make screenshots takes"
    assert {p.name for p in IMAGES.glob("*")} == set(NAMES), "docs/images holds what the command makes, no more"
    for name in NAMES:
        png = (IMAGES / name).read_bytes()
        assert _size(png) == (VIEWPORT["width"], VIEWPORT["height"]), name
        assert len(png) < MAX_BYTES, f"{name}: {len(png) // 1024} KB"


def test_a_folder_the_command_did_not_make_is_never_emptied(tmp_path: Path) -> None:
    mine = tmp_path / ".local"
    (mine / "emulator").mkdir(parents=True)
    (mine / "emulator" / "demo-password").write_text("kept")
    with pytest.raises(SystemExit, match="was not made by make screenshots"), fresh_stack(mine, 0):
        pass
    assert (mine / "emulator" / "demo-password").read_text() == "kept"


@pytest.mark.live
def test_make_screenshots_makes_every_picture_the_readme_shows(tmp_path: Path) -> None:
    out = tmp_path / "images"
    # The make target's command, on this test worker's ports; it starts and stops a stack of its own.
    offset = str(MAKE_RUN_STACK_OFFSET)
    command = [sys.executable, "-m", "devtools.screenshots", "--out", str(out), "--port-offset", offset]
    command += ["--local", str(tmp_path / "local")]
    done = subprocess.run(command, env=inherited(), cwd=ROOT, capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert sorted(p.name for p in out.iterdir()) == sorted(NAMES)
    for name in NAMES:
        png = (out / name).read_bytes()
        assert _size(png) == (VIEWPORT["width"], VIEWPORT["height"]), name
        assert len(png) < MAX_BYTES, f"{name}: {len(png) // 1024} KB"
