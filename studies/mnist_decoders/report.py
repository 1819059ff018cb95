"""Decoders that know how sure their pick is: the test results of the codec's own decoder
(``pick``: trusts its pick), the pick-aware decoder (``trained``) and the crop-only decoder
(``crop_only``, which reads no bits: one row per K, at rate 0), side by side.

Reads ``RUNS/eval/<decoder>/<point>/metrics.json`` (``studies/mnist_decoders/run.sh``) and
the decoders' training summaries ``RUNS/train/<decoder>/train_summary.json``, and writes into
RESULTS ``results.csv`` (one row per decoder, K and rate) and ``results.md`` (per K, a table of
decoder x rate)::

    python -m studies.mnist_decoders.report outputs/mnist_decoders results/mnist_decoders
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from dsc.errors import DscError
from dsc.helptext import first_paragraph
from dsc.io import atomic_write_bytes
from dsc.report.tables import to_csv
from studies.report_cli import read_json, report_main

COLUMNS = ("scheme", "decoder", "num_decoders", "rate_bits", "mse", "mse_se", "psnr_db", "ssim", "match_prob",
           "num_candidates", "beta", "epochs", "per_decoder_mse", "matched_mse", "missed_mse")
DECODERS = ("pick", "trained", "crop_only")
RATE_FREE = "crop_only"  # reads no bits: its rows are at rate 0
DESCRIPTIONS = {"pick": "the codec's decoder on the pick (trusts it)",
                "trained": "pick-aware: the pick, its race score, its estimator log-ratio and the rate",
                "crop_only": "the crop alone (no bits)"}


def _read_json(path: Path, what: str) -> dict:
    return read_json(path, what, "studies/mnist_decoders/run.sh")


def decoder_rows(runs: Path) -> list[dict]:
    """One row per (decoder, K, rate) of every evaluation point under ``runs/eval``."""
    rows = []
    for path in sorted((runs / "eval").glob("*/*/metrics.json")):
        for point in _read_json(path, "an evaluation point")["points"]:
            decoder = point.get("decoder", "pick")
            if decoder not in DECODERS:
                raise DscError(f"{path}: unknown decoder {decoder!r} (expected one of {', '.join(DECODERS)})")
            row = {c: point.get(c) for c in COLUMNS}
            if decoder == RATE_FREE:  # the same output whatever was sent: no rate, no matches
                row.update(rate_bits=0, match_prob=None, matched_mse=None, missed_mse=None)
            rows.append(row)
    if not rows:
        raise DscError(f"{runs / 'eval'} holds no <decoder>/<point>/metrics.json; run studies/mnist_decoders/run.sh "
                       "first")
    keys = [(r["decoder"], r["num_decoders"], r["rate_bits"]) for r in rows]
    if len(set(keys)) != len(keys):
        raise DscError(f"{runs / 'eval'} holds a decoder, K and rate twice: one evaluation per point")
    order = {name: i for i, name in enumerate(DECODERS)}
    return sorted(rows, key=lambda r: (r["num_decoders"], order[r["decoder"]], r["rate_bits"]))


def decoders_table(rows: Sequence[dict], num_decoders: int, metric: str = "mse") -> str:
    """Test ``metric`` per decoder and rate, at K = ``num_decoders``: ``mse`` (best of K, with the
    match probability), ``per_decoder_mse`` (the mean over decoders) or ``matched_missed`` (the
    decoders' MSE where their pick was the encoder's candidate / where it was not)."""
    chosen = [r for r in rows if r["num_decoders"] == num_decoders
              and (metric != "matched_missed" or r["decoder"] != RATE_FREE)]  # it has no matches
    rates = sorted({r["rate_bits"] for r in chosen})
    cells = {(r["decoder"], r["rate_bits"]): r for r in chosen}
    lines = ["| decoder | " + " | ".join(f"{rate} bits" for rate in rates) + " |", "|---|" + "---|" * len(rates)]
    for decoder in (d for d in DECODERS if any(key[0] == d for key in cells)):
        values = [cells.get((decoder, rate)) for rate in rates]
        lines.append(f"| {decoder} | " + " | ".join("" if v is None else _cell(v, metric) for v in values) + " |")
    return "\n".join(lines) + "\n"


def _cell(row: dict, metric: str) -> str:
    if metric == "matched_missed":
        return " / ".join("-" if row[key] is None else f"{row[key]:.4f}" for key in ("matched_mse", "missed_mse"))
    match = "" if row["match_prob"] is None or metric != "mse" else f" ({row['match_prob']:.2f})"
    return f"{row[metric]:.4f}{match}"


def _training(runs: Path) -> str:
    """A sentence on how the decoders were trained (from their summaries and configs)."""
    parts = []
    for name in ("trained", "crop_only"):
        summary = runs / "train" / name / "train_summary.json"
        if not summary.is_file():
            continue
        done = _read_json(summary, "a decoder's training summary")
        config = _read_json(runs / "train" / name / "run_config.json", "a decoder's training config")["config"]
        steps = config["trainer"].get("limit_train_batches")
        parts.append(f"{name}: {done['epochs']} epoch(s) over the first {config['data']['limit']} training digits "
                     f"with {config.get('num_decoders', 1)} crops each, batch {done['batch_size']}"
                     + (f", {steps} of its batches" if steps not in (None, 1.0) else "")
                     + f", rates {config['model']['rate_bits']}, N = {config['model']['num_candidates']}, "
                       f"lr {config['model']['lr']:g} ({done['train_s'] / 60:.0f} min)")
    return "; ".join(parts)


def write_report(runs: str | Path, results: str | Path) -> Path:
    """``results.csv`` and ``results.md`` of the points under ``runs``; returns the results folder."""
    runs = Path(runs)
    rows = decoder_rows(runs)
    results = Path(results)
    atomic_write_bytes(results / "results.csv", to_csv(rows, COLUMNS))
    first = rows[0]
    training = _training(runs)
    text = ["# Decoders that know how sure their pick is", "",
            f"One MNIST codec (beta {first['beta']:g}, {first['epochs']} epochs), GLS with N = "
            f"{first['num_candidates']}, on the test split. Cells: best-of-K MSE per pixel, pixels in [0, 1] "
            "(the probability that some decoder picked the encoder's candidate). Decoders: "
            + "; ".join(f"`{name}`: {DESCRIPTIONS[name]}" for name in DECODERS) + "."
            + (f" Training with the codec frozen: {training}." if training else "")
            + " Produced by studies/mnist_decoders/run.sh.", ""]
    for k in sorted({r["num_decoders"] for r in rows}):
        text += [f"## K = {k}", "", decoders_table(rows, k)]
        if k > 1:
            text += ["Each decoder on its own (MSE averaged over the K decoders):", "",
                     decoders_table(rows, k, "per_decoder_mse")]
        text += ["The decoders' MSE where their pick was the encoder's candidate / where it was not:", "",
                 decoders_table(rows, k, "matched_missed")]
    atomic_write_bytes(results / "results.md", "\n".join(text).encode())
    return results


def main(argv: Sequence[str] | None = None) -> None:
    report_main("python -m studies.mnist_decoders.report", first_paragraph(__doc__), write_report,
                "the study's output folder (train/<decoder> and eval/<decoder>/<point> runs)",
                "where results.csv/.md go", argv)


if __name__ == "__main__":
    main()
