"""The image sources: right halves of images with the rest of the image as each decoder's side
information (a random crop of the left half, a noisy left half or a low-resolution image: the
kind the codec was trained with, :mod:`dsc.sources.images`), coded with a trained image codec's
networks (:class:`dsc.models.image_codec.ImageModel`); a message id is an image's index in the
split.

- ``mnist``: the MNIST digits. Options: ``ckpt`` (a checkpoint of ``model=image_vae``,
  required), ``split`` (val or test), ``data_seed`` (the evaluation side information),
  ``data_source`` and ``data_root`` (where MNIST comes from).
- ``image_folder``: a user's images (:class:`dsc.sources.datamodules.ImageFolderDataModule`).
  Options: ``ckpt``, ``split``, ``data_seed``, ``root`` (the folder or array file), ``channels``,
  ``image_size`` and ``fit`` (as the codec was trained).

Files (the command line's ``--input``, ``--side-info``, ``--out``; grey images): an input is whole
images of the codec's size, of which the encoder codes the right halves; a decoder's side
information is its own, of the kind and size the codec was trained with; reconstructions are
right halves.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping

from torch import Tensor

from dsc.catalog.files import read_images
from dsc.errors import ConfigError, InvalidArgumentError
from dsc.models.image_codec import ImageModel
from dsc.paper import PAPER_MNIST_BASELINE_MSE, PAPER_MNIST_GLS_MSE
from dsc.registry import CodecInputs, Source, register
from dsc.sources.images import CROP_ROW, NOISE_ROW, scale

STREAM_ROWS = {CROP_ROW: "evaluation crop positions (counter 2k: top, 2k + 1: column)",
               NOISE_ROW: "evaluation noise of noisy side information (decoder k: counters k x size ..)"}
COMMON_OPTIONS = {"ckpt": None, "split": "test", "data_seed": 0}


@lru_cache(maxsize=4)
def _codec(ckpt: str) -> tuple[Any, ImageModel]:
    """The trained codec at ``ckpt`` and its coding model."""
    from dsc.lit.image_module import load_codec  # loads Lightning: only when an image source is used

    codec = load_codec(ckpt)
    return codec, ImageModel(codec.nets)


@lru_cache(maxsize=4)
def _codec_and_split(ckpt: str, split: str, data_seed: int, data: tuple):
    from dsc.sources.datamodules import codec_split

    codec, model = _codec(ckpt)
    dataset, origin = codec_split(codec.side, tuple(codec.hparams.image_shape), split, 1, data_seed, None,
                                  {key: list(value) if isinstance(value, tuple) else value for key, value in data})
    return model, dataset, f"{origin}, {split} split"


def pixel_mse(sources: Tensor, reconstructions: Tensor) -> Tensor:
    """Right halves ``[B, C, H, W/2]`` and reconstructions ``[B, K, C, H, W/2]`` (both on
    [-1, 1]) -> per-pixel MSE on the [0, 1] scale ``[B, K]``."""
    return ((reconstructions.float() - sources[:, None].float()) / 2).pow(2).flatten(2).mean(-1)


def right_halves(reconstructions: Tensor, options: Mapping[str, Any]) -> Tensor:
    """Reconstructions ``[n, 1, H, W/2]`` on [-1, 1] -> grey images ``[n, H, W/2]`` on [0, 1]."""
    return ((reconstructions.float()[:, 0] + 1) / 2).clamp(0, 1)


def image_source(name: str, description: str, data: Callable[[Mapping[str, Any]], dict], options: dict,
                 location_options: tuple[str, ...], what: str, references: Mapping | None = None) -> Source:
    """Register the image source ``name`` whose data module config ``data(options)`` gives (the
    codec's side information is added to it); ``what`` names its images in messages."""

    def ckpt(options: Mapping[str, Any]) -> str:
        if not options["ckpt"]:
            raise ConfigError(f"the {name} source needs the option ckpt (--ckpt on the command line): a checkpoint "
                              f"of a trained image codec (python train.py source={name})")
        return str(options["ckpt"])

    def split(options: Mapping[str, Any]):
        config = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in data(options).items()))
        return _codec_and_split(ckpt(options), options["split"], int(options["data_seed"]), config)

    def inputs(options: Mapping[str, Any], messages: Tensor, decoders: Tensor) -> CodecInputs:
        """Right halves ``[B, C, H, W/2]`` of images ``messages`` and the side information
        ``[B, K', ...]`` of decoders ``decoders`` ``[K']`` (a function of (data seed, image,
        decoder) only)."""
        model, dataset, origin = split(options)
        if messages.numel() and int(messages.max()) >= len(dataset):
            raise InvalidArgumentError(f"{what[:-1]} {int(messages.max())} is past the {options['split']} split's "
                                       f"{len(dataset)} {what}")
        source, side = dataset.batch(messages.cpu(), decoders.cpu())
        device = messages.device
        return CodecInputs(model.to(device), source.to(device), side.to(device), origin)

    def shapes(options: Mapping[str, Any]) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        codec = _codec(ckpt(options))[0]
        image = tuple(codec.hparams.image_shape)
        if image[0] != 1:
            raise ConfigError(f"files of the {name} source are grey images; this codec codes {image[0]} channels")
        return image, codec.side.shape(image)

    def read_input(path: Path, options: Mapping[str, Any]) -> Tensor:
        """Whole images of the codec's size (a PNG or JPEG, a folder of them, or a ``.npy``
        ``[n, H, W]``) -> their right halves ``[n, 1, H, W/2]`` in [-1, 1], what the encoder
        codes; the left halves are not used."""
        (_, height, width), _ = shapes(options)
        images = read_images(path, height, width, f"{name} inputs (whole {what}; the encoder codes their right halves)")
        return scale(images)[:, None, :, width // 2:]

    def read_side_info(path: Path, options: Mapping[str, Any]) -> Tensor:
        """One decoder's side information as the codec was trained for (a PNG or JPEG, a folder
        of them, or a ``.npy`` ``[n, h, w]``) -> ``[n, 1, h, w]`` in [-1, 1]."""
        _, (_, height, width) = shapes(options)
        kind = _codec(ckpt(options))[0].side.kind
        images = read_images(path, height, width, f"{name} side information ({kind}, {height}x{width}, as the codec "
                             "was trained)")
        return scale(images)[:, None]

    return register(Source(
        name=name, description=description, stream_rows=STREAM_ROWS, stream_owner="images", inputs=inputs,
        size=lambda options: len(split(options)[1]), num_candidates=128, distortion=pixel_mse,
        distortion_name="MSE per pixel (pixels in [0, 1])", scale="linear", options={**COMMON_OPTIONS, **options},
        location_options=("ckpt", *location_options), references=references or {},
        model=lambda options: _codec(ckpt(options))[1], input_reader=read_input, side_info_reader=read_side_info,
        output_form=right_halves, images=True,
    ))


MNIST = image_source(
    "mnist", "MNIST right halves, side information drawn from the rest of the digit per decoder",
    lambda options: {"_target_": "dsc.sources.datamodules.MnistDataModule", "source": options["data_source"],
                     "root": options["data_root"]},
    {"data_source": "embedded", "data_root": None}, ("data_source", "data_root"), "digits",
    {"paper Table 13 (GLS)": PAPER_MNIST_GLS_MSE, "paper Table 14 (baseline)": PAPER_MNIST_BASELINE_MSE})

IMAGE_FOLDER = image_source(
    "image_folder", "your images' right halves, side information drawn from the rest of each image per decoder",
    lambda options: {"_target_": "dsc.sources.datamodules.ImageFolderDataModule", "root": options["root"],
                     "channels": options["channels"], "image_size": options["image_size"], "fit": options["fit"]},
    {"root": None, "channels": 1, "image_size": None, "fit": "resize"}, ("root",), "images")
