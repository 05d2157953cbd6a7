"""Workspace-wide pytest setup."""

import importlib

# Under --import-mode=importlib, pytest names a test file by its path from the repo root
# (devtools/tests/test_x.py -> devtools.tests.test_x) and, if `devtools` is not imported yet,
# binds the `devtools/` member directory as a namespace package of that name, hiding the real
# package (pytest issue #13257). Importing each member whose directory shares its package's
# name first makes pytest reuse the real package instead.
for _package in ("zerotrust", "web", "api", "devtools"):
    importlib.import_module(_package)
