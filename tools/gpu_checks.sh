#!/usr/bin/env bash
# Every check and speed figure that needs a CUDA device, in one run (about 5 minutes on an H100):
#
#   bash tools/gpu_checks.sh [OUT_DIR]        # default OUT_DIR: outputs/gpu_checks
#   EPOCHS=30 bash tools/gpu_checks.sh        # the paper's MNIST schedule in step 3
#   PRECISION=32-true bash tools/gpu_checks.sh  # step 3 in float32 (default bf16-mixed)
#
# The paper's whole MNIST experiment (five betas at once, 30 epochs, the protocol, the
# convergence check) is one more command on the same machine:
#   BETAS=0.15,0.35,0.55,0.75,0.95 JOBS=5 DEVICE=cuda bash studies/mnist_paper/run.sh
#
# 1. the gpu-marked tests (CPU/CUDA bit-identical randomness, same picks on both devices);
# 2. Gaussian trials per second at N = 2**15, K = 4 (benchmarks/bench_gaussian.py);
# 3. MNIST training for EPOCHS epochs at the paper's batch size 64, seconds per epoch in
#    OUT_DIR/train_summary_mnist.json (the run itself in RUNS_DIR, default OUT_DIR/runs);
# 4. cross-device agreement, encoder on the CPU and decoders on the GPU: 10**5 Gaussian
#    messages, and the test split x 10 seeds with the model from step 3;
# 5. MNIST training step (float32 and bf16-mixed, bare and inside a real Lightning fit, one
#    process against five at once) and evaluation point timings (benchmarks/bench_mnist.py);
# 6. a learned baseline codec (model=learned_codec) for 2 epochs: seconds per epoch in
#    OUT_DIR/train_summary_learned.json;
# 7. speculative-sampling verification time per method (benchmarks/bench_speculative.py).
#
# Each step has its own time limit and the script goes on after a failing step; the exit
# status counts the failed steps. A step's output goes to the terminal and to OUT_DIR/log.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-outputs/gpu_checks}
EPOCHS=${EPOCHS:-3}
PRECISION=${PRECISION:-bf16-mixed}
WORKERS=${WORKERS:-0}
RUNS_DIR=${RUNS_DIR:-$OUT/runs}
PY=${PY:-python3}
mkdir -p "$OUT" "$RUNS_DIR"
export PYTHONUNBUFFERED=1
failed=0

step() {  # step NAME LIMIT_S COMMAND...
  local name=$1 limit=$2 start=$SECONDS rc
  shift 2
  echo "== $name"
  timeout "$limit" "$@"
  rc=$?
  echo "== $name: exit $rc after $((SECONDS - start)) s"
  [[ $rc -eq 0 ]] || failed=$((failed + 1))
}

{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
  step "gpu tests" 150 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests
  step "bench_gaussian" 150 "$PY" -m benchmarks.bench_gaussian --device cuda
  step "train MNIST ($EPOCHS epochs)" 240 "$PY" train.py logger=csv device=cuda trainer.max_epochs="$EPOCHS" \
    trainer.precision="$PRECISION" \
    trainer.enable_progress_bar=false data.num_workers="$WORKERS" hydra.run.dir="$RUNS_DIR/mnist"
  step "cross-device Gaussian" 90 "$PY" -m dsc.eval.cross_device --messages 100000 \
    --json "$OUT/cross_device_gaussian.json"
  ckpt="$RUNS_DIR/mnist/checkpoints/best.ckpt"
  step "cross-device MNIST" 120 "$PY" -m dsc.eval.cross_device --source mnist --ckpt "$ckpt" --seeds 10 \
    --json "$OUT/cross_device_mnist.json"
  step "bench_mnist" 180 "$PY" -m benchmarks.bench_mnist --device cuda --processes 5
  step "train learned codec (2 epochs)" 150 "$PY" train.py model=learned_codec logger=csv device=cuda \
    trainer.max_epochs=2 trainer.enable_progress_bar=false data.num_workers="$WORKERS" \
    hydra.run.dir="$RUNS_DIR/learned"
  step "bench_speculative" 120 "$PY" -m benchmarks.bench_speculative --device cuda
  for run in mnist learned; do
    if [[ -f "$RUNS_DIR/$run/train_summary.json" ]]; then
      cp "$RUNS_DIR/$run/train_summary.json" "$OUT/train_summary_$run.json"
      echo "$run: $(cat "$RUNS_DIR/$run/train_summary.json")"
    fi
  done
  echo "failed steps: $failed"
  exit "$failed"
} 2>&1 | tee "$OUT/log.txt"
exit "${PIPESTATUS[0]}"
