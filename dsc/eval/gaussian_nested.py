"""The nested scalar quantiser on the Gaussian K-decoder problem, beside GLS.

One job evaluates one (K, rate) point of :class:`~dsc.baselines.NestedScalarQuantizer` on the
same sources as :class:`~dsc.eval.gaussian.GaussianRateDistortion` (same seed, same message ids:
the comparison is paired). The step is chosen from a grid on the selection trials by
``selection_metric`` and reported on fresh trials. The grid is given as coset spacings
``2^R * step`` in units of the side information's posterior standard deviation, so one grid
serves every rate. The step is chosen by ``mse_db`` by default (the quantiser's design goal);
``selection_metric=distortion_db`` chooses by the paper's metric as the GLS job does, which
favours fine steps with rare but large decoding errors. Metrics as for GLS: ``distortion_db``
(the paper's mean per-trial dB), ``mse_db``, ``per_decoder_mse_db``, ``match_prob`` (some decoder
found the encoder's index), with standard errors over trials, and the bounds ``wyner_ziv_mse_db``
and ``no_side_info_mse_db`` (2^(-2R), the rate-distortion function without side information).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dsc.baselines.nested_quantizer import NestedScalarQuantizer
from dsc.coding import CounterRandomness
from dsc.coding.validation import check_positive_int
from dsc.errors import ConfigError
from dsc.eval.gaussian import EVALUATION, SELECTION, TrialTotals, first_message, trial_totals
from dsc.eval.points import point_labels
from dsc.eval.stats import to_db
from dsc.progress import progress_bar
from dsc.sources.gaussian import GaussianSource

log = logging.getLogger(__name__)

SCHEME = "nested_scalar"
SELECTION_METRICS = ("distortion_db", "mse_db")


def default_spacings() -> list[float]:
    """Coset spacings 1 .. 16 posterior standard deviations, 41 geometric steps."""
    return [16.0 ** (i / 40) for i in range(41)]


@dataclass
class NestedQuantizerRateDistortion:
    """One (K, rate) point of the nested scalar quantiser (see the module docstring)."""

    num_decoders: int = 4
    rate_bits: int = 1  # bits per source vector: rate_bits / dim per component
    dim: int = 1  # d i.i.d. components, each quantised on its own (scalar quantisation per component)
    trials: int = 100_000
    selection_trials: int = 10_000
    noise_var: float = 0.5
    spacings: list = field(default_factory=default_spacings)
    selection_metric: str = "mse_db"
    batch_trials: int = 65_536
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("num_decoders", "rate_bits", "dim", "trials", "selection_trials", "batch_trials"):
            check_positive_int(getattr(self, name), name)
        if self.rate_bits % self.dim:
            raise ConfigError(f"rate_bits {self.rate_bits} is not a whole number of bits per component for d = "
                              f"{self.dim}; use a multiple of {self.dim}")
        spacings = list(self.spacings or [])
        if not spacings or any(not isinstance(x, (int, float)) or not x > 0 for x in spacings):
            raise ConfigError(f"spacings must be a non-empty list of numbers > 0, got {spacings}")
        self.spacings = [float(x) for x in spacings]
        if self.selection_metric not in SELECTION_METRICS:
            raise ConfigError(f"selection_metric must be one of {', '.join(SELECTION_METRICS)}, "
                              f"got {self.selection_metric!r}")
        self.source = GaussianSource(self.noise_var)
        NestedScalarQuantizer(1.0, self.component_bits)  # validates the rate

    @property
    def component_bits(self) -> int:
        return self.rate_bits // self.dim

    def step_for(self, spacing: float) -> float:
        return spacing * math.sqrt(self.source.posterior_var) / 2**self.component_bits

    def simulate(self, step: float, seed: int, first: int, trials: int, device, desc: str | None) -> TrialTotals:
        """Encode and decode ``trials`` messages from ``first`` on with quantiser step ``step``
        (a progress bar titled ``desc`` unless it is None)."""
        quantizer = NestedScalarQuantizer(step, self.component_bits)
        k, d = self.num_decoders, self.dim
        rng = CounterRandomness(seed)
        shrink = 1 / (1 + self.noise_var)  # E[A | T] = T / (1 + noise_var)
        totals = TrialTotals(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0)
        with progress_bar(total=trials, desc=desc, unit="trial", disable=not self.progress or desc is None,
                          leave=False) as bar:
            for start in range(0, trials, self.batch_trials):
                messages = torch.arange(first + start, first + min(start + self.batch_trials, trials), device=device)
                draw = self.source.sample_vectors(rng, messages, k, d)  # A [B, d], T [B, K, d]
                source = draw.source.reshape(-1)  # every component on its own: [B d]
                labels = quantizer.encode(source)
                got = quantizer.decode(labels, shrink * draw.side_info.transpose(1, 2).reshape(-1, k),
                                       self.source.posterior_var)
                right = (got.index == quantizer.quantize(source)[:, None]).view(-1, d, k).all(dim=1)  # [B, K]
                recon = got.reconstruction.view(-1, d, k).transpose(1, 2)  # [B, K, d]
                if d == 1:
                    totals = totals.add(trial_totals(draw.source[:, 0], recon[..., 0], right.any(dim=1)))
                else:
                    totals = totals.add(trial_totals(draw.source, recon, right.any(dim=1)))
                bar.update(messages.shape[0])
        return totals

    @property
    def scheme(self) -> str:
        """``nested_scalar``, or ``nested_scalar_paper_metric`` when the step is chosen by the
        paper's metric (then it trades MSE for a lower mean per-trial dB)."""
        return SCHEME if self.selection_metric == "mse_db" else f"{SCHEME}_paper_metric"

    @property
    def label(self) -> str:
        return f"{self.scheme} K={self.num_decoders} R={self.rate_bits}" + (f" d={self.dim}" if self.dim > 1 else "")

    def run(self, seed: int, device: torch.device, output_dir: Path) -> list[dict]:
        selection = {}
        first = first_message(0, SELECTION, self.trials, self.selection_trials)
        for spacing in progress_bar(self.spacings, desc=f"{self.label} choosing the step", unit="step",
                            disable=not self.progress, leave=False):
            totals = self.simulate(self.step_for(spacing), seed, first, self.selection_trials, device, None)
            selection[spacing] = totals.summary()[self.selection_metric]
        spacing = min(selection, key=selection.get)
        step = self.step_for(spacing)
        first = first_message(0, EVALUATION, self.trials, self.selection_trials)
        totals = self.simulate(step, seed, first, self.trials, device, f"{self.label} step={step:.4g}")
        point = {
            **point_labels("gaussian", "nested_scalar"), "scheme": self.scheme, "num_decoders": self.num_decoders,
            "rate_bits": self.rate_bits, "dim": self.dim,
            "trials": self.trials, "selection_trials": self.selection_trials, "repetitions": 1,
            "noise_var": self.noise_var, **totals.summary(), "se_over": "trials",
            "step": step, "coset_spacing_sd": spacing, "selection_metric": self.selection_metric,
            "wyner_ziv_mse_db": to_db(self.source.posterior_var * 2.0 ** (-2 * self.component_bits)),
            "no_side_info_mse_db": to_db(2.0 ** (-2 * self.component_bits)),
        }
        log.info("%s: step %.4g (coset spacing %.2f sd), distortion %.2f dB (paper metric), mse %.2f dB "
                 "(Wyner-Ziv %.2f dB), match %.4f", self.label, step, spacing, point["distortion_db"],
                 point["mse_db"], point["wyner_ziv_mse_db"], point["match_prob"])
        return [point]
