"""MNIST with other side information: the demo protocol's test results of one codec per kind
of side information (``crop``, ``noisy``, ...), side by side.

Reads ``RUNS/<run>/eval/metrics.json`` (``evaluate.py experiment=mnist_rd_demo``) and the
training record of each codec (``RUNS/<run>/train``: its side information and beta), and writes
into RESULTS ``results.csv`` (one row per run, scheme, K and rate) and ``results.md``::

    python -m studies.mnist_side_info.report outputs/mnist_side_info results/mnist_side_info
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from dsc.errors import DscError
from dsc.helptext import first_paragraph
from dsc.io import atomic_write_bytes
from dsc.report.tables import to_csv
from studies.report_cli import read_json, report_main

COLUMNS = ("run", "side_info", "noise_std", "scheme", "num_decoders", "rate_bits", "mse", "mse_se", "per_decoder_mse",
           "psnr_db", "ssim", "match_prob", "num_candidates", "beta", "epochs", "train_digits", "test_digits")


def _read_json(path: Path, what: str) -> dict:
    return read_json(path, what, "studies/mnist_side_info/run.sh")


def side_info_rows(runs: Path) -> list[dict]:
    """One row per (run, scheme, K, rate) of every ``runs/<run>/eval`` protocol run."""
    rows = []
    names = sorted(p.name for p in runs.iterdir() if (p / "eval").is_dir()) if runs.is_dir() else []
    if not names:
        raise DscError(f"{runs} holds no <run>/eval folders; run studies/mnist_side_info/run.sh first")
    for name in names:
        training = _read_json(runs / name / "train" / "train_summary.json", "the codec's training summary")
        config = _read_json(runs / name / "train" / "run_config.json", "the codec's training config")["config"]
        side = config["source"]
        for point in _read_json(runs / name / "eval" / "metrics.json", "the protocol's results")["points"]:
            rows.append({"run": name, "side_info": side["side_info"],
                         "noise_std": side["noise_std"] if side["side_info"] == "noisy" else None,
                         **{c: point.get(c) for c in COLUMNS[3:14]}, "epochs": training["epochs"],
                         "train_digits": config["data"]["limit"], "test_digits": point["digits"]})
    return sorted(rows, key=lambda r: (r["scheme"], r["num_decoders"], r["run"], r["rate_bits"]))


def side_info_table(rows: Sequence[dict], scheme: str = "gls") -> str:
    """Test MSE (match probability) per (K, run) and rate for ``scheme``; a run is named by its
    side information and beta."""
    chosen = [r for r in rows if r["scheme"] == scheme]
    rates = sorted({r["rate_bits"] for r in chosen})
    cells = {(r["num_decoders"], r["run"], r["rate_bits"]): r for r in chosen}
    label = {r["run"]: f"{r['side_info']}" + (f" (std {r['noise_std']:g})" if r["noise_std"] is not None else "")
             + f", beta {r['beta']:g}" for r in chosen}
    lines = ["| K | side information | " + " | ".join(f"{rate} bits" for rate in rates) + " |",
             "|---|---|" + "---|" * len(rates)]
    for k, run in sorted({(k, run) for k, run, _ in cells}):
        values = [cells.get((k, run, rate)) for rate in rates]
        lines.append(f"| {k} | {label[run]} | " + " | ".join(
            "" if v is None else f"{v['mse']:.4f} ({v['match_prob']:.2f})" for v in values) + " |")
    return "\n".join(lines) + "\n"


def write_report(runs: str | Path, results: str | Path) -> Path:
    """``results.csv`` and ``results.md`` of the runs under ``runs``; returns the results folder."""
    rows = side_info_rows(Path(runs))
    results = Path(results)
    atomic_write_bytes(results / "results.csv", to_csv(rows, COLUMNS))
    schemes = sorted({r["scheme"] for r in rows})
    first = rows[0]
    text = ["# MNIST with other side information", "",
            f"One codec per kind of side information, trained on the first {first['train_digits']} training "
            f"digits for {first['epochs']} epochs; the demo protocol (N chosen on "
            f"validation) on {first['test_digits']} test digits. Cells: best-of-K MSE per pixel (match "
            "probability). Produced by studies/mnist_side_info/run.sh.", ""]
    for scheme in schemes:
        text += [f"## {scheme}", "", side_info_table(rows, scheme)]
    atomic_write_bytes(results / "results.md", "\n".join(text).encode())
    return results


def main(argv: Sequence[str] | None = None) -> None:
    report_main("python -m studies.mnist_side_info.report", first_paragraph(__doc__), write_report,
                "the study's output folder (<kind>/train and <kind>/eval runs)", "where results.csv/.md go", argv)


if __name__ == "__main__":
    main()
