"""`zt`: the developer command line; each command imports what it needs when it runs, so `zt --help` stays light."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from devtools.paths import local_dir, repo_root
from devtools.reset import command as reset_command  # beside what it resets

PATH = click.Path(path_type=Path)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return int(zt.main(argv, prog_name="zt", standalone_mode=False))
    except click.ClickException as exc:
        # Bad input: the usage and what is wrong, exit 2 (usage), never a traceback.
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except click.Abort as exc:
        # Ctrl-C (`zt run` handles its own signals): the interrupt ends the command, as it always did.
        raise (exc.__cause__ or exc) from None


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def zt(ctx: click.Context) -> int:
    """Developer tools for the Zero Trust sample."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help(), err=True)
        return 2
    return 0


def _command(summary: str, description: str | None = None) -> Callable[[Callable[..., int]], click.Command]:
    # The summary in `zt --help`, the description (else the summary) in `zt COMMAND --help`.
    return zt.command(short_help=summary, help=description or summary)


def _positive(_ctx: click.Context, _param: click.Parameter, value: int) -> int:
    if value < 1:
        raise click.BadParameter("must be at least 1")
    return value


@_command("start the local stack in the foreground (Ctrl-C stops it)")
@click.option(
    "--port-offset",
    type=int,
    default=0,
    metavar="N",
    help="shift every port by N, to run a second stack beside yours (tests use this)",
)
@click.option(
    "--tenants",
    default="",
    metavar="A,B",
    help="demo tenants whose users may use the app (default: the home tenant only); more than one "
    "switches the registrations to multi-tenant and sets every tier's allowlist",
)
@click.option(
    "--ready-timeout",
    type=float,
    default=None,
    metavar="SECONDS",
    help="how long to wait for every service's /healthz (default: 60, or 90 with --db postgres, "
    "whose first start creates the cluster and runs the migration)",
)
@click.option(
    "--db",
    type=click.Choice(["sqlite", "postgres"]),
    default="sqlite",
    help="downstream-api's database: a SQLite file (default) or a private PostgreSQL 15 cluster that "
    "admits only managed-identity tokens (see docs/postgres.md)",
)
@click.option(
    "--web-replicas",
    type=click.IntRange(1, 8),
    default=1,
    metavar="N",
    help="web processes (default 1); more than one share sessions in a private Redis, behind a small "
    "dev proxy on the usual web port that sends each request to the next one",
)
@click.option("--restart", is_flag=True, help="start a service that dies again, as Container Apps would")
def run(port_offset: int, tenants: str, ready_timeout: float | None, db: str, web_replicas: int, restart: bool) -> int:
    from devtools import webfarm
    from devtools.layout import Ports, database_url, default_services, emulator_describe, emulator_summary, tenant_ids
    from devtools.postgres import PostgresMissing
    from devtools.redis_server import RedisMissing
    from devtools.supervisor import run_stack
    from devtools.tls import ensure_dev_tls

    local = local_dir()
    # Owner-only when we create it: it holds the dev CA key, tokens' signing keys and the demo password.
    local.mkdir(mode=0o700, parents=True, exist_ok=True)
    tls = ensure_dev_tls(local)
    ports = Ports().shifted(port_offset)
    try:
        tenant_list = tenant_ids([t for t in tenants.split(",") if t.strip()])
        services = default_services(tls, local, repo_root(), ports, tenants=tenant_list, db=db)
        if web_replicas > 1:
            services = webfarm.scale_web(services, local, ports, web_replicas, tls)
    except ValueError as exc:
        print(f"zt: {exc}", file=sys.stderr)
        return 2
    except (PostgresMissing, RedisMissing) as exc:
        print(f"zt run: {exc}", file=sys.stderr)
        return 1
    summary = emulator_summary(local / "emulator")
    if web_replicas > 1:
        summary = webfarm.summary(ports.web, web_replicas, summary)
    return run_stack(
        services,
        stack_file=local / "stack.json",
        describe=emulator_describe(local / "emulator", ports, database_url(ports, tls) if db == "postgres" else None),
        summary=summary,
        ca_bundle=tls.ca_bundle,
        ready_timeout=ready_timeout or (90.0 if db == "postgres" else 60.0),
        restart=restart,
    )


@_command("print an access token for a demo user (device code flow)")
@click.option("--user", required=True, help="demo user's UPN, e.g. alice@contoso.test")
@click.option("--scope", multiple=True, help="scope to request; repeatable (default: the API's scopes from stack.json)")
def token(user: str, scope: tuple[str, ...]) -> int:
    from devtools.token import TokenError, device_code_token, load_stack

    try:
        print(device_code_token(load_stack(local_dir() / "stack.json"), user, list(scope) or None))
    except TokenError as exc:
        print(f"zt token: {exc}", file=sys.stderr)
        return 1
    return 0


@_command("register a certificate credential for an app (the fallback where no managed identity exists)")
@click.option("--app", required=True, type=click.Choice(["web", "api", "daemon"]))
def certificate(app: str) -> int:
    from devtools.credentials import create_certificate_credential

    local = local_dir()
    local.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = create_certificate_credential(local, app)
    prefix = {"web": "WEB", "api": "API"}.get(app)
    print(f"registered; private key and certificate in {pem} (owner-only, never commit it)")
    if prefix:
        print(f"use it instead of the managed identity: {prefix}_CLIENT_CERTIFICATE_FILE={pem}")
    return 0


@_command(
    "fire every attack of the catalogue at the api and downstream-api; print PASS/FAIL (exit 1 on a FAIL)",
    "Fire every attack of the catalogue at the api (GET /tasks) and downstream-api (GET /records) "
    "and print a PASS/FAIL table. Without --api/--downstream it targets the local stack (.local/stack.json) "
    "with a token for --user. For a deployment give the URLs, --authority and a user's token for the api "
    "(--token-file or ZT_TOKEN keep it out of the process list); the token is never printed.",
)
@click.option("--api", metavar="URL", help="the api's base URL (attacked at GET /tasks)")
@click.option("--downstream", metavar="URL", help="downstream-api's base URL (attacked at GET /records)")
@click.option("--authority", metavar="URL", help="the identity provider's authority (its key set is read)")
@click.option("--ca-bundle", metavar="PATH", help="CA certificates to trust (default: SSL_CERT_FILE or certifi)")
@click.option("--token", metavar="TOKEN", help="a user's access token for the api (default: ZT_TOKEN)")
@click.option("--token-file", metavar="PATH", help="read the token from PATH ('-' for stdin)")
@click.option("--user", help="local stack only: the demo user whose token is used (default: alice@contoso.test)")
def scorecard(
    api: str | None,
    downstream: str | None,
    authority: str | None,
    ca_bundle: str | None,
    token: str | None,
    token_file: str | None,
    user: str | None,
) -> int:
    from devtools.scorecard import ScorecardError, execute, plan_for, token_from

    try:
        access_token = token_from(token, token_file, os.environ)
        stack_file = local_dir() / "stack.json"
        return execute(plan_for(api, downstream, authority, ca_bundle, access_token, user, stack_file))
    except ScorecardError as exc:
        print(f"zt scorecard: {exc}", file=sys.stderr)
        return 2


@_command(
    "run the daemon once: the tenant report from the api, app-only (client credentials)",
    "The daemon app gets an app-only token for the api (client credentials, its managed identity "
    "as federated credential, app role Tasks.Report.All) and prints GET /reports/tenant of the local stack.",
)
def daemon() -> int:
    from devtools.token import TokenError
    from devtools.workloads import daemon_report

    try:
        report = daemon_report(dict(os.environ), local_dir())
    except TokenError as exc:
        print(f"zt daemon: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2))
    return 0


@_command(
    "play the provisioning service: SCIM 2.0 calls to the api for a demo user",
    "The provisioner app (app role Users.Provision, its managed identity as federated credential) "
    "calls the api's SCIM 2.0 Users endpoint for a demo user of the local stack (USER, e.g. "
    "alice@contoso.test; ACTION: create, show, deactivate, activate or delete). A deactivated user's "
    "requests are refused until they are activated again; deleting a user deletes their tasks.",
)
@click.argument("action", metavar="ACTION", type=click.Choice(["create", "show", "deactivate", "activate", "delete"]))
@click.argument("user")
def provision(action: str, user: str) -> int:
    from devtools.token import TokenError, load_stack
    from devtools.workloads import provision as scim

    try:
        status, body = scim(load_stack(local_dir() / "stack.json"), local_dir(), action, user)
    except TokenError as exc:
        print(f"zt provision: {exc}", file=sys.stderr)
        return 1
    print(f"HTTP {status}", file=sys.stderr)
    if body is not None:
        print(json.dumps(body, indent=2))
    elif action == "show":
        # Not an error: provisioning only adds the power to cut someone off; the directory decides.
        print(f"{user} is not provisioned in this app (nothing refuses them; `create` provisions them)")
    return 0 if status < 400 else 1


@_command(
    "granted vs used permissions per client; flags the unused and the reducible (--strict: exit 1 if any)",
    "Compares what each client is granted (infra/registrations.yaml, and admin consents of the demo "
    "directory) with what the audit logs (the tiers' and Graph's, .local/audit/*.jsonl) show it used, and flags "
    "what is unused or broader than its calls needed.",
)
@click.option("--manifest", type=PATH, help="registrations (default: infra/registrations.yaml)")
@click.option("--directory", type=PATH, help="admin consents (default: identity-emulator/demo/directory.yaml)")
@click.option(
    "--audit", type=PATH, multiple=True, help="an audit log file or folder (default: .local/audit; repeatable)"
)
@click.option("--strict", is_flag=True, help="exit 1 when a granted permission is unused or reducible")
def permissions_report(manifest: Path | None, directory: Path | None, audit: tuple[Path, ...], strict: bool) -> int:
    from devtools.permissions import command

    root = repo_root()
    return command(
        manifest or root / "infra" / "registrations.yaml",
        directory or root / "identity-emulator" / "demo" / "directory.yaml",
        list(audit) or [local_dir() / "audit"],
        strict,
    )


@_command(
    "check app registrations against the registration rules; print each problem (exit 1 on any)",
    "Checks a registration manifest (default: infra/registrations.yaml) against the rules of guidance articles 7 "
    "and 23 (devtools/src/devtools/registration_rules.py): what the pre-commit hook and `make` run.",
)
@click.argument("path", type=PATH, required=False)
def check_registrations(path: Path | None) -> int:
    from devtools.registration_rules import main as check

    return check([str(path)] if path else [])


@_command("what one hop costs the calling tier, per HTTP client (aiohttp, httpx), as ratios measured in one run")
@click.option("--requests", type=int, callback=_positive, default=3000, help="requests per client (default 3000)")
@click.option("--concurrency", type=int, callback=_positive, default=32, help="requests in flight (default 32)")
def bench_clients(requests: int, concurrency: int) -> int:
    from devtools.bench import run

    run(requests, concurrency)
    return 0


@_command(
    "what Zero Trust costs the chain: throughput and latency against a floor with no auth, in one run",
    "Drives the stack as `make run` starts it, a floor (the same hops, no auth) and a naive build with wrk in "
    "interleaved rounds; prints throughput, p50, p99, ratios, identity-provider calls per 1,000 requests and "
    "the cost of one validation; writes JSON and a PNG chart (docs/performance.md).",
)
@click.option("--smoke", is_flag=True, help="tiny counts: checks the bench works, measures nothing worth keeping")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="the JSON (default docs/performance/)")
def bench(smoke: bool, out: Path | None) -> int:
    from devtools.perf.run import main as run_bench

    default = repo_root() / ("test-artifacts/bench-smoke.json" if smoke else "docs/performance/bench.json")
    return run_bench(smoke, out or default)


zt.add_command(reset_command)
if __name__ == "__main__":
    sys.exit(main())
