"""A decoder that knows how sure its pick is: the image codec's :class:`Decoder` with three more
inputs, the *pick features* of decoder k's pick:

- its race score ``log E - log v`` (lower: an earlier, heavier pick, more often the encoder's;
  +inf for an empty bin, clamped to the top of the range),
- the estimator's log-ratio ``log p(w | t_k) / p(w)`` of the pick for the decoder's own side
  information,
- the rate ``log2 L_max`` in bits (with it the chance that a pick is the encoder's).

:meth:`PickDecoder.from_codec` copies a trained codec's decoder and gives the new input columns
zero weights, so before any training it is exactly that decoder; trained on picks that match and
picks that miss, it learns how far to trust a pick. With ``crop_only`` the latent and the pick
features are zeroed: the decoder of the side information alone.

Shapes: ``w`` ``[N, latent_dim]``, pick features ``[N, 3]``, side features ``[N, features]`` (the
codec's projection of the side information) -> ``[N, C, H, W/2]`` in [-1, 1].
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dsc.models.image_codec import MNIST_IMAGE, Decoder, ImageCodecNetworks

PICK_FEATURES = 3
FEATURE_LIMIT = 16.0  # scores and log-ratios are clamped to [-16, 16] nats (an empty bin's +inf to 16) ...
FEATURE_SCALE = 4.0  # ... and divided by 4: O(1) inputs
RATE_SCALE = 8.0  # rate bits / 8


def pick_features(score: Tensor, log_ratio: Tensor, rate_bits: float) -> Tensor:
    """Pick features ``[..., 3]`` (float32) of picks with race scores ``score`` ``[...]`` (+inf:
    the bin was empty), the estimator's log-ratios ``log_ratio`` ``[...]`` and ``rate_bits``."""
    def scaled(x: Tensor) -> Tensor:
        return x.double().clamp(-FEATURE_LIMIT, FEATURE_LIMIT) / FEATURE_SCALE

    rate = torch.full(score.shape, float(rate_bits) / RATE_SCALE, dtype=torch.float64, device=score.device)
    return torch.stack([scaled(score), scaled(log_ratio.to(score.device)), rate], dim=-1).float()


class PickDecoder(nn.Module):
    """The codec's decoder architecture (``latent_dim``, ``features`` ... as :class:`Decoder`)
    with :data:`PICK_FEATURES` more inputs; ``crop_only``: the latent and the pick features are
    ignored (zeroed)."""

    def __init__(self, latent_dim: int = 4, features: int = 128, channels: int = 128, hidden: int = 512,
                 dropout: float = 0.5, image_shape: tuple[int, int, int] = MNIST_IMAGE,
                 crop_only: bool = False) -> None:
        super().__init__()
        self.config = {"latent_dim": latent_dim, "features": features, "channels": channels, "hidden": hidden,
                       "dropout": dropout, "image_shape": list(image_shape)}
        self.crop_only = bool(crop_only)
        self.net = Decoder(latent_dim, features + PICK_FEATURES, channels, hidden, dropout, tuple(image_shape))

    @classmethod
    def from_codec(cls, nets: ImageCodecNetworks, crop_only: bool = False) -> "PickDecoder":
        """A copy of ``nets.decoder`` with zero weights on the pick features (its outputs equal
        the codec decoder's until trained), on the same device."""
        decoder = nets.decoder
        first = decoder.fc[0]
        dropout = next(m.p for m in decoder.up if isinstance(m, nn.Dropout))
        made = cls(nets.latent_dim, first.in_features - nets.latent_dim, decoder.channels, first.out_features,
                   dropout, nets.image_shape, crop_only).to(first.weight.device)
        state = decoder.state_dict()
        state["fc.0.weight"] = torch.cat([first.weight.detach(), first.weight.new_zeros(first.out_features,
                                                                                        PICK_FEATURES)], dim=1)
        made.net.load_state_dict(state)
        return made

    def forward(self, w: Tensor, pick: Tensor, side_features: Tensor) -> Tensor:
        """``w`` ``[N, latent_dim]``, pick features ``pick`` ``[N, 3]``, side features ``[N, F]`` ->
        ``[N, C, H, W/2]``."""
        if self.crop_only:
            w, pick = torch.zeros_like(w), torch.zeros_like(pick)
        dtype = side_features.dtype
        return self.net(w.to(dtype), torch.cat([side_features, pick.to(dtype)], dim=-1))
