"""GLS on real digits: a trained MNIST codec evaluated through the shared coding core.

The encoder's log-weight is the closed form ``log p(w | a) - log N(w; 0, I)`` of its Gaussian
posterior; each decoder's is the estimator's logit ``log h / (1 - h)`` on its own crop. Decoder
k reconstructs ``g(w_k, e(t_k))``; metrics are per-pixel MSE with pixels in [0, 1] (the scale of
the paper's Table 13): ``mse`` (best decoder per digit, the paper's oracle) with its standard
error, ``per_decoder_mse`` (averaged over decoders), ``decoder_mse`` (one per decoder) and
``match_prob`` (some decoder picked the encoder's candidate); beside them ``psnr_db`` (mean
per-digit PSNR) and ``ssim`` of the oracle's decoder and their per-decoder means
(:mod:`dsc.eval.image_metrics`).

The networks' outputs that no coding point changes (posteriors, crop features) are computed
once per split (:class:`SplitFeatures`); a point then costs only the coding and the decoder.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple

import lightning as L
import torch
from torch import Tensor

from dsc.coding import CodingPoint, GaussianPrior, ImportanceCoder, Scheme
from dsc.coding.validation import check_positive_int
from dsc.environment import strict_float32
from dsc.errors import ConfigError
from dsc.estimates import PickDecoderEstimate
from dsc.eval.image_figures import draw_reconstruction_grid, pick_examples
from dsc.eval.image_metrics import image_summary, mse_per_image, ssim_per_image, ssim_window, unit_pixels
from dsc.eval.outcome import PointOutcome
from dsc.eval.parallel import WorkerPool, worker_devices
from dsc.eval.points import point_labels
from dsc.lit.image_module import ImageCodecModule, load_codec
from dsc.lit.pick_decoder_module import load_pick_decoder
from dsc.models.image_codec import (
    MNIST_IMAGE,
    FeatureDecoding,
    ImageCodecNetworks,
    ImageModel,
    Posterior,
    PosteriorLogRatio,
)
from dsc.models.network_model import EstimatorLogRatio
from dsc.pipeline import Coded, code
from dsc.progress import progress_bar
from dsc.sources.datamodules import SPLITS, codec_split
from dsc.sources.images import ImageHalves, SideInfo

log = logging.getLogger(__name__)

MAX_DECODERS = 128  # K of an image evaluation: every batch holds each decoder's crop features, scores and picks
MAX_SPLIT_FEATURE_BYTES = 2**31  # a split's cached crops and crop features (digits x K x per crop): K is bounded by it
CROPS_PER_BATCH = 2**15  # crops through the networks at once when computing them


def check_num_decoders(num_decoders: int) -> int:
    """K of an image evaluation: a positive integer of at most :data:`MAX_DECODERS`."""
    check_positive_int(num_decoders, "num_decoders (K)")
    if num_decoders > MAX_DECODERS:
        raise ConfigError(f"an image evaluation codes at most K = {MAX_DECODERS} decoders (each digit's batch holds "
                          f"every decoder's crop features, scores and reconstruction), got num_decoders={num_decoders}")
    return num_decoders


def split_dataset(codec: L.LightningModule, split: str, num_decoders: int, seed: int, limit: int | None,
                  data: Mapping[str, Any] | None = None) -> tuple[ImageHalves, str]:
    """:func:`dsc.sources.datamodules.codec_split` for ``codec`` (an image codec, or a learned
    baseline: its crops), K checked against :data:`MAX_DECODERS`."""
    side = getattr(codec, "side", None) or SideInfo("crop", int(codec.hparams.crop_size))
    shape = tuple(codec.hparams.get("image_shape", MNIST_IMAGE))
    return codec_split(side, shape, split, check_num_decoders(num_decoders), seed, limit, data)


@dataclass(frozen=True)
class SplitFeatures:
    """Everything about a split that no coding point changes, for n digits and K crops each.

    ``source`` ``[n, 1, 28, 14]``; ``side_info`` ``[n, K, 1, c, c]``; ``mean``, ``log_var``
    ``[n, d]`` (the encoder's posteriors); ``crop_bias`` ``[n, K, hidden]`` (estimator);
    ``features`` ``[n, K, f]`` (the decoder's projection of each crop).
    """

    source: Tensor
    side_info: Tensor
    mean: Tensor
    log_var: Tensor
    crop_bias: Tensor
    features: Tensor

    @property
    def num_digits(self) -> int:
        return self.source.shape[0]

    @property
    def num_decoders(self) -> int:
        return self.side_info.shape[1]

    @classmethod
    @torch.no_grad()
    @strict_float32()
    def compute(cls, nets: ImageCodecNetworks, dataset: ImageHalves, device: torch.device,
                batch_size: int = 500) -> "SplitFeatures":
        """The features of every image of ``dataset`` and its K side informations, refused with a
        ConfigError before any is computed when they would exceed :data:`MAX_SPLIT_FEATURE_BYTES`;
        at most ``batch_size`` images and :data:`CROPS_PER_BATCH` side informations go through the
        networks at once."""
        num_digits, k = len(dataset), dataset.num_decoders
        probe = torch.zeros(1, 1, *dataset.side_shape, device=device)
        per_crop = 4 * (probe.numel() + nets.estimator.crop_bias(probe).numel() + nets.projection(probe[0]).numel())
        need = num_digits * k * per_crop
        if need > MAX_SPLIT_FEATURE_BYTES:
            most = MAX_SPLIT_FEATURE_BYTES // (num_digits * per_crop)
            raise ConfigError(
                f"K = {k} side informations for each of {num_digits} images need {need / 2**30:.1f} GiB of network "
                f"features "
                f"(an image evaluation holds at most {MAX_SPLIT_FEATURE_BYTES / 2**30:g} GiB): use num_decoders <= "
                f"{most} for this many images, or fewer images (limit)")
        batch_size = max(1, min(batch_size, CROPS_PER_BATCH // k))
        parts = []
        for start in range(0, len(dataset), batch_size):
            source, side_info = (t.to(device) for t in dataset.batch(torch.arange(start, min(start + batch_size,
                                                                                             len(dataset)))))
            posterior = nets.encoder(source)
            crops = side_info.flatten(0, 1)
            k = side_info.shape[1]
            parts.append((source, side_info, posterior.mean, posterior.log_var,
                          nets.estimator.crop_bias(side_info),
                          nets.projection(crops).view(source.shape[0], k, -1)))
        return cls(*(torch.cat(column) for column in zip(*parts)))


def make_coder(seed: int, latent_dim: int, scheme: str, num_decoders: int, rate_bits: int,
               num_candidates: int) -> ImportanceCoder:
    """The coder of a (scheme, K, rate, N) point for a codec whose latents are ``latent_dim``-dimensional
    (candidates from the standard normal prior)."""
    return CodingPoint(scheme, num_decoders, rate_bits, num_candidates).coder(seed, GaussianPrior(dim=latent_dim))


class ImageSplitModel(FeatureDecoding):
    """The MNIST codec as a :class:`dsc.pipeline.CodingModel` over a split whose network outputs
    were computed once (:class:`SplitFeatures`): a source is a digit's index ``[B]``, a decoder's
    side information the pair (digit index, crop column) ``[B, K', 2]`` (:meth:`side`). The
    values are those :class:`dsc.models.image_codec.ImageModel` computes from the images and crops.
    ``estimate`` (None: trust the pick) turns the decoders' picks into outputs (:mod:`dsc.estimates`)."""

    def __init__(self, nets: ImageCodecNetworks, split: SplitFeatures, estimate=None) -> None:
        self.nets, self.split, self.estimate = nets, split, estimate
        self.prior = GaussianPrior(dim=split.mean.shape[1])

    def identity(self) -> dict:
        return ImageModel(self.nets).identity()

    @staticmethod
    def side(index: Tensor, decoders: int) -> Tensor:
        """Side information of decoders 0..decoders-1 for digits ``index`` ``[B]`` -> ``[B, K', 2]``."""
        columns = torch.arange(decoders, device=index.device)
        return torch.stack(torch.broadcast_tensors(index[:, None], columns[None, :]), dim=-1)

    def encoder_log_weight(self, index: Tensor) -> PosteriorLogRatio:
        return PosteriorLogRatio(Posterior(self.split.mean[index], self.split.log_var[index]))

    def decoder_log_weight(self, side: Tensor) -> EstimatorLogRatio:
        return EstimatorLogRatio(self.nets.estimator, self.split.crop_bias[side[..., 0], side[..., 1]])

    def side_features(self, side: Tensor) -> Tensor:
        """The decoder's projection of each side information ``[B, K', 2]`` -> ``[B, K', features]``."""
        return self.split.features[side[..., 0], side[..., 1]]


@torch.no_grad()
@strict_float32()
def code_images(nets: ImageCodecNetworks, split: SplitFeatures, coder: ImportanceCoder, index: Tensor,
                check_bits: int = 0, fallback: bool = False, estimate=None) -> Coded:
    """Encode digits ``index`` ``[B]`` (their index is the message id) and decode them at the
    coder's K decoders (crops 0..K-1) through :func:`dsc.pipeline.code`: reconstructions
    ``[B, K, 1, 28, 14]`` (by ``estimate``; None: the codec's decoder on the pick), matches and
    acceptances ``[B, K]`` (and fallbacks when asked)."""
    model = ImageSplitModel(nets, split, estimate)
    return code(model, coder, index, index, model.side(index, coder.num_decoders), check_bits, fallback)


def save_reconstruction_grid(nets: ImageCodecNetworks, split: SplitFeatures, coder: ImportanceCoder,
                             outcome: PointOutcome, path: Path, count: int = 8, estimate=None) -> Path:
    """Code up to ``count`` digits of ``split`` (half of them ones some decoder matched, chosen by
    ``outcome.match``), decode them with ``estimate`` (as the evaluation did) and draw them as
    :func:`dsc.eval.image_figures.draw_reconstruction_grid`."""
    index = pick_examples(outcome.match, count).to(split.source.device)
    coded = code_images(nets, split, coder, index, estimate=estimate)
    return draw_reconstruction_grid(split, coder, index, coded, path)


def digit_batch(start: int, batch_size: int, num_digits: int, device: torch.device) -> Tensor:
    """Indices ``[B]`` of the batch of digits starting at ``start``: the one batching that the
    in-process and the worker evaluation share, so their outcomes are identical."""
    return torch.arange(start, min(start + batch_size, num_digits), device=device)


def batch_outcome(nets: ImageCodecNetworks, split: SplitFeatures, coder: ImportanceCoder, index: Tensor,
                  check_bits: int = 0, estimate=None) -> PointOutcome:
    """Per-digit outcomes (on the CPU) of the digits ``index`` ``[B]`` of ``split``: MSE
    (pixels in [0, 1]) and SSIM ``[B, K]`` of every decoder's reconstruction (by ``estimate``;
    None: the codec's decoder on the pick)."""
    source = unit_pixels(split.source[index, None])  # [B, 1, 1, 28, 14]

    def error(recon: Tensor) -> Tensor:  # [B, K, 1, 28, 14] -> [B, K]
        return mse_per_image(unit_pixels(recon), source).float().cpu()

    coded = code_images(nets, split, coder, index, check_bits, fallback=check_bits > 0, estimate=estimate)
    got = coded.decoded
    ssim = ssim_per_image(unit_pixels(got.picked), source, win_size=ssim_window(*source.shape[-2:])).float().cpu()
    if not check_bits:
        return PointOutcome(error(got.picked), coded.match.cpu(), ssim=ssim)
    return PointOutcome(error(got.picked), coded.match.cpu(), got.accepted.cpu(), error(got.fallback), ssim)


def summarise(outcome: PointOutcome) -> dict:
    """``outcome.summary()`` with the image metrics of :func:`dsc.eval.image_metrics.image_summary`
    beside the MSE (when the outcome carries SSIMs)."""
    images = {} if outcome.ssim is None else image_summary(outcome.mse, outcome.ssim)
    return {**outcome.summary(), **images}


def match_split(outcome: PointOutcome) -> dict:
    """The decoders' mean MSE over the picks that were the encoder's candidate (``matched_mse``)
    and over the others (``missed_mse``); None where there are none."""
    mse, match = outcome.mse.double(), outcome.match

    def mean(keep: Tensor) -> float | None:
        return mse[keep].mean().item() if bool(keep.any()) else None

    return {"matched_mse": mean(match), "missed_mse": mean(~match)}


def evaluate_point(nets: ImageCodecNetworks, split: SplitFeatures, coder: ImportanceCoder, batch_size: int = 500,
                   progress: bool = False, check_bits: int = 0,
                   batches: Iterable[PointOutcome] | None = None, estimate=None) -> PointOutcome:
    """Code every digit of ``split`` at ``coder``'s point -> per-digit outcomes (with
    ``check_bits`` > 0 also the practical-selection ones), the decoders' outputs by ``estimate``
    (None: the codec's decoder on the pick). ``batches``, optional: the outcomes of consecutive
    batches of ``batch_size`` digits computed elsewhere (by workers), in order."""
    if coder.num_decoders > split.num_decoders:
        raise ConfigError(f"the split has {split.num_decoders} crops per digit, the coder needs {coder.num_decoders}")
    if batches is None:
        device = split.source.device
        batches = (batch_outcome(nets, split, coder, digit_batch(start, batch_size, split.num_digits, device),
                                 check_bits, estimate) for start in range(0, split.num_digits, batch_size))
    parts = []
    desc = f"{coder.scheme.value} K={coder.num_decoders} R={coder.rate_bits:g} N={coder.num_candidates}"
    with progress_bar(total=split.num_digits, desc=desc, unit="digit", disable=not progress, leave=False) as bar:
        for part in batches:
            parts.append(part)
            bar.update(part.mse.shape[0])
    return PointOutcome.concat(parts)


def shares_rows_across_decoders(scheme: str) -> bool:
    """In the shared-randomness baseline every decoder reads row 0 and the encoder's choice does
    not depend on K, so decoders 0..k-1 of a K-decoder run are exactly a k-decoder run."""
    return Scheme(scheme) is Scheme.SHARED_RANDOMNESS


class Prepared(NamedTuple):
    """What a point's evaluation needs, made once per process: the codec, its split's features,
    the coder, the data's origin and the decoders' estimate (None: the codec's decoder on the pick)."""

    codec: ImageCodecModule
    split: SplitFeatures
    coder: ImportanceCoder
    origin: str
    estimate: PickDecoderEstimate | None


def pick_decoder_estimate(decoder_ckpt: str, codec: ImageCodecModule, codec_ckpt: str,
                          device: torch.device) -> PickDecoderEstimate:
    """The estimate of the pick-aware decoder at ``decoder_ckpt``, on ``device``; a decoder trained
    for another codec than ``codec`` (at ``codec_ckpt``) is a CheckpointMismatchError naming both."""
    module = load_pick_decoder(decoder_ckpt, ImageModel(codec.nets).weights_sha256, codec_ckpt)
    return PickDecoderEstimate(module.decoder.to(device).eval())


@dataclass
class ImageRateDistortion:
    """One (scheme, K, rate, N) point of a trained MNIST codec on ``split`` (val or test);
    also draws ``reconstructions.png`` (a few digits, every decoder, successes marked). With
    ``decoder_ckpt`` the decoders' outputs come from that pick-aware decoder
    (:mod:`dsc.lit.pick_decoder_module`, trained for this codec) instead of the codec's decoder;
    the point's ``decoder`` says which: ``pick`` (the codec's decoder, trusting the pick),
    ``trained`` or ``crop_only``."""

    ckpt_path: str
    scheme: str = "gls"
    num_decoders: int = 4
    rate_bits: int = 2
    num_candidates: int | None = 128  # None: 128
    split: str = "test"
    batch_size: int = 500
    limit: int | None = None
    data: dict | None = None  # the image data module's config (``_target_`` ...; None: MNIST, embedded)
    source: str = "mnist"  # the source the points are labelled with
    progress: bool = True
    check_bits: int = 0  # c check bits per message: practical decoder selection (rate = rate_bits + c)
    workers: int = 1  # processes (one per GPU with device=cuda) sharing the digits; same results
    distortion: str | None = None  # the loss normalisation the codec must have been trained with (None: any)
    decoder_ckpt: str | None = None  # a pick-aware decoder trained for this codec (None: the codec's decoder)

    def __post_init__(self) -> None:
        self.num_candidates = self.num_candidates or 128
        self.point = CodingPoint(self.scheme, self.num_decoders, self.rate_bits, self.num_candidates, self.check_bits)
        check_num_decoders(self.num_decoders)
        check_positive_int(self.workers, "workers")
        if self.split not in SPLITS:
            raise ConfigError(f"split must be val or test, got {self.split!r}")

    def prepare(self, seed: int, device: torch.device) -> Prepared:
        """The codec on ``device``, its split's features, the coder, the data's origin and the estimate."""
        codec = load_codec(self.ckpt_path, self.distortion).to(device)
        estimate = None
        if self.decoder_ckpt is not None:  # checked against the codec before any feature is computed
            estimate = pick_decoder_estimate(self.decoder_ckpt, codec, self.ckpt_path, device)
        dataset, origin = split_dataset(codec, self.split, self.num_decoders, seed, self.limit, self.data)
        split = SplitFeatures.compute(codec.nets, dataset, device, self.batch_size)
        coder = self.point.coder(seed, GaussianPrior(dim=codec.hparams.latent_dim))
        return Prepared(codec, split, coder, origin, estimate)

    def run(self, seed: int, device: torch.device, output_dir: Path) -> list[dict]:
        devices = worker_devices(device, self.workers)
        codec, split, coder, origin, estimate = self.prepare(seed, device)
        log.info("data: %s, %s split, %d digits | device: %s%s", origin, self.split, split.num_digits, device,
                 f" | digits split over {len(devices)} workers" if len(devices) > 1 else "")
        with WorkerPool(devices) as pool:
            batches = None if len(devices) == 1 else pool.map(
                partial(_worker_batch, self, seed), range(0, split.num_digits, self.batch_size))
            outcome = evaluate_point(codec.nets, split, coder, self.batch_size, self.progress, self.check_bits,
                                     batches, estimate)
        hp = codec.hparams
        point = {
            **point_labels(self.source, self.scheme), **self.point.labels(), "split": self.split, **summarise(outcome),
            **match_split(outcome),
            "beta": float(hp.beta), "distortion": hp.distortion, "crop_size": int(hp.crop_size), "data": origin,
            "ckpt_path": str(self.ckpt_path), "epochs": codec.trained_with["epochs"],
            "decoder": self.decoder_kind(estimate), "decoder_ckpt": self.decoder_ckpt,
        }
        save_reconstruction_grid(codec.nets, split, coder, outcome, output_dir / "reconstructions.png",
                                 estimate=estimate)
        log.info("%s K=%d R=%d N=%d, %s decoder, on %s (%d digits): mse %.4f +- %.4f (best of K), per-decoder "
                 "%.4f, psnr %.2f dB, ssim %.3f, match %.3f", self.scheme, self.num_decoders, self.rate_bits,
                 self.num_candidates, point["decoder"], self.split, point["digits"], point["mse"], point["mse_se"],
                 point["per_decoder_mse"], point["psnr_db"], point["ssim"], point["match_prob"])
        return [point]

    @staticmethod
    def decoder_kind(estimate: PickDecoderEstimate | None) -> str:
        """``pick`` (the codec's decoder), ``trained`` or ``crop_only`` (a pick-aware decoder)."""
        if estimate is None:
            return "pick"
        return "crop_only" if estimate.decoder.crop_only else "trained"


_PREPARED: dict = {}  # a worker's prepared codec, split and coder, for the job it serves


def _worker_batch(job: ImageRateDistortion, seed: int, start: int, device: torch.device) -> PointOutcome:
    """One batch of ``job`` in a worker process (the job is prepared once per worker)."""
    key = (repr(job), seed, str(device))
    if key not in _PREPARED:
        _PREPARED.clear()
        _PREPARED[key] = job.prepare(seed, device)
    codec, split, coder, _, estimate = _PREPARED[key]
    index = digit_batch(start, job.batch_size, split.num_digits, device)
    return batch_outcome(codec.nets, split, coder, index, job.check_bits, estimate)
