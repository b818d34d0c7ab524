"""Drafted greedy decoding: prompt-lookup drafts, checked by the model in one forward.

A decoding step that feeds one token per row reads every weight of the model for one token:
on a CPU at batch 1 it costs about as much as a step that feeds five. So each step feeds a
row's last token *and* a guess of the next few: the tokens that followed an earlier
occurrence of its last 1-3 tokens (prompt lookup), looked up in the row's answer so far,
then in the backend's latest answers (:data:`ANSWER_HISTORY`, which know the answer's
format: ``"); B: ("`` after a coordinate), then in the row's prompt (an answer that repeats
the board's coordinates repeats its prompt). The earlier answers cut the forwards of a KD
pursuit answer (about 30 tokens) from 15.5 to 12.3 at batch 1 with 4 guesses, and 8
guesses cut them to 10.6 (:data:`DEFAULT_DRAFT_TOKENS`). The model's argmax at each
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

#: draft tokens per row and step by default (``hf:...?draft_tokens=K``; 0: plain greedy);
#: at batch 1 on a 2-core CPU KD took 587 ms per pursuit decision with 8 guesses, 661 with
#: 4 and 626 with 12 (a step of 13 tokens costs more than one of 9; same run, each setting
#: with its own earlier answers; raw 586, 668, 650)
DEFAULT_DRAFT_TOKENS = 8
#: the longest n-gram looked up
MAX_NGRAM = 3
#: earlier answers a backend keeps as a draft source (most recent first)
ANSWER_HISTORY = 16
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


def lookup_draft(
    seq: Sequence[int],
    k: int,
    max_ngram: int = MAX_NGRAM,
    answer_start: int | None = None,
    history: Sequence[Sequence[int]] = (),
) -> list[int]:
    """Up to ``k`` tokens that followed an earlier occurrence of ``seq``'s last n-gram,
    trying n = ``max_ngram`` down to 1; ``[]`` when none occurs.

    ``seq`` is a prompt and, from index ``answer_start`` (default: its end), the answer so
    far. For each n the places are tried in this order, the first match winning: the answer
    so far (latest first), each of ``history`` (earlier answers, most recent first), the
    prompt (latest first). Earlier answers know the answer's format (``"); B: ("`` after a
    coordinate), which the prompt only shows in outline."""
    if k < 1:
        return []
    seq = list(seq)
    earlier = [list(h) for h in history]
    cut = len(seq) if answer_start is None else answer_start
    for n in range(min(max_ngram, len(seq) - 1), 0, -1):
        tail = seq[-n:]
        places = [(seq, max(cut, 0), len(seq) - n - 1)]  # the answer before its tail
        places += [(h, 0, len(h) - n - 1) for h in earlier]
        places.append((seq, 0, min(cut, len(seq) - n) - 1))  # the prompt
        for text, lo, hi in places:
            for i in range(hi, lo - 1, -1):
                if text[i : i + n] == tail:
                    return text[i + n : i + n + k]
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
    "ANSWER_HISTORY",
    "DEFAULT_DRAFT_TOKENS",
    "SlotPositions",
    "draft_context",
    "full_cache",
    "guesses_per_row",
    "lookup_draft",
]
