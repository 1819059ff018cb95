"""Shared noise of speculative sampling, keyed by (seed, sequence, absolute output position,
row) so that a drafter and a verifier, or two runs, draw exactly the same numbers.

Rows at one position: 0 .. K-1 hold draft k's exponentials E^(k)_i over the vocabulary (the
drafter samples X^(k) = argmin_i E^(k)_i / p^(k)_i with them, GLS verifies with them);
``RESIDUAL_ROW`` holds exponentials for residual and bonus samples of the rejection-based
verifiers; ``UNIFORM_ROW + k`` holds draft k's acceptance uniform (counter 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dsc.coding.randomness import exponential, uniform
from dsc.coding.streams import Purpose, stream_id
from dsc.errors import InvalidArgumentError

POSITION_BITS = 20
MAX_SEQUENCE = 2**23 - 1
RESIDUAL_ROW = 2**15
UNIFORM_ROW = 2**15 + 1
MAX_DRAFTS = 2**14


@dataclass(frozen=True)
class SharedNoise:
    """Counter-based noise for sequences ``[B]`` at absolute output positions ``[B]``."""

    seed: int = 0

    def _streams(self, sequences: Tensor, positions: Tensor, rows: Tensor) -> Tensor:
        if sequences.shape != positions.shape or sequences.dim() != 1:
            raise InvalidArgumentError("sequences and positions must be matching 1-D integer tensors [B]")
        if positions.numel() and (int(positions.min()) < 0 or int(positions.max()) >= 2**POSITION_BITS):
            raise InvalidArgumentError(f"output positions must be in [0, 2**{POSITION_BITS})")
        if sequences.numel() and (int(sequences.min()) < 0 or int(sequences.max()) > MAX_SEQUENCE):
            raise InvalidArgumentError(f"sequence ids must be in [0, {MAX_SEQUENCE}]")
        message = sequences.long() * 2**POSITION_BITS + positions.long()
        return stream_id(Purpose.SPECULATIVE, message[:, None], rows[None, :].to(message.device))

    def exponentials(self, sequences: Tensor, positions: Tensor, rows: Tensor, vocab: int) -> Tensor:
        """Exp(1) noise ``[B, R, V]`` (float64) of ``rows`` ``[R]`` over token ids 0 .. V-1."""
        streams = self._streams(sequences, positions, rows)[..., None]
        return exponential(self.seed, streams, torch.arange(vocab, device=streams.device), torch.float64)

    def draft_rows(self, sequences: Tensor, positions: Tensor, drafts: int, vocab: int) -> Tensor:
        """Draft rows 0 .. K-1: ``[B, K, V]``."""
        if not 1 <= drafts <= MAX_DRAFTS:
            raise InvalidArgumentError(f"K must be in [1, {MAX_DRAFTS}], got {drafts}")
        return self.exponentials(sequences, positions, torch.arange(drafts), vocab)

    def residual_row(self, sequences: Tensor, positions: Tensor, vocab: int) -> Tensor:
        """The residual / bonus row: ``[B, V]``."""
        return self.exponentials(sequences, positions, torch.tensor([RESIDUAL_ROW]), vocab)[:, 0]

    def acceptance_uniforms(self, sequences: Tensor, positions: Tensor, drafts: int) -> Tensor:
        """Draft k's acceptance uniform in (0, 1): ``[B, K]`` (float64)."""
        streams = self._streams(sequences, positions, UNIFORM_ROW + torch.arange(drafts))
        return uniform(self.seed, streams, torch.zeros_like(streams), torch.float64)


def gumbel_sample(noise: Tensor, probs: Tensor) -> Tensor:
    """argmin_i E_i / p_i over the last dim (an exact sample of ``probs``; ties impossible a.s.)."""
    return torch.argmin(torch.log(noise) - torch.log(probs), dim=-1)
