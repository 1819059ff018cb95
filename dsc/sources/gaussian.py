"""The scalar Gaussian source with K independent side-information channels."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from dsc.coding.randomness import CounterRandomness
from dsc.coding.streams import Purpose, check_messages, check_num_rows, stream_id
from dsc.errors import InvalidArgumentError

SOURCE_ROW = 0  # row of the SOURCE stream holding A (counter 0)
SIDE_INFO_ROW = 1  # row of the SOURCE stream holding decoder k's noise (counter k)


class GaussianDraw(NamedTuple):
    """One draw per message: ``source`` A ``[B]`` and ``side_info`` T ``[B, K]`` (float64)."""

    source: Tensor
    side_info: Tensor


@dataclass(frozen=True)
class GaussianSource:
    """A ~ N(0, 1) and T_k = A + Z_k, Z_k ~ N(0, noise_var) independent, k = 0..K-1.

    Draws are keyed by message id through the SOURCE streams of the shared generator, so a
    trial's source and side information do not depend on batching or on which worker runs it.
    """

    noise_var: float = 0.5

    def __post_init__(self) -> None:
        if not (isinstance(self.noise_var, (int, float)) and self.noise_var > 0):
            raise InvalidArgumentError(
                f"side-information noise variance must be > 0, got {self.noise_var!r}"
            )

    @property
    def posterior_var(self) -> float:
        """var(A | T_k) = noise_var / (1 + noise_var): 1/3 for the default 0.5."""
        return self.noise_var / (1 + self.noise_var)

    def sample(self, rng: CounterRandomness, messages: Tensor, num_decoders: int) -> GaussianDraw:
        """Draw A ``[B]`` and T ``[B, K]`` for messages ``[B]``."""
        messages = check_messages(messages)
        check_num_rows(num_decoders, "num_decoders (K)")
        device = messages.device
        a = rng.normal(
            stream_id(Purpose.SOURCE, messages, SOURCE_ROW), torch.zeros_like(messages), torch.float64
        )
        z = rng.normal(
            stream_id(Purpose.SOURCE, messages, SIDE_INFO_ROW)[:, None],
            torch.arange(num_decoders, device=device)[None, :],
            torch.float64,
        )
        return GaussianDraw(a, a[:, None] + math.sqrt(self.noise_var) * z)
