"""Drafted greedy decoding (ld_agents.llm.speculative): the drafts, the masks, and the real
embedded model giving the plain greedy text."""

from __future__ import annotations

import logging

import pytest

from ld_agents.llm.base import GenerationRequest
from ld_agents.llm.speculative import SlotPositions, guesses_per_row, lookup_draft
from ld_envs.errors import InvalidArgument


def test_lookup_takes_the_latest_match_of_the_longest_ngram():
    seq = [1, 2, 3, 9, 2, 3, 7, 8, 5, 2, 3]
    assert lookup_draft(seq, 2) == [7, 8]  # (2, 3) last seen before 7, 8
    assert lookup_draft([5, 1, 2, 3, 4, 9, 2, 3, 6, 1, 2, 3], 3) == [4, 9, 2]  # (1, 2, 3)
    assert lookup_draft([4, 1, 2], 5) == []  # nothing repeats
    assert lookup_draft([1, 1], 4) == [1]  # the draft stops where the sequence does
    assert lookup_draft([1, 2, 1], 0) == []
    assert lookup_draft([7], 3) == []


def test_lookup_tries_the_answer_then_earlier_answers_then_the_prompt():
    prompt = [1, 2, 3, 4, 2, 3, 5]  # (2, 3) is followed by 4, then by 5 in the prompt
    history = [[2, 3, 8, 9], [2, 3, 6]]  # the most recent first
    assert lookup_draft([*prompt, 2, 3], 2, answer_start=7) == [5, 2]  # no history: prompt
    assert lookup_draft([*prompt, 2, 3], 2, answer_start=7, history=history) == [8, 9]
    assert lookup_draft([*prompt, 2, 3], 2, answer_start=7, history=history[1:]) == [6]
    # the answer so far comes first (its own (2, 3) was followed by 7)
    assert lookup_draft([*prompt, 2, 3, 7, 2, 3], 2, answer_start=7, history=history) == [7, 2]
    # a longer n-gram anywhere beats a shorter one: (3, 5) occurs only in the prompt
    assert lookup_draft([*prompt, 3, 5], 1, answer_start=7, history=[[5, 0]]) == [3]
    # answer_start 0: all answer; past the end: all prompt
    assert lookup_draft([*prompt, 2, 3], 2, answer_start=0, history=history) == [5, 2]
    assert lookup_draft([*prompt, 2, 3], 2, answer_start=99, history=history) == [8, 9]
    # an n-gram across the prompt's end is found in the prompt's place, and being longer it
    # beats the history's: (3, 5, 2) starts at index 5 of 1 2 3 4 2 [3 5 | 2] 3 5 2
    assert lookup_draft([*prompt, 2, 3, 5, 2], 2, answer_start=7, history=[[5, 2, 0]]) == [3, 5]
    # without answer_start the whole sequence is prompt: history first, then the sequence
    assert lookup_draft([*prompt, 2, 3], 2, history=history) == [8, 9]
    assert lookup_draft([*prompt, 2, 3], 2, history=[[7, 7]]) == [5, 2]


def test_guesses_shrink_as_the_batch_grows():
    assert guesses_per_row(1, 4, step_tokens=24) == 4
    assert guesses_per_row(4, 4, step_tokens=24) == 4
    assert guesses_per_row(8, 4, step_tokens=24) == 2
    assert guesses_per_row(20, 4, step_tokens=24) == 0
    assert guesses_per_row(3, 0, step_tokens=24) == 0


def test_slot_masks_are_causal_by_position_and_skip_rejected_slots():
    import torch

    slots = SlotPositions(shared=3, batch=2)
    q = torch.tensor([[3, 4, 5], [3, -1, -1]])  # row 1 feeds one token (then padding)
    slots.extend(q)
    slots.reject(0, 3 + 2)  # row 0's guess at position 5 was wrong
    masks = slots.masks(q, ["full_attention", "sliding_attention"], window=3, dtype=torch.float32)
    full = masks["full_attention"][:, 0] == 0
    sliding = masks["sliding_attention"][:, 0] == 0
    assert full.shape == (2, 3, 6)
    # row 0, query at position 4 sees positions 0-4; the rejected slot is hidden from all
    assert full[0, 1].tolist() == [True, True, True, True, True, False]
    assert not full[0, :, 5].any()
    assert sliding[0, 1].tolist() == [False, False, True, True, True, False]
    # row 1: its padding slots are seen by nobody and its padding queries see nothing
    assert full[1, 0].tolist() == [True, True, True, True, False, False]
    assert not full[1, 1:].any()
    slots.select(torch.tensor([1]))
    assert slots.pos.tolist() == [[0, 1, 2, 3, -1, -1]]


@pytest.fixture(scope="module")
def backend():
    """The embedded model in float32, loaded once for the module."""
    from ld_agents.llm import make_backend

    b = make_backend("hf:embedded")
    yield b
    b.close()


@pytest.mark.llm
class TestOnTheEmbeddedModel:
    @staticmethod
    def _requests() -> list[GenerationRequest]:
        listing = ", ".join(f"({x}, {y})" for x in range(9, 15) for y in range(3, 9))
        long = "Cells: " + "; ".join(f"cell {i} is ({i % 21}, {i // 21})" for i in range(60))
        return [
            GenerationRequest("Count: 1, 2, 3, 4, 5, 6, 7,", max_new_tokens=18),
            GenerationRequest(f"Free cells: {listing}.\nA moves to", (".",), 12),
            GenerationRequest(long + "\nThe next cells are", ("\n",), 20),
            GenerationRequest("def add(a, b):\n    return", ("\n",), 10),
        ]

    def test_drafted_text_equals_plain_greedy(self, backend):
        """Drafted decoding gives the token-by-token greedy text (float32), for a prompt past
        the 512-token sliding window too, and guesses were both kept and rejected."""
        reqs = self._requests()
        assert len(backend._encode([reqs[2].context])[0]) > 600
        backend.draft_tokens = 0
        plain = [backend.generate_until([r])[0] for r in reqs]
        backend.draft_tokens = 4
        backend.forget_answers()  # guesses from the rows' own text only
        before = dict(backend.stats.extra)
        drafted = backend.generate_until(reqs)
        kept = backend.stats.extra["draft_accepted"] - before.get("draft_accepted", 0)
        tried = backend.stats.extra["draft_tokens"] - before.get("draft_tokens", 0)
        assert drafted == plain
        assert 0 < kept < tried
        assert [backend.generate_until([r])[0] for r in reqs] == drafted  # batch-independent

    @pytest.mark.parametrize("draft_tokens", [0, 4])
    def test_prompts_fed_in_row_groups_give_the_same_text(self, backend, monkeypatch, draft_tokens):
        """A batch's prompts fed a row at a time (caches joined after) give the text of one
        forward of all rows, in both decoding paths, and each group is a counted forward."""
        import ld_agents.llm.hf as hf

        reqs = self._requests()
        backend.draft_tokens = draft_tokens
        whole = backend.generate_until(reqs)
        monkeypatch.setattr(hf, "PREFILL_TOKENS", 1)
        p0 = backend.stats.forward_passes
        assert backend.generate_until(reqs) == whole
        monkeypatch.setattr(hf, "PREFILL_TOKENS", 10**6)
        p1 = backend.stats.forward_passes
        backend.generate_until(reqs)
        assert (p1 - p0) - (backend.stats.forward_passes - p1) == len(reqs) - 1
        backend.draft_tokens = 4

    def test_fewer_forwards_than_tokens(self, backend):
        """A repetitive answer takes fewer forwards than it has tokens."""
        req = GenerationRequest("Count: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", max_new_tokens=24)
        backend.draft_tokens = 4
        p0, t0 = backend.stats.forward_passes, backend.stats.tokens_generated
        backend.generate_until([req])
        passes = backend.stats.forward_passes - p0
        assert passes < backend.stats.tokens_generated - t0

    def test_earlier_answers_are_drafts(self, backend, monkeypatch):
        """An answer the backend gave before is a draft source: asked again, the same
        greedy text comes in fewer forwards than without the history; the history keeps
        the latest ``answer_history`` answers, from both decoding paths, and
        ``clear_prefix_cache`` forgets them."""
        req = GenerationRequest("The weather today is", ("\n",), max_new_tokens=16)
        monkeypatch.setattr(backend, "draft_tokens", 4)

        def forwards() -> tuple[str, int]:
            p0 = backend.stats.forward_passes
            text = backend.generate_until([req])[0]
            return text, backend.stats.forward_passes - p0

        monkeypatch.setattr(backend, "answer_history", 0)
        forwards()  # the prompt is cached from here on
        first = forwards()
        assert not backend._answers
        monkeypatch.setattr(backend, "answer_history", 16)
        forwards()
        text, passes = forwards()
        assert text == first[0] and passes < first[1]
        monkeypatch.setattr(backend, "answer_history", 2)
        for k in range(3):
            backend.generate_until([GenerationRequest(f"Count: {k},", max_new_tokens=3)])
        assert len(backend._answers) == 2
        monkeypatch.setattr(backend, "draft_tokens", 0)  # token by token: kept too
        text = backend.generate_until([GenerationRequest("Count: 9,", max_new_tokens=3)])[0]
        assert backend.tokenizer.decode(backend._answers[0]) == text
        backend.clear_prefix_cache()
        assert not backend._answers

    def test_sampling_decodes_token_by_token(self, backend):
        """Sampled requests keep their seeded stream: no drafts are fed."""
        req = GenerationRequest("The weather today is", max_new_tokens=8, temperature=0.8, seed=3)
        backend.draft_tokens = 4
        tried = backend.stats.extra.get("draft_tokens", 0)
        first = backend.generate_until([req])
        assert backend.stats.extra.get("draft_tokens", 0) == tried
        backend.draft_tokens = 0
        assert backend.generate_until([req]) == first
        backend.draft_tokens = 4

    def test_a_model_refusing_the_masks_falls_back(self, backend, monkeypatch, caplog):
        """Where drafted decoding fails on first use, a warning says so and generation goes
        on token by token."""
        req = GenerationRequest("Count: 1, 2, 3,", max_new_tokens=6)
        backend.draft_tokens = 0
        plain = backend.generate_until([req])
        backend.draft_tokens = 4

        def refuse(*args, **kwargs):
            backend.stats.forward_passes += 5  # work done before the failure
            backend.stats.extra["draft_tokens"] = backend.stats.extra.get("draft_tokens", 0) + 9
            raise ValueError("no 4D masks here")

        passes, tried = backend.stats.forward_passes, backend.stats.extra.get("draft_tokens", 0)

        monkeypatch.setattr(backend, "_drafts_ok", None)
        monkeypatch.setattr(backend, "_generate_drafted", refuse)
        with caplog.at_level(logging.WARNING, logger="ld_agents.llm.hf"):
            assert backend.generate_until([req]) == plain
        assert "drafted decoding unavailable" in caplog.text
        assert backend._drafts_ok is False
        # the failed try counts nothing: only the token-by-token forwards are counted
        assert backend.stats.extra.get("draft_tokens", 0) == tried
        assert passes < backend.stats.forward_passes <= passes + 6

    def test_a_batch_too_big_for_guesses_decodes_token_by_token(self, backend):
        """A batch that starts with too many rows for any guess (13 at the default step
        budget) goes token by token, where the drafted path had no gain; a smaller one
        is drafted."""
        reqs = [
            GenerationRequest(f"Count: {i}, {i + 1}, {i + 2},", max_new_tokens=6) for i in range(13)
        ]
        backend.draft_tokens = 0
        backend.generate_until(reqs)  # caches their shared prefix
        passes = backend.stats.forward_passes
        backend.generate_until(reqs)
        plain = backend.stats.forward_passes - passes
        backend.draft_tokens = 4
        passes, tried = backend.stats.forward_passes, backend.stats.extra.get("draft_tokens", 0)
        backend.generate_until(reqs)
        assert backend.stats.extra.get("draft_tokens", 0) == tried
        assert backend.stats.forward_passes - passes == plain  # the token-by-token forwards
        backend.generate_until(reqs[:12])
        assert backend.stats.extra["draft_tokens"] > tried

    def test_long_contexts_decode_token_by_token(self, backend):
        """Past draft_context (two sliding windows), where a full cache would cost more
        than it saves, generation goes token by token."""
        from ld_agents.llm.speculative import draft_context

        long = " ".join(f"item {i}," for i in range(400)) + " item"
        assert len(backend._encode([long])[0]) > draft_context(backend._window)
        backend.draft_tokens = 4
        tried = backend.stats.extra.get("draft_tokens", 0)
        backend.generate_until([GenerationRequest(long, max_new_tokens=4)])
        assert backend.stats.extra.get("draft_tokens", 0) == tried
        short = GenerationRequest("Count: 1, 2, 3, 4, 5, 6, 7,", max_new_tokens=8)
        backend.generate_until([short])
        assert backend.stats.extra["draft_tokens"] > tried


@pytest.mark.parametrize("option", ["draft_tokens", "answer_history"])
@pytest.mark.parametrize("value", ["-1", "two", "1.5"])
def test_bad_draft_options_are_refused_before_loading(option, value):
    from ld_agents.llm.base import check_spec

    with pytest.raises(InvalidArgument, match=f"{option} must be a whole number >= 0"):
        check_spec(f"hf:embedded?{option}={value}")
    check_spec(f"hf:embedded?{option}=0")


def test_same_results_table_reports_the_drafted_comparison():
    """The study's table names the two decoding paths and lists each difference."""
    from benchmarks.studies.same_results import to_markdown

    kd = {
        "decisions": 4,
        "equal": 3,
        "differ": [{"decision": 2, "token_by_token": [1, 2, 3], "drafted": [1, 2, 4]}],
        "paths": "token by token vs drafted (draft_tokens=4), bfloat16",
        "old_ms": 600.0,
        "new_ms": 450.0,
        "forwards_per_decision": {"token_by_token": 29.6, "drafted": 14.4},
        "guesses_fed": 900,
        "guesses_kept": 300,
        "speedup": 600 / 450,
        "explained": {
            "differing": 1,
            "float32_paths_equal_alone": 1,
            "token_by_token_batched_equals_alone": 0,
            "drafted_batched_equals_alone": 1,
            "paths_equal_alone": 1,
            "token_by_token_equals_float32": 0,
            "drafted_equals_float32": 1,
        },
    }
    md = to_markdown(
        {"command": "c", "commit": "x", "machine": "m", "decisions": 4, "batch": 4, "kd": kd}
    )
    assert "| kd | token by token vs drafted (draft_tokens=4), bfloat16 | 3/4 | 600 | 450 |" in md
    assert '"drafted": [1, 2, 4]' in md
    assert "forwards per decision 29.6 token by token, 14.4 drafted" in md
    assert "in float32 the two paths agree on 1; in bfloat16 they agree on 1" in md
