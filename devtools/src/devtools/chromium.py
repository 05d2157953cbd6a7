"""Debian's Chromium as Playwright drives it here, for the browser tests and `make screenshots` alike."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# Root, no network, no display: the sandbox needs user namespaces root doesn't get here, and nothing
# may try to reach Google's services in the background.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# What to run when it is missing or broken: devtools/install.sh installs it as root on Debian.
INSTALL = "sudo apt-get install -y chromium"
