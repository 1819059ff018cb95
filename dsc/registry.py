"""The source registry: everything the toolkit needs to know about a source, in one record.

A source is declared in its own module with :func:`register` (the built-in ones live in
:mod:`dsc.catalog`); the command line, the cross-device tool, the generic evaluation job and the
aggregator look sources up by name here and never guess from the keys a result happens to have.
What a :class:`Source` gives (B messages, K decoders):

- ``name``, ``description``;
- ``stream_rows``: the SOURCE-stream rows it draws its randomness from (row -> what it holds),
  claimed in the one table :data:`dsc.coding.streams.SOURCE_ROWS`, so no two sources share
  random values;
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
- ``references``: published values, name -> {(K, rate bits): value};
- ``describe(options)``: optional fields every result point of these options carries (e.g.
  the Gaussian source's ``noise_var`` and ``dim``, which its bounds need);
- ``theory(points)``: optional bound rows for the aggregated table and plot (e.g. Wyner-Ziv),
  each ``{"scheme": <bound name>, "rate_bits": R, "mse_db": ...}``.

See docs/sources.md for a walk-through that adds a source.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NamedTuple, Sequence

from torch import Tensor

from dsc.coding.streams import claim_source_rows, decoder_ids
from dsc.errors import ConfigError, InvalidArgumentError

SCALES = ("db", "linear")


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

    def __post_init__(self) -> None:
        if not (isinstance(self.name, str) and re.fullmatch(r"[a-z][a-z0-9_]*", self.name)):
            raise InvalidArgumentError(f"a source name is lower-case letters, digits and '_', got {self.name!r}")
        if self.scale not in SCALES:
            raise InvalidArgumentError(f"source {self.name!r}: scale must be one of {SCALES}, got {self.scale!r}")
        if not self.stream_rows:
            raise InvalidArgumentError(f"source {self.name!r} must declare the SOURCE-stream rows it draws from")
        stray = sorted(set(self.location_options) - set(self.options))
        if stray:
            raise InvalidArgumentError(f"source {self.name!r}: location_options {', '.join(stray)} are not among its "
                                       "options")

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

    def stream_context(self, options: Mapping[str, Any] | None) -> dict:
        """What a command-line stream's fingerprint records about the data besides the model: the
        source's name and its resolved options except :attr:`location_options` (numbers as the
        defaults' types, so ``--option s2=1`` and ``--s2 1.0`` agree)."""
        resolved = self.resolve(options)
        kept = {}
        for key, value in resolved.items():
            if key in self.location_options:
                continue
            default = self.options.get(key)
            if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            kept[key] = value
        return {"source": self.name, "options": kept}


_SOURCES: dict[str, Source] = {}
BUILTIN = "dsc.catalog"  # importing it registers the built-in sources


def register(source: Source) -> Source:
    """Add ``source`` (and claim its stream rows); a name already taken by another record raises."""
    held = _SOURCES.get(source.name)
    if held is not None and held is not source:
        raise InvalidArgumentError(f"a source named {source.name!r} is already registered; choose another name")
    claim_source_rows(source.name, dict(source.stream_rows))
    _SOURCES[source.name] = source
    return source


def unregister(name: str) -> None:
    """Remove a source and free its stream rows (for tests and interactive sessions)."""
    from dsc.coding.streams import SOURCE_ROWS

    _SOURCES.pop(name, None)
    for row in [row for row, (owner, _) in SOURCE_ROWS.items() if owner == name]:
        del SOURCE_ROWS[row]


def source_names() -> list[str]:
    """The registered sources' names, sorted (the built-in ones always included)."""
    importlib.import_module(BUILTIN)
    return sorted(_SOURCES)


def get_source(name: str) -> Source:
    """The record of source ``name``; an unknown name raises a ConfigError listing the known ones."""
    importlib.import_module(BUILTIN)
    if name not in _SOURCES:
        raise ConfigError(f"unknown source {name!r}; registered sources: {', '.join(sorted(_SOURCES))} "
                          "(add one with dsc.registry.register, see docs/sources.md)")
    return _SOURCES[name]
