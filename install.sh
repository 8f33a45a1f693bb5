#!/usr/bin/env bash
# Set up tlcourse on a fresh Debian or Ubuntu machine, from this checkout alone:
#   - the system packages the tests and the grader use: chromium (the book's browser tests)
#     and bubblewrap (sandboxing), with apt-get, as root or through sudo, when missing;
#   - a virtual environment in .venv with tlcourse installed from this checkout (editable),
#     TensorFlow for the CPU (or, with `./install.sh gpu`, with CUDA) and the dev tools.
# Run it again at any time: what is there already is kept.
set -euo pipefail
cd "$(dirname "$0")"
flavour="${1:-cpu}"
case "$flavour" in cpu | gpu) ;; *)
    echo "usage: ./install.sh [cpu|gpu]   (TensorFlow for the CPU, the default, or with CUDA)" >&2
    exit 2
    ;;
esac

if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "error: tlcourse needs Python 3.11 or newer as python3 (found: $(python3 --version 2>&1))." \
        "Install it (apt-get install python3.11 python3.11-venv), then run ./install.sh again." >&2
    exit 1
fi

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
if ((${#missing[@]})); then
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "error: ${missing[*]} missing and neither root nor sudo is available: ask an" \
            "administrator to run: apt-get install ${missing[*]}" >&2
        exit 1
    fi
    log="${TMPDIR:-/tmp}/tlcourse-apt.log"
    echo "installing ${missing[*]} with apt-get (log: $log)"
    if ! { "${as_root[@]}" apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}"; } \
        >"$log" 2>&1; then
        echo "error: apt-get could not install ${missing[*]}; see $log" >&2
        exit 1
    fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[$flavour,dev]"
echo "tlcourse installed in .venv: run .venv/bin/tlcourse --help"
