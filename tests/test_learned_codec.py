"""Learned baseline codecs on CompressAI's entropy bottleneck: real bytes, rates, side information."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module

import dsc
from dsc.baselines.learned import LearnedImageCodec
from dsc.eval.learned_codecs import LearnedCodecRateDistortion
from dsc.lit.learned_module import LearnedCodecModule
from dsc.lit.train import run_training

ROOT = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")
TINY = ["model=learned_codec", "model.channels=8", "model.latent_channels=4", "model.features=8",
        "data.limit=192", "data.batch_size=32", "trainer.max_epochs=2", "logger=none", "device=cpu",
        "trainer.enable_progress_bar=false"]


@pytest.fixture(scope="module")
def learned_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("learned")
    with initialize_config_module("dsc.conf", version_base="1.3"):
        run_training(compose(config_name="train", overrides=TINY + [f"paths.output_dir={out}"]))
    return out / "checkpoints" / "last.ckpt"


def _batch(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 14, generator=g) * 2 - 1, torch.rand(n, 1, 7, 7, generator=g) * 2 - 1


@pytest.mark.parametrize("mode", ["none", "decoder", "both"])
def test_bytes_round_trip_to_the_eval_mode_reconstruction(mode):
    torch.manual_seed(0)
    codec = LearnedImageCodec(mode, latent_channels=4, channels=8, features=8).eval()
    codec.update()
    source, crop = _batch()
    strings = codec.compress(source, crop)
    assert len(strings) == 6 and all(isinstance(s, bytes) and s for s in strings)
    with torch.no_grad():
        expected, likelihoods = codec(source, crop)
    assert expected.shape == (6, 1, 28, 14) and likelihoods.shape == (6, 4, 7, 4)
    assert torch.allclose(codec.decompress(strings, crop), expected, atol=1e-5)
    stream = codec.compress_batch(source, crop)
    assert torch.allclose(codec.decompress_batch(stream, 6, crop), expected, atol=1e-5)
    assert len(stream) < sum(len(s) for s in strings)  # the stream's fixed cost is paid once


def test_side_information_reaches_the_decoder_only_where_the_mode_says():
    torch.manual_seed(0)
    source, crop = _batch()
    other = torch.flip(crop, dims=[0])
    for mode, uses in (("none", False), ("decoder", True)):
        codec = LearnedImageCodec(mode, latent_channels=4, channels=8, features=8).eval()
        codec.update()
        strings = codec.compress(source, crop)
        changed = not torch.allclose(codec.decompress(strings, crop), codec.decompress(strings, other))
        assert changed is uses
    with pytest.raises(dsc.ShapeMismatchError, match="one crop per image"):
        LearnedImageCodec("decoder", latent_channels=4, channels=8, features=8).compress(source)


def test_trained_codec_measured_rate_agrees_with_the_estimate(learned_checkpoint, tmp_path):
    """Standalone byte strings cost the model's estimate within 3 %, plus at most 64 bits per
    image: each is its own rANS stream, which flushes a 32-bit state and pads to whole bytes."""
    (point,) = LearnedCodecRateDistortion(str(learned_checkpoint), limit=200).run(0, CPU, tmp_path)
    assert point["scheme"] == "learned_decoder" and point["digits"] == 200 and point["lmbda"] == 0.01
    overhead = point["rate_bits"] - point["estimated_rate_bits"]
    assert -0.01 * point["estimated_rate_bits"] <= overhead <= 0.03 * point["estimated_rate_bits"] + 64
    # one stream per batch of 200: the fixed cost is spread thin, and bytes match the estimate
    assert point["batch_stream_rate_bits"] == pytest.approx(point["estimated_rate_bits"], rel=0.03)
    assert 0 <= point["mse"] < 1 and point["encode_images_per_s"] > 0
    assert point["psnr_db"] >= -10 * math.log10(point["mse"]) and 0 < point["ssim"] <= 1  # Jensen; SSIM range


def test_bad_learned_codec_input_is_a_clear_error(tiny_codec, tmp_path):
    with pytest.raises(dsc.ConfigError, match="none, decoder, both"):
        LearnedImageCodec("encoder")
    with pytest.raises(dsc.ConfigError, match="lmbda"):
        LearnedCodecModule(lmbda=0)
    with pytest.raises(dsc.ShapeMismatchError, match=r"\[B, 1, 28, 14\]"):
        LearnedImageCodec("none").compress(torch.zeros(2, 1, 28, 28))
    with pytest.raises(dsc.ConfigError, match="not a checkpoint of a learned baseline codec"):
        LearnedCodecRateDistortion(str(tiny_codec())).run(0, CPU, tmp_path)
    with pytest.raises(dsc.ConfigError, match="does not exist"):
        LearnedCodecRateDistortion(str(tmp_path / "nope.ckpt")).run(0, CPU, tmp_path)
    with pytest.raises(dsc.ConfigError, match="no checkpoint given"):
        LearnedCodecRateDistortion(None).run(0, CPU, tmp_path)


def test_several_checkpoints_in_one_job_and_the_wrong_kind_for_gls(learned_checkpoint, tmp_path):
    from dsc.eval.image_point import load_codec

    points = LearnedCodecRateDistortion(ckpt_paths=[str(learned_checkpoint)] * 2, limit=20).run(0, CPU, tmp_path)
    assert len(points) == 2 and points[0]["rate_bits"] == points[1]["rate_bits"]
    with pytest.raises(dsc.ConfigError, match="not a checkpoint of the image codec"):
        load_codec(learned_checkpoint)


def test_k_decoders_each_with_its_crop_and_the_best_of_k_oracle(learned_checkpoint, tmp_path):
    """One point per K from the same bytes: the rate does not depend on K; best of K can only
    fall as decoders are added, and it is at most the mean over decoders; K = 1 is the
    single-decoder point."""
    points = LearnedCodecRateDistortion(str(learned_checkpoint), limit=60, num_decoders=[4, 1, 2]).run(0, CPU,
                                                                                                     tmp_path)
    assert [p["num_decoders"] for p in points] == [1, 2, 4]
    assert len({p["rate_bits"] for p in points}) == 1
    assert points[2]["mse"] <= points[1]["mse"] <= points[0]["mse"]
    assert all(p["mse"] <= p["per_decoder_mse"] + 1e-12 for p in points)
    assert points[2]["mse"] < points[2]["per_decoder_mse"]  # the decoder mode's crops differ per decoder
    (alone,) = LearnedCodecRateDistortion(str(learned_checkpoint), limit=60).run(0, CPU, tmp_path)
    assert alone["mse"] == points[0]["mse"] and alone["num_decoders"] == 1
    with pytest.raises(dsc.DscError, match=r"num_decoders \(K\) must be an integer >= 1"):
        LearnedCodecRateDistortion(str(learned_checkpoint), num_decoders=0)
