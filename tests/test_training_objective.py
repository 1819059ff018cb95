"""The learned codecs' training objective, by independent arithmetic: the loss is distortion
(under each normalisation) + beta(step) x KL(p(w|a) || N(0, I)) + the estimator's BCE; the KL
weight follows the documented warm-up; beta = 0 puts no pressure on the posterior and a huge beta
collapses it onto the prior."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from dsc.lit.gaussian_module import GaussianCodecModule
from dsc.lit.image_module import ImageCodecModule
from dsc.sources.gaussian import SourceBatch
from dsc.sources.images import ImageItem

TINY = dict(channels=8, hidden=32, features=16, estimator_hidden=32)
# pixel scale of each normalisation (data are on [-1, 1]) and whether it averages over the pixels
NORMALISATIONS = {"sum_01": (0.5, False), "sum_pm1": (1.0, False), "mean_01": (0.5, True), "mean_pm1": (1.0, True)}


def mnist_batch(batch: int = 5, seed: int = 0) -> ImageItem:
    g = torch.Generator().manual_seed(seed)
    return ImageItem(torch.rand(batch, 1, 28, 14, generator=g) * 2 - 1, torch.rand(batch, 2, 1, 7, 7, generator=g),
                     torch.arange(batch))


def gaussian_batch(batch: int = 6, dim: int = 3, seed: int = 0) -> SourceBatch:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(batch, dim, generator=g)
    return SourceBatch(a, a[:, None] + math.sqrt(0.5) * torch.randn(batch, 2, dim, generator=g), torch.arange(batch))


def by_hand(module, batch, beta: float, seed: int, distortion) -> dict[str, float]:
    """The loss terms written out: w = mean + std * eps with the noise torch draws after
    ``manual_seed(seed)``; KL from torch.distributions; BCE of the estimator on (w_i, t_i)
    labelled 1 and (w_{i-1}, t_i) labelled 0, each side weighted 1/2."""
    with torch.no_grad():
        posterior = module.nets.encoder(batch.source)
        mean, log_var = posterior.mean.float(), posterior.log_var.float()
        std = torch.exp(0.5 * log_var)
        torch.manual_seed(seed)
        w = mean + std * torch.randn_like(mean)
        crop = batch.side_info[:, 0]
        reconstruction = module.nets.decoder(w, module.nets.projection(crop)).float()
        kl = kl_divergence(Normal(mean, std), Normal(torch.zeros_like(mean), torch.ones_like(std))).sum(-1).mean()
        previous = torch.tensor([len(w) - 1] + list(range(len(w) - 1)))
        joint = module.nets.estimator(w[:, None, :], crop)[:, 0]
        product = module.nets.estimator(w[previous][:, None, :], crop)[:, 0]
        bce = 0.5 * (-F.logsigmoid(joint).mean() - F.logsigmoid(-product).mean())
        d = distortion(reconstruction, batch.source)
    return {"distortion": float(d), "kl": float(kl), "bce": float(bce), "loss": float(d + beta * kl + bce)}


def mnist_distortion(name):
    scale, mean = NORMALISATIONS[name]

    def distortion(reconstruction, source):  # pixels rescaled, summed or averaged, mean over the batch
        squared = ((reconstruction - source) * scale) ** 2
        per_image = squared.sum(dim=(1, 2, 3))
        return (per_image / (28 * 14) if mean else per_image).mean()

    return distortion


@pytest.mark.parametrize("name", sorted(NORMALISATIONS))
def test_the_mnist_loss_is_distortion_plus_beta_kl_plus_bce(name):
    torch.manual_seed(0)
    module = ImageCodecModule(**TINY, distortion=name, beta=0.15).eval()  # eval: no dropout
    batch = mnist_batch()
    for beta in (0.0, 0.37, 5.0):
        torch.manual_seed(11)
        got = module.losses(batch, beta)
        expected = by_hand(module, batch, beta, 11, mnist_distortion(name))
        for term, value in expected.items():
            assert math.isclose(float(got[term].detach()), value, rel_tol=1e-5, abs_tol=1e-5), (name, beta, term)
    assert expected["kl"] > 1 and expected["distortion"] > 0  # every term is exercised
    torch.manual_seed(11)
    assert math.isclose(float(module.losses(batch)["loss"].detach()),  # default: the full beta
                        by_hand(module, batch, 0.15, 11, mnist_distortion(name))["loss"], rel_tol=1e-5)


def test_the_gaussian_loss_sums_the_squared_error_over_components():
    torch.manual_seed(0)
    module = GaussianCodecModule(dim=3, latent_dim=2, hidden=16, estimator_hidden=16, beta=0.05).eval()
    batch = gaussian_batch()
    distortion = lambda rec, source: ((rec - source) ** 2).sum(-1).mean()  # noqa: E731
    for beta in (0.0, 0.05, 3.0):
        torch.manual_seed(4)
        got = module.losses(batch, beta)
        expected = by_hand(module, batch, beta, 4, distortion)
        for term, value in expected.items():
            assert math.isclose(float(got[term].detach()), value, rel_tol=1e-5, abs_tol=1e-6), (beta, term)
        assert math.isclose(float(got["mse"].detach()), expected["distortion"] / 3, rel_tol=1e-5)  # per component


def _weights_used(module, monkeypatch, steps, split="train"):
    """The KL weight each step's loss was built with, read off the loss itself:
    (loss - distortion - bce) / kl, and the weight logged as ``train/beta``."""
    now, logged, used = {"step": 0}, [], []
    monkeypatch.setattr(type(module), "global_step", property(lambda self: now["step"]))
    monkeypatch.setattr(type(module), "log_losses",
                        lambda self, losses, split, size, step_extras=None: logged.append((losses, step_extras)))
    batch = gaussian_batch(dim=1)
    for now["step"] in steps:
        (module.training_step if split == "train" else module.validation_step)(batch, 0)
        terms, extras = logged[-1]
        used.append(float(((terms["loss"] - terms["distortion"] - terms["bce"]) / terms["kl"]).detach()))
        if split == "train":
            assert math.isclose(extras["beta"], used[-1], rel_tol=1e-4)
    return used


def test_the_kl_weight_ramps_linearly_over_the_warm_up_then_stays_at_beta(monkeypatch):
    """Documented: the KL weight rises linearly from 0 to beta over the first
    ``kl_warmup_steps`` = W training steps; step s (counted from 0) uses beta * min(1, (s + 1) / W).
    Validation always uses the full beta; W = 0 turns the warm-up off."""
    beta, warmup = 0.8, 40
    module = GaussianCodecModule(hidden=8, estimator_hidden=8, beta=beta, kl_warmup_steps=warmup).eval()
    steps = [0, 1, 9, 19, 38, 39, 40, 400]
    expected = [beta * (s + 1) / warmup if s < warmup else beta for s in steps]
    assert expected[:4] == pytest.approx([0.02, 0.04, 0.2, 0.4])
    used = _weights_used(module, monkeypatch, steps)
    assert used == pytest.approx(expected, rel=1e-4)
    assert _weights_used(module, monkeypatch, [0, 5], split="val") == pytest.approx([beta, beta], rel=1e-4)
    off = GaussianCodecModule(hidden=8, estimator_hidden=8, beta=beta, kl_warmup_steps=0).eval()
    assert _weights_used(off, monkeypatch, [0, 3]) == pytest.approx([beta, beta], rel=1e-4)


def test_beta_zero_leaves_the_posterior_to_the_distortion_alone():
    """With beta = 0 the encoder's gradient is the distortion's alone (the estimator sees w
    detached), so nothing pulls the posterior toward the prior."""
    torch.manual_seed(0)
    module = GaussianCodecModule(dim=2, latent_dim=2, hidden=16, estimator_hidden=16).eval()
    batch = gaussian_batch(dim=2)
    grads = []
    for term in ("loss", "distortion"):
        module.zero_grad()
        torch.manual_seed(3)
        module.losses(batch, 0.0)[term].backward()
        grads.append([p.grad.clone() for p in module.nets.encoder.parameters()])
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(*grads))
    module.zero_grad()
    torch.manual_seed(3)
    module.losses(batch, 1.0)["loss"].backward()  # with beta > 0 the KL adds to it
    assert not all(torch.allclose(a.grad, b, atol=1e-7) for a, b in zip(module.nets.encoder.parameters(), grads[1]))


@pytest.fixture
def one_thread():
    """Tiny networks: one intra-op thread is many times faster than two on a busy 2-core CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _short_run(beta: float, steps: int = 150) -> tuple[float, float, float]:
    """Adam (lr 1e-2) on fixed 1-D Gaussian data -> (KL before, KL after, distortion after) on held-out data."""
    torch.manual_seed(0)
    module = GaussianCodecModule(hidden=16, estimator_hidden=16, beta=beta, lr=1e-2, kl_warmup_steps=0)
    optimizer = module.configure_optimizers()
    train, held_out = gaussian_batch(256, 1, seed=1), gaussian_batch(512, 1, seed=2)

    def evaluate():
        with torch.no_grad():
            terms = module.losses(held_out)
        return float(terms["kl"]), float(terms["distortion"])

    before = evaluate()[0]
    for _ in range(steps):
        optimizer.zero_grad()
        module.losses(train)["loss"].backward()
        optimizer.step()
    return (before, *evaluate())


def test_a_short_run_collapses_onto_the_prior_under_a_huge_beta_and_not_under_beta_zero(one_thread):
    """Small initial variances make the initial KL a few nats. beta = 1000 drives it to almost 0
    (posterior = prior: w carries nothing); beta = 0 lets it grow while the distortion falls
    below what the side information alone gives (var(A | T) = 1/3)."""
    kl_before, kl_huge, _ = _short_run(1000.0)
    assert kl_before > 2
    assert kl_huge < 0.02 * kl_before
    kl_before_zero, kl_zero, distortion_zero = _short_run(0.0)
    assert kl_before_zero == kl_before  # the same initial networks
    assert kl_zero > kl_before and distortion_zero < 1 / 3
