"""GLS evaluation of a trained MNIST codec: weight bound, output schema, bad checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

import dsc
from dsc.eval.mnist import MnistRateDistortion, PosteriorLogRatio
from dsc.lit.train import run_training
from dsc.models.mnist import Posterior

ROOT = Path(__file__).resolve().parent.parent
TINY = ["model.channels=8", "model.hidden=32", "model.features=16", "model.estimator_hidden=32",
        "data.limit=96", "data.batch_size=32", "trainer.max_epochs=1", "logger=none", "device=cpu"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=TINY + [f"paths.output_dir={out}"])
    run_training(cfg)
    return out / "checkpoints" / "last.ckpt"


def test_encoder_log_weight_maximum_is_attained_and_never_exceeded():
    torch.manual_seed(0)
    posterior = Posterior(torch.randn(5, 4, dtype=torch.float64), torch.rand(5, 4, dtype=torch.float64).log() - 0.1)
    ratio = PosteriorLogRatio(posterior)
    top = ratio.maximum()
    w = torch.randn(5, 20000, 4, dtype=torch.float64) * 2
    assert (ratio(w) <= top[:, None] + 1e-9).all()
    argmax = posterior.mean / (1 - posterior.log_var.exp())
    assert torch.allclose(ratio(argmax[:, None, :])[:, 0], top)
    wide = PosteriorLogRatio(Posterior(torch.zeros(1, 2), torch.tensor([[0.5, -1.0]])))
    assert wide.maximum().item() == float("inf")  # var > 1 in one dim: unbounded, no early stop


@pytest.mark.parametrize("scheme", ["gls", "shared_randomness"])
def test_evaluation_point_schema(checkpoint, tmp_path, scheme):
    job = MnistRateDistortion(ckpt_path=str(checkpoint), scheme=scheme, num_decoders=3, rate_bits=2,
                              num_candidates=64, limit=120, batch_size=50, progress=False)
    (point,) = job.run(seed=0, device=torch.device("cpu"), output_dir=tmp_path)
    assert point["digits"] == 120 and point["scheme"] == scheme and point["crop_size"] == 7
    assert 0 <= point["mse"] <= point["per_decoder_mse"] <= 1
    assert 0 <= point["match_prob"] <= 1 and "embedded" in point["data"]


def test_bad_checkpoints_and_settings_are_clear_errors(tmp_path):
    with pytest.raises(dsc.DscError, match="does not exist"):
        MnistRateDistortion(ckpt_path=str(tmp_path / "missing.ckpt")).run(0, torch.device("cpu"), tmp_path)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"weight": torch.zeros(2)}}, foreign)
    with pytest.raises(dsc.DscError, match="not a checkpoint of the MNIST codec"):
        MnistRateDistortion(ckpt_path=str(foreign)).run(0, torch.device("cpu"), tmp_path)
    with pytest.raises(dsc.DscError, match="L_max"):
        MnistRateDistortion(ckpt_path="x", num_candidates=8, rate_bits=4)
    with pytest.raises(dsc.DscError, match="split"):
        MnistRateDistortion(ckpt_path="x", split="train")


def test_mnist_points_are_tabulated_by_mse():
    from dsc.eval.aggregate import markdown_tables

    points = [{"scheme": s, "num_decoders": k, "rate_bits": r, "num_candidates": 128, "mse": 0.1 / k + r / 100}
              for s in ("gls", "shared_randomness") for k in (1, 2) for r in (2, 3)]
    tables = markdown_tables(points)
    assert "MSE per pixel" in tables and "| 2 | 0.0700 (128) | 0.0800 (128) |" in tables
