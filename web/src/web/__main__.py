"""`python -m web`: the web app on http://localhost:8000 (browsers treat http://localhost as a secure
context, so the Secure session cookie works without a certificate; in Azure, TLS ends at ingress)."""

import sys

from fastapi import FastAPI
from zerotrust.serve import run

from .main import create_app
from .redis_store import check_store
from .settings import Settings


def create_checked(settings: Settings) -> FastAPI:
    # A shared store that can't be reached is a configuration problem: one line and exit 2, as for a bad
    # setting, not the traceback a failed start-up would print.
    problem = check_store(settings)
    if problem is not None:
        print(f"web: {problem}", file=sys.stderr)
        sys.exit(2)
    return create_app(settings)


run("web", Settings, create_checked)
