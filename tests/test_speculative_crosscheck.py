"""The token-level cross-check (dsc.speculative.crosscheck): SpecInfer's exact acceptance against
an enumeration of the draft tokens and against the verifier's Monte Carlo rate, GLS's Monte Carlo
match probability against exact cases (K = 1, point-mass drafts, drafts equal to the target), the
list matching lemma and the verifier, its standard error against the exact binomial one, and
clear errors. Small random distributions, fixed seeds, tolerances from the sample sizes."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import dsc
from dsc.speculative import SharedNoise, verify_block
from dsc.speculative.crosscheck import (
    compact,
    crosscheck,
    gls_match_frequency,
    single_draft_acceptance,
    specinfer_acceptance,
    stack,
)
from dsc.speculative.noise import gumbel_sample
from tests._stats import Z, binomial_margin


def random_distributions(count: int, v: int, seed: int, sparse: bool = True) -> torch.Tensor:
    """``count`` random distributions ``[count, v]``; ``sparse``: about 30 % of the tokens get
    probability 0 (as under top-k), never all of a row's."""
    g = torch.Generator().manual_seed(seed)
    probs = -torch.rand(count, v, generator=g, dtype=torch.float64).log()  # normalized: Dirichlet(1, .., 1)
    if sparse:
        probs = probs * (torch.rand(count, v, generator=g) > 0.3)
        probs[probs.sum(-1) == 0, 0] = 1.0
    return probs / probs.sum(-1, keepdim=True)


def specinfer_by_enumeration(q: torch.Tensor, p: torch.Tensor) -> float:
    """Sum over every draft tuple (x_1..x_K) of prod_k p_k(x_k) times the chance that the
    algorithm accepts one of them: draft k passes with min(1, r(x_k) / p_k(x_k)), and after a
    rejection r becomes normalize((r - p_k)+)."""
    k, v = p.shape
    total = 0.0
    for xs in itertools.product(range(v), repeat=k):
        weight = math.prod(p[i, x].item() for i, x in enumerate(xs))
        if weight == 0:
            continue
        r, pending, accepted = q.clone(), 1.0, 0.0
        for i, x in enumerate(xs):
            chance = min(1.0, (r[x] / p[i, x]).item())
            accepted += pending * chance
            pending *= 1 - chance
            residual = (r - p[i]).clamp_min(0)
            r = residual / residual.sum() if residual.sum() > 0 else r
        total += weight * accepted
    return total


def verifier_rate(method: str, q: torch.Tensor, p: torch.Tensor, n: int, seed: int) -> float:
    """The project's verifier at one position (K drafts sampled from their own p_k with the
    shared noise, target q): the fraction of n sequences that emit a draft token."""
    k, v = p.shape
    noise, seqs, start = SharedNoise(seed), torch.arange(n), torch.zeros(n, dtype=torch.long)
    draft_probs = p[None, :, None, :].expand(n, k, 1, v)
    x = gumbel_sample(noise.draft_rows(seqs, start, k, v), draft_probs[:, :, 0])[..., None]
    target = q[None, None, None, :].expand(n, k, 2, v)
    return verify_block(method, x, draft_probs, target, noise, seqs, start).accepted[:, 0].double().mean().item()


def gumbel_coupling(q: torch.Tensor, p: torch.Tensor) -> float:
    """K = 1: Pr[X = Y] = sum_j 1 / sum_i max(p_i / p_j, q_i / q_j) over tokens both can emit."""
    both = (p > 0) & (q > 0)
    return sum(1 / torch.maximum(p / p[j], q / q[j]).sum().item() for j in torch.nonzero(both)[:, 0])


def lml_bound(q: torch.Tensor, p: torch.Tensor, k: int) -> float:
    """The list matching lemma for K i.i.d. drafts from p (supports equal here)."""
    return sum(k / (torch.maximum(q / q[j], p / p[j]) + (k - 1) * q / q[j]).sum().item() for j in range(len(q)))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_specinfer_exact_acceptance_equals_the_enumeration(k):
    for seed in range(4):
        q = random_distributions(1, 5, seed)[0]
        p = random_distributions(k, 5, 100 + seed)
        assert specinfer_acceptance(q, p).item() == pytest.approx(specinfer_by_enumeration(q, p), abs=1e-12)
    q = random_distributions(1, 5, 7)[0]
    assert specinfer_acceptance(q, torch.stack([q] * k)).item() == pytest.approx(1.0, abs=1e-12)


def test_specinfer_exact_acceptance_matches_the_verifier():
    n = 30_000
    q = random_distributions(1, 6, 11)[0]
    p = random_distributions(2, 6, 12)
    exact = specinfer_acceptance(q, p).item()
    assert 0.3 < exact < 0.97  # a case that tells acceptance apart from 0 and 1
    assert abs(verifier_rate("specinfer", q, p, n, seed=3) - exact) < binomial_margin(exact, n)


def test_acceptances_batch_over_positions():
    q = random_distributions(6, 5, 21)
    p = random_distributions(12, 5, 22).view(6, 2, 5)
    batched = specinfer_acceptance(q, p)
    single = single_draft_acceptance(q, p)
    for i in range(6):
        assert batched[i].item() == pytest.approx(specinfer_by_enumeration(q[i], p[i]), abs=1e-12)
        assert single[i].item() == pytest.approx(1 - 0.5 * (p[i, 0] - q[i]).abs().sum().item(), abs=1e-12)


def test_gls_match_frequency_in_exact_cases():
    n = 20_000
    g = torch.Generator().manual_seed(0)
    q = random_distributions(3, 6, 31)
    p1 = random_distributions(3, 6, 32)[:, None, :]
    found = gls_match_frequency(q, p1, n, g)  # K = 1: the Gumbel coupling
    for i in range(3):
        exact = gumbel_coupling(q[i], p1[i, 0])
        assert abs(found[i].item() - exact) < binomial_margin(exact, n)
    # point-mass drafts on tokens 1 and 4: the match is Y in {1, 4}, probability q_1 + q_4
    points = torch.zeros(3, 2, 6, dtype=torch.float64)
    points[:, 0, 1] = points[:, 1, 4] = 1
    found = gls_match_frequency(q, points, n, g)
    for i in range(3):
        exact = (q[i, 1] + q[i, 4]).item()
        assert abs(found[i].item() - exact) < binomial_margin(exact, n)
    # every draft distribution equal to the target: the row holding the overall minimum always matches
    assert torch.equal(gls_match_frequency(q, torch.stack([q, q], dim=1), 500, g), torch.ones(3, dtype=torch.float64))


def test_gls_match_frequency_against_the_lemma_and_the_verifier():
    n = 30_000
    g = torch.Generator().manual_seed(1)
    q, p = random_distributions(2, 6, 41, sparse=False)  # full supports, as the lemma's sum is written
    for k in (2, 4):
        found = gls_match_frequency(q[None], p.expand(1, k, 6), n, g).item()
        assert found >= lml_bound(q, p, k) - binomial_margin(found, n)
    mixed = random_distributions(2, 6, 42)  # two different draft distributions
    found = gls_match_frequency(q[None], mixed[None], n, g).item()
    verified = verifier_rate("gls", q, mixed, n, seed=5)
    assert abs(found - verified) < Z * math.sqrt(2 * max(found * (1 - found), 1 / n) / n)


def test_crosscheck_averages_with_standard_errors():
    n, count = 4000, 40
    q = random_distributions(count, 7, 51)
    p = random_distributions(count, 7, 52)[:, None, :]  # K = 1: GLS's match has a closed form
    positions = [compact(q[i], p[i]) for i in range(count)]
    out = crosscheck(positions, samples=n, seed=3)
    exact = torch.tensor([gumbel_coupling(q[i], p[i, 0]) for i in range(count)], dtype=torch.float64)
    mc_se = math.sqrt((exact * (1 - exact)).sum().item() / n) / count  # the exact binomial SE of the mean
    assert (out["positions"], out["drafts"], out["samples"]) == (count, 1, n)
    assert out["gls_mc_se"] == pytest.approx(mc_se, rel=0.05)
    assert abs(out["gls"] - exact.mean().item()) < Z * mc_se
    tv = 1 - 0.5 * (p[:, 0] - q).abs().sum(-1)
    assert out["single_draft"] == pytest.approx(tv.mean().item(), abs=1e-12)
    assert out["specinfer"] == pytest.approx(tv.mean().item(), abs=1e-12)  # K = 1: SpecInfer is single draft
    assert out["single_draft_se"] == pytest.approx(tv.std().item() / math.sqrt(count), rel=1e-9)
    assert out["gls_minus_specinfer"] == pytest.approx(out["gls"] - out["specinfer"], abs=1e-12)


def test_compact_keeps_the_union_of_supports_and_stack_pads_with_zeros():
    q = torch.tensor([0.5, 0.0, 0.5, 0.0, 0.0], dtype=torch.float64)
    p = torch.tensor([[0.0, 0.0, 0.5, 0.5, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    cq, cp = compact(q, p)
    assert torch.equal(cq, q[[0, 2, 3]]) and torch.equal(cp, p[:, [0, 2, 3]])
    assert specinfer_acceptance(cq, cp).item() == pytest.approx(specinfer_by_enumeration(q, p), abs=1e-12)
    small = (torch.tensor([1.0], dtype=torch.float64), torch.tensor([[1.0], [1.0]], dtype=torch.float64))
    qs, ps = stack([(cq, cp), small])
    assert qs.shape == (2, 3) and ps.shape == (2, 2, 3)
    assert torch.equal(qs[1], torch.tensor([1.0, 0, 0], dtype=torch.float64))
    assert specinfer_acceptance(qs, ps)[1].item() == 1.0


def test_bad_input_is_a_clear_error():
    q = torch.full((4,), 0.25, dtype=torch.float64)
    p = torch.full((2, 4), 0.25, dtype=torch.float64)
    with pytest.raises(dsc.ShapeMismatchError):
        specinfer_acceptance(q, p[:, :3])
    with pytest.raises(dsc.ShapeMismatchError):
        specinfer_acceptance(q, p[0])
    with pytest.raises(dsc.InvalidProbabilityError, match="sum to 1"):
        specinfer_acceptance(q * 2, p)
    with pytest.raises(dsc.InvalidProbabilityError):
        single_draft_acceptance(q, -p)
    with pytest.raises(dsc.InvalidArgumentError, match="samples"):
        gls_match_frequency(q[None], p[None], 0)
    with pytest.raises(dsc.ShapeMismatchError, match="P, V"):
        gls_match_frequency(q, p, 10)
    with pytest.raises(dsc.InvalidArgumentError, match="at least one position"):
        crosscheck([])
    with pytest.raises(dsc.ShapeMismatchError, match="same number of drafts"):
        stack([(q, p), (q, p[:1])])
