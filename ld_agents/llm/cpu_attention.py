"""Attention by bfloat16 matrix products on a CPU: the HF backend's ``attention=matmul``.

torch's CPU attention kernel (``scaled_dot_product_attention``, the flash kernel) keeps the
scores in float32 but runs at a fraction of the CPU's bf16 matmul rate: on a 2-core AMD
EPYC with AVX-512-BF16, 160 GFLOP/s against 834 for ``torch.mm`` on the shapes of a batch of
KD prompts (20 rows x 4 heads x 402 queries x 589 keys x 256). :func:`matmul_attention`
computes the same attention with two bf16 products per query chunk:

* the scores ``q @ k.T`` (exact products, float32 sums, **rounded to bf16** as every bf16
  product is; transformers' ``eager`` attention does the same), then scaled and masked in
  float32;
* a float32 softmax (``torch.softmax``: its exp is several times faster than
  ``torch.exp`` on a CPU; on a batch of 4 KD prompts the prefill took 734-742 ms against
  792-846 with ``exp``), its probabilities rounded to bf16 (as the kernel does), times ``v``.

So it is the kernel's computation except for one bf16 rounding of the scores (relative
error 2^-9). Queries go in chunks of at most :data:`SCORE_ELEMENTS` scores, which bounds
the memory of long contexts. It also returns each row's log-sum-exp, as the flash kernel does, so
that :mod:`ld_agents.llm.tree_attention` can merge segments computed either way.

Which way a forward takes is set by the backend for the forwards it runs
(:func:`attention_products`): ``kernel`` or ``matmul``. ``HFBackend`` picks ``matmul`` for
bf16 models on CPUs with bf16 instructions (``attention=auto``), the kernel elsewhere.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from ld_envs.errors import InvalidArgument

#: values of the HF backend's ``attention`` option
ATTENTION_MODES = ("auto", "kernel", "matmul")
#: float32 scores computed at once (queries x heads x keys, 16 MB): larger products run
#: faster here (LD trees: 112-123 ms per decision at 4,096 query rows, 128 at 1,024, 135 at
#: 256), and this bounds the memory of long contexts
SCORE_ELEMENTS = 1 << 22
#: forwards with fewer queries than this keep the kernel (decoding steps: its cost is
#: small there, and one small product per row would cost more in calls)
MIN_QUERIES = 16

_MODE: contextvars.ContextVar[str] = contextvars.ContextVar("ld_attention", default="kernel")


def attention_mode(
    requested: str, dtype: str, device: str, bf16_matmul: str, bf16_native: bool | None
) -> str:
    """``kernel`` or ``matmul`` for an ``attention`` option value: ``auto`` is ``matmul``
    for a bf16 model on a CPU known to have bf16 instructions (``bf16_native``, from
    ``hardware.cpu_info``) whose products are torch's own (``bf16_matmul``), else
    ``kernel``."""
    if requested not in ATTENTION_MODES:
        raise InvalidArgument(
            f"attention must be one of {', '.join(ATTENTION_MODES)}, got {requested!r}"
        )
    if requested != "auto":
        return requested
    native = dtype == "bfloat16" and device == "cpu" and bf16_matmul == "native"
    native = native and bf16_native is True
    return "matmul" if native else "kernel"


@contextlib.contextmanager
def attention_products(mode: str) -> Iterator[None]:
    """Within this block, CPU attention calls use ``mode`` (``kernel`` or ``matmul``)."""
    token = _MODE.set(mode)
    try:
        yield
    finally:
        _MODE.reset(token)


def matmul_mode() -> bool:
    """Whether the forward running now asked for :func:`matmul_attention`."""
    return _MODE.get() == "matmul"


def causal_mask(queries: int, keys: int) -> Any:
    """A boolean (1, 1, queries, keys) mask: query i sees keys up to ``keys - queries + i``
    (the last ``queries`` keys are the queries' own)."""
    import torch

    return torch.ones(queries, keys, dtype=torch.bool).tril(keys - queries)[None, None]


def use_matmul(query: Any, mask: Any) -> bool:
    """Whether an attention call of this shape, inside the current mode, goes by
    :func:`matmul_attention`: ``matmul`` mode, a bf16 CPU query, a 4D mask (the caller
    writes out a causal one that transformers left out) and at least :data:`MIN_QUERIES`
    queries."""
    import torch

    return (
        matmul_mode()
        and query.device.type == "cpu"
        and query.dtype == torch.bfloat16
        and mask is not None
        and mask.dim() == 4
        and query.shape[2] >= MIN_QUERIES
    )


def matmul_attention(query: Any, key: Any, value: Any, mask: Any, scale: float) -> Any:
    """Attention by two bf16 products per chunk of queries (module docstring).

    ``query`` (batch, heads, q, dim); ``key``, ``value`` (batch, kv heads, keys, dim) with
    kv heads dividing heads; ``mask`` additive or boolean, (batch or 1, 1 or heads, q,
    keys), or None. Returns (output (batch, heads, q, dim) in the query's dtype, log-sum-exp
    (batch, heads, q) in float32). A row that no key is visible to gets ``-inf`` and a zero
    output under a boolean or ``-inf`` mask; under an additive ``finfo.min`` mask it gets
    what the kernel gives, a log-sum-exp near ``finfo.min`` and the average of the values."""
    import torch

    batch, heads, q, dim = query.shape
    kv, n_keys = key.shape[1], key.shape[2]
    rep = heads // kv
    out = torch.empty((batch, heads, q, value.shape[-1]), dtype=query.dtype)
    lse = torch.empty((batch, heads, q), dtype=torch.float32)
    step = max(1, SCORE_ELEMENTS // (heads * n_keys))
    for b in range(batch):
        qb = query[b].view(kv, rep, q, dim)
        kt = key[b].transpose(-1, -2)
        mb = None if mask is None else mask[b if mask.shape[0] > 1 else 0]
        if mb is not None:
            mb = mb.expand(mb.shape[0], q, n_keys)  # a mask may broadcast over queries
        for c0 in range(0, q, step):
            c1 = min(q, c0 + step)
            s = torch.matmul(qb[:, :, c0:c1].reshape(kv, rep * (c1 - c0), dim), kt)
            s = s.float().mul_(scale).view(kv, rep, c1 - c0, n_keys)
            if mb is not None:
                m = mb[:, c0:c1]
                m = m if m.shape[0] == 1 else m.view(kv, rep, c1 - c0, n_keys)
                if m.dtype == torch.bool:
                    s.masked_fill_(~m, float("-inf"))
                else:
                    s.add_(m.float())
            s = s.view(kv, rep * (c1 - c0), n_keys)
            # torch.softmax, not exp: its exp is several times faster on a CPU
            p = torch.softmax(s, dim=-1)  # NaN in a row that sees no key
            top = s.amax(dim=-1)
            # log-sum-exp = max - log(largest probability), which is 1 / sum exp(s - max)
            rows = top - p.amax(dim=-1).log()
            lse[b, :, c0:c1] = rows.masked_fill_(torch.isneginf(top), float("-inf")).view(
                heads, c1 - c0
            )
            p = p.nan_to_num_(0.0).to(query.dtype)
            o = torch.matmul(p, value[b])
            out[b, :, c0:c1] = o.view(heads, c1 - c0, -1)
    return out, lse


__all__ = [
    "ATTENTION_MODES",
    "attention_mode",
    "attention_products",
    "causal_mask",
    "matmul_attention",
    "matmul_mode",
    "use_matmul",
]
