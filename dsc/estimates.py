"""Decoder estimates: what decoder k outputs from its pick, beyond trusting it.

Each decoder's pick is the candidate that wins its race in the received bin; it is the encoder's
candidate only with some probability (the match probability). :func:`dsc.pipeline.decode` turns
picks into outputs with an *estimate*, named in configs and on the command line (``estimate=``):

- ``pick`` (the default; the paper's decoder): ``model.reconstruct(pick, T_k)``, right when the
  pick is the encoder's candidate and a confident wrong answer when it is not.
- ``shrink`` (:class:`ShrinkEstimate`, cheap): the pick's estimate x shrunk toward the
  side-information estimate f = ``model.fallback(T_k)``, ``f + c (x - f)``, with c set by how
  confident the pick is: its race score log E - log v (an early, heavy pick is the encoder's more
  often) falls in one of ``bins`` quantile bins, and each bin's c in [0, 1] is the least-squares
  coefficient over calibration trials simulated from the model at the same coding setting (once
  per setting; message ids at the top of the id space, away from any evaluation). Decoding costs
  nothing beyond the pick.
- ``bayes`` (:class:`BayesEstimate`): the posterior mean E[A | T_k, label, check] by decoder-side
  re-encoding. Draws a' are re-encoded with the shared randomness and count only when they would
  send the received label (and check value): importance sampling from the defensive mixture
  q = (p(a | T_k) + p(a | pick, T_k)) / 2 (half the draws from each), weights p(a' | T_k) / q(a')
  times that indicator, self-normalised. Its Monte Carlo standard error per output is returned;
  when no draw is kept the output is the pick's estimate (its error is then NaN). Costs
  ``posterior_draws`` encodings per decoder and message.

- a trained pick-aware decoder (:class:`PickDecoderEstimate`, of a checkpoint, not by name): a
  network fed the pick, how sure the pick is (its race score, the estimator's log-ratio, the
  rate: :mod:`dsc.models.pick_decoder`) and the side information's features, trained on picks that
  match and picks that miss (:mod:`dsc.lit.pick_decoder_module`).

``bayes`` needs a model with the closed-form posteriors ``source_posterior(T)`` and
``pick_posterior(candidates, T)`` (each -> mean, variance); ``shrink`` needs the source's sampler;
a pick-aware decoder an image model with ``side_features(T)`` (the codec's projection of each
side information).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Callable, NamedTuple

import torch
from torch import Tensor

from dsc.coding import CounterRandomness, ImportanceCoder
from dsc.coding.streams import MAX_MESSAGE, Purpose, stream_id
from dsc.coding.validation import check_positive_int
from dsc.errors import ConfigError
from dsc.models.pick_decoder import PickDecoder, pick_features
from dsc.pipeline import Picks, check_values, decode_picks, encode

ESTIMATES = ("pick", "shrink", "bayes")
SOURCES_PER_STEP = 2**16  # re-encoded draws at once, and candidate-draw pairs per scan step: bound the
CHUNK_PAIRS = 2**20  # memory of a bayes decode (about 8 bytes x CHUNK_PAIRS x a few)
CALIBRATION_BATCH = 2048


class Estimated(NamedTuple):
    """An estimate's outputs for B messages and K' decoders: ``picked`` ``[B, K', ...]`` (used
    where the pick is accepted), ``fallback`` ``[B, K', ...]`` or None (used elsewhere) and
    ``se`` ``[B, K']`` (Monte Carlo standard error of each output; None for exact estimates)."""

    picked: Tensor
    fallback: Tensor | None
    se: Tensor | None = None


Sampler = Callable[[CounterRandomness, Tensor, int], tuple]
"""``(rng, messages [B], K) -> (sources [B, ...], side information [B, K, ...])``, keyed by message."""


@dataclass
class BayesEstimate:
    """The posterior mean by decoder-side re-encoding (module docstring); ``posterior_draws`` per
    decoder and message, half from each mixture component (at least 2)."""

    posterior_draws: int = 256

    def __post_init__(self) -> None:
        check_positive_int(self.posterior_draws, "posterior_draws")
        if self.posterior_draws < 2:
            raise ConfigError(f"posterior_draws must be at least 2 (half from each proposal), got "
                              f"{self.posterior_draws}")

    def __call__(self, model, coder: ImportanceCoder, picks: Picks) -> Estimated:
        for name in ("source_posterior", "pick_posterior", "source_log_weights"):
            if not callable(getattr(model, name, None)):
                raise ConfigError(f"estimate=bayes needs a model with closed-form posteriors ({name}); "
                                  f"{type(model).__name__} has none: use estimate=pick or shrink")
        side = picks.side_information
        draws = self.posterior_draws
        prior_mean, prior_var = model.source_posterior(side)  # [B, K'], p(a | T_k)
        pick_mean, pick_var = model.pick_posterior(picks.candidate, side)  # p(a | pick, T_k)
        prior_var, pick_var = _as(prior_var, prior_mean)[..., None], _as(pick_var, pick_mean)[..., None]
        prior_mean, pick_mean = prior_mean[..., None], pick_mean[..., None]
        rows = torch.as_tensor(list(picks.decoders), device=side.device)
        streams = stream_id(Purpose.POSTERIOR, picks.messages[:, None], rows[None, :])  # [B, K']
        z = coder.rng.normal(streams[..., None], torch.arange(draws, device=side.device), torch.float64)
        first = torch.arange(draws, device=side.device) < draws // 2  # [D]: drawn from p(a | T_k), the rest from
        a = torch.where(first, prior_mean + prior_var.sqrt() * z, pick_mean + pick_var.sqrt() * z)  # p(a | pick, T_k)
        log_p = _log_normal(a, prior_mean, prior_var)  # [B, K', D]
        log_q = torch.logaddexp(log_p, _log_normal(a, pick_mean, pick_var)) - math.log(2)
        kept = self._sends(model, coder, picks, a)
        log_w = torch.where(kept, log_p - log_q, torch.full_like(log_p, -math.inf))
        shift = log_w.amax(dim=-1, keepdim=True)
        weight = torch.exp(log_w - torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift)))  # 0 off kept
        total = weight.sum(-1)
        some = total > 0
        safe = torch.where(some, total, torch.ones_like(total))
        estimate = (weight * a).sum(-1) / safe
        se = ((weight**2 * (a - estimate[..., None]) ** 2).sum(-1)).sqrt() / safe
        out = torch.where(some, estimate, picks.picked.double())
        se = torch.where(some, se, torch.full_like(se, math.nan))
        return Estimated(out, out, se)  # the posterior mean is also the output of a failed check

    def _sends(self, model, coder: ImportanceCoder, picks: Picks, a: Tensor) -> Tensor:
        """``[B, K', D]``: draw a' would make the encoder send the received label and check
        (all K' x D draws of a message re-encoded on its candidates at once)."""
        batch, width, draws = a.shape
        sources = a.reshape(batch, width * draws)
        step = max(1, SOURCES_PER_STEP // sources.shape[1])  # messages at once
        coder = replace(coder, chunk_size=max(64, CHUNK_PAIRS // (step * sources.shape[1])))
        sends = []
        for start in range(0, batch, step):
            part = slice(start, start + step)
            messages = picks.messages[part]
            index, label = coder.encode_each(messages, model.source_log_weights(sources[part]), sources.shape[1])
            check = check_values(coder.seed, messages, index, picks.check_bits)
            sends.append((label == picks.labels[part, None]) & (check == picks.checks[part, None]))
        return torch.cat(sends).view(batch, width, draws)


@dataclass
class ShrinkEstimate:
    """The pick's estimate shrunk toward the side-information estimate by a per-confidence-bin
    coefficient fitted on simulated calibration trials (module docstring). ``sample`` draws
    (sources, side information) for message ids: the source the codec is used on."""

    sample: Sampler
    calibration_trials: int = 20_000
    bins: int = 16
    _tables: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_positive_int(self.calibration_trials, "calibration_trials")
        check_positive_int(self.bins, "bins")

    def __call__(self, model, coder: ImportanceCoder, picks: Picks) -> Estimated:
        edges, coefficient = self.table(model, coder, picks.check_bits)
        score = picks.score.clamp(max=torch.finfo(torch.float64).max).to(edges.device)
        c = coefficient[torch.bucketize(score, edges)].to(picks.picked.device)
        shape = c.shape + (1,) * (picks.picked.dim() - c.dim())
        fallback = picks.fallback.to(picks.picked.dtype)
        return Estimated(fallback + c.view(shape).to(fallback.dtype) * (picks.picked - fallback), picks.fallback)

    def table(self, model, coder: ImportanceCoder, check_bits: int) -> tuple[Tensor, Tensor]:
        """``(edges [bins - 1], coefficients [bins])`` for this model and coding setting (cached)."""
        key = json.dumps([model.identity(), coder.seed, coder.num_candidates, coder.num_labels, coder.num_decoders,
                          coder.scheme.value, coder.balanced_labels, check_bits], sort_keys=True, default=str)
        if key not in self._tables:
            self._tables[key] = self._fit(model, coder, check_bits)
        return self._tables[key]

    def _fit(self, model, coder: ImportanceCoder, check_bits: int) -> tuple[Tensor, Tensor]:
        scores, x, y = [], [], []  # accepted picks: score, x - f, a - f
        rng = CounterRandomness(coder.seed)
        first = MAX_MESSAGE + 1 - self.calibration_trials
        for start in range(0, self.calibration_trials, CALIBRATION_BATCH):
            ids = torch.arange(first + start, first + min(start + CALIBRATION_BATCH, self.calibration_trials))
            sources, side = self.sample(rng, ids, coder.num_decoders)
            sent = encode(model, coder, ids, sources, check_bits)
            got = decode_picks(model, coder, ids, sent.label, sent.check, side, None, check_bits)
            fallback = got.fallback.double()
            target = sources.double().reshape(sources.shape[0], 1, -1) - fallback.reshape(*fallback.shape[:2], -1)
            offset = got.picked.double().reshape(target.shape) - fallback.reshape(target.shape)
            keep = got.accepted
            scores.append(got.score[keep])
            x.append(offset[keep])
            y.append(target[keep])
        score, x, y = torch.cat(scores), torch.cat(x), torch.cat(y)
        if score.numel() < self.bins:
            return torch.empty(0, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
        edges = torch.quantile(score, torch.linspace(0, 1, self.bins + 1, dtype=torch.float64)[1:-1])
        which = torch.bucketize(score, edges)
        coefficient = torch.ones(self.bins, dtype=torch.float64)
        for b in range(self.bins):
            inside = which == b
            denominator = (x[inside] ** 2).sum()
            if denominator > 0:
                coefficient[b] = ((x[inside] * y[inside]).sum() / denominator).clamp(0.0, 1.0)
        return edges, coefficient


@dataclass
class PickDecoderEstimate:
    """Each decoder's output from a :class:`dsc.models.pick_decoder.PickDecoder` on its pick, the
    pick's features and its side information's features; the model's fallback is kept."""

    decoder: PickDecoder

    def __call__(self, model, coder: ImportanceCoder, picks: Picks) -> Estimated:
        out = self.reconstruct(model, picks.side_information, picks.candidate, picks.score, coder.rate_bits)
        return Estimated(out, picks.fallback)

    def reconstruct(self, model, side_information: Tensor, candidate: Tensor, score: Tensor,
                    rate_bits: float) -> Tensor:
        """Picks ``candidate`` ``[B, K', d]`` with race scores ``score`` ``[B, K']`` of decoders with
        side information ``[B, K', ...]`` at ``rate_bits`` -> outputs ``[B, K', C, H, W/2]``."""
        features = model.side_features(side_information)  # [B, K', F]
        if self.decoder.crop_only:  # the decoder reads neither the pick nor its features
            log_ratio = torch.zeros_like(score)
        else:  # decoder k's log-ratio of its own pick: the diagonal of [B, K' side informations, K' picks]
            log_ratio = model.decoder_log_weight(side_information)(candidate).diagonal(dim1=1, dim2=2)
        pick = pick_features(score, log_ratio, rate_bits).to(features.device)
        out = self.decoder(candidate.flatten(0, 1), pick.flatten(0, 1), features.flatten(0, 1))
        return out.view(*candidate.shape[:2], *out.shape[1:])


def estimate_named(name: str | None, posterior_draws: int = 256, calibration_trials: int = 20_000,
                   sample: Sampler | None = None):
    """The estimate called ``name`` (``pick`` or None: None, the pipeline's default)."""
    if name in (None, "pick"):
        return None
    if name == "bayes":
        return BayesEstimate(posterior_draws)
    if name == "shrink":
        if sample is None:
            raise ConfigError("estimate=shrink needs the source's sampler for its calibration trials")
        return ShrinkEstimate(sample, calibration_trials)
    raise ConfigError(f"unknown estimate {name!r}: choose one of {', '.join(ESTIMATES)}")


def _as(var, like: Tensor) -> Tensor:
    return torch.as_tensor(var, dtype=torch.float64, device=like.device).expand_as(like)


def _log_normal(x: Tensor, mean: Tensor, var: Tensor) -> Tensor:
    return -0.5 * (x - mean) ** 2 / var - 0.5 * torch.log(2 * math.pi * var)
