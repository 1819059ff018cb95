#!/usr/bin/env bash
# The paper's MNIST experiment end to end, at the paper's schedule (30 epochs, batch 64):
# train one codec per beta, choose beta and N on the validation split and report on test, then
# the convergence check (the protocol on the snapshots every SNAPSHOT_EVERY epochs).
#
#   bash studies/mnist_paper/run.sh [OUT_DIR] [RESULTS_DIR]   # defaults: outputs/mnist_paper, results/mnist_paper
#   BETAS=0.15,0.35,0.55,0.75,0.95 bash studies/mnist_paper/run.sh   # all five paper models
#   EPOCHS=3 SELECTION_LIMIT=1000 bash studies/mnist_paper/run.sh      # a reduced budget
#   JOBS=2 THREADS=1 bash studies/mnist_paper/run.sh                   # two betas at a time, one core each (CPU)
#
# Rerunning into the same OUT_DIR resumes: finished training runs are skipped, interrupted ones
# continue from last.ckpt, the protocol reuses its cached evaluations. Results: RESULTS_DIR/
# {results.csv, results.md, rd_plot.png, reconstructions.png, convergence.csv, convergence.png};
# seconds per epoch: OUT_DIR/train/*/train_summary.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-outputs/mnist_paper}
RESULTS=${2:-results/mnist_paper}
BETAS=${BETAS:-0.15,0.35}
EPOCHS=${EPOCHS:-30}
PRECISION=${PRECISION:-bf16-mixed}
SNAPSHOT_EVERY=${SNAPSHOT_EVERY:-5}
SELECTION_LIMIT=${SELECTION_LIMIT:-null}
LIMIT=${LIMIT:-null}
DEVICE=${DEVICE:-auto}
JOBS=${JOBS:-1}
[[ -n "${THREADS:-}" ]] && export OMP_NUM_THREADS=$THREADS
if [[ -z "${PY:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi

train() {  # train BETA: one run at the paper's schedule, skipped when finished, resumed when interrupted
  local run="$OUT/train/beta_$1"
  if [[ -f "$run/train_summary.json" && -f "$run/checkpoints/best.ckpt" ]]; then
    echo "beta $1: already trained in $run"; return
  fi
  local resume=()
  [[ -f "$run/checkpoints/last.ckpt" ]] && resume=("ckpt_path=$run/checkpoints/last.ckpt")
  mkdir -p "$run"
  "$PY" train.py model.beta="$1" trainer.max_epochs="$EPOCHS" trainer.precision="$PRECISION" logger=csv \
    device="$DEVICE" checkpoint_every_n_epochs="$SNAPSHOT_EVERY" trainer.enable_progress_bar=false \
    hydra.run.dir="$run" "${resume[@]}" >> "$run.log" 2>&1
  echo "beta $1: trained ($run, log $run.log)"
}

runs=()
ckpts=()
IFS=, read -ra beta_list <<< "$BETAS"
for beta in "${beta_list[@]}"; do
  while (( $(jobs -rp | wc -l) >= JOBS )); do wait -n; done
  train "$beta" &
  runs+=("$OUT/train/beta_$beta")
  ckpts+=("$OUT/train/beta_$beta/checkpoints/best.ckpt")
done
wait

paths=$(IFS=,; echo "${ckpts[*]}")
"$PY" evaluate.py experiment=mnist_rd "ckpt_paths=[$paths]" device="$DEVICE" job.progress=false \
  job.selection_limit="$SELECTION_LIMIT" job.limit="$LIMIT" hydra.run.dir="$OUT/rd"
mkdir -p "$RESULTS"
for name in results.csv results.md rd_plot.png reconstructions.png; do cp "$OUT/rd/$name" "$RESULTS/$name"; done
"$PY" -m studies.mnist_paper.convergence "${runs[@]}" --out "$OUT/convergence" --results "$RESULTS" --device "$DEVICE"
cat "$RESULTS/results.md"
