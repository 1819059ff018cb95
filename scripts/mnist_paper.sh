#!/usr/bin/env bash
# The paper's MNIST experiment end to end, at the paper's schedule (30 epochs, batch 64):
# train one codec per beta, then choose beta and N on the validation split and report on test.
#
#   bash scripts/mnist_paper.sh [OUT_DIR]          # default OUT_DIR: outputs/mnist_paper
#   BETAS=0.15,0.35,0.55,0.75,0.95 bash scripts/mnist_paper.sh   # all five paper models
#   EPOCHS=3 SELECTION_LIMIT=1000 bash scripts/mnist_paper.sh      # a reduced budget
#
# Rerunning into the same OUT_DIR resumes: finished training runs are skipped, the protocol
# reuses its validation results (selection.csv). Results: OUT_DIR/rd/{results.md, rd_plot.png,
# reconstructions.png, metrics.json}; seconds per epoch: OUT_DIR/train/*/train_summary.json.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-outputs/mnist_paper}
BETAS=${BETAS:-0.15,0.35}
EPOCHS=${EPOCHS:-30}
SELECTION_LIMIT=${SELECTION_LIMIT:-null}
LIMIT=${LIMIT:-null}
DEVICE=${DEVICE:-auto}
if [[ -z "${PY:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi

ckpts=()
IFS=, read -ra beta_list <<< "$BETAS"
for beta in "${beta_list[@]}"; do
  run="$OUT/train/beta_$beta"
  if [[ -f "$run/train_summary.json" && -f "$run/checkpoints/best.ckpt" ]]; then
    echo "beta $beta: already trained in $run"
  else
    resume=()
    [[ -f "$run/checkpoints/last.ckpt" ]] && resume=("ckpt_path=$run/checkpoints/last.ckpt")
    "$PY" train.py model.beta="$beta" trainer.max_epochs="$EPOCHS" logger=csv device="$DEVICE" \
      trainer.enable_progress_bar=false hydra.run.dir="$run" "${resume[@]}"
  fi
  ckpts+=("$run/checkpoints/best.ckpt")
done

paths=$(IFS=,; echo "${ckpts[*]}")
"$PY" evaluate.py experiment=mnist_rd "ckpt_paths=[$paths]" device="$DEVICE" \
  job.selection_limit="$SELECTION_LIMIT" job.limit="$LIMIT" hydra.run.dir="$OUT/rd"
cat "$OUT/rd/results.md"
