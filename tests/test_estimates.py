"""Decoder estimates (dsc.estimates): the Bayes decoder against a brute-force posterior, the
shrinkage decoder's guarantee on its own calibration, re-encoding many sources at once, and
the errors of bad settings."""

from __future__ import annotations

import math

import pytest
import torch

from dsc.coding import CodingPoint, CounterRandomness
from dsc.errors import ConfigError
from dsc.estimates import BayesEstimate, ShrinkEstimate, estimate_named
from dsc.models.gaussian import GaussianModel
from dsc.pipeline import code, decode, decode_picks, encode
from dsc.sources.gaussian import GaussianSource

NOISE_VAR = 0.5


def _coder(num_decoders: int, rate_bits: int, num_candidates: int, s2: float, check_bits: int = 0, seed: int = 3):
    return CodingPoint("gls", num_decoders, rate_bits, num_candidates, check_bits).coder(
        seed, GaussianModel(s2, NOISE_VAR).prior)


def test_encode_each_equals_encoding_every_source_alone():
    model = GaussianModel(0.05, NOISE_VAR)
    coder = _coder(2, 3, 512, 0.05)
    messages = torch.arange(40, 52)
    sources = torch.randn(12, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    index, label = coder.encode_each(messages, model.source_log_weights(sources), 7)
    assert index.shape == label.shape == (12, 7)
    for s in range(7):
        alone = coder.encode(messages, model.encoder_log_weight(sources[:, s]))
        assert torch.equal(index[:, s], alone.index) and torch.equal(label[:, s], alone.label)


def _brute_force_posterior_mean(model, coder, message: int, label: int, check: int, t: float, check_bits: int):
    """E[A | T = t, the encoder sends (label, check)] on a fine grid of a: p(a | t) times the
    indicator that a makes the encoder send them, every grid point encoded on its own."""
    mean, var = t / (1 + NOISE_VAR), NOISE_VAR / (1 + NOISE_VAR)
    grid = torch.linspace(mean - 9 * math.sqrt(var), mean + 9 * math.sqrt(var), 20001, dtype=torch.float64)
    ids = torch.full_like(grid, message, dtype=torch.long)
    sent = encode(model, coder, ids, grid, check_bits)
    inside = (sent.label == label) & (sent.check == check)
    density = torch.exp(-0.5 * (grid - mean) ** 2 / var) * inside
    return float((density * grid).sum() / density.sum())


@pytest.mark.parametrize("check_bits", [0, 2])
def test_the_bayes_decoder_is_the_brute_force_posterior_mean(check_bits):
    """Small N (32 candidates, 4 labels): each decoder's output is within a few of its own
    reported Monte Carlo errors of the exact posterior mean, and those errors are honest
    (the mean squared z-score over 24 outputs is near 1)."""
    s2, draws = 0.2, 2048
    model = GaussianModel(s2, NOISE_VAR, estimate=BayesEstimate(draws))
    coder = _coder(2, 2, 32, s2, check_bits)
    messages = torch.arange(12)
    draw = GaussianSource(NOISE_VAR).sample(CounterRandomness(coder.seed), messages, 2)
    coded = code(model, coder, messages, draw.source, draw.side_info, check_bits)
    got = coded.decoded
    assert got.estimate_se is not None and not torch.isnan(got.estimate_se).any()
    z = []
    for b in range(12):
        for k in range(2):
            exact = _brute_force_posterior_mean(model, coder, int(messages[b]), int(coded.encoded.label[b]),
                                                int(coded.encoded.check[b]), float(draw.side_info[b, k]), check_bits)
            z.append((float(got.picked[b, k]) - exact) / float(got.estimate_se[b, k]))
    z = torch.tensor(z)
    assert z.abs().max() < 4.5, z  # 24 outputs: |z| > 4.5 has probability below 2e-4 for any of them
    # the mean of 24 squared standard normals lies in [0.3, 2.2] with probability above 0.999;
    # self-normalised errors are only asymptotically normal, so allow a little more room
    assert 0.2 < float((z**2).mean()) < 2.5, z


def test_the_bayes_decoder_beats_trusting_the_pick_at_one_decoder():
    """K = 1, 2 bits, N = 1024, s2 = 0.1: the paper's decoder trusts picks that miss about a third
    of the time; the posterior mean is lower in MSE, by more than 4 paired standard errors."""
    s2 = 0.1
    coder = _coder(1, 2, 1024, s2)
    messages = torch.arange(600)
    draw = GaussianSource(NOISE_VAR).sample(CounterRandomness(coder.seed), messages, 1)
    sent = encode(GaussianModel(s2, NOISE_VAR), coder, messages, draw.source)
    picked = decode_picks(GaussianModel(s2, NOISE_VAR), coder, messages, sent.label, sent.check, draw.side_info).picked
    bayes = decode(GaussianModel(s2, NOISE_VAR, estimate=BayesEstimate(128)), coder, messages, sent.label, sent.check,
                   draw.side_info).picked
    gain = (draw.source[:, None] - picked) ** 2 - (draw.source[:, None] - bayes) ** 2
    assert gain.mean() > 4 * gain.std() / math.sqrt(gain.numel())


def test_shrinkage_is_no_worse_than_the_pick_or_the_side_information_on_fresh_trials():
    """Per-decoder MSE on 4,000 fresh trials (K = 2, 3 bits, s2 = 0.05): the shrinkage decoder's
    paired difference to either endpoint is not positive beyond 3 standard errors, and its
    coefficients are weights in [0, 1], larger for more confident picks on the whole."""
    s2 = 0.05
    source = GaussianSource(NOISE_VAR)
    shrink = ShrinkEstimate(source.sample, calibration_trials=8000, bins=8)
    model = GaussianModel(s2, NOISE_VAR, estimate=shrink)
    coder = _coder(2, 3, 1024, s2)
    messages = torch.arange(4000)
    draw = source.sample(CounterRandomness(coder.seed), messages, 2)
    sent = encode(model, coder, messages, draw.source)
    plain = decode_picks(model, coder, messages, sent.label, sent.check, draw.side_info)
    shrunk = decode(model, coder, messages, sent.label, sent.check, draw.side_info).picked
    error = (draw.source[:, None] - shrunk) ** 2
    for other in (plain.picked, plain.fallback):
        diff = (error - (draw.source[:, None] - other) ** 2).flatten()
        assert diff.mean() < 3 * diff.std() / math.sqrt(diff.numel())
    edges, coefficient = shrink.table(model, coder, 0)
    assert edges.shape == (7,) and ((coefficient >= 0) & (coefficient <= 1)).all()
    assert coefficient[0] > coefficient[-1]  # low race scores (early, heavy picks) are trusted more


def test_shrinkage_calibration_uses_no_evaluation_message():
    """The calibration trials sit at the top of the message-id space, not among the ids that
    evaluations use (they count up from 0)."""
    seen = []

    def sample(rng, messages, k):
        seen.append(messages)
        return GaussianSource(NOISE_VAR).sample(rng, messages, k)

    shrink = ShrinkEstimate(sample, calibration_trials=100)
    shrink.table(GaussianModel(0.05, NOISE_VAR), _coder(1, 2, 64, 0.05), 0)
    assert int(torch.cat(seen).min()) > 2**42


def test_with_check_bits_the_bayes_output_is_its_posterior_mean_also_where_the_check_failed():
    """With check bits the Bayes decoder's output is also its fallback (the posterior mean
    already accounts for a failed check), so its output never reverts to E[A | T]."""
    s2 = 0.1
    model = GaussianModel(s2, NOISE_VAR, estimate=BayesEstimate(64))
    coder = _coder(2, 2, 256, s2, check_bits=1)
    messages = torch.arange(50)
    draw = GaussianSource(NOISE_VAR).sample(CounterRandomness(coder.seed), messages, 2)
    got = code(model, coder, messages, draw.source, draw.side_info, check_bits=1).decoded
    assert not got.accepted.all()  # some checks failed
    assert torch.equal(got.output, got.picked)


def test_bad_estimate_settings_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown estimate 'bays'.*pick, shrink, bayes"):
        estimate_named("bays")
    with pytest.raises(Exception, match="posterior_draws"):
        estimate_named("bayes", posterior_draws=0)
    with pytest.raises(ConfigError, match="sampler"):
        estimate_named("shrink")
    assert estimate_named("pick") is None

    class NoPosterior:
        pass

    with pytest.raises(ConfigError, match="closed-form posteriors"):
        BayesEstimate(4)(NoPosterior(), None, None)


def test_the_gaussian_job_refuses_an_estimate_it_cannot_apply():
    from dsc.eval.gaussian_point import gaussian_point

    with pytest.raises(ConfigError, match="estimate=bayes.*nested_scalar"):
        gaussian_point("nested_scalar", 1, 2, estimate="bayes")
    with pytest.raises(ConfigError, match="unknown estimate"):
        gaussian_point("gls", 1, 2, estimate="mean", num_candidates=64, trials=10, selection_trials=10)
