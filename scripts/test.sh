#!/usr/bin/env bash
# The whole test suite, as README.md gives it and as .ci/run runs it.
# Works on a fresh Debian machine as root: installs what the tests need (redis-server,
# which also runs the sentinels as `redis-server --sentinel`; redis-tools for the
# `redis-cli --cluster create` of the cluster tests; a virtualenv with tox), then runs
# every tox env: tests, lint, type, docs.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing: ${need_apt[*]} (run as root, or install them with apt-get)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Bounded: a stuck mirror fails the run in minutes, not at CI's 90-minute limit.
    timeout 600 apt-get update -qq
    timeout 900 apt-get install -y -qq "${need_apt[@]}" >/dev/null
    # The Debian package starts a system redis on :6379; the tests start their own.
    (command -v systemctl >/dev/null && systemctl disable --now redis-server) >/dev/null 2>&1 || true
fi

venv=.tox-runner
if [ ! -x "$venv/bin/tox" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q "tox>=4.11"
fi
exec "$venv/bin/tox" run -e "${TOX_ENVS:-tests,lint,type,docs}" "$@"
