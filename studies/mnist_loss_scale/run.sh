#!/usr/bin/env bash
# The loss-scale study: short training runs of the paper's beta grid under every distortion
# normalisation (dsc/models/distortion.py), then the paper's protocol once per normalisation on
# a reduced grid, then one table: KL and validation MSE per (normalisation, beta), and the
# (beta, N) the protocol chose at every (scheme, K, rate) beside paper Table 13.
#
#   bash studies/mnist_loss_scale/run.sh [OUT_DIR] [RESULTS_DIR]
#       # defaults: outputs/mnist_loss_scale, results/mnist_loss_scale
#   NORMS=sum_01,sum_pm1 BETAS=0.15,0.35 EPOCHS=2 TRAIN_LIMIT=8000 bash studies/mnist_loss_scale/run.sh
#   KL_WARMUP=100 bash studies/mnist_loss_scale/run.sh other_dir   # reach the full beta within the short schedule
#
# Rerunning into the same OUT_DIR resumes: finished training runs are skipped and the protocol
# reuses its cached evaluations. THREADS (default 1) torch threads per process; JOBS (default 1)
# training runs at a time.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-outputs/mnist_loss_scale}
RESULTS=${2:-results/mnist_loss_scale}
NORMS=${NORMS:-sum_01,sum_pm1,mean_01,mean_pm1}
BETAS=${BETAS:-0.15,0.35,0.55,0.75,0.95}
EPOCHS=${EPOCHS:-2}
TRAIN_LIMIT=${TRAIN_LIMIT:-8000}
PRECISION=${PRECISION:-bf16-mixed}
KL_WARMUP=${KL_WARMUP:-500}  # steps of the KL weight's ramp; 2 epochs of 8,000 digits are 250 steps
NUM_CANDIDATES=${NUM_CANDIDATES:-[128,256,512]}
SELECTION_LIMIT=${SELECTION_LIMIT:-1000}
LIMIT=${LIMIT:-2000}
DEVICE=${DEVICE:-auto}
export OMP_NUM_THREADS=${THREADS:-1}
JOBS=${JOBS:-1}
if [[ -z "${PY:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi

IFS=, read -ra norm_list <<< "$NORMS"
IFS=, read -ra beta_list <<< "$BETAS"

train() {  # train NORM BETA: one short run, skipped when finished
  local run="$OUT/train/$1/beta_$2"
  if [[ -f "$run/train_summary.json" ]]; then echo "$1 beta $2: already trained in $run"; return; fi
  "$PY" train.py model.distortion="$1" model.beta="$2" trainer.max_epochs="$EPOCHS" data.limit="$TRAIN_LIMIT" \
    model.kl_warmup_steps="$KL_WARMUP" trainer.precision="$PRECISION" logger=csv device="$DEVICE" trainer.enable_progress_bar=false \
    hydra.run.dir="$run" > "$run.log" 2>&1 && echo "$1 beta $2: trained ($run)"
}

mkdir -p "$OUT/train"
for norm in "${norm_list[@]}"; do
  mkdir -p "$OUT/train/$norm"
  for beta in "${beta_list[@]}"; do
    while (( $(jobs -rp | wc -l) >= JOBS )); do wait -n; done
    train "$norm" "$beta" &
  done
done
wait

for norm in "${norm_list[@]}"; do
  ckpts=()
  for beta in "${beta_list[@]}"; do ckpts+=("$OUT/train/$norm/beta_$beta/checkpoints/best.ckpt"); done
  paths=$(IFS=,; echo "${ckpts[*]}")
  "$PY" evaluate.py experiment=mnist_rd "ckpt_paths=[$paths]" distortion="$norm" device="$DEVICE" \
    job.num_candidates="$NUM_CANDIDATES" job.selection_limit="$SELECTION_LIMIT" job.limit="$LIMIT" \
    job.progress=false hydra.run.dir="$OUT/rd/$norm"
done

"$PY" -m studies.mnist_loss_scale.report "$OUT" "$RESULTS"
