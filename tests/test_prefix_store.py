"""The HF backend's prefix store picks one entry for contexts sharing a prefix, whatever
its LRU order (no model needed)."""

from __future__ import annotations

from ld_agents.llm.prefix_cache import PrefixState, PrefixStore


def _state(ids: tuple[int, ...]) -> PrefixState:
    return PrefixState(ids, [], [], None)


def test_longest_prefers_the_whole_prefix_and_does_not_alternate():
    store = PrefixStore(1_000)
    static = (1, 2, 3, 4)
    store.put(_state(static), pin=True)
    store.put(_state((*static, 9, 9, 9)))  # another context: shares only the static part
    picks = [store.longest((*static, 5, 6, k)) for k in range(6)]
    assert all(n == 4 for _, n in picks)
    assert {p.ids for p, _ in picks} == {static}  # the exact prefix, every time


def test_longest_takes_the_longest_match_and_breaks_ties_by_key():
    store = PrefixStore(1_000)
    for ids in [(1, 2, 7, 8), (1, 2, 3, 9), (1, 2, 3, 5, 5), (4,)]:
        store.put(_state(ids))
    state, n = store.longest((1, 2, 3, 6))
    assert n == 3 and state.ids == (1, 2, 3, 9)  # both share 3; the shorter key
    picks = {store.longest((1, 2, 3, 6))[0].ids for _ in range(4)}
    assert picks == {(1, 2, 3, 9)}
    assert store.longest((8, 8)) == (None, 0)


def test_caches_join_along_the_batch_and_refuse_other_layers():
    """concat_rows puts each cache's rows after the first's; layers of other kinds (whose
    state may be more than keys and values) are refused."""
    import pytest
    import torch
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    class IndexedLayer(DynamicLayer):
        """Stands for a layer with more per-row state."""

    from ld_agents.llm.prefix_cache import concat_rows

    a, b = DynamicCache(), DynamicCache()
    a.update(torch.zeros(1, 1, 3, 2), torch.zeros(1, 1, 3, 2), 0)
    b.update(torch.ones(2, 1, 3, 2), torch.ones(2, 1, 3, 2), 0)
    joined = concat_rows([a, b])
    assert joined is a
    assert joined.layers[0].keys[:, 0, 0, 0].tolist() == [0.0, 1.0, 1.0]
    assert joined.layers[0].values.shape == (3, 1, 3, 2)
    c, d = DynamicCache(), DynamicCache()
    c.layers.append(IndexedLayer())
    d.layers.append(IndexedLayer())
    with pytest.raises(TypeError, match="IndexedLayer"):
        concat_rows([c, d])
