#!/usr/bin/env bash
# MNIST with two kinds of side information through the same path: the paper's crop of the left
# half and a noisy copy of the whole left half (noise standard deviation 0.5 on [0, 1] pixels),
# one codec per RUNS entry KIND:BETA (default: crop at 0.15, noisy at 0.15 and at 0.05).
# Each codec is trained on the demo's schedule (experiment=mnist_train_demo: the first 16,000
# training digits, 2 epochs) and evaluated by the demo's protocol (experiment=mnist_rd_demo: N and
# K, rate grid of `make demo`, 500 validation and 1,000 test digits).
#
#   bash studies/mnist_side_info/run.sh [OUT_DIR] [RESULTS_DIR]   # defaults: outputs/mnist_side_info, results/mnist_side_info
#
# Rerunning into the same OUT_DIR skips finished training runs and reuses cached evaluations.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-outputs/mnist_side_info}
RESULTS=${2:-results/mnist_side_info}
RUNS=${RUNS:-crop:0.15 noisy:0.15 noisy:0.05}
DEVICE=${DEVICE:-auto}
if [[ -z "${PY:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
for run in $RUNS; do
  kind=${run%%:*} beta=${run#*:}
  dir="$OUT/${kind}_beta$beta"
  if [[ ! -f "$dir/train/train_summary.json" ]]; then
    "$PY" train.py experiment=mnist_train_demo source.side_info="$kind" model.beta="$beta" device="$DEVICE" \
      hydra.run.dir="$dir/train"
  fi
  "$PY" evaluate.py experiment=mnist_rd_demo "ckpt_paths=[$dir/train/checkpoints/best.ckpt]" device="$DEVICE" \
    job.progress=false hydra.run.dir="$dir/eval"
done
"$PY" -m studies.mnist_side_info.report "$OUT" "$RESULTS"
