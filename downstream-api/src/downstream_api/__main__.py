"""`python -m downstream_api`: downstream-api over HTTPS (settings from DOWNSTREAM_* variables)."""

from zerotrust.serve import run

from .main import create_app
from .settings import Settings

run("downstream-api", Settings, create_app)
