"""`python -m api`: the api over HTTPS on loopback (settings from API_* variables)."""

from zerotrust.serve import run

from .main import create_app
from .settings import Settings

run("api", Settings, create_app)
