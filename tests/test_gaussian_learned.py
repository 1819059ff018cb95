"""Learned GLS codecs for Gaussian sources: vector draws, the MLP codec trained through the real
configs, its estimator, the protocol that chooses operating points, the vector nested quantiser,
and clear errors for a checkpoint of another source."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module

import dsc
from dsc.coding import CounterRandomness
from dsc.eval.gaussian import GaussianRateDistortion
from dsc.eval.gaussian_nested import NestedQuantizerRateDistortion
from dsc.eval.source_protocol import SourceProtocol
from dsc.lit.gaussian_module import GaussianCodecModule
from dsc.lit.train import run_training
from dsc.sources.gaussian import GaussianSource, SourceBatch
from tests._stats import Z

ROOT = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")
SMALL = ["source=gaussian", "model=gaussian_mlp", "model.hidden=32", "model.estimator_hidden=32", "data.train_size=512",
         "data.val_size=256", "trainer.max_epochs=1", "logger=none", "device=cpu", "trainer.enable_progress_bar=false"]


def compose_train(overrides):
    with initialize_config_module("dsc.conf", version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def test_vector_draws_have_the_stated_law_and_extend_the_scalar_ones():
    source = GaussianSource(0.5)
    draw = source.sample_vectors(CounterRandomness(1), torch.arange(50_000), 2, 3)
    assert draw.source.shape == (50_000, 3) and draw.side_info.shape == (50_000, 2, 3)
    n = draw.source.numel()
    assert abs(draw.source.var().item() - 1) < Z * math.sqrt(2 / n)
    noise = draw.side_info - draw.source[:, None]
    assert abs(noise.var().item() - 0.5) < Z * 0.5 * math.sqrt(2 / noise.numel())
    corr = torch.corrcoef(torch.cat([draw.source, noise.flatten(1)], dim=1).T)
    assert (corr - torch.eye(9, dtype=corr.dtype)).abs().max() < Z / math.sqrt(50_000)
    scalar = source.sample(CounterRandomness(1), torch.arange(100), 2)
    one = source.sample_vectors(CounterRandomness(1), torch.arange(100), 2, 1)
    assert torch.equal(scalar.source, one.source[:, 0]) and torch.equal(scalar.side_info, one.side_info[..., 0])


@pytest.fixture(scope="module")
def gaussian_codec(tmp_path_factory):
    """A scalar codec trained for 6 short epochs through the real configs (its last.ckpt)."""
    out = tmp_path_factory.mktemp("gaussian_codec")
    run_training(compose_train(SMALL + [f"paths.output_dir={out}", "trainer.max_epochs=6", "data.train_size=4096",
                                        "model.beta=0.05", "model.kl_warmup_steps=20"]))
    return out / "checkpoints" / "last.ckpt"


def test_the_codec_trains_one_batch_from_the_real_configs_in_every_dimension(tmp_path):
    for dim in (1, 4):
        metrics = run_training(compose_train(SMALL + [f"paths.output_dir={tmp_path / str(dim)}", f"data.dim={dim}",
                                                      f"model.latent_dim={dim}", "trainer.fast_dev_run=true"]))
        assert math.isfinite(metrics["val/loss"])
    module = GaussianCodecModule(dim=4, latent_dim=2, hidden=16, estimator_hidden=16)
    batch = SourceBatch(torch.randn(8, 4), torch.randn(8, 1, 4), torch.arange(8))
    losses = module.losses(batch)
    assert losses["distortion"].item() == pytest.approx(4 * losses["mse"].item(), rel=1e-5)  # sum vs mean over 4


def test_the_estimator_ranks_true_pairs_above_shuffled_ones(gaussian_codec):
    """On fresh draws, the trained estimator scores each w with its own side information above
    w with another draw's: the pairwise ranking accuracy is far above chance (0.5, with a
    standard error of 0.005 over 10,000 pairs: the bar is 10 standard errors above it)."""
    from dsc.catalog.gaussian import learned_model

    model = learned_model(str(gaussian_codec), 0.5)
    draw = GaussianSource(0.5).sample_vectors(CounterRandomness(7), torch.arange(10_000), 1, 1)
    with torch.no_grad():
        w = model.nets.encoder(draw.source.float()).sample()[:, None, :]
        estimator = model.nets.estimator
        joint = estimator(w, draw.side_info[:, 0].float())[:, 0]
        shuffled = estimator(w, draw.side_info[:, 0].float().roll(1, 0))[:, 0]
    assert (joint > shuffled).float().mean() > 0.5 + 10 * 0.005


def test_the_protocol_reports_the_candidate_with_the_lowest_selection_metric(gaussian_codec):
    job = SourceProtocol("gaussian", candidates=[{"s2": 0.3}, {"s2": 0.01}], ckpt_paths=[str(gaussian_codec)],
                         num_decoders=[2], rate_bits=[2], num_candidates=256, messages=400, selection_messages=300,
                         method="gls_mixed", progress=False)
    (point,) = job.run(0, CPU, Path("."))
    scores = point["selection_scores"]
    assert set(scores) == {"s2 0.3", "s2 0.01", gaussian_codec.parent.parent.name}
    assert point["operating_point"] == min(scores, key=scores.get) and point["messages"] == 400
    assert point["method"] == "gls_mixed" and point["select_by"] == "mse_db" and point["dim"] == 1
    with pytest.raises(dsc.ConfigError, match="candidates is empty"):
        SourceProtocol("gaussian")
    with pytest.raises(dsc.ConfigError, match="select_by"):
        SourceProtocol("gaussian", candidates=[{"s2": 0.1}], select_by="psnr")
    with pytest.raises(dsc.ConfigError, match="needs check bits"):
        SourceProtocol("gaussian", candidates=[{"s2": 0.1}], select_by="practical_mse_db")


def test_a_checkpoint_of_another_source_or_noise_is_a_clear_error(gaussian_codec, tiny_codec):
    from dsc.catalog.gaussian import learned_model
    from dsc.eval.image_point import load_codec
    from dsc.lit.checkpoint import CheckpointMismatchError

    with pytest.raises(dsc.ConfigError, match="not a checkpoint of the image codec"):
        load_codec(gaussian_codec)
    with pytest.raises(dsc.ConfigError, match="not a checkpoint of a learned Gaussian codec"):
        learned_model(str(tiny_codec()), 0.5)
    with pytest.raises(CheckpointMismatchError, match="trained for side-information noise 0.5, not 0.25"):
        learned_model(str(gaussian_codec), 0.25)


def test_gls_choosing_s2_by_mse_takes_the_mse_argmin():
    job = GaussianRateDistortion(num_decoders=1, rate_bits=2, num_candidates=512, trials=500, selection_trials=800,
                                 test_channel_variances=[0.3, 0.01], select_by="mse_db", progress=False)
    s2, scores = job.select(0, 0, CPU)
    assert s2 == min(scores, key=scores.get) and job.scheme_label == "gls_mse"
    with pytest.raises(dsc.ConfigError, match="select_by"):
        GaussianRateDistortion(select_by="psnr")


def test_the_nested_quantiser_per_component_matches_the_scalar_one_at_one_decoder():
    """At K = 1 the d components are quantised and decoded independently, so the per-component
    MSE of d = 4 at 4 bits equals the scalar quantiser's at 1 bit (same step) up to sampling
    error; d must divide the rate."""
    scalar = NestedQuantizerRateDistortion(num_decoders=1, rate_bits=1, progress=False)
    vector = NestedQuantizerRateDistortion(num_decoders=1, rate_bits=4, dim=4, progress=False)
    step = scalar.step_for(4.0)
    assert vector.step_for(4.0) == step
    a = scalar.simulate(step, 0, 0, 40_000, CPU, None).summary()
    b = vector.simulate(step, 0, 0, 10_000, CPU, None).summary()
    assert abs(a["mse_db"] - b["mse_db"]) < Z * math.hypot(a["mse_db_se"], b["mse_db_se"])
    with pytest.raises(dsc.ConfigError, match="multiple of 4"):
        NestedQuantizerRateDistortion(rate_bits=6, dim=4)


def test_the_db_standard_error_matches_the_spread_of_simulated_means():
    """db_se(m, s) is the spread of 10 log10 of a mean that is normal with mean m and standard
    error s: measured on 200,000 draws (relative sampling error of a std about 0.2 %)."""
    from dsc.eval.stats import db_se

    gen = torch.Generator().manual_seed(0)
    for mean, se in ((0.33, 0.004), (2.0, 0.05)):
        draws = mean + se * torch.randn(200_000, generator=gen, dtype=torch.float64)
        spread = (10 * torch.log10(draws)).std().item()
        assert abs(db_se(mean, se) / spread - 1) < 0.02
    assert math.isnan(db_se(0.0, 0.1))


def test_evaluate_source_gaussian_with_a_checkpoint_codes_the_learned_codec(gaussian_codec):
    """`evaluate.py source=gaussian ckpt_path=...`: the job the real config builds is the learned
    codec through the generic pipeline job, equal to the same point asked of it directly."""
    from dsc.config import build
    from dsc.eval.source_point import SourceRateDistortion

    with initialize_config_module("dsc.conf", version_base="1.3"):
        cfg = compose(config_name="evaluate", overrides=["source=gaussian", f"ckpt_path={gaussian_codec}",
                                                         "num_decoders=2", "rate_bits=2", "num_candidates=256",
                                                         "job.trials=300", "+job.progress=false"])
    job = build(cfg.job, "job")
    assert isinstance(job, SourceRateDistortion) and job.options["ckpt"] == str(gaussian_codec)
    (point,) = job.run(0, CPU, Path("."))
    direct = SourceRateDistortion("gaussian", {"ckpt": str(gaussian_codec)}, num_decoders=2, rate_bits=2,
                                  num_candidates=256, messages=300, progress=False).run(0, CPU, Path("."))[0]
    assert point["options"]["ckpt"] == str(gaussian_codec) and point["messages"] == 300
    assert point["mse"] == direct["mse"] and point["num_decoders"] == 2 and point["rate_bits"] == 2
    with initialize_config_module("dsc.conf", version_base="1.3"):
        cfg = compose(config_name="evaluate", overrides=["source=gaussian", f"ckpt_path={gaussian_codec}",
                                                         "scheme=nested_scalar"])
    with pytest.raises(dsc.ConfigError, match="ckpt_path evaluates a learned codec"):
        build(cfg.job, "job")
