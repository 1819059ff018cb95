"""Per-message outcomes of one coding point and their summary (every Monte-Carlo evaluation's
common currency): a distortion per message and decoder, whether each decoder picked the
encoder's candidate, and with check bits the acceptances and the fallbacks' distortions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from dsc.eval.stats import proportion, standard_error
from dsc.pipeline import first_accepted


@dataclass(frozen=True)
class PointOutcome:
    """Per-message results of one coding point: ``mse`` ``[n, K]`` (the source's distortion of
    decoder k's reconstruction, e.g. per-pixel MSE on the [0, 1] scale for MNIST) and ``match``
    ``[n, K]`` (decoder k picked the encoder's candidate); with check bits also ``accepted``
    ``[n, K]`` (decoder k's check passed) and ``fallback_mse`` ``[n, K]`` (the distortion of its
    side-information-only reconstruction); for image sources also ``ssim`` ``[n, K]`` (decoder k's
    SSIM, summarised by :func:`dsc.eval.image_metrics.image_summary`, not by :meth:`summary`)."""

    mse: Tensor
    match: Tensor
    accepted: Tensor | None = None
    fallback_mse: Tensor | None = None
    ssim: Tensor | None = None

    @classmethod
    def concat(cls, parts: Sequence["PointOutcome"]) -> "PointOutcome":
        """The outcomes of consecutive batches as one."""
        columns = zip(*((p.mse, p.match, p.accepted, p.fallback_mse, p.ssim) for p in parts))
        return cls(*(None if values[0] is None else torch.cat(values) for values in columns))

    def first_decoders(self, k: int) -> "PointOutcome":
        cut = [None if t is None else t[:, :k] for t in (self.accepted, self.fallback_mse, self.ssim)]
        return PointOutcome(self.mse[:, :k], self.match[:, :k], *cut)

    def summary(self) -> dict:
        n = self.mse.shape[0]
        best = self.mse.min(dim=1).values.double()
        any_match = self.match.any(dim=1).double()
        summary = {
            "digits": n,
            "mse": best.mean().item(),
            "mse_se": standard_error(best),
            "per_decoder_mse": self.mse.double().mean().item(),
            "decoder_mse": [round(v, 6) for v in self.mse.double().mean(0).tolist()],
            "match_prob": any_match.mean().item(),
            "match_prob_se": standard_error(any_match),
        }
        if self.accepted is not None:
            summary.update(self.practical_summary())
        return summary

    def practical_summary(self) -> dict:
        """Any-pass output (:func:`any_pass`), each decoder with its fallback, and the acceptance
        rates (of all picks; of the picks other than the encoder's candidate)."""
        accepted, wrong = self.accepted, ~self.match
        system, outputs = any_pass(self.mse.double(), self.fallback_mse.double(), accepted)
        return {
            "practical_mse": system.mean().item(), "practical_mse_se": standard_error(system),
            "per_decoder_practical_mse": outputs.mean().item(),
            "accept_rate": accepted.double().mean().item(),
            "false_accept_rate": proportion(int((accepted & wrong).sum()), int(wrong.sum())),
        }


def any_pass(errors: Tensor, fallback_errors: Tensor, accepted: Tensor) -> tuple[Tensor, Tensor]:
    """Practical decoder selection with check bits, scored. Decoder k outputs its pick where its
    check passed and its fallback elsewhere; the any-pass system outputs the first decoder whose
    check passed (:func:`dsc.pipeline.first_accepted`), decoder 0's fallback when none did.
    ``errors``, ``fallback_errors`` (the distortions of the picks and of the fallbacks) and
    ``accepted`` ``[B, K]`` -> the system's errors ``[B]`` and every decoder's ``[B, K]``."""
    outputs = torch.where(accepted, errors, fallback_errors)
    return outputs.gather(1, first_accepted(accepted)[:, None])[:, 0], outputs
