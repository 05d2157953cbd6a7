"""`python -m downstream_api`: serve over HTTPS (DOWNSTREAM_TLS_CERT / DOWNSTREAM_TLS_KEY)."""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from .main import create_app
from .settings import Settings


def main() -> int:
    try:
        settings = Settings()
    except ValidationError as exc:
        # A configuration mistake is the operator's to fix: which setting and why, no traceback.
        for err in exc.errors():
            where = "_".join(map(str, err["loc"])).upper()
            name = f"DOWNSTREAM_{where}: " if where else ""
            print(f"downstream-api: {name}{err['msg']}", file=sys.stderr)
        return 2
    if settings.tls_cert is None or settings.tls_key is None:
        # Tokens travel in this service's requests: never over plain http, not even on a laptop.
        print("downstream-api: DOWNSTREAM_TLS_CERT and DOWNSTREAM_TLS_KEY are required: the api sends "
              "bearer tokens here, over HTTPS only. `make run` generates a local dev CA and certificate.",
              file=sys.stderr)
        return 2
    for path in (settings.tls_cert, settings.tls_key):
        if not path.is_file():
            print(f"downstream-api: {path} does not exist or is not a file", file=sys.stderr)
            return 2
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    print(f"downstream-api: https://{'localhost' if settings.host == '127.0.0.1' else settings.host}:"
          f"{settings.port} (authority {settings.authority})", flush=True)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(settings.tls_cert),
        ssl_keyfile=str(settings.tls_key),
        log_level=settings.log_level,
        server_header=False,
        # Behind no proxy locally; in Azure the platform's ingress is the only way in.
        proxy_headers=False,
        timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
