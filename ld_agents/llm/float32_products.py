"""float32 products on a CPU: the HF backend's ``bf16_matmul=float32`` and ``head`` options.

:func:`float32_matmuls` swaps a model's bfloat16 ``torch.nn.Linear`` layers for ones that
compute ``bf16(x.float() @ W.float().T)``: the numbers a CPU with bfloat16 instructions
gives, at float32 speed on a CPU without them (see :mod:`ld_agents.llm.hardware`).

:func:`transposed_logits` computes the output layer (262k x 640 for Gemma-3) on a few rows
as ``(W @ rows.T).T`` instead of ``rows @ W.T``: the same float32 product (up to the order
of its sums) through another BLAS call. On a 2-core AMD EPYC with AVX2 only (torch 2.13.0,
float32, the embedded model's head alone, 2 threads) ``F.linear`` took 104-146 ms on 2-4
rows, 163 on 8, 180 on 24 and 281 on 48; this way 33-49, 56-67, 99-116 and 153-172. On one
row both read the whole weight once (50-57 ms); a second, zero row lets the faster call run
(38-41 ms). End to end, ``python -m benchmarks.studies.same_results --compare head`` plays
the same decisions both ways (``benchmarks/results/same_results/head_avx2``). It is the
``head=auto`` choice where that was measured (float32 products on a CPU with AVX2 and without
AVX-512, :func:`head_product_mode`); elsewhere ``F.linear`` stays until measured there (on
an Intel Xeon with AVX-512-BF16 and float32 products it was measured and did not help).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from ld_envs.errors import InvalidArgument

#: values of the HF backend's ``head`` option (how the output layer multiplies)
HEAD_PRODUCTS = ("auto", "linear", "transposed")


def float32_matmuls(model: Any) -> int:
    """Make ``model``'s bfloat16 linear layers compute ``bf16(x.float() @ W.float().T)``
    (a float32 copy of each weight is kept); return how many were changed.

    This is what a bfloat16 product does on hardware with bfloat16 instructions (exact
    products, float32 accumulation, one rounding), so outputs stay those of the bfloat16
    model; on a CPU without such instructions it runs at float32 speed instead of torch's
    emulation (see :mod:`ld_agents.llm.hardware`). Call it last, on a model for inference:
    the float32 copies are taken now, so later changes to the weights (loading, merging,
    training) are not seen.
    """
    import torch

    cls = _linear_class()
    n = 0
    for module in model.modules():
        if type(module) is torch.nn.Linear and module.weight.dtype == torch.bfloat16:
            module.__class__ = cls
            # buffers (not saved): they follow .to(device); the weights are not read again
            module.register_buffer("weight32", module.weight.detach().float(), persistent=False)
            bias = None if module.bias is None else module.bias.detach().float()
            module.register_buffer("bias32", bias, persistent=False)
            n += 1
    return n


def _float32_matmul_forward(self: Any, x: Any) -> Any:
    import torch.nn.functional as F

    return F.linear(x.float(), self.weight32, self.bias32).to(x.dtype)


@functools.cache
def _linear_class() -> type:
    import torch

    return type(
        "Float32MatmulLinear",
        (torch.nn.Linear,),
        {"forward": _float32_matmul_forward, "__doc__": "bfloat16 Linear, float32 product."},
    )


def head_product_mode(
    requested: str, dtype: str, device: str, bf16_matmul: str, flags: Sequence[str]
) -> str:
    """``linear`` or ``transposed`` (:func:`transposed_logits`) for a ``head`` option value.

    ``auto`` is ``transposed`` where it was measured faster: a CPU ``device`` whose head
    multiplies in float32 (``dtype`` float32, or ``bf16_matmul`` float32) and whose
    ``flags`` (``hardware.cpu_info()["flags"]``) have ``avx2`` but not ``avx512f``;
    ``linear`` elsewhere (GPUs, bfloat16 products, other CPUs: not measured there).
    ``transposed`` asked for without float32 products is refused.
    """
    if requested not in HEAD_PRODUCTS:
        raise InvalidArgument(f"head must be one of {', '.join(HEAD_PRODUCTS)}, got {requested!r}")
    float32 = dtype == "float32" or (dtype == "bfloat16" and bf16_matmul == "float32")
    if requested == "transposed" and not float32:
        raise InvalidArgument(
            "head=transposed multiplies in float32: it needs dtype=float32, or dtype=bfloat16 "
            f"with float32 products (bf16_matmul=float32); got dtype={dtype} with "
            f"{bf16_matmul} products"
        )
    if requested != "auto":
        return requested
    avx2_only = "avx2" in flags and "avx512f" not in flags
    return "transposed" if device == "cpu" and float32 and avx2_only else "linear"


def head_weight(head: Any) -> Any:
    """The float32 weight a bias-free linear output layer multiplies by (its
    ``bf16_matmul`` copy, or its own float32 weight), or ``None`` for any other layer."""
    import torch

    if not isinstance(head, torch.nn.Linear) or head.bias is not None:
        return None
    weight = getattr(head, "weight32", head.weight)
    return weight if weight.dtype == torch.float32 else None


def transposed_logits(hidden: Any, weight: Any) -> Any:
    """``hidden @ weight.T`` ([..., d] x [V, d] -> [..., V], in ``hidden``'s dtype) computed
    in float32 as ``(weight @ rows.T).T`` (a zero row added to a single row), contiguous."""
    import torch

    rows = hidden.reshape(-1, hidden.shape[-1]).to(weight.dtype)
    single = rows.shape[0] == 1
    if single:
        rows = torch.cat([rows, torch.zeros_like(rows)])
    out = (weight @ rows.T).T
    if single:
        out = out[:1]
    return out.contiguous().reshape(*hidden.shape[:-1], weight.shape[0]).to(hidden.dtype)


__all__ = [
    "HEAD_PRODUCTS",
    "float32_matmuls",
    "head_product_mode",
    "head_weight",
    "transposed_logits",
]
