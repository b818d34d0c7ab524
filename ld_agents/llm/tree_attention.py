"""Attention for token trees that skips what the tree mask hides.

``HFBackend`` scores many continuations at once as one token tree packed after a cached
prefix (``HFBackend._tree_hidden``): a node sees the prefix and its own ancestors. With a
dense 4D mask, attention costs every node against every key, prefix and tree alike: for the
LD pursuit student (a 452-token pinned prefix, trees of 1,024 nodes, about 160 per
decision) six keys in ten are masked out, and attention was 60% of a batched decision's
time on a 2-core CPU.

A tree here is laid out with every subtree contiguous (:func:`plan_tree`): first the
**trunk** (the chain every row shares), then each subtree below it, a large one as its own
chain followed by its subtrees. Attention then splits exactly into segments:

* every node against the prefix and trunk keys, with the given mask's columns (sliding
  windows included);
* each subtree of at most ``LEAF_NODES`` nodes against its own nodes, with the mask's
  diagonal block;
* a larger subtree's chain against all of that subtree's nodes;

each by torch's CPU flash-attention kernel (which also returns each row's log-sum-exp), or
by bf16 products where the backend's forward asks for them and the segment has at least 16
queries (:mod:`ld_agents.llm.cpu_attention`, which returns the log-sum-exp too), merged by
the log-sum-exps: a softmax over a union of disjoint key sets. Every key a node
sees lies in exactly one of its segments and the mask still applies inside each, so the
result is the dense masked attention up to float rounding (float32 within 2e-6 on random
trees, tested; in bf16 each segment's output is rounded before the merge, which puts the
split within about 3x the dense bf16 path's own distance from float32 on random trees and
as close as the dense path on the LD student's scores, see
``benchmarks/studies/tree_attention.py``).

:func:`tree_attention_forward` is registered with transformers' attention interfaces as
``ld_tree``. It takes the split path only inside :func:`tree_plan` (set by the backend for
one tree forward, whose query length it names) on CPU. Every other call (generation,
prefill, CUDA) goes to transformers' ``sdpa_attention_forward`` unchanged, except on CPU
inside the backend's ``matmul`` mode, where a call with at least 16 queries goes to
:func:`ld_agents.llm.cpu_attention.matmul_attention` (with its 4D mask, or the causal mask
that transformers leaves out where nothing else is masked).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ld_agents.llm.cpu_attention import causal_mask, matmul_attention, matmul_mode, use_matmul

#: the name registered with transformers' attention and mask interfaces
NAME = "ld_tree"


#: subtrees of at most this many nodes are attended as one dense block
LEAF_NODES = 64


@dataclass(frozen=True)
class TreePlan:
    """How one tree forward's nodes are laid out and which key ranges each node range
    attends: ``segments`` are (first node, end node, first key node, end key node), in
    tree-node indices; the first segment (every node against the trunk) also attends
    every key before the tree."""

    nodes: int
    segments: tuple[tuple[int, int, int, int], ...]


_PLAN: contextvars.ContextVar[TreePlan | None] = contextvars.ContextVar(
    "ld_tree_plan", default=None
)


@contextlib.contextmanager
def tree_plan(plan: TreePlan) -> Iterator[None]:
    """Within this block, attention calls with ``plan.nodes`` queries use ``plan``."""
    token = _PLAN.set(plan)
    try:
        yield
    finally:
        _PLAN.reset(token)


def plan_tree(
    nodes: Sequence[tuple[int, ...]], leaf: int = LEAF_NODES
) -> tuple[list[tuple[int, ...]], TreePlan]:
    """Order a tree's nodes (token prefixes whose parents ``p[:-1]`` are among them, or
    empty) so that every subtree is contiguous, each chain of single children first, and
    return that order with the key ranges each node range attends.

    The chain from the root is the trunk: every node sees it (first segment, with the
    keys before the tree). Below a branching, a subtree of at most ``leaf`` nodes is one
    dense block (its nodes against its own nodes); a larger one contributes its chain as a
    segment (all its nodes against the chain) and is split the same way below. Every
    ancestor of a node lies in exactly one segment the node attends, and no segment holds
    a key that is not an ancestor of some node in it except where the mask hides it."""
    children: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
    for p in nodes:
        children.setdefault(p[:-1], []).append(p)
    size: dict[tuple[int, ...], int] = {}
    for p in sorted(nodes, key=len, reverse=True):
        size[p] = 1 + sum(size[c] for c in children.get(p, ()))
    order: list[tuple[int, ...]] = []
    segments: list[tuple[int, int, int, int]] = []

    def subtree(p: tuple[int, ...]) -> None:
        """``p`` and everything below it, parents first (depth first)."""
        todo = [p]
        while todo:
            q = todo.pop()
            order.append(q)
            todo.extend(reversed(children.get(q, ())))

    def chain(p: tuple[int, ...]) -> list[tuple[int, ...]]:
        """``p``'s chain of single children: appended; returns the children below it."""
        while True:
            order.append(p)
            below = children.get(p, [])
            if len(below) != 1:
                return below
            p = below[0]

    def forest(roots: list[tuple[int, ...]]) -> None:
        """Lay out subtrees (iteratively: a tree can be deeper than Python's recursion)."""
        stack: list[tuple[str, Any]] = [("visit", r) for r in reversed(roots)]
        while stack:
            kind, item = stack.pop()
            if kind == "close":  # a large subtree's nodes all laid out: its chain segment
                start, chain_end = item
                segments.append((start, len(order), start, chain_end))
                continue
            start = len(order)
            if size[item] <= leaf:
                subtree(item)
                segments.append((start, len(order), start, len(order)))
                continue
            below = chain(item)
            stack.append(("close", (start, len(order))))
            stack.extend(("visit", c) for c in reversed(below))

    roots = children.get((), [])
    below = chain(roots[0]) if len(roots) == 1 else roots
    trunk = len(order)
    forest(below)
    return order, TreePlan(len(order), ((0, len(order), 0, trunk), *segments))


def tree_attention_forward(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """transformers' attention signature (``query`` (batch, heads, q, dim), ``key`` and
    ``value`` (batch, kv heads, keys, dim)); returns (batch, q, heads, dim) and no weights."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    # plain scaled attention with grouped-query heads: what the split and the products compute
    plain = (
        not dropout
        and kwargs.get("softcap") is None
        and kwargs.get("position_bias") is None
        and not kwargs.get("output_attentions", False)
        and query.shape[1] % key.shape[1] == 0
    )
    plan = _PLAN.get()
    split = (
        plain
        and plan is not None
        and query.shape[0] == 1
        and query.shape[2] == plan.nodes
        and query.device.type == "cpu"
        and value.shape[-1] == query.shape[-1]  # not for value heads of another size
        and attention_mask is not None
        and attention_mask.dim() == 4
    )
    if split:
        return split_tree_attention(query, key, value, attention_mask, scaling, plan), None
    mask = attention_mask
    if mask is None and matmul_mode() and query.shape[2] > 1 and getattr(module, "is_causal", True):
        # transformers leaves the mask out where it is plain causal; the kernel's flag
        # would apply it, so the products need it written out
        mask = causal_mask(query.shape[2], key.shape[2])
    if plain and use_matmul(query, mask):
        scale = 1.0 / math.sqrt(query.shape[-1]) if scaling is None else scaling
        out, _ = matmul_attention(query, key, value, mask[..., : key.shape[2]], scale)
        return out.transpose(1, 2).contiguous(), None
    return sdpa_attention_forward(
        module, query, key, value, attention_mask, dropout, scaling, is_causal, **kwargs
    )


def split_tree_attention(
    query: Any, key: Any, value: Any, mask: Any, scaling: float | None, plan: TreePlan
) -> Any:
    """The dense masked attention of one tree forward, computed segment by segment by
    torch's CPU flash-attention kernel (or bf16 products, in the backend's ``matmul`` mode)
    and merged by log-sum-exp (module docstring).
    ``mask``: additive or boolean, (1, 1 or heads, nodes, keys)."""
    import torch

    _, heads, u, dim = query.shape
    kv_heads, n_keys = key.shape[1], key.shape[2]
    rep = heads // kv_heads
    scale = 1.0 / math.sqrt(dim) if scaling is None else scaling
    if mask.dtype == torch.bool:
        mask = torch.zeros(mask.shape, dtype=query.dtype).masked_fill(~mask, float("-inf"))
    prefix = n_keys - u  # keys before the tree (cropped by a sliding window)
    out = torch.zeros((heads, u, dim))
    lse = torch.full((heads, u), float("-inf"))
    for i, (q0, q1, k0, k1) in enumerate(plan.segments):
        if i == 0:
            k0 = -prefix  # the first segment also attends every key before the tree
        if q1 <= q0 or k1 <= k0:
            continue
        k = key[:, :, prefix + k0 : prefix + k1]
        v = value[:, :, prefix + k0 : prefix + k1]
        m = mask[..., q0:q1, prefix + k0 : prefix + k1].contiguous()
        q = query[:, :, q0:q1]
        if use_matmul(q, m):  # takes the kv heads as they are
            o, s = matmul_attention(q, k, v, m, scale)
        else:  # the kernel wants a kv head per query head
            k = k[:, :, None].expand(1, kv_heads, rep, k1 - k0, dim).reshape(1, heads, -1, dim)
            v = v[:, :, None].expand(1, kv_heads, rep, k1 - k0, dim).reshape(1, heads, -1, dim)
            o, s = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
                q, k, v, attn_mask=m, scale=scale
            )
        # rows that see no key here: the kernel's log-sum-exp is not -inf for them
        unseen = torch.isneginf(m).all(dim=-1)[0].expand(heads, q1 - q0)
        s = s[0].masked_fill(unseen, float("-inf"))
        both = torch.logaddexp(lse[:, q0:q1], s)
        w_old = torch.exp(lse[:, q0:q1] - both).nan_to_num(0.0)[..., None]
        w_new = torch.exp(s - both).nan_to_num(0.0)[..., None]
        o = torch.where(unseen[..., None], 0.0, o[0].float())
        out[:, q0:q1] = w_old * out[:, q0:q1] + w_new * o
        lse[:, q0:q1] = both
    return out.to(query.dtype).transpose(0, 1)[None].contiguous()


def register() -> None:
    """Register :data:`NAME` with transformers (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, tree_attention_forward)
    AttentionMaskInterface.register(NAME, sdpa_mask)


def use_tree_attention(model: Any) -> bool:
    """Switch a CPU model that runs transformers' SDPA attention to :data:`NAME`; returns
    whether it did (other implementations and devices are left as they are)."""
    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return False
    if model.device.type != "cpu":
        return False
    register()
    model.set_attn_implementation(NAME)
    return model.config._attn_implementation == NAME
