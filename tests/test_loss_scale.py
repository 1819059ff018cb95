"""The MNIST loss's distortion normalisation, training precision and epoch snapshots: closed
forms, the real configs, and clear errors for bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module

import dsc
from dsc.eval.image_point import load_codec
from dsc.lit.checkpoint import CheckpointMismatchError
from dsc.lit.image_module import ImageCodecModule
from dsc.lit.train import run_training
from dsc.models.distortion import NORMALISATIONS, distortion, equivalent_beta

ROOT = Path(__file__).resolve().parent.parent
TINY = ["model.channels=8", "model.hidden=32", "model.features=16", "model.estimator_hidden=32", "data.limit=96",
        "data.batch_size=32", "logger=none", "device=cpu", "trainer.enable_progress_bar=false"]


def compose_train(overrides):
    with initialize_config_module("dsc.conf", version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def test_normalisations_against_hand_computed_sums():
    """A reconstruction off by 0.5 on the [-1, 1] scale at every one of 392 pixels: squared
    error 0.25 per pixel on [-1, 1], 0.0625 on [0, 1]."""
    target = torch.zeros(3, 1, 28, 14)
    recon = target + 0.5
    expected = {"sum_pm1": 392 * 0.25, "sum_01": 392 * 0.0625, "mean_pm1": 0.25, "mean_01": 0.0625}
    for name, value in expected.items():
        got = distortion(recon, target, name)
        assert got.shape == (3,) and torch.allclose(got, torch.full((3,), value))
    assert set(expected) == set(NORMALISATIONS)
    # bfloat16 inputs are measured in float32
    assert distortion(recon.bfloat16(), target.bfloat16(), "sum_01").dtype == torch.float32


def test_equivalent_betas_are_the_loss_ratios():
    """beta under one normalisation and equivalent_beta under sum_01 give proportional losses
    (the same optimum): (D_name + beta KL) = c (D_sum01 + beta' KL) for one constant c."""
    recon, target = torch.rand(4, 1, 28, 14) * 2 - 1, torch.rand(4, 1, 28, 14) * 2 - 1
    kl = torch.rand(4)
    base = distortion(recon, target, "sum_01")
    for name in NORMALISATIONS:
        beta = 0.35
        ratio = distortion(recon, target, name) / base
        assert torch.allclose(ratio, ratio[0].expand(4))  # a constant factor per normalisation
        loss = distortion(recon, target, name) + beta * kl
        reference = base + equivalent_beta(beta, name) * kl
        assert torch.allclose(loss / reference, ratio, rtol=1e-5)
    assert math.isclose(equivalent_beta(0.15, "mean_pm1", reference="sum_pm1"), 58.8)  # the figure
    assert math.isclose(equivalent_beta(0.6, "sum_pm1"), 0.15)


def test_unknown_normalisation_and_precision_are_clear_errors(tmp_path):
    with pytest.raises(dsc.ConfigError, match="sum_01.*sum_pm1"):
        ImageCodecModule(distortion="rmse")
    with pytest.raises(dsc.ConfigError, match="distortion normalisation"):
        run_training(compose_train(TINY + [f"paths.output_dir={tmp_path}", "model.distortion=l1"]))
    with pytest.raises(dsc.ConfigError, match="bf16-mixed"):
        run_training(compose_train(TINY + [f"paths.output_dir={tmp_path}", "trainer.precision=bf15"]))


@pytest.mark.parametrize("normalisation", sorted(NORMALISATIONS))
def test_every_normalisation_composes_and_trains_one_batch(normalisation, tmp_path):
    metrics = run_training(compose_train(TINY + [f"paths.output_dir={tmp_path}", "trainer.fast_dev_run=true",
                                                 f"model.distortion={normalisation}"]))
    assert math.isfinite(metrics["val/loss"])
    saved = json.loads((tmp_path / "run_config.json").read_text())
    assert saved["config"]["model"]["distortion"] == normalisation


def test_bf16_mixed_trains_one_batch_on_the_cpu_with_float32_weights(tmp_path):
    """Plain overrides (no '+'): fast_dev_run and precision; the weights stay float32 and the
    reported per-pixel MSE of an untrained model is near the data's variance, not garbage."""
    run_training(compose_train(TINY + [f"paths.output_dir={tmp_path}", "trainer.max_epochs=1",
                                       "trainer.limit_train_batches=2", "trainer.precision=bf16-mixed"]))
    summary = json.loads((tmp_path / "train_summary.json").read_text())
    assert summary["precision"] == "bf16-mixed" and 0 < summary["metrics"]["val/mse"] < 1
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(t.dtype == torch.float32 for t in state.values())
    assert load_codec(tmp_path / "checkpoints" / "last.ckpt").trained_with == {
        "epochs": 1, "precision": "bf16-mixed", "device": "cpu"}


def test_epoch_snapshots_and_normalisation_checks_on_load(tmp_path):
    run_training(compose_train(TINY + [f"paths.output_dir={tmp_path}", "trainer.max_epochs=2",
                                       "checkpoint_every_n_epochs=1", "model.distortion=sum_pm1"]))
    snapshots = sorted(p.name for p in (tmp_path / "checkpoints").glob("epoch_*.ckpt"))
    assert snapshots == ["epoch_1.ckpt", "epoch_2.ckpt"]
    codec = load_codec(tmp_path / "checkpoints" / "epoch_1.ckpt", distortion="sum_pm1")
    assert codec.trained_with["epochs"] == 1 and codec.hparams.distortion == "sum_pm1"
    with pytest.raises(CheckpointMismatchError, match="sum_pm1.*not 'sum_01'"):
        load_codec(tmp_path / "checkpoints" / "epoch_2.ckpt", distortion="sum_01")
    with pytest.raises(dsc.ConfigError, match="unknown distortion normalisation"):
        load_codec(tmp_path / "checkpoints" / "epoch_2.ckpt", distortion="sum")


def test_a_checkpoint_from_before_the_option_loads_as_the_legacy_scale(tmp_path):
    """Checkpoints written before ``distortion`` existed were trained on the [-1, 1] sum: they
    load as sum_pm1, not as today's default, with their weights intact."""
    module = ImageCodecModule(channels=8, hidden=32, features=16, estimator_hidden=32)
    hparams = dict(module.hparams)
    del hparams["distortion"]
    old = tmp_path / "old.ckpt"
    torch.save({"hyper_parameters": hparams, "state_dict": module.state_dict(), "epoch": 4}, old)
    codec = load_codec(old)
    assert codec.hparams.distortion == "sum_pm1" and codec.trained_with["epochs"] == 5
    assert all(torch.equal(a, b) for a, b in zip(codec.state_dict().values(), module.state_dict().values()))
    with pytest.raises(CheckpointMismatchError):
        load_codec(old, distortion="sum_01")
