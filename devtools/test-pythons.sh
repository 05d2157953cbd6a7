#!/usr/bin/env bash
# The project installs from uv.lock and its in-process tests pass on each supported Python (3.11-3.13).
#   devtools/test-pythons.sh [PYTHON...]     (`make test-pythons`; the CI matrix passes one interpreter)
# With no argument: each version of PYTHON_VERSIONS (default: 3.11 3.12 3.13) this machine has (on PATH or
# under pyenv); one that is absent is reported, and fails the run when REQUIRE_ALL_PYTHONS=1.
# Each gets its own environment under .local/pythons/ (the developer's .venv is left alone), installed
# --frozen from the same lock, then `pytest -m "not live"`: the tests that start no process.
set -euo pipefail
cd "$(dirname "$0")/.."

export UV_PYTHON_DOWNLOADS=never
SUPPORTED=(3.11 3.12 3.13)
read -r -a WANTED <<<"${PYTHON_VERSIONS:-${SUPPORTED[*]}}"
# The in-process tests of every package and of tests/ (no emulator, stack, database or browser).
TESTS=(tests identity-emulator/tests devtools/tests zerotrust/tests web/tests api/tests downstream-api/tests)

works() { "$1" -c 'import sys' >/dev/null 2>&1; }

pythons=("$@")
if [ ${#pythons[@]} -eq 0 ]; then
    missing=()
    for version in "${WANTED[@]}"; do
        found=""
        # pyenv's shims exist for versions that are not selected, so each candidate is run, not just found.
        for candidate in "python${version}" $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/${version}".*/bin/python 2>/dev/null | sort -V -r); do
            if works "$candidate"; then found="$(command -v "$candidate")"; break; fi
        done
        if [ -n "$found" ]; then pythons+=("$found"); else missing+=("$version"); fi
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "test-pythons: no interpreter here for Python ${missing[*]}" >&2
        [ "${REQUIRE_ALL_PYTHONS:-0}" = 1 ] && exit 1
    fi
fi

# uv only (the version the installer pins): the installer would also sync .venv for .python-version's
# Python, which a machine with only 3.12 or 3.13 does not have.
python3 -m uv --version >/dev/null 2>&1 ||
    python3 -m pip install --quiet "uv==$(sed -n 's/^UV_VERSION=//p' devtools/install.sh)"
status=0
for python in "${pythons[@]}"; do
    version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    if [[ ! " ${SUPPORTED[*]} " == *" ${version} "* ]]; then
        echo "test-pythons: $python is Python $version, not one of ${SUPPORTED[*]}" >&2
        exit 2
    fi
    env_dir=".local/pythons/${version}"
    echo "== Python ${version} (${python}) -> ${env_dir}"
    start=$SECONDS
    # --frozen: the very lock the 3.11 environment uses; a package without a wheel or marker for this
    # version fails here, which is the point.
    if ! UV_PROJECT_ENVIRONMENT="$env_dir" python3 -m uv sync --quiet --frozen --all-packages --python "$python"; then
        echo "test-pythons: Python ${version} cannot install the locked packages" >&2
        status=1
        continue
    fi
    if ! UV_PROJECT_ENVIRONMENT="$env_dir" python3 -m uv run --frozen --no-sync --python "$python" \
        pytest -q -p no:cacheprovider -m "not live" "${TESTS[@]}" >"${env_dir}.log" 2>&1; then
        tail -n 40 "${env_dir}.log" >&2
        echo "test-pythons: the in-process tests fail on Python ${version} (log: ${env_dir}.log)" >&2
        status=1
        continue
    fi
    echo "   $(tail -n 1 "${env_dir}.log") (install + tests: $((SECONDS - start)) s)"
done
exit $status
