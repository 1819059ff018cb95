#!/usr/bin/env bash
# Decoders that know how sure their pick is, for one trained MNIST codec CODEC: a pick-aware decoder
# (the codec's decoder fed the pick's race score, the estimator's log-ratio of the pick and the rate,
# fine-tuned on GLS picks that match and picks that miss) and a crop-only decoder (the same network
# fine-tuned to ignore the pick), both trained with the codec frozen (model=pick_decoder), then
# evaluated beside the codec's own decoder (which trusts its pick) on the test split: GLS, N = 128,
# K in KS, rates RATES; the crop-only decoder once per K (it reads no bits).
#
#   CODEC=<codec run>/checkpoints/best.ckpt bash studies/mnist_decoders/run.sh [OUT_DIR] [RESULTS_DIR]
#   # defaults: CODEC=outputs/demo/mnist_train/checkpoints/best.ckpt (make demo's codec),
#   # OUT_DIR=outputs/mnist_decoders, RESULTS_DIR=results/mnist_decoders
#
# Training: EPOCHS (1) over the first TRAIN_LIMIT (16000) training digits with 4 crops each,
# TRAIN_BATCHES (1.0: all) batches per epoch, VAL_BATCHES (20) validation batches. Evaluation:
# the first TEST_LIMIT (1000) test digits. Rerunning into the same OUT_DIR skips finished training
# runs and finished evaluation points. Results: RESULTS_DIR/{results.csv, results.md, reconstructions.png}.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-outputs/mnist_decoders}
RESULTS=${2:-results/mnist_decoders}
CODEC=${CODEC:-outputs/demo/mnist_train/checkpoints/best.ckpt}
EPOCHS=${EPOCHS:-1}
TRAIN_LIMIT=${TRAIN_LIMIT:-16000}
TRAIN_BATCHES=${TRAIN_BATCHES:-1.0}
VAL_BATCHES=${VAL_BATCHES:-20}
TEST_LIMIT=${TEST_LIMIT:-1000}
KS=${KS:-1,2,4}
RATES=${RATES:-2,3,4,5,6}
DEVICE=${DEVICE:-auto}
if [[ -z "${PY:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
if [[ ! -f "$CODEC" ]]; then
  echo "no codec at $CODEC: set CODEC=<codec run>/checkpoints/best.ckpt (or run make demo)" >&2; exit 2
fi

train() {  # train NAME CROP_ONLY: one decoder, skipped when finished
  local run="$OUT/train/$1"
  if [[ -f "$run/train_summary.json" && -f "$run/checkpoints/best.ckpt" ]]; then
    echo "$1: already trained in $run"; return
  fi
  mkdir -p "$run"
  "$PY" train.py source=mnist model=pick_decoder model.codec_ckpt="$CODEC" model.crop_only="$2" +num_decoders=4 \
    data.limit="$TRAIN_LIMIT" trainer.max_epochs="$EPOCHS" trainer.limit_train_batches="$TRAIN_BATCHES" \
    trainer.limit_val_batches="$VAL_BATCHES" logger=csv device="$DEVICE" trainer.enable_progress_bar=false \
    hydra.run.dir="$run" > "$run.log" 2>&1
  echo "$1: trained ($run, log $run.log)"
}

evaluate() {  # evaluate NAME RATES [DECODER_CKPT]: one sweep over K and the rates, finished points skipped
  "$PY" evaluate.py -m source=mnist ckpt_path="$CODEC" scheme=gls num_decoders="$KS" rate_bits="$2" \
    num_candidates=128 job.limit="$TEST_LIMIT" ${3:+job.decoder_ckpt="$3"} device="$DEVICE" \
    hydra.sweep.dir="$OUT/eval/$1" 'hydra.sweep.subdir=K${num_decoders}_R${rate_bits}' > "$OUT/eval/$1.log" 2>&1
  echo "$1: evaluated ($OUT/eval/$1, log $OUT/eval/$1.log)"
}

train trained false
train crop_only true
mkdir -p "$OUT/eval"
evaluate pick "$RATES"
evaluate trained "$RATES" "$OUT/train/trained/checkpoints/best.ckpt"
evaluate crop_only "${RATES%%,*}" "$OUT/train/crop_only/checkpoints/best.ckpt"
"$PY" -m studies.mnist_decoders.report "$OUT" "$RESULTS"
"$PY" -m studies.mnist_decoders.figure "$OUT" "$RESULTS/reconstructions.png" --codec "$CODEC"
