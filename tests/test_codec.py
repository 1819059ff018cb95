"""compress / decompress: real bytes, check bits, fallbacks, and refusals of foreign streams."""

from __future__ import annotations

import math

import pytest
import torch

import dsc
from dsc.codec import CodingSetting, GaussianModel, ImageModel, check_values, compress, decompress
from dsc.coding import CounterRandomness
from dsc.coding.streams import Purpose, stream_id
from dsc.sources.gaussian import GaussianSource

MODEL = GaussianModel(test_channel_var=0.005, noise_var=0.5)


def gaussian_batch(n: int, k: int = 4, seed: int = 9):
    return GaussianSource(0.5).sample(CounterRandomness(seed), torch.arange(n), k)


def encoder_index(setting: CodingSetting, sources, first_message: int = 0):
    coder = setting.coder(MODEL.prior)
    weight = MODEL.encoder_log_weight(sources)
    return coder.encode(torch.arange(first_message, first_message + sources.shape[0]), weight, weight.maximum()).index


def test_the_stream_costs_exactly_its_bits_and_every_decoder_reads_it():
    draw = gaussian_batch(1000)
    for check_bits in (0, 1, 4):
        setting = CodingSetting(seed=1, num_candidates=1024, rate_bits=3, num_decoders=4, check_bits=check_bits)
        data = compress(MODEL, draw.source, setting)
        assert len(data) == 54 + math.ceil(1000 * (3 + check_bits) / 8)
        for k in range(4):
            out = decompress(data, MODEL, draw.side_info[:, k], setting, decoder=k)
            assert out.reconstruction.shape == (1000,) and out.accepted.shape == (1000,)
            if check_bits == 0:
                assert bool(out.accepted.all())  # without checks every found pick is used


def test_check_bits_accept_every_correct_pick_and_few_wrong_ones():
    """A decoder that recovered the encoder's candidate always passes; a wrong pick passes with
    probability 2^-c (binomial tolerance of 4.5 standard errors). Rejected rows hold E[A | T_k]."""
    n, c = 4000, 2
    draw = gaussian_batch(n)
    setting = CodingSetting(seed=5, num_candidates=512, rate_bits=2, num_decoders=4, check_bits=c)
    data = compress(MODEL, draw.source, setting)
    sent = encoder_index(setting, draw.source)
    wrong = accepted_wrong = 0
    for k in range(4):
        out = decompress(data, MODEL, draw.side_info[:, k], setting, decoder=k)
        right = out.index == sent
        assert bool(out.accepted[right].all())
        wrong += int((~right).sum())
        accepted_wrong += int(out.accepted[~right].sum())
        rejected = ~out.accepted
        assert torch.allclose(out.reconstruction[rejected], draw.side_info[rejected, k].double() / 1.5)
    rate, p = accepted_wrong / wrong, 2.0**-c
    assert wrong > 5000 and abs(rate - p) < 4.5 * math.sqrt(p * (1 - p) / wrong)


def test_reconstructions_are_the_closed_form_mmse_of_the_picked_candidate():
    """Where decoder k accepts its pick X, it outputs E[A | W, T_k] = (W / s2 + T_k / 0.5) /
    (1 + 1 / s2 + 1 / 0.5) with W = U_X, the candidate regenerated here from the documented
    stream (coordinate X of the CANDIDATE stream of its message, scaled by the prior's std);
    elsewhere E[A | T_k] = T_k / 1.5."""
    n, s2 = 600, MODEL.test_channel_var
    draw = gaussian_batch(n, seed=4)
    setting = CodingSetting(seed=6, num_candidates=512, rate_bits=3, num_decoders=4, check_bits=2)
    data = compress(MODEL, draw.source, setting, first_message=50)
    rng = CounterRandomness(setting.seed)
    streams = stream_id(Purpose.CANDIDATE, torch.arange(50, 50 + n))
    sent = encoder_index(setting, draw.source, first_message=50)
    for k in range(4):
        out = decompress(data, MODEL, draw.side_info[:, k], setting, decoder=k)
        w = math.sqrt(1 + s2) * rng.normal(streams, out.index.clamp(min=0)).double()
        t = draw.side_info[:, k].double()
        mmse = (w / s2 + t / 0.5) / (1 + 1 / s2 + 1 / 0.5)
        expected = torch.where(out.accepted, mmse, t / 1.5)
        assert torch.allclose(out.reconstruction, expected, rtol=0, atol=1e-6)  # float32 candidates
        assert bool(out.accepted.any()) and not bool(out.accepted.all())
        # where the pick is the encoder's, the estimate is far closer to A than the side information's
        right = out.index == sent
        a = draw.source[right]
        assert ((out.reconstruction[right] - a) ** 2).mean() < 0.1 * ((t[right] / 1.5 - a) ** 2).mean()


def test_check_values_are_uniform_and_keyed_by_seed_message_and_index():
    messages, index = torch.arange(20000), torch.arange(20000) % 97
    values = check_values(3, messages, index, 4)
    counts = torch.bincount(values, minlength=16).double()
    expected = 20000 / 16
    assert float(((counts - expected) ** 2 / expected).sum()) < 50  # chi-square, 15 dof: p ~ 1e-5
    assert not torch.equal(values, check_values(4, messages, index, 4))
    assert not torch.equal(values, check_values(3, messages, index + 1, 4))
    assert torch.equal(check_values(3, messages, index, 0), torch.zeros_like(index))


def test_a_stream_for_another_setting_or_model_is_refused_before_decoding():
    draw = gaussian_batch(50)
    setting = CodingSetting(seed=3, num_candidates=256, rate_bits=2, num_decoders=4, check_bits=1)
    data = compress(MODEL, draw.source, setting)
    side = draw.side_info[:, 0]
    for change, message in (({"seed": 0}, "seed: stream 3, decoder 0"), ({"num_candidates": 512}, "num_candidates"),
                            ({"rate_bits": 3}, "label_bits"), ({"num_decoders": 2}, "num_decoders"),
                            ({"check_bits": 0}, "check_bits")):
        other = CodingSetting(**{**setting.__dict__, **change})
        with pytest.raises(dsc.FingerprintMismatchError, match=message):
            decompress(data, MODEL, side, other)
    with pytest.raises(dsc.FingerprintMismatchError, match="another model"):
        decompress(data, GaussianModel(test_channel_var=0.01), side, setting)
    with pytest.raises(dsc.FingerprintMismatchError, match="another model"):
        decompress(data, MODEL, side, CodingSetting(**{**setting.__dict__, "scheme": "shared_randomness"}))
    with pytest.raises(dsc.InvalidArgumentError, match="decoder"):
        decompress(data, MODEL, side, setting, decoder=4)
    with pytest.raises(dsc.ShapeMismatchError, match="one row per message"):
        decompress(data, MODEL, side[:49], setting)
    with pytest.raises(dsc.CorruptStreamError):
        decompress(data[:-1] + bytes([data[-1] ^ 0x10]), MODEL, side, setting)
    with pytest.raises(dsc.InvalidArgumentError, match="check_bits"):
        CodingSetting(check_bits=33)
    with pytest.raises(dsc.InvalidArgumentError, match="rate_bits"):
        CodingSetting(rate_bits=0)


def test_mnist_streams_carry_the_evaluations_picks_and_bind_the_weights():
    """Decoder k of a decompressed MNIST stream picks what the evaluation path (code_images)
    picks for the same digits, message ids and seed; other weights are refused."""
    from dsc.eval.image_point import SplitFeatures, code_images
    from dsc.lit.image_module import ImageCodecModule
    from dsc.sources.images import ImageHalves, SideInfo

    torch.manual_seed(0)
    nets = ImageCodecModule(channels=8, hidden=32, features=16, estimator_hidden=32).nets.eval()
    halves = ImageHalves(torch.rand(40, 28, 28), 3, SideInfo("crop", 7), seed=0)
    source, crops = halves.batch(torch.arange(40))
    setting = CodingSetting(seed=2, num_candidates=64, rate_bits=2, num_decoders=3, check_bits=8)
    model = ImageModel(nets)
    data = compress(model, source, setting)
    split = SplitFeatures.compute(nets, halves, torch.device("cpu"))
    matched = code_images(nets, split, setting.coder(model.prior), torch.arange(40)).match
    for k in range(3):
        out = decompress(data, model, crops[:, k], setting, decoder=k)
        assert out.reconstruction.shape == (40, 1, 28, 14)
        assert bool(out.accepted[matched[:, k]].all())  # right picks always pass the check
        with torch.no_grad():
            fallback = model.fallback(crops[:, k, None])[:, 0]
        assert torch.allclose(out.reconstruction[~out.accepted], fallback[~out.accepted])
    with torch.no_grad():
        nets.decoder.fc[0].weight[0, 0] += 1e-3
    with pytest.raises(dsc.FingerprintMismatchError, match="another model"):
        decompress(data, ImageModel(nets), crops[:, 0], setting)
