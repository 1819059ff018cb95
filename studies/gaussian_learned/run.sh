#!/usr/bin/env bash
# The learned GLS codec on Gaussian sources, end to end: train one codec per beta for the
# scalar source (d = 1) and for d = 4 and 16; evaluate the scalar codecs and the closed-form
# model by the same protocol (operating point chosen by mse_db on selection draws, reported on
# fresh draws; K = 1, 4; 1 to 4 bits; N = 1024 for both); the vector codecs at R = 4, 8 bits
# (d = 4) and 16 bits (d = 16) beside nested scalar quantisation per component at the same total
# bits; then one table (results/gaussian_learned/{results.csv, results.md, rd_plot.png}).
#
#   bash studies/gaussian_learned/run.sh [OUT_DIR] [RESULTS_DIR]   # defaults: outputs/gaussian_learned, results/gaussian_learned
#
# Rerunning into the same OUT_DIR skips finished training runs and evaluations.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-outputs/gaussian_learned}
RESULTS=${2:-results/gaussian_learned}
DEVICE=${DEVICE:-auto}
EPOCHS=${EPOCHS:-20}
[[ -n "${THREADS:-}" ]] && export OMP_NUM_THREADS=$THREADS
if [[ -z "${PY:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi

train() {  # train DIM BETA HIDDEN: one codec, skipped when finished
  local run="$OUT/train/d$1/beta_$2"
  if [[ -f "$run/train_summary.json" ]]; then echo "d $1 beta $2: already trained"; return; fi
  mkdir -p "$run"
  "$PY" train.py source=gaussian model=gaussian_mlp data.dim="$1" model.latent_dim="$1" model.beta="$2" \
    model.hidden="$3" model.estimator_hidden="$3" trainer.max_epochs="$EPOCHS" data.train_size=50000 logger=csv \
    device="$DEVICE" trainer.enable_progress_bar=false hydra.run.dir="$run" > "$run.log" 2>&1
  echo "d $1 beta $2: trained ($run)"
}

ckpts() {  # ckpts DIM: the best.ckpt of every beta trained for DIM, comma-separated
  local paths=("$OUT"/train/d"$1"/beta_*/checkpoints/best.ckpt)
  (IFS=,; echo "${paths[*]}")
}

for beta in 0.01 0.02 0.05 0.1 0.2 0.5; do train 1 "$beta" 128; done
for beta in 0.02 0.05 0.1 0.2 0.5; do train 4 "$beta" 256; done
for beta in 0.02 0.05 0.1 0.2 0.5; do train 16 "$beta" 256; done

EVAL="$OUT/eval"
"$PY" evaluate.py experiment=gaussian_analytic device="$DEVICE" job.progress=false hydra.run.dir="$EVAL/analytic_d1"
"$PY" evaluate.py experiment=gaussian_learned "ckpt_paths=[$(ckpts 1)]" device="$DEVICE" job.progress=false \
  hydra.run.dir="$EVAL/learned_d1"
"$PY" evaluate.py experiment=gaussian_learned "ckpt_paths=[$(ckpts 4)]" 'job.rate_bits=[4,8]' \
  job.num_candidates=4096 device="$DEVICE" job.progress=false hydra.run.dir="$EVAL/learned_d4"
"$PY" evaluate.py experiment=gaussian_learned "ckpt_paths=[$(ckpts 16)]" 'job.rate_bits=[16]' \
  job.num_candidates=262144 job.batch_size=250 job.messages=2000 job.selection_messages=500 device="$DEVICE" \
  job.progress=false hydra.run.dir="$EVAL/learned_d16"
"$PY" evaluate.py -m scheme=nested_scalar num_decoders=1,4 rate_bits=1,2,3,4 hydra.sweep.dir="$EVAL/nested_d1"
"$PY" evaluate.py -m scheme=nested_scalar num_decoders=1,4 rate_bits=4,8 job.nested.dim=4 hydra.sweep.dir="$EVAL/nested_d4"
"$PY" evaluate.py -m scheme=nested_scalar num_decoders=1,4 rate_bits=16 job.nested.dim=16 \
  hydra.sweep.dir="$EVAL/nested_d16"
"$PY" -m studies.gaussian_learned.report "$EVAL" "$RESULTS"
cat "$RESULTS/results.md"
