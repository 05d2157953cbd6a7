"""Where the repository and its git-ignored local state live."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    # uv.lock marks the workspace root; walking up from this file works for the editable
    # install that `uv sync` makes, whatever the caller's working directory is.
    here = Path(__file__).resolve()
    for candidate in here.parents:
        if (candidate / "uv.lock").is_file():
            return candidate
    raise RuntimeError(f"no uv.lock above {here}: devtools must run from a checkout of the repository")


def local_dir() -> Path:
    # ZT_LOCAL_DIR lets tests (and parallel checkouts) keep their state apart from a developer's .local.
    override = os.environ.get("ZT_LOCAL_DIR")
    if override:
        return Path(override).expanduser().resolve()
    return repo_root() / ".local"
