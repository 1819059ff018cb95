"""MNIST codec networks and training: shapes, closed forms against torch.distributions, the
estimator learning to rank joint above shuffled pairs, training through the real configs,
checkpoint round trip and resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from hydra import compose, initialize_config_module

import dsc
from dsc.lit.image_module import ImageCodecModule
from dsc.lit.train import run_training
from dsc.models.image_codec import ImageCodecNetworks, Posterior
from dsc.sources.datamodules import MnistDataModule

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(channels=8, hidden=32, features=16, estimator_hidden=32)
TINY_OVERRIDES = [f"model.{k}={v}" for k, v in TINY.items()] + [
    "data.limit=96", "data.batch_size=32", "trainer.max_epochs=1", "logger=csv", "device=cpu"]


def test_network_shapes():
    nets = ImageCodecNetworks(latent_dim=4, side_shape=(1, 7, 7), **TINY)
    source, crop = torch.rand(5, 1, 28, 14) * 2 - 1, torch.rand(5, 1, 7, 7)
    posterior = nets.encoder(source)
    assert posterior.mean.shape == (5, 4) and posterior.log_var.shape == (5, 4)
    out = nets.decoder(posterior.sample(), nets.projection(crop))
    assert out.shape == (5, 1, 28, 14) and out.abs().max() <= 1
    assert nets.estimator(torch.randn(5, 11, 4), crop).shape == (5, 11)
    big = ImageCodecNetworks(side_shape=(1, 14, 14), **TINY)
    assert big.estimator(torch.randn(2, 3, 4), torch.rand(2, 1, 14, 14)).shape == (2, 3)


def test_estimator_split_first_layer_equals_the_plain_network():
    """``logits(w, crop_bias(t))`` is the MLP on the concatenation [w, projection(t)], for one
    crop per digit and for K crops per digit."""
    torch.manual_seed(0)
    estimator = ImageCodecNetworks(latent_dim=4, side_shape=(1, 7, 7), **TINY).estimator
    w, crops = torch.randn(3, 5, 4), torch.rand(3, 2, 1, 7, 7)

    def plain(w, crop):  # [B, n, d], [B, 1, c, c] -> [B, n]
        features = estimator.projection(crop)[:, None, :].expand(-1, w.shape[1], -1)
        return estimator.net(torch.cat([w, features], dim=-1)).squeeze(-1)

    with torch.no_grad():
        assert torch.allclose(estimator(w, crops[:, 0]), plain(w, crops[:, 0]), atol=1e-5)
        both = estimator.logits(w, estimator.crop_bias(crops))
        assert both.shape == (3, 2, 5)
        for k in range(2):
            assert torch.allclose(both[:, k], plain(w, crops[:, k]), atol=1e-5)


def test_posterior_closed_forms_match_torch_distributions():
    mean, log_var = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    posterior = Posterior(mean, log_var)
    normal = torch.distributions.Normal(mean, (0.5 * log_var).exp())
    reference = torch.distributions.kl_divergence(normal, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(posterior.kl_to_standard_normal(), reference)
    w = torch.randn(6, 9, 4, dtype=torch.float64)
    assert torch.allclose(posterior.log_prob(w), normal.log_prob(w.transpose(0, 1)).sum(-1).T)


@pytest.fixture(scope="module")
def small_data():
    module = MnistDataModule(num_decoders=1, crop_size=14, batch_size=64, limit=3000, seed=0)
    module.setup()
    return module


def test_estimator_ranks_joint_pairs_above_shuffled_pairs_on_held_out_digits(small_data):
    """With a w that carries the digit (a fixed projection of the right half), the estimator
    learns from the BCE objective to tell joint (w, crop) pairs from shuffled ones on held-out
    digits: chance is 0.5 with a standard error of about 0.01 over 3,000 digits."""
    torch.manual_seed(0)
    module = ImageCodecModule(**{**TINY, "features": 32, "estimator_hidden": 64}, crop_size=14)
    projection = torch.randn(28 * 14, 4) / 10

    def latent(batch):
        return batch.source.flatten(1) @ projection

    optimizer = torch.optim.Adam(module.nets.estimator.parameters(), lr=3e-3)
    for _ in range(5):
        for batch in small_data.train_dataloader():
            optimizer.zero_grad()
            module.estimator_bce(latent(batch), batch.side_info[:, 0])[0].backward()
            optimizer.step()
    module.eval()
    with torch.no_grad():
        accuracies = [module.estimator_bce(latent(b), b.side_info[:, 0])[1].item() for b in small_data.val_dataloader()]
    assert sum(accuracies) / len(accuracies) > 0.6


def compose_train(overrides):
    with initialize_config_module("dsc.conf", version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def test_training_through_the_real_configs_checkpoints_and_resumes(tmp_path):
    metrics = run_training(compose_train(TINY_OVERRIDES + [f"paths.output_dir={tmp_path}"]))
    assert {"val/loss", "train/loss_epoch"} <= set(metrics)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert last.is_file() and (tmp_path / "checkpoints" / "best.ckpt").is_file()
    saved = json.loads((tmp_path / "run_config.json").read_text())
    assert saved["config"]["model"]["channels"] == 8 and saved["environment"]["device"] == "cpu"
    hparams = yaml.safe_load(next((tmp_path / "csv").rglob("hparams.yaml")).read_text())
    assert hparams["model"]["channels"] == 8 and hparams["trainer"]["max_epochs"] == 1  # the resolved run config
    assert hparams["data"]["limit"] == 96 and hparams["seed"] == saved["config"]["seed"]
    summary = json.loads((tmp_path / "train_summary.json").read_text())
    assert summary["epochs"] == 1 and summary["batch_size"] == 32 and summary["seconds_per_epoch"] > 0
    assert summary["best_checkpoint"].endswith("best.ckpt") and "val/loss" in summary["metrics"]

    # round trip: the loaded model gives identical outputs
    state = torch.load(last, weights_only=True, map_location="cpu")
    loaded = ImageCodecModule.load_from_checkpoint(last, map_location="cpu").eval()
    fresh = ImageCodecModule(**TINY, crop_size=7).eval()
    fresh.load_state_dict(state["state_dict"])
    source, crop = torch.rand(3, 1, 28, 14) * 2 - 1, torch.rand(3, 1, 7, 7)
    with torch.no_grad():
        a = loaded.nets.decoder(loaded.nets.encoder(source).mean, loaded.nets.projection(crop))
        b = fresh.nets.decoder(fresh.nets.encoder(source).mean, fresh.nets.projection(crop))
    assert torch.equal(a, b)

    # resume for a second epoch from last.ckpt
    resumed = tmp_path / "resumed"
    run_training(compose_train(TINY_OVERRIDES + [f"paths.output_dir={resumed}", "trainer.max_epochs=2",
                                                  f"ckpt_path={last}"]))
    assert torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1
    assert json.loads((resumed / "train_summary.json").read_text())["epochs"] == 1  # only the new one


def test_last_ckpt_holds_the_final_epoch_even_when_best_does_not_improve(tmp_path):
    """A validation loss that rises every epoch keeps best.ckpt at the first epoch; last.ckpt
    must still hold the final one (resuming from it must not replay epochs)."""
    import lightning as L

    class RisingValLoss(L.Callback):  # runs before the checkpoint callbacks, which Lightning puts last
        def on_validation_end(self, trainer, module):
            trainer.callback_metrics["val/loss"] = torch.tensor(float(trainer.current_epoch))

    run_training(compose_train(TINY_OVERRIDES + [f"paths.output_dir={tmp_path}", "trainer.max_epochs=3"]),
                 extra_callbacks=[RisingValLoss()])
    epoch = {name: torch.load(tmp_path / "checkpoints" / f"{name}.ckpt", weights_only=True)["epoch"]
             for name in ("best", "last")}
    assert epoch == {"best": 0, "last": 2}


def test_bad_training_input_is_a_clear_error(tmp_path):
    with pytest.raises(dsc.DscError, match="ckpt_path"):
        run_training(compose_train(TINY_OVERRIDES + [f"paths.output_dir={tmp_path}", "ckpt_path=/no/such.ckpt"]))
    with pytest.raises(dsc.DscError, match="crop_size"):
        run_training(compose_train(TINY_OVERRIDES + [f"paths.output_dir={tmp_path}", "source.crop_size=15"]))


def test_a_non_finite_loss_stops_with_a_clear_error():
    from dsc.sources.images import ImageItem

    module = ImageCodecModule(**TINY)
    batch = ImageItem(torch.full((4, 1, 28, 14), float("nan")), torch.rand(4, 1, 1, 7, 7), torch.arange(4))
    with pytest.raises(dsc.TrainingDivergedError, match="not finite"):
        module.training_step(batch, 0)


def test_a_non_finite_loss_on_an_accelerator_stops_within_the_check_interval(monkeypatch, tmp_path):
    """On a GPU the flag is read every CHECK_EVERY_STEPS steps and before a checkpoint is written."""
    from dsc.lit.divergence import CHECK_EVERY_STEPS, FiniteLossGuard

    monkeypatch.setattr(FiniteLossGuard, "defers_loss_checks", staticmethod(lambda loss: True))
    module = ImageCodecModule(**TINY)
    step = {"now": 1}
    monkeypatch.setattr(ImageCodecModule, "global_step", property(lambda self: step["now"]))
    module.check_loss(torch.tensor(float("nan")), "train")  # step 1: recorded, not read
    for step["now"] in range(2, CHECK_EVERY_STEPS):
        module.check_loss(torch.tensor(1.0), "train")
    with pytest.raises(dsc.TrainingDivergedError, match="between steps 1 and"):
        module.on_save_checkpoint({})  # a checkpoint is never written from NaN weights
    module.check_loss(torch.tensor(float("inf")), "train")
    step["now"] = CHECK_EVERY_STEPS * 2
    with pytest.raises(dsc.TrainingDivergedError, match="not finite"):
        module.check_loss(torch.tensor(1.0), "train")  # the periodic read
    module.check_loss(torch.tensor(1.0), "train")  # a finite run is never stopped
    module.on_train_epoch_end()
    with pytest.raises(dsc.TrainingDivergedError, match="val loss"):
        module.check_loss(torch.tensor(float("nan")), "val")  # validation: at once


def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does(tmp_path):
    """Two epochs straight vs one epoch, then a resume from last.ckpt for the second: same
    weights bit for bit (data order keyed by epoch, random state saved with the checkpoint)."""
    quiet = TINY_OVERRIDES + ["logger=none", "trainer.enable_progress_bar=false"]
    run_training(compose_train(quiet + [f"paths.output_dir={tmp_path / 'straight'}", "trainer.max_epochs=2"]))
    run_training(compose_train(quiet + [f"paths.output_dir={tmp_path / 'first'}", "trainer.max_epochs=1"]))
    run_training(compose_train(quiet + [f"paths.output_dir={tmp_path / 'resumed'}", "trainer.max_epochs=2",
                                        f"ckpt_path={tmp_path / 'first' / 'checkpoints' / 'last.ckpt'}"]))
    straight, resumed = (torch.load(tmp_path / run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
                         for run in ("straight", "resumed"))
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[name], resumed[name]) for name in straight)


def test_epoch_shuffle_is_a_permutation_keyed_by_seed_and_epoch():
    from dsc.sources.epochs import EpochShuffle

    sampler = EpochShuffle(50, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(50)) and list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first and sorted(sampler) == list(range(50))
    assert list(EpochShuffle(50, seed=4)) != first
