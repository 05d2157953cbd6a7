"""`python -m web`: the web app on http://localhost:8000 (browsers treat http://localhost as a secure
context, so the Secure session cookie works without a certificate)."""

import logging
import sys

import uvicorn
from pydantic import ValidationError

from .main import create_app
from .settings import Settings

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
# azure-identity logs every managed-identity request at INFO; only its warnings are worth a line.
logging.getLogger("azure").setLevel(logging.WARNING)
try:
    settings = Settings()
except ValidationError as exc:
    # A configuration mistake is the operator's to fix: say which setting and why, no traceback.
    for err in exc.errors():
        where = "_".join(map(str, err["loc"])).upper()
        print(f"web: {'WEB_' + where if where else 'settings'}: {err['msg']}", file=sys.stderr)
    sys.exit(2)
print(
    f"web: http://localhost:{settings.port}/ (identity provider {settings.authority}, "
    f"api {settings.api_url})",
    flush=True,
)
uvicorn.run(
    create_app(settings),
    host=settings.host,
    port=settings.port,
    log_level="warning",
    server_header=False,
    proxy_headers=False,
    timeout_graceful_shutdown=2,
)
