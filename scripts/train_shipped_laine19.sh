#!/bin/bash
# How the shipped Laine19 models were trained, stage by stage (CPU, no GPU was lent).  Usage:
#
#   scripts/train_shipped_laine19.sh gauss25|gauss5_50 [WORKDIR]     # then scripts/export_model.py
#
# Every stage trains on BSDS500_train_test noisy images only (each corrupted once, seed 0).  Stages 1 and 3-6
# train for a wall-clock budget, so another machine does more (or fewer) steps than the step counts that
# `selfrestore models` records; continue from a shipped model instead with the last stage alone (`--init NAME`).
# laine19-poisson30 is stage 2 with `--noise poisson30 --steps 600 --lr 3e-4 --patch-sizes off` from the gauss25
# stage 2 model.  laine19-gauss5_50 has its own stages 4-8 (stops 31-34, below); stages 4-7 here: laine19-gauss25.
set -euo pipefail
NOISE=${1:?usage: $0 gauss25\|gauss5_50 [WORKDIR]}
WORK=${2:-runs/shipped-laine19-$NOISE}
DATA=${DATA:-$(dirname "$0")/../../shared/data}/BSDS500_train_test
mkdir -p "$WORK"
fit() {  # in bf16 autocast, as the shipped models were (a later --precision wins; fit's default follows the hardware)
    python -m selfrestore.cli fit --method laine19 --head full --synthetic --precision bf16 "$DATA/train" \
        "$DATA/test" "$@"
}

# 1. the settings of the Table 1 "Laine19 full, level known" gauss25 row (benchmarks/table1_blindspot.py, which
#    made the shipped stage on a 20-min CPU-time budget, 810 steps here): 20 min, batch 4, fixed 128 px, lr 1e-3.
#    Through fit, so that the committed Table 1 cell is not replaced by this run's.
fit --noise gauss25 --minutes 20 --batch-size 4 --patch-size 128 --patch-sizes off --lr 1e-3 \
    -o "$WORK/stage1.safetensors"
# 2. 600 steps at lr 3e-4 with the target noise, fixed 128 px patches (made before --patch-sizes existed)
fit --noise "$NOISE" --init "$WORK/stage1.safetensors" --steps 600 --lr 3e-4 --patch-sizes off \
    -o "$WORK/stage2.safetensors"
# 3. (stop 24) 110 min on one thread, lr 5e-4 cosine, patch sides 128-192 (1840 / 1870 steps here)
OMP_NUM_THREADS=1 fit --noise "$NOISE" --init "$WORK/stage2.safetensors" --minutes 110 --steps 100000 --lr 5e-4 \
    --ckpt-every 200 -o "$WORK/stage3.safetensors"
if [ "$NOISE" != gauss25 ]; then
    # 4. (stop 31) 85 min on two threads, fp32 (that machine had no bf16 hardware), the same settings (2057 steps)
    OMP_NUM_THREADS=2 fit --noise "$NOISE" --init "$WORK/stage3.safetensors" --minutes 85 --steps 100000 \
        --lr 5e-4 --ckpt-every 200 --precision fp32 -o "$WORK/stage4.safetensors"
    # 5. (stop 32) the same again (1931 steps)
    OMP_NUM_THREADS=2 fit --noise "$NOISE" --init "$WORK/stage4.safetensors" --minutes 85 --steps 100000 \
        --lr 5e-4 --ckpt-every 200 --precision fp32 -o "$WORK/stage5.safetensors"
    # 6. (stop 32) 40 min at a lower peak lr, 3e-4 (670 steps: the cores were shared with test runs)
    OMP_NUM_THREADS=2 fit --noise "$NOISE" --init "$WORK/stage5.safetensors" --minutes 40 --steps 100000 \
        --lr 3e-4 --ckpt-every 200 --precision fp32 -o "$WORK/stage6.safetensors"
    # 7. (stop 33) 85 min at lr 5e-4 again (1487 steps: the cores were shared for its first 30 min)
    OMP_NUM_THREADS=2 fit --noise "$NOISE" --init "$WORK/stage6.safetensors" --minutes 85 --steps 100000 \
        --lr 5e-4 --ckpt-every 200 --precision fp32 -o "$WORK/stage7.safetensors"
    # 8. (stop 34) the same in bf16: that machine had AVX512-BF16 / AMX (4185 steps, 2.8x stage 7's)
    OMP_NUM_THREADS=2 fit --noise "$NOISE" --init "$WORK/stage7.safetensors" --minutes 85 --steps 100000 \
        --lr 5e-4 --ckpt-every 200 -o "$WORK/stage8.safetensors"
    echo "trained: $WORK/stage8.safetensors (ship: scripts/export_model.py $WORK/stage8.safetensors NAME --info ...)"
    exit 0
fi
# 4. (stop 25) 125 min on two threads, the same settings
OMP_NUM_THREADS=2 fit --noise "$NOISE" --init "$WORK/stage3.safetensors" --minutes 125 --steps 100000 --lr 5e-4 \
    --ckpt-every 200 -o "$WORK/stage4.safetensors"
# 5. (stop 26) 95 min on two threads, the same settings
OMP_NUM_THREADS=2 fit --noise "$NOISE" --init "$WORK/stage4.safetensors" --minutes 95 --steps 100000 --lr 5e-4 \
    --ckpt-every 200 -o "$WORK/stage5.safetensors"
# 6. (stop 28) 100 min on two threads at a lower peak lr, 3e-4 (the gains of stages 3-5 kept shrinking)
OMP_NUM_THREADS=2 fit --noise "$NOISE" --init "$WORK/stage5.safetensors" --minutes 100 --steps 100000 --lr 3e-4 \
    --ckpt-every 200 -o "$WORK/stage6.safetensors"
# 7. (stop 34) 35 min at lr 3e-4, on a machine with AVX512-BF16 / AMX (1955 steps)
OMP_NUM_THREADS=2 fit --noise "$NOISE" --init "$WORK/stage6.safetensors" --minutes 35 --steps 100000 --lr 3e-4 \
    --ckpt-every 200 -o "$WORK/stage7.safetensors"
echo "trained: $WORK/stage7.safetensors (ship: python scripts/export_model.py $WORK/stage7.safetensors NAME --info ...)"
