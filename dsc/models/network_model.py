"""What every coding model built on trained networks shares: a digest of the weights (it enters
a bitstream's fingerprint, so a stream is only decoded with the encoder's weights), moving to
another device, and the decoders' log-weights from an estimator network."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from dsc.coding.importance import GaussianPrior


@dataclass(frozen=True)
class EstimatorLogRatio:
    """The K decoders' log-weights: an estimator's logits of candidates ``[B, n, d]`` against its
    first-layer share of each decoder's side information ``side_bias`` ``[B, K, hidden]`` ->
    ``[B, K, n]``. ``estimator`` is any module with ``logits(w, side_bias)``."""

    estimator: Any
    side_bias: Tensor
    maximum: ClassVar[None] = None  # a network's logits have no known bound: decoders scan their whole bin

    def __call__(self, w: Tensor) -> Tensor:
        return self.estimator.logits(w, self.side_bias)

    def subset(self, rows: Tensor) -> "EstimatorLogRatio":
        return EstimatorLogRatio(self.estimator, self.side_bias[rows])


class NetworkCodingModel:
    """Base of a :class:`dsc.pipeline.CodingModel` over ``nets`` (eval mode) with an
    N(0, I) prior over their ``latent_dim``-dimensional latent."""

    def __init__(self, nets: nn.Module) -> None:
        self.nets = nets.eval()
        self.prior = GaussianPrior(dim=nets.latent_dim)
        digest = hashlib.sha256()
        for name, value in sorted(nets.state_dict().items()):
            digest.update(name.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        self.weights_sha256 = digest.hexdigest()

    def to(self, device) -> "NetworkCodingModel":
        """The same model on ``device`` (a copy of the networks, unless they are there already)."""
        device = torch.device(device)
        if next(self.nets.parameters()).device == device:
            return self
        moved = copy.copy(self)
        moved.nets = copy.deepcopy(self.nets).to(device)
        return moved
