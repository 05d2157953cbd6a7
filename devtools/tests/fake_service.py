"""A stand-in service for runner tests: serves GET /healthz, optionally over TLS.

Run as a script by the stack runner under test; it is not a test module.
"""

from __future__ import annotations

import argparse
import os
import signal
import ssl
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid-file", type=Path)
    parser.add_argument("--grandchild-pid-file", type=Path, help="spawn a long-lived grandchild")
    parser.add_argument("--tls-cert", type=Path)
    parser.add_argument("--tls-key", type=Path)
    parser.add_argument("--exit-early", type=int, metavar="CODE", help="print a complaint and exit")
    parser.add_argument("--unhealthy", action="store_true", help="answer 503 on /healthz forever")
    parser.add_argument("--ignore-sigterm", action="store_true")
    args = parser.parse_args()

    if args.pid_file:
        args.pid_file.write_text(str(os.getpid()))
    if args.exit_early is not None:
        print("boom: pretend the manifest is missing", flush=True)
        sys.exit(args.exit_early)
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if args.grandchild_pid_file:
        # Same process group as this service, as a worker process of a real server would be.
        grandchild = subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(60)"])
        args.grandchild_pid_file.write_text(str(grandchild.pid))

    status = 503 if args.unhealthy else 200

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = status if self.path == "/healthz" else 404
            body = b'{"status":"ok"}' if code == 200 else b"{}"
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"fake service listening on {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
