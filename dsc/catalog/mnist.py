"""MNIST right halves with the rest of the digit as side information (a random crop of the left
half, as the codec was trained: or its noisy copy, or a low-resolution digit), coded with a
trained codec's networks (:class:`dsc.models.image_codec.ImageModel`); a message id is a digit's
index in the split.

Options: ``ckpt`` (a checkpoint of ``model=image_vae``, required), ``split`` (val or test),
``data_seed`` (the evaluation crops), ``data_source`` and ``data_root`` (where MNIST comes from).

Files (the command line's ``--input``, ``--side-info``, ``--out``): an input is whole 28x28
digits, of which the encoder codes the right halves; a decoder's side information is its own,
of the kind and size the codec was trained with (c x c crops of the left halves, noisy left
halves, or low-resolution digits); reconstructions are right halves, 28 x 14 images.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from torch import Tensor

from dsc.catalog.files import read_images
from dsc.errors import ConfigError, InvalidArgumentError
from dsc.models.image_codec import ImageModel
from dsc.paper import PAPER_MNIST_BASELINE_MSE, PAPER_MNIST_GLS_MSE
from dsc.registry import CodecInputs, Source, register
from dsc.sources.images import CROP_ROW, NOISE_ROW, SideInfo, scale

HEIGHT, HALF_WIDTH = 28, 14  # an MNIST digit and its halves


@lru_cache(maxsize=4)
def _codec(ckpt: str) -> tuple[Any, ImageModel]:
    """The trained codec at ``ckpt`` and its coding model."""
    from dsc.lit.image_module import load_codec  # loads Lightning: only when MNIST is used

    codec = load_codec(ckpt)
    return codec, ImageModel(codec.nets)


@lru_cache(maxsize=4)
def _codec_and_split(ckpt: str, split: str, data_seed: int, data_source: str, data_root: str | None):
    from dsc.sources.datamodules import codec_split

    codec, model = _codec(ckpt)
    data = {"_target_": "dsc.sources.datamodules.MnistDataModule", "source": data_source, "root": data_root}
    dataset, origin = codec_split(codec.side, tuple(codec.hparams.image_shape), split, 1, data_seed, None, data)
    return model, dataset, f"{origin}, {split} split"


def _ckpt(options: Mapping[str, Any]) -> str:
    if not options["ckpt"]:
        raise ConfigError("the mnist source needs the option ckpt (--ckpt on the command line): a checkpoint of "
                          "a trained MNIST codec (python train.py model=image_vae)")
    return str(options["ckpt"])


def _split(options: Mapping[str, Any]):
    return _codec_and_split(_ckpt(options), options["split"], int(options["data_seed"]), options["data_source"],
                            options["data_root"])


def inputs(options: Mapping[str, Any], messages: Tensor, decoders: Tensor) -> CodecInputs:
    """Right halves ``[B, 1, 28, 14]`` of digits ``messages`` and the crops ``[B, K', 1, c, c]``
    of decoders ``decoders`` ``[K']`` (a crop depends on (data seed, digit, decoder) only)."""
    model, dataset, origin = _split(options)
    if messages.numel() and int(messages.max()) >= len(dataset):
        raise InvalidArgumentError(f"digit {int(messages.max())} is past the {options['split']} split's "
                                   f"{len(dataset)} digits")
    source, crops = dataset.batch(messages.cpu(), decoders.cpu())
    device = messages.device
    return CodecInputs(model.to(device), source.to(device), crops.to(device), origin)


def size(options: Mapping[str, Any]) -> int:
    """Digits in the split (message ids 0 .. size - 1)."""
    return len(_split(options)[1])


def model(options: Mapping[str, Any]) -> ImageModel:
    """The coding model of the codec at option ``ckpt`` (no digits are loaded)."""
    return _codec(_ckpt(options))[1]


def read_digits(path: Path, options: Mapping[str, Any]) -> Tensor:
    """Whole 28x28 digits (a PNG or JPEG, a folder of them, or a ``.npy`` ``[n, 28, 28]``: see
    :func:`dsc.catalog.files.read_images`) -> their right halves ``[n, 1, 28, 14]`` in [-1, 1],
    what the encoder codes; the left halves are not used."""
    digits = read_images(path, HEIGHT, 2 * HALF_WIDTH, "MNIST inputs (whole digits; the encoder codes their right "
                         "halves)")
    return scale(digits)[:, None, :, HALF_WIDTH:]


def read_side_info(path: Path, options: Mapping[str, Any]) -> Tensor:
    """One decoder's side information as the codec was trained for (a PNG or JPEG, a folder of
    them, or a ``.npy`` ``[n, h, w]``): its c x c crops of the left halves, its noisy left halves
    (28 x 14) or its low-resolution digits -> ``[n, 1, h, w]`` in [-1, 1]."""
    hp = _codec(_ckpt(options))[0].hparams
    side = SideInfo(hp.side_info, hp.crop_size, hp.noise_std, hp.lowres_factor)
    _, height, width = side.shape((1, HEIGHT, 2 * HALF_WIDTH))
    images = read_images(path, height, width, f"MNIST side information ({side.kind}, {height}x{width}, as the codec "
                         "was trained)")
    return scale(images)[:, None]


def right_halves(reconstructions: Tensor, options: Mapping[str, Any]) -> Tensor:
    """Reconstructions ``[n, 1, 28, 14]`` on [-1, 1] -> images ``[n, 28, 14]`` on [0, 1]."""
    return ((reconstructions.float()[:, 0] + 1) / 2).clamp(0, 1)


def pixel_mse(sources: Tensor, reconstructions: Tensor) -> Tensor:
    """Right halves ``[B, 1, 28, 14]`` and reconstructions ``[B, K, 1, 28, 14]`` (both on [-1, 1])
    -> per-pixel MSE on the [0, 1] scale ``[B, K]``."""
    return ((reconstructions.float() - sources[:, None].float()) / 2).pow(2).flatten(2).mean(-1)


MNIST = register(Source(
    name="mnist",
    description="MNIST right halves, side information a random crop of the left half per decoder",
    stream_rows={CROP_ROW: "evaluation crop positions (counter 2k: top, 2k + 1: column)",
                 NOISE_ROW: "evaluation noise of noisy side information (decoder k: counters k x size ..)"},
    inputs=inputs,
    size=size,
    num_candidates=128,
    distortion=pixel_mse,
    distortion_name="MSE per pixel (pixels in [0, 1])",
    scale="linear",
    options={"ckpt": None, "split": "test", "data_seed": 0, "data_source": "embedded", "data_root": None},
    location_options=("ckpt", "data_source", "data_root"),  # either data source gives the same digits
    references={"paper Table 13 (GLS)": PAPER_MNIST_GLS_MSE, "paper Table 14 (baseline)": PAPER_MNIST_BASELINE_MSE},
    model=model,
    input_reader=read_digits,
    side_info_reader=read_side_info,
    output_form=right_halves,
    images=True,
))
