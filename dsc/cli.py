"""``dsc compress | decompress | inspect`` (or ``python -m dsc ...``): dsc bitstreams from the command line.

    dsc compress gaussian msgs.dsc --count 1000 --rate-bits 2 --check-bits 4
    dsc decompress gaussian msgs.dsc --decoder 2 --out decoded.npy
    dsc compress gaussian samples.dsc --input samples.npy --rate-bits 4 --check-bits 8
    dsc decompress gaussian samples.dsc --decoder 1 --side-info t1.npy --out decoded.npy
    dsc compress mnist digits.dsc --ckpt <run>/checkpoints/best.ckpt --input digits/
    dsc decompress mnist digits.dsc --ckpt <run>/checkpoints/best.ckpt --side-info crops/ --out halves/
    dsc compress pair msgs.dsc --import my_sources --count 100
    dsc inspect digits.dsc

Sources, side information and the coding model come from the source's record in
:mod:`dsc.registry` (options by flag or ``--option key=value``): a built-in source, one that a
module named by ``--import`` registers (the working directory is searched first), or one of an
installed package (entry point group ``dsc.sources``, loaded only when its name is asked for).
By message id: for ``gaussian`` the simulated source (A, T_1..T_K) drawn from ``--data-seed``;
for ``mnist`` the right halves of a split and their K crops (fixed by ``--data-seed``), message
id = digit index. From files: ``compress --input`` codes the sources a file holds and
``decompress --side-info`` gives the decoder its own side information, through the record's
file hooks (:meth:`dsc.registry.Source.read_input`, :meth:`~dsc.registry.Source.read_side_info`).
The decoder reads the coding setting from the stream's header and refuses a stream from another
model or written with other source options (the source's name, every option but the paths of
checkpoints and data, and whether the sources came from a file enter the stream's fingerprint).
Sizes are checked against :mod:`dsc.bitstream`'s limits before any work, only the decoding
decoder's side information is built, and messages are coded in chunks. Streams and outputs are
written atomically; an existing file is replaced only with ``--force``, and never by its own
decoding.
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

from dsc.bitstream import MAX_MESSAGES, StreamHeader, read_header, read_stream_file
from dsc.catalog.files import png_bytes, save_array, save_folder
from dsc.codec import CodingSetting, Decompressed, compress, decompress, fingerprint, setting_of, verify_setting
from dsc.errors import CorruptStreamError, DscError, FingerprintMismatchError, InvalidArgumentError, ShapeMismatchError
from dsc.helptext import HelpFormatter
from dsc.io import atomic_write_bytes, atomic_write_json
from dsc.registry import ENTRY_POINT_GROUP, Source, get_source, import_sources, source_names

FLAG_OPTIONS = ("ckpt", "split", "data_seed", "s2", "noise_var")  # flags that set a source's option of that name
SPLITS = ("val", "test")  # --split's choices (also tried when explaining a fingerprint mismatch)
DEFAULT_COUNT = 1000  # messages compress codes by id without --count
FROM_FILE = {"input": "file"}  # enters the fingerprint of a stream whose sources came from a file (--input)
OUT_FORMS = {".npy": "array", ".pt": "torch", "": "images"}  # --out's suffix -> what is written ("": a folder)


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
    """The source's record (after the ``--import`` modules) and its options (resolved: an
    unknown option raises here)."""
    if args.imports:
        import_sources(args.imports, "--import")
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


def _check_output(path: Path, force: bool, inputs: dict[str, Path], folder: bool = False) -> None:
    """Refuse to write ``path`` (a file, or a ``folder``) when it is one of the ``inputs`` (what
    -> path) or exists without ``--force``."""
    for what, given in inputs.items():
        if _same_file(path, given):
            raise InvalidArgumentError(f"the output {path} is the input {what} {given}: choose another output")
    if path.exists() and path.is_dir() != folder:
        raise InvalidArgumentError(f"the output {path} is a {'file' if folder else 'directory'}; name a "
                                   f"{'folder' if folder else 'file'}")
    if path.exists() and not force:
        raise InvalidArgumentError(f"{path} exists; pass --force to replace it (outputs are replaced atomically)")


def _save_tensors(path: Path, values: dict) -> None:
    buffer = io.BytesIO()
    torch.save(values, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def run_compress(args) -> dict:
    stream, given = Path(args.stream), Path(args.input) if args.input else None
    if given is not None and args.count is not None:
        raise InvalidArgumentError("--count and --input exclude each other: every row of the --input file is coded")
    count = DEFAULT_COUNT if args.count is None else args.count
    if given is None and not 1 <= count <= MAX_MESSAGES:
        raise InvalidArgumentError(f"--count must be in [1, {MAX_MESSAGES}] (messages per stream), got {count}; "
                                   "code more as several streams with --first")
    _check_output(stream, args.force, {"file": given} if given else {})
    source, options = _source(args)
    usual_n = source.num_candidates if args.num_candidates is None else args.num_candidates
    setting = CodingSetting(seed=args.seed, num_candidates=usual_n,
                            rate_bits=args.rate_bits, num_decoders=args.num_decoders, check_bits=args.check_bits)
    context = source.stream_context(options)
    if given is not None:  # the file's rows, message ids --first onwards
        rows = source.read_input(given, options)
        model, count, origin = source.coding_model(options), rows.shape[0], str(given)
        context = {**context, **FROM_FILE}
    else:  # messages by id; the encoder needs no side information: none is built
        _check_messages(source, options, args.first, count)
        first = source.coding_inputs(options, torch.arange(args.first, args.first + 1), decoders=[])
        model, origin = first.model, first.origin

        def rows(ids):
            return source.coding_inputs(options, ids, decoders=[]).sources

    data = compress(model, rows, setting, first_message=args.first, context=context, count=count)
    atomic_write_bytes(stream, data)
    return {"wrote": str(stream), "data": origin, "messages": count, "bytes": len(data),
            "num_candidates": setting.num_candidates, "bits_per_message": setting.bits_per_message}


def _written_by(source: Source, options: dict, header: StreamHeader) -> str | None:
    """How a stream with this header was written if by this source with ``options``: "ids"
    (messages by id), "file" (``--input``), "python" (no context: :func:`dsc.codec.compress`),
    or None."""
    try:
        model = source.coding_model(options)
    except (DscError, OSError):
        return None
    context = source.stream_context(options)
    for way, candidate in (("ids", context), ("file", {**context, **FROM_FILE}), ("python", None)):
        if fingerprint(model, setting_of(header), candidate) == header.fingerprint:
            return way
    return None


def _explain_mismatch(source: Source, options: dict, header: StreamHeader) -> str:
    """Why the stream's fingerprint differs from this decoder's: a stream without a context (the
    Python API), one coded from a file decoded without side information from a file, or one
    option at its default or another --split, when one of them matches; otherwise what the
    fingerprint covers."""
    way = _written_by(source, options, header)
    if way == "python":
        return ("the stream was written without source options (by dsc.codec.compress in Python); decode it with "
                "dsc.codec.decompress")
    if way == "file":
        return ("the stream was coded from a file (compress --input), so it has no derived side information: give "
                "this decoder its own with --side-info FILE")
    for name, value in options.items():
        if name in source.location_options or name in source.decoder_options:
            continue
        others = [source.options[name]] + (list(SPLITS) if name == "split" else [])
        for other in dict.fromkeys(o for o in others if o != value):
            if _written_by(source, {**options, name: other}, header) in ("ids", "file"):
                flag = f"--{name.replace('_', '-')} {other}" if name in FLAG_OPTIONS else f"--option {name}={other}"
                return (f"the stream was written with {name} = {other!r}, this decoder was given {name} = {value!r}: "
                        f"decode it with the encoder's options ({flag})")
    covered = ", ".join(k for k in options if k not in (*source.location_options, *source.decoder_options)) or "none"
    return (f"the stream was written for other source options or by another model: its fingerprint covers the "
            f"source ({source.name}), its options ({covered}) and the model's weights; decode it with the "
            "encoder's options and checkpoint")


def _verified_context(source: Source, options: dict, header: StreamHeader, model, from_file: bool) -> dict:
    """The stream's context if this decoder may decode it, before anything is built for its
    messages: with side information from a file a stream of messages by id or of a file, else
    only one by id; otherwise a FingerprintMismatchError saying why."""
    context = source.stream_context(options)
    for candidate in ([{**context, **FROM_FILE}, context] if from_file else [context]):
        try:
            verify_setting(header, model, setting_of(header), candidate)
            return candidate
        except FingerprintMismatchError:
            continue
    raise FingerprintMismatchError(_explain_mismatch(source, options, header))


def _out_form(out: Path) -> str:
    """What ``--out`` writes, by its suffix (:data:`OUT_FORMS`)."""
    form = OUT_FORMS.get(out.suffix.lower())
    if form is None:
        raise InvalidArgumentError(f"--out {out}: name a .npy file (the reconstructions), a .pt file (torch.save of "
                                   "reconstructions, acceptances and picks) or, for an image source, a folder (a "
                                   "name without suffix) for PNGs")
    return form


def _derived(args, source: Source, options: dict, data: bytes, model, context: dict) -> tuple[Decompressed, dict]:
    """Decode with the side information the source derives for this decoder (its ``inputs``),
    scoring the reconstructions against the sources."""
    header = read_header(data)
    _check_messages(source, options, header.first_message, header.num_messages)
    truth, origin = [], []

    def side_information(ids):  # decoder k's side information only, a chunk of messages at a time
        got = source.coding_inputs(options, ids, decoders=[args.decoder])
        truth.append(got.sources)
        origin[:] = [got.origin]
        return got.side_information[:, 0]

    decoded = decompress(data, model, side_information, decoder=args.decoder, context=context)
    error = source.distortion(torch.cat(truth), decoded.reconstruction[:, None])[:, 0].double()
    return decoded, {"data": origin[0], "side_information": "derived", "mse": float(error.mean()),
                     "mse_accepted": float(error[decoded.accepted].mean()) if decoded.accepted.any() else None}


def _from_file(args, source: Source, options: dict, data: bytes, model, context: dict) -> tuple[Decompressed, dict]:
    """Decode with this decoder's own side information from ``--side-info`` (one row per
    message of the stream, in order); the sources are unknown here, so nothing is scored."""
    header, path = read_header(data), Path(args.side_info)
    side = source.read_side_info(path, options)
    if side.shape[0] != header.num_messages:
        raise ShapeMismatchError(f"{path} holds side information for {side.shape[0]} messages; the stream holds "
                                 f"{header.num_messages} (one row per message, in the stream's order)")
    decoded = decompress(data, model, side, decoder=args.decoder, context=context)
    return decoded, {"side_information": str(path)}


def _write_outputs(args, source: Source, options: dict, decoded: Decompressed, summary: dict) -> None:
    """``--out`` in its form and ``--summary`` (the summary with each message's acceptance), each atomically."""
    header = decoded.header
    record = {**summary, "first_message": header.first_message,
              "accepted_per_message": decoded.accepted.tolist()}
    if args.out:
        out = Path(args.out)
        form = _out_form(out)
        if form == "torch":
            _save_tensors(out, {"reconstruction": decoded.reconstruction, "accepted": decoded.accepted,
                                "index": decoded.index, "header": header.describe()})
        elif form == "array":
            save_array(out, source.output(decoded.reconstruction, options))
        else:
            images = source.output(decoded.reconstruction, options)
            if images.dim() != 3:
                raise InvalidArgumentError(f"source {source.name!r} gives reconstructions of shape "
                                           f"{tuple(images.shape)}, not grayscale images [n, H, W]: name a .npy file")
            files = {f"{header.first_message + i:06d}.png": png_bytes(image) for i, image in enumerate(images)}
            files["summary.json"] = (json.dumps(record, indent=2) + "\n").encode()
            save_folder(out, files)
        summary["wrote"] = str(out)
    if args.summary:
        atomic_write_json(args.summary, record)
        summary["summary"] = str(args.summary)


def run_decompress(args) -> dict:
    stream = Path(args.stream)
    inputs = {"stream": stream, **({"side-information file": Path(args.side_info)} if args.side_info else {})}
    outputs = [Path(p) for p in (args.out, args.summary) if p]
    if len(outputs) == 2 and _same_file(*outputs):
        raise InvalidArgumentError(f"--out and --summary name the same file {outputs[0]}")
    form = None
    if args.out:
        _check_output(Path(args.out), args.force, inputs, folder=not Path(args.out).suffix)
        form = _out_form(Path(args.out))
    if args.summary:
        _check_output(Path(args.summary), args.force, inputs)
    data = read_stream_file(stream)
    header = read_header(data)  # checks every size against the format's limits
    if not 0 <= args.decoder < header.num_decoders:
        raise InvalidArgumentError(f"--decoder must be in [0, {header.num_decoders}) for this stream "
                                   f"(K = {header.num_decoders}), got {args.decoder}")
    if header.num_messages == 0:
        raise CorruptStreamError("the stream holds no messages: there is nothing to decode")
    source, options = _source(args)
    if form == "images" and not source.images:
        raise InvalidArgumentError(f"--out {args.out}: {source.name} reconstructions are not images; name a .npy or "
                                   ".pt file")
    model = source.coding_model(options)
    context = _verified_context(source, options, header, model, from_file=bool(args.side_info))
    decode = _from_file if args.side_info else _derived
    decoded, scores = decode(args, source, options, data, model, context)
    summary = {"decoder": args.decoder, "messages": header.num_messages, "check_bits": header.check_bits,
               "accepted": float(decoded.accepted.double().mean()),
               "accepted_messages": int(decoded.accepted.sum()), **scores}
    _write_outputs(args, source, options, decoded, summary)
    return summary


def run_inspect(args) -> dict:
    return read_header(read_stream_file(args.stream)).describe()


DESCRIPTION = "dsc bitstreams from the command line: compress sources into a stream, decode it at one decoder, " \
    "or check a stream and print its header."
EXAMPLES = "examples:\n" + "\n".join(line[2:] for line in (__doc__ or "").splitlines() if line.startswith("    dsc "))
FORCE_HELP = ("replace an existing output (outputs are written atomically: a reader sees the old file or the "
              "whole new one); without it an existing file is refused")
SOURCE_HELP = ("the source: a built-in one ({names}), one that a module named by --import registers, or one of an "
               "installed package (entry point group {group})")
IMPORT_HELP = ("import MODULE first (repeatable): a module that registers sources (dsc.registry.register); the "
               "working directory is searched first, so a module there needs no PYTHONPATH")
INPUT_HELP = ("code the sources that FILE holds, message ids --first onwards, instead of messages by id; gaussian: "
              "a .npy of floats, shape (n,) ((n, d) with a d-component --ckpt codec); mnist: whole 28x28 digits, "
              "of which the right halves are coded: a PNG or JPEG, a folder of them (in name order) or a .npy "
              "(n, 28, 28) of uint8 0..255 or floats in [0, 1]")
SIDE_INFO_HELP = ("decode with this decoder's own side information from FILE (one row per message of the stream, "
                  "in order) instead of the derived one; gaussian: a .npy of floats shaped as --input; mnist: the "
                  "decoder's c x c crops of the left halves (c: the codec's crop size) as a PNG or JPEG, a folder "
                  "of them (in name order) or a .npy (n, c, c)")
OUT_HELP = ("write the reconstructions: FILE.npy (the array; mnist: right halves (n, 28, 14) in [0, 1]), FILE.pt "
            "(torch.save of reconstructions, acceptances, picks and the header) or, for an image source, a folder "
            "(a name without suffix) of PNGs named by message id, with summary.json; never the input stream")


def _source_defaults(name: str) -> str:
    """`` (default: X)`` of source option ``name``, per built-in source where they differ."""
    defaults = {source: get_source(source).options[name] for source in source_names(installed=False)
                if name in get_source(source).options}
    values = set(map(repr, defaults.values()))
    if len(values) == 1:
        return f" (default: {next(iter(defaults.values()))})"
    return " (default: " + ", ".join(f"{source} {value}" for source, value in defaults.items()) + ")"


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="dsc", description=DESCRIPTION, epilog=EXAMPLES, formatter_class=HelpFormatter)
    verbs = root.add_subparsers(dest="verb", required=True, metavar="{compress,decompress,inspect}")
    built_in = source_names(installed=False)  # an installed package's sources are loaded only when named
    usual_n = ", ".join(f"{name} {get_source(name).num_candidates}" for name in built_in)
    for verb, helptext in (("compress", "encode sources into one bitstream"),
                           ("decompress", "decode a bitstream at one decoder")):
        p = verbs.add_parser(verb, help=helptext, description=f"{helptext[0].upper()}{helptext[1:]}: the sources and "
                             "side information come from the registered source's record (or from files); an option "
                             "set by flag or --option overrides the source's default.", formatter_class=HelpFormatter)
        p.add_argument("source", help=SOURCE_HELP.format(names=", ".join(built_in), group=ENTRY_POINT_GROUP))
        p.add_argument("stream", type=Path, help="the bitstream file")
        p.add_argument("--import", dest="imports", action="append", metavar="MODULE", help=IMPORT_HELP)
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
            p.add_argument("--input", metavar="FILE", help=INPUT_HELP)
            p.add_argument("--count", type=int, help=f"sources to encode by message id (default: {DEFAULT_COUNT}; "
                                                     "not with --input, whose rows are all coded)")
            p.add_argument("--first", type=int, default=0, help="message id (digit index) of the first")
            p.add_argument("--seed", type=int, default=0, help="shared-randomness seed")
            p.add_argument("--num-candidates", type=int, help=f"N, the shared candidates (default: the source's "
                                                              f"usual N: {usual_n})")
            p.add_argument("--rate-bits", type=int, default=2, help="label bits per message, log2(L_max)")
            p.add_argument("--num-decoders", type=int, default=4, help="K, the decoders")
            p.add_argument("--check-bits", type=int, default=0, help="c check bits per message")
        else:
            p.add_argument("--decoder", type=int, default=0, help="which decoder (0 .. K-1) decodes")
            p.add_argument("--side-info", metavar="FILE", help=SIDE_INFO_HELP)
            p.add_argument("--out", help=OUT_HELP)
            p.add_argument("--summary", metavar="FILE", help="also write the printed JSON summary, with each "
                                                             "message's acceptance, to FILE")
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
