"""``python -m dsc compress | decompress | inspect``: dsc bitstreams from the command line.

    python -m dsc compress gaussian msgs.dsc --count 1000 --rate-bits 2 --check-bits 4
    python -m dsc decompress gaussian msgs.dsc --decoder 2 --out decoded.pt
    python -m dsc compress mnist digits.dsc --ckpt <run>/checkpoints/best.ckpt --count 100
    python -m dsc decompress mnist digits.dsc --ckpt <run>/checkpoints/best.ckpt --decoder 0
    python -m dsc inspect digits.dsc

Sources and side information come from the project's data: for ``gaussian`` the simulated
source (A, T_1..T_K) drawn by message id from ``--data-seed``; for ``mnist`` the right halves of
a split and their K crops (fixed by ``--data-seed``), message id = digit index. The decoder
reads the coding setting from the stream's header and refuses a stream from another model.
Streams and outputs are written atomically.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Sequence

import torch

from dsc.bitstream import read_header
from dsc.codec import CodingSetting, GaussianModel, MnistModel, compress, decompress
from dsc.errors import DscError, InvalidArgumentError
from dsc.io import atomic_write_bytes


def _gaussian(args, count: int, first: int, num_decoders: int):
    from dsc.coding import CounterRandomness  # noqa: PLC0415
    from dsc.sources.gaussian import GaussianSource  # noqa: PLC0415

    model = GaussianModel(args.s2, args.noise_var)
    draw = GaussianSource(args.noise_var).sample(CounterRandomness(args.data_seed), torch.arange(first, first + count),
                                                 num_decoders)
    return model, draw.source, draw.side_info.transpose(0, 1), draw.source, "simulated Gaussian source"


def _mnist(args, count: int, first: int, num_decoders: int):
    from dsc.eval.mnist import load_codec, split_dataset  # noqa: PLC0415  (loads lightning)

    if not args.ckpt:
        raise InvalidArgumentError("mnist needs --ckpt: a checkpoint of a trained MNIST codec (model=mnist_vae)")
    codec = load_codec(args.ckpt)
    dataset, origin = split_dataset(codec, args.split, num_decoders, args.data_seed, None)
    if first + count > len(dataset):
        raise InvalidArgumentError(f"digits {first}..{first + count - 1} run past the {args.split} split's "
                                   f"{len(dataset)} digits")
    source, crops = dataset.batch(torch.arange(first, first + count))
    return MnistModel(codec.nets), source, crops.transpose(0, 1), source, f"{origin}, {args.split} split"


SOURCES = {"gaussian": _gaussian, "mnist": _mnist}


def _save_tensors(path: Path, values: dict) -> None:
    buffer = io.BytesIO()
    torch.save(values, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def run_compress(args) -> dict:
    setting = CodingSetting(seed=args.seed, num_candidates=args.num_candidates, rate_bits=args.rate_bits,
                            num_decoders=args.num_decoders, check_bits=args.check_bits)
    model, sources, _, _, origin = SOURCES[args.source](args, args.count, args.first, setting.num_decoders)
    data = compress(model, sources, setting, first_message=args.first)
    atomic_write_bytes(args.stream, data)
    return {"wrote": str(args.stream), "data": origin, "messages": args.count, "bytes": len(data),
            "bits_per_message": setting.bits_per_message}


def run_decompress(args) -> dict:
    data = Path(args.stream).read_bytes()
    header = read_header(data)
    if not 0 <= args.decoder < header.num_decoders:
        raise InvalidArgumentError(f"--decoder must be in [0, {header.num_decoders}) for this stream "
                                   f"(K = {header.num_decoders}), got {args.decoder}")
    model, _, side_information, truth, origin = SOURCES[args.source](
        args, header.num_messages, header.first_message, header.num_decoders)
    out = decompress(data, model, side_information[args.decoder], decoder=args.decoder)
    error = (out.reconstruction.double() - truth.double()) ** 2
    if args.source == "mnist":
        error = error.flatten(1).mean(1) / 4  # per pixel, pixels on [0, 1]
    summary = {"data": origin, "decoder": args.decoder, "messages": header.num_messages,
               "accepted": float(out.accepted.double().mean()), "mse": float(error.mean()),
               "mse_accepted": float(error[out.accepted].mean()) if out.accepted.any() else None}
    if args.out:
        _save_tensors(Path(args.out), {"reconstruction": out.reconstruction, "accepted": out.accepted,
                                       "index": out.index, "header": header.describe()})
        summary["wrote"] = str(args.out)
    return summary


def run_inspect(args) -> dict:
    return read_header(Path(args.stream).read_bytes()).describe()


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m dsc", description=__doc__.splitlines()[0])
    verbs = root.add_subparsers(dest="verb", required=True)
    for verb, helptext in (("compress", "encode sources into one bitstream"),
                           ("decompress", "decode a bitstream at one decoder")):
        p = verbs.add_parser(verb, help=helptext)
        p.add_argument("source", choices=sorted(SOURCES))
        p.add_argument("stream", type=Path, help="the bitstream file")
        p.add_argument("--ckpt", help="mnist: checkpoint of the trained codec")
        p.add_argument("--split", default="test", choices=("val", "test"), help="mnist: digits of this split")
        p.add_argument("--data-seed", type=int, default=0, help="simulated sources / evaluation crops")
        p.add_argument("--s2", type=float, default=0.005, help="gaussian: test-channel variance")
        p.add_argument("--noise-var", type=float, default=0.5, help="gaussian: side-information noise")
        if verb == "compress":
            p.add_argument("--count", type=int, default=1000, help="sources to encode")
            p.add_argument("--first", type=int, default=0, help="message id (digit index) of the first")
            p.add_argument("--seed", type=int, default=0, help="shared-randomness seed")
            p.add_argument("--num-candidates", type=int, default=128, help="N")
            p.add_argument("--rate-bits", type=int, default=2, help="log2(L_max)")
            p.add_argument("--num-decoders", type=int, default=4, help="K")
            p.add_argument("--check-bits", type=int, default=0, help="c check bits per message")
        else:
            p.add_argument("--decoder", type=int, default=0, help="which decoder (0 .. K-1) decodes")
            p.add_argument("--out", help="save reconstructions, acceptances and picks here (torch.save)")
    inspect = verbs.add_parser("inspect", help="verify a bitstream and print its header")
    inspect.add_argument("stream", type=Path)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.verb in ("compress", "decompress") and args.source == "gaussian" and args.ckpt:
            raise InvalidArgumentError("--ckpt is for mnist; the gaussian model is closed-form (--s2, --noise-var)")
        if args.verb == "compress" and args.count < 1:
            raise InvalidArgumentError(f"--count must be >= 1, got {args.count}")
        result = {"compress": run_compress, "decompress": run_decompress, "inspect": run_inspect}[args.verb](args)
    except (DscError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0
