"""Discrete couplings: exact marginals, matching probabilities against closed forms, equality
cases, zero-probability handling, determinism and argument checks."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

import dsc
from dsc.coding import (
    CounterRandomness,
    conditional_gls,
    conditional_matching_bound,
    gls,
    gumbel_coupling,
    gumbel_coupling_match_prob,
    gumbel_max_sample,
    list_matching_bound,
    shared_exponentials,
)
from tests._stats import binomial_margin

TRIALS = 100_000


def dirichlet(n: int, seed: int, shape=()) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = -torch.log(torch.rand(*shape, n, generator=g, dtype=torch.float64))
    return x / x.sum(-1, keepdim=True)


def noise(num_rows: int, alphabet: int, trials: int = TRIALS, seed: int = 7) -> torch.Tensor:
    return shared_exponentials(CounterRandomness(seed), torch.arange(trials), num_rows, alphabet)


def assert_follows(samples: torch.Tensor, probs: torch.Tensor) -> None:
    """Chi-square goodness of fit of integer samples against ``probs`` (p-value > 1e-4)."""
    support = probs > 0
    counts = torch.bincount(samples.flatten(), minlength=probs.numel()).double()
    assert counts[~support].sum() == 0, "an outcome of probability zero was sampled"
    expected = probs[support] * samples.numel()
    pvalue = stats.chisquare(counts[support].numpy(), expected.numpy()).pvalue
    assert pvalue > 1e-4, f"chi-square p-value {pvalue:.2e}: samples do not follow the law"


@pytest.mark.parametrize("num_rows", [1, 3])
def test_gls_marginals_are_exact(num_rows):
    p, q = dirichlet(7, 1), dirichlet(7, 2)
    sample = gls(p, q, noise(num_rows, 7))
    for k in range(num_rows):
        assert_follows(sample.list_samples[:, k], p)
    assert_follows(sample.sample, q)


def test_conditional_gls_marginals_with_different_proposals():
    p_rows, q = dirichlet(6, 3, (3,)), dirichlet(6, 4)
    sample = conditional_gls(q, p_rows.unsqueeze(0), noise(3, 6))
    for k in range(3):
        assert_follows(sample.list_samples[:, k], p_rows[k])
    assert_follows(sample.sample, q)


def test_gumbel_max_sample_follows_p_and_skips_zeros():
    p = torch.tensor([0.0, 0.5, 0.0, 0.2, 0.3], dtype=torch.float64)
    assert_follows(gumbel_max_sample(p, noise(1, 5)[:, 0]), p)


def test_zero_probability_outcomes_are_never_selected_by_either_side():
    p = torch.tensor([0.5, 0.0, 0.5, 0.0], dtype=torch.float64)
    q = torch.tensor([0.0, 0.3, 0.0, 0.7], dtype=torch.float64)
    sample = gls(p, q, noise(4, 4, trials=20_000))
    assert set(sample.list_samples.unique().tolist()) <= {0, 2}
    assert set(sample.sample.unique().tolist()) <= {1, 3}
    assert not sample.match.any()


@pytest.mark.parametrize("alphabet", [4, 12])
def test_matching_probability_is_at_least_the_list_matching_bound(alphabet):
    p, q = dirichlet(alphabet, 10 + alphabet), dirichlet(alphabet, 20 + alphabet)
    for num_rows in range(1, 9):
        rate = gls(p, q, noise(num_rows, alphabet)).match.double().mean().item()
        bound = list_matching_bound(p, q, num_rows).item()
        assert rate >= bound - binomial_margin(bound, TRIALS), (num_rows, rate, bound)


def test_k1_matching_probability_equals_the_exact_formula():
    for seed in range(3):
        p, q = dirichlet(9, 30 + seed), dirichlet(9, 40 + seed)
        rate = gumbel_coupling(p, q, noise(1, 9, seed=seed)[:, 0]).match.double().mean().item()
        exact = gumbel_coupling_match_prob(p, q).item()
        assert abs(rate - exact) <= binomial_margin(exact, TRIALS)


def test_k1_exact_formula_against_an_independent_expression():
    """sum_j 1 / sum_i max(p_i/p_j, q_i/q_j), written out with Python floats."""
    p, q = dirichlet(6, 50), dirichlet(6, 51)
    pl, ql = p.tolist(), q.tolist()
    expected = sum(1 / sum(max(pi / pj, qi / qj) for pi, qi in zip(pl, ql)) for pj, qj in zip(pl, ql))
    assert gumbel_coupling_match_prob(p, q).item() == pytest.approx(expected, rel=1e-12)


def test_list_matching_bound_against_the_theorem_as_written():
    """sum_j K / sum_i [max(q_i/q_j, p_i/p_j) + (K-1) q_i/q_j] for strictly positive p, q."""
    p, q = dirichlet(5, 52), dirichlet(5, 53)
    pl, ql = p.tolist(), q.tolist()
    for k in (1, 2, 5):
        expected = sum(
            k / sum(max(qi / qj, pi / pj) + (k - 1) * qi / qj for pi, qi in zip(pl, ql))
            for pj, qj in zip(pl, ql)
        )
        assert list_matching_bound(p, q, k).item() == pytest.approx(expected, rel=1e-12)


def test_equal_distributions_always_match():
    p = dirichlet(10, 60)
    for num_rows in (1, 2, 5):
        assert gls(p, p, noise(num_rows, 10, trials=20_000)).match.all()
        assert list_matching_bound(p, p, num_rows).item() == pytest.approx(1.0, abs=1e-12)


def test_point_mass_proposal_matches_with_probability_q_of_the_point():
    p = torch.tensor([0.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    q = dirichlet(4, 61)
    for num_rows in (1, 3):
        sample = gls(p, q, noise(num_rows, 4))
        assert (sample.list_samples == 2).all()
        rate = sample.match.double().mean().item()
        assert list_matching_bound(p, q, num_rows).item() == pytest.approx(q[2].item(), rel=1e-12)
        assert abs(rate - q[2].item()) <= binomial_margin(q[2].item(), TRIALS)


def test_matching_grows_with_the_number_of_rows():
    p, q = dirichlet(8, 70), dirichlet(8, 71)
    bounds = [list_matching_bound(p, q, k).item() for k in range(1, 9)]
    assert all(b2 > b1 for b1, b2 in zip(bounds, bounds[1:]))
    rates = [gls(p, q, noise(k, 8, seed=k)).match.double().mean().item() for k in (1, 2, 4, 8)]
    for r1, r2 in zip(rates, rates[1:]):
        assert r2 >= r1 - 2 * binomial_margin(max(r1, r2), TRIALS)
    assert rates[-1] - rates[0] > 4 * binomial_margin(0.5, TRIALS)


def test_conditional_gls_matching_is_at_least_its_bound():
    q = dirichlet(6, 80)
    for num_rows in (1, 2, 4):
        p_rows = dirichlet(6, 81 + num_rows, (num_rows,))
        rate = conditional_gls(q, p_rows.unsqueeze(0), noise(num_rows, 6)).match.double().mean()
        bound = conditional_matching_bound(q, p_rows).item()
        assert rate.item() >= bound - binomial_margin(bound, TRIALS)


def test_gumbel_coupling_is_gls_with_one_row():
    p, q, e = dirichlet(5, 90), dirichlet(5, 91), noise(1, 5, trials=1000)
    coupled, listed = gumbel_coupling(p, q, e[:, 0]), gls(p, q, e)
    assert torch.equal(coupled.x, listed.list_samples[:, 0])
    assert torch.equal(coupled.y, listed.sample)


def test_selection_ignores_scale_of_the_weights():
    p, q, e = dirichlet(5, 92), dirichlet(5, 93), noise(3, 5, trials=1000)
    a, b = gls(p, q, e), gls(3 * p, 0.5 * q, e)
    assert torch.equal(a.list_samples, b.list_samples) and torch.equal(a.sample, b.sample)


def test_same_seed_same_samples_and_noise_is_random_access():
    p, q = dirichlet(5, 94), dirichlet(5, 95)
    rng = CounterRandomness(3)
    full = shared_exponentials(rng, torch.arange(100), 2, 5)
    part = shared_exponentials(rng, torch.arange(40, 60), 2, 5)
    assert torch.equal(full[40:60], part)
    assert torch.equal(gls(p, q, full).sample, gls(p, q, shared_exponentials(rng, torch.arange(100), 2, 5)).sample)
    assert not torch.equal(full, shared_exponentials(CounterRandomness(4), torch.arange(100), 2, 5))


@pytest.mark.parametrize(
    "p, q, e",
    [
        (torch.tensor([0.5, float("nan")]), torch.tensor([0.5, 0.5]), torch.ones(1, 2)),
        (torch.tensor([0.5, -0.1]), torch.tensor([0.5, 0.5]), torch.ones(1, 2)),
        (torch.tensor([0.0, 0.0]), torch.tensor([0.5, 0.5]), torch.ones(1, 2)),
        (torch.tensor([0.5, float("inf")]), torch.tensor([0.5, 0.5]), torch.ones(1, 2)),
        (torch.tensor([0.5, 0.5, 0.0]), torch.tensor([0.5, 0.5]), torch.ones(1, 2)),
        (torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5]), torch.ones(0, 2)),
        (torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5]), torch.ones(2)),
        (torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5]), -torch.ones(1, 2)),
        (torch.ones(3, 2) / 2, torch.tensor([0.5, 0.5]), torch.ones(2, 2)),
        (torch.tensor([0.5, 0.5]), torch.ones(2, 2) / 2, torch.ones(2, 2)),
    ],
)
def test_bad_input_raises_a_dsc_error(p, q, e):
    with pytest.raises(dsc.DscError):
        gls(p, q, e)


def test_bad_input_messages_say_what_to_fix():
    with pytest.raises(dsc.InvalidProbabilityError, match="negative"):
        gls(torch.tensor([0.5, -0.1]), torch.tensor([0.5, 0.5]), torch.ones(1, 2))
    with pytest.raises(dsc.ShapeMismatchError, match="alphabet"):
        gls(torch.tensor([0.5, 0.5, 0.0]), torch.tensor([0.5, 0.5]), torch.ones(1, 2))
    with pytest.raises(dsc.InvalidArgumentError, match="K"):
        shared_exponentials(CounterRandomness(0), torch.arange(3), 0, 4)
    with pytest.raises(dsc.InvalidArgumentError, match="dtype"):
        shared_exponentials(CounterRandomness(0), torch.arange(3), 2, 4, dtype=torch.float16)
