"""bfloat16 linear layers that multiply in float32: the HF backend's ``bf16_matmul=float32``.

:func:`float32_matmuls` swaps a model's bfloat16 ``torch.nn.Linear`` layers for ones that
compute ``bf16(x.float() @ W.float().T)``: the numbers a CPU with bfloat16 instructions
gives, at float32 speed on a CPU without them (see :mod:`ld_agents.llm.hardware`).
"""

from __future__ import annotations

import functools
from typing import Any


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


__all__ = ["float32_matmuls"]
