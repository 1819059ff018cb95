"""The loss-scale study's report, read from a synthetic study whose outcomes are known."""

from __future__ import annotations

import json

import pytest

import dsc
from dsc.paper import PAPER_MNIST_MSE
from studies.mnist_loss_scale.report import write_study


def test_the_study_report_from_a_synthetic_study(tmp_path):
    """The report reads the study's layout: training rows sorted by (normalisation, beta) with
    the beta converted, the protocol's choices against the paper, a verdict line each."""
    study = tmp_path / "study"
    for name, kl in (("sum_pm1", 14.0), ("sum_01", 6.0)):
        for beta in (0.35, 0.15):
            run = study / "train" / name / f"beta_{beta}"
            run.mkdir(parents=True)
            (run / "train_summary.json").write_text(json.dumps({
                "epochs": 2, "precision": "bf16-mixed", "seconds_per_epoch": 1.0,
                "metrics": {"val/kl": kl - beta, "val/mse": 0.02, "train/beta": beta / 2}}))
            (run / "run_config.json").write_text(json.dumps({"config": {"data": {"limit": 8000}}}))
        points = [{"scheme": scheme, "num_decoders": k, "rate_bits": r,
                   "mse": paper * (1.1 if name == "sum_pm1" else 0.9),
                   "mse_se": 1e-4, "beta": 0.15, "num_candidates": 128, "match_prob": 0.5, "digits": 2000}
                  for scheme in ("gls", "shared_randomness") for (k, r), paper in PAPER_MNIST_MSE[scheme].items()]
        (study / "rd" / name).mkdir(parents=True)
        (study / "rd" / name / "metrics.json").write_text(json.dumps({"points": points}))
    out = write_study(study, tmp_path / "results")
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0].startswith("distortion_normalisation,beta,beta_as_sum_01,beta_reached,kl_nats,val_mse")
    assert [r.split(",")[:3] for r in rows[1:]] == [["sum_01", "0.15", "0.15"], ["sum_01", "0.35", "0.35"],
                                                     ["sum_pm1", "0.15", "0.0375"], ["sum_pm1", "0.35", "0.0875"]]
    report = (out / "results.md").read_text()
    assert "| sum_01 | 0.35 | 0.35 | 0.175 | 5.65 | 0.0200 |" in report  # the warm-up stopped half way
    assert "| sum_01 | -10.0 to -10.0 % | 20 / 20 | 20 / 20 | 20 / 20 |" in report
    assert "| sum_pm1 | +10.0 to +10.0 % | 0 / 20 |" in report
    assert (out / "loss_scale.png").stat().st_size > 0 and len((out / "protocol.csv").read_text().splitlines()) == 81
    with pytest.raises(dsc.DscError, match="no finished training runs"):
        write_study(tmp_path / "empty", tmp_path / "nothing")
