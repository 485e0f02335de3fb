#!/usr/bin/env bash
# The main job on an embedded default, as README.md gives it: install tokenfleet into a
# virtualenv and run `tokenfleet demo` (a dev authorization server, worker processes
# sharing a file store, one token request per token lifetime). Works on a fresh Debian
# machine as root. Arguments go to `tokenfleet demo` (e.g. --store redis://...).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing: python3-venv (run as root, or: apt-get install python3-venv)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-venv >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[redis]'  # the redis extra: --store redis://... works too
exec .venv/bin/tokenfleet demo "$@"
