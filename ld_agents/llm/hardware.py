"""What this CPU computes fast: its model name and whether it has bfloat16 instructions.

Why it matters: the KD and LD students (and the sweeps' raw rows) run in bfloat16. On a
CPU with bfloat16 instructions (x86 ``avx512_bf16`` or ``amx_bf16``, Arm ``bf16``) that is
usually 2-4x faster than float32 (not always: an Intel Xeon with ``avx512_bf16`` and no AMX
exposed was slower in bfloat16, so there the choice is measured, see
:mod:`ld_agents.llm.product_speed`); on one without them torch emulates bfloat16 and can be far
slower than float32. Measured on a 2-core AMD EPYC with AVX2 only (torch 2.13.0 CPU,
1024x1024 ``torch.mm``): 0.9 GFLOP/s in bfloat16 against 139 GFLOP/s in float32; the KD
pursuit student took 6.3 s per decision in bfloat16 there and 2.1 s in float32, against
0.6 s in bfloat16 on a CPU with ``avx512_bf16``.

What the slow part is: only the matrix products. A bfloat16 product on a CPU with bfloat16
instructions multiplies bfloat16 inputs, accumulates in float32 and rounds the result to
bfloat16; the same numbers come out of a float32 product of the (exactly widened) bfloat16
inputs rounded back to bfloat16. So on such a CPU the HF backend (option
``bf16_matmul=auto``, see :func:`bf16_matmul_mode`) runs its bfloat16 linear layers that
way: the model stays bfloat16 (weights, activations, key-value cache, every other op) and
runs at float32 speed. Measured there: the KD pursuit student, 8 decisions, 51.6 s with
torch's emulated products and 19.5 s this way, with the same 8 answers. What may still
differ is what differs between any two machines' bfloat16 kernels (summation order,
rounding inside the hardware), which greedy decoding can turn into another move at a
near-tie, so bfloat16 episodes are reproducible on one machine, not bit for bit across
machines. With ``bf16_matmul=native`` the backend uses torch's products as they are and
warns that they are slow.

The benchmarks record :func:`cpu_info` beside their wall times.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path
from typing import Any

from ld_envs.errors import InvalidArgument

#: /proc/cpuinfo flags that mean bfloat16 arithmetic in hardware (x86, then Arm)
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def parse_cpuinfo(text: str) -> tuple[str | None, frozenset[str] | None]:
    """The model name and the feature flags of the first processor in ``/proc/cpuinfo``
    text (``None`` for what it does not say)."""
    model = flags = None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if model is None and key in ("model name", "cpu model"):
            model = value.strip() or None
        elif flags is None and key in ("flags", "features"):
            flags = frozenset(value.split())
        if model is not None and flags is not None:
            break
    return model, flags


#: the CPU flags that change a code path or a speed here (recorded beside every timing)
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")


@functools.cache
def cpu_info(cpuinfo: str = "/proc/cpuinfo") -> dict[str, Any]:
    """``{"cpu_model": str, "bf16_native": bool | None, "flags": [...]}`` for this machine
    (``bf16_native`` ``None``: the flags could not be read, e.g. not Linux; ``flags``: the
    :data:`SPEED_FLAGS` it has)."""
    try:
        model, flags = parse_cpuinfo(Path(cpuinfo).read_text(errors="replace"))
    except OSError:
        model, flags = None, None
    return {
        "cpu_model": model or platform.processor() or platform.machine(),
        "bf16_native": bool(flags & BF16_FLAGS) if flags is not None else None,
        "flags": [f for f in SPEED_FLAGS if flags and f in flags],
    }


def describe_cpu(info: dict[str, Any]) -> str:
    """``"AMD EPYC, no bf16 instructions"``: a :func:`cpu_info` record in words (a record
    without ``cpu_model`` may give ``processor`` instead)."""
    words = str(info.get("cpu_model") or info.get("processor") or "unknown CPU")
    native = info.get("bf16_native")
    if native is not None:
        words += ", bf16 in hardware" if native else ", no bf16 instructions"
    return words


def describe_machine() -> str:
    """``"2-core CPU (AMD EPYC, no bf16 instructions; flags avx2 fma)"``: this machine, for
    result files (the flags: those of :data:`SPEED_FLAGS` it has)."""
    info = cpu_info()
    flags = info.get("flags")
    tail = f"; flags {' '.join(flags)}" if flags else ""
    return f"{os.cpu_count()}-core CPU ({describe_cpu(info)}{tail})"


#: values of the HF backend's ``bf16_matmul`` option
BF16_MATMUL_MODES = ("auto", "float32", "native")


def _emulated_bf16(dtype: str, device: str) -> bool:
    """Whether ``dtype`` on ``device`` is bfloat16 on a CPU known to lack its instructions."""
    return dtype == "bfloat16" and device == "cpu" and cpu_info()["bf16_native"] is False


def bf16_matmul_mode(requested: str, dtype: str, device: str) -> str:
    """How bfloat16 linear layers multiply: ``"float32"`` (widened inputs, float32 product,
    result rounded to bfloat16) or ``"native"`` (torch's own bfloat16 product).

    ``requested="auto"`` gives ``"float32"`` for bfloat16 on a CPU known to lack bfloat16
    instructions; on any other CPU it measures which is faster (bfloat16 instructions are
    not always the fast path: ``ld_agents.llm.product_speed``, cached per machine);
    elsewhere (GPUs, other dtypes) it gives ``"native"``.
    """
    if requested not in BF16_MATMUL_MODES:
        raise InvalidArgument(
            f"bf16_matmul must be one of {', '.join(BF16_MATMUL_MODES)}, got {requested!r}"
        )
    if dtype != "bfloat16":
        return "native"
    if requested != "auto":
        return requested
    if device != "cpu":
        return "native"
    if _emulated_bf16(dtype, device):
        return "float32"
    from ld_agents.llm.product_speed import measured_bf16_products

    return measured_bf16_products()["choice"]


def auto_dtype(device: str) -> tuple[str, str]:
    """The fastest dtype that stays exact enough on ``device``, and why: bfloat16 on a CUDA
    device that has it and on a CPU with bfloat16 instructions (AMX or AVX-512-BF16);
    float32 on other CPUs (bfloat16 products are emulated there, and float32 is as fast).
    The ``hf`` backend's ``dtype=auto``."""
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_bf16_supported():
            return "bfloat16", "CUDA with bfloat16"
        return "float32", "CUDA without bfloat16"
    native = cpu_info()["bf16_native"]
    if native:
        return "bfloat16", "CPU with bfloat16 instructions (AMX or AVX-512-BF16)"
    if native is False:
        return "float32", "CPU without bfloat16 instructions (products would be emulated)"
    return "float32", "CPU flags unknown"


def slow_bf16_warning(dtype: str, device: str, matmul: str = "native") -> str | None:
    """The warning to give for ``dtype`` on ``device`` with bfloat16 products done the
    ``matmul`` way (see :func:`bf16_matmul_mode`), or ``None`` when there is none."""
    if matmul != "native" or not _emulated_bf16(dtype, device):
        return None
    return (
        f"dtype=bfloat16 with bf16_matmul=native on a CPU without bfloat16 instructions "
        f"({cpu_info()['cpu_model']}; no avx512_bf16/amx_bf16): torch emulates the products "
        "and they can be many times slower than float32 (see ld_agents/llm/hardware.py); "
        "bf16_matmul=auto computes them in float32 and rounds them to bfloat16, as bfloat16 "
        "hardware does."
    )


__all__ = [
    "BF16_FLAGS",
    "BF16_MATMUL_MODES",
    "auto_dtype",
    "bf16_matmul_mode",
    "cpu_info",
    "describe_cpu",
    "describe_machine",
    "parse_cpuinfo",
    "slow_bf16_warning",
]
