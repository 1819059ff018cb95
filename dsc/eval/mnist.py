"""GLS on real digits: a trained MNIST codec evaluated through the shared coding core.

One job evaluates one (scheme, K, rate, N) point of one checkpoint on a split. The encoder's
log-weight is the closed form ``log p(w | a) - log N(w; 0, I)`` of its Gaussian posterior; each
decoder's is the estimator's logit ``log h / (1 - h)`` on its own crop. Decoder k reconstructs
``g(w_k, e(t_k))``; metrics are per-pixel MSE with pixels in [0, 1] (the scale of the paper's
Table 13): ``mse`` (best decoder per digit, the paper's oracle), ``per_decoder_mse`` (averaged
over decoders) and ``match_prob``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from dsc.coding import GaussianPrior, ImportanceCoder
from dsc.errors import ConfigError
from dsc.eval.points import check_point
from dsc.lit.mnist_module import MnistCodecModule
from dsc.models.mnist import Posterior
from dsc.sources.mnist import MnistDataModule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PosteriorLogRatio:
    """``log N(w; mean, var) - log N(w; 0, I)`` for candidates ``[B, n, d]`` -> ``[B, n]``;
    ``maximum()`` is finite where every var < 1 and +inf elsewhere (then no early stop)."""

    posterior: Posterior

    def __call__(self, w: Tensor) -> Tensor:
        return self.posterior.log_prob(w) + 0.5 * (w**2 + math.log(2 * math.pi)).sum(-1)

    def subset(self, rows: Tensor) -> "PosteriorLogRatio":
        return PosteriorLogRatio(Posterior(self.posterior.mean[rows], self.posterior.log_var[rows]))

    def maximum(self) -> Tensor:
        var = self.posterior.log_var.exp()
        per_dim = self.posterior.mean**2 / (2 * (1 - var)) - 0.5 * self.posterior.log_var
        return torch.where(var < 1, per_dim, torch.full_like(per_dim, float("inf"))).sum(-1).double()


def load_codec(ckpt_path: str | Path) -> MnistCodecModule:
    """Load a trained MNIST codec (its saved hyper-parameters rebuild the networks)."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path {path} does not exist; train with `python train.py source=mnist model=mnist_vae`")
    try:
        module = MnistCodecModule.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except (KeyError, TypeError, RuntimeError) as error:
        raise ConfigError(f"{path} is not a checkpoint of the MNIST codec (model=mnist_vae): {error}") from error
    return module.eval()


@dataclass
class MnistRateDistortion:
    """One (scheme, K, rate, N) point of a trained MNIST codec on ``split`` (val or test)."""

    ckpt_path: str
    scheme: str = "gls"
    num_decoders: int = 4
    rate_bits: int = 2
    num_candidates: int = 128
    split: str = "test"
    batch_size: int = 500
    limit: int | None = None
    data_source: str = "embedded"
    data_root: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        check_point(self.scheme, self.num_decoders, self.rate_bits, self.num_candidates)
        if self.split not in ("val", "test"):
            raise ConfigError(f"split must be val or test, got {self.split!r}")

    def run(self, seed: int, device: torch.device, output_dir: Path) -> list[dict]:
        codec = load_codec(self.ckpt_path).to(device)
        hp = codec.hparams
        data = MnistDataModule(num_decoders=self.num_decoders, crop_size=hp.crop_size, batch_size=self.batch_size,
                               source=self.data_source, root=self.data_root, seed=seed, limit=self.limit)
        data.setup()
        dataset = data.test_set if self.split == "test" else data.val_set
        coder = ImportanceCoder(seed=seed, prior=GaussianPrior(dim=hp.latent_dim), num_candidates=self.num_candidates,
                                num_labels=2**self.rate_bits, num_decoders=self.num_decoders, scheme=self.scheme)
        totals = torch.zeros(3, dtype=torch.float64)  # best-of-K mse, per-decoder mse, matches
        count = 0
        bar = tqdm(total=len(dataset), desc=f"mnist {self.scheme} K={self.num_decoders} R={self.rate_bits} "
                   f"N={self.num_candidates}", unit="digit", disable=not self.progress, leave=False)
        with torch.no_grad():
            for start in range(0, len(dataset), self.batch_size):
                index = torch.arange(start, min(start + self.batch_size, len(dataset)))
                source, side_info = (t.to(device) for t in dataset.batch(index))
                totals += self._batch(codec, coder, index.to(device), source, side_info)
                count += index.shape[0]
                bar.update(index.shape[0])
        bar.close()
        point = {
            "scheme": self.scheme, "num_decoders": self.num_decoders, "rate_bits": self.rate_bits,
            "num_candidates": self.num_candidates, "split": self.split, "digits": count,
            "beta": float(hp.beta), "crop_size": int(hp.crop_size), "data": data.origin,
            "mse": (totals[0] / count).item(), "per_decoder_mse": (totals[1] / count).item(),
            "match_prob": (totals[2] / count).item(), "ckpt_path": str(self.ckpt_path),
        }
        log.info("%s K=%d R=%d N=%d on %s (%d digits, %s): mse %.4f (best of K), per-decoder %.4f, match %.3f",
                 self.scheme, self.num_decoders, self.rate_bits, self.num_candidates, self.split, count,
                 data.origin, point["mse"], point["per_decoder_mse"], point["match_prob"])
        return [point]

    def _batch(self, codec, coder, messages, source, side_info) -> Tensor:
        """Sums over the batch: best-of-K mse, decoder-averaged mse, matches (``[3]``)."""
        nets = codec.nets
        batch, k = source.shape[0], self.num_decoders
        encoder_weight = PosteriorLogRatio(nets.encoder(source))
        sent = coder.encode(messages, encoder_weight, encoder_weight.maximum())
        crops = side_info  # [B, K, 1, c, c]

        def decoder_weight(w: Tensor) -> Tensor:  # [B, n, d] -> [B, K, n]
            return torch.stack([nets.estimator(w, crops[:, j]) for j in range(k)], dim=1)

        got = coder.decode(messages, sent.label, decoder_weight)
        features = nets.projection(crops.flatten(0, 1))  # [B*K, f]
        recon = nets.decoder(got.candidate.flatten(0, 1).to(features.dtype), features).view(batch, k, 1, 28, 14)
        mse = ((recon - source[:, None]) / 2).pow(2).flatten(2).mean(-1)  # [B, K], pixels in [0, 1]
        match = (got.index == sent.index[:, None]).any(-1)
        return torch.stack([mse.min(1).values.sum(), mse.mean(1).sum(), match.sum()]).double().cpu()
