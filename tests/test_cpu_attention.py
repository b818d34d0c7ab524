"""Attention by bf16 matrix products (ld_agents.llm.cpu_attention): the same attention as
torch's kernel up to one bf16 rounding of the scores, its log-sum-exps, and when it is used."""

from __future__ import annotations

import math

import pytest

from ld_agents.llm.cpu_attention import (
    attention_mode,
    attention_products,
    matmul_attention,
    use_matmul,
)
from ld_envs.errors import InvalidArgument

torch = pytest.importorskip("torch")


def _case(batch, heads, kv, q, keys, dim, mask_heads, kind, seed):
    g = torch.Generator().manual_seed(seed)
    query = torch.randn(batch, heads, q, dim, generator=g).bfloat16()
    key = torch.randn(batch, kv, keys, dim, generator=g).bfloat16()
    value = torch.randn(batch, kv, keys, dim, generator=g).bfloat16()
    seen = torch.rand(batch, mask_heads, q, keys, generator=g) < 0.7
    seen[..., 0] = True  # every row sees a key
    if kind == "bool":
        mask = seen
    else:
        mask = torch.zeros(seen.shape, dtype=torch.bfloat16)
        mask.masked_fill_(~seen, torch.finfo(torch.bfloat16).min)
    return query, key, value, mask, seen


def _reference(query, key, value, seen, scale):
    """float32 attention of the same bf16 values, and its log-sum-exps."""
    rep = query.shape[1] // key.shape[1]
    k = key.float().repeat_interleave(rep, dim=1)
    v = value.float().repeat_interleave(rep, dim=1)
    s = (query.float() @ k.transpose(-1, -2)) * scale
    s = s.masked_fill(~seen.expand(s.shape), float("-inf"))
    return torch.softmax(s, dim=-1) @ v, torch.logsumexp(s, dim=-1)


@pytest.mark.parametrize(
    "shape",
    [
        (2, 4, 1, 40, 70, 64, 1),  # grouped-query heads, one mask for all heads
        (1, 4, 2, 33, 50, 32, 4),  # two kv heads, a mask per head
        (3, 2, 2, 17, 20, 16, 1),
    ],
)
@pytest.mark.parametrize("kind", ["additive", "bool"])
def test_matmul_attention_is_the_kernels_attention_up_to_bf16_scores(shape, kind):
    batch, heads, kv, q, keys, dim, mask_heads = shape
    query, key, value, mask, seen = _case(batch, heads, kv, q, keys, dim, mask_heads, kind, 7)
    scale = 1 / math.sqrt(dim)
    ref, ref_lse = _reference(query, key, value, seen, scale)
    out, lse = matmul_attention(query, key, value, mask, scale)
    rep = heads // kv
    kernel = torch.nn.functional.scaled_dot_product_attention(
        query,
        key.repeat_interleave(rep, dim=1),
        value.repeat_interleave(rep, dim=1),
        attn_mask=mask,
        scale=scale,
    )
    ours = (out.float() - ref).abs()
    theirs = (kernel.float() - ref).abs()
    assert out.dtype == torch.bfloat16 and out.shape == (batch, heads, q, dim)
    # one more bf16 rounding (of the scores) than the kernel: a few times its error
    assert ours.max() < 4 * theirs.max() + 1e-2
    assert ours.mean() < 4 * theirs.mean()
    # the log-sum-exp of the scores, to the bf16 rounding of scores of size ~sqrt(dim)
    assert (lse - ref_lse).abs().max() < 0.05


def test_chunks_of_queries_give_the_same_output(monkeypatch):
    import ld_agents.llm.cpu_attention as ca

    query, key, value, mask, _ = _case(1, 4, 1, 50, 30, 16, 1, "additive", 3)
    whole = matmul_attention(query, key, value, mask, 0.25)
    monkeypatch.setattr(ca, "SCORE_ELEMENTS", 4 * 30 * 7)  # 7 queries a chunk
    parts = matmul_attention(query, key, value, mask, 0.25)
    assert torch.equal(whole[0], parts[0]) and torch.equal(whole[1], parts[1])


def test_a_row_that_sees_no_key_gives_zero_and_minus_infinity():
    query, key, value, _, _ = _case(1, 2, 1, 3, 5, 8, 1, "bool", 1)
    seen = torch.ones(1, 1, 3, 5, dtype=torch.bool)
    seen[0, 0, 1] = False
    out, lse = matmul_attention(query, key, value, seen, 0.3)
    assert torch.isneginf(lse[0, :, 1]).all() and (out[0, :, 1] == 0).all()
    assert torch.isfinite(lse[0, :, [0, 2]]).all() and not torch.isnan(out).any()


def test_auto_takes_matmul_only_for_bf16_on_a_cpu_with_native_products():
    assert attention_mode("auto", "bfloat16", "cpu", "native", True) == "matmul"
    assert attention_mode("auto", "bfloat16", "cpu", "float32", False) == "kernel"  # AVX2
    assert attention_mode("auto", "bfloat16", "cpu", "native", False) == "kernel"  # forced
    assert attention_mode("auto", "bfloat16", "cpu", "native", None) == "kernel"  # unknown
    assert attention_mode("auto", "float32", "cpu", "native", True) == "kernel"
    assert attention_mode("auto", "bfloat16", "cuda", "native", True) == "kernel"
    assert attention_mode("kernel", "bfloat16", "cpu", "native", True) == "kernel"
    assert attention_mode("matmul", "float32", "cpu", "native", None) == "matmul"
    with pytest.raises(InvalidArgument, match="attention must be one of auto, kernel, matmul"):
        attention_mode("fast", "bfloat16", "cpu", "native", True)


def test_a_mask_that_broadcasts_over_queries_is_applied_to_every_chunk(monkeypatch):
    import ld_agents.llm.cpu_attention as ca

    query, key, value, _, _ = _case(1, 4, 2, 20, 9, 8, 1, "bool", 5)
    seen = torch.rand(1, 4, 1, 9, generator=torch.Generator().manual_seed(1)) < 0.6
    seen[..., 0] = True
    whole = matmul_attention(query, key, value, seen.expand(1, 4, 20, 9), 0.3)
    monkeypatch.setattr(ca, "SCORE_ELEMENTS", 4 * 9 * 7)  # 7 queries a chunk
    assert torch.equal(matmul_attention(query, key, value, seen, 0.3)[0], whole[0])


def test_causal_mask_ends_at_each_querys_own_key():
    from ld_agents.llm.cpu_attention import causal_mask

    m = causal_mask(2, 5)[0, 0]
    assert m.tolist() == [[True, True, True, True, False], [True, True, True, True, True]]
    assert torch.equal(causal_mask(4, 4)[0, 0], torch.ones(4, 4, dtype=torch.bool).tril())


def test_matmul_is_used_only_inside_its_mode_and_for_wide_bf16_calls():
    q = torch.zeros(1, 4, 16, 8, dtype=torch.bfloat16)
    mask = torch.zeros(1, 1, 16, 16, dtype=torch.bfloat16)
    assert not use_matmul(q, mask)  # the default: torch's kernel
    with attention_products("matmul"):
        assert use_matmul(q, mask)
        assert not use_matmul(q[:, :, :15], mask[:, :, :15])  # a decoding step's few queries
        assert not use_matmul(q.float(), mask)
        assert not use_matmul(q, None)  # no mask: the kernel's causal flag
    with attention_products("kernel"):
        assert not use_matmul(q, mask)


def test_a_bad_attention_option_is_refused_before_loading():
    from ld_agents.llm.base import check_spec

    with pytest.raises(InvalidArgument, match="attention"):
        check_spec("hf:embedded?attention=fast")


@pytest.mark.llm
def test_the_model_scores_alike_either_way():
    """On the embedded model in bf16, the matmul path's continuation scores are as close to
    float32's as the kernel's are (within a bf16 step), and both choose alike."""
    from ld_agents.llm import make_backend

    ctx = "The pursuers stand at (3, 4), (5, 6) and (7, 2). The evader is at (4, 4). A moves to"
    conts = [f" ({x}, {y})" for x in range(2, 6) for y in range(3, 6)]
    ctx = " ".join([ctx] * 3)  # > MIN_QUERIES tokens in each forward
    scores = {}
    for spec in (
        "dtype=float32",
        "dtype=bfloat16&attention=kernel",
        "dtype=bfloat16&attention=matmul",
    ):
        b = make_backend(f"hf:embedded?{spec}")
        scores[spec] = torch.tensor(b.loglikelihood([(ctx, c) for c in conts]))
        b.close()
    ref = scores["dtype=float32"]
    kernel = (scores["dtype=bfloat16&attention=kernel"] - ref).abs().max()
    matmul = (scores["dtype=bfloat16&attention=matmul"] - ref).abs().max()
    assert matmul < 2 * kernel + 0.1
    assert len({int(v.argmax()) for v in scores.values()}) == 1
    assert not torch.equal(
        scores["dtype=bfloat16&attention=matmul"], scores["dtype=bfloat16&attention=kernel"]
    )


def test_same_results_table_reports_the_attention_comparison():
    from benchmarks.studies.same_results import to_markdown

    ld = {
        "decisions": 4,
        "equal": 3,
        "differ": [{"decision": 1, "kernel": [1], "matmul": [2], "float32_alone": [2]}],
        "explained": {"differing": 1, "kernel_equals_float32": 0, "matmul_equals_float32": 1},
        "paths": "attention by torch's kernel vs by bf16 products (attention=matmul), bfloat16",
        "old_ms": 150.0,
        "new_ms": 120.0,
        "speedup": 1.25,
    }
    md = to_markdown(
        {"command": "c", "commit": "x", "machine": "m", "decisions": 4, "batch": 4, "ld": ld}
    )
    assert "| ld | attention by torch's kernel vs by bf16 products" in md
    assert "| 3/4 | 150 | 120 | 1.25x |" in md
    assert "the kernel path's choice equals float32's on 0 and the matmul path's on 1" in md


def test_same_results_table_reports_the_head_comparison():
    """A ``--compare head`` record names its paths and counts with its own modes."""
    from benchmarks.studies.same_results import to_markdown

    kd = {
        "decisions": 5,
        "equal": 4,
        "differ": [{"decision": 2, "linear": [1], "transposed": [3], "float32_alone": [1]}],
        "modes": ["linear", "transposed"],
        "explained": {"differing": 1, "linear_equals_float32": 1, "transposed_equals_float32": 0},
        "paths": "output layer by F.linear vs as (W @ rows.T).T (head=transposed), float32",
        "old_ms": 1900.0,
        "new_ms": 1500.0,
        "speedup": 1.2667,
    }
    md = to_markdown(
        {"command": "c", "commit": "x", "machine": "m", "decisions": 5, "batch": 4, "kd": kd}
    )
    assert "| kd | output layer by F.linear vs as (W @ rows.T).T" in md
    assert "| 4/5 | 1900 | 1500 | 1.27x |" in md
    assert "the linear path's choice equals float32's on 1 and the transposed path's on 0" in md
