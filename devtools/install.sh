#!/usr/bin/env bash
# The one installer `make run`, `make test` and .ci/run share: what is missing, and nothing else.
#   devtools/install.sh [chromium] [postgresql-15] [redis-server] [wrk] [valgrind]
# Python packages come from uv.lock (hashes) over this machine's Python; system packages from Debian's
# archive when running as root on Debian, otherwise the one command to run is printed.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
export UV_PYTHON_DOWNLOADS=never
export DEBIAN_FRONTEND=noninteractive

present() {
    case "$1" in
        chromium) command -v chromium >/dev/null 2>&1 ;;
        postgresql-15) [ -x /usr/lib/postgresql/15/bin/postgres ] ;;
        redis-server) command -v redis-server >/dev/null 2>&1 ;;
        make) command -v make >/dev/null 2>&1 ;;
        wrk) command -v wrk >/dev/null 2>&1 ;;
        valgrind) command -v valgrind >/dev/null 2>&1 ;;
        *) echo "install.sh: unknown package $1" >&2; exit 2 ;;
    esac
}

missing=()
for package in "$@"; do
    present "$package" || missing+=("$package")
done

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then
        echo "Installing from Debian: ${missing[*]}"
        if [[ " ${missing[*]} " == *" postgresql-15 "* ]]; then
            # Only the programs are wanted: the stack runs its own private, token-checking cluster.
            mkdir -p /etc/postgresql-common
            echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
        fi
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        # Debian starts a system Redis on install; the stack runs its own on loopback.
        if [[ " ${missing[*]} " == *" redis-server "* ]] && command -v systemctl >/dev/null 2>&1; then
            systemctl disable --now redis-server >/dev/null 2>&1 || true
        fi
    else
        echo "Missing system packages: ${missing[*]}. Install them with:" >&2
        echo "    sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi

if ! python3 -m uv --version >/dev/null 2>&1; then
    python3 -m pip install --quiet "uv==${UV_VERSION}"
fi
# --frozen: the lock file is the contract, never re-resolved silently.
python3 -m uv sync --quiet --frozen --all-packages
# The security gates' tools (checkov, zizmor, bandit, ...) from their own lock into devtools/gates/.venv,
# wherever UV_PROJECT_ENVIRONMENT points the application's environment (devtools.gates finds them there).
env -u UV_PROJECT_ENVIRONMENT python3 -m uv sync --quiet --frozen --project devtools/gates
