"""The source registry: everything the toolkit needs to know about a source, in one record.

A source is declared in its own module with :func:`register` (the built-in ones live in
:mod:`dsc.catalog`); the command line, the cross-device tool, the generic evaluation job and the
aggregator look sources up by name here and never guess from the keys a result happens to have.
What a :class:`Source` gives (B messages, K decoders):

- ``name``, ``description``;
- ``stream_rows``: the SOURCE-stream rows it draws its randomness from (row -> what it holds),
  claimed in the one table :data:`dsc.coding.streams.SOURCE_ROWS` under ``stream_owner``
  (default: its name), so no two sources share random values unless they are drawn by one
  shared machinery (the image sources of :mod:`dsc.sources.images` share the owner ``images``);
- ``inputs(options, messages, decoders)`` -> :class:`CodecInputs`: the coding model
  (:class:`dsc.pipeline.CodingModel`), the sources ``[B, ...]`` of the message ids ``[B]``, the
  side information ``[B, K', ...]`` of the decoder ids ``decoders`` ``[K']`` (int64, in that
  order; decoder k's side information must not depend on which others are asked for, and K'
  may be 0: the encoder's side) and a line saying where the data came from;
- ``distortion(sources, reconstructions)``: per-decoder distortion ``[B, K]`` of
  reconstructions ``[B, K, ...]``, and ``distortion_name`` (what it is, for tables);
- ``scale``: ``db`` (figures as 10 log10 of mean distortions) or ``linear``;
- ``size(options)``: how many message ids exist (a data set's size; None: unbounded), and
  ``num_candidates``: the usual N for it (tools' default);
- ``options``: the option names ``inputs`` reads, with defaults;
- ``location_options``: those of them that say where something is stored (a checkpoint's or a
  data directory's path), not what it is; every other option enters a command-line stream's
  fingerprint (:meth:`Source.stream_context`), a checkpoint's weights through the model's;
- ``decoder_options``: those that only say how a decoder estimates (e.g. the Gaussian source's
  ``estimate``): the encoder ignores them, so they are not in the fingerprint either;
- ``references``: published values, name -> {(K, rate bits): value};
- ``describe(options)``: optional fields every result point of these options carries (e.g.
  the Gaussian source's ``noise_var`` and ``dim``, which its bounds need);
- ``theory(points)``: optional bound rows for the aggregated table and plot (e.g. Wyner-Ziv),
  each ``{"scheme": <bound name>, "rate_bits": R, "mse_db": ...}``;
- optional file hooks for the command line (:meth:`Source.read_input` and the others call them
  with the options resolved): ``model(options)``, the coding model alone (default: the one
  ``inputs`` gives); ``input_reader(path, options)``, the sources ``[n, ...]`` a file holds;
  ``side_info_reader(path, options)``, one decoder's side information ``[n, ...]`` from a file;
  ``output_form(reconstructions, options)``, reconstructions ``[n, ...]`` as output files hold
  them, and ``images``: that form is grayscale images ``[n, H, W]`` in [0, 1] (written as PNGs).
- optional configs of ``train.py`` / ``evaluate.py``, plain mappings with a ``_target_`` that may
  interpolate ``${source.<option>}`` and root keys such as ``${seed}``: ``data``, the Lightning
  data module that trains its codec (its batches: :data:`BATCH_CONTRACT`); ``codec``, that
  trainable model (a LightningModule); ``job``, its evaluation job (default:
  :meth:`Source.default_job`). :meth:`Source.configs` gives them by config group; ``source=NAME``
  selects them (:mod:`dsc.apps`).

A source is found by name among the built-in ones (:mod:`dsc.catalog`), those registered by a
module already imported (:func:`import_sources`: the command line's ``--import``, an evaluation
job's ``imports``) and, when the name is not yet known, installed packages' entry points of the
group :data:`ENTRY_POINT_GROUP` (:func:`load_entry_point_sources`).

See docs/sources.md for a walk-through that adds a source.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

import torch
from torch import Tensor

from dsc.coding.streams import claim_source_rows, decoder_ids
from dsc.errors import ConfigError, InvalidArgumentError

SCALES = ("db", "linear")
BATCH_CONTRACT = ("a sequence (tuple, list or NamedTuple) whose first two entries are source [B, ...] and "
                  "side_info [B, K, ...]")
GENERIC_JOB = "dsc.eval.source_point.SourceRateDistortion"  # a source's default evaluation job
POINT_KEYS = ("scheme", "num_decoders", "rate_bits", "num_candidates", "check_bits")  # root keys the job reads
CONFIG_FIELDS = ("data", "codec", "job")


class CodecInputs(NamedTuple):
    """What a source gives the pipeline for B messages: its ``model``, the ``sources``
    ``[B, ...]``, the decoders' ``side_information`` ``[B, K, ...]`` and the data's ``origin``."""

    model: Any
    sources: Tensor
    side_information: Tensor
    origin: str


@dataclass(frozen=True)
class Source:
    """One source's record (fields in the module docstring)."""

    name: str
    description: str
    stream_rows: Mapping[int, str]
    inputs: Callable[[Mapping[str, Any], Tensor, Tensor], CodecInputs]
    distortion: Callable[[Tensor, Tensor], Tensor]
    distortion_name: str = "squared error"
    scale: str = "db"
    size: Callable[[Mapping[str, Any]], int | None] | None = None
    num_candidates: int = 128
    options: Mapping[str, Any] = field(default_factory=dict)
    references: Mapping[str, Mapping[tuple[int, int], float]] = field(default_factory=dict)
    theory: Callable[[list[dict]], list[dict]] | None = None
    describe: Callable[[Mapping[str, Any]], dict] | None = None
    location_options: tuple[str, ...] = ()
    decoder_options: tuple[str, ...] = ()
    model: Callable[[Mapping[str, Any]], Any] | None = None
    input_reader: Callable[[Path, Mapping[str, Any]], Tensor] | None = None
    side_info_reader: Callable[[Path, Mapping[str, Any]], Tensor] | None = None
    output_form: Callable[[Tensor, Mapping[str, Any]], Tensor] | None = None
    images: bool = False
    data: Mapping[str, Any] | None = None
    codec: Mapping[str, Any] | None = None
    job: Mapping[str, Any] | None = None
    stream_owner: str | None = None  # whose rows these are (None: this source's; the image sources share theirs)

    def __post_init__(self) -> None:
        if not (isinstance(self.name, str) and re.fullmatch(r"[a-z][a-z0-9_]*", self.name)):
            raise InvalidArgumentError(f"a source name is lower-case letters, digits and '_', got {self.name!r}")
        if self.scale not in SCALES:
            raise InvalidArgumentError(f"source {self.name!r}: scale must be one of {SCALES}, got {self.scale!r}")
        if not self.stream_rows:
            raise InvalidArgumentError(f"source {self.name!r} must declare the SOURCE-stream rows it draws from")
        for kind in ("location_options", "decoder_options"):
            stray = sorted(set(getattr(self, kind)) - set(self.options))
            if stray:
                raise InvalidArgumentError(f"source {self.name!r}: {kind} {', '.join(stray)} are not among its "
                                           "options")
        for name in CONFIG_FIELDS:
            config = getattr(self, name)
            if config is not None and not (isinstance(config, Mapping) and isinstance(config.get("_target_"), str)):
                raise InvalidArgumentError(f"source {self.name!r}: {name} must be a config mapping with a _target_ "
                                           f"(the class to build, e.g. 'my_sources.PairData'), got {config!r}")

    def default_job(self) -> dict:
        """The generic evaluation job (:data:`GENERIC_JOB`) of this source: its options from the
        ``source`` config node, the coding point from the root keys :data:`POINT_KEYS`."""
        return {"_target_": GENERIC_JOB, "source": self.name,
                "options": {key: f"${{source.{key}}}" for key in self.options},
                **{key: f"${{{key}}}" for key in POINT_KEYS}, "messages": None, "batch_size": 1000}

    def configs(self) -> dict[str, dict]:
        """The source's configs by config group of ``train.py`` / ``evaluate.py``: ``source`` (its
        name and options with their defaults), ``data``, ``model`` (its ``codec``) and ``job``
        (its ``job``, else :meth:`default_job`); an undeclared data module or codec is an empty
        config. Plain mappings: :mod:`dsc.apps` stores them as ``GROUP/<name>``."""
        if "name" in self.options:
            raise ConfigError(f"source {self.name!r} has an option called 'name', the key under which its `source` "
                              "config holds the source's name: rename that option")
        return {"source": {"name": self.name, **_plain(self.options)}, "data": _plain(self.data or {}),
                "model": _plain(self.codec or {}), "job": _plain(self.job or self.default_job())}

    def resolve(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """``options`` over the defaults; an option the source does not read is an error."""
        options = dict(options or {})
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ConfigError(f"source {self.name!r} has no option {', '.join(unknown)}; its options: "
                              f"{', '.join(f'{k} (default {v!r})' for k, v in self.options.items()) or 'none'}")
        return {**self.options, **options}

    def num_messages(self, options: Mapping[str, Any] | None) -> int | None:
        """How many message ids the source has with ``options`` (None: unbounded)."""
        return None if self.size is None else self.size(self.resolve(options))

    def coding_inputs(self, options: Mapping[str, Any] | None, messages: Tensor, num_decoders: int | None = None,
                      *, decoders: Sequence[int] | Tensor | None = None) -> CodecInputs:
        """:meth:`inputs` with the options resolved against the defaults, for decoders 0..K-1
        (``num_decoders`` = K) or exactly the decoder ids ``decoders`` (e.g. ``[k]`` at decoder
        k's side, ``[]`` at the encoder's): side information ``[B, K', ...]``."""
        device = messages.device if isinstance(messages, Tensor) else None
        ids = decoder_ids(num_decoders, decoders, device)
        return self.inputs(self.resolve(options), messages, ids)

    def coding_model(self, options: Mapping[str, Any] | None) -> Any:
        """The coding model for ``options``: the ``model`` hook's, else the one :meth:`inputs`
        gives for message 0 at the encoder's side."""
        if self.model is not None:
            return self.model(self.resolve(options))
        return self.coding_inputs(options, torch.arange(1), decoders=[]).model

    def read_input(self, path: str | os.PathLike, options: Mapping[str, Any] | None) -> Tensor:
        """The sources ``[n, ...]`` that the file ``path`` holds (the ``input_reader`` hook)."""
        reader = self._hook(self.input_reader, "input_reader", "read sources from a file",
                            "code messages by id instead (compress --count, --first)")
        return self._rows(reader(Path(path), self.resolve(options)), path, "sources")

    def read_side_info(self, path: str | os.PathLike, options: Mapping[str, Any] | None) -> Tensor:
        """One decoder's side information ``[n, ...]`` from the file ``path`` (the
        ``side_info_reader`` hook)."""
        reader = self._hook(self.side_info_reader, "side_info_reader", "read side information from a file",
                            "decode with the derived side information instead (leave out --side-info)")
        return self._rows(reader(Path(path), self.resolve(options)), path, "side information")

    def output(self, reconstructions: Tensor, options: Mapping[str, Any] | None) -> Tensor:
        """Reconstructions ``[n, ...]`` as output files hold them (the ``output_form`` hook; without
        one, as decoded)."""
        return reconstructions if self.output_form is None else self.output_form(reconstructions,
                                                                                 self.resolve(options))

    def _hook(self, hook: Callable | None, name: str, does: str, instead: str) -> Callable:
        if hook is None:
            raise InvalidArgumentError(f"source {self.name!r} cannot {does}: its record has no {name} "
                                       f"(docs/sources.md); {instead}")
        return hook

    @staticmethod
    def _rows(rows: Any, path: str | os.PathLike, what: str) -> Tensor:
        if not isinstance(rows, Tensor) or rows.dim() == 0 or rows.shape[0] == 0:
            got = tuple(rows.shape) if isinstance(rows, Tensor) else type(rows).__name__
            raise InvalidArgumentError(f"{path}: no {what} in it (read as {got}; one row per message is needed)")
        return rows

    def stream_context(self, options: Mapping[str, Any] | None) -> dict:
        """What a command-line stream's fingerprint records about the data besides the model: the
        source's name and its resolved options except :attr:`location_options` and
        :attr:`decoder_options` (numbers as the defaults' types, so ``--option s2=1`` and
        ``--s2 1.0`` agree)."""
        resolved = self.resolve(options)
        kept = {}
        for key, value in resolved.items():
            if key in self.location_options or key in self.decoder_options:
                continue
            default = self.options.get(key)
            if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            kept[key] = value
        return {"source": self.name, "options": kept}


def _plain(value: Any) -> Any:
    """A copy of ``value`` with every mapping a dict and every tuple a list (a config's form)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


_SOURCES: dict[str, Source] = {}
BUILTIN = "dsc.catalog"  # importing it registers the built-in sources
ENTRY_POINT_GROUP = "dsc.sources"  # installed packages' sources: entry point name = source name
_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def register(source: Source) -> Source:
    """Add ``source`` (and claim its stream rows); a name already taken by another record raises."""
    held = _SOURCES.get(source.name)
    if held is not None and held is not source:
        by = getattr(held.inputs, "__module__", None)
        raise InvalidArgumentError(f"a source named {source.name!r} is already registered"
                                   f"{f' (by module {by})' if by else ''}; choose another name")
    claim_source_rows(source.stream_owner or source.name, dict(source.stream_rows))
    _SOURCES[source.name] = source
    return source


def unregister(name: str) -> None:
    """Remove a source and free its stream rows (for tests and interactive sessions)."""
    from dsc.coding.streams import SOURCE_ROWS

    _SOURCES.pop(name, None)
    for row in [row for row, (owner, _) in SOURCE_ROWS.items() if owner == name]:
        del SOURCE_ROWS[row]


def import_sources(names: Iterable[str], given_by: str = "--import") -> list[str]:
    """Import the modules ``names`` (e.g. ``my_sources``, ``pkg.sources``), each of which
    registers sources, with the working directory first on ``sys.path`` (it stays there), so a
    module beside the caller needs no PYTHONPATH; returns the names of the sources they
    registered. A module that cannot be imported, raises while imported, or registers no source
    (on its first import) is a ConfigError naming it and ``given_by`` (the option that named it);
    what a failed import registered is removed again."""
    importlib.import_module(BUILTIN)  # a module that takes a built-in name clashes here
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    added: list[str] = []
    for name in names:
        if not isinstance(name, str) or not _MODULE.fullmatch(name) or name.endswith(".py"):
            hint = f" (name the module, {Path(str(name)).stem!r}, not its file)" if str(name).endswith(".py") else ""
            raise ConfigError(f"{given_by}: {name!r} is not a module name{hint}")
        first, before = name not in sys.modules, set(_SOURCES)
        try:
            importlib.import_module(name)
        except Exception as error:  # a module of one's own may raise anything while imported
            for new in set(_SOURCES) - before:
                unregister(new)
            raise ConfigError(f"{given_by}: cannot import {name!r}: {_import_failure(name, error)}") from error
        new = sorted(set(_SOURCES) - before)
        if first and not new:
            raise ConfigError(f"{given_by}: module {name!r} registers no source (a source module calls "
                              "dsc.registry.register(Source(...)), see docs/sources.md)")
        added += new
    return added


def _import_failure(name: str, error: Exception) -> str:
    missing = getattr(error, "name", None) if isinstance(error, ModuleNotFoundError) else None
    if missing and (name == missing or name.startswith(missing + ".")):
        return (f"no module {missing!r} in the working directory or on the Python path (sys.path); run "
                "from the module's folder or install its package")
    return f"{type(error).__name__}: {error}"


def load_entry_point_sources(name: str | None = None) -> list[str]:
    """Load installed packages' sources: the entry points of the group
    :data:`ENTRY_POINT_GROUP` (only those called ``name`` when given). An entry point is named
    after its source and names the module that registers it (``pkg.sources``) or the record
    itself (``pkg.sources:RECORD``, registered here if it is not yet). Returns the entry
    points' names; one that fails to load or registers no source of its name is a ConfigError."""
    from importlib import metadata

    loaded = []
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if name is not None and point.name != name:
            continue
        dist = getattr(getattr(point, "dist", None), "name", None)
        where = f"entry point {point.name!r} = {point.value!r} (group {ENTRY_POINT_GROUP}" + \
            (f", package {dist})" if dist else ")")
        before = set(_SOURCES)
        try:
            record = point.load()
            if isinstance(record, Source) and record.name not in _SOURCES:
                register(record)
        except Exception as error:  # an installed package's module may raise anything while imported
            for new in set(_SOURCES) - before:
                unregister(new)
            raise ConfigError(f"cannot load the source of {where}: {type(error).__name__}: {error}") from error
        if point.name not in _SOURCES:
            raise ConfigError(f"{where} registers no source named {point.name!r} (an entry point of this group is "
                              "named after the source its module registers)")
        loaded.append(point.name)
    return loaded


def source_names(installed: bool = True) -> list[str]:
    """The registered sources' names, sorted: the built-in ones, those of modules already
    imported and (``installed``) those of installed packages (entry points)."""
    importlib.import_module(BUILTIN)
    if installed:
        load_entry_point_sources()
    return sorted(_SOURCES)


def get_source(name: str) -> Source:
    """The record of source ``name``, loading an installed package's entry point of that name
    when it is not registered yet; an unknown name raises a ConfigError listing the known ones."""
    importlib.import_module(BUILTIN)
    if name not in _SOURCES:
        load_entry_point_sources(name)
    if name not in _SOURCES:
        try:
            known, broken = source_names(), ""
        except ConfigError as error:
            known, broken = sorted(_SOURCES), f"; an installed source failed to load: {error}"
        raise ConfigError(f"unknown source {name!r}; registered sources: {', '.join(known)} (a source of your own: "
                          "name its module with --import on the command line or imports=[...] for train.py or "
                          f"evaluate.py, or install it under the entry point group {ENTRY_POINT_GROUP}; "
                          f"docs/sources.md){broken}")
    return _SOURCES[name]
