"""`python -m web`: the web app on http://localhost:8000 (browsers treat http://localhost as a secure
context, so the Secure session cookie works without a certificate; in Azure, TLS ends at ingress)."""

from zerotrust.serve import load_settings, serve

from .main import create_app
from .settings import Settings

settings = load_settings(Settings, "web", "WEB")
serve(create_app(settings), "web", "WEB", host=settings.host, port=settings.port, require_tls=False)
