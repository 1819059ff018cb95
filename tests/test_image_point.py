"""GLS evaluation of a trained MNIST codec: weight bound, output schema, bad checkpoints."""

from __future__ import annotations

import math

import pytest
import torch

import dsc
from dsc.eval.image_figures import pick_examples
from dsc.eval.image_point import (
    ImageRateDistortion,
    PointOutcome,
    PosteriorLogRatio,
    SplitFeatures,
    evaluate_point,
    load_codec,
    make_coder,
    shares_rows_across_decoders,
    split_dataset,
)
from dsc.models.image_codec import Posterior

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def checkpoint(tiny_codec):
    return tiny_codec()


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
    job = ImageRateDistortion(ckpt_path=str(checkpoint), scheme=scheme, num_decoders=3, rate_bits=2,
                              num_candidates=64, limit=120, batch_size=50, progress=False)
    (point,) = job.run(seed=0, device=torch.device("cpu"), output_dir=tmp_path)
    assert point["digits"] == 120 and point["scheme"] == scheme and point["crop_size"] == 7
    assert 0 <= point["mse"] <= point["per_decoder_mse"] <= 1
    assert 0 <= point["match_prob"] <= 1 and "embedded" in point["data"]
    assert len(point["decoder_mse"]) == 3 and min(point["decoder_mse"]) >= point["mse"] - 1e-6
    assert 0 < point["mse_se"] < 0.1 and (tmp_path / "reconstructions.png").stat().st_size > 0
    # image metrics of the same oracle decoder: mean per-digit PSNR >= PSNR of the mean MSE (Jensen)
    assert point["psnr_db"] >= -10 * math.log10(point["mse"]) and point["psnr_db"] >= point["per_decoder_psnr_db"]
    assert 0 < point["ssim"] <= 1 and 0 < point["per_decoder_ssim"] <= 1 and point["ssim_se"] > 0


def _split_and_nets(checkpoint, num_decoders, limit=60):
    codec = load_codec(checkpoint)
    dataset, _ = split_dataset(codec, "test", num_decoders, seed=0, limit=limit)
    return codec.nets, SplitFeatures.compute(codec.nets, dataset, torch.device("cpu"), batch_size=25)


def test_baseline_decoders_do_not_depend_on_how_many_there_are(checkpoint):
    """Shared randomness: every decoder reads row 0 and the encoder's pick ignores K, so the
    first k decoders of a 4-decoder run are exactly a k-decoder run (what the protocol reuses).
    GLS's rows depend on K, so there the same slicing would be wrong; a K=4 GLS run must differ
    from its K=2 run somewhere."""
    nets, split = _split_and_nets(checkpoint, 4)
    for scheme, same in (("shared_randomness", True), ("gls", False)):
        four = evaluate_point(nets, split, make_coder(0, 4, scheme, 4, 2, 64), batch_size=25)
        two = evaluate_point(nets, split, make_coder(0, 4, scheme, 2, 2, 64), batch_size=25)
        sliced = four.first_decoders(2)
        assert (torch.equal(two.match, sliced.match) and torch.equal(two.mse, sliced.mse)) is same
    assert shares_rows_across_decoders("shared_randomness") and not shares_rows_across_decoders("gls")


def test_point_outcome_summary_against_hand_computed_values():
    mse = torch.tensor([[0.1, 0.3], [0.4, 0.2], [0.5, 0.6]])
    match = torch.tensor([[True, False], [False, False], [False, True]])
    summary = PointOutcome(mse, match).summary()
    best = torch.tensor([0.1, 0.2, 0.5], dtype=torch.float64)
    assert summary["digits"] == 3
    assert summary["mse"] == pytest.approx(0.8 / 3)
    assert summary["mse_se"] == pytest.approx(best.std().item() / 3**0.5)
    assert summary["per_decoder_mse"] == pytest.approx(2.1 / 6)
    assert summary["decoder_mse"] == pytest.approx([1.0 / 3, 1.1 / 3], abs=1e-6)
    assert summary["match_prob"] == pytest.approx(2 / 3)


def test_outcomes_carry_each_decoders_ssim_of_its_reconstruction():
    """The SSIM a point reports is that of the reconstructions the pipeline decodes (pixels
    mapped to [0, 1]); torchmetrics' map, cropped to the windows inside the image, agrees."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    from dsc.eval.image_point import code_images, summarise
    from dsc.lit.image_module import ImageCodecModule
    from dsc.sources.images import ImageHalves, SideInfo

    torch.manual_seed(0)
    nets = ImageCodecModule(channels=8, hidden=32, features=16, estimator_hidden=32).nets.eval()
    split = SplitFeatures.compute(nets, ImageHalves(torch.rand(40, 28, 28), 2, SideInfo("crop", 7), seed=0), CPU)
    coder = make_coder(0, 4, "gls", 2, 2, 16)
    outcome = evaluate_point(nets, split, coder, batch_size=16)
    recon = code_images(nets, split, coder, torch.arange(40)).decoded.picked  # [40, 2, 1, 28, 14]
    pixels = ((recon.flatten(0, 1) + 1) / 2).double(), ((split.source.repeat_interleave(2, 0) + 1) / 2).double()
    _, full = structural_similarity_index_measure(*pixels, data_range=1.0, reduction="none", return_full_image=True)
    expected = full[..., 5:-5, 5:-5].flatten(1).mean(1).view(40, 2)
    assert outcome.ssim.shape == (40, 2) and torch.allclose(outcome.ssim.double(), expected, atol=1e-5)
    summary = summarise(outcome)
    best = outcome.mse.argmin(1)
    assert summary["ssim"] == pytest.approx(outcome.ssim[torch.arange(40), best].double().mean().item())
    assert summary["psnr_db"] == pytest.approx((-10 * outcome.mse.min(1).values.double().log10()).mean().item())
    assert outcome.first_decoders(1).ssim.shape == (40, 1)


def test_examples_for_the_figure_mix_successes_and_failures():
    match = torch.tensor([[True], [False], [True], [True], [False], [True]])
    assert pick_examples(match, 4).tolist() == [0, 1, 2, 4]  # two of each kind, in order
    assert pick_examples(match[[0, 2, 3]], 2).tolist() == [0, 1]  # no failures: successes only
    assert pick_examples(match, 10).tolist() == list(range(6))


def test_bad_checkpoints_and_settings_are_clear_errors(tmp_path):
    with pytest.raises(dsc.DscError, match="does not exist"):
        ImageRateDistortion(ckpt_path=str(tmp_path / "missing.ckpt")).run(0, torch.device("cpu"), tmp_path)
    with pytest.raises(dsc.ConfigError, match="no checkpoint given"):
        ImageRateDistortion(ckpt_path=None).run(0, torch.device("cpu"), tmp_path)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"weight": torch.zeros(2)}}, foreign)
    with pytest.raises(dsc.DscError, match="not a checkpoint of the image codec"):
        ImageRateDistortion(ckpt_path=str(foreign)).run(0, torch.device("cpu"), tmp_path)
    with pytest.raises(dsc.DscError, match="L_max"):
        ImageRateDistortion(ckpt_path="x", num_candidates=8, rate_bits=4)
    with pytest.raises(dsc.DscError, match="split"):
        ImageRateDistortion(ckpt_path="x", split="train")


def test_mnist_points_are_tabulated_by_mse():
    from dsc.report.tables import markdown_tables

    points = [{"scheme": s, "num_decoders": k, "rate_bits": r, "num_candidates": 128, "mse": 0.1 / k + r / 100}
              for s in ("gls", "shared_randomness") for k in (1, 2) for r in (2, 3)]
    tables = markdown_tables(points)
    assert "MSE per pixel" in tables and "| 2 | 0.0700 (N 128) | 0.0800 (N 128) |" in tables


def test_check_bits_give_practical_mnist_figures():
    """With c = 8 every decoder that recovered the encoder's candidate passes its check and few
    wrong picks do; rejected picks are scored by the crop-only reconstruction (w = 0)."""
    from dsc.eval.image_point import ImageSplitModel, SplitFeatures, evaluate_point, make_coder
    from dsc.lit.image_module import ImageCodecModule
    from dsc.sources.images import ImageHalves, SideInfo

    torch.manual_seed(0)
    nets = ImageCodecModule(channels=8, hidden=32, features=16, estimator_hidden=32).nets.eval()
    split = SplitFeatures.compute(nets, ImageHalves(torch.rand(200, 28, 28), 3, SideInfo("crop", 7), seed=0), CPU)
    coder = make_coder(0, 4, "gls", 3, 1, 32)
    plain = evaluate_point(nets, split, coder, batch_size=64)
    checked = evaluate_point(nets, split, coder, batch_size=64, check_bits=8)
    assert plain.accepted is None and "practical_mse" not in plain.summary()
    assert torch.equal(plain.mse, checked.mse) and torch.equal(plain.match, checked.match)
    assert bool(checked.accepted[checked.match].all())
    wrong = ~checked.match
    assert (checked.accepted & wrong).sum() <= 0.02 * wrong.sum() + 3  # about 2^-8 of the wrong picks
    with torch.no_grad():
        fallback = nets.decoder(torch.zeros(600, 4), split.features[:, :3].flatten(0, 1)).view(200, 3, 1, 28, 14)
        assert torch.equal(fallback, ImageSplitModel(nets, split).fallback(ImageSplitModel.side(torch.arange(200), 3)))
    expected = ((fallback - split.source[:, None]) / 2).pow(2).flatten(2).mean(-1)
    assert torch.allclose(checked.fallback_mse, expected)
    summary = checked.summary()
    outputs = torch.where(checked.accepted, checked.mse, checked.fallback_mse)
    assert summary["per_decoder_practical_mse"] == pytest.approx(outputs.double().mean().item())
    assert summary["accept_rate"] == pytest.approx(checked.accepted.double().mean().item())
