#!/usr/bin/env bash
# Decoder estimates on the Gaussian source: GLS with the pick, shrink and Bayes decoders (s2 chosen
# by the MSE for each) and the nested scalar quantiser at K = 1, 2, 4 and 1 to 6 bits
# (experiment=gaussian_decoders), then results.csv / results.md / rd_plot.png with the side
# information alone (best of K) and the Wyner-Ziv bound beside them.
#
#   bash studies/gaussian_decoders/run.sh [OUT_DIR] [RESULTS_DIR]   # defaults: outputs/gaussian_decoders, results/gaussian_decoders
#
# Rerunning into the same OUT_DIR redoes only the jobs that did not finish.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-outputs/gaussian_decoders}
RESULTS=${2:-results/gaussian_decoders}
if [[ -z "${PY:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
"$PY" evaluate.py -m experiment=gaussian_decoders device=cpu hydra.sweep.dir="$OUT/gls"
"$PY" evaluate.py -m experiment=gaussian_decoders device=cpu scheme=nested_scalar job.estimate=pick \
  hydra.sweep.dir="$OUT/nested"
"$PY" -m studies.gaussian_decoders.report "$OUT" "$RESULTS"
