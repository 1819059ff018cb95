"""Fast coding by default: Gaussian log-weights with exact maxima (diagonal and full
covariances), the coder using a callable's maximum() on its own, and one warning when a weight
has no bound and N is large."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch.distributions import MultivariateNormal

import dsc
from dsc.coding import GaussianLogWeight, GaussianPrior, ImportanceCoder, UnboundedWeightWarning, importance

G = torch.Generator().manual_seed(0)


def random_cov(*batch: int, dim: int, scale: float) -> torch.Tensor:
    """Random symmetric positive definite matrices ``[*batch, d, d]`` with eigenvalues in (0, scale)."""
    q, _ = torch.linalg.qr(torch.randn(*batch, dim, dim, generator=G, dtype=torch.float64))
    eig = scale * (0.05 + 0.9 * torch.rand(*batch, dim, generator=G, dtype=torch.float64))
    return q @ torch.diag_embed(eig) @ q.transpose(-1, -2)


def log_ratio_reference(u, mean, cov, prior_mean, prior_var):
    """log N(u; mean, cov) - log N(u; prior_mean, prior_var I) from torch.distributions; u ``[..., d]``."""
    d = mean.shape[-1]
    posterior = MultivariateNormal(mean, covariance_matrix=cov)
    prior = MultivariateNormal(torch.full((d,), prior_mean, dtype=torch.float64),
                               covariance_matrix=prior_var * torch.eye(d, dtype=torch.float64))
    return posterior.log_prob(u) - prior.log_prob(u)


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("decoders", [False, True])
def test_log_weights_and_maxima_against_torch_distributions(full, decoders):
    """Values against MultivariateNormal densities; the maximum against the weight at the
    stationary point u* solving (S^-1 - S0^-1) u = S^-1 mean - S0^-1 m0, above every candidate."""
    b, r, d, n = 4, 3, 3, 50
    prior = GaussianPrior(dim=d, mean=0.3, std=1.2)
    lead = (b, r) if decoders else (b,)
    mean = torch.randn(*lead, d, generator=G, dtype=torch.float64)
    cov = random_cov(*lead, dim=d, scale=1.0) if full else torch.diag_embed(
        0.2 + torch.rand(*lead, d, generator=G, dtype=torch.float64))
    weight = GaussianLogWeight(mean, prior, cov=cov) if full else GaussianLogWeight(
        mean, prior, var=cov.diagonal(dim1=-2, dim2=-1))
    u = 0.3 + 1.2 * torch.randn(b, n, d, generator=G, dtype=torch.float64)
    got = weight(u)
    expected = log_ratio_reference(u[:, None] if decoders else u, mean[..., None, :], cov[..., None, :, :], 0.3, 1.44)
    assert got.shape == (b, r, n) if decoders else (b, n)
    assert torch.allclose(got, expected, atol=1e-10)
    precision, prior_precision = torch.linalg.inv(cov), torch.eye(d, dtype=torch.float64) / 1.44
    rhs = (precision @ mean[..., None])[..., 0] - 0.3 / 1.44
    best = torch.linalg.solve(precision - prior_precision, rhs)  # [*lead, d]
    at_best = log_ratio_reference(best, mean, cov, 0.3, 1.44)
    maximum = weight.maximum()
    assert maximum.shape == lead and torch.allclose(maximum, at_best, atol=1e-10)
    assert bool((got <= maximum[..., None] + 1e-12).all())
    nearby = best[..., None, :] + 1e-3 * torch.randn(*lead, 20, d, generator=G, dtype=torch.float64)
    assert bool((log_ratio_reference(nearby, mean[..., None, :], cov[..., None, :, :], 0.3, 1.44)
                 < maximum[..., None]).all())


def test_the_maximum_is_infinite_where_a_posterior_direction_is_as_wide_as_the_prior():
    prior = GaussianPrior(dim=2, std=1.0)
    mean = torch.zeros(3, 2, dtype=torch.float64)
    var = torch.tensor([[0.5, 0.5], [0.5, 1.0], [2.0, 0.1]], dtype=torch.float64)
    assert GaussianLogWeight(mean, prior, var=var).maximum().isinf().tolist() == [False, True, True]
    wide = torch.tensor([[1.5, 0.0], [0.0, 0.5]], dtype=torch.float64)  # one eigenvalue above the prior's 1
    narrow = torch.tensor([[0.5, 0.2], [0.2, 0.5]], dtype=torch.float64)
    cov = torch.stack([wide, narrow, narrow])
    assert GaussianLogWeight(mean, prior, cov=cov).maximum().isinf().tolist() == [True, False, False]


def test_the_diagonal_form_equals_the_models_own_closed_forms():
    """The scalar Gaussian model's weights and a learned codec's posterior weights (N(0, I) prior)."""
    from dsc.models.gaussian import GaussianModel
    from dsc.models.posterior import Posterior, PosteriorLogRatio

    model = GaussianModel(test_channel_var=0.005)
    a, t = torch.randn(6, generator=G, dtype=torch.float64), torch.randn(6, 2, generator=G, dtype=torch.float64)
    u = torch.randn(6, 30, 1, generator=G, dtype=torch.float64)
    ours = GaussianLogWeight(a[:, None], model.prior, var=0.005)
    assert torch.allclose(ours(u), model.encoder_log_weight(a)(u), atol=1e-9)
    assert torch.allclose(ours.maximum(), model.encoder_log_weight(a).maximum(), atol=1e-12)
    decoder = GaussianLogWeight(t[..., None] / 1.5, model.prior, var=1 / 3 + 0.005)
    assert torch.allclose(decoder(u), model.decoder_log_weight(t)(u), atol=1e-9)
    posterior = Posterior(torch.randn(6, 4, generator=G), torch.rand(6, 4, generator=G) * -3)
    learned = GaussianLogWeight(posterior.mean, GaussianPrior(dim=4), var=posterior.log_var.exp())
    w = torch.randn(6, 30, 4, generator=G)
    assert torch.allclose(learned(w).float(), PosteriorLogRatio(posterior)(w), atol=1e-4)
    assert torch.allclose(learned.maximum(), PosteriorLogRatio(posterior).maximum(), atol=1e-5)


class Scanned:
    """A log-weight that counts the (message, candidate) pairs it scored; ``bounded``: with the
    wrapped weight's maximum(), else declaring none (maximum = None: a full scan, no warning)."""

    def __init__(self, weight, scored, bounded):
        self.weight, self.scored, self.bounded = weight, scored, bounded
        self.maximum = weight.maximum if bounded else None

    def __call__(self, u):
        self.scored[0] += u.shape[0] * u.shape[1]
        return self.weight(u)

    def subset(self, rows):
        return Scanned(self.weight.subset(rows), self.scored, self.bounded)


@pytest.mark.parametrize("full", [False, True])
def test_the_coder_stops_early_with_the_weights_own_maximum_and_the_full_scans_picks(full):
    """Two-dimensional source, correlated (full) or independent (diagonal) test channel; the
    coder is given the callables only and finds the bounds itself."""
    b, d, k, n = 48, 2, 3, 2**13
    g = torch.Generator().manual_seed(1)
    a = torch.randn(b, d, generator=g, dtype=torch.float64)
    s2 = torch.tensor([[0.02, 0.012], [0.012, 0.02]], dtype=torch.float64) if full else 0.02 * torch.eye(
        d, dtype=torch.float64)
    t = a[:, None] + math.sqrt(0.5) * torch.randn(b, k, d, generator=g, dtype=torch.float64)
    prior = GaussianPrior(dim=d, std=math.sqrt(1.02))
    encoder = GaussianLogWeight(a, prior, cov=s2) if full else GaussianLogWeight(a, prior, var=0.02)
    decoder = GaussianLogWeight(t / 1.5, prior, cov=torch.eye(d, dtype=torch.float64) / 3 + s2)  # p(w | t_k)
    settings = dict(seed=3, prior=prior, num_candidates=n, num_labels=4, num_decoders=k)
    coders = {True: ImportanceCoder(**settings, chunk_size=128), False: ImportanceCoder(**settings, chunk_size=4096)}
    messages = torch.arange(b)
    counts = {}
    picks = {}
    for bounded, coder in coders.items():  # chunking changes no pick; small chunks let a scan stop sooner
        scored_e, scored_d = [0], [0]
        sent = coder.encode(messages, Scanned(encoder, scored_e, bounded))
        got = coder.decode(messages, sent.label, Scanned(decoder, scored_d, bounded))
        picks[bounded], counts[bounded] = (sent.index, got.index), (scored_e[0], scored_d[0])
    assert torch.equal(picks[True][0], picks[False][0]) and torch.equal(picks[True][1], picks[False][1])
    assert counts[False][0] == b * n  # the full scan scores every candidate
    # a full scan scores N candidates per message at the encoder and at least the bin, N / L, at the decoders
    assert counts[False][1] >= b * n / 4
    assert counts[True][0] < b * n / 4 and counts[True][1] < b * n / 4 / 4
    plain = coders[True].encode(messages, encoder)  # the bare weight: its maximum() is found and used
    assert torch.equal(plain.index, picks[False][0])
    built = coders[True].gaussian_weight(a, cov=s2)  # the same weight against the coder's own prior
    assert torch.allclose(built.maximum(), encoder.maximum()) and torch.allclose(built(t), encoder(t))


def test_a_weight_without_a_bound_warns_once_per_party_when_n_is_large(monkeypatch):
    monkeypatch.setattr(importance, "_WARNED", set())
    prior = GaussianPrior()
    a = torch.randn(4, 1, generator=G, dtype=torch.float64)
    weight = GaussianLogWeight(a, prior, var=0.01)
    plain = lambda u: weight(u)  # noqa: E731
    decoder = GaussianLogWeight(a[:, None].expand(4, 2, 1), prior, var=0.5)
    small = ImportanceCoder(seed=0, prior=prior, num_candidates=2**11, num_labels=2, num_decoders=2)
    large = ImportanceCoder(seed=0, prior=prior, num_candidates=2**12, num_labels=2, num_decoders=2)
    messages = torch.arange(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small.encode(messages, plain)  # N below the threshold: a full scan is cheap
        large.encode(messages, weight)  # a bound: no warning
        large.encode(messages, plain, weight.maximum())
        declared = type("Declared", (), {"maximum": None, "__call__": lambda self, u: weight(u)})()
        large.encode(messages, declared)  # maximum = None: no bound exists, said so
    with pytest.warns(UnboundedWeightWarning, match=r"encoder.s log_weight has no maximum\(\).*4,096.*as long"):
        sent = large.encode(messages, plain)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        large.encode(messages, plain)  # once
    with pytest.warns(UnboundedWeightWarning, match="decoder's log_weight.*GaussianLogWeight"):
        large.decode(messages, sent.label, lambda u: decoder(u))


def test_bad_weights_are_clear_errors():
    prior = GaussianPrior(dim=2)
    mean = torch.zeros(3, 2)
    with pytest.raises(dsc.ShapeMismatchError, match=r"mean must be a float tensor \[B, d\]"):
        GaussianLogWeight(torch.zeros(3), prior, var=1.0)
    with pytest.raises(dsc.ShapeMismatchError, match="prior has dim = 2"):
        GaussianLogWeight(torch.zeros(3, 3), prior, var=1.0)
    with pytest.raises(dsc.InvalidArgumentError, match="exactly one of var"):
        GaussianLogWeight(mean, prior)
    with pytest.raises(dsc.InvalidArgumentError, match="exactly one of var"):
        GaussianLogWeight(mean, prior, var=1.0, cov=torch.eye(2))
    with pytest.raises(dsc.InvalidArgumentError, match="variances > 0"):
        GaussianLogWeight(mean, prior, var=torch.tensor([1.0, 0.0]))
    with pytest.raises(dsc.ShapeMismatchError, match="does not broadcast"):
        GaussianLogWeight(mean, prior, var=torch.ones(4))
    with pytest.raises(dsc.InvalidArgumentError, match="positive definite"):
        GaussianLogWeight(mean, prior, cov=torch.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(dsc.InvalidArgumentError, match="symmetric"):
        GaussianLogWeight(mean, prior, cov=torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(dsc.ShapeMismatchError, match=r"cov must be a tensor \[\.\.\., 2, 2\]"):
        GaussianLogWeight(mean, prior, cov=torch.eye(3))
    with pytest.raises(dsc.InvalidArgumentError, match="GaussianPrior"):
        GaussianLogWeight(mean, type("P", (), {"dim": 2})(), var=1.0)
    with pytest.raises(dsc.InvalidArgumentError, match="finite"):
        GaussianLogWeight(torch.full((3, 2), float("nan")), prior, var=1.0)


def test_the_warnings_cost_factors_are_the_committed_benchmarks():
    """MEASURED_SLOWDOWN quotes results/bench_coding/bounds_cpu.txt (rounded): keep them in step."""
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "results" / "bench_coding" / "bounds_cpu.txt").read_text()
    ratios = {2 ** int(row[0][2:]): (float(row[4][:-1]), float(row[5][:-1]))
              for row in (line.split() for line in text.splitlines()) if row and row[0].startswith("2^")}
    for n, quoted in importance.MEASURED_SLOWDOWN.items():
        assert all(abs(q - r) <= max(0.5, 0.02 * r) for q, r in zip(quoted, ratios[n])), n
