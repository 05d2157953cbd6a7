"""Runs the real stack runner over a service list given as JSON, like `zt run` does for real.

Run as a script by the runner tests; it is not a test module.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from devtools.layout import emulator_summary
from devtools.supervisor import Service, run_stack

FAKE_INFO = {
    "authority": "https://localhost:8443/contoso-tenant-id/v2.0",
    "demo_users": ["alice@contoso.test", "bob@contoso.test"],
    "demo_password": "not-a-real-password",  # pragma: allowlist secret
}


def main() -> int:
    config = json.loads(Path(sys.argv[1]).read_text())
    services = [
        Service(s["name"], tuple(s["argv"]), dict(os.environ), s["health_url"], s.get("stack_key"))
        for s in config["services"]
    ]
    stack_file = Path(config["stack_file"])
    return run_stack(
        services,
        stack_file=stack_file,
        describe=lambda: FAKE_INFO,
        summary=emulator_summary(stack_file.parent / "emulator"),
        ca_bundle=Path(config["ca_bundle"]),
        ready_timeout=config.get("ready_timeout", 20.0),
        stop_timeout=config.get("stop_timeout", 5.0),
        restart=config.get("restart", False),
    )


if __name__ == "__main__":
    sys.exit(main())
