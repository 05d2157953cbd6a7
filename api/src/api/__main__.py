"""`python -m api`: the api over HTTPS on loopback (settings from API_* variables)."""

from zerotrust.serve import load_settings, serve

from .main import create_app
from .settings import Settings

settings = load_settings(Settings, "api", "API")
serve(
    create_app(settings),
    "api",
    "API",
    host=settings.host,
    port=settings.port,
    tls_cert=settings.tls_cert,
    tls_key=settings.tls_key,
)
