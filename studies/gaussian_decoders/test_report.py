"""The Gaussian decoders report: rows of both sweeps, the side information alone against its
closed form, and a clear error without runs."""

from __future__ import annotations

import csv
import json
import math

import pytest

from dsc.errors import DscError
from studies.gaussian_decoders.report import SIDE_INFO_SAMPLES, side_info_only_mse, write_report


def fake_sweep(root, estimate=None, nested=False):
    job = root / ("nested" if nested else "gls") / (estimate or "0")
    job.mkdir(parents=True)
    points = [{"scheme": "nested_scalar" if nested else "gls_mse", "num_decoders": k, "rate_bits": r,
               "mse_db": -3.0 * r - k, "mse_db_se": 0.2, "num_candidates": 4096, "trials": 2000, "noise_var": 0.5,
               **({} if nested else {"estimate": estimate, "s2": 0.01}),
               **({"posterior_draws": 256} if estimate == "bayes" else {})} for k in (1, 4) for r in (1, 2)]
    (job / "metrics.json").write_text(json.dumps({"points": points}))


def test_rows_hold_every_decoder_and_the_bounds(tmp_path):
    for estimate in ("pick", "bayes"):
        fake_sweep(tmp_path / "runs", estimate)
    fake_sweep(tmp_path / "runs", nested=True)
    write_report(tmp_path / "runs", tmp_path / "results")
    rows = list(csv.DictReader((tmp_path / "results" / "results.csv").open()))
    assert {r["decoder"] for r in rows} == {"pick", "bayes", "nested_scalar", "side_info_only", "wyner_ziv"}
    assert len(rows) == 4 * 5  # 2 K x 2 rates per decoder
    bayes = next(r for r in rows if r["decoder"] == "bayes" and r["num_decoders"] == "4" and r["rate_bits"] == "2")
    assert float(bayes["mse_db"]) == -10.0 and bayes["posterior_draws"] == "256"
    wyner_ziv = next(r for r in rows if r["decoder"] == "wyner_ziv" and r["rate_bits"] == "2")
    assert float(wyner_ziv["mse_db"]) == pytest.approx(10 * math.log10(1 / 3 / 16))
    text = (tmp_path / "results" / "results.md").read_text()
    assert "## K = 4" in text and "| bayes | -7.00 ± 0.20 (s2 0.01) | -10.00 ± 0.20 (s2 0.01) |" in text
    assert (tmp_path / "results" / "rd_plot.png").stat().st_size > 0


def test_side_information_alone_matches_its_closed_form_at_one_decoder():
    """K = 1: E[(A - T / (1 + v))^2] = v / (1 + v); the Monte Carlo value is within 4 of its
    standard errors, and more decoders (best of K) do better."""
    mse, se = side_info_only_mse(1, 0.5)
    assert abs(mse - 1 / 3) < 4 * se and se < 1e-3 and SIDE_INFO_SAMPLES >= 10**6
    assert side_info_only_mse(4, 0.5)[0] < side_info_only_mse(2, 0.5)[0] < mse


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(DscError, match="no finished gls/ or nested/ sweep"):
        write_report(tmp_path / "none", tmp_path / "results")
