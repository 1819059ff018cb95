"""A transformers causal LM as the target or drafter of speculative sampling: next-token logits
over a fixed vocabulary, from scratch or extending the longest cached prefix of each row.

The vocabulary is the tokenizer's: a model whose output head is larger (Qwen2.5-7B's 152,064
rows against its tokenizer's 151,665 tokens) has its logits cut to it, a smaller one is padded
with -inf (those tokens get probability 0), so a target and a drafter that share a tokenizer
give distributions of one shape. Prefix keys and values are kept in a
:class:`~dsc.speculative.prefix_cache.PrefixCache` and fed back through transformers'
``DynamicCache``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dsc.errors import ConfigError, InvalidArgumentError
from dsc.optional import require
from dsc.speculative.prefix_cache import PrefixCache


def _past(entries: list[Tensor | None], width: int, like: Tensor):
    """A ``DynamicCache`` holding each row's cached prefix right-padded to ``width`` slots
    (entries ``[layers, 2, kv_heads, m, head_dim]`` or None)."""
    transformers = require("transformers", "speculative")
    layers, _, heads, _, dim = like.shape
    padded = like.new_zeros(len(entries), layers, 2, heads, width, dim)
    for i, kv in enumerate(entries):
        if kv is not None:
            padded[i, ..., :kv.shape[3], :] = kv
    cache = transformers.DynamicCache()
    for layer in range(layers):
        cache.update(padded[:, layer, 0], padded[:, layer, 1], layer)
    return cache


def _stacked(cache) -> Tensor:
    """Keys and values of a ``DynamicCache`` -> ``[N, layers, 2, kv_heads, T, head_dim]``."""
    return torch.stack([torch.stack([keys, values], dim=1) for keys, values, *_ in cache], dim=1)


class CausalLM:
    """``logits`` (from scratch) and ``tail_logits`` (with a prefix cache of ``cache_tokens``
    tokens) of a transformers causal LM over token ids ``0 .. vocab - 1``."""

    def __init__(self, model, vocab: int, cache_tokens: int = 1 << 15) -> None:
        config = model.config.get_text_config()
        kinds = set(getattr(config, "layer_types", None) or ["full_attention"])
        stateful = getattr(model, "_is_stateful", False)
        if kinds != {"full_attention"} or stateful:
            found = "a recurrent state" if stateful else f"layer types {sorted(kinds)}"
            raise ConfigError(f"{type(model).__name__}: the prefix cache needs full attention in every layer "
                              f"(plain keys and values); this model has {found}")
        if vocab < 1:
            raise ConfigError(f"the vocabulary must hold at least one token, got {vocab}")
        self.model, self.vocab = model, vocab
        self.cache = PrefixCache(cache_tokens)

    @property
    def device(self) -> torch.device:
        return self.model.device

    def _fit(self, logits: Tensor) -> Tensor:
        """``[..., V_model]`` -> float32 ``[..., vocab]`` (cut, or padded with -inf)."""
        missing = self.vocab - logits.shape[-1]
        if missing > 0:
            logits = F.pad(logits, (0, missing), value=float("-inf"))
        return logits[..., :self.vocab].float()

    @torch.no_grad()
    def logits(self, tokens: Tensor) -> Tensor:
        """Next-token logits after every prefix, computed from scratch: ``tokens`` ``[N, T]``
        (right-padded) -> ``[N, T, vocab]`` (rows past a sequence's length are meaningless)."""
        return self._fit(self.model(input_ids=tokens.to(self.device), use_cache=False).logits)

    @torch.no_grad()
    def tail_logits(self, tokens: Tensor, lengths: Tensor, count: int = 1) -> Tensor:
        """Next-token logits after each of the last ``count`` prefixes of every row, reusing the
        cached keys and values of the longest known prefix: ``tokens`` ``[N, T]`` right-padded to
        ``lengths`` ``[N]`` -> ``[N, count, vocab]``; the whole rows are then cached."""
        rows = [tuple(row[:n]) for row, n in zip(tokens.tolist(), lengths.tolist())]
        if any(len(row) < count for row in rows) or count < 1:
            raise InvalidArgumentError(f"tail_logits needs count >= 1 and rows of at least count = {count} tokens")
        hits = [self.cache.longest(row, len(row) - count) for row in rows]
        starts = [m for m, _ in hits]
        new = [len(row) - m for row, m in zip(rows, starts)]
        width, span = max(starts), max(new)
        fresh = torch.zeros(len(rows), span, dtype=torch.long)
        mask = torch.ones(len(rows), width + span, dtype=torch.long)  # 0: a padding slot of the cached part
        for i, (row, m) in enumerate(zip(rows, starts)):
            fresh[i, :new[i]] = torch.tensor(row[m:])
            mask[i, m:width] = 0
        positions = torch.tensor(starts)[:, None] + torch.arange(span)[None, :]
        cached = [kv for _, kv in hits if kv is not None]
        past = _past([kv for _, kv in hits], width, cached[0]) if cached else None
        keep = span - min(new) + count  # logits of the last `keep` slots cover every row's tail
        out = self.model(input_ids=fresh.to(self.device), attention_mask=mask.to(self.device),
                         position_ids=positions.to(self.device), cache=past, use_cache=True, logits_to_keep=keep)
        kv = _stacked(out.cache)
        tails = []
        for i, (row, m) in enumerate(zip(rows, starts)):
            self.cache.put(row, torch.cat([kv[i, ..., :m, :], kv[i, ..., width:width + new[i], :]], dim=3))
            end = new[i] - span + keep
            tails.append(out.logits[i, end - count:end])
        return self._fit(torch.stack(tails))
