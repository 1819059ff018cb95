"""Importance-sampled conditional GLS over shared candidates (the compression coder):
selected laws against closed-form Gaussian posteriors, matching against the Prop. 4 bound,
chunk invariance, bounded memory, label bins, the shared-randomness baseline, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

import dsc
from dsc.coding import GaussianPrior, ImportanceCoder, Scheme, prop4_error_bound
from tests._stats import binomial_margin

NOISE_VAR = 0.5  # side information T = A + N(0, 0.5)
POST_VAR = NOISE_VAR / (1 + NOISE_VAR)  # var(A | T)


def log_normal(x, mean, var):
    return -0.5 * (x - mean) ** 2 / var - 0.5 * math.log(2 * math.pi * var)


class GaussianSetup:
    """A ~ N(0,1), T_k = A + N(0, 0.5), test channel W | A ~ N(A, s2), prior N(0, 1 + s2)."""

    def __init__(self, batch, num_decoders, s2, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.s2 = s2
        self.a = torch.randn(batch, generator=g, dtype=torch.float64)
        self.t = self.a[:, None] + math.sqrt(NOISE_VAR) * torch.randn(batch, num_decoders, generator=g,
                                                                      dtype=torch.float64)
        self.prior = GaussianPrior(dim=1, std=math.sqrt(1 + s2))

    def encoder_log_weight(self, u):  # [B, n, 1] -> [B, n]
        u = u[..., 0].double()
        return log_normal(u, self.a[:, None], self.s2) - log_normal(u, 0.0, 1 + self.s2)

    def decoder_mean_var(self, t):
        return t / (1 + NOISE_VAR), 1 + self.s2 - 1 / (1 + NOISE_VAR)

    def decoder_log_weight(self, u, decoders=None):  # [B, n, 1] -> [B, R, n]
        t = self.t if decoders is None else self.t[:, decoders]
        mean, var = self.decoder_mean_var(t)
        u = u[..., 0].double()[:, None, :]
        return log_normal(u, mean[..., None], var) - log_normal(u, 0.0, 1 + self.s2)

    def coder(self, **kw):
        kw.setdefault("seed", 1)
        kw.setdefault("num_decoders", self.t.shape[1])
        return ImportanceCoder(prior=self.prior, **kw)


def test_encoder_pick_follows_the_test_channel():
    """With N large, the selected candidate is ~ N(a, s2) (fixed a, KS test)."""
    setup = GaussianSetup(batch=3000, num_decoders=3, s2=0.1)
    setup.a = torch.full_like(setup.a, 0.7)
    coder = setup.coder(num_candidates=2**12, num_labels=4)
    picked = coder.encode(torch.arange(3000), setup.encoder_log_weight).candidate[:, 0]
    pvalue = stats.kstest(picked.double().numpy(), stats.norm(0.7, math.sqrt(0.1)).cdf).pvalue
    assert pvalue > 1e-3


@pytest.mark.parametrize("scheme", list(Scheme))
def test_decoder_pick_with_one_label_follows_the_decoder_target(scheme):
    """L_max = 1 puts every candidate in the received bin: decoder k's pick ~ p_{W|T}(.|t_k)."""
    setup = GaussianSetup(batch=3000, num_decoders=2, s2=0.05)
    setup.t = torch.full_like(setup.t, -0.4)
    coder = setup.coder(num_candidates=2**12, num_labels=1, scheme=scheme)
    messages = torch.arange(3000)
    decoded = coder.decode(messages, torch.zeros(3000, dtype=torch.long), setup.decoder_log_weight)
    mean, var = setup.decoder_mean_var(torch.tensor(-0.4))
    for k in range(2):
        picked = decoded.candidate[:, k, 0].double().numpy()
        assert stats.kstest(picked, stats.norm(mean.item(), math.sqrt(var)).cdf).pvalue > 1e-3


def gaussian_info_density_bits(setup, num_samples=200_000, seed=5):
    """Samples of i(W; A | T) = log2 p(w|a) / p(w|t) for (A, T, W) drawn from the model."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(num_samples, generator=g, dtype=torch.float64)
    t = a + math.sqrt(NOISE_VAR) * torch.randn(num_samples, generator=g, dtype=torch.float64)
    w = a + math.sqrt(setup.s2) * torch.randn(num_samples, generator=g, dtype=torch.float64)
    mean, var = setup.decoder_mean_var(t)
    return (log_normal(w, a, setup.s2) - log_normal(w, mean, var)) / math.log(2)


@pytest.mark.parametrize(
    "num_decoders, num_labels, balanced", [(1, 4, False), (2, 4, True), (4, 2, True)]
)
def test_error_probability_is_within_the_prop4_bound(num_decoders, num_labels, balanced):
    batch = 2000
    setup = GaussianSetup(batch=batch, num_decoders=num_decoders, s2=0.05)
    coder = setup.coder(num_candidates=2**11, num_labels=num_labels, balanced_labels=balanced)
    messages = torch.arange(batch)
    encoded = coder.encode(messages, setup.encoder_log_weight)
    decoded = coder.decode(messages, encoded.label, setup.decoder_log_weight)
    error = 1 - (decoded.index == encoded.index[:, None]).any(-1).double().mean().item()
    bound = prop4_error_bound(gaussian_info_density_bits(setup), num_decoders, num_labels).item()
    assert 0 < bound < 1
    assert error <= bound + binomial_margin(bound, batch)


def test_more_rows_beat_the_shared_randomness_baseline():
    batch = 2000
    setup = GaussianSetup(batch=batch, num_decoders=4, s2=0.01)
    rates = {}
    for scheme in Scheme:
        coder = setup.coder(num_candidates=2**11, num_labels=4, scheme=scheme, balanced_labels=True)
        encoded = coder.encode(torch.arange(batch), setup.encoder_log_weight)
        decoded = coder.decode(torch.arange(batch), encoded.label, setup.decoder_log_weight)
        rates[scheme] = (decoded.index == encoded.index[:, None]).any(-1).double().mean().item()
    gap = rates[Scheme.GLS] - rates[Scheme.SHARED_RANDOMNESS]
    assert gap > math.sqrt(2) * binomial_margin(0.5, batch), rates


@pytest.mark.parametrize("balanced", [False, True])
@pytest.mark.parametrize("scheme", list(Scheme))
def test_chunk_size_changes_no_result(balanced, scheme):
    setup = GaussianSetup(batch=16, num_decoders=3, s2=0.01)
    messages = torch.arange(100, 116)
    results = []
    for chunk in (None, 97, 1000, 2**11):
        coder = setup.coder(num_candidates=2**11, num_labels=8, chunk_size=chunk,
                            balanced_labels=balanced, scheme=scheme)
        encoded = coder.encode(messages, setup.encoder_log_weight)
        results.append((encoded, coder.decode(messages, encoded.label, setup.decoder_log_weight)))
    for encoded, decoded in results[1:]:
        for got, want in zip(encoded + decoded, results[0][0] + results[0][1]):
            assert torch.equal(got, want)


def test_scoring_never_sees_more_than_a_chunk():
    setup = GaussianSetup(batch=8, num_decoders=2, s2=0.01)
    seen = []

    def encoder(u):
        seen.append(u.shape[1])
        return setup.encoder_log_weight(u)

    def decoder(u):
        seen.append(u.shape[1])
        return setup.decoder_log_weight(u)

    for n in (2**10, 2**14):
        coder = setup.coder(num_candidates=n, num_labels=2, chunk_size=256)
        encoded = coder.encode(torch.arange(8), encoder)
        coder.decode(torch.arange(8), encoded.label, decoder)
    assert max(seen) == 256


@pytest.mark.parametrize("balanced", [False, True])
def test_decoders_pick_inside_the_received_bin(balanced):
    setup = GaussianSetup(batch=64, num_decoders=3, s2=0.01)
    coder = setup.coder(num_candidates=2**10, num_labels=16, balanced_labels=balanced)
    messages = torch.arange(64)
    encoded = coder.encode(messages, setup.encoder_log_weight)
    assert torch.equal(coder.labels_of(messages, encoded.index[:, None])[:, 0], encoded.label)
    decoded = coder.decode(messages, encoded.label, setup.decoder_log_weight)
    assert decoded.found.all()
    picked_labels = coder.labels_of(messages, decoded.index)
    assert (picked_labels == encoded.label[:, None]).all()
    assert torch.equal(coder.candidates_at(messages, decoded.index), decoded.candidate)


def test_balanced_labels_give_every_label_the_same_number_of_candidates():
    setup = GaussianSetup(batch=2, num_decoders=1, s2=0.01)
    coder = setup.coder(num_candidates=96, num_labels=8, balanced_labels=True)
    labels = coder.labels_of(torch.arange(2), torch.arange(96))
    assert (torch.stack([torch.bincount(row, minlength=8) for row in labels]) == 12).all()


def test_iid_labels_are_uniform():
    setup = GaussianSetup(batch=4, num_decoders=1, s2=0.01)
    coder = setup.coder(num_candidates=2**14, num_labels=8)
    labels = coder.labels_of(torch.arange(4), torch.arange(2**14)).flatten()
    counts = torch.bincount(labels, minlength=8).numpy()
    assert stats.chisquare(counts).pvalue > 1e-4


def test_baseline_uses_row_zero_for_everyone():
    """In the baseline the picks do not depend on K; at K = 1 both schemes coincide."""
    setup = GaussianSetup(batch=64, num_decoders=4, s2=0.01)
    messages = torch.arange(64)
    base4 = setup.coder(num_candidates=2**10, num_labels=4, scheme="shared_randomness")
    gls1 = setup.coder(num_candidates=2**10, num_labels=4, num_decoders=1)
    e4, e1 = base4.encode(messages, setup.encoder_log_weight), gls1.encode(messages, setup.encoder_log_weight)
    assert torch.equal(e4.index, e1.index)
    d4 = base4.decode(messages, e4.label, setup.decoder_log_weight)
    for k in range(4):
        dk = gls1.decode(messages, e4.label, lambda u, k=k: setup.decoder_log_weight(u, [k]), decoders=[0])
        assert torch.equal(d4.index[:, k], dk.index[:, 0])


def test_single_decoder_equals_its_column_of_all_decoders():
    setup = GaussianSetup(batch=32, num_decoders=3, s2=0.01)
    coder = setup.coder(num_candidates=2**10, num_labels=4)
    messages = torch.arange(32)
    label = coder.encode(messages, setup.encoder_log_weight).label
    everyone = coder.decode(messages, label, setup.decoder_log_weight)
    second = coder.decode(messages, label, lambda u: setup.decoder_log_weight(u, [2]), decoders=[2])
    assert torch.equal(everyone.index[:, 2:], second.index)


def test_same_seed_same_picks_other_seed_other_picks():
    setup = GaussianSetup(batch=256, num_decoders=2, s2=0.01)
    messages = torch.arange(256)
    a = setup.coder(num_candidates=2**10, num_labels=4).encode(messages, setup.encoder_log_weight)
    b = setup.coder(num_candidates=2**10, num_labels=4).encode(messages, setup.encoder_log_weight)
    c = setup.coder(num_candidates=2**10, num_labels=4, seed=2).encode(messages, setup.encoder_log_weight)
    assert torch.equal(a.index, b.index)
    assert (a.index != c.index).float().mean() > 0.9


def test_zero_weight_candidates_are_never_selected():
    setup = GaussianSetup(batch=512, num_decoders=2, s2=0.5)
    coder = setup.coder(num_candidates=2**9, num_labels=2)

    def positive_only(u):
        return setup.encoder_log_weight(u).masked_fill(u[..., 0] < 0, float("-inf"))

    assert (coder.encode(torch.arange(512), positive_only).candidate >= 0).all()


def test_a_bin_without_positive_weight_is_reported_not_guessed():
    setup = GaussianSetup(batch=4, num_decoders=2, s2=0.01)
    coder = setup.coder(num_candidates=64, num_labels=4)
    decoded = coder.decode(
        torch.arange(4), torch.zeros(4, dtype=torch.long), lambda u: torch.full((4, 2, u.shape[1]), float("-inf"))
    )
    assert not decoded.found.any() and (decoded.index == -1).all()


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_candidates=100, num_labels=8, balanced_labels=True),
        dict(num_candidates=0, num_labels=2),
        dict(num_candidates=64, num_labels=0),
        dict(num_candidates=64, num_labels=2, num_decoders=0),
        dict(num_candidates=64, num_labels=2, scheme="bogus"),
        dict(num_candidates=64, num_labels=2, chunk_size=0),
        dict(num_candidates=64, num_labels=2, seed=-1),
        dict(num_candidates=64, num_labels=2, dtype=torch.float16),
        dict(num_candidates=64, num_labels=2**33),
        dict(num_candidates=64, num_labels=2, num_decoders=2**16 + 1),
    ],
)
def test_bad_configuration_raises_a_dsc_error(kwargs):
    with pytest.raises(dsc.DscError):
        ImportanceCoder(prior=GaussianPrior(), **{"seed": 0, **kwargs})


def test_bad_calls_raise_dsc_errors_that_name_the_problem():
    setup = GaussianSetup(batch=4, num_decoders=2, s2=0.01)
    coder = setup.coder(num_candidates=64, num_labels=4)
    messages = torch.arange(4)
    with pytest.raises(dsc.ShapeMismatchError, match="shape"):
        coder.encode(messages, lambda u: torch.zeros(4))
    with pytest.raises(dsc.InvalidProbabilityError, match="NaN"):
        coder.encode(messages, lambda u: torch.full(u.shape[:2], float("nan")))
    with pytest.raises(dsc.InvalidArgumentError, match="L_max"):
        coder.decode(messages, torch.full((4,), 4), setup.decoder_log_weight)
    with pytest.raises(dsc.ShapeMismatchError):
        coder.decode(messages, torch.zeros(3, dtype=torch.long), setup.decoder_log_weight)
    with pytest.raises(dsc.InvalidArgumentError, match="decoder ids"):
        coder.decode(messages, torch.zeros(4, dtype=torch.long), setup.decoder_log_weight, decoders=[5])
    with pytest.raises(dsc.InvalidProbabilityError, match="no candidate has positive weight"):
        coder.encode(messages, lambda u: torch.full(u.shape[:2], float("-inf")))
    with pytest.raises(dsc.InvalidArgumentError, match="at least one"):
        coder.encode(torch.arange(0), setup.encoder_log_weight)
    with pytest.raises(dsc.InvalidArgumentError, match="1-D"):
        coder.encode(torch.zeros(2, 2, dtype=torch.long), setup.encoder_log_weight)
    with pytest.raises(dsc.InvalidArgumentError, match="num_labels"):
        ImportanceCoder(seed=0, prior=GaussianPrior(), num_candidates=100, num_labels=8, balanced_labels=True)
    with pytest.raises(dsc.InvalidArgumentError, match="message ids"):
        coder.labels_of(torch.tensor([2**44]), torch.arange(4))
    with pytest.raises(dsc.InvalidArgumentError, match="candidate indices"):
        coder.candidates_at(messages[:1], torch.tensor([[-1]]))
    with pytest.raises(dsc.InvalidArgumentError, match="candidate indices"):
        coder.labels_of(messages[:1], torch.tensor([64]))


@pytest.mark.gpu
def test_cpu_and_cuda_pick_the_same_candidates():
    setup = GaussianSetup(batch=512, num_decoders=3, s2=0.01)
    coder = setup.coder(num_candidates=2**12, num_labels=8, dtype=torch.float64)
    messages = torch.arange(512)
    cpu = coder.encode(messages, setup.encoder_log_weight)
    setup.a = setup.a.cuda()
    gpu = coder.encode(messages.cuda(), setup.encoder_log_weight)
    assert torch.equal(cpu.index, gpu.index.cpu())


class _Counting:
    """A log-weight that records how many candidates per message it scored (no subset: the
    coder then keeps every message until all are finished)."""

    def __init__(self, fn, scored):
        self.fn, self.scored = fn, scored

    def __call__(self, u):
        self.scored.append(u.shape[1])
        return self.fn(u)


class _Unbounded:
    """A log-weight that declares it has no bound (``maximum = None``): the coder scans all N."""

    maximum = None

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, u):
        return self.fn(u)


class _CountingSubset(_Counting):
    """The same with ``subset``: finished messages leave the scan, and the count is of
    (message, candidate) pairs scored."""

    def __call__(self, u):
        self.scored.append(u.shape[0] * u.shape[1])
        return self.fn(u)

    def subset(self, rows):
        return _CountingSubset(self.fn.subset(rows), self.scored)


def test_declared_weight_bounds_stop_early_with_exactly_the_full_scan_result():
    """The closed-form maxima of the Gaussian log-weights let both sides stop scanning; the
    picks must equal those of a full scan, and far fewer candidates are scored.

    What a full scan scores, from N and L alone: the encoder scores all N arrivals of every
    message; a decoder scores, per chunk, the largest count of received-bin arrivals in the batch,
    so at least the largest bin, N / L or more (exactly N / L with balanced labels; with i.i.d.
    labels the largest of 64 Binomial(N, 1/L) bins). Each bound below is a fraction of those."""
    from dsc.models.gaussian import AnalyticGaussianModel

    torch.manual_seed(0)
    batch, n, labels = 64, 2**14, 4
    a = torch.randn(batch, dtype=torch.float64)
    t = a[:, None] + math.sqrt(NOISE_VAR) * torch.randn(batch, 3, dtype=torch.float64)
    model = AnalyticGaussianModel(0.005)
    messages = torch.arange(batch)
    encoder, decoder = model.encoder_log_weight(a), model.decoder_log_weight(t)
    for scheme in Scheme:
        for balanced in (False, True):
            settings = dict(seed=4, prior=model.prior, num_candidates=n, num_labels=labels, num_decoders=3,
                            scheme=scheme, balanced_labels=balanced)
            coder = ImportanceCoder(**settings, chunk_size=128)
            reference = ImportanceCoder(**settings, chunk_size=4096)  # chunking changes no pick
            full = reference.encode(messages, _Unbounded(encoder))
            full_d = reference.decode(messages, full.label, _Unbounded(decoder))
            scored = []
            fast = coder.encode(messages, _Counting(encoder, scored), encoder.maximum())
            assert torch.equal(full.index, fast.index) and torch.equal(full.label, fast.label)
            assert sum(scored) < n / 4  # the slowest of the 64 messages decides when the scan ends
            scored.clear()
            fast_d = coder.decode(messages, full.label, _Counting(decoder, scored), log_weight_max=decoder.maximum())
            assert torch.equal(full_d.index, fast_d.index)
            assert sum(scored) < n / labels
            # finished messages leave the scan: (message, candidate) pairs scored per message
            scored.clear()
            assert torch.equal(coder.encode(messages, _CountingSubset(encoder, scored), encoder.maximum()).index,
                               full.index)
            assert sum(scored) / batch < n / 16
            scored.clear()
            got = coder.decode(messages, full.label, _CountingSubset(decoder, scored), log_weight_max=decoder.maximum())
            assert torch.equal(got.index, full_d.index)
            assert sum(scored) / batch < n / labels / 16


def test_a_bound_the_weights_exceed_is_refused():
    setup = GaussianSetup(batch=8, num_decoders=2, s2=0.01)
    coder = setup.coder(num_candidates=256, num_labels=2)
    with pytest.raises(dsc.InvalidProbabilityError, match="bound"):
        coder.encode(torch.arange(8), setup.encoder_log_weight, torch.zeros(8, dtype=torch.float64) - 5)
    with pytest.raises(dsc.ShapeMismatchError, match="log_weight_max"):
        coder.encode(torch.arange(8), setup.encoder_log_weight, torch.zeros(3))
