"""LightningModule of a pick-aware decoder (:class:`dsc.models.pick_decoder.PickDecoder`) for a
trained, frozen image codec.

Each step codes the batch with GLS under ``no_grad`` (N = ``num_candidates``, K = the batch's
side informations, the rate cycling through ``rate_bits`` step by step, fresh message ids every
step so that the candidates vary) and trains the decoder on every decoder's pick, matched or
not, by the squared error to the source. Metrics: ``{split}/loss`` (squared error on [-1, 1]),
``/mse`` (per pixel on [0, 1]), ``/codec_mse`` (the codec's own decoder on the same picks),
``/match`` (the share of picks that are the encoder's candidate). A ``crop_only`` decoder reads
neither picks nor their features: its steps code nothing (no ``match``; ``codec_mse`` is the
codec's decoder at w = 0).

The checkpoint holds the decoder's weights only; ``codec_ckpt`` and ``codec_sha256`` (the
digest of the codec's weights, :class:`dsc.models.image_codec.ImageModel`) say which codec it
decodes for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import lightning as L
import torch
from torch import Tensor

from dsc.coding import CodingPoint, GaussianPrior, ImportanceCoder
from dsc.errors import ConfigError
from dsc.estimates import PickDecoderEstimate
from dsc.lit.checkpoint import CheckpointMismatchError, load_module
from dsc.lit.divergence import FiniteLossGuard
from dsc.lit.image_module import load_codec
from dsc.lit.metrics import EpochMeanLogging
from dsc.models.image_codec import ImageModel
from dsc.models.pick_decoder import PickDecoder
from dsc.pipeline import encode
from dsc.sources.gaussian import TRAIN_IDS, VAL_IDS


def train_command(codec_ckpt: str | Path = "<codec run>/checkpoints/best.ckpt") -> str:
    """The command that trains a pick-aware decoder for the codec at ``codec_ckpt``."""
    return f"python train.py source=mnist model=pick_decoder model.codec_ckpt={codec_ckpt} +num_decoders=4"


BATCH_IDS = 2**16  # message ids per step: step s codes ids offset + s * 2**16 + (0 .. B-1)


class PickDecoderModule(EpochMeanLogging, FiniteLossGuard, L.LightningModule):
    """Trains a :class:`PickDecoder` (``crop_only``: the side-information decoder) built from the
    codec at ``codec_ckpt`` (loaded frozen) with Adam (``lr``, ``betas``). ``codec_sha256`` and
    ``decoder_config`` are recorded when the module is built from the codec (a ``codec_sha256``
    given then must be the codec's); a module rebuilt from its own checkpoint takes them from there
    and does not read the codec."""

    def __init__(self, codec_ckpt: str, rate_bits: Sequence[int] = (2, 3, 4, 5, 6), num_candidates: int = 128,
                 crop_only: bool = False, lr: float = 1e-4, betas: Sequence[float] = (0.9, 0.99), seed: int = 0,
                 codec_sha256: str | None = None, decoder_config: dict | None = None) -> None:
        super().__init__()
        if codec_ckpt is None or str(codec_ckpt) in ("", "???"):
            raise ConfigError(f"model.codec_ckpt is not set: name the trained codec the decoder is for, e.g. "
                              f"`{train_command()}`")
        rates = list(rate_bits) if isinstance(rate_bits, (list, tuple)) else [rate_bits]
        if not rates:
            raise ConfigError("model.rate_bits must name at least one rate")
        for rate in rates:  # a ConfigError for a rate outside [1, 31] or above log2 N
            CodingPoint("gls", 1, rate, num_candidates)
        if not lr > 0:
            raise ConfigError(f"model.lr must be > 0, got {lr}")
        self.save_hyperparameters()
        self.hparams.rate_bits = rates
        self.codec: ImageModel | None = None  # a plain attribute: not a submodule, not in the checkpoint
        if decoder_config is None:
            codec = load_codec(codec_ckpt)
            codec.nets.requires_grad_(False)
            self.codec, self.side = ImageModel(codec.nets), codec.side
            if codec_sha256 is not None and codec_sha256 != self.codec.weights_sha256:
                raise CheckpointMismatchError(f"the codec at {codec_ckpt} is not the one this decoder was trained for "
                                              f"(its weights changed): train a new decoder with `{train_command()}`")
            self.decoder = PickDecoder.from_codec(codec.nets, crop_only)
            self.hparams.codec_sha256 = self.codec.weights_sha256
            self.hparams.decoder_config = self.decoder.config
        else:
            self.decoder = PickDecoder(**decoder_config, crop_only=crop_only)
        self.estimate = PickDecoderEstimate(self.decoder)
        self._coders: dict[tuple[int, int], ImportanceCoder] = {}

    def setup(self, stage: str) -> None:
        """Refuse data whose side information is not the codec's (its projection would read nonsense)."""
        side = getattr(getattr(self.trainer, "datamodule", None), "side", None)
        if self.codec is not None and side is not None and side != self.side:
            raise CheckpointMismatchError(
                f"the codec {self.hparams.codec_ckpt} was trained with side information {self.side}, the data gives "
                f"{side}: set source.side_info / source.crop_size as the codec was trained")

    def coding_model(self) -> ImageModel:
        """The frozen codec on this module's device."""
        if self.codec is None:
            raise ConfigError("this pick decoder was loaded from its checkpoint without its codec: it decodes "
                              "(dsc.estimates.PickDecoderEstimate) but does not train")
        self.codec = self.codec.to(self.device)
        return self.codec

    def coder(self, num_decoders: int, rate_bits: int) -> ImportanceCoder:
        key = (num_decoders, rate_bits)
        if key not in self._coders:
            point = CodingPoint("gls", num_decoders, rate_bits, self.hparams.num_candidates)
            self._coders[key] = point.coder(self.hparams.seed, GaussianPrior(dim=self.decoder.config["latent_dim"]))
        return self._coders[key]

    @torch.no_grad()
    def picks(self, source: Tensor, side_info: Tensor, rate_bits: int, messages: Tensor) -> tuple[Tensor, ...]:
        """GLS-code ``source`` ``[B, C, H, W/2]`` for the ``[B, K, ...]`` decoders of ``side_info``:
        their picks ``[B, K, d]``, race scores ``[B, K]`` and matches ``[B, K]`` (crop_only: w = 0,
        empty-bin scores, no matches)."""
        batch, k = side_info.shape[:2]
        model = self.coding_model()
        if self.decoder.crop_only:
            zeros = torch.zeros(batch, k, model.prior.dim, device=source.device)
            return zeros, torch.full((batch, k), float("inf"), device=source.device, dtype=torch.float64), \
                torch.zeros(batch, k, dtype=torch.bool, device=source.device)
        coder = self.coder(k, rate_bits)
        sent = encode(model, coder, messages, source)
        got = coder.decode(messages, sent.label, model.decoder_log_weight(side_info))
        return got.candidate, got.score, got.index == sent.index[:, None]

    def _step(self, batch, split: str, count: int) -> Tensor:
        source, side_info = batch[0], batch[1]
        if source.shape[0] > BATCH_IDS:
            raise ConfigError(f"data.batch_size must be at most {BATCH_IDS} (message ids per step)")
        rates = self.hparams.rate_bits
        rate = int(rates[count % len(rates)])
        offset = TRAIN_IDS if split == "train" else VAL_IDS
        messages = offset + count * BATCH_IDS + torch.arange(source.shape[0], device=source.device)
        candidate, score, match = self.picks(source, side_info, rate, messages)
        model = self.coding_model()
        out = self.estimate.reconstruct(model, side_info, candidate, score, rate).float()
        loss = ((out - source[:, None]) ** 2).mean()
        losses = {"loss": loss, "mse": loss.detach() / 4}  # data on [-1, 1]
        if not self.decoder.crop_only:
            losses["match"] = match.float().mean()
        if split != "train":
            with torch.no_grad():
                codec_out = model.reconstruct(candidate, side_info).float()
            losses["codec_mse"] = ((codec_out - source[:, None]) ** 2).mean() / 4
        self.check_loss(loss, split)
        self.log_losses(losses, split, source.shape[0], step_extras={"rate_bits": float(rate)})
        return loss

    def training_step(self, batch, batch_idx: int) -> Tensor:
        return self._step(batch, "train", self.global_step)

    def validation_step(self, batch, batch_idx: int) -> Tensor:
        return self._step(batch, "val", batch_idx)

    def test_step(self, batch, batch_idx: int) -> Tensor:
        return self._step(batch, "test", batch_idx)

    def configure_optimizers(self):
        return torch.optim.Adam(self.decoder.parameters(), lr=self.hparams.lr, betas=tuple(self.hparams.betas))


def load_pick_decoder(ckpt_path: str | Path | None, codec_sha256: str | None = None,
                      codec_ckpt: str | Path | None = None) -> PickDecoderModule:
    """A trained pick-aware decoder (eval mode, CPU; its codec is not read). With ``codec_sha256``
    (the weights digest of the codec it will decode for, at ``codec_ckpt``), a decoder trained for
    another codec raises :class:`CheckpointMismatchError` naming both."""
    module = load_module(PickDecoderModule, ckpt_path, "a pick-aware decoder (model=pick_decoder)", train_command())
    trained_for = module.hparams.get("codec_sha256")
    if codec_sha256 is not None and trained_for != codec_sha256:
        raise CheckpointMismatchError(
            f"the decoder {ckpt_path} was trained for the codec {module.hparams.codec_ckpt} (weights "
            f"{str(trained_for)[:12]}...), not for {codec_ckpt or 'this codec'} (weights {codec_sha256[:12]}...): "
            f"train a decoder for it with `{train_command(codec_ckpt or '<codec>')}`")
    return module
