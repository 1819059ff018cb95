"""The beta scan's report: per-beta rows against paper Table 13 from a protocol's cached
evaluations, checked on a synthetic protocol run whose MSEs are known multiples of the paper's."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

import dsc
from dsc.paper import PAPER_MNIST_BASELINE_MSE, PAPER_MNIST_GLS_MSE
from studies.mnist_beta_scan.report import scan_rows, scan_table, write_scan

COLUMNS = ["scheme", "num_decoders", "rate_bits", "num_candidates", "match_prob", "match_prob_se", "split", "beta",
           "ckpt_path", "ckpt_sha256", "seed", "limit", "digits", "mse", "mse_se", "per_decoder_mse", "decoder_mse"]


def fake_protocol(tmp_path: Path, factors: dict[float, float]) -> Path:
    """A protocol directory: for each beta a training run (KL = 10 * beta) and validation
    evaluations at N = 128 equal to factor x the paper's tables; distractor rows at N = 256 and
    on the test split that the scan must ignore."""
    rows = []
    for beta, factor in factors.items():
        run = tmp_path / "train" / f"beta_{beta}"
        run.mkdir(parents=True)
        (run / "train_summary.json").write_text(json.dumps(
            {"epochs": 3, "metrics": {"val/kl": 10 * beta, "val/mse": 0.03}}))
        ckpt = run / "checkpoints" / "best.ckpt"
        for scheme, table in (("gls", PAPER_MNIST_GLS_MSE), ("shared_randomness", PAPER_MNIST_BASELINE_MSE)):
            for (k, rate), paper in table.items():
                for split, n, value in (("val", 128, factor * paper), ("val", 256, 1.0), ("test", 128, 2.0)):
                    rows.append({"scheme": scheme, "num_decoders": k, "rate_bits": rate, "num_candidates": n,
                                 "match_prob": 0.5, "match_prob_se": 0.01, "split": split, "beta": beta,
                                 "ckpt_path": str(ckpt), "ckpt_sha256": "x", "seed": 0, "limit": 100, "digits": 100,
                                 "mse": value, "mse_se": 0.001, "per_decoder_mse": value, "decoder_mse": "[]"})
    protocol = tmp_path / "rd"
    protocol.mkdir()
    with (protocol / "evaluations.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return protocol


def test_rows_compare_each_beta_with_the_paper(tmp_path):
    protocol = fake_protocol(tmp_path, {0.5: 1.1, 2.0: 0.97})
    rows = scan_rows(protocol)
    assert len(rows) == 2 * 2 * 20  # two betas, two schemes, the paper's 20 points; distractors dropped
    for row in rows:
        factor = 1.1 if row["beta"] == 0.5 else 0.97
        assert math.isclose(row["relative_to_paper"], factor - 1, abs_tol=1e-12)
        assert row["kl_nats"] == 10 * row["beta"] and row["epochs"] == 3 and row["num_candidates"] == 128
    table = scan_table(rows).splitlines()
    assert len(table) == 4 and all(line.count("|") == table[0].count("|") for line in table)
    assert "| 0.5 | 3 | 5.00 | +10.0 to +10.0 % | 0 / 20 |" in table[2]
    assert "| 2 | 3 | 20.00 | -3.0 to -3.0 % | 20 / 20 |" in table[3]
    # both schemes scaled alike: the gain over the baseline is the paper's own, 4.3 to 15.2 %
    assert table[3].endswith("| 4.3 to 15.2 % |")


def test_write_scan_writes_data_and_plot(tmp_path):
    results = write_scan(fake_protocol(tmp_path, {0.15: 1.0, 0.95: 0.9}), tmp_path / "results")
    assert (results / "betas.png").stat().st_size > 0
    with (results / "betas.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 80


def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(dsc.DscError, match="evaluations.csv"):
        scan_rows(tmp_path)
    protocol = fake_protocol(tmp_path, {0.5: 1.0})
    with pytest.raises(dsc.DscError, match="N = 4096"):
        scan_rows(protocol, num_candidates=4096)
    (tmp_path / "train" / "beta_0.5" / "train_summary.json").unlink()
    with pytest.raises(dsc.DscError, match="train_summary.json"):
        scan_rows(protocol)
