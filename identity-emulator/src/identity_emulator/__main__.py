import asyncio
import logging
import sys

from pydantic import ValidationError
from zerotrust.redact import install_log_redaction

from .main import serve
from .settings import EmulatorSettings

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
# Tokens redacted, control characters escaped: one record, one line, whatever a request carried.
install_log_redaction()
try:
    settings = EmulatorSettings()
except ValidationError as exc:
    # A configuration mistake is the operator's to fix: say which setting and why, no traceback.
    for err in exc.errors():
        print(f"identity-emulator: EMULATOR_{'_'.join(map(str, err['loc'])).upper()}: {err['msg']}", file=sys.stderr)
    sys.exit(2)
asyncio.run(serve(settings))
