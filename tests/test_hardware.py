"""CPU feature reading, the slow-bfloat16 warning and float32 products for bfloat16 layers
(the last tests load the real model)."""

from __future__ import annotations

import json
import logging

import pytest

from ld_agents.llm import hardware, product_speed
from ld_agents.llm.hardware import (
    bf16_matmul_mode,
    cpu_info,
    describe_cpu,
    parse_cpuinfo,
    slow_bf16_warning,
)
from ld_envs.errors import InvalidArgument

NO_BF16 = {"cpu_model": "AMD EPYC", "bf16_native": False}

EPYC_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx avx2 fma
processor\t: 1
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx avx2 fma avx512_bf16
"""

XEON_BF16 = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile
"""

ARM = """processor\t: 0
Features\t: fp asimd sve bf16 i8mm
CPU implementer\t: 0x41
"""


def test_parse_cpuinfo_reads_the_first_processor():
    model, flags = parse_cpuinfo(EPYC_AVX2)
    assert model == "AMD EPYC"
    assert "avx2" in flags and "avx512_bf16" not in flags  # the second processor is ignored
    assert parse_cpuinfo(ARM) == (None, frozenset({"fp", "asimd", "sve", "bf16", "i8mm"}))
    assert parse_cpuinfo("") == (None, None)


@pytest.mark.parametrize(
    ("text", "native"), [(EPYC_AVX2, False), (XEON_BF16, True), (ARM, True), ("", None)]
)
def test_cpu_info_says_whether_bf16_is_in_hardware(tmp_path, text, native):
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    info = cpu_info(str(path))
    assert info["bf16_native"] is native
    assert info["cpu_model"]  # falls back to platform names when the file has none


def test_unreadable_cpuinfo_is_unknown_not_an_error(tmp_path):
    assert cpu_info(str(tmp_path / "missing"))["bf16_native"] is None


def test_describe_cpu_reads_old_and_new_records():
    assert describe_cpu(NO_BF16) == "AMD EPYC, no bf16 instructions"
    assert describe_cpu({"cpu_model": "Xeon", "bf16_native": True}) == "Xeon, bf16 in hardware"
    assert describe_cpu({"processor": "x86_64"}) == "x86_64"  # records from before cpu_info


def test_describe_machine_names_cores_and_cpu(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_info", lambda: NO_BF16)
    monkeypatch.setattr(hardware.os, "cpu_count", lambda: 2)
    assert hardware.describe_machine() == "2-core CPU (AMD EPYC, no bf16 instructions)"
    avx2 = {**NO_BF16, "flags": ["avx2", "fma"]}
    monkeypatch.setattr(hardware, "cpu_info", lambda: avx2)
    want = "2-core CPU (AMD EPYC, no bf16 instructions; flags avx2 fma)"
    assert hardware.describe_machine() == want


def test_warning_only_for_bf16_on_a_cpu_without_it(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_info", lambda: NO_BF16)
    text = slow_bf16_warning("bfloat16", "cpu")
    assert "AMD EPYC" in text and "bf16_matmul=auto" in text
    assert slow_bf16_warning("bfloat16", "cpu", "float32") is None
    assert slow_bf16_warning("float32", "cpu") is None
    assert slow_bf16_warning("bfloat16", "cuda") is None
    for native in (True, None):
        monkeypatch.setattr(
            hardware, "cpu_info", lambda n=native: {"cpu_model": "x", "bf16_native": n}
        )
        assert slow_bf16_warning("bfloat16", "cpu") is None


def test_bf16_matmul_auto_measures_unless_the_cpu_lacks_bf16(monkeypatch):
    """No bf16 instructions: float32 products, unmeasured; other CPUs: the measured choice
    (ld_agents.llm.product_speed); GPUs and other dtypes: native; asked-for values kept."""
    measured = {"choice": "native"}  # not consulted on a CPU without bf16
    monkeypatch.setattr(product_speed, "measured_bf16_products", lambda: measured)
    monkeypatch.setattr(hardware, "cpu_info", lambda: NO_BF16)
    assert bf16_matmul_mode("auto", "bfloat16", "cpu") == "float32"
    assert bf16_matmul_mode("auto", "bfloat16", "cuda") == "native"
    assert bf16_matmul_mode("auto", "float32", "cpu") == "native"
    assert bf16_matmul_mode("native", "bfloat16", "cpu") == "native"
    for native in (True, None):
        monkeypatch.setattr(
            hardware, "cpu_info", lambda n=native: {"cpu_model": "x", "bf16_native": n}
        )
        for choice in ("native", "float32"):
            measured["choice"] = choice
            assert bf16_matmul_mode("auto", "bfloat16", "cpu") == choice
            assert bf16_matmul_mode("auto", "bfloat16", "cuda") == "native"
            assert bf16_matmul_mode("native", "bfloat16", "cpu") == "native"
    assert bf16_matmul_mode("float32", "bfloat16", "cpu") == "float32"
    with pytest.raises(InvalidArgument, match="bf16_matmul must be one of auto, float32, native"):
        bf16_matmul_mode("fast", "bfloat16", "cpu")


def test_float32_matmuls_give_the_rounded_float32_product():
    """Changed layers return bf16(x.float() @ W.float().T + b); float32 layers are left."""
    import torch

    from ld_agents.llm.hf import float32_matmuls

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 32), torch.nn.GELU(), torch.nn.Linear(32, 8, bias=False)
    ).to(torch.bfloat16)
    model.append(torch.nn.Linear(8, 4))  # float32: left as it is
    x = torch.randn(5, 64).to(torch.bfloat16)
    first, last = model[0], model[2]
    want = torch.nn.functional.linear(x.float(), first.weight.float(), first.bias.float())
    want = torch.nn.functional.gelu(want.to(torch.bfloat16))
    want = (want.float() @ last.weight.float().T).to(torch.bfloat16)
    assert float32_matmuls(model) == 2
    assert type(first).__name__ == type(last).__name__ == "Float32MatmulLinear"
    assert type(model[3]) is torch.nn.Linear
    assert "weight32" not in model.state_dict() and "0.weight" in model.state_dict()
    with torch.no_grad():
        got = model[:3](x)
    assert got.dtype == torch.bfloat16
    assert torch.equal(got, want)


@pytest.mark.llm
def test_hf_backend_logs_the_warning(monkeypatch, caplog):
    """The real backend, asked for bf16 on a CPU said to lack it, warns once on load."""
    from ld_agents.llm import make_backend

    monkeypatch.setattr(hardware, "cpu_info", lambda: NO_BF16)
    with caplog.at_level(logging.WARNING, logger="ld_agents.llm.hf"):
        backend = make_backend("hf:embedded?dtype=bfloat16&device=cpu&bf16_matmul=native")
    backend.close()
    warned = [r for r in caplog.records if "without bfloat16 instructions" in r.getMessage()]
    assert len(warned) == 1


@pytest.mark.llm
def test_hf_backend_float32_products_keep_the_bf16_models_answers(monkeypatch, caplog):
    """On a CPU said to lack bf16, ``auto`` multiplies in float32 without a warning, and the
    model answers as with torch's own bf16 products: the same greedy text, and scores no
    farther from the float32 model's than the native bf16 path's own.

    How far a bf16 path lands from float32 is a property of the machine (AMX, AVX-512-BF16
    and emulated products round and accumulate differently: 0.10 nats between the two bf16
    paths on an Intel Xeon with AMX, under 0.05 on an AMD EPYC; on an Intel Xeon with
    AVX-512-BF16 and no AMX the native path lands 0.040 from float32 and this one 0.101), so
    the bound is measured here: the native path's largest deviation from float32 on the
    same items, times 3, plus 0.05 nats. A broken float32-product layer (wrong weights, no
    rounding) lands nats away.
    """
    from ld_agents.llm import make_backend
    from ld_agents.llm.base import GenerationRequest

    monkeypatch.setattr(hardware, "cpu_info", lambda: NO_BF16)
    prompt = "The capital of France is"
    request = GenerationRequest(prompt, until=("\n",), max_new_tokens=6)
    scored = [
        (prompt, " Paris"),
        (prompt, " Rome"),
        (prompt, " a city"),
        ("def add(a, b):\n    return", " a + b"),
    ]
    out = {}
    for mode in ("auto", "native", "float32-model"):
        caplog.clear()
        spec = "dtype=float32" if mode == "float32-model" else f"dtype=bfloat16&bf16_matmul={mode}"
        with caplog.at_level(logging.WARNING, logger="ld_agents.llm.hf"):
            backend = make_backend(f"hf:embedded?device=cpu&{spec}")
        if mode != "float32-model":
            assert backend.bf16_matmul == ("float32" if mode == "auto" else "native")
            warned = [r for r in caplog.records if r.name == "ld_agents.llm.hf"]
            assert bool(warned) == (mode == "native")
        out[mode] = backend.generate_until([request]), backend.loglikelihood(scored)
        backend.close()
    assert out["auto"][0] == out["native"][0]
    reference = out["float32-model"][1]

    def deviation(scores: list[float]) -> float:
        return max(abs(a - b) for a, b in zip(scores, reference, strict=True))

    bound = 3 * deviation(out["native"][1]) + 0.05
    assert deviation(out["auto"][1]) <= bound, (out, bound)


@pytest.mark.parametrize(
    ("native", "dtype"), [(True, "bfloat16"), (False, "float32"), (None, "float32")]
)
def test_auto_dtype_takes_bf16_only_where_the_cpu_has_it(monkeypatch, native, dtype):
    """dtype=auto: bfloat16 on a CPU with bfloat16 instructions, float32 on one without
    (emulated products) or with unknown flags; the reason names the case."""
    monkeypatch.setattr(hardware, "cpu_info", lambda: {"cpu_model": "x", "bf16_native": native})
    got, why = hardware.auto_dtype("cpu")
    assert got == dtype
    assert ("with bfloat16" in why) == (native is True)


@pytest.mark.parametrize(
    ("flags", "dtype", "device", "bf16_matmul", "want"),
    [
        (("avx2", "fma"), "float32", "cpu", "native", "transposed"),
        (("avx2", "fma"), "bfloat16", "cpu", "float32", "transposed"),
        (("avx2", "fma"), "bfloat16", "cpu", "native", "linear"),  # bf16 products
        (("avx2", "fma"), "float32", "cuda", "native", "linear"),
        (("avx2", "avx512f", "avx512_bf16"), "float32", "cpu", "native", "linear"),
        ((), "float32", "cpu", "native", "linear"),  # flags unknown
    ],
)
def test_head_auto_is_transposed_only_where_measured(flags, dtype, device, bf16_matmul, want):
    """head=auto: the transposed product for float32 head products on an AVX2 CPU without
    AVX-512 (where it was measured faster), linear elsewhere; explicit values are kept."""
    from ld_agents.llm.float32_products import head_product_mode

    assert head_product_mode("auto", dtype, device, bf16_matmul, flags) == want
    assert head_product_mode("linear", dtype, device, bf16_matmul, flags) == "linear"
    if dtype == "float32" or bf16_matmul == "float32":
        assert head_product_mode("transposed", dtype, device, bf16_matmul, flags) == "transposed"
    else:  # bf16 products: the transposed head has no float32 weight to multiply by
        with pytest.raises(InvalidArgument, match="head=transposed multiplies in float32"):
            head_product_mode("transposed", dtype, device, bf16_matmul, flags)
    with pytest.raises(InvalidArgument, match="head must be one of auto, linear, transposed"):
        head_product_mode("fast", dtype, device, bf16_matmul, flags)


@pytest.mark.parametrize("shape", [(1, 64), (3, 64), (2, 3, 64)])
def test_transposed_logits_are_the_linear_product(shape):
    """(W @ rows.T).T: F.linear's values up to float32 rounding, its shape, contiguous, in
    the hidden states' dtype; a wrong orientation or a lost row would fail."""
    import torch

    from ld_agents.llm.float32_products import transposed_logits

    torch.manual_seed(1)
    weight = torch.randn(1000, 64)
    hidden = torch.randn(*shape)
    want = torch.nn.functional.linear(hidden, weight)
    got = transposed_logits(hidden, weight)
    assert got.shape == want.shape and got.is_contiguous()
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-5)
    half = transposed_logits(hidden.to(torch.bfloat16), weight)
    assert half.dtype == torch.bfloat16
    exact = torch.nn.functional.linear(hidden.to(torch.bfloat16).float(), weight)
    assert torch.allclose(half.float(), exact, rtol=2**-7, atol=1e-3)


def test_head_weight_is_the_float32_weight_of_a_plain_head():
    """The float32 weight (its bf16_matmul copy for a bf16 layer), or None where the
    transposed product does not apply (a bias, a bf16 product, another module)."""
    import torch

    from ld_agents.llm.float32_products import float32_matmuls, head_weight

    plain = torch.nn.Linear(8, 16, bias=False)
    assert head_weight(plain) is plain.weight
    assert head_weight(torch.nn.Linear(8, 16)) is None
    assert head_weight(torch.nn.Embedding(16, 8)) is None
    half = torch.nn.Sequential(torch.nn.Linear(8, 16, bias=False)).to(torch.bfloat16)
    assert head_weight(half[0]) is None
    float32_matmuls(half)
    assert head_weight(half[0]) is half[0].weight32
    assert half[0].weight32.dtype == torch.float32


def test_a_bad_head_option_is_refused_before_loading(monkeypatch):
    """``hf:...?head=`` takes auto, linear or transposed; another value fails with the
    choices named, before any model is loaded."""
    from ld_agents.llm import hf, make_backend

    monkeypatch.setattr(hf, "HFBackend", None)  # loading would fail differently
    with pytest.raises(InvalidArgument, match="head must be one of auto, linear, transposed"):
        make_backend("hf:embedded?head=fast")


@pytest.mark.llm
def test_hf_backend_transposed_head_keeps_answers_and_scores():
    """The real model with ``head=transposed`` and ``head=linear``: the same greedy text
    (drafted and token by token), log-likelihoods within float32 rounding, and the backend
    says which product it uses."""
    from ld_agents.llm import make_backend
    from ld_agents.llm.base import GenerationRequest

    prompts = ["The capital of France is", "A: (1, 2); B: (3, 4); C:", "def add(a, b):\n"]
    requests = [GenerationRequest(p, until=("\n\n",), max_new_tokens=16) for p in prompts]
    scored = [(prompts[0], " Paris"), (prompts[0], " a city"), (prompts[1], " (5, 6)")]
    out = {}
    for head in ("linear", "transposed"):
        backend = make_backend(f"hf:embedded?device=cpu&dtype=float32&head={head}")
        assert backend.head_product == head
        drafted = backend.generate_until(requests)
        backend.draft_tokens = 0
        out[head] = drafted, backend.generate_until(requests), backend.loglikelihood(scored)
        backend.close()
    assert out["linear"][0] == out["transposed"][0] == out["transposed"][1]
    assert out["linear"][1] == out["transposed"][1]
    for a, b in zip(out["linear"][2], out["transposed"][2], strict=True):
        assert abs(a - b) < 1e-4


def test_faster_products_keeps_native_unless_it_is_clearly_slower():
    from ld_agents.llm.product_speed import NATIVE_MARGIN, faster_products

    assert faster_products(1.0, 4.0) == "native"  # AMX-like
    assert faster_products(1.0, 1.0) == "native"  # a tie keeps no float32 copies
    assert faster_products(NATIVE_MARGIN * 0.99, 1.0) == "native"
    assert faster_products(NATIVE_MARGIN * 1.01, 1.0) == "float32"
    assert faster_products(1.5, 1.0) == "float32"  # AVX-512-BF16 without AMX, measured
    with pytest.raises(ValueError, match="positive"):
        faster_products(0.0, 1.0)


def test_measured_bf16_products_measures_once_per_machine(monkeypatch, tmp_path):
    """The real measurement on this CPU: a choice that follows its own timings, cached in
    the project's cache folder and read back (not measured again); a damaged cache file or
    another machine's key is measured again."""
    monkeypatch.setenv("LD_GYM_CACHE", str(tmp_path))
    record = product_speed.measured_bf16_products()
    assert record["native_s"] > 0 and record["float32_s"] > 0
    assert record["choice"] == product_speed.faster_products(
        record["native_s"], record["float32_s"]
    )
    assert record["key"] == product_speed.machine_key()
    (path,) = (tmp_path / "hardware").glob("bf16-products-*.json")
    calls = []
    slow_native = {"native_s": 3.0, "float32_s": 1.0}
    monkeypatch.setattr(product_speed, "time_products", lambda: calls.append(1) or slow_native)
    assert product_speed.measured_bf16_products() == record  # read back, not measured
    assert calls == []
    path.write_text("{not json")
    assert product_speed.measured_bf16_products()["choice"] == "float32"
    assert calls == [1]
    stale = dict(record, key=dict(record["key"], torch="0.0"))
    path.write_text(json.dumps(stale))
    assert product_speed.measured_bf16_products()["key"] == product_speed.machine_key()
    assert calls == [1, 1]


def test_time_products_paths_compute_the_same_layer():
    """The float32 path timed is the one float32_matmuls installs: its output equals a
    native bf16 product within one bf16 rounding."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(1)
    w = torch.randn(product_speed.WEIGHT, generator=gen).bfloat16()
    x = torch.randn(8, product_speed.WEIGHT[1], generator=gen).bfloat16()
    layer = torch.nn.Linear(*reversed(product_speed.WEIGHT), bias=False).bfloat16()
    layer.weight.data.copy_(w)
    from ld_agents.llm.float32_products import float32_matmuls

    assert float32_matmuls(layer) == 1
    exact = F.linear(x.float(), w.float())
    out = layer(x).float()
    assert torch.allclose(out, exact.bfloat16().float())
    assert (F.linear(x, w).float() - exact).abs().max() <= 2**-7 * exact.abs().max()


def test_time_products_stops_early_when_native_is_far_slower(monkeypatch):
    """A clock under which each native call costs 100 units and each float32 call 1: the
    measurement stops after one repeat of the first rows (as for emulated bf16) and still
    reports the two paths' times per call."""
    import torch.nn.functional as F

    clock = [0.0]
    real_linear = F.linear

    def linear(x, w, b=None):
        clock[0] += 1.0 if x.dtype.is_floating_point and x.element_size() == 4 else 100.0
        return real_linear(x, w, b)

    monkeypatch.setattr(F, "linear", linear)
    out = product_speed.time_products(timer=lambda: clock[0])
    assert out == {"native_s": 100.0, "float32_s": 1.0}
    assert clock[0] == product_speed.CALLS * 101.0  # one repeat, one row count
    assert product_speed.faster_products(**out) == "float32"
