"""Which bfloat16 product is faster on this CPU: torch's own, or float32 rounded to bf16.

Having bfloat16 instructions does not make them the fast path. Measured with torch 2.13.0
on 2 threads, ``F.linear`` of 450 x 640 rows by a 2048 x 640 weight:

- Intel Xeon with AMX-BF16 (2026-12-05): bfloat16 1,677 GFLOP/s against 436 in float32;
- AMD EPYC with AVX-512-BF16 (2026-11): bfloat16 ~430-900 against ~200;
- Intel Xeon (model 207) with AVX-512-BF16 whose AMX is not exposed (no ``amx_*`` flags;
  2026-12-07): oneDNN's ``brg_matmul:avx512_core_bf16`` gives 117-149 GFLOP/s against
  167-233 in float32. There the LD student took 320 ms per decision with float32 products
  against 425-502 with native ones, and KD 1,185 against 1,365 ms, with the same choices.

Flags alone cannot tell the last case from the second, so the HF backend's
``bf16_matmul=auto`` on a CPU with bfloat16 instructions measures it
(:func:`measured_bf16_products`): both paths of a bfloat16 linear layer, on a
2048 x 640 weight at 32 and 256 rows (a decoding step and a prefill), interleaved, the
best of several repeats. :func:`faster_products` picks ``float32`` when the native path
takes more than :data:`NATIVE_MARGIN` times as long (the float32 path keeps a float32 copy
of every weight, so a tie goes to native). The result is cached per machine (CPU model,
its speed flags, torch version and threads) in ``cache_dir()/hardware/``, so the choice is
measured once and stays the same from run to run; delete the file to measure again. It
takes about 0.2 s.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

#: the measured shape: rows (a decoding step, a prefill) by a (out, in) weight
ROWS = (32, 256)
WEIGHT = (2048, 640)
#: native products are kept unless they take more than this times the float32 path's time
NATIVE_MARGIN = 1.1
#: interleaved repeats; each repeat times CALLS calls of each path, the best repeat counts
REPEATS = 5
CALLS = 3
#: the measurement stops early once native takes this many times as long (emulated bf16
#: products, about 150x slower on an AVX2-only CPU, would otherwise take seconds)
CLEAR_RATIO = 4.0


def faster_products(native_s: float, float32_s: float) -> str:
    """``"native"`` or ``"float32"``: which bf16 product to use, given the two paths'
    seconds (native is kept unless it is more than :data:`NATIVE_MARGIN` times slower)."""
    if native_s <= 0 or float32_s <= 0:
        raise ValueError(f"timings must be positive, got {native_s} and {float32_s}")
    return "float32" if native_s > NATIVE_MARGIN * float32_s else "native"


def time_products(timer: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Seconds per call, summed over :data:`ROWS`, of a bfloat16 linear layer done natively
    and as ``bf16(x.float() @ W.float().T)`` (the float32 path of
    ``ld_agents.llm.float32_products``, installed by its ``float32_matmuls``):
    ``{"native_s": ..., "float32_s": ...}`` (those of
    the first rows alone when native is more than :data:`CLEAR_RATIO` times slower)."""
    import torch

    from ld_agents.llm.float32_products import float32_matmuls

    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(WEIGHT, generator=gen).bfloat16()
    paths = {}
    for key in ("native_s", "float32_s"):
        layer = torch.nn.Linear(WEIGHT[1], WEIGHT[0], bias=False, dtype=torch.bfloat16)
        layer.weight.data.copy_(weight)
        paths[key] = layer.requires_grad_(False)
    float32_matmuls(paths["float32_s"])  # the layer the backend would run
    total = dict.fromkeys(paths, 0.0)
    for rows in ROWS:
        x = torch.randn(rows, WEIGHT[1], generator=gen).bfloat16()
        best = dict.fromkeys(paths, float("inf"))
        for _ in range(REPEATS + 1):  # the first repeat also warms up
            for key, path in paths.items():
                t0 = timer()
                for _ in range(CALLS):
                    path(x)
                best[key] = min(best[key], (timer() - t0) / CALLS)
            if best["native_s"] > CLEAR_RATIO * best["float32_s"]:
                return best  # far apart: more repeats would not change the choice
        for key in paths:
            total[key] += best[key]
    return total


def machine_key() -> dict[str, Any]:
    """What the measurement depends on: CPU model and speed flags, torch, threads."""
    import torch

    from ld_agents.llm.hardware import cpu_info

    info = cpu_info()
    return {
        "cpu_model": info["cpu_model"],
        "flags": info["flags"],
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def measured_bf16_products() -> dict[str, Any]:
    """This machine's measurement and choice (``{"choice": "native" | "float32",
    "native_s", "float32_s", "key": machine_key()}``), from the cache if it was measured
    before, else measured now (under a lock, so that a sweep's workers measure once)."""
    from ld_agents.files import write_json_atomic
    from ld_agents.llm.embedded import cache_dir, file_lock

    key = machine_key()
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / "hardware" / f"bf16-products-{digest}.json"
    with file_lock(path.stem):
        try:
            record = json.loads(path.read_text())
            if record.get("key") == key and record.get("choice") in ("native", "float32"):
                return record
        except (OSError, ValueError):
            pass
        timings = time_products()
        record = {
            **timings,
            "choice": faster_products(timings["native_s"], timings["float32_s"]),
            "key": key,
            "margin": NATIVE_MARGIN,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, record)
    logger.info(
        "bf16 products measured on this CPU: native %.2f ms, float32 %.2f ms -> %s (cached in %s)",
        1e3 * record["native_s"],
        1e3 * record["float32_s"],
        record["choice"],
        path,
    )
    return record


__all__ = [
    "NATIVE_MARGIN",
    "faster_products",
    "machine_key",
    "measured_bf16_products",
    "time_products",
]
