"""Speculative sampling verifiers: exact target marginals, acceptance against closed forms and
bounds, drafter invariance, and clear errors. A toy Markov 'language model' on 4 tokens."""

from __future__ import annotations

import itertools

import pytest
import torch
from scipy import stats

import dsc
from dsc.speculative import METHODS, SharedNoise, generate, probabilities, verify_block
from dsc.speculative.noise import gumbel_sample
from tests._stats import binomial_margin

V = 4
G = torch.Generator().manual_seed(0)
TARGET = torch.distributions.Dirichlet(torch.ones(V)).sample((V,)).double()  # [last token, next]
DRAFT = torch.distributions.Dirichlet(torch.ones(V)).sample((V,)).double()
DRAFT_HOT = probabilities(torch.log(DRAFT), temperature=2.0)  # the same drafter, hotter


def target_block(tokens, lengths, count):
    last = torch.stack([tokens[torch.arange(len(tokens)), lengths - count + m] for m in range(count)], dim=1)
    return TARGET[last]


def drafter(even, odd):
    """Drafts 0, 2, 4, ... follow the table ``even``, drafts 1, 3, ... the table ``odd``."""
    def draft_next(tokens, lengths, drafts):
        last = tokens[torch.arange(len(tokens)), lengths - 1]
        return torch.where((drafts % 2 == 1)[:, None], odd[last], even[last])
    return draft_next


IID = drafter(DRAFT, DRAFT)
MIXED_TEMPERATURES = drafter(DRAFT, DRAFT_HOT)


def run(method, n, drafts, length, num_tokens, draft_next=IID, seed=0):
    prompts = torch.zeros(n, 1, dtype=torch.long)
    k = 1 if method in ("single_draft", "gumbel") else drafts
    return generate(method, prompts, torch.ones(n, dtype=torch.long), num_tokens, k, length, draft_next,
                    target_block, SharedNoise(seed))


@pytest.mark.parametrize("method", METHODS)
def test_generated_tokens_follow_the_target_exactly(method):
    """Joint law of the first two generated tokens (16 cells) against the target chain:
    chi-square p-value above 1e-4 on 12,000 sequences, blocks of K = 3 drafts x L = 2."""
    out = run(method, 12_000, drafts=3, length=2, num_tokens=2, draft_next=MIXED_TEMPERATURES
              if method in ("gls", "gls_strong", "specinfer") else IID)
    cells = out.tokens[:, 0] * V + out.tokens[:, 1]
    observed = torch.bincount(cells, minlength=V * V).double()
    joint = (TARGET[0][:, None] * TARGET).flatten()
    expected = joint / joint.sum() * len(cells)
    assert stats.chisquare(observed.numpy(), expected.numpy()).pvalue > 1e-4
    assert bool((out.block_efficiency >= 1).all()) and bool((out.block_efficiency <= 3).all())


def one_position(method, n, p_rows, q, seed=1):
    """Acceptance rate of one position: K drafts from p_rows ``[K, V]`` sampled with the shared
    noise, target q ``[V]``."""
    k = p_rows.shape[0]
    noise, seqs, start = SharedNoise(seed), torch.arange(n), torch.zeros(n, dtype=torch.long)
    p = p_rows[None, :, None, :].expand(n, k, 1, V)
    x = gumbel_sample(noise.draft_rows(seqs, start, k, V), p[:, :, 0])[..., None]
    target = q[None, None, None, :].expand(n, k, 2, V)
    return verify_block(method, x, p, target, noise, seqs, start).accepted[:, 0].double().mean().item()


def specinfer_exact(p_rows, q):
    r, reject = q.clone(), 1.0
    for p in p_rows:
        reject *= 1 - torch.minimum(p, r).sum().item()
        residual = (r - p).clamp_min(0)
        r = residual / residual.sum() if residual.sum() > 0 else r
    return 1 - reject


def optimal_coupling(p_rows, q):
    worst = 0.0
    for size in range(V + 1):
        for subset in itertools.combinations(range(V), size):
            s = list(subset)
            worst = max(worst, torch.prod(p_rows[:, s].sum(1)).item() - q[s].sum().item())
    return 1 - worst


def lml_bound(p, q, k):
    ratio = lambda d: d[:, None] / d[None, :]  # [i, j] = d_i / d_j  # noqa: E731
    return (k / (torch.maximum(ratio(q), ratio(p)) + (k - 1) * ratio(q)).sum(0)).sum().item()


@pytest.mark.parametrize("k", [1, 2, 4])
def test_acceptance_against_closed_forms_and_bounds(k):
    n = 40_000
    p, q = DRAFT[2], TARGET[2]
    p_rows = p.expand(k, V)
    gls = one_position("gls", n, p_rows, q)
    specinfer = one_position("specinfer", n, p_rows, q)
    assert abs(specinfer - specinfer_exact(p_rows, q)) < binomial_margin(specinfer, n)
    assert gls >= lml_bound(p, q, k) - binomial_margin(gls, n)
    assert gls <= optimal_coupling(p_rows, q) + binomial_margin(gls, n)
    if k == 1:
        gumbel_exact = sum(1 / torch.maximum(p / p[j], q / q[j]).sum().item() for j in range(V))
        assert abs(gls - gumbel_exact) < binomial_margin(gls, n)
        assert abs(one_position("gumbel", n, p_rows, q) - gumbel_exact) < binomial_margin(gls, n)
        single = one_position("single_draft", n, p_rows, q)
        assert abs(single - torch.minimum(p, q).sum().item()) < binomial_margin(single, n)
    spectr = one_position("spectr", n, p_rows, q)
    assert spectr <= optimal_coupling(p_rows, q) + binomial_margin(spectr, n)
    assert abs(spectr - spectr_exact(p, q, k)) < binomial_margin(spectr, n)


def spectr_exact(p, q, k):
    """K-SEQ with K i.i.d. drafts accepts one of them with probability 1 - (1 - beta(rho*))^K,
    beta(rho) = sum min(p, q / rho); rho* is the root in [1, K] of the increasing function
    rho beta(rho) - 1 + (1 - beta(rho))^K (rho* = 1 where it is already >= 0 at 1). For the pair
    of the test above rho* is 1.51 at K = 2 and 2.37 at K = 4: the bisection is exercised."""
    from scipy.optimize import brentq

    beta = lambda rho: torch.minimum(p, q / rho).sum().item()  # noqa: E731
    f = lambda rho: rho * beta(rho) - 1 + (1 - beta(rho)) ** k  # noqa: E731
    rho = 1.0 if f(1.0) >= 0 else brentq(f, 1.0, float(k), xtol=1e-14)
    return 1 - (1 - beta(rho)) ** k


def _second_position_acceptance(method, n, p_second, q_second, seed=3):
    """K = 2 drafts, L = 2. Position 0 is decided: the target emits token 0, draft 0 proposes 0
    and draft 1 proposes 1, so draft 1 is rejected. At position 1 draft 0 samples from
    ``p_second`` and draft 1 from the uniform law, both with their shared noise rows; the target
    is ``q_second``. Returns the acceptance rate at position 1 (draft 0's token emitted)."""
    k, length = 2, 2
    noise, seqs, start = SharedNoise(seed), torch.arange(n), torch.zeros(n, dtype=torch.long)
    point = torch.eye(V, dtype=torch.float64)
    p = torch.stack([torch.stack([point[0], p_second]), torch.stack([point[1], torch.full((V,), 1 / V)])])
    p = p[None].expand(n, k, length, V).to(torch.float64)  # [B, K, L, V]
    x = torch.stack([gumbel_sample(noise.draft_rows(seqs, start + j, k, V), p[:, :, j]) for j in range(length)], -1)
    assert bool((x[:, 0, 0] == 0).all()) and bool((x[:, 1, 0] == 1).all())
    q = torch.stack([point[0], q_second, torch.full((V,), 1 / V)])[None, None].expand(n, k, length + 1, V)
    out = verify_block(method, x, p, q.to(torch.float64), noise, seqs, start)
    assert bool(out.accepted[:, 0].all())  # draft 0 always passes position 0
    return out.accepted[:, 1].double().mean().item()


def test_conditional_and_strong_gls_differ_once_a_draft_is_rejected():
    """After draft 1 is rejected, conditional GLS verifies with draft 0's row alone: a Gumbel
    coupling of p (draft 0) and q, accepted with probability sum_j 1 / sum_i max(p_i/p_j, q_i/q_j),
    which is 1 when p = q. Strong GLS keeps draft 1's row in the minimum: with p = q it emits
    draft 0's token when row 0 attains the minimum (probability 1/2) or when both rows pick the
    same token (sum_j q_j^2, half of it not already counted): (1 + sum_j q_j^2) / 2."""
    n = 20_000
    q, p = TARGET[1], DRAFT[1]
    assert _second_position_acceptance("gls", n, q, q) == 1.0
    strong = _second_position_acceptance("gls_strong", n, q, q)
    expected = (1 + (q**2).sum().item()) / 2
    assert abs(strong - expected) < binomial_margin(expected, n)
    conditional = _second_position_acceptance("gls", n, p, q)
    gumbel_exact = sum(1 / torch.maximum(p / p[j], q / q[j]).sum().item() for j in range(V))
    assert abs(conditional - gumbel_exact) < binomial_margin(gumbel_exact, n)


def test_drafter_invariance():
    """With the noise and the draft tokens fixed, GLS's output does not depend on the draft
    probabilities and SpecInfer's does; strong GLS generates the same text whatever the drafter."""
    n, k, length = 3000, 2, 3
    noise, seqs, start = SharedNoise(5), torch.arange(n), torch.zeros(n, dtype=torch.long)
    x = torch.randint(V, (n, k, length), generator=G)
    q = TARGET[1].expand(n, k, length + 1, V)  # any target
    p_a = torch.full((n, k, length, V), 1 / V, dtype=torch.float64)
    p_b = torch.distributions.Dirichlet(torch.ones(V)).sample((n, k, length)).double()
    outputs = {m: [verify_block(m, x, p, q, noise, seqs, start).tokens for p in (p_a, p_b)]
               for m in ("gls", "gls_strong", "specinfer")}
    assert torch.equal(*outputs["gls"]) and torch.equal(*outputs["gls_strong"])
    assert not torch.equal(*outputs["specinfer"])
    strong = [run("gls_strong", 500, drafts=2, length=3, num_tokens=6, draft_next=d, seed=9)
              for d in (IID, MIXED_TEMPERATURES)]
    assert torch.equal(strong[0].tokens, strong[1].tokens)
    assert not torch.equal(strong[0].target_calls, strong[1].target_calls)  # the drafts still matter for speed


def test_bad_input_is_a_clear_error():
    noise, seqs, start = SharedNoise(0), torch.arange(2), torch.zeros(2, dtype=torch.long)
    x = torch.zeros(2, 2, 3, dtype=torch.long)
    p = torch.full((2, 2, 3, V), 1 / V, dtype=torch.float64)
    q = torch.full((2, 2, 4, V), 1 / V, dtype=torch.float64)
    with pytest.raises(dsc.ShapeMismatchError, match="same vocabulary"):
        verify_block("gls", x, p, torch.full((2, 2, 4, V + 1), 1 / (V + 1)), noise, seqs, start)
    with pytest.raises(dsc.InvalidArgumentError, match="K >= 1"):
        verify_block("gls", x[:, :0], p[:, :0], q[:, :0], noise, seqs, start)
    with pytest.raises(dsc.InvalidArgumentError, match="L >= 1"):
        verify_block("gls", x[:, :, :0], p[:, :, :0], q[:, :, :1], noise, seqs, start)
    with pytest.raises(dsc.InvalidProbabilityError, match="sum to 1"):
        verify_block("gls", x, p * 1.1, q, noise, seqs, start)
    with pytest.raises(dsc.InvalidArgumentError, match="single draft"):
        verify_block("single_draft", x, p, q, noise, seqs, start)
    with pytest.raises(dsc.InvalidArgumentError, match="method"):
        verify_block("medusa", x, p, q, noise, seqs, start)
    with pytest.raises(dsc.InvalidArgumentError, match="temperature"):
        probabilities(torch.zeros(V), temperature=0)
    with pytest.raises(dsc.InvalidArgumentError, match="top_k"):
        probabilities(torch.zeros(V), top_k=0)
    assert probabilities(torch.tensor([0.0, 1.0, 2.0, 3.0]), top_k=2)[:2].sum() == 0


def test_fast_lml_bound_equals_the_formula():
    from dsc.speculative.study import lml_bound as fast

    g = torch.Generator().manual_seed(3)
    for k in (1, 2, 8):
        p = torch.rand(7, generator=g).double()
        q = torch.rand(7, generator=g).double()
        p[0], q[1] = 0, 0  # a token only q emits, and one only p does
        p, q = p / p.sum(), q / q.sum()
        support = q > 0
        # a token the drafts never propose (p_j = 0) has an infinite denominator: term 0
        direct = sum(k / (torch.maximum(q / q[j], p / p[j]).sum() + (k - 1) / q[j]).item()
                     for j in range(7) if support[j] and p[j] > 0)
        assert fast(p, q, k) == pytest.approx(direct, rel=1e-9)


def test_prefix_cache_finds_the_longest_prefix_and_evicts_the_oldest():
    from dsc.speculative.prefix_cache import PrefixCache

    cache = PrefixCache(capacity=6)
    kv = lambda n: torch.zeros(1, 2, 1, n, 1)  # [layers, 2, kv_heads, T, head_dim]  # noqa: E731
    cache.put((1, 2), kv(2))
    cache.put((1, 2, 3), kv(3))
    m, found = cache.longest((1, 2, 3, 4), limit=4)
    assert m == 3 and found.shape[3] == 3
    assert cache.longest((1, 2, 3, 4), limit=2)[0] == 2  # never past the limit
    assert cache.longest((5, 6), limit=2) == (0, None)
    cache.put((7, 8), kv(2))  # 7 tokens > 6: the least recently used entry, (1, 2, 3), leaves
    assert cache.tokens == 4 and cache.longest((1, 2, 3), limit=3)[0] == 2 and cache.longest((7, 8), 2)[0] == 2
    with pytest.raises(dsc.InvalidArgumentError, match="capacity"):
        PrefixCache(capacity=0)


def test_mixed_temperature_settings_parse_or_fail_clearly():
    from dsc.speculative.study import parse_mixed

    assert parse_mixed("2.0:1.0,4.0") == (2.0, [1.0, 4.0])
    for bad in ("2.0", "2:1", "2:1,x", "0:1,2", "2:1,-1"):
        with pytest.raises(dsc.DscError, match="--mixed"):
            parse_mixed(bad)
