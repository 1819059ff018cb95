"""Speculative generation: draft K continuations of L tokens with the shared noise, verify them
in one target call, repeat. Batched over sequences whose blocks need not line up.

Models are callables on padded prefixes ``tokens`` ``[N, T]`` with ``lengths`` ``[N]``:

- ``draft_next(tokens, lengths, drafts)`` -> ``[N, V]``: the drafter's next-token distribution
  after each prefix (``drafts`` ``[N]``: which draft, so K drafters may differ);
- ``target_block(tokens, lengths, count)`` -> ``[N, count, V]``: the target's next-token
  distributions after each of the last ``count`` prefixes ending at ``lengths - count + 1 ..
  lengths`` (one parallel call).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from dsc.speculative.noise import SharedNoise, gumbel_sample
from dsc.speculative.verifiers import verify_block

DraftNext = Callable[[Tensor, Tensor, Tensor], Tensor]
TargetBlock = Callable[[Tensor, Tensor, int], Tensor]


@dataclass(frozen=True)
class Generation:
    """``tokens`` ``[B, T]`` generated after the prompt (exactly ``num_tokens`` each),
    ``target_calls`` ``[B]``, ``emitted`` ``[B]`` tokens the verifier emitted (the last block's
    may run past ``num_tokens``), ``accepted`` ``[B]`` draft positions that matched,
    ``positions`` ``[B]`` draft positions verified."""

    tokens: Tensor
    target_calls: Tensor
    emitted: Tensor
    accepted: Tensor
    positions: Tensor

    @property
    def block_efficiency(self) -> Tensor:
        """Emitted tokens per target call ``[B]`` (bonus tokens included; the last block is not
        cut at ``num_tokens``, which would bias short generations down)."""
        return self.emitted.double() / self.target_calls.double()


def _append(tokens: Tensor, lengths: Tensor, new: Tensor, count: Tensor) -> Tensor:
    """Write ``new`` ``[N, M]`` (first ``count`` of each row) after each prefix."""
    width = int((lengths + count).max()) if len(lengths) else tokens.shape[1]
    if width > tokens.shape[1]:
        tokens = torch.cat([tokens, tokens.new_zeros(tokens.shape[0], width - tokens.shape[1])], dim=1)
    for m in range(new.shape[1]):
        rows = count > m
        tokens[rows, lengths[rows] + m] = new[rows, m]
    return tokens


def draft(noise: SharedNoise, sequences: Tensor, tokens: Tensor, lengths: Tensor, prompt_lengths: Tensor,
          drafts: int, length: int, draft_next: DraftNext) -> tuple[Tensor, Tensor]:
    """K drafts of ``length`` tokens after each prefix, each token sampled with the shared draft
    row at its absolute output position -> tokens ``[B, K, L]``, probabilities ``[B, K, L, V]``."""
    b = tokens.shape[0]
    flat = tokens.repeat_interleave(drafts, dim=0)
    flat_lengths = lengths.repeat_interleave(drafts)
    which = torch.arange(drafts, device=tokens.device).repeat(b)
    out, probs = [], []
    for j in range(length):
        p = draft_next(flat, flat_lengths, which)  # [B * K, V]
        e = noise.draft_rows(sequences, lengths - prompt_lengths + j, drafts, p.shape[-1])  # [B, K, V]
        x = gumbel_sample(e.reshape(b * drafts, -1), p)
        flat = _append(flat, flat_lengths, x[:, None], torch.ones_like(flat_lengths))
        flat_lengths = flat_lengths + 1
        out.append(x.view(b, drafts))
        probs.append(p.view(b, drafts, -1))
    return torch.stack(out, dim=2), torch.stack(probs, dim=2)


def generate(method: str, prompts: Tensor, prompt_lengths: Tensor, num_tokens: int, drafts: int, length: int,
             draft_next: DraftNext, target_block: TargetBlock, noise: SharedNoise,
             sequences: Tensor | None = None, on_block: Callable | None = None) -> Generation:
    """Generate ``num_tokens`` tokens after each prompt (``prompts`` ``[B, T]`` padded,
    ``prompt_lengths`` ``[B]``) with K drafts of L tokens per target call. ``on_block(x, p, q,
    verified)``, optional, sees every block's drafts, distributions and verification. Everything
    runs on the prompts' device."""
    b, device = prompts.shape[0], prompts.device
    sequences = torch.arange(b, device=device) if sequences is None else sequences.to(device)
    prompt_lengths = prompt_lengths.to(device)
    tokens, lengths = prompts.clone(), prompt_lengths.clone()
    calls, emitted, accepted, verified = torch.zeros(4, b, dtype=torch.long, device=device)
    todo = lengths - prompt_lengths < num_tokens
    while todo.any():
        idx = torch.nonzero(todo)[:, 0]
        t, n = tokens[idx], lengths[idx]
        x, p = draft(noise, sequences[idx], t, n, prompt_lengths[idx], drafts, length, draft_next)
        # the target sees every draft in full: prefix + L draft tokens, one call
        flat = _append(t.repeat_interleave(drafts, dim=0), n.repeat_interleave(drafts), x.flatten(0, 1),
                       torch.full((len(idx) * drafts,), length, device=device))
        q = target_block(flat, n.repeat_interleave(drafts) + length, length + 1).view(len(idx), drafts, length + 1, -1)
        result = verify_block(method, x, p, q, noise, sequences[idx], n - prompt_lengths[idx])
        if on_block is not None:
            on_block(x, p, q, result)
        count = torch.minimum(result.emitted, num_tokens - (n - prompt_lengths[idx]))
        new = torch.zeros(b, length + 1, dtype=torch.long, device=device)
        new[idx] = result.tokens.clamp_min(0)
        counts = torch.zeros_like(lengths)
        counts[idx] = count
        tokens = _append(tokens, lengths, new, counts)
        lengths = lengths + counts
        calls[idx] += 1
        emitted[idx] += result.emitted
        accepted[idx] += result.accepted.sum(dim=1)
        verified[idx] += torch.minimum(result.emitted, torch.full_like(result.emitted, length))
        todo = lengths - prompt_lengths < num_tokens
    out = torch.stack([tokens[i, prompt_lengths[i]:prompt_lengths[i] + num_tokens] for i in range(b)])
    return Generation(out, calls, emitted, accepted, verified)
