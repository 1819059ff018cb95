"""Refusing work that would not end: a job estimates its running time before it starts, and a
configuration estimated at more than :data:`LONG_HOURS` hours stops with a ConfigError that
gives the estimate, unless the user asks for it with ``allow_long=true``."""

from __future__ import annotations

import torch

from dsc.errors import ConfigError

LONG_HOURS = 24.0
# Candidate scores (candidates x decoders) per second of the Gaussian coder, a generous reading
# of results/bench_gaussian: a 2-core CPU codes 3,100 trials/s at N = 2**15, K = 4 (about
# 4e8 scores/s); an H100 1.3 M trials/s (about 1.7e11). Early stopping makes real runs faster,
# so the estimate errs towards running.
SCORES_PER_SECOND = {"cpu": 4e8, "cuda": 1.7e11}


def coding_seconds(messages: int, num_candidates: int, num_decoders: int, device: torch.device,
                   workers: int = 1) -> float:
    """Estimated seconds to code ``messages`` with N candidates and K decoders on ``device``."""
    rate = SCORES_PER_SECOND.get(torch.device(device).type, SCORES_PER_SECOND["cpu"]) * max(1, workers)
    return messages * num_candidates * num_decoders / rate


def check_duration(seconds: float, what: str, allow_long: bool, fewer: str) -> None:
    """A ConfigError when ``seconds`` exceeds :data:`LONG_HOURS` hours and not ``allow_long``;
    ``fewer`` says which settings to lower."""
    hours = seconds / 3600
    if hours > LONG_HOURS and not allow_long:
        raise ConfigError(f"{what} would take about {hours:,.0f} hours on this device (more than {LONG_HOURS:g} h): "
                          f"lower {fewer}, or set allow_long=true to run it anyway")
