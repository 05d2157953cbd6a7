"""`python -m web`: the web app on http://localhost:8000 (browsers treat http://localhost as a secure
context, so the Secure session cookie works without a certificate; in Azure, TLS ends at ingress)."""

from zerotrust.serve import run

from .main import create_app
from .settings import Settings

run("web", Settings, create_app)
