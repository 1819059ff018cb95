"""One rate-distortion point of any registered source (dsc.registry) through the pipeline.

The generic Monte-Carlo job: message ids ``first_message`` .. + ``messages`` - 1 are drawn by the
source, coded by :func:`dsc.pipeline.code` and scored with the source's distortion. Run it as

    python evaluate.py experiment=source_point job.source=gaussian 'job.options={s2: 0.01}' rate_bits=3

Metrics (means over messages, standard errors over messages): ``mse`` (best of K decoders, the
paper's oracle), ``per_decoder_mse``, ``match_prob``; with check bits the practical figures of
:class:`dsc.eval.outcome.PointOutcome`; for a source on the ``db`` scale also ``mse_db``,
``per_decoder_mse_db`` and ``distortion_db`` (the mean over messages of the per-message dB of
the best decoder, the paper's Gaussian metric).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from dsc.coding import CodingPoint
from dsc.coding.validation import check_positive_int
from dsc.environment import strict_float32
from dsc.eval.outcome import PointOutcome
from dsc.eval.points import point_labels
from dsc.eval.stats import db_se, standard_error, to_db
from dsc.pipeline import code
from dsc.progress import progress_bar
from dsc.registry import get_source

log = logging.getLogger(__name__)
DEFAULT_MESSAGES = 10_000


@dataclass
class SourceRateDistortion:
    """One (scheme, K, rate, N) point of the registered source ``source`` with ``options``.
    ``num_candidates`` None: the source's usual N; ``messages`` None: 10,000 (or all of a
    smaller data set)."""

    source: str
    options: dict | None = None
    scheme: str = "gls"
    num_decoders: int = 4
    rate_bits: int = 2
    num_candidates: int | None = None
    check_bits: int = 0
    messages: int | None = None
    first_message: int = 0
    batch_size: int = 1000
    progress: bool = True

    def __post_init__(self) -> None:
        self.spec = get_source(self.source)
        self.options = self.spec.resolve(self.options)
        self.num_candidates = self.num_candidates or self.spec.num_candidates
        self.point = CodingPoint(self.scheme, self.num_decoders, self.rate_bits, self.num_candidates, self.check_bits)
        check_positive_int(self.batch_size, "batch_size")

    @torch.no_grad()
    @strict_float32()
    def outcome(self, seed: int, device: torch.device) -> tuple[PointOutcome, str]:
        """Per-message outcomes of the point and the data's origin."""
        available = self.spec.num_messages(self.options)
        total = self.messages or min(DEFAULT_MESSAGES, available or DEFAULT_MESSAGES)
        check_positive_int(total, "messages")
        parts, origin = [], ""
        with progress_bar(total=total, desc=f"{self.source} {self.scheme} K={self.num_decoders} R={self.rate_bits}",
                  unit="message", disable=not self.progress, leave=False) as bar:
            for start in range(0, total, self.batch_size):
                ids = torch.arange(self.first_message + start, self.first_message + min(start + self.batch_size, total),
                                   device=device)
                got = self.spec.coding_inputs(self.options, ids, self.num_decoders)
                coder = self.point.coder(seed, got.model.prior)
                coded = code(got.model, coder, ids, got.sources, got.side_information, self.check_bits,
                             fallback=self.check_bits > 0)
                decoded, origin = coded.decoded, got.origin
                score = lambda recon: self.spec.distortion(got.sources, recon).double().cpu()  # noqa: E731
                parts.append(PointOutcome(score(decoded.picked), coded.match.cpu(),
                                          *((decoded.accepted.cpu(), score(decoded.fallback)) if self.check_bits
                                            else ())))
                bar.update(ids.shape[0])
        return PointOutcome.concat(parts), origin

    def run(self, seed: int, device: torch.device, output_dir: Path) -> list[dict]:
        outcome, origin = self.outcome(seed, device)
        summary = outcome.summary()
        if self.spec.scale == "db":
            best = outcome.mse.min(dim=1).values
            per_message_db = 10 * torch.log10(best.clamp_min(torch.finfo(torch.float64).tiny))
            summary.update({
                "distortion_db": per_message_db.mean().item(),
                "distortion_db_se": standard_error(per_message_db),
                "mse_db": to_db(summary["mse"]), "mse_db_se": db_se(summary["mse"], summary["mse_se"]),
                "per_decoder_mse_db": to_db(summary["per_decoder_mse"]),
            })
            if "practical_mse" in summary:
                summary["practical_mse_db"] = to_db(summary["practical_mse"])
        point = {
            **point_labels(self.source, self.scheme), **self.point.labels(), "messages": outcome.mse.shape[0],
            **summary,
            "distortion_measure": self.spec.distortion_name, "options": self.options, "data": origin,
            **(self.spec.describe(self.options) if self.spec.describe else {}),
        }
        log.info("%s %s K=%d R=%d N=%d on %d messages (%s): best-of-K %s %.5g, per-decoder %.5g, match %.3f",
                 self.source, self.scheme, self.num_decoders, self.rate_bits, self.num_candidates,
                 point["messages"], origin, self.spec.distortion_name, point["mse"], point["per_decoder_mse"],
                 point["match_prob"])
        return [point]
