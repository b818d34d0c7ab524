"""Split token-tree attention (ld_agents.llm.tree_attention) against dense masked SDPA."""

from __future__ import annotations

import random
import zlib

import pytest
import torch
import torch.nn.functional as F

from ld_agents.llm.tree_attention import plan_tree, split_tree_attention


def random_tree(rng: random.Random, rows: int, shared: int) -> list[tuple[int, ...]]:
    """The nodes (all token prefixes) of ``rows`` random rows that share ``shared`` first
    tokens, in insertion order."""
    start = [rng.randrange(50) for _ in range(shared)]
    nodes, seen = [], set()
    for _ in range(rows):
        row = tuple(start + [rng.randrange(4) for _ in range(rng.randrange(1, 12))])
        for t in range(1, len(row) + 1):
            if row[:t] not in seen:
                seen.add(row[:t])
                nodes.append(row[:t])
    return nodes


def tree_mask(nodes, n: int, window: int | None) -> tuple[torch.Tensor, int]:
    """What each node sees, as HFBackend._tree_hidden builds it: the prefix keys (the last
    ``window - 1`` of them under a sliding window) and its ancestors; and the prefix keys'
    count."""
    index = {p: i for i, p in enumerate(nodes)}
    u = len(nodes)
    allowed = torch.zeros((u, u), dtype=torch.bool)
    for i, p in enumerate(nodes):
        if len(p) > 1:
            allowed[i] = allowed[index[p[:-1]]]
        allowed[i, i] = True
    pos = n - 1 + torch.tensor([len(p) for p in nodes])
    if window is None:
        return torch.cat([torch.ones((u, n), dtype=torch.bool), allowed], 1), n
    m = min(n, window - 1)
    key_pos = torch.cat([torch.arange(n - m, n), pos])
    seen = torch.cat([torch.ones((u, m), dtype=torch.bool), allowed], 1)
    return seen & (key_pos[None, :] > pos[:, None] - window), m


def ancestors_in_segments(order, plan):
    """For each node, the tree-node keys of every segment it attends (as a list)."""
    keys: list[list[int]] = [[] for _ in order]
    assert plan.segments[0][:3] == (0, len(order), 0)  # the trunk: every node sees it
    for q0, q1, k0, k1 in plan.segments:
        for r in range(q0, q1):
            keys[r].extend(range(k0, k1))
    return keys


@pytest.mark.parametrize("seed", range(6))
def test_plan_covers_every_ancestor_once(seed):
    """Each node attends every one of its ancestors (and itself) in exactly one segment,
    every subtree's nodes are contiguous, and a node's parent comes before it."""
    rng = random.Random(seed)
    nodes = random_tree(rng, rows=rng.randrange(1, 30), shared=rng.choice([0, 1, 4]))
    order, plan = plan_tree(nodes, leaf=rng.choice([1, 5, 20, 1000]))
    assert sorted(order) == sorted(nodes) and plan.nodes == len(nodes)
    where = {p: i for i, p in enumerate(order)}
    for p in order:
        if len(p) > 1:
            assert where[p[:-1]] < where[p]
    for p, keys in zip(order, ancestors_in_segments(order, plan), strict=True):
        lineage = {where[p[:t]] for t in range(1, len(p) + 1)}
        assert len(keys) == len(set(keys))  # no key counted twice
        assert lineage <= set(keys)
    for q0, q1, _, _ in plan.segments[1:]:
        block = order[q0:q1]
        top = min(block, key=len)
        assert all(p[: len(top)] == top for p in block)  # one subtree


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("heads", [(1, 4), (2, 2), (1, 1)])
@pytest.mark.parametrize("window", [None, 8])
@pytest.mark.parametrize("shared", [0, 3])
def test_split_attention_equals_dense(dtype, heads, window, shared):
    """The split computation equals dense masked attention: float32 within 2e-6; bf16 no
    further from float32 than three times torch's own bf16 SDPA (each segment's output is
    rounded before the merge). Masks as -inf, as the dtype's lowest value (what the
    backend builds) and as booleans give the same result."""
    rng = random.Random(zlib.crc32(repr((str(dtype), heads, window, shared)).encode()))
    torch.manual_seed(rng.randrange(1000))
    kv, rep = heads
    nodes = random_tree(rng, rows=14, shared=shared)
    order, plan = plan_tree(nodes, leaf=rng.choice([4, 16, 1000]))
    seen, m = tree_mask(order, 20, window)
    u, d = len(order), 32
    q = torch.randn(1, kv * rep, u, d).to(dtype)
    k = torch.randn(1, kv, m + u, d).to(dtype)
    v = torch.randn(1, kv, m + u, d).to(dtype)
    additive = torch.zeros(seen.shape, dtype=dtype).masked_fill(~seen, float("-inf"))[None, None]

    def dense(qq, kk, vv, mask):
        kk, vv = kk.repeat_interleave(rep, 1), vv.repeat_interleave(rep, 1)
        out = F.scaled_dot_product_attention(qq, kk, vv, attn_mask=mask, scale=0.2)
        return out.transpose(1, 2).float()

    ref = dense(q.float(), k.float(), v.float(), seen[None, None])
    got = split_tree_attention(q, k, v, additive, 0.2, plan)
    assert got.shape == (1, u, kv * rep, d) and got.dtype == dtype
    assert torch.equal(got, split_tree_attention(q, k, v, seen[None, None], 0.2, plan))
    lowest = torch.zeros(seen.shape, dtype=dtype).masked_fill(~seen, torch.finfo(dtype).min)
    assert torch.equal(got, split_tree_attention(q, k, v, lowest[None, None], 0.2, plan))
    err = float((got.float() - ref).abs().max())
    if dtype == torch.float32:
        assert err < 2e-6
    else:
        own = float((dense(q, k, v, additive) - ref).abs().max())
        assert err < 3 * own + 1e-3


def test_other_shapes_fall_back_to_sdpa():
    """Value heads of another size than the query's (as in some attention variants) are
    not split: the dense SDPA path runs, so scoring keeps its token trees."""
    from ld_agents.llm.tree_attention import tree_attention_forward, tree_plan

    order, plan = plan_tree([(1,), (1, 2), (1, 3)])
    u = len(order)
    q, k, v = torch.randn(1, 2, u, 8), torch.randn(1, 2, 3 + u, 8), torch.randn(1, 2, 3 + u, 4)
    mask = torch.zeros(1, 1, u, 3 + u)

    class Module:
        num_key_value_groups = 1
        is_causal = True

    with tree_plan(plan):
        out, _ = tree_attention_forward(Module(), q, k, v, mask, scaling=0.3)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3).transpose(1, 2)
    assert out.shape == (1, u, 2, 4) and torch.allclose(out, ref, atol=1e-6)


def test_deep_trees_are_planned_without_recursion():
    """A comb (each node with a leaf child and a continuing child) deeper than Python's
    recursion limit is laid out, every ancestor of its deepest node covered once."""
    depth = 1500
    spine = [tuple(range(t)) for t in range(1, depth + 1)]
    leaves = [(*p, -1) for p in spine]
    order, plan = plan_tree(spine + leaves, leaf=4)
    assert plan_tree(spine + leaves, leaf=10**6)[0][0] == spine[0]  # one dense block
    assert sorted(order) == sorted(spine + leaves)
    deepest = order.index(spine[-1])
    keys = ancestors_in_segments(order, plan)[deepest]
    assert len(keys) == len(set(keys)) and {order.index(p) for p in spine} <= set(keys)
