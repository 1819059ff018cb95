"""The report of one evaluation job, written into its own output directory after the job ran
(a sweep's report over many jobs is :mod:`dsc.report.sweep`).

``dsc-evaluate`` hands :func:`write_job_report` to :func:`dsc.eval.runner.run_evaluation`,
which calls it with the job and its points once the job has run (not for a job skipped as
complete), so that evaluation computes and reporting, one layer up, writes. The paper's MNIST
protocol (:class:`dsc.eval.image_protocol.ImageProtocol`) gets ``results.md`` (test tables,
with paper Tables 13 and 14 beside them for MNIST, and the BD-rate of each scheme against GLS
per K), ``bd_rate.csv`` (where there are BD-rate rows), ``results.csv`` (:data:`RESULTS_COLUMNS`)
and ``rd_plot.png``; other jobs write what they write themselves. Every file is written
atomically (:mod:`dsc.io`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dsc.eval.image_protocol import IMAGE_COLUMNS, ImageProtocol
from dsc.eval.points import to_csv
from dsc.io import atomic_write_bytes
from dsc.report.bdrate import BD_COLUMNS, bd_rate_rows, bd_rate_table
from dsc.report.paper_comparison import margin_table, paper_comparison_table
from dsc.report.plots import plot_rd
from dsc.report.tables import markdown_tables

RESULTS_COLUMNS = ("scheme", "num_decoders", "rate_bits", "mse", "mse_se", "num_candidates", "beta", "epochs",
                   "precision", "device", "distortion_normalisation", "per_decoder_mse", "match_prob", "digits",
                   "selection_mse", "selection_digits", "eval_device", *IMAGE_COLUMNS)


def write_job_report(job: Any, points: list[dict], device: torch.device, output_dir: Path) -> None:
    """The report of ``job`` (built from a config, run on ``device``) from the ``points`` it
    returned, into ``output_dir``: the protocol's files for an :class:`ImageProtocol`, nothing
    for other jobs."""
    if isinstance(job, ImageProtocol):
        write_protocol_report(points, output_dir, job.source, device)


def write_protocol_report(points: list[dict], output_dir: Path, source: str, eval_device: torch.device) -> None:
    """``results.md``, ``bd_rate.csv`` (where there are BD-rate rows), ``results.csv`` and
    ``rd_plot.png`` of the protocol's test ``points`` on ``source`` (the paper's tables are of
    MNIST: beside ``mnist`` only), evaluated on ``eval_device``."""
    bd_rows = bd_rate_rows(points)
    paper = [paper_comparison_table(points, "gls"), paper_comparison_table(points, "shared_randomness"),
             margin_table(points)] if source == "mnist" else []
    parts = [markdown_tables(points), *paper, bd_rate_table(bd_rows)]
    atomic_write_bytes(output_dir / "results.md", "\n".join(p for p in parts if p).encode())
    if bd_rows:
        atomic_write_bytes(output_dir / "bd_rate.csv", to_csv(bd_rows, BD_COLUMNS))
    atomic_write_bytes(output_dir / "results.csv", to_csv(results_rows(points, eval_device), RESULTS_COLUMNS))
    plot_rd(points, [], output_dir / "rd_plot.png")


def results_rows(points: list[dict], eval_device: torch.device) -> list[dict]:
    """The protocol's test points as ``results.csv`` rows (:data:`RESULTS_COLUMNS`): ``mse`` is
    the per-pixel best-of-K MSE on the [0, 1] scale, ``psnr_db`` / ``ssim`` the mean per-digit
    PSNR and SSIM of the same oracle decoder (:mod:`dsc.eval.image_metrics`); ``epochs``,
    ``precision`` and ``device`` say how the chosen checkpoint was trained."""
    rows = []
    for point in points:
        row = {**point, "epochs": point.get("trained_epochs"), "precision": point.get("trained_precision"),
               "device": point.get("trained_device"), "distortion_normalisation": point.get("distortion"),
               "eval_device": str(eval_device)}
        rows.append({column: row.get(column) for column in RESULTS_COLUMNS})
    return rows
