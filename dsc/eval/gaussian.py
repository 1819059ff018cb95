"""The Gaussian K-decoder rate-distortion point: the paper's protocol through the coding core.

One job evaluates one (scheme, K, rate) point. Per repetition it chooses the test-channel
variance s2 from a grid by the lowest paper distortion over ``selection_trials`` trials (the
same trials for every s2), then evaluates the chosen s2 on ``trials`` fresh trials (other
message ids, hence other sources and other shared randomness).

Metrics per point (means over repetitions; ``*_se`` over repetitions when there are several,
otherwise over trials, as ``se_over`` says):

- ``distortion_db``: mean over trials of 10 log10(min_k (A - Ahat_k)^2), the paper's metric;
- ``mse_db``: 10 log10 of the mean best-of-K squared error (comparable with Wyner-Ziv);
- ``per_decoder_mse_db``: 10 log10 of the squared error averaged over decoders (no oracle);
- ``match_prob``: some decoder recovered the encoder's candidate;
- ``prop4_error_bound``: Prop. 4's bound on 1 - match_prob at the chosen s2 (for the
  shared-randomness baseline the K = 1 bound, which its decoder 0 alone already meets);
- ``wyner_ziv_mse_db``: the quadratic-Gaussian Wyner-Ziv bound var(A|T) 2^(-2R) in dB.
"""

from __future__ import annotations

import logging
import math
import statistics
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from dsc.coding import CodingPoint, CounterRandomness, ImportanceCoder, Scheme, prop4_error_bound
from dsc.coding.streams import MAX_MESSAGE
from dsc.coding.validation import check_positive_int
from dsc.errors import ConfigError
from dsc.estimates import estimate_named
from dsc.eval.budget import check_duration, coding_seconds
from dsc.eval.outcome import any_pass
from dsc.eval.parallel import WorkerPool, worker_devices
from dsc.eval.points import point_labels
from dsc.eval.stats import binomial_se, db_se, mean_se, proportion, standard_error_of_sums, to_db
from dsc.models.gaussian import AnalyticGaussianModel, GaussianModel
from dsc.pipeline import code
from dsc.progress import progress_bar
from dsc.sources.gaussian import GaussianSource

log = logging.getLogger(__name__)

PAPER_TEST_CHANNEL_VARIANCES = (0.01, 0.008, 0.006, 0.005, 0.003, 0.002, 0.001)
SELECTION, EVALUATION = 0, 1
SELECTABLE = ("distortion_db", "mse_db", "per_decoder_mse_db", "practical_mse_db")
PRACTICAL = ("practical_mse_db", "per_decoder_practical_mse_db", "accept_rate", "false_accept_rate")  # with check bits
AUTO_BATCH_TRIALS_CPU, AUTO_BATCH_TRIALS_CUDA = 2048, 2**18  # phases: their trials use disjoint message ids


def first_message(repetition: int, phase: int, trials: int, selection_trials: int) -> int:
    """First message id of a (repetition, phase) block of trials: blocks never overlap, and every
    Gaussian job draws the same sources for the same block (paired comparisons)."""
    return (repetition * 2 + phase) * max(trials, selection_trials)


class TrialTotals(NamedTuple):
    """Sums over trials of one (repetition, s2) run; float64 scalars."""

    count: int
    db: float  # sum of per-trial best-of-K dB
    db_sq: float
    best: float  # sum of best-of-K squared errors
    best_sq: float
    per_decoder: float  # sum over trials of the decoder-averaged squared error
    per_decoder_sq: float
    matches: int
    # practical decoder selection (check bits): see practical_totals
    practical: float = 0.0  # sum of the any-pass output's squared errors
    practical_sq: float = 0.0
    per_decoder_practical: float = 0.0  # sum over trials of the decoder-averaged error, fallbacks included
    per_decoder_practical_sq: float = 0.0
    picks: int = 0  # decoder picks (trials x K)
    accepted: int = 0  # picks whose check passed
    wrong: int = 0  # picks other than the encoder's candidate
    false_accepts: int = 0  # wrong picks whose check passed
    # a sampled estimate (estimate=bayes): its Monte Carlo error over decoder outputs
    estimate_var: float = 0.0  # sum of the squared standard errors of the outputs that kept a draw
    estimated: int = 0  # outputs that kept a draw
    estimate_empty: int = 0  # outputs that kept none (the pick's estimate was output)

    def add(self, other: "TrialTotals") -> "TrialTotals":
        return TrialTotals(*(a + b for a, b in zip(self, other)))

    @property
    def distortion_db(self) -> float:
        return self.db / self.count

    def summary(self) -> dict:
        n = self.count

        def se_of_db(total: float, total_sq: float) -> float:
            return db_se(total / n, standard_error_of_sums(total, total_sq, n))

        match = self.matches / n
        accept_rate = proportion(self.accepted, self.picks)
        false_accept_rate = proportion(self.false_accepts, self.wrong)
        practical = {} if not self.picks else {
            "practical_mse_db": to_db(self.practical / n),
            "practical_mse_db_se": se_of_db(self.practical, self.practical_sq),
            "per_decoder_practical_mse_db": to_db(self.per_decoder_practical / n),
            "per_decoder_practical_mse_db_se": se_of_db(self.per_decoder_practical, self.per_decoder_practical_sq),
            "accept_rate": accept_rate,
            "accept_rate_se": binomial_se(accept_rate, self.picks),
            "false_accept_rate": false_accept_rate,
            "false_accept_rate_se": binomial_se(false_accept_rate, self.wrong),
        }
        sampled = {} if not (self.estimated or self.estimate_empty) else {
            "estimate_mc_se": math.sqrt(self.estimate_var / self.estimated) if self.estimated else math.nan,
            "estimate_empty_rate": proportion(self.estimate_empty, self.estimated + self.estimate_empty),
        }
        return {**practical, **sampled,
            "distortion_db": self.distortion_db,
            "mse_db": to_db(self.best / n),
            "per_decoder_mse_db": to_db(self.per_decoder / n),
            "match_prob": match,
            "distortion_db_se": standard_error_of_sums(self.db, self.db_sq, n),
            "mse_db_se": se_of_db(self.best, self.best_sq),
            "per_decoder_mse_db_se": se_of_db(self.per_decoder, self.per_decoder_sq),
            "match_prob_se": binomial_se(match, n),
        }


def _simulate_batch(job: "GaussianRateDistortion", s2: float, seed: int, first_message: int, trials: int,
                    batch: int, start: int, device: torch.device) -> TrialTotals:
    """One batch of :meth:`GaussianRateDistortion.simulate` (module level: workers unpickle it)."""
    stop = first_message + min(start + batch, trials)
    return job.simulate_batch(s2, seed, torch.arange(first_message + start, stop, device=device))


def squared_errors(source: Tensor, reconstructions: Tensor) -> Tensor:
    """Squared errors ``[B, K]`` of reconstructions ``[B, K]`` of sources ``[B]``; for vectors
    ``[B, d]`` and ``[B, K, d]`` the mean over the d components."""
    errors = (source[:, None] - reconstructions) ** 2  # [B, K] (or [B, K, d])
    return errors.mean(-1) if errors.dim() == 3 else errors


def practical_totals(totals: TrialTotals, source: Tensor, reconstructions: Tensor, fallback: Tensor,
                     accepted: Tensor, wrong: Tensor) -> TrialTotals:
    """``totals`` with the practical-selection sums of one batch (:func:`dsc.eval.outcome.any_pass`):
    sources ``[B]``, reconstructions and fallbacks ``[B, K]``, ``accepted`` and ``wrong`` picks
    ``[B, K]``."""
    system, errors = any_pass(squared_errors(source, reconstructions), squared_errors(source, fallback), accepted)
    per_decoder = errors.mean(dim=1)
    return totals._replace(
        practical=system.sum().item(), practical_sq=(system**2).sum().item(),
        per_decoder_practical=per_decoder.sum().item(), per_decoder_practical_sq=(per_decoder**2).sum().item(),
        picks=accepted.numel(), accepted=int(accepted.sum()), wrong=int(wrong.sum()),
        false_accepts=int((accepted & wrong).sum()),
    )


def trial_totals(source: Tensor, reconstructions: Tensor, match: Tensor) -> TrialTotals:
    """Totals for sources ``[B]``, reconstructions ``[B, K]`` and matches ``[B]``; for vectors
    ``[B, d]`` and ``[B, K, d]`` the error is the mean over the d components."""
    errors = squared_errors(source, reconstructions)
    best = errors.min(dim=1).values
    per_decoder = errors.mean(dim=1)
    db = 10 * torch.log10(best.clamp_min(torch.finfo(torch.float64).tiny))  # guard log 0
    return TrialTotals(
        count=source.shape[0],
        db=db.sum().item(),
        db_sq=(db**2).sum().item(),
        best=best.sum().item(),
        best_sq=(best**2).sum().item(),
        per_decoder=per_decoder.sum().item(),
        per_decoder_sq=(per_decoder**2).sum().item(),
        matches=int(match.sum()),
    )


@dataclass
class GaussianRateDistortion:
    """One (scheme, K, rate) point of the Gaussian experiment (see the module docstring)."""

    scheme: str = "gls"
    num_decoders: int = 4
    rate_bits: int = 1
    num_candidates: int = 2**15
    trials: int = 100_000
    selection_trials: int = 10_000
    repetitions: int = 1
    test_channel_variances: list = field(default_factory=lambda: list(PAPER_TEST_CHANNEL_VARIANCES))
    noise_var: float = 0.5
    balanced_labels: bool = False
    check_bits: int = 0  # c check bits per message: practical decoder selection (dsc.codec)
    batch_trials: int | None = None  # trials coded at once; None: 2048 on the CPU, 2**18 on a GPU
    chunk_size: int | None = None  # candidates per message per scan step (None: automatic); speed only
    workers: int = 1  # processes (one per GPU with device=cuda) sharing the batches; same results
    select_by: str | None = None  # s2 chosen by: None (the paper's distortion_db, or with check bits
    # the any-pass practical_mse_db) or any metric of the point, e.g. mse_db
    bound_samples: int = 200_000
    progress: bool = True
    allow_long: bool = False  # run even when the estimated time is over dsc.eval.budget.LONG_HOURS
    estimate: str = "pick"  # how decoders turn picks into outputs: pick, shrink or bayes (dsc.estimates)
    posterior_draws: int = 256  # estimate=bayes: draws per decoder and trial
    calibration_trials: int = 20_000  # estimate=shrink: simulated trials per s2 that fit its coefficients

    def __post_init__(self) -> None:
        self.point = CodingPoint(self.scheme, self.num_decoders, self.rate_bits, self.num_candidates, self.check_bits)
        for name in ("trials", "selection_trials", "repetitions", "bound_samples"):
            check_positive_int(getattr(self, name), name)
        if self.batch_trials is not None:
            check_positive_int(self.batch_trials, "batch_trials")
        check_positive_int(self.workers, "workers")
        if self.select_by not in (None, *SELECTABLE):
            raise ConfigError(f"select_by must be one of {', '.join(SELECTABLE)} (or null), got {self.select_by!r}")
        grid = list(self.test_channel_variances or [])
        if not grid:
            raise ConfigError("test_channel_variances is empty: give at least one s2, e.g. [0.005]")
        if any(not isinstance(s2, (int, float)) or s2 <= 0 for s2 in grid):
            raise ConfigError(f"test_channel_variances must all be > 0, got {grid}")
        self.test_channel_variances = [float(s2) for s2 in grid]
        if self.select_by in PRACTICAL and not self.check_bits:
            raise ConfigError(f"select_by={self.select_by} needs check bits (check_bits > 0): without them no pick is "
                              "checked")
        self.source = GaussianSource(self.noise_var)  # validates noise_var
        self.decoder_estimate = estimate_named(self.estimate, self.posterior_draws, self.calibration_trials,
                                               self.source.sample)
        if self._message_stride() * 2 * self.repetitions > MAX_MESSAGE:
            raise ConfigError("too many trials x repetitions for the message-id space (2**43)")

    def _message_stride(self) -> int:
        return max(self.trials, self.selection_trials)

    def _first_message(self, repetition: int, phase: int) -> int:
        return first_message(repetition, phase, self.trials, self.selection_trials)

    def _coder(self, model: AnalyticGaussianModel, seed: int) -> ImportanceCoder:
        return self.point.coder(seed, model.prior, balanced_labels=self.balanced_labels, chunk_size=self.chunk_size)

    def batch_for(self, device: torch.device) -> int:
        """Trials per batch: ``batch_trials``, or by device (a GPU needs large batches: at
        N = 2**15, K = 4 an H100 codes 1.3 M trials/s with 2**18 per batch, 0.76 M with 2**16)."""
        if self.batch_trials is not None:
            return self.batch_trials
        return AUTO_BATCH_TRIALS_CUDA if device.type == "cuda" else AUTO_BATCH_TRIALS_CPU

    def simulate(self, s2: float, seed: int, first_message: int, trials: int, device, desc: str,
                 pool: WorkerPool | None = None) -> TrialTotals:
        """Encode and decode ``trials`` messages from ``first_message`` on with s2, batch by batch
        (on ``pool``'s workers when given; the totals are the same either way)."""
        batch = self.batch_for(torch.device(device))
        starts = range(0, trials, batch)
        totals = TrialTotals(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0)
        work = partial(_simulate_batch, self, s2, seed, first_message, trials, batch)
        with progress_bar(total=trials, desc=desc, unit="trial", disable=not self.progress, leave=False) as bar:
            for part in (pool or WorkerPool([torch.device(device)])).map(work, starts):
                totals = totals.add(part)  # in batch order, whichever worker coded the batch
                bar.update(part.count)
        return totals

    def simulate_batch(self, s2: float, seed: int, messages: Tensor) -> TrialTotals:
        """The sums over one batch of message ids ``messages`` ``[B]`` (on their device)."""
        model = GaussianModel(s2, self.noise_var, estimate=self.decoder_estimate)
        draw = self.source.sample(CounterRandomness(seed), messages, self.num_decoders)
        coded = code(model, self._coder(model.analytic, seed), messages, draw.source, draw.side_info, self.check_bits)
        got = coded.decoded
        batch_totals = trial_totals(draw.source, got.picked, coded.match.any(dim=1))
        if got.estimate_se is not None:
            kept = ~torch.isnan(got.estimate_se)
            batch_totals = batch_totals._replace(estimate_var=float((got.estimate_se[kept] ** 2).sum()),
                                                 estimated=int(kept.sum()), estimate_empty=int((~kept).sum()))
        if not self.check_bits:  # no check sent: every pick is accepted, nothing practical to measure
            return batch_totals
        return practical_totals(batch_totals, draw.source, got.picked, got.fallback, got.accepted, ~coded.match)

    @property
    def selection_metric(self) -> str:
        """What s2 is chosen by: ``select_by`` when given, else the paper's distortion, or with
        check bits the any-pass MSE (a receiver without the oracle prefers larger s2, whose
        picks match more often)."""
        if self.select_by is not None:
            return self.select_by
        return "practical_mse_db" if self.check_bits else "distortion_db"

    @property
    def scheme_label(self) -> str:
        """The scheme as tables name it: ``<scheme>_mse`` when s2 is chosen by the MSE in dB, then
        ``_<estimate>`` for a decoder estimate other than the pick."""
        label = f"{self.scheme}_mse" if self.select_by == "mse_db" else self.scheme
        return label if self.estimate == "pick" else f"{label}_{self.estimate}"

    def select(self, seed: int, repetition: int, device, pool: WorkerPool | None = None) -> tuple[float, dict]:
        """Choose s2 by the lowest :attr:`selection_metric` on the selection trials."""
        if len(self.test_channel_variances) == 1:
            return self.test_channel_variances[0], {}
        first = self._first_message(repetition, SELECTION)
        scores = {}
        for s2 in self.test_channel_variances:
            desc = f"{self.label} rep {repetition} select s2={s2:g}"
            totals = self.simulate(s2, seed, first, self.selection_trials, device, desc, pool)
            scores[s2] = totals.summary()[self.selection_metric]
        return min(scores, key=scores.get), scores

    def prop4_bound(self, s2: float, seed: int) -> float:
        """Prop. 4's error bound at s2, by Monte Carlo over (A, T, W) from the model."""
        g = torch.Generator().manual_seed(seed)
        n = self.bound_samples
        a = torch.randn(n, generator=g, dtype=torch.float64)
        t = a + math.sqrt(self.noise_var) * torch.randn(n, generator=g, dtype=torch.float64)
        w = a + math.sqrt(s2) * torch.randn(n, generator=g, dtype=torch.float64)
        info = AnalyticGaussianModel(s2, self.noise_var).info_density_bits(a, t, w)
        # The baseline's encoder and decoder 0 form exactly the K = 1 scheme, so its error is
        # at most the K = 1 bound; the K-decoder bound holds for GLS only.
        rows = self.num_decoders if self.scheme == Scheme.GLS.value else 1
        return prop4_error_bound(info, rows, self.point.num_labels).item()

    @property
    def label(self) -> str:
        return f"{self.scheme_label} K={self.num_decoders} R={self.rate_bits}"

    def estimated_seconds(self, device: torch.device, workers: int = 1) -> float:
        """A generous estimate of the job's coding time (:mod:`dsc.eval.budget`)."""
        grid = len(self.test_channel_variances)
        selection = self.selection_trials * grid if grid > 1 else 0
        messages = self.repetitions * (self.trials + selection)
        if self.estimate == "bayes":  # every decoder re-encodes its draws (at least as costly as a trial each)
            messages *= 1 + self.posterior_draws
        return coding_seconds(messages, self.num_candidates, self.num_decoders, device, workers)

    def run(self, seed: int, device: torch.device, output_dir: Path) -> list[dict]:
        runs = []
        devices = worker_devices(device, self.workers)
        check_duration(self.estimated_seconds(device, len(devices)), self.label, self.allow_long,
                       "trials, selection_trials, repetitions or num_candidates")
        if len(devices) > 1:
            log.info("%s: trials split over %d workers on %s", self.label, len(devices), ", ".join(map(str, devices)))
        with WorkerPool(devices) as pool:
            for repetition in range(self.repetitions):
                s2, selection = self.select(seed, repetition, device, pool)
                first = self._first_message(repetition, EVALUATION)
                desc = f"{self.label} rep {repetition} s2={s2:g}"
                totals = self.simulate(s2, seed, first, self.trials, device, desc, pool)
                runs.append({**totals.summary(), "s2": s2, "selection": selection})
                log.info(
                    "%s rep %d: s2 %g, distortion %.2f dB (paper metric), mse %.2f dB, match %.4f",
                    self.label, repetition, s2, runs[-1]["distortion_db"], runs[-1]["mse_db"], runs[-1]["match_prob"],
                )
        point = self._point(runs, seed)
        log.info(
            "%s: distortion %.2f +- %.2f dB, mse %.2f dB, per-decoder mse %.2f dB, match %.4f "
            "(Prop. 4 error bound %.4f), Wyner-Ziv %.2f dB",
            self.label, point["distortion_db"], point["distortion_db_se"], point["mse_db"],
            point["per_decoder_mse_db"], point["match_prob"], point["prop4_error_bound"], point["wyner_ziv_mse_db"],
        )
        return [point]

    def _point(self, runs: list[dict], seed: int) -> dict:
        metrics = ("distortion_db", "mse_db", "per_decoder_mse_db", "match_prob")
        metrics += PRACTICAL if self.check_bits else ()
        metrics += ("estimate_mc_se", "estimate_empty_rate") if self.estimate == "bayes" else ()
        point = {
            **point_labels("gaussian", self.scheme),
            **self.point.labels(),
            "scheme": self.scheme_label,
            "trials": self.trials,
            "selection_trials": self.selection_trials if len(self.test_channel_variances) > 1 else 0,
            "repetitions": self.repetitions,
            "balanced_labels": self.balanced_labels,
            "noise_var": self.noise_var,
            "selection_metric": self.selection_metric,
            "estimate": self.estimate,
        }
        if self.estimate == "bayes":
            point["posterior_draws"] = self.posterior_draws
        if self.estimate == "shrink":
            point["calibration_trials"] = self.calibration_trials
        for name in metrics:
            point[name], se = mean_se(run[name] for run in runs)
            point[f"{name}_se"] = se if len(runs) > 1 else runs[0].get(f"{name}_se", math.nan)
        point["se_over"] = "repetitions" if len(runs) > 1 else "trials"
        chosen = [run["s2"] for run in runs]
        point["s2"] = statistics.mode(chosen)
        point["s2_per_repetition"] = chosen
        point["prop4_error_bound"] = statistics.fmean(self.prop4_bound(s2, seed) for s2 in chosen)
        point["wyner_ziv_mse_db"] = to_db(self.source.posterior_var * 2.0 ** (-2 * self.rate_bits))
        point["selection_distortion_db"] = [run["selection"] for run in runs]
        return point
