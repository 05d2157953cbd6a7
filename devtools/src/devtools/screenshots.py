"""`make screenshots`: the README's pictures, taken in Debian's Chromium (Playwright) at one fixed viewport.

By default on a fresh stack of their own (state in `.local/screenshots/`, emptied first; ports shifted away
from `make run`'s), so every run shows the same demo state: alice signs in at the emulator, adds three tasks
and completes one, fires the attack lab, and each main page is photographed under a fixed name.
`--running` photographs the stack `make run` started instead (alice's tasks there are added to).

    python3 -m uv run python -m devtools.screenshots [--out DIR] [--running] [--port-offset N] [--local DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devtools.chromium import CHROMIUM, INSTALL, LAUNCH_ARGS
from devtools.paths import local_dir, repo_root

VIEWPORT = {"width": 1280, "height": 800}
USER = "alice@contoso.test"
TASKS = ("Plan the offsite", "Book the venue", "Review who can use the api")
# (file name, web path); the emulator's sign-in page is photographed on the way in, as sign-in.png.
PAGES = (
    ("tour.png", "/"),
    ("tasks.png", "/tasks"),
    ("chain.png", "/chain"),
    ("permissions.png", "/permissions"),
    ("lab.png", "/lab"),
)
NAMES = ("sign-in.png", *(name for name, _ in PAGES))
# Ports 13000-13444: clear of `make run` (8000-8444) and of the tests' stacks and port blocks (18000 and up).
DEFAULT_OFFSET = 5000
START_SECONDS = 150
MARK = "made-by-make-screenshots"


@contextmanager
def fresh_stack(local: Path, port_offset: int) -> Iterator[dict[str, Any]]:
    """`zt run` with its state in `local` (emptied first) on `port_offset`; yields its stack.json, stops it after.
    The emulator's pages name the demo password's file in `local`, so a fixed folder makes a fixed picture."""
    # Emptied only if this command made it: never a developer's own .local by a mistyped --local.
    if local.exists() and not (local / MARK).exists():
        raise SystemExit(f"{local} exists and was not made by make screenshots: choose another --local")
    shutil.rmtree(local, ignore_errors=True)
    local.mkdir(parents=True, mode=0o700)
    (local / MARK).touch()
    log_path = local / "zt-run.log"
    env = {**os.environ, "ZT_LOCAL_DIR": str(local)}
    command = [sys.executable, "-m", "devtools.cli", "run", "--port-offset", str(port_offset)]
    with log_path.open("wb") as log:
        runner = subprocess.Popen(  # noqa: S603 - this interpreter runs this repository's own `zt run`
            command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=repo_root(), start_new_session=True
        )
    try:
        stack_file = local / "stack.json"
        deadline = time.monotonic() + START_SECONDS
        while not stack_file.exists():
            if runner.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the stack did not come up:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield json.loads(stack_file.read_text())
    finally:
        runner.send_signal(signal.SIGTERM)
        runner.wait(30)


def running_stack() -> dict[str, Any]:
    stack_file = local_dir() / "stack.json"
    if not stack_file.exists():
        raise SystemExit(f"no stack is running ({stack_file} is missing): start one with `make run`")
    info: dict[str, Any] = json.loads(stack_file.read_text())
    return info


def take(info: dict[str, Any], out: Path) -> list[Path]:
    """Sign in as USER, set the scene, photograph each page into `out`; returns the files written."""
    from playwright.sync_api import Page, expect, sync_playwright

    def accept_if_asked(page: Page, until: Any) -> None:
        accept = page.get_by_role("button", name="Accept")  # the emulator's consent prompt
        expect(accept.or_(until)).to_be_visible()
        if accept.is_visible():
            accept.click()
        expect(until).to_be_visible()

    def shot(page: Page, name: str) -> Path:
        page.mouse.move(0, 0)  # no hover state in the picture
        path = out / name
        page.screenshot(path=path, animations="disabled", caret="hide")
        return path

    out.mkdir(parents=True, exist_ok=True)
    web = str(info["web"])
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, locale="en-GB")  # type: ignore[arg-type]
            context.set_default_timeout(20_000)
            page = context.new_page()
            page.goto(f"{web}/")
            page.get_by_role("banner").get_by_role("link", name="Sign in").click()
            page.get_by_label("Email or username").fill(USER)
            page.get_by_label("Password").fill(str(info["demo_password"]))
            written.append(shot(page, "sign-in.png"))
            page.get_by_role("button", name="Sign in").click()
            accept_if_asked(page, page.get_by_role("banner").get_by_text("Signed in as"))

            page.goto(f"{web}/tasks")
            for title in TASKS:
                page.get_by_label("New task").fill(title)
                page.get_by_role("button", name="Add").click()
                accept_if_asked(page, page.locator("ul.tasks li").filter(has_text=title).first)
            page.locator("ul.tasks li").filter(has_text=TASKS[0]).first.get_by_role("button", name="Complete").click()
            expect(page.get_by_role("status")).to_be_visible()

            for name, path in PAGES:
                page.goto(f"{web}{path}")
                if path == "/lab":
                    page.get_by_role("button", name="Fire all").click()
                    expect(page.locator(".lab-summary")).to_be_visible()
                written.append(shot(page, name))
        finally:
            browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=repo_root() / "docs" / "images", help="folder for the PNGs")
    parser.add_argument("--running", action="store_true", help="photograph the stack `make run` started")
    parser.add_argument("--port-offset", type=int, default=DEFAULT_OFFSET, help="the fresh stack's port offset")
    parser.add_argument("--local", type=Path, default=local_dir() / "screenshots", help="the fresh stack's state")
    args = parser.parse_args(argv)
    if not os.access(CHROMIUM, os.X_OK):
        print(f"{CHROMIUM} is missing: `{INSTALL}` (make screenshots installs it as root on Debian)", file=sys.stderr)
        return 1
    if args.running:
        written = take(running_stack(), args.out)
    else:
        with fresh_stack(args.local.resolve(), args.port_offset) as info:
            written = take(info, args.out)
    for path in written:
        print(f"{path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
