"""The Gaussian experiment: source, analytic model (closed forms checked by simulation), the
paper's protocol and metrics, fidelity against paper Table 10, sweeps and aggregation."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import dsc
from dsc.coding import CounterRandomness
from dsc.eval.gaussian import GaussianRateDistortion, practical_totals, trial_totals
from dsc.models.gaussian import AnalyticGaussianModel
from dsc.report.sweep import aggregate
from dsc.sources.gaussian import GaussianSource
from tests._stats import Z

ROOT = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")

# Paper Table 10 (GLS, mean of per-trial dB, best of K) at the s2 the paper chose most often.
PAPER_TABLE_10 = {
    (1, 1): (-9.70, 0.008), (2, 3): (-21.70, 0.002), (3, 6): (-33.15, 0.001), (4, 2): (-23.94, 0.001)
}


def test_source_has_the_stated_law_and_is_keyed_by_message():
    source = GaussianSource(0.5)
    rng = CounterRandomness(3)
    draw = source.sample(rng, torch.arange(200_000), 3)
    a, t = draw.source, draw.side_info
    n = a.shape[0]
    assert abs(a.var().item() - 1) < Z * math.sqrt(2 / n)
    noise = t - a[:, None]
    assert abs(noise.var().item() - 0.5) < Z * 0.5 * math.sqrt(2 / (3 * n))
    corr = torch.corrcoef(noise.T)
    assert (corr - torch.eye(3, dtype=corr.dtype)).abs().max() < Z / math.sqrt(n)
    part = source.sample(rng, torch.arange(1000, 1010), 3)
    assert torch.equal(part.source, a[1000:1010]) and torch.equal(part.side_info, t[1000:1010])


def test_model_closed_forms_match_simulation():
    """E[W|T], var(W|T) and the MMSE error of E[A|W,T] against direct simulation."""
    s2, noise_var, n = 0.01, 0.5, 400_000
    model = AnalyticGaussianModel(s2, noise_var)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, generator=g, dtype=torch.float64)
    t = a + math.sqrt(noise_var) * torch.randn(n, generator=g, dtype=torch.float64)
    w = a + math.sqrt(s2) * torch.randn(n, generator=g, dtype=torch.float64)
    slope = ((w * t).mean() / (t * t).mean()).item()
    assert slope == pytest.approx(1 / 1.5, abs=Z * math.sqrt(model.decoder_var / (1.5 * n)))
    residual = w - model.decoder_mean(t)
    assert residual.var().item() == pytest.approx(model.decoder_var, rel=Z * math.sqrt(2 / n))
    mmse = 1 / (1 + 1 / s2 + 1 / noise_var)
    error = (a - model.reconstruct(w, t)) ** 2
    assert error.mean().item() == pytest.approx(mmse, rel=Z * math.sqrt(2 / n))
    assert model.prior_var == 1 + s2 and model.decoder_var == pytest.approx(1 / 3 + s2)


def test_trial_metrics_against_hand_computed_values():
    source = torch.tensor([0.0, 1.0], dtype=torch.float64)
    recon = torch.tensor([[0.1, 0.3], [1.0, 0.8]], dtype=torch.float64)  # errors .01,.09 / 0,.04
    totals = trial_totals(source, recon, torch.tensor([True, False])).summary()
    tiny_db = 10 * math.log10(torch.finfo(torch.float64).tiny)  # the guarded log 0
    assert totals["distortion_db"] == pytest.approx((-20 + tiny_db) / 2)
    assert totals["mse_db"] == pytest.approx(10 * math.log10(0.005))
    assert totals["per_decoder_mse_db"] == pytest.approx(10 * math.log10((0.05 + 0.02) / 2))
    assert totals["match_prob"] == 0.5


def test_practical_selection_metrics_against_hand_computed_values():
    source = torch.tensor([0.0, 1.0], dtype=torch.float64)
    recon = torch.tensor([[0.1, 0.3], [1.0, 0.8]], dtype=torch.float64)
    fallback = torch.tensor([[0.5, -0.5], [0.0, 2.0]], dtype=torch.float64)
    accepted = torch.tensor([[False, True], [False, False]])
    wrong = torch.tensor([[False, True], [True, True]])
    base = trial_totals(source, recon, torch.tensor([True, False]))
    totals = practical_totals(base, source, recon, fallback, accepted, wrong).summary()
    # outputs: trial 0 -> (0.5, 0.3), any-pass takes decoder 1 (0.3); trial 1 -> (0.0, 2.0), none
    # passes, decoder 0's fallback (0.0)
    assert totals["practical_mse_db"] == pytest.approx(10 * math.log10((0.09 + 1.0) / 2))
    assert totals["per_decoder_practical_mse_db"] == pytest.approx(10 * math.log10(((0.25 + 0.09) / 2 + 1.0) / 2))
    assert totals["accept_rate"] == 0.25 and totals["false_accept_rate"] == pytest.approx(1 / 3)
    assert totals["mse_db"] == base.summary()["mse_db"]  # the oracle figures are untouched


def test_check_bits_catch_wrong_picks_at_the_rate_they_should():
    """c = 3: a wrong pick passes with probability 1/8 (4.5 binomial standard errors); without
    check bits nothing is checked, and the point has no practical-selection figures."""
    def point(c):
        job = GaussianRateDistortion(num_decoders=4, rate_bits=2, num_candidates=512, trials=3000,
                                     test_channel_variances=[0.005], check_bits=c, progress=False)
        return job.run(seed=0, device=torch.device("cpu"), output_dir=None)[0]

    plain, checked = point(0), point(3)
    practical = ("practical_mse_db", "per_decoder_practical_mse_db", "accept_rate", "false_accept_rate")
    assert not [key for key in plain if key.startswith(practical)]
    assert all(key in checked and f"{key}_se" in checked for key in practical)
    wrong = checked["trials"] * 4 * (1 - checked["accept_rate"]) / (1 - 1 / 8)  # about the wrong picks
    assert abs(checked["false_accept_rate"] - 1 / 8) < Z * math.sqrt((1 / 8) * (7 / 8) / wrong)
    assert checked["total_rate_bits"] == 5 and checked["check_bits"] == 3
    assert (plain["selection_metric"], checked["selection_metric"]) == ("distortion_db", "practical_mse_db")
    assert checked["mse_db"] == pytest.approx(plain["mse_db"])  # the picks themselves do not change
    with pytest.raises(dsc.ConfigError, match="check_bits"):
        GaussianRateDistortion(check_bits=40)
    with pytest.raises(dsc.ConfigError, match="needs check bits"):
        GaussianRateDistortion(select_by="practical_mse_db")


@pytest.mark.parametrize("point", sorted(PAPER_TABLE_10))
def test_reduced_fidelity_against_paper_table_10(point):
    """GLS at the paper's N = 2^15 and its chosen s2, 6,000 trials: within 0.3 dB of Table 10
    plus 4.5 standard errors of our estimate (about 0.1 dB each)."""
    (k, rate), (paper_db, s2) = point, PAPER_TABLE_10[point]
    job = GaussianRateDistortion(num_decoders=k, rate_bits=rate, trials=6000,
                                 test_channel_variances=[s2], progress=False)
    result = job.run(seed=0, device=CPU, output_dir=Path("."))[0]
    assert abs(result["distortion_db"] - paper_db) <= 0.3 + Z * result["distortion_db_se"], result


def test_protocol_selects_the_best_s2_and_evaluates_on_fresh_trials():
    job = GaussianRateDistortion(num_decoders=2, rate_bits=2, num_candidates=1024, trials=300,
                                 selection_trials=300, test_channel_variances=[0.05, 0.002],
                                 repetitions=2, progress=False)
    point = job.run(seed=1, device=CPU, output_dir=Path("."))[0]
    for selection, chosen in zip(point["selection_distortion_db"], point["s2_per_repetition"]):
        assert chosen == min(selection, key=selection.get)
    assert point["se_over"] == "repetitions" and point["distortion_db_se"] >= 0
    # same size, one s2 and the selection trials' ids would reproduce the selection score exactly
    s2 = point["s2_per_repetition"][0]
    replay = job.simulate(s2, 1, job._first_message(0, 0), 300, CPU, "replay").distortion_db
    assert replay == pytest.approx(point["selection_distortion_db"][0][s2])
    fresh = job.simulate(s2, 1, job._first_message(0, 1), 300, CPU, "fresh").distortion_db
    assert fresh != replay


def test_gls_beats_the_baseline_and_k1_schemes_coincide():
    common = dict(rate_bits=2, num_candidates=2048, trials=1500, test_channel_variances=[0.002], progress=False)
    results = {}
    for scheme in ("gls", "shared_randomness"):
        for k in (1, 4):
            job = GaussianRateDistortion(scheme=scheme, num_decoders=k, **common)
            results[scheme, k] = job.run(seed=0, device=CPU, output_dir=Path("."))[0]
    assert results["gls", 1]["distortion_db"] == results["shared_randomness", 1]["distortion_db"]
    gap = results["shared_randomness", 4]["distortion_db"] - results["gls", 4]["distortion_db"]
    assert gap > Z * math.hypot(results["gls", 4]["distortion_db_se"],
                                results["shared_randomness", 4]["distortion_db_se"])
    assert results["gls", 4]["match_prob"] >= 1 - results["gls", 4]["prop4_error_bound"] - 0.05


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(scheme="bogus"), "scheme"),
        (dict(rate_bits=0), "rate_bits"),
        (dict(num_decoders=0), "num_decoders"),
        (dict(test_channel_variances=[]), "empty"),
        (dict(test_channel_variances=[0.01, -1.0]), "> 0"),
        (dict(num_candidates=8, rate_bits=4), "L_max"),
        (dict(noise_var=0.0), "noise"),
    ],
)
def test_bad_configuration_fails_before_any_work(kwargs, match):
    with pytest.raises(dsc.DscError, match=match):
        GaussianRateDistortion(**kwargs)


def test_multirun_sweep_writes_results_csv_and_rd_plot(tmp_path):
    run = subprocess.run(
        [sys.executable, "evaluate.py", "-m", "experiment=gaussian_demo", "num_candidates=256", "job.trials=100",
         "job.selection_trials=50", "num_decoders=1,2", "rate_bits=1,2", "device=cpu", f"hydra.sweep.dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "results.csv" in run.stderr + run.stdout and "rd_plot.png" in run.stderr + run.stdout
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    measured = [r for r in rows if not r["scheme"].endswith("_bound")]
    assert sorted((r["scheme"], r["num_decoders"], r["rate_bits"]) for r in measured) == sorted(
        (s, k, r) for s in ("gls", "shared_randomness") for k in ("1", "2") for r in ("1", "2"))
    for column in ("distortion_db", "mse_db", "per_decoder_mse_db", "match_prob", "prop4_error_bound", "s2",
                   "trials", "num_candidates", "distortion_db_se"):
        assert all(r[column] != "" for r in measured), column
    bounds = {r["rate_bits"]: float(r["mse_db"]) for r in rows if r["scheme"] == "wyner_ziv_bound"}
    assert bounds == pytest.approx({"1": 10 * math.log10(2 ** -2 / 3), "2": 10 * math.log10(2 ** -4 / 3)})
    no_side_info = {r["rate_bits"]: float(r["mse_db"]) for r in rows if r["scheme"] == "no_side_information_bound"}
    assert no_side_info == pytest.approx({"1": -6.0206, "2": -12.0412}, abs=1e-4)
    assert (tmp_path / "rd_plot.png").read_bytes().startswith(b"\x89PNG")
    tables = (tmp_path / "results.md").read_text()
    assert tables.count("| K \\ R bits | 1 | 2 |") == 4  # distortion_db and mse_db, two schemes
    assert "**shared_randomness**" in tables and "(s2 0.0" in tables
    metrics = json.loads((tmp_path / "0" / "metrics.json").read_text())
    assert metrics["environment"]["device"] == "cpu" and metrics["config"]["num_candidates"] == 256
    # the aggregation step also runs on an existing sweep directory, giving the same table
    before = (tmp_path / "results.csv").read_bytes()
    aggregate(tmp_path)
    assert (tmp_path / "results.csv").read_bytes() == before


def test_aggregating_an_empty_directory_is_a_clear_error(tmp_path):
    with pytest.raises(dsc.DscError, match="no metrics.json"):
        aggregate(tmp_path)
