# Thin entry points: each target runs one command; the logic lives in devtools (`zt`) and the tests.
UV ?= python3 -m uv
# Python comes from the machine, never from a download (the same machine CI uses).
export UV_PYTHON_DOWNLOADS := never
# The lock file is the contract: never re-resolve silently; change dependencies with `uv lock`.
export UV_FROZEN := 1

# Demo user for `make token`, e.g. `make token USER=bob@contoso.test`.
USER ?= alice@contoso.test
# USER is normally the login name, inherited from the environment, so only a USER given on the
# command line counts; zt token says clearly when it is not a demo user.
USER_UPN := $(if $(filter command line,$(origin USER)),$(USER),alice@contoso.test)

MEMBER_SRC := $(wildcard */src)

.DEFAULT_GOAL := help
.PHONY: help run test token reset scorecard report provision permissions-report bench bench-instructions lint quotes gates audit sbom \
	test-pythons hooks diagrams screenshots .venv-ready

help:
	@echo "make run [TENANTS=contoso,fabrikam] [DB=postgres] [WEB_REPLICAS=2] | test | token [USER=bob@contoso.test] | reset | scorecard | report | provision ACTION=... USER=... | permissions-report | bench | bench-instructions [WITHOUT=audit,span,...] | lint | quotes"
	@echo "make gates [GATES='bandit checkov zizmor workflows secrets yamllint'] | audit | sbom | test-pythons [PYTHONS=...] | hooks"
	@echo "make diagrams | screenshots [RUNNING=1]"

# Phony on purpose: `uv sync` is a no-op when nothing changed, and it repairs a venv someone edited.
# devtools/install.sh is the one installer (.ci/run uses it through `make test`); SYSTEM names the Debian
# packages a target needs, installed when missing (as root on Debian) or the command to run is printed.
SYSTEM ?=
.venv-ready:
	@devtools/install.sh $(SYSTEM)

# PORT_OFFSET shifts every port, to run a second stack beside yours (tests use it).
PORT_OFFSET ?= 0
# TENANTS=contoso,fabrikam: multi-tenant mode (every tier's allowlist); empty: the home tenant only.
TENANTS ?=
# downstream-api's database: sqlite (default) or postgres (a private cluster admitting only tokens).
DB ?= sqlite
# WEB_REPLICAS=2: that many web processes behind one local port, sharing sessions in a private Redis.
WEB_REPLICAS ?= 1

run: SYSTEM = $(if $(filter postgres,$(DB)),postgresql-15) $(if $(filter-out 1,$(WEB_REPLICAS)),redis-server)
run: .venv-ready
	$(UV) run zt run --port-offset $(PORT_OFFSET) --db $(DB) $(if $(TENANTS),--tenants $(TENANTS)) \
		--web-replicas $(WEB_REPLICAS)

# Browser tests drive Debian's Chromium; the data tests run a private PostgreSQL 15 cluster; the session
# store tests and the scaled-out web tier a private Redis.
test: SYSTEM = chromium postgresql-15 redis-server valgrind
test: .venv-ready
	$(UV) run pytest

token: .venv-ready
	$(UV) run zt token --user $(USER_UPN)

# The demo state back to its start (tasks, consents, disabled users, sessions), keys and certificates kept;
# the stack may be running (reset live) or stopped. PORT_OFFSET as given to `make run`.
reset: .venv-ready
	$(UV) run zt reset --port-offset $(PORT_OFFSET)

# Every attack of the catalogue against the running stack's api and downstream-api (see `zt scorecard -h`
# to point it at a deployment); prints a PASS/FAIL table and fails if any attack got through.
scorecard: .venv-ready
	$(UV) run zt scorecard

# The daemon (client credentials, its managed identity, no secret) prints the api's tenant report.
report: .venv-ready
	$(UV) run zt daemon

# The provisioning service's SCIM calls, e.g. `make provision ACTION=deactivate USER=alice@contoso.test`.
ACTION ?= show
provision: .venv-ready
	$(UV) run zt provision $(ACTION) $(USER_UPN)

# Granted vs used permissions per client (audit logs of the running stack); unused ones flagged.
permissions-report: .venv-ready
	$(UV) run zt permissions-report

# What Zero Trust costs the chain against a floor with no auth, in one run (docs/performance.md); under 5 minutes.
# `zt bench-clients`: what one hop costs per HTTP client (aiohttp vs httpx).
bench: SYSTEM = wrk postgresql-15
bench: .venv-ready
	$(UV) run zt bench

# downstream-api's request against the floor's in instructions (valgrind), which this machine's speed does not
# move; WITHOUT=audit,span,headers,hosts,deactivation switches real layers off to see what each costs. ~4 minutes.
WITHOUT ?=
bench-instructions: SYSTEM = valgrind
bench-instructions: .venv-ready
	$(UV) run python -m devtools.perf.instructions --count $(if $(WITHOUT),--without $(WITHOUT))

# The README's pictures (docs/images/), taken in Chromium from a fresh stack of their own on shifted ports;
# RUNNING=1 photographs the stack `make run` started instead.
RUNNING ?=
screenshots: SYSTEM = chromium
screenshots: .venv-ready
	$(UV) run python -m devtools.screenshots $(if $(RUNNING),--running)

lint: .venv-ready
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy $(MEMBER_SRC)

# The code the docs quote, rewritten from its source regions (`# region quote: <name>`; tests/test_quotes.py
# fails while a quoted block differs from its region).
quotes: .venv-ready
	$(UV) run python -m devtools.quotes

# The security gates CI runs, offline, from devtools/gates' own lock: bandit, checkov, zizmor, the workflow
# rules, the secret scan and yamllint; each fails on a finding its reviewed exception list does not excuse (devtools/gate_runs.py).
GATES ?=
gates: .venv-ready
	$(UV) run python -m devtools.gate_runs offline $(GATES)

# Known vulnerabilities in both locks (pip-audit asks PyPI's advisory database: the one gate that needs the
# network, so it is not part of `make test`).
audit: .venv-ready
	$(UV) run python -m devtools.gate_runs audit

# CycloneDX SBOM of the locked runtime packages, in test-artifacts/sbom/ (CI keeps it as an artifact).
sbom: .venv-ready
	$(UV) run python -m devtools.gate_runs sbom

# The lock installs and the in-process tests pass on each supported Python (3.11-3.13): the interpreters
# given, or every one this machine has. Each gets its own environment under .local/pythons/.
# PYTHON_VERSIONS="3.12 3.13" narrows the search (.ci/run: make test covers 3.11).
PYTHONS ?=
test-pythons:
	devtools/test-pythons.sh $(PYTHONS)

# The git hooks of .pre-commit-config.yaml (ruff, the secret scan, the manifest and workflow rules, yamllint,
# bandit) in this clone's .git/hooks: each a local hook running the locked tools, nothing fetched.
hooks: .venv-ready
	devtools/gates/.venv/bin/pre-commit install

# The sequence diagrams of docs/diagrams: each <flow>.svg drawn from its Mermaid source <flow>.mmd (devtools/diagrams.py).
# A test fails when a committed SVG differs from what its source draws.
diagrams: .venv-ready
	$(UV) run python -m devtools.diagrams
