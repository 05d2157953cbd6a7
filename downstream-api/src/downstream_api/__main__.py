"""`python -m downstream_api`: serve over HTTPS (DOWNSTREAM_TLS_CERT / DOWNSTREAM_TLS_KEY)."""

from zerotrust.serve import load_settings, serve

from .main import create_app
from .settings import Settings

settings = load_settings(Settings, "downstream-api", "DOWNSTREAM")
serve(
    create_app(settings),
    "downstream-api",
    "DOWNSTREAM",
    host=settings.host,
    port=settings.port,
    tls_cert=settings.tls_cert,
    tls_key=settings.tls_key,
    log_level=settings.log_level,
)
