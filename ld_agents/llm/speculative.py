"""Drafted greedy decoding: prompt-lookup drafts, checked by the model in one forward.

A decoding step that feeds one token per row reads every weight of the model for one token:
on a CPU at batch 1 it costs about as much as a step that feeds five. So each step feeds a
row's last token *and* a guess of the next few, taken from the row's own text (prompt
lookup: the tokens that followed the latest earlier occurrence of its last 1-3 tokens; an
answer that repeats the board's coordinates repeats its prompt). The model's argmax at each
fed position says how many guesses were right; those are kept, plus the model's own next
token. The output is the greedy output: a guess is kept only where it *is* the argmax.

Rejected guesses stay in the key-value cache but are masked out: each cache slot records
the position of its token in its row (-1 for padding and rejected guesses), and every
forward gets 4D masks built from those positions (causal, and the sliding window counted
in positions, not slots). Nothing is cropped, so sliding-window layers need no rollback.
Rows are therefore computed as they would be alone: unlike left-padded batching, a row's
output does not depend on the other rows of its batch (in exact arithmetic; in bf16 other
shapes round a little differently). The price is a cache that keeps every token in every
layer, so drafts are used only up to :func:`draft_context` tokens of prompt and answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ld_agents.llm.prefix_cache import PrefixState, additive_mask

#: draft tokens per row and step by default (``hf:...?draft_tokens=K``; 0: plain greedy)
DEFAULT_DRAFT_TOKENS = 4
#: the longest n-gram looked up
MAX_NGRAM = 3
#: tokens a decoding step may feed in all (rows x (1 + guesses)): on a 2-core CPU a step
#: of a few rows is bound by reading the weights, so guesses come almost free, but at 20
#: rows (100 tokens fed) a step costs more than the forwards it saves. A batch that starts
#: with too many rows for any guess (13 here) decodes token by token: at 20 rows the drafted
#: path cost 295-306 ms per KD decision against 264-274 (its cache keeps every slot)
STEP_TOKENS = 24


#: drafted decoding runs where prompt + answer fit in this many tokens, or in two sliding
#: windows where the model has them: its cache keeps every token in every layer, so past
#: that a step attends to (and copies) far more than a sliding layer's window, and at 5,000
#: tokens a drafted answer took 1.7x the time of token-by-token decoding
DRAFT_CONTEXT = 1024


def draft_context(window: int) -> int:
    """The longest prompt + answer decoded with drafts, for a model's sliding ``window``
    (0: none)."""
    return max(DRAFT_CONTEXT, 2 * window)


def guesses_per_row(rows: int, most: int, step_tokens: int = STEP_TOKENS) -> int:
    """Guesses each of ``rows`` rows may feed in a step (at most ``most``)."""
    return max(0, min(most, step_tokens // max(rows, 1) - 1))


def lookup_draft(seq: Sequence[int], k: int, max_ngram: int = MAX_NGRAM) -> list[int]:
    """Up to ``k`` tokens that followed the latest earlier occurrence of ``seq``'s last
    n-gram, trying n = ``max_ngram`` down to 1; ``[]`` when none occurs earlier."""
    if k < 1:
        return []
    seq = list(seq)
    for n in range(min(max_ngram, len(seq) - 1), 0, -1):
        tail = seq[-n:]
        for i in range(len(seq) - n - 1, -1, -1):
            if seq[i : i + n] == tail:
                return seq[i + n : i + n + k]
    return []


def full_cache(state: PrefixState | None, n: int, batch: int) -> Any:
    """A DynamicCache of plain layers (no sliding-window eviction) holding the first ``n``
    tokens of ``state`` for each of ``batch`` rows; the masks do the windowing."""
    from transformers import DynamicCache

    cache = DynamicCache()
    if state is not None and n:
        for i, (k, v) in enumerate(zip(state.keys, state.values, strict=True)):
            k, v = k[:, :, :n], v[:, :, :n]
            cache.update(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1), i)
    return cache


class SlotPositions:
    """The position of each key-value cache slot's token in its row (-1: not a token)."""

    def __init__(self, shared: int, batch: int) -> None:
        import torch

        self.pos = torch.arange(shared).expand(batch, shared).clone()

    def extend(self, query_pos: Any) -> None:
        """Append a forward's slots (``query_pos``: batch x width, -1 for padding)."""
        import torch

        self.pos = torch.cat([self.pos, query_pos], dim=1)

    def reject(self, row: int, first_slot: int) -> None:
        """Mask out ``row``'s slots from ``first_slot`` on (its rejected guesses)."""
        self.pos[row, first_slot:] = -1

    def select(self, rows: Any) -> None:
        """Keep only these rows (a LongTensor of row indices)."""
        self.pos = self.pos[rows]

    def masks(
        self, query_pos: Any, kinds: Sequence[str], window: int, dtype: Any, device: Any = None
    ) -> Any:
        """Additive 4D masks (batch x 1 x queries x slots, on ``device``) for the slots
        already appended plus this forward's, one per attention kind (a dict where there are
        several)."""
        keys = self.pos[:, None, :]
        q = query_pos[:, :, None]
        seen = (keys >= 0) & (keys <= q)
        out = {}
        for kind in kinds:
            vis = seen & (keys > q - window) if kind == "sliding_attention" else seen
            out[kind] = additive_mask(vis[:, None], dtype).to(device)
        return out if len(out) > 1 else next(iter(out.values()))


__all__ = [
    "DEFAULT_DRAFT_TOKENS",
    "SlotPositions",
    "draft_context",
    "full_cache",
    "guesses_per_row",
    "lookup_draft",
]
