"""MNIST right halves with random crops of the left half as side information, coded with a
trained codec's networks (:class:`dsc.models.mnist.MnistModel`); a message id is a digit's
index in the split.

Options: ``ckpt`` (a checkpoint of ``model=mnist_vae``, required), ``split`` (val or test),
``data_seed`` (the evaluation crops), ``data_source`` and ``data_root`` (where MNIST comes from).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

from torch import Tensor

from dsc.errors import ConfigError, InvalidArgumentError
from dsc.models.mnist import MnistModel
from dsc.paper import PAPER_MNIST_BASELINE_MSE, PAPER_MNIST_GLS_MSE
from dsc.registry import CodecInputs, Source, register
from dsc.sources.mnist import CROP_ROW


@lru_cache(maxsize=4)
def _codec_and_split(ckpt: str, split: str, data_seed: int, data_source: str, data_root: str | None):
    from dsc.eval.mnist import load_codec, split_dataset  # loads Lightning: only when MNIST is used

    codec = load_codec(ckpt)
    dataset, origin = split_dataset(codec, split, 1, data_seed, None, data_source, data_root)
    return MnistModel(codec.nets), dataset, f"{origin}, {split} split"


def _split(options: Mapping[str, Any]):
    if not options["ckpt"]:
        raise ConfigError("the mnist source needs the option ckpt (--ckpt on the command line): a checkpoint of "
                          "a trained MNIST codec (python train.py model=mnist_vae)")
    return _codec_and_split(str(options["ckpt"]), options["split"], int(options["data_seed"]),
                            options["data_source"], options["data_root"])


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


def pixel_mse(sources: Tensor, reconstructions: Tensor) -> Tensor:
    """Right halves ``[B, 1, 28, 14]`` and reconstructions ``[B, K, 1, 28, 14]`` (both on [-1, 1])
    -> per-pixel MSE on the [0, 1] scale ``[B, K]``."""
    return ((reconstructions.float() - sources[:, None].float()) / 2).pow(2).flatten(2).mean(-1)


MNIST = register(Source(
    name="mnist",
    description="MNIST right halves, side information a random crop of the left half per decoder",
    stream_rows={CROP_ROW: "evaluation crop positions (counter 2k: top, 2k + 1: column)"},
    inputs=inputs,
    size=size,
    num_candidates=128,
    distortion=pixel_mse,
    distortion_name="MSE per pixel (pixels in [0, 1])",
    scale="linear",
    options={"ckpt": None, "split": "test", "data_seed": 0, "data_source": "embedded", "data_root": None},
    location_options=("ckpt", "data_source", "data_root"),  # either data source gives the same digits
    references={"paper Table 13 (GLS)": PAPER_MNIST_GLS_MSE, "paper Table 14 (baseline)": PAPER_MNIST_BASELINE_MSE},
))
