"""Turn a trained model file into a shipped model: ``selfrestore/weights/NAME.safetensors``.

Drops the optimizer state, stores float16 weights, and records how the model was trained (``--info``) and
what a committed benchmark measured (``--score "Kodak24 gauss25 PSNR=30.76"``), which `selfrestore models`
prints and `selfrestore demo` uses to pick the best model.

    python scripts/export_model.py runs/n2n_vs_n2c_2000/n2n_gauss25.safetensors unet-gauss25 \\
        --info "N2N, BSDS500_train_test, 2000 steps" --score "Kodak24 gauss25 PSNR=30.76"
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selfrestore.checkpoint import WEIGHTS_DIR, export_model  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="trained model file")
    p.add_argument("name", help="shipped name, e.g. laine19-gauss25")
    p.add_argument("--info", default="", help="how it was trained (data, budget, machine)")
    p.add_argument("--score", action="append", default=[], metavar="NAME=VALUE", help="a measured score")
    p.add_argument("--fp32", action="store_true", help="keep float32 weights")
    args = p.parse_args()
    scores = {}
    for item in args.score:
        key, _, value = item.rpartition("=")
        scores[key] = float(value)
    out = export_model(args.source, WEIGHTS_DIR / f"{args.name}.safetensors", info=args.info,
                       half=not args.fp32, scores=scores)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
