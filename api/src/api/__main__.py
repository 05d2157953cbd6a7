"""`python -m api`: serve the api over HTTPS on loopback (settings from API_* variables)."""

import sys

import uvicorn
from pydantic import ValidationError

from .main import create_app
from .settings import Settings

try:
    settings = Settings()
except ValidationError as exc:
    for err in exc.errors():
        print(f"api: API_{'_'.join(map(str, err['loc'])).upper()}: {err['msg']}", file=sys.stderr)
    sys.exit(2)
if settings.tls_cert is None or settings.tls_key is None:
    sys.exit("api: API_TLS_CERT and API_TLS_KEY are required: every hop is TLS (make run generates a dev cert).")
uvicorn.run(create_app(settings), host=settings.host, port=settings.port, ssl_certfile=str(settings.tls_cert),
            ssl_keyfile=str(settings.tls_key), log_level="warning", server_header=False,
            timeout_graceful_shutdown=2)
