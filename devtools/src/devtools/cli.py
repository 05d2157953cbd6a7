"""`zt`: the developer command line for the Zero Trust sample."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from devtools.paths import local_dir, repo_root
from devtools.stack import Ports, default_services, emulator_describe, run_stack
from devtools.tls import ensure_dev_tls
from devtools.token import TokenError, device_code_token, load_stack


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "token":
        return _token(args)
    parser.print_help(sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zt", description="Developer tools for the Zero Trust sample.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="start the local stack in the foreground (Ctrl-C stops it)")
    run.add_argument(
        "--port-offset",
        type=int,
        default=0,
        metavar="N",
        help="shift every port by N, to run a second stack beside yours (tests use this)",
    )
    run.add_argument(
        "--ready-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for every service's /healthz (default: %(default)s)",
    )

    token = sub.add_parser("token", help="print an access token for a demo user (device code flow)")
    token.add_argument("--user", required=True, help="demo user's UPN, e.g. alice@contoso.test")
    token.add_argument(
        "--scope",
        action="append",
        default=None,
        help="scope to request; repeatable (default: the API's scopes from stack.json)",
    )
    return parser


def _run(args: argparse.Namespace) -> int:
    local = local_dir()
    # Owner-only when we create it: it holds the dev CA key, tokens' signing keys and the demo password.
    local.mkdir(mode=0o700, parents=True, exist_ok=True)
    tls = ensure_dev_tls(local)
    ports = Ports().shifted(args.port_offset)
    return run_stack(
        default_services(tls, local, repo_root(), ports),
        stack_file=local / "stack.json",
        describe=emulator_describe(local / "emulator", ports),
        ca_bundle=tls.ca_bundle,
        ready_timeout=args.ready_timeout,
    )


def _token(args: argparse.Namespace) -> int:
    try:
        stack = load_stack(local_dir() / "stack.json")
        print(device_code_token(stack, args.user, args.scope))
    except TokenError as exc:
        print(f"zt token: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
