"""The transformers backend on the real embedded Gemma-3-270M (no mocks)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from ld_agents.errors import BackendError
from ld_agents.llm import make_backend
from ld_agents.llm.base import GenerationRequest
from ld_envs.errors import InvalidArgument, UnknownKeyword, UnknownName

pytestmark = pytest.mark.llm

RULES = (
    "You command three pursuers, A, B and C, on a 21 x 21 board. A cell is written (x, y). "
    "Each pursuer moves to a cell at Manhattan distance at most 2 from its own cell.\n"
)
CELLS = [" (13, 8)", " (14, 8)", " (12, 8)", " (13, 9)", " (13, 7)", " (15, 8)", " (9, 10)"]


def state(i: int) -> str:
    return f"State {i}: the evader is at ({i}, 3); A is at (13, 8).\nPursuer A moves to"


@pytest.fixture(scope="module")
def backend():
    """The embedded model in float32, loaded once for the module."""
    b = make_backend("hf:embedded")
    yield b
    b.close()


def test_first_build_from_gguf_and_cached_reload(tmp_path, monkeypatch):
    """A fresh cache builds the folder from the GGUF once; later loads reuse it quickly."""
    from ld_agents.llm import embedded

    shared = embedded.embedded_gguf_path()  # the assembled GGUF: copy it, skip the assembly
    monkeypatch.setenv("LD_GYM_CACHE", str(tmp_path))
    (tmp_path / "gguf").mkdir()
    shutil.copy(shared, tmp_path / "gguf" / embedded.EMBEDDED_GGUF_NAME)
    t0 = time.perf_counter()
    folder = embedded.embedded_model_dir()
    first = time.perf_counter() - t0
    assert folder.parent == tmp_path / "models"
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
    marker = json.loads((folder / embedded.BUILD_MARKER).read_text())
    assert marker["sha256"].startswith(folder.name.rsplit("-", 1)[1])
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp left
    t0 = time.perf_counter()
    b = make_backend(f"hf:{folder}")
    again = time.perf_counter() - t0
    assert embedded.embedded_model_dir() == folder
    assert again < first
    assert b.loglikelihood([("The capital of France is", " Paris")])[0] > -10
    b.close()


def test_gguf_target_uses_the_dequantized_cache(monkeypatch, tmp_path):
    """hf:/path/file.gguf resolves to the folder cached under the file's hash."""
    from ld_agents.llm import embedded
    from ld_agents.llm.models import resolve_model

    gguf = embedded.embedded_gguf_path()
    folder = embedded.embedded_model_dir()
    assert resolve_model(str(gguf)) == folder  # same content hash, same folder


def test_scores_agree_across_methods(backend):
    """naive, keep, batch and cached scoring agree within 1e-4 (float32)."""
    reqs = [(RULES + state(1), c) for c in CELLS[:4]] + [(RULES + state(2), c) for c in CELLS[4:6]]
    backend.clear_prefix_cache()
    ref = backend.loglikelihood(reqs, method="naive")
    for method in ("keep", "batch", "cached"):
        backend.clear_prefix_cache()
        got = backend.loglikelihood(reqs, method=method)
        assert max(abs(a - b) for a, b in zip(got, ref, strict=True)) < 1e-4, method


def test_cached_prefix_reuse_is_exact(backend):
    """A pinned static prefix reused across decisions gives the naive scores."""
    backend.clear_prefix_cache()
    n = backend.cache_prefix(RULES)
    assert n > 10
    reused_before = backend.stats.extra.get("prefix_tokens_reused", 0)
    for i in (3, 4):
        reqs = [(RULES + state(i), c) for c in CELLS]
        got = backend.loglikelihood(reqs)
        ref = backend.loglikelihood(reqs, method="batch")  # checked against naive above
        assert max(abs(a - b) for a, b in zip(got, ref, strict=True)) < 1e-4
    assert backend.stats.extra["prefix_tokens_reused"] - reused_before >= 2 * (n - 1)


def test_long_context_past_the_sliding_window(backend):
    """Prefix reuse stays exact past the 512-token sliding window."""
    backend.clear_prefix_cache()
    long_rules = RULES * 14  # about 600 tokens
    backend.cache_prefix(long_rules)
    reqs = [(long_rules + state(5), c) for c in CELLS[:3]]
    got = backend.loglikelihood(reqs)
    ref = backend.loglikelihood(reqs, method="batch")
    assert max(abs(a - b) for a, b in zip(got, ref, strict=True)) < 1e-4


def test_label_token_choice_is_one_forward(backend):
    """Single-token labels: one context forward, scores equal to naive scoring."""
    ctx = RULES + "Options: a (13, 8); b (14, 8); c (12, 8).\nThe best option is"
    labels = [" a", " b", " c"]
    backend.clear_prefix_cache()
    passes = backend.stats.forward_passes
    got = backend.choice_logprobs(ctx, labels)
    assert backend.stats.forward_passes - passes == 1
    ref = backend.loglikelihood([(ctx, lab) for lab in labels], method="naive")
    assert max(abs(a - b) for a, b in zip(got, ref, strict=True)) < 1e-4


def test_label_choices_batched_over_contexts_match_one_by_one(backend):
    """Many contexts (some sharing the pinned rules, tails of different lengths, one
    without the rules): the batched label scores equal one-at-a-time scoring, in order,
    in one forward per cached-prefix group."""
    labels = [" a", " b", " c"]
    tail = "Options: a (13, 8); b (14, 8); c (12, 8).\nThe best option is"
    contexts = [RULES + state(i) * (1 + i % 3) + tail for i in range(5)] + [state(9) + tail]
    backend.clear_prefix_cache()
    backend.cache_prefix(RULES)
    backend.choice_logprobs_batch(contexts[:1], labels)  # the first use checks the tree path
    passes = backend.stats.forward_passes
    got = backend.choice_logprobs_batch(contexts, labels)
    assert backend.stats.forward_passes - passes == 2  # the rules group + the other one
    ref = [backend.choice_logprobs(c, labels) for c in contexts]
    assert len(got) == len(contexts)
    for g, r in zip(got, ref, strict=True):
        assert max(abs(a - b) for a, b in zip(g, r, strict=True)) < 1e-4
    assert len({tuple(round(x, 3) for x in g) for g in got}) > 1  # contexts differ
    # options longer than one token fall back to the exact per-context path
    longer = backend.choice_logprobs_batch(contexts[:2], CELLS[:2])
    assert longer == [backend.choice_logprobs(c, CELLS[:2]) for c in contexts[:2]]


def test_token_trees_split_over_forwards_stay_exact(backend):
    """Rows packed into several token trees (a small node limit) give the same hidden
    states as one padded batch, also where a later tree's rows share prefixes with rows
    of an earlier tree only."""
    import torch

    backend.clear_prefix_cache()
    backend.cache_prefix(RULES)
    state_ = backend._prefill(backend._encode([RULES])[0])
    rows = [
        tuple(backend._encode([RULES + state(i) + tail])[0][state_.n_tokens :])
        for i in (1, 2, 11, 12, 21)
        for tail in (" x", " y")
    ]
    ref = backend._batched_hidden(state_, rows)
    with torch.inference_mode():
        split = backend._tree_hidden(state_, rows, max_nodes=len(rows[0]) + 3)
    tol = 1e-4 if backend.dtype.itemsize >= 4 else 5e-2
    for r in rows:
        scale = max(1.0, float(ref[r].float().abs().max()))
        assert float((split[r].float() - ref[r].float()).abs().max()) < tol * scale


def test_results_in_request_order(backend):
    """Interleaved contexts come back in the order asked."""
    reqs = [
        (RULES + state(6), CELLS[0]),
        (RULES + state(7), CELLS[1]),
        (RULES + state(6), CELLS[2]),
    ]
    mixed = backend.loglikelihood(reqs)
    single = [backend.loglikelihood([r])[0] for r in reqs]
    assert max(abs(a - b) for a, b in zip(mixed, single, strict=True)) < 1e-4
    assert backend.loglikelihood([]) == []


def test_token_boundary_and_empty_continuation(backend):
    """A trailing space in the context and an empty continuation are handled."""
    a = backend.loglikelihood([("The sky is", " blue")], method="naive")[0]
    b = backend.loglikelihood([("The sky is ", "blue")])[0]
    assert abs(a - b) < 1e-4  # same tokens: the space joins the continuation's first token
    assert backend.loglikelihood([("The sky is", "")]) == [0.0]


def test_generation_stops_and_limits(backend):
    """Stop strings end generation (excluded); max_new_tokens bounds it; order is kept."""
    reqs = [
        GenerationRequest("def fibonacci(n):", until=("\n",), max_new_tokens=40),
        GenerationRequest("1, 2, 3, 4, 5,", max_new_tokens=5),
        GenerationRequest("The capital of France is", until=(" Paris",), max_new_tokens=20),
    ]
    out = backend.generate_until(reqs)
    assert "\n" not in out[0]
    assert len(backend.tokenizer(out[1], add_special_tokens=False)["input_ids"]) <= 5
    assert out[1].startswith(" 6")
    assert "Paris" not in out[2]
    alone = backend.generate_until([reqs[1]])
    assert alone == [out[1]]


def test_generation_is_deterministic(backend):
    """Greedy generation returns the same text twice, batched or not."""
    prompts = [GenerationRequest(RULES + state(i) + " (", (")",), 6) for i in range(3)]
    first = backend.generate_until(prompts)
    backend.clear_prefix_cache()
    assert backend.generate_until(prompts) == first
    assert backend.generate_until(prompts[2:3]) == first[2:3]


def test_prime_leaves_the_prefix_store_as_generation_does(backend):
    """``prime`` fills the prefix store with the same states, bit for bit, as
    ``generate_until`` on the same requests, so a generation after a primed replay (a
    resumed rollout's journal) equals the one after the live calls."""
    import torch

    first = [GenerationRequest(RULES + state(i) + " (", (")",), 4) for i in range(3)]
    then = [GenerationRequest(RULES + state(i) + " B is at (2, 2). (", (")",), 6) for i in (1, 7)]

    def stored() -> dict:
        return {k: v.keys + v.values for k, v in backend._store._entries.items()}

    backend.clear_prefix_cache()
    backend.generate_until(first)
    live_store = stored()
    live = backend.generate_until(then)
    backend.clear_prefix_cache()
    backend.prime(first)
    primed_store = stored()
    assert live_store and list(primed_store) == list(live_store)
    for key, tensors in live_store.items():
        assert all(torch.equal(a, b) for a, b in zip(tensors, primed_store[key], strict=True))
    assert backend.generate_until(then) == live


def test_lora_adapter_changes_scores(tmp_path, backend):
    """A random peft LoRA adapter loads on top of the model and moves its scores; the two
    backends share the base folder's tokenizer (loaded once per process)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(backend.model_dir))
    torch.manual_seed(0)
    peft_model = get_peft_model(
        base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(str(adapter))
    del peft_model, base
    tuned = make_backend(f"hf:embedded?adapter={adapter}")
    req = [("The capital of France is", " Paris")]
    assert tuned.adapter == str(adapter)
    assert tuned.tokenizer is backend.tokenizer
    assert abs(tuned.loglikelihood(req)[0] - backend.loglikelihood(req)[0]) > 1e-3
    tuned.close()


def test_bfloat16_option_close_to_float32(backend):
    """dtype=bfloat16 loads and picks the same top cell as float32."""
    bf = make_backend("hf:embedded?dtype=bfloat16")
    reqs = [(RULES + state(8), c) for c in CELLS]
    a, b = bf.loglikelihood(reqs), backend.loglikelihood(reqs)
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1.0
    assert a.index(max(a)) == b.index(max(b))
    bf.close()


def test_stats_count_work(backend):
    """Counters grow with forward passes, tokens and time."""
    before = backend.stats.snapshot()
    backend.loglikelihood([("Hello there", " friend")], method="naive")
    after = backend.stats.snapshot()
    assert after["forward_passes"] == before["forward_passes"] + 1
    assert after["tokens_processed"] > before["tokens_processed"]
    assert after["seconds"] > before["seconds"]


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("hf:no-such-model", InvalidArgument, "unknown hf target"),
        ("hf:/no/such/folder", InvalidArgument, "does not exist"),
        ("hf:/no/such/model.gguf", InvalidArgument, "does not exist"),
        ("hf:embedded?colour=red", UnknownKeyword, "takes no option .colour."),
        ("hf:embedded?dtype=int3", InvalidArgument, "dtype"),
        ("nosuch:thing", UnknownName, "known"),
    ],
)
def test_clear_errors_for_bad_specs(spec, error, match):
    """Bad specs fail before loading, naming what is wrong."""
    with pytest.raises(error, match=match):
        make_backend(spec)


def test_prompt_longer_than_context(backend, monkeypatch):
    """A prompt past the model's context fails, saying both lengths."""
    monkeypatch.setattr(backend, "max_length", 50)
    with pytest.raises(BackendError, match=r"\d+ tokens long.*context of 50 tokens"):
        backend.loglikelihood([(RULES, " (1, 2)")])
    with pytest.raises(BackendError, match="context of 50"):
        backend.generate_until([GenerationRequest(RULES)])


def test_folder_without_config_is_refused(tmp_path):
    """A folder that is no Hugging Face model says so."""
    with pytest.raises(InvalidArgument, match=r"config\.json"):
        make_backend(f"hf:{tmp_path}")


def test_adapter_folder_must_exist():
    """A missing adapter folder is reported before loading."""
    with pytest.raises(InvalidArgument, match="adapter"):
        make_backend(f"hf:embedded?adapter={Path('/no/such/adapter')}")


def test_the_cache_goes_under_the_decoders_own_keyword(backend):
    """The decoder's cache keyword is read from its forward: this transformers' Gemma takes
    ``cache``; a decoder of earlier 5.x (``past_key_values``, the vLLM venv's 5.19, where
    passing ``cache=`` left the prefix cache empty) gets that name."""
    from ld_agents.llm.hf import cache_keyword

    class Earlier:
        def forward(self, input_ids=None, past_key_values=None, use_cache=None):
            return None

    assert cache_keyword(backend.body) == backend._cache_arg
    assert backend._cache_arg in ("cache", "past_key_values")
    assert cache_keyword(Earlier()) == "past_key_values"
    # the cache it passes is the one the forward extends
    ids = backend._encode(["State 1: the evader"])[0]
    state = backend._prefill(ids)
    assert state.n_tokens == len(ids) and all(k is not None for k in state.keys)


def test_split_tree_attention_on_the_real_model(backend):
    """On CPU the backend splits token trees' attention (ld_agents.llm.tree_attention):
    label scores equal the dense-mask path's within float rounding, and forwards that are
    not token trees (generation, prefill) run transformers' SDPA unchanged, bit for bit."""
    import torch

    assert backend.tree_split and backend.model.config._attn_implementation == "ld_tree"
    labels = [" a", " b", " c"]
    tail = "Options: a (13, 8); b (14, 8); c (12, 8).\nThe best option is"
    contexts = [RULES + state(i) * (1 + i % 3) + tail for i in range(6)]
    backend.clear_prefix_cache()
    backend.cache_prefix(RULES)
    split = backend.choice_logprobs_batch(contexts, labels)
    backend.tree_split = False
    try:
        backend.clear_prefix_cache()
        backend.cache_prefix(RULES)
        dense = backend.choice_logprobs_batch(contexts, labels)
    finally:
        backend.tree_split = True
    pairs = zip(split, dense, strict=True)
    diffs = [abs(a - b) for s, d in pairs for a, b in zip(s, d, strict=True)]
    assert max(diffs) < 2e-5
    ids = torch.tensor(backend._encode([RULES + state(3), RULES + state(4)]))
    with torch.inference_mode():
        ours = backend.model(input_ids=ids).logits
        backend.model.set_attn_implementation("sdpa")
        try:
            theirs = backend.model(input_ids=ids).logits
        finally:
            backend.model.set_attn_implementation("ld_tree")
    assert torch.equal(ours, theirs)
