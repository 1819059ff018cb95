"""Classical image codecs through Pillow: real bytes, round trips, monotone quality, errors."""

from __future__ import annotations

import math

import pytest
import torch

import dsc
from dsc.baselines import image_codecs
from dsc.baselines.image_codecs import QUALITY_RANGES, PillowCodec, available_codecs
from dsc.eval.classical_codecs import ClassicalImageRateDistortion, right_halves
from dsc.report.tables import markdown_tables

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def halves():
    images, origin = right_halves("test", seed=0, limit=60)
    assert images.shape == (60, 28, 14) and images.dtype == torch.uint8 and "embedded" in origin
    return images


def test_the_common_formats_are_available():
    assert {"PNG", "JPEG", "WEBP"} <= set(available_codecs())


def test_png_round_trip_is_lossless_on_real_bytes(halves):
    codec = PillowCodec("png")
    streams = codec.encode(halves)
    assert all(s.startswith(b"\x89PNG\r\n\x1a\n") for s in streams)
    assert torch.equal(codec.decode(streams), halves)


@pytest.mark.parametrize("name", [n for n in QUALITY_RANGES if QUALITY_RANGES[n]])
def test_lossy_round_trip_and_quality_buys_fidelity(name, halves):
    if name not in available_codecs():
        pytest.skip(f"this Pillow cannot write {name}")
    low, high = QUALITY_RANGES[name]
    errors, sizes = [], []
    for quality in (low + (high - low) // 10, high):
        codec = PillowCodec(name, quality)
        streams = codec.encode(halves)
        decoded = codec.decode(streams)
        assert decoded.shape == halves.shape and decoded.dtype == torch.uint8
        errors.append((decoded.double() - halves.double()).pow(2).mean().item())
        sizes.append(sum(len(s) for s in streams))
    assert errors[1] < errors[0] and sizes[1] > sizes[0]


def test_the_job_counts_bits_from_the_bytes(halves):
    (point,) = ClassicalImageRateDistortion(codec="jpeg", qualities=[50], limit=60, progress=False).run(0, CPU, None)
    streams = PillowCodec("JPEG", 50).encode(halves)
    assert point["rate_bits"] == pytest.approx(sum(8 * len(s) for s in streams) / 60)
    decoded = PillowCodec("JPEG", 50).decode(streams)
    assert point["mse"] == pytest.approx(((decoded.double() - halves.double()) / 255).pow(2).mean().item())
    assert point["scheme"] == "jpeg" and point["num_decoders"] == 1 and point["encode_images_per_s"] > 0
    assert "| jpeg | 50 |" in markdown_tables([point])


def test_the_job_reports_mean_per_image_psnr_and_ssim(halves):
    """PSNR: torchmetrics' per-image PSNR (peak 1) averaged over the halves; SSIM: torchmetrics'
    map averaged over the window positions inside each 28 x 14 half."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    (point,) = ClassicalImageRateDistortion(codec="jpeg", qualities=[50], limit=60, progress=False).run(0, CPU, None)
    decoded = PillowCodec("JPEG", 50).decode(PillowCodec("JPEG", 50).encode(halves))
    pixels = [(t.double() / 255)[:, None] for t in (decoded, halves)]
    psnr = peak_signal_noise_ratio(*pixels, data_range=1.0, reduction="none", dim=(1, 2, 3))
    assert bool(torch.isfinite(psnr).all())  # no exact half here: the 60 dB cap plays no part
    assert point["psnr_db"] == pytest.approx(psnr.mean().item(), rel=1e-6)  # torchmetrics: float32 log
    assert point["psnr_db"] >= -10 * math.log10(point["mse"])  # Jensen: mean PSNR >= PSNR of the mean MSE
    _, full = structural_similarity_index_measure(*pixels, data_range=1.0, reduction="none", return_full_image=True)
    assert point["ssim"] == pytest.approx(full[..., 5:-5, 5:-5].mean().item(), abs=1e-6)
    assert "| jpeg | 50 |" in markdown_tables([point]) and f"| {point['psnr_db']:.2f} |" in markdown_tables([point])
    (lossless,) = ClassicalImageRateDistortion(codec="png", limit=10, progress=False).run(0, CPU, None)
    assert lossless["mse"] == 0 and lossless["psnr_db"] == 60.0 and lossless["ssim"] == pytest.approx(1.0)


def test_bad_codecs_and_qualities_are_clear_errors(monkeypatch):
    with pytest.raises(dsc.ConfigError, match="PNG, JPEG, WEBP"):
        PillowCodec("gif")
    with pytest.raises(dsc.ConfigError, match=r"\[1, 95\]"):
        PillowCodec("JPEG", 0)
    with pytest.raises(dsc.ConfigError, match=r"\[0, 100\]"):
        PillowCodec("WEBP", 101)
    with pytest.raises(dsc.ConfigError, match="lossless"):
        PillowCodec("PNG", 50)
    with pytest.raises(dsc.ConfigError, match="integer"):
        ClassicalImageRateDistortion(codec="JPEG", qualities=[50.5])
    monkeypatch.setattr(image_codecs, "available_codecs", lambda: ["PNG", "JPEG"])
    with pytest.raises(dsc.ConfigError, match="cannot write WEBP; available here: PNG, JPEG"):
        PillowCodec("WEBP", 50)


def test_corrupt_or_foreign_bytes_are_a_clear_error(halves):
    png = PillowCodec("PNG").encode(halves[:1])[0]
    with pytest.raises(dsc.InvalidArgumentError, match="stream 0 is not a valid PNG"):
        PillowCodec("PNG").decode([png[:20]])
    with pytest.raises(dsc.InvalidArgumentError, match="not a valid JPEG"):
        PillowCodec("JPEG", 50).decode([png])


def test_compare_mnist_sweeps_gls_and_every_classical_codec():

    from hydra import compose, initialize_config_module

    from dsc.config import build

    with initialize_config_module("dsc.conf", version_base="1.3"):
        cfg = compose(config_name="evaluate", overrides=["experiment=compare_mnist"], return_hydra_config=True)
        codecs = cfg.hydra.sweeper.params["+codec"].split(",")
        assert cfg.hydra.mode.name == "MULTIRUN" and codecs[0] == "gls"
        assert {"png", "jpeg", "webp"} <= set(codecs)
        assert codecs[-1] == "learned"
        learned = build(compose(config_name="evaluate", overrides=["experiment=compare_mnist",
                                                                   "+codec=learned"]).job, "job")
        assert learned.run(0, CPU, None) == []  # no learned checkpoints given: skipped, not an error
        for codec in (c for c in codecs[1:-1] if c.upper() in available_codecs()):
            job_cfg = compose(config_name="evaluate", overrides=["experiment=compare_mnist", f"+codec={codec}",
                                                                 "compare_limit=5"]).job
            job = build(job_cfg, "job")
            assert job.limit == 5 and job.codecs[0].format == codec.upper()
        gls = compose(config_name="evaluate", overrides=["experiment=compare_mnist", "+codec=gls"]).job
    with pytest.raises(dsc.ConfigError, match="ckpt_paths"):
        build(gls, "job")


def test_a_codec_this_pillow_lacks_is_skipped_in_a_comparison_and_reported(monkeypatch, tmp_path):
    """In experiment=compare_mnist an unavailable format yields no points and a note in
    results.md; the other codecs' jobs still run. Alone it stays a clear error."""

    from hydra import compose, initialize_config_module

    from dsc.config import build
    from dsc.eval.runner import run_evaluation
    from dsc.report.sweep import aggregate

    monkeypatch.setattr(image_codecs, "available_codecs", lambda: ["PNG", "JPEG"])
    with initialize_config_module("dsc.conf", version_base="1.3"):
        for job, codec in enumerate(("jpeg", "avif")):
            cfg = compose(config_name="evaluate", overrides=[
                "experiment=compare_mnist", f"+codec={codec}", "compare_limit=20", "device=cpu",
                f"paths.output_dir={tmp_path / str(job)}", "job.qualities=" + ("[50]" if codec == "jpeg" else "null")])
            metrics = run_evaluation(cfg)
        assert metrics["points"] == [] and "cannot write AVIF" in metrics["skipped"]
        alone = compose(config_name="evaluate", overrides=["+codec=avif", "source=mnist", "job=none"]).job
    with pytest.raises(dsc.ConfigError, match="cannot write AVIF"):
        build(alone, "job")
    result = aggregate(tmp_path)
    tables = result.tables_path.read_text()
    assert "| jpeg | 50 |" in tables
    assert "skipped jobs" in tables and "1: this Pillow cannot write AVIF" in tables
