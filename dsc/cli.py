"""``dsc compress | decompress | inspect`` (or ``python -m dsc ...``): dsc bitstreams from the command line.

    dsc compress gaussian msgs.dsc --count 1000 --rate-bits 2 --check-bits 4
    dsc decompress gaussian msgs.dsc --decoder 2 --out decoded.pt
    dsc compress mnist digits.dsc --ckpt <run>/checkpoints/best.ckpt --count 100
    dsc decompress mnist digits.dsc --ckpt <run>/checkpoints/best.ckpt --decoder 0
    dsc inspect digits.dsc

Sources, side information and the coding model come from the source's record in
:mod:`dsc.registry` (any registered source; options by flag or ``--option key=value``): for
``gaussian`` the simulated source (A, T_1..T_K) drawn by message id from ``--data-seed``; for
``mnist`` the right halves of a split and their K crops (fixed by ``--data-seed``), message id
= digit index. The decoder reads the coding setting from the stream's header and refuses a
stream from another model. Streams and outputs are written atomically.
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
from dsc.codec import CodingSetting, compress, decompress
from dsc.errors import DscError, InvalidArgumentError
from dsc.io import atomic_write_bytes
from dsc.registry import get_source, source_names

FLAG_OPTIONS = ("ckpt", "split", "data_seed", "s2", "noise_var")  # flags that set a source's option of that name


def source_options(args) -> dict:
    """The source's options from the flags given (``--ckpt``, ``--s2`` ...) and ``--option
    key=value`` (values read as JSON where they parse, else as text)."""
    options = {name: getattr(args, name) for name in FLAG_OPTIONS if getattr(args, name) is not None}
    for item in args.option or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(f"--option takes key=value, got {item!r}")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


def _inputs(args, count: int, first: int, num_decoders: int):
    """(model, sources [n, ...], side information [n, K, ...], origin) of messages first .. first + n - 1."""
    source = get_source(args.source)
    options = source_options(args)
    if "ckpt" in options and "ckpt" not in source.options:
        raise InvalidArgumentError(f"--ckpt is not an option of {args.source} (its options: "
                                   f"{', '.join(source.options) or 'none'})")
    got = source.coding_inputs(options, torch.arange(first, first + count), num_decoders)
    return got.model, got.sources, got.side_information, got.origin


def _save_tensors(path: Path, values: dict) -> None:
    buffer = io.BytesIO()
    torch.save(values, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def run_compress(args) -> dict:
    setting = CodingSetting(seed=args.seed, num_candidates=args.num_candidates, rate_bits=args.rate_bits,
                            num_decoders=args.num_decoders, check_bits=args.check_bits)
    model, sources, _, origin = _inputs(args, args.count, args.first, setting.num_decoders)
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
    model, truth, side_information, origin = _inputs(args, header.num_messages, header.first_message,
                                                     header.num_decoders)
    out = decompress(data, model, side_information[:, args.decoder], decoder=args.decoder)
    error = get_source(args.source).distortion(truth, out.reconstruction[:, None])[:, 0].double()
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
    root = argparse.ArgumentParser(prog="dsc", description=__doc__.splitlines()[0])
    verbs = root.add_subparsers(dest="verb", required=True)
    for verb, helptext in (("compress", "encode sources into one bitstream"),
                           ("decompress", "decode a bitstream at one decoder")):
        p = verbs.add_parser(verb, help=helptext)
        p.add_argument("source", choices=source_names(), help="a registered source (dsc.registry)")
        p.add_argument("stream", type=Path, help="the bitstream file")
        p.add_argument("--ckpt", help="mnist: checkpoint of the trained codec")
        p.add_argument("--split", choices=("val", "test"), help="mnist: digits of this split (default test)")
        p.add_argument("--data-seed", type=int, help="simulated sources / evaluation crops (default 0)")
        p.add_argument("--s2", type=float, help="gaussian: test-channel variance (default 0.005)")
        p.add_argument("--noise-var", type=float, help="gaussian: side-information noise (default 0.5)")
        p.add_argument("--option", action="append", metavar="KEY=VALUE",
                       help="any option of the source (repeatable), e.g. --option s2=0.01")
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
        if args.verb == "compress" and args.count < 1:
            raise InvalidArgumentError(f"--count must be >= 1, got {args.count}")
        result = {"compress": run_compress, "decompress": run_decompress, "inspect": run_inspect}[args.verb](args)
    except (DscError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0
