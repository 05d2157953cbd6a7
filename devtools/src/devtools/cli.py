"""`zt`: the developer command line for the Zero Trust sample."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from devtools.layout import Ports, database_url, default_services, emulator_describe, emulator_summary, tenant_ids
from devtools.paths import local_dir, repo_root
from devtools.postgres import PostgresMissing
from devtools.supervisor import run_stack
from devtools.tls import ensure_dev_tls
from devtools.token import TokenError, device_code_token, load_stack


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "token":
        return _token(args)
    if args.command == "scorecard":
        return _scorecard(args)
    if args.command == "certificate":
        return _certificate(args)
    if args.command == "daemon":
        return _daemon(args)
    if args.command == "provision":
        return _provision(args)
    if args.command == "permissions-report":
        return _permissions_report(args)
    if args.command == "bench":
        return _bench(args)
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
        "--tenants",
        default="",
        metavar="A,B",
        help="demo tenants whose users may use the app (default: the home tenant only); more than one "
        "switches the registrations to multi-tenant and sets every tier's allowlist",
    )
    run.add_argument(
        "--ready-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long to wait for every service's /healthz (default: 30, or 90 with --db postgres, "
        "whose first start creates the cluster and runs the migration)",
    )

    run.add_argument(
        "--db",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="downstream-api's database: a SQLite file (default) or a private PostgreSQL 15 cluster that "
        "admits only managed-identity tokens (see docs/postgres.md)",
    )

    token = sub.add_parser("token", help="print an access token for a demo user (device code flow)")
    token.add_argument("--user", required=True, help="demo user's UPN, e.g. alice@contoso.test")
    token.add_argument(
        "--scope",
        action="append",
        default=None,
        help="scope to request; repeatable (default: the API's scopes from stack.json)",
    )

    cert = sub.add_parser(
        "certificate",
        help="register a certificate credential for an app (the fallback where no managed identity exists)",
    )
    cert.add_argument("--app", required=True, choices=["web", "api", "daemon"])

    card = sub.add_parser(
        "scorecard",
        help="fire every attack of the catalogue at the api and downstream-api; print PASS/FAIL (exit 1 on a FAIL)",
        description="Fire every attack of the catalogue at the api (GET /tasks) and downstream-api (GET /records) "
        "and print a PASS/FAIL table. Without --api/--downstream it targets the local stack (.local/stack.json) "
        "with a token for --user. For a deployment give the URLs, --authority and a user's token for the api "
        "(--token-file or ZT_TOKEN keep it out of the process list); the token is never printed.",
    )
    card.add_argument("--api", metavar="URL", help="the api's base URL (attacked at GET /tasks)")
    card.add_argument("--downstream", metavar="URL", help="downstream-api's base URL (attacked at GET /records)")
    card.add_argument("--authority", metavar="URL", help="the identity provider's authority (its key set is read)")
    card.add_argument(
        "--ca-bundle", metavar="PATH", help="CA certificates to trust (default: SSL_CERT_FILE or certifi)"
    )
    card.add_argument("--token", metavar="TOKEN", help="a user's access token for the api (default: ZT_TOKEN)")
    card.add_argument("--token-file", metavar="PATH", help="read the token from PATH ('-' for stdin)")
    card.add_argument(
        "--user",
        help="local stack only: the demo user whose token is used (default: alice@contoso.test)",
    )

    sub.add_parser(
        "daemon",
        help="run the daemon once: the tenant report from the api, app-only (client credentials)",
        description="The daemon app gets an app-only token for the api (client credentials, its managed identity "
        "as federated credential, app role Tasks.Report.All) and prints GET /reports/tenant of the local stack.",
    )

    prov = sub.add_parser(
        "provision",
        help="play the provisioning service: SCIM 2.0 calls to the api for a demo user",
        description="The provisioner app (app role Users.Provision, its managed identity as federated credential) "
        "calls the api's SCIM 2.0 Users endpoint for a demo user of the local stack. A deactivated user's "
        "requests are refused until they are activated again; deleting a user deletes their tasks.",
    )
    prov.add_argument("action", choices=["create", "show", "deactivate", "activate", "delete"])
    prov.add_argument("user", help="a demo user, e.g. alice@contoso.test")

    perms = sub.add_parser(
        "permissions-report",
        help="granted vs used permissions per client; flags the unused (--strict: exit 1 if any)",
        description="Compares what each client is granted (infra/registrations.yaml, and admin consents of the demo "
        "directory) with what the APIs' audit logs show it used (.local/audit/*.jsonl), and flags what is unused.",
    )
    perms.add_argument("--manifest", type=Path, help="registrations (default: infra/registrations.yaml)")
    perms.add_argument("--directory", type=Path, help="admin consents (default: identity-emulator/demo/directory.yaml)")
    perms.add_argument(
        "--audit", type=Path, action="append", help="an audit log file or folder (default: .local/audit; repeatable)"
    )
    perms.add_argument("--strict", action="store_true", help="exit 1 when a granted permission is unused")

    bench = sub.add_parser(
        "bench",
        help="what one hop costs the calling tier, per HTTP client, as ratios measured in one run",
        description="Sends the same HTTPS requests on loopback through aiohttp (what the tiers use for their hops) "
        "and httpx, and prints each client's CPU time per request, requests per second, and their ratios.",
    )
    bench.add_argument("--requests", type=_positive, default=3000, help="requests per client (default 3000)")
    bench.add_argument("--concurrency", type=_positive, default=32, help="requests in flight (default 32)")
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _bench(args: argparse.Namespace) -> int:
    from devtools.bench import run

    run(args.requests, args.concurrency)
    return 0


def _daemon(args: argparse.Namespace) -> int:
    from devtools.workloads import tenant_report

    try:
        report = tenant_report(load_stack(local_dir() / "stack.json"), local_dir())
    except TokenError as exc:
        print(f"zt daemon: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2))
    return 0


def _provision(args: argparse.Namespace) -> int:
    from devtools.workloads import provision

    try:
        status, body = provision(load_stack(local_dir() / "stack.json"), local_dir(), args.action, args.user)
    except TokenError as exc:
        print(f"zt provision: {exc}", file=sys.stderr)
        return 1
    print(f"HTTP {status}", file=sys.stderr)
    if body is not None:
        print(json.dumps(body, indent=2))
    elif args.action == "show":
        # Not an error: provisioning only adds the power to cut someone off; the directory decides.
        print(f"{args.user} is not provisioned in this app (nothing refuses them; `create` provisions them)")
    return 0 if status < 400 else 1


def _permissions_report(args: argparse.Namespace) -> int:
    from devtools.permissions import load, render, report

    root = repo_root()
    manifest_path = args.manifest or root / "infra" / "registrations.yaml"
    directory = args.directory or root / "identity-emulator" / "demo" / "directory.yaml"
    logs = args.audit or [local_dir() / "audit"]
    missing = [str(p) for p in logs if not p.exists()]
    if missing:
        print(
            f"zt permissions-report: no audit log at {', '.join(missing)}; run the stack (`make run`) and use it first",
            file=sys.stderr,
        )
        return 2
    try:
        manifest, demo = load(manifest_path, directory)
    except (OSError, ValueError) as exc:
        print(f"zt permissions-report: {exc}", file=sys.stderr)
        return 2
    unused = render(report(manifest, demo, logs), sys.stdout)
    return 1 if unused and args.strict else 0


def _run(args: argparse.Namespace) -> int:
    local = local_dir()
    # Owner-only when we create it: it holds the dev CA key, tokens' signing keys and the demo password.
    local.mkdir(mode=0o700, parents=True, exist_ok=True)
    tls = ensure_dev_tls(local)
    ports = Ports().shifted(args.port_offset)
    try:
        tenants = tenant_ids([t for t in args.tenants.split(",") if t.strip()])
    except ValueError as exc:
        print(f"zt: {exc}", file=sys.stderr)
        return 2
    try:
        services = default_services(tls, local, repo_root(), ports, tenants=tenants, db=args.db)
    except PostgresMissing as exc:
        print(f"zt run: {exc}", file=sys.stderr)
        return 1
    database = database_url(ports) if args.db == "postgres" else None
    return run_stack(
        services,
        stack_file=local / "stack.json",
        describe=emulator_describe(local / "emulator", ports, database),
        summary=emulator_summary(local / "emulator"),
        ca_bundle=tls.ca_bundle,
        ready_timeout=args.ready_timeout or (90.0 if args.db == "postgres" else 60.0),
    )


def _certificate(args: argparse.Namespace) -> int:
    from devtools.credentials import create_certificate_credential

    local = local_dir()
    local.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = create_certificate_credential(local, args.app)
    prefix = {"web": "WEB", "api": "API"}.get(args.app)
    print(f"registered; private key and certificate in {pem} (owner-only, never commit it)")
    if prefix:
        print(f"use it instead of the managed identity: {prefix}_CLIENT_CERTIFICATE_FILE={pem}")
    return 0


def _token(args: argparse.Namespace) -> int:
    try:
        stack = load_stack(local_dir() / "stack.json")
        print(device_code_token(stack, args.user, args.scope))
    except TokenError as exc:
        print(f"zt token: {exc}", file=sys.stderr)
        return 1
    return 0


def _scorecard(args: argparse.Namespace) -> int:
    # Imported here: it needs the zerotrust package, which nothing else in devtools does.
    from devtools.scorecard import DEFAULT_USER, Plan, ScorecardError, execute, targets, token_from

    try:
        token = token_from(args.token, args.token_file, os.environ)
        if args.api or args.downstream:
            if not args.authority:
                raise ScorecardError("with --api/--downstream, give the identity provider's --authority URL too")
            if not token:
                raise ScorecardError(
                    "with --api/--downstream, give a user's token for the api: --token-file or ZT_TOKEN"
                )
            plan = Plan(targets(args.api, args.downstream), args.authority, args.ca_bundle, token)
        else:
            try:
                stack = load_stack(local_dir() / "stack.json")
            except TokenError as exc:
                raise ScorecardError(str(exc)) from None
            plan = Plan(
                targets(stack["api"], stack["downstream_api"]),
                args.authority or stack["authority"],
                args.ca_bundle or stack["ca_bundle"],
                token,
                user=args.user or DEFAULT_USER,
                stack=stack,
                # Local services only: a developer's HTTP(S)_PROXY must not see these requests.
                trust_env=False,
            )
        return execute(plan)
    except ScorecardError as exc:
        print(f"zt scorecard: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
