"""Pick-aware decoders (dsc.models.pick_decoder, dsc.lit.pick_decoder_module): built from a codec
they are its decoder; crop-only they ignore the pick; trained, they fall back on a pick whose
features say it missed; they decode through the pipeline and the image evaluation; a decoder of
another codec and a missing codec are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dsc.coding import CodingPoint
from dsc.errors import ConfigError
from dsc.estimates import PickDecoderEstimate
from dsc.eval.image_point import ImageRateDistortion, ImageSplitModel, SplitFeatures, _worker_batch, batch_outcome
from dsc.lit.checkpoint import CheckpointMismatchError
from dsc.lit.image_module import ImageCodecModule, load_codec
from dsc.lit.pick_decoder_module import PickDecoderModule, load_pick_decoder
from dsc.models.image_codec import ImageCodecNetworks, ImageModel
from dsc.models.pick_decoder import FEATURE_LIMIT, FEATURE_SCALE, PickDecoder, pick_features
from dsc.pipeline import decode, encode

CPU = torch.device("cpu")
TINY = {"channels": 8, "hidden": 32, "features": 16, "estimator_hidden": 32}


def tiny_nets(seed: int = 0) -> ImageCodecNetworks:
    torch.manual_seed(seed)
    return ImageCodecModule(**TINY).nets.eval()


def codec_checkpoint(path: Path, seed: int) -> Path:
    """An (untrained) tiny MNIST codec saved as a checkpoint the loaders read."""
    torch.manual_seed(seed)
    module = ImageCodecModule(**TINY)
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams), "epoch": 0}, path)
    return path


def decoder_checkpoint(path: Path, codec_ckpt: Path, crop_only: bool = False) -> Path:
    """A pick-aware decoder for ``codec_ckpt``, as built before training, saved as a checkpoint."""
    module = PickDecoderModule(str(codec_ckpt), crop_only=crop_only)
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return path


def coded_picks(model, images: int = 12, num_decoders: int = 3, estimate=None):
    """GLS-code ``images`` random digits for ``num_decoders`` crops each -> :class:`Decoded`."""
    generator = torch.Generator().manual_seed(5)
    source = torch.rand(images, 1, 28, 14, generator=generator) * 2 - 1
    side = torch.rand(images, num_decoders, 1, 7, 7, generator=generator) * 2 - 1
    coder = CodingPoint("gls", num_decoders, 2, 16).coder(0, model.prior)
    messages = torch.arange(images)
    with torch.no_grad():
        sent = encode(model, coder, messages, source)
        return decode(model, coder, messages, sent.label, sent.check, side, estimate=estimate)


def test_pick_features_are_bounded_and_mark_the_rate():
    score = torch.tensor([[-3.0, float("inf")], [40.0, -40.0]], dtype=torch.float64)
    features = pick_features(score, torch.tensor([[0.5, -2.0], [100.0, 0.0]]), 4)
    assert features.shape == (2, 2, 3) and features.dtype == torch.float32 and torch.isfinite(features).all()
    top = FEATURE_LIMIT / FEATURE_SCALE
    assert features[0, 1, 0] == top and features[1, 0, 0] == top and features[1, 1, 0] == -top  # empty bin: the top
    assert features[0, 0, 0] == pytest.approx(-3.0 / FEATURE_SCALE) and features[1, 0, 1] == top
    assert (features[..., 2] == 0.5).all()  # 4 bits / 8


def test_a_pick_decoder_built_from_the_codec_is_the_codec_decoder():
    """Zero weights on the pick features: exactly the codec's decoder, whatever the features say,
    also through the pipeline (the estimate's outputs equal trusting the pick)."""
    nets = tiny_nets()
    decoder = PickDecoder.from_codec(nets).eval()
    w, side, pick = torch.randn(20, 4), torch.rand(20, 16), torch.randn(20, 3) * 5
    with torch.no_grad():
        assert torch.equal(decoder(w, pick, side), nets.decoder(w, side))
    model = ImageModel(nets)
    plain = coded_picks(model)
    estimated = coded_picks(model, estimate=PickDecoderEstimate(decoder))
    assert torch.equal(estimated.picked, plain.picked) and torch.equal(estimated.fallback, plain.fallback)
    model.estimate = PickDecoderEstimate(decoder)  # the model's own estimate is the pipeline's default
    assert torch.equal(coded_picks(model).picked, plain.picked)


def test_a_crop_only_decoder_ignores_the_pick():
    nets = tiny_nets()
    decoder = PickDecoder.from_codec(nets, crop_only=True).eval()
    side = torch.rand(20, 16)
    with torch.no_grad():
        first = decoder(torch.randn(20, 4), torch.randn(20, 3), side)
        assert torch.equal(first, decoder(torch.randn(20, 4) * 3, torch.randn(20, 3), side))
        assert torch.equal(first, nets.decoder(torch.zeros(20, 4), side))  # the codec's fallback, before training
    got = coded_picks(ImageModel(nets), estimate=PickDecoderEstimate(decoder))
    assert torch.equal(got.picked, got.fallback)


def test_a_trained_decoder_falls_back_on_a_pick_that_says_it_missed():
    """A small codec decoder whose output depends strongly on w, six side informations s, and
    training pairs as GLS makes them: half the picks are the true latent w* with "match" features
    (score -8, log-ratio +8, 6 bits), half an independent w with "miss" features (empty bin, log-ratio
    -8, 2 bits); the target is always the codec decoder's output for w*. The crop-only
    reconstruction of s is E_w*[decoder(w*, s)] (the best output from s alone, by Monte Carlo).

    After training, on deliberately wrong candidates with miss features the output must be near
    the crop-only reconstruction (squared distance under a tenth of what trusting the pick gives),
    while true picks with match features, and the same wrong candidates with match features, are
    still followed. A decoder blind to the features can only average the two cases (a quarter of
    each distance at best), so it fails both bounds."""
    nets = ImageCodecNetworks(latent_dim=2, image_shape=(1, 8, 8), side_shape=(1, 4, 4), features=8, channels=8,
                              hidden=32, estimator_hidden=16, dropout=0.0).eval()
    with torch.no_grad():
        nets.decoder.fc[0].weight[:, :2] *= 10
        nets.decoder.up[-2].weight *= 5
    generator = torch.Generator().manual_seed(1)
    sides = torch.rand(6, 8, generator=generator)

    def codec(w, s):
        with torch.no_grad():
            return nets.decoder(w, s)

    many = torch.randn(20000, 2, generator=generator)
    crop_only = torch.stack([codec(many, s.expand(len(many), -1)).mean(0) for s in sides])  # [6, 1, 8, 4]
    miss = pick_features(torch.tensor(float("inf")), torch.tensor(-8.0), 2)
    match = pick_features(torch.tensor(-8.0), torch.tensor(8.0), 6)
    decoder = PickDecoder.from_codec(nets)
    optimiser = torch.optim.Adam(decoder.parameters(), lr=3e-3)
    for _ in range(300):
        which, truth = torch.randint(0, 6, (64,), generator=generator), torch.randn(64, 2, generator=generator)
        missed = torch.rand(64, generator=generator) < 0.5
        pick = torch.where(missed[:, None], torch.randn(64, 2, generator=generator), truth)
        loss = ((decoder(pick, torch.where(missed[:, None], miss, match), sides[which])
                 - codec(truth, sides[which])) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    decoder.eval()
    n = 1000
    which, truth, wrong = torch.randint(0, 6, (n,), generator=generator), torch.randn(n, 2, generator=generator), \
        torch.randn(n, 2, generator=generator)
    s, reference = sides[which], crop_only[which]
    distance = lambda a, b: ((a - b) ** 2).mean().item()  # noqa: E731
    with torch.no_grad():
        on_miss = decoder(wrong, miss.expand(n, 3), s)
        on_match = decoder(truth, match.expand(n, 3), s)
        wrong_as_match = decoder(wrong, match.expand(n, 3), s)
    trusting = codec(wrong, s)  # what the codec's decoder draws from the wrong candidate
    assert distance(on_miss, reference) < 0.1 * distance(trusting, reference)
    assert distance(on_match, codec(truth, s)) < 0.1 * distance(reference, codec(truth, s))
    assert distance(wrong_as_match, trusting) < 0.1 * distance(reference, trusting)  # the features decide


def test_the_image_evaluation_decodes_with_a_decoder_checkpoint(tmp_path):
    """``decoder_ckpt``: an untrained decoder gives the codec's own figures (it is the codec's
    decoder), a crop-only one the fallback's; the point says which decoder, and the workers'
    batches use the same estimate."""
    codec = codec_checkpoint(tmp_path / "codec.ckpt", seed=0)
    settings = {"ckpt_path": str(codec), "num_decoders": 2, "rate_bits": 2, "num_candidates": 16, "limit": 40,
                "batch_size": 20, "progress": False, "check_bits": 2}
    points = {}
    for kind, crop_only in (("pick", None), ("trained", False), ("crop_only", True)):
        ckpt = None if crop_only is None else str(decoder_checkpoint(tmp_path / f"{kind}.ckpt", codec, crop_only))
        (points[kind],) = ImageRateDistortion(**settings, decoder_ckpt=ckpt).run(0, CPU, tmp_path / kind)
        assert points[kind]["decoder"] == kind and points[kind]["decoder_ckpt"] == ckpt
        assert (tmp_path / kind / "reconstructions.png").stat().st_size > 0
    assert points["trained"]["mse"] == points["pick"]["mse"] and points["trained"]["match_prob"] == \
        points["pick"]["match_prob"]
    crop_only = points["crop_only"]  # its output is the fallback, accepted or not
    assert crop_only["per_decoder_practical_mse"] == pytest.approx(crop_only["per_decoder_mse"])
    job = ImageRateDistortion(**settings, decoder_ckpt=str(tmp_path / "crop_only.ckpt"))
    codec_module, split, coder, _, estimate = job.prepare(0, CPU)
    index = torch.arange(20)
    expected = batch_outcome(codec_module.nets, split, coder, index, 2, estimate)
    assert torch.equal(_worker_batch(job, 0, 0, CPU).mse, expected.mse)
    with torch.no_grad():  # the estimate really is the crop-only decoder: every output is the fallback
        model = ImageSplitModel(codec_module.nets, split)
        side = model.side(index, 2)
        assert torch.equal(estimate.reconstruct(model, side, torch.randn(20, 2, 4), torch.zeros(20, 2), 2),
                           model.fallback(side))
    assert isinstance(split, SplitFeatures)


def test_points_split_the_decoders_errors_by_whether_their_pick_matched():
    from dsc.eval.image_point import PointOutcome, match_split

    outcome = PointOutcome(torch.tensor([[0.1, 0.3], [0.2, 0.5]]), torch.tensor([[True, False], [False, False]]))
    split = match_split(outcome)
    assert split["matched_mse"] == pytest.approx(0.1) and split["missed_mse"] == pytest.approx(1.0 / 3)
    assert match_split(PointOutcome(outcome.mse, torch.zeros(2, 2, dtype=torch.bool)))["matched_mse"] is None


def test_a_decoder_trained_for_another_codec_is_refused(tmp_path):
    codec, other = codec_checkpoint(tmp_path / "codec.ckpt", 0), codec_checkpoint(tmp_path / "other.ckpt", 1)
    decoder = decoder_checkpoint(tmp_path / "decoder.ckpt", other)
    job = ImageRateDistortion(ckpt_path=str(codec), num_decoders=1, rate_bits=2, num_candidates=16, limit=10,
                              progress=False, decoder_ckpt=str(decoder))
    with pytest.raises(CheckpointMismatchError, match=r"trained for the codec .*other\.ckpt.*not for .*codec\.ckpt"):
        job.run(0, CPU, tmp_path)
    with pytest.raises(CheckpointMismatchError, match="not a checkpoint of a pick-aware decoder"):
        load_pick_decoder(codec)
    with pytest.raises(CheckpointMismatchError, match="weights changed"):  # resuming on a replaced codec
        PickDecoderModule(str(codec), codec_sha256="0" * 64)


def test_training_needs_a_codec(tmp_path):
    from hydra import compose, initialize_config_module

    from dsc.lit.train import run_training

    with initialize_config_module("dsc.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=["model=pick_decoder", "logger=none", "device=cpu",
                                                      f"paths.output_dir={tmp_path}"])
    with pytest.raises(ConfigError, match=r"model.codec_ckpt is required but not set \(\?\?\?\)"):
        run_training(cfg)
    with pytest.raises(ConfigError, match="model.codec_ckpt is not set"):
        PickDecoderModule(codec_ckpt=None)
    with pytest.raises(ConfigError, match="does not exist"):
        PickDecoderModule(codec_ckpt=str(tmp_path / "missing.ckpt"))
    with pytest.raises(ConfigError, match="L_max"):
        PickDecoderModule(codec_ckpt="unread.ckpt", rate_bits=[2, 8], num_candidates=128)


def test_a_training_run_fits_the_decoder_for_its_codec(tmp_path):
    """train.py with model=pick_decoder: a few steps on 64 digits, two decoders each; the
    checkpoint holds the decoder only, names its codec and decodes for it; data whose side
    information is not the codec's is refused."""
    from hydra import compose, initialize_config_module

    from dsc.lit.train import run_training

    codec = codec_checkpoint(tmp_path / "codec.ckpt", 0)

    def config(out: Path, *extra: str):
        with initialize_config_module("dsc.conf", version_base="1.3"):
            return compose(config_name="train", overrides=[
                "model=pick_decoder", f"model.codec_ckpt={codec}", "model.rate_bits=[2,3]", "model.num_candidates=16",
                "+num_decoders=2", "data.limit=64", "data.batch_size=32", "trainer.max_epochs=1", "logger=none",
                "device=cpu", "trainer.enable_progress_bar=false", f"paths.output_dir={out}", *extra])

    metrics = run_training(config(tmp_path / "run"))
    assert {"val/mse", "val/codec_mse", "val/match", "train/loss_epoch"} <= set(metrics)
    assert 0 <= float(metrics["val/match"]) <= 1
    nets = load_codec(codec).nets
    trained = load_pick_decoder(tmp_path / "run" / "checkpoints" / "last.ckpt", ImageModel(nets).weights_sha256, codec)
    assert trained.hparams.codec_ckpt == str(codec) and trained.codec is None
    assert all(name.startswith("decoder.") for name in trained.state_dict())  # the codec is not stored
    fresh = PickDecoder.from_codec(nets)
    assert not torch.equal(trained.decoder.net.fc[0].weight, fresh.net.fc[0].weight)
    with pytest.raises(CheckpointMismatchError, match="side information"):
        run_training(config(tmp_path / "other_side", "source.crop_size=14"))
