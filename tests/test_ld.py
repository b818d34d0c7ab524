"""The LD student policy (``ld``) on the real embedded model: selection by scoring only,
functions run in the sandbox, crashing functions as illegal stages, per-decision logs,
the emergency function on PursuitRestricted-v0 with no retraining, the shipped adapter."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import pytest

import ld_agents
import ld_envs  # noqa: F401
from ld_agents.ld.base import shipped_base
from ld_agents.ld.policy import LDConfig, LDPolicy, default_adapter, ld_backend_spec, ld_base
from ld_agents.ld.prompts import (
    LABELS,
    dynamic_prompt,
    label_choices,
    stage_cue,
    static_prompt,
)
from ld_agents.llm.base import Backend, GenerationRequest, get_backend
from ld_envs.errors import InvalidArgument
from ld_envs.pursuit import NO_CHOICE

pytestmark = pytest.mark.llm

HAS_ADAPTER = (default_adapter("pursuit") / "adapter_config.json").is_file()


class CountingBackend(Backend):
    """Delegates to a real backend and counts each kind of call."""

    def __init__(self, inner: Backend) -> None:
        super().__init__()
        self.inner = inner
        self.stats = inner.stats
        self.calls = {"generate_until": 0, "loglikelihood": 0, "choice_logprobs": 0}

    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[float]:
        self.calls["loglikelihood"] += 1
        return self.inner.loglikelihood(requests)

    def choice_logprobs(self, context: str, choices: Sequence[str]) -> list[float]:
        self.calls["choice_logprobs"] += 1
        return self.inner.choice_logprobs(context, choices)

    def generate_until(self, requests: Sequence[GenerationRequest]) -> list[str]:
        self.calls["generate_until"] += 1
        return self.inner.generate_until(requests)

    def cache_prefix(self, text: str) -> int:
        return self.inner.cache_prefix(text)


@pytest.fixture(scope="module")
def backend() -> Backend:
    """The student (shipped adapter) when there is one, else the base model (bfloat16)."""
    import torch

    torch.set_num_threads(2)
    return get_backend(ld_backend_spec("pursuit", LDConfig(adapter="default")))


def _restricted_obs() -> dict:
    env = gym.make("PursuitRestricted-v0")
    obs, _ = env.reset(seed=5)
    env.close()
    return obs


def test_labels_are_single_tokens_and_static_part_is_a_prefix(backend):
    base = shipped_base("pursuit")
    cands = base.stage_candidates("select")
    static = static_prompt(base)
    state = {"size": 21, "pursuers": [[1, 1], [2, 2], [3, 3]], "evader": [9, 9], "restricted": None}
    tok = backend.inner.tokenizer if hasattr(backend, "inner") else backend.tokenizer
    n_static = len(tok(static)["input_ids"])
    with_state = static + dynamic_prompt("pursuit", state)
    n_state = len(tok(with_state)["input_ids"])
    for stage in base.stage_names:
        ctx = with_state + stage_cue(base, stage)
        ids = tok(ctx)["input_ids"]
        # the static part, then the state, are token prefixes of every stage's context
        assert ids[:n_static] == tok(static)["input_ids"]
        assert ids[:n_state] == tok(with_state)["input_ids"]
        for label in label_choices(len(base.stage_candidates(stage))):
            assert len(tok(ctx + label)["input_ids"]) == len(ids) + 1
    # every stage and candidate is listed once in the static part
    for stage in base.stage_names:
        assert static.count(f", {stage}: ") == 1
    assert all(f"- {c.when_to_call}" in static for c in cands)


def test_one_step_reads_the_state_once(backend):
    """All stages of a batch of decisions go to the backend in one call, and with the
    token tree each state's tokens run once (not once per stage)."""
    policy = LDPolicy(shipped_base("pursuit"), backend, LDConfig(layout="one_state"))
    env = gym.make("Pursuit-v0")
    observations = [env.reset(seed=s)[0] for s in range(3)]
    warm_up = env.reset(seed=99)[0]
    env.close()
    states = [policy.state(o) for o in observations]
    contexts = [
        policy.prompt(st, policy.stage_candidates(st, s), s)
        for s in states
        for st in policy.base.stage_names
    ]
    tok = backend.tokenizer
    n_static = len(tok(policy._static)["input_ids"])
    tails = {tuple(tok(c)["input_ids"][n_static:]) for c in contexts}
    distinct = {t[:i] for t in tails for i in range(1, len(t) + 1)}
    policy.act_batch([warm_up])  # first use checks the token tree once
    before = backend.stats.tokens_processed
    calls = []
    real = backend.choice_logprobs_batch

    def spy(ctxs, choices):
        calls.append(len(ctxs))
        return real(ctxs, choices)

    backend.choice_logprobs_batch = spy  # type: ignore[method-assign]
    try:
        policy.act_batch(observations)
    finally:
        del backend.choice_logprobs_batch
        policy.close()
    assert calls == [3 * len(policy.base.stage_names)]
    if backend._tree_ok:
        assert backend.stats.tokens_processed - before == len(distinct)
        assert len(distinct) < sum(map(len, tails))


def test_selects_by_scoring_never_generates_and_runs_in_sandbox(backend):
    counting = CountingBackend(backend)
    policy = LDPolicy(shipped_base("pursuit"), counting)
    calls = []
    real_call = policy.worker.call

    def spy(name, args):
        calls.append(name)
        return real_call(name, args)

    policy.worker.call = spy  # type: ignore[method-assign]
    env = gym.make("Pursuit-v0")
    obs, _ = env.reset(seed=0)
    steps = 3
    for _ in range(steps):
        obs, *_ = env.step(policy.act(obs))
    env.close()
    stages = len(policy.base.stage_names)
    assert counting.calls["generate_until"] == 0
    assert counting.calls["choice_logprobs"] == steps * stages
    # every chosen function ran in the sandbox worker, in stage order
    chosen = [d.chosen for d in policy.decision_log]
    assert calls == chosen and len(chosen) == steps * stages
    summary = policy.episode_summary()
    assert summary["decisions"] == steps and summary["stage_decisions"] == steps * stages
    assert sum(v for k, v in summary.items() if k.startswith("chosen/")) == steps * stages
    policy.close()


def test_a_prompt_met_again_is_not_scored_again(backend):
    """Label scores are kept per prompt: each distinct prompt of a call is scored once, the
    same observations again cost no backend call and give the same choices;
    ``score_cache=0`` scores them again."""
    env = gym.make("TwentyOne-v0")
    observations = [env.reset(seed=s)[0] for s in range(6)]
    env.close()
    for keep in (65536, 0):
        policy = LDPolicy(shipped_base("twentyone"), backend, LDConfig(score_cache=keep))
        stages = policy.base.stage_names
        prompts = [
            policy.prompt(st, policy.stage_candidates(st, s), s)
            for s in map(policy.state, observations)
            for st in stages
        ]
        distinct = len(set(prompts))
        calls = []
        real = backend.choice_logprobs_batch

        def spy(ctxs, choices, real=real, calls=calls):
            calls.append(len(ctxs))
            return real(ctxs, choices)

        backend.choice_logprobs_batch = spy  # type: ignore[method-assign]
        try:
            first = policy.act_batch(observations)
            chosen = [[d.chosen for d in log] for log in policy.last_decisions]
            again = policy.act_batch(observations)
            reused = policy.cost_counters()["prompts_reused"]
        finally:
            del backend.choice_logprobs_batch
            policy.close()
        assert calls == ([distinct] if keep else [distinct, distinct])
        assert again == first
        assert [[d.chosen for d in log] for log in policy.last_decisions] == chosen
        n = len(prompts)
        assert reused == (2 * n - distinct if keep else 2 * (n - distinct))
    with pytest.raises(InvalidArgument, match="score_cache"):
        LDPolicy(shipped_base("twentyone"), backend, LDConfig(score_cache=-1))


def test_decisions_are_logged_with_candidates_and_scores(backend):
    policy = LDPolicy(shipped_base("twentyone"), backend)
    env = gym.make("TwentyOne-v0")
    obs, _ = env.reset(seed=1)
    policy.act(obs)
    env.close()
    (log,) = policy.last_decisions
    assert [d.stage for d in log] == policy.base.stage_names
    for d in log:
        assert len(d.scores) == len(d.candidates) and d.chosen in d.candidates
        assert d.chosen == d.candidates[int(np.argmax(d.scores))]
        assert all(s <= 0 for s in d.scores) and d.ok
        assert set(d.to_dict()) >= {"stage", "candidates", "scores", "chosen", "ok"}
        assert 0 <= d.entropy() <= np.log(len(d.candidates)) + 1e-9
    policy.close()


def test_a_crashing_function_makes_the_stage_illegal_and_the_episode_goes_on(backend):
    base = shipped_base("pursuit")
    for entry in list(base.stage_candidates("select")):
        base.remove_function(entry.name)
        base.add_function(
            dataclasses.replace(
                entry, source=f"def {entry.name}(state, prev):\n    return 1 // 0\n"
            )
        )
    policy = LDPolicy(base, backend)
    env = gym.make("Pursuit-v0")
    obs, _ = env.reset(seed=2)
    for _ in range(2):
        action = policy.act(obs)
        assert list(action) == [NO_CHOICE] * 3
        (log,) = policy.last_decisions
        assert log[-1].stage == "select" and not log[-1].ok and "exception" in log[-1].error
        obs, _, term, trunc, _info = env.step(action)
        assert not (term or trunc)
    env.close()
    assert policy.episode_summary()["illegal_stages"] == 2
    assert policy.failures == 2
    policy.close()


def test_make_ld_on_restricted_board_loads_the_emergency_function():
    base = ld_base("PursuitRestricted-v0")
    assert "drop_restricted_cells" in [f.name for f in base.stage_candidates("constraints")]
    assert "drop_restricted_cells" not in [
        f.name for f in ld_base("Pursuit-v0").stage_candidates("constraints")
    ]
    assert "adapter" not in ld_backend_spec("pursuit", LDConfig(adapter=None))


@pytest.mark.skipif(not HAS_ADAPTER, reason="no shipped LD adapter")
def test_student_uses_the_emergency_function_without_retraining(backend):
    """The restricted-area function was never in the student's training data; given the
    rule as text and the function in the base, the student selects it (and the area is
    never entered)."""
    policy = ld_agents.make("ld", "PursuitRestricted-v0", model=backend)
    env = gym.make("PursuitRestricted-v0")
    obs, _ = env.reset(seed=5)
    used = 0
    for _ in range(3):
        obs, _, term, trunc, info = env.step(policy.act(obs))
        (log,) = policy.last_decisions
        constraints = next(d for d in log if d.stage == "constraints")
        used += constraints.chosen == "drop_restricted_cells"
        assert info["violations"] == 0
        if term or trunc:
            break
    env.close()
    assert used >= 2
    policy.close()


@pytest.mark.skipif(not HAS_ADAPTER, reason="no shipped LD adapter")
def test_shipped_adapter_loads_with_its_record(backend):
    import json

    from ld_agents.lora import RUN_FILE

    spec = ld_backend_spec("pursuit", LDConfig())
    assert f"adapter={default_adapter('pursuit')}" in spec
    assert backend.adapter == str(default_adapter("pursuit"))
    record = json.loads((default_adapter("pursuit").parent / RUN_FILE).read_text())
    assert record["data"] and record["config"] and record["global_step"] >= 1


def test_synthetic_rule_rows_teach_matching_unseen_functions():
    """Invented rules come with their invented function as the answer; the emergency
    function never appears; answers fall on several labels and several functions."""
    from ld_agents.ld.base import shipped_base
    from ld_agents.ld.games import sample_states
    from ld_agents.ld.training_data import synthetic_rule_rows

    rows = synthetic_rule_rows(shipped_base("pursuit"), sample_states("pursuit", 40, "train", 3))
    assert len(rows) >= 10
    chosen = set()
    for row in rows:
        assert "drop_restricted_cells" not in row["prompt"]
        ((cue, answer),) = row["branches"]
        assert cue.startswith("Stage 3, constraints.")
        label = answer.strip()
        block = row["prompt"].split(", constraints: ")[1].split("\nStage 4, ")[0]
        line = next(x for x in block.splitlines() if x.startswith(f"{label}: "))
        name = line.split(" - ")[0][len(label) + 2 :]
        chosen.add(name)
        rule = row["prompt"].split("extra rule in force: ")[1].split(".\n")[0]
        if rule == "none":
            assert name == "no_extra_rule"
        else:
            assert name != "no_extra_rule"
    assert len({r["branches"][0][1] for r in rows}) >= 3
    assert len(chosen - {"no_extra_rule", "drop_edge_cells", "keep_distance_from_evader"}) >= 3


def test_an_adapter_plays_in_the_layout_it_was_trained_on(tmp_path):
    """The layout comes from the adapter's run record: students trained before the
    one-state layout (no ``layout`` in the record) keep their per-stage prompts."""
    import json

    from ld_agents.ld.policy import adapter_cue_stages, adapter_layout
    from ld_agents.ld.prompts import per_stage_context, per_stage_static

    assert adapter_layout(None) == "one_state" and adapter_cue_stages(None) == ()
    for extra, want, cue in (
        ({}, "per_stage", ()),
        ({"layout": "one_state"}, "one_state", ()),
        ({"layout": "one_state", "cue_stages": ["constraints"]}, "one_state", ("constraints",)),
    ):
        (tmp_path / "ld_gym_run.json").write_text(json.dumps({"train_config": {"extra": extra}}))
        assert adapter_layout(tmp_path) == want
        assert adapter_cue_stages(tmp_path) == cue
    base = shipped_base("pursuit")
    state = {"size": 21, "pursuers": [[1, 1], [2, 2], [3, 3]], "evader": [9, 9], "restricted": None}
    static = per_stage_static(base, "select")
    assert static.splitlines()[1].startswith("Stage 4 of 4, select: ")
    assert static.count("\n") == 3 + len(base.stage_candidates("select"))
    ctx = per_stage_context(base, "select", state)
    assert ctx.startswith(static) and ctx.endswith("extra rule in force: none.\nAnswer:")


def test_a_cue_listed_stage_shows_its_functions_after_the_state(backend):
    """With the rule stage listed in its cue, the pinned listing leaves it out, its cue
    lists every candidate after the state, and a function added for a new rule changes
    that cue only: the pinned part stays the same, so its cache stays valid."""
    base = shipped_base("pursuit")
    policy = LDPolicy(base, backend, LDConfig(layout="one_state", cue_stages=("constraints",)))
    state = policy.state(_restricted_obs())
    cands = policy.stage_candidates("constraints", state)
    ctx = policy.prompt("constraints", cands, state)
    head, cue = ctx.split("Stage 3, constraints, functions:\n")
    assert head.startswith(policy._static) and "State: " in head[len(policy._static) :]
    assert [line.split(" - ")[0] for line in cue.splitlines()[:-1]] == [
        f"{LABELS[i]}: {c.name}" for i, c in enumerate(cands)
    ]
    assert cue.endswith("Answer:") and "no_extra_rule" not in policy._static
    assert policy.prompt("select", base.stage_candidates("select"), state).endswith(
        "Stage 4, select. Answer:"
    )
    grown = LDPolicy(
        shipped_base("pursuit", ["restricted_area"]),
        backend,
        LDConfig(layout="one_state", cue_stages=("constraints",)),
    )
    assert grown._static == policy._static
    shown = grown.stage_candidates("constraints", state)
    assert "drop_restricted_cells" in grown.prompt("constraints", shown, state)
    policy.close()
    grown.close()
