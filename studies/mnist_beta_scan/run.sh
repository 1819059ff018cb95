#!/usr/bin/env bash
# The KL-weight scan: the MNIST codec trained at the paper's five betas and at larger ones, all
# on one short schedule (default 3 epochs of all training digits, bf16), then the paper's protocol
# over all of them at N = 2^7 (beta chosen on validation, reported on test), and per beta the
# validation MSE at every (K, rate) point of Table 13 with beta held fixed.
#
#   bash studies/mnist_beta_scan/run.sh [OUT_DIR] [RESULTS_DIR]   # defaults: outputs/mnist_beta_scan, results/mnist_beta_scan
#   BETAS=0.15,0.95,2.4 EPOCHS=5 JOBS=2 bash studies/mnist_beta_scan/run.sh
#
# Rerunning into the same OUT_DIR resumes: finished training runs are skipped and the protocol
# reuses its cached evaluations. JOBS (default 2) training runs at a time, THREADS (default 1)
# torch threads each. Results: RESULTS_DIR/{results.csv, results.md, rd_plot.png,
# reconstructions.png} (the protocol) and {betas.csv, betas.png} (the scan).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-outputs/mnist_beta_scan}
RESULTS=${2:-results/mnist_beta_scan}
BETAS=${BETAS:-0.15,0.35,0.55,0.75,0.95,1.5,2.4,3.8,6.0}
EPOCHS=${EPOCHS:-3}
PRECISION=${PRECISION:-bf16-mixed}
SELECTION_LIMIT=${SELECTION_LIMIT:-2000}
LIMIT=${LIMIT:-null}
DEVICE=${DEVICE:-auto}
JOBS=${JOBS:-2}
export OMP_NUM_THREADS=${THREADS:-1}
if [[ -z "${PY:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi

train() {  # train BETA: one run, skipped when finished
  local run="$OUT/train/beta_$1"
  if [[ -f "$run/train_summary.json" && -f "$run/checkpoints/best.ckpt" ]]; then
    echo "beta $1: already trained in $run"; return
  fi
  mkdir -p "$run"
  "$PY" train.py model.beta="$1" trainer.max_epochs="$EPOCHS" trainer.precision="$PRECISION" logger=csv \
    device="$DEVICE" trainer.enable_progress_bar=false hydra.run.dir="$run" > "$run.log" 2>&1
  echo "beta $1: trained ($run, log $run.log)"
}

ckpts=()
IFS=, read -ra beta_list <<< "$BETAS"
for beta in "${beta_list[@]}"; do
  while (( $(jobs -rp | wc -l) >= JOBS )); do wait -n; done
  train "$beta" &
  ckpts+=("$OUT/train/beta_$beta/checkpoints/best.ckpt")
done
wait

export OMP_NUM_THREADS=${EVAL_THREADS:-$(nproc)}
paths=$(IFS=,; echo "${ckpts[*]}")
"$PY" evaluate.py experiment=mnist_rd "ckpt_paths=[$paths]" 'job.num_candidates=[128]' device="$DEVICE" \
  job.progress=false job.selection_limit="$SELECTION_LIMIT" job.limit="$LIMIT" hydra.run.dir="$OUT/rd"
mkdir -p "$RESULTS"
for name in results.csv results.md rd_plot.png reconstructions.png; do cp "$OUT/rd/$name" "$RESULTS/$name"; done
"$PY" -m studies.mnist_beta_scan.report "$OUT/rd" "$RESULTS"
