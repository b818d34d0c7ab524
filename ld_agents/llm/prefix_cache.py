"""The HF backend's key-value prefix cache: states of token prefixes, kept in an LRU store.

* :class:`PrefixState`: the key-value states (every layer, full length) and the final
  hidden states of one token prefix;
* :class:`PrefixStore`: an LRU of such states keyed by token ids, bounded by a total token
  budget; pinned entries (rules, a manual) are never evicted; :meth:`PrefixStore.longest`
  finds the entry sharing the longest token prefix with a new context;
* :func:`cache_from`: a transformers ``DynamicCache`` holding the first ``n`` tokens of a
  state, repeated along a batch (sliding-window layers keep their window, or every token
  while recording a new state);
* :func:`common_prefix`: the length of the common prefix of two token sequences;
* :func:`attention_kinds` and :func:`additive_mask`: what a custom 4D attention mask
  needs (the layers' attention kinds and window; a boolean visibility as the additive
  bias), shared by the token trees here and the packed training rows of
  :mod:`ld_agents.lora.data`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class PrefixState:
    """Key-value states (full length, every layer) and final hidden states of a token prefix."""

    ids: tuple[int, ...]
    keys: list[Any]  # per layer, tensor [1, kv_heads, n, head_dim]
    values: list[Any]
    hidden: Any  # tensor [n, d_model], after the final norm

    @property
    def n_tokens(self) -> int:
        return len(self.ids)


class PrefixStore:
    """LRU of prefix states keyed by token ids, bounded by a total token budget."""

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self._entries: OrderedDict[tuple[int, ...], PrefixState] = OrderedDict()
        self._pinned: set[tuple[int, ...]] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self, pinned: bool = False) -> None:
        keep = {} if pinned else {k: self._entries[k] for k in self._pinned}
        self._entries = OrderedDict(keep)
        if pinned:
            self._pinned.clear()

    def longest(self, ids: Sequence[int]) -> tuple[PrefixState | None, int]:
        """The entry sharing the longest token prefix with ``ids``, and that length.

        Among entries sharing equally many tokens it picks, whatever the LRU order, one
        that is wholly a prefix of ``ids`` (no cropping), else the shortest, then the
        smallest key: contexts that share a prefix get the same entry, so a batch of them
        (one state's stages) stays one group and its tokens run once."""
        best, rank = None, (0, False, 0, ())
        for key, state in self._entries.items():
            m = min(len(key), len(ids))
            if m < rank[0]:
                continue
            n = common_prefix(key, ids, m)
            if n == 0:
                continue
            mine = (n, n == len(key), -len(key), key)
            if mine[:3] > rank[:3] or (mine[:3] == rank[:3] and key < rank[3]):
                best, rank = state, mine
        best_n = rank[0]
        if best is not None:
            self._entries.move_to_end(best.ids)
        return best, best_n

    def put(self, state: PrefixState, pin: bool = False) -> None:
        self._entries[state.ids] = state
        self._entries.move_to_end(state.ids)
        if pin:
            self._pinned.add(state.ids)
        total = sum(len(k) for k in self._entries)
        for key in list(self._entries):
            if total <= self.max_tokens:
                break
            if key in self._pinned or key == state.ids:
                continue
            total -= len(key)
            del self._entries[key]


def common_prefix(a: Sequence[int], b: Sequence[int], limit: int | None = None) -> int:
    """Length of the common prefix of two token sequences (at most ``limit``)."""
    m = min(len(a), len(b)) if limit is None else limit
    i = 0
    while i < m and a[i] == b[i]:
        i += 1
    return i


def cache_from(config: Any, state: PrefixState | None, n: int, batch: int, record: bool) -> Any:
    """A DynamicCache (for a model ``config``) holding the first ``n`` tokens of ``state``,
    repeated ``batch`` times.

    ``record`` keeps every token in sliding-window layers (so the states can be stored and
    cropped later); otherwise those layers keep only their window.
    """
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicSlidingWindowLayer

    cache = DynamicCache(config=config)
    for i, layer in enumerate(cache.layers):
        sliding = isinstance(layer, DynamicSlidingWindowLayer)
        if sliding and record:
            layer.activate_past_recording()
        if state is None or n == 0:
            continue
        k, v = state.keys[i][:, :, :n], state.values[i][:, :, :n]
        layer.lazy_initialization(k, v)
        if sliding:
            layer.cumulative_length = n
            if not record:
                k, v = (
                    k[:, :, -(layer.sliding_window - 1) :],
                    v[:, :, -(layer.sliding_window - 1) :],
                )
        if batch > 1:
            k, v = k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)
        layer.keys, layer.values = k, v
    return cache


def concat_rows(caches: Sequence[Any]) -> Any:
    """The first of some DynamicCaches of the same layout and length, holding all of their
    rows in order (each layer's keys and values concatenated along the batch). Only plain
    and sliding-window layers: their other state (lengths, window) is the same for every
    row; other layers (shared, recurrent, indexed) are refused."""
    import torch
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    first = caches[0]
    if len(caches) > 1:
        kinds = {type(layer) for c in caches for layer in c.layers}
        other = kinds - {DynamicLayer, DynamicSlidingWindowLayer}
        if other:
            raise TypeError(f"cannot join cache layers of kind {sorted(k.__name__ for k in other)}")
        for i, layer in enumerate(first.layers):
            layer.keys = torch.cat([c.layers[i].keys for c in caches])
            layer.values = torch.cat([c.layers[i].values for c in caches])
    return first


#: the attention kinds a custom 4D mask is built for
MASKABLE_KINDS = ("full_attention", "sliding_attention")


def attention_kinds(config: Any) -> tuple[list[str], int]:
    """A model config's distinct layer attention kinds (sorted) and its sliding window
    (0: none). The kinds are ``[]`` where a custom 4D mask cannot be built: a kind other
    than full or sliding-window attention, or a sliding window under 2."""
    window = int(getattr(config, "sliding_window", None) or 0)
    kinds = getattr(config, "layer_types", None)
    kinds = kinds or (["sliding_attention"] if window else ["full_attention"])
    if not set(kinds) <= set(MASKABLE_KINDS):
        return [], window
    if "sliding_attention" in kinds and window < 2:
        return [], window
    return sorted(set(kinds)), window


def additive_mask(visible: Any, dtype: Any) -> Any:
    """A boolean visibility tensor as an additive attention bias in ``dtype`` (0 where
    visible, the dtype's lowest value elsewhere)."""
    import torch

    bias = torch.zeros(visible.shape, dtype=dtype)
    bias.masked_fill_(~visible, torch.finfo(dtype).min)
    return bias


__all__ = [
    "MASKABLE_KINDS",
    "PrefixState",
    "PrefixStore",
    "additive_mask",
    "attention_kinds",
    "cache_from",
    "common_prefix",
    "concat_rows",
]
