"""Keys and values of recently computed prefixes, so that a causal model extends a prefix by its
new tokens only. Entries are keyed by the prefix's token tuple; a query finds the longest cached
prefix of a row. Least recently used entries leave once the cache holds more than ``capacity``
tokens in all.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor

from dsc.errors import InvalidArgumentError


class PrefixCache:
    """``put(prefix, kv)`` stores ``kv`` ``[layers, 2, kv_heads, T, head_dim]`` for the token
    tuple ``prefix`` (length T); ``longest(row, limit)`` -> (m, kv of row[:m]) with the largest
    cached m <= limit (0 and None when none is)."""

    def __init__(self, capacity: int = 1 << 15) -> None:
        if capacity < 1:
            raise InvalidArgumentError(f"capacity must be >= 1 token, got {capacity}")
        self.capacity = capacity
        self.entries: OrderedDict[tuple[int, ...], Tensor] = OrderedDict()
        self.tokens = 0
        self.hits = self.misses = 0

    def longest(self, row: tuple[int, ...], limit: int) -> tuple[int, Tensor | None]:
        for m in range(min(limit, len(row)), 0, -1):
            kv = self.entries.get(row[:m])
            if kv is not None:
                self.entries.move_to_end(row[:m])
                self.hits += 1
                return m, kv
        self.misses += 1
        return 0, None

    def put(self, prefix: tuple[int, ...], kv: Tensor) -> None:
        if prefix in self.entries:
            self.entries.move_to_end(prefix)
            return
        self.entries[prefix] = kv
        self.tokens += len(prefix)
        while self.tokens > self.capacity and len(self.entries) > 1:
            old, _ = self.entries.popitem(last=False)
            self.tokens -= len(old)

    def clear(self) -> None:
        self.entries.clear()
        self.tokens = 0
