"""CPU feature reading and the slow-bfloat16 warning (the last test loads the real model)."""

from __future__ import annotations

import logging

import pytest

from ld_agents.llm import hardware
from ld_agents.llm.hardware import cpu_info, describe_cpu, parse_cpuinfo, slow_bf16_warning

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


def test_warning_only_for_bf16_on_a_cpu_without_it(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_info", lambda: NO_BF16)
    text = slow_bf16_warning("bfloat16", "cpu")
    assert "AMD EPYC" in text and "dtype=float32" in text
    assert slow_bf16_warning("float32", "cpu") is None
    assert slow_bf16_warning("bfloat16", "cuda") is None
    for native in (True, None):
        monkeypatch.setattr(
            hardware, "cpu_info", lambda n=native: {"cpu_model": "x", "bf16_native": n}
        )
        assert slow_bf16_warning("bfloat16", "cpu") is None


@pytest.mark.llm
def test_hf_backend_logs_the_warning(monkeypatch, caplog):
    """The real backend, asked for bf16 on a CPU said to lack it, warns once on load."""
    from ld_agents.llm import make_backend

    monkeypatch.setattr(hardware, "cpu_info", lambda: NO_BF16)
    with caplog.at_level(logging.WARNING, logger="ld_agents.llm.hf"):
        backend = make_backend("hf:embedded?dtype=bfloat16&device=cpu")
    backend.close()
    warned = [r for r in caplog.records if "without bfloat16 instructions" in r.getMessage()]
    assert len(warned) == 1
