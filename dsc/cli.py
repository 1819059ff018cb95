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
stream from another model or written with other source options (the source's name and every
option but the paths of checkpoints and data enter the stream's fingerprint). Sizes are checked
against :mod:`dsc.bitstream`'s limits before any work, only the decoding decoder's side
information is built, and messages are coded in chunks. Streams and outputs are written
atomically; an existing file is replaced only with ``--force``, and never by its own decoding.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path
from typing import Sequence

import torch

from dsc.bitstream import MAX_MESSAGES, read_header, read_stream_file
from dsc.codec import CodingSetting, compress, decompress, fingerprint, setting_of, verify_setting
from dsc.errors import CorruptStreamError, DscError, FingerprintMismatchError, InvalidArgumentError
from dsc.helptext import HelpFormatter
from dsc.io import atomic_write_bytes
from dsc.registry import Source, get_source, source_names

FLAG_OPTIONS = ("ckpt", "split", "data_seed", "s2", "noise_var")  # flags that set a source's option of that name
SPLITS = ("val", "test")  # --split's choices (also tried when explaining a fingerprint mismatch)


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


def _source(args) -> tuple[Source, dict]:
    """The source's record and its options (resolved: an unknown option raises here)."""
    source = get_source(args.source)
    options = source_options(args)
    if "ckpt" in options and "ckpt" not in source.options:
        raise InvalidArgumentError(f"--ckpt is not an option of {args.source} (its options: "
                                   f"{', '.join(source.options) or 'none'})")
    return source, source.resolve(options)


def _check_messages(source: Source, options: dict, first: int, count: int) -> None:
    """Message ids first .. first + count - 1 must exist in the source (e.g. digits of the split)."""
    size = source.num_messages(options)
    if size is not None and first + count > size:
        raise InvalidArgumentError(f"messages {first} .. {first + count - 1} run past the {size} messages of "
                                   f"{source.name} with these options; lower --count or --first")


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _check_output(path: Path, force: bool, inputs: Sequence[Path] = ()) -> None:
    """Refuse to write ``path`` when it is one of the ``inputs`` or exists without ``--force``."""
    for given in inputs:
        if _same_file(path, given):
            raise InvalidArgumentError(f"the output {path} is the input stream {given}: choose another output file")
    if path.is_dir():
        raise InvalidArgumentError(f"the output {path} is a directory; name a file")
    if path.exists() and not force:
        raise InvalidArgumentError(f"{path} exists; pass --force to replace it (the file is replaced atomically)")


def _save_tensors(path: Path, values: dict) -> None:
    buffer = io.BytesIO()
    torch.save(values, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def run_compress(args) -> dict:
    if not 1 <= args.count <= MAX_MESSAGES:
        raise InvalidArgumentError(f"--count must be in [1, {MAX_MESSAGES}] (messages per stream), got {args.count}; "
                                   "code more as several streams with --first")
    setting = CodingSetting(seed=args.seed, num_candidates=args.num_candidates, rate_bits=args.rate_bits,
                            num_decoders=args.num_decoders, check_bits=args.check_bits)
    _check_output(Path(args.stream), args.force)
    source, options = _source(args)
    _check_messages(source, options, args.first, args.count)
    first = source.coding_inputs(options, torch.arange(args.first, args.first + 1), decoders=[])

    def sources(ids):  # the encoder needs no side information: none is built
        return source.coding_inputs(options, ids, decoders=[]).sources

    data = compress(first.model, sources, setting, first_message=args.first, context=source.stream_context(options),
                    count=args.count)
    atomic_write_bytes(args.stream, data)
    return {"wrote": str(args.stream), "data": first.origin, "messages": args.count, "bytes": len(data),
            "bits_per_message": setting.bits_per_message}


def _explain_mismatch(source: Source, options: dict, header, decoder: int) -> str:
    """Why the stream's fingerprint differs from this decoder's: a stream without a context (the
    Python API), or one option at its default or another --split, when one of them matches;
    otherwise what the fingerprint covers."""
    setting, probe = setting_of(header), torch.arange(1)

    def matches(variant: dict, context: dict | None) -> bool:
        try:
            model = source.coding_inputs(variant, probe, decoders=[decoder]).model
        except (DscError, OSError):
            return False
        return fingerprint(model, setting, context) == header.fingerprint

    if matches(options, None):
        return ("the stream was written without source options (by dsc.codec.compress in Python); decode it with "
                "dsc.codec.decompress")
    for name, value in options.items():
        if name in source.location_options:
            continue
        others = [source.options[name]] + (list(SPLITS) if name == "split" else [])
        for other in dict.fromkeys(o for o in others if o != value):
            variant = {**options, name: other}
            if matches(variant, source.stream_context(variant)):
                flag = f"--{name.replace('_', '-')} {other}" if name in FLAG_OPTIONS else f"--option {name}={other}"
                return (f"the stream was written with {name} = {other!r}, this decoder was given {name} = {value!r}: "
                        f"decode it with the encoder's options ({flag})")
    covered = ", ".join(k for k in options if k not in source.location_options) or "none"
    return (f"the stream was written for other source options or by another model: its fingerprint covers the "
            f"source ({source.name}), its options ({covered}) and the model's weights; decode it with the "
            "encoder's options and checkpoint")


def run_decompress(args) -> dict:
    stream = Path(args.stream)
    out = Path(args.out) if args.out else None
    if out is not None:
        _check_output(out, args.force, [stream])
    data = read_stream_file(stream)
    header = read_header(data)  # checks every size against the format's limits
    if not 0 <= args.decoder < header.num_decoders:
        raise InvalidArgumentError(f"--decoder must be in [0, {header.num_decoders}) for this stream "
                                   f"(K = {header.num_decoders}), got {args.decoder}")
    if header.num_messages == 0:
        raise CorruptStreamError("the stream holds no messages: there is nothing to decode")
    source, options = _source(args)
    context = source.stream_context(options)
    model = source.coding_inputs(options, torch.arange(1), decoders=[args.decoder]).model
    try:  # before anything is built for the stream's messages
        verify_setting(header, model, setting_of(header), context)
    except FingerprintMismatchError:
        raise FingerprintMismatchError(_explain_mismatch(source, options, header, args.decoder)) from None
    _check_messages(source, options, header.first_message, header.num_messages)
    truth, origin = [], []

    def side_information(ids):  # decoder k's side information only, a chunk of messages at a time
        got = source.coding_inputs(options, ids, decoders=[args.decoder])
        truth.append(got.sources)
        origin[:] = [got.origin]
        return got.side_information[:, 0]

    decoded = decompress(data, model, side_information, decoder=args.decoder, context=context)
    error = source.distortion(torch.cat(truth), decoded.reconstruction[:, None])[:, 0].double()
    summary = {"data": origin[0], "decoder": args.decoder, "messages": header.num_messages,
               "accepted": float(decoded.accepted.double().mean()), "mse": float(error.mean()),
               "mse_accepted": float(error[decoded.accepted].mean()) if decoded.accepted.any() else None}
    if out is not None:
        _save_tensors(out, {"reconstruction": decoded.reconstruction, "accepted": decoded.accepted,
                            "index": decoded.index, "header": header.describe()})
        summary["wrote"] = str(out)
    return summary


def run_inspect(args) -> dict:
    return read_header(read_stream_file(args.stream)).describe()


DESCRIPTION = "dsc bitstreams from the command line: compress sources into a stream, decode it at one decoder, " \
    "or check a stream and print its header."
EXAMPLES = """examples:
  dsc compress gaussian msgs.dsc --count 1000 --rate-bits 2 --check-bits 4
  dsc decompress gaussian msgs.dsc --decoder 2 --out decoded.pt
  dsc compress mnist digits.dsc --ckpt <run>/checkpoints/best.ckpt --count 100
  dsc inspect digits.dsc"""
FORCE_HELP = ("replace an existing output file (outputs are written atomically: a reader sees the old file or the "
              "whole new one); without it an existing file is refused")


def _source_defaults(name: str) -> str:
    """`` (default: X)`` of source option ``name``, per source where the registered sources differ."""
    defaults = {source: get_source(source).options[name] for source in source_names()
                if name in get_source(source).options}
    values = set(map(repr, defaults.values()))
    if len(values) == 1:
        return f" (default: {next(iter(defaults.values()))})"
    return " (default: " + ", ".join(f"{source} {value}" for source, value in defaults.items()) + ")"


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="dsc", description=DESCRIPTION, epilog=EXAMPLES, formatter_class=HelpFormatter)
    verbs = root.add_subparsers(dest="verb", required=True, metavar="{compress,decompress,inspect}")
    for verb, helptext in (("compress", "encode sources into one bitstream"),
                           ("decompress", "decode a bitstream at one decoder")):
        p = verbs.add_parser(verb, help=helptext, description=f"{helptext[0].upper()}{helptext[1:]}: the sources and "
                             "side information come from the registered source's record; an option set by flag or "
                             "--option overrides the source's default.", formatter_class=HelpFormatter)
        p.add_argument("source", choices=source_names(), help="a registered source")
        p.add_argument("stream", type=Path, help="the bitstream file")
        p.add_argument("--ckpt", help="checkpoint of a trained codec (mnist: required; gaussian: a learned codec "
                                      "instead of the closed-form model)")
        p.add_argument("--split", choices=SPLITS, help="mnist: digits of this split" + _source_defaults("split"))
        p.add_argument("--data-seed", type=int, help="which simulated sources / evaluation crops"
                       + _source_defaults("data_seed"))
        p.add_argument("--s2", type=float, help="gaussian: test-channel variance" + _source_defaults("s2"))
        p.add_argument("--noise-var", type=float, help="gaussian: side-information noise variance"
                       + _source_defaults("noise_var"))
        p.add_argument("--option", action="append", metavar="KEY=VALUE",
                       help="any option of the source (repeatable), e.g. --option s2=0.01")
        if verb == "compress":
            p.add_argument("--count", type=int, default=1000, help="sources to encode")
            p.add_argument("--first", type=int, default=0, help="message id (digit index) of the first")
            p.add_argument("--seed", type=int, default=0, help="shared-randomness seed")
            p.add_argument("--num-candidates", type=int, default=128, help="N, the shared candidates")
            p.add_argument("--rate-bits", type=int, default=2, help="label bits per message, log2(L_max)")
            p.add_argument("--num-decoders", type=int, default=4, help="K, the decoders")
            p.add_argument("--check-bits", type=int, default=0, help="c check bits per message")
        else:
            p.add_argument("--decoder", type=int, default=0, help="which decoder (0 .. K-1) decodes")
            p.add_argument("--out", help="save reconstructions, acceptances and picks here (torch.save); never "
                                         "the input stream")
        p.add_argument("--force", action="store_true", help=FORCE_HELP)
    inspect = verbs.add_parser("inspect", help="verify a bitstream and print its header",
                               description="Verify a bitstream (checksums, sizes) and print its header as JSON.",
                               formatter_class=HelpFormatter)
    inspect.add_argument("stream", type=Path, help="the bitstream file")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result = {"compress": run_compress, "decompress": run_decompress, "inspect": run_inspect}[args.verb](args)
    except (DscError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0
