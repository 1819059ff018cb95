"""A coding point is validated once, labels result points the same way everywhere and builds the
coder every evaluation and the codec use."""

from __future__ import annotations

import pytest
import torch

import dsc
from dsc import bitstream
from dsc.codec import CodingSetting
from dsc.coding import CodingPoint, GaussianPrior, Scheme
from dsc.coding.point import MAX_CHECK_BITS
from dsc.eval.gaussian import GaussianRateDistortion
from dsc.eval.image_point import make_coder
from dsc.eval.source_point import SourceRateDistortion
from dsc.models.gaussian import AnalyticGaussianModel


@pytest.mark.parametrize("settings, error, says", [
    (("bogus", 4, 2, 64), dsc.ConfigError, "scheme must be one of gls, shared_randomness; got 'bogus'"),
    (("gls", 0, 2, 64), dsc.InvalidArgumentError, r"num_decoders \(K\) must be an integer >= 1"),
    (("gls", 4, 0, 64), dsc.InvalidArgumentError, r"rate_bits \(log2 L_max\) must be an integer >= 1"),
    (("gls", 4, 32, 2**33), dsc.ConfigError, "rate_bits must be at most 31, got 32"),
    (("gls", 4, 3, 0), dsc.InvalidArgumentError, r"num_candidates \(N\) must be an integer >= 1"),
    (("gls", 4, 3, 7), dsc.ConfigError, r"num_candidates \(N = 7\) must be at least L_max = 2\*\*rate_bits = 8"),
    (("gls", 4, 3, 8, 33), dsc.ConfigError, r"check_bits must be an integer in \[0, 32\], got 33"),
    (("gls", 4, 3, 8, -1), dsc.ConfigError, "check_bits"),
    (("gls", 4, 3, 8, True), dsc.ConfigError, "check_bits"),
])
def test_a_bad_point_is_refused_on_construction(settings, error, says):
    with pytest.raises(error, match=says):
        CodingPoint(*settings)


def test_the_largest_point_the_coder_and_the_stream_take_is_accepted():
    point = CodingPoint("gls", 2**16 - 1, 31, 2**31, MAX_CHECK_BITS)
    assert point.num_labels == 2**31 and point.total_rate_bits == 63
    assert bitstream.MAX_CHECK_BITS == MAX_CHECK_BITS  # one limit for the stream and the jobs


def test_labels_are_the_point_s_fields_and_its_total_rate():
    point = CodingPoint(Scheme.SHARED_RANDOMNESS, 3, 2, 64, check_bits=5)
    assert point.scheme == "shared_randomness" and isinstance(point.scheme, str)
    assert point.labels() == {"scheme": "shared_randomness", "num_decoders": 3, "rate_bits": 2, "check_bits": 5,
                              "total_rate_bits": 7, "num_candidates": 64}
    assert CodingPoint("gls", 1, 4, 16).labels()["total_rate_bits"] == 4  # no check bits by default


def test_the_point_s_coder_has_the_point_s_settings():
    prior = GaussianPrior(dim=3)
    coder = CodingPoint("shared_randomness", 4, 3, 96).coder(7, prior, balanced_labels=True, chunk_size=32)
    assert (coder.seed, coder.prior, coder.num_candidates, coder.num_labels, coder.num_decoders) == (7, prior, 96, 8, 4)
    assert coder.scheme is Scheme.SHARED_RANDOMNESS and coder.balanced_labels and coder.chunk_size == 32
    plain = CodingPoint("gls", 1, 1, 2).coder(0, prior)
    assert not plain.balanced_labels and plain.chunk_size is None and plain.scheme is Scheme.GLS


def test_every_job_and_the_codec_build_their_coder_from_the_point():
    """The Gaussian job, the generic source job and the codec give the same coder for the same
    (seed, scheme, K, rate, N) and prior: they code the same messages to the same labels; the
    MNIST coder draws its candidates from the standard normal prior of the codec's latents."""
    model = AnalyticGaussianModel(0.005, 0.5)
    messages = torch.arange(64)
    source = torch.randn(64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    coders = {
        "gaussian": GaussianRateDistortion(num_decoders=2, rate_bits=2, num_candidates=64)._coder(model, 3),
        "source": SourceRateDistortion("gaussian", {"s2": 0.005}, num_decoders=2, rate_bits=2,
                                       num_candidates=64).point.coder(3, model.prior),
        "codec": CodingSetting(seed=3, num_candidates=64, rate_bits=2, num_decoders=2).coder(model.prior),
    }
    sent = {name: coder.encode(messages, model.encoder_log_weight(source)).label for name, coder in coders.items()}
    assert all(torch.equal(labels, sent["codec"]) for labels in sent.values())
    mnist = make_coder(3, 5, "gls", 2, 2, 64)
    fields = lambda c: (c.seed, c.num_candidates, c.num_labels, c.num_decoders, c.scheme)  # noqa: E731
    assert {fields(c) for c in coders.values()} == {fields(mnist)} == {(3, 64, 4, 2, Scheme.GLS)}
    assert mnist.prior == GaussianPrior(dim=5)


def test_the_codec_refuses_fewer_candidates_than_labels():
    with pytest.raises(dsc.DscError, match="L_max"):
        CodingSetting(num_candidates=4, rate_bits=3)
