#!/bin/sh
# Print the Python that `make test` / `make demo` install into and run (scripts/install.sh).
#
#   sh scripts/select_python.sh [BASE]      # BASE: the Python to start from (default python3)
#
# * an active virtualenv or conda environment ($VIRTUAL_ENV / $CONDA_PREFIX): BASE, as it is;
# * BASE not externally managed (no PEP 668 EXTERNALLY-MANAGED marker in its stdlib): BASE;
# * otherwise (Debian's and Ubuntu's system python3, where pip refuses to install): the
#   project environment .venv, created from BASE on first use and reused afterwards; one line
#   on stderr says so.
# `make PYTHON=/path/to/python ...` skips this choice. COMPACTEMB_STDLIB_DIR overrides the
# folder searched for the marker (tests).
set -eu
base="${1:-python3}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
if [ -n "${VIRTUAL_ENV:-}" ] || [ -n "${CONDA_PREFIX:-}" ]; then
    echo "$base"; exit 0
fi
stdlib="${COMPACTEMB_STDLIB_DIR:-$("$base" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')}"
if [ ! -f "$stdlib/EXTERNALLY-MANAGED" ]; then
    echo "$base"; exit 0
fi
venv="$repo/.venv"
if [ -x "$venv/bin/python" ]; then
    echo "[make] $base is externally managed (PEP 668): using the project environment $venv" >&2
else
    echo "[make] $base is externally managed (PEP 668) and no virtualenv/conda environment is active: creating the project environment $venv" >&2
    if ! "$base" -m venv "$venv" >&2; then
        echo "[make] could not create $venv: install the venv module (Debian/Ubuntu: apt install python3-venv) or activate an environment" >&2
        exit 1
    fi
fi
echo "$venv/bin/python"
