"""ld_agents refuses bad input before any work: policies (bad seeds, another board's
observations, a new rule the oracle's base has no function for), model specs (checked
without loading), the rule writer's and the teacher's options (before the model loads)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import ld_agents
import ld_envs  # noqa: F401
from ld_agents.ld.base import NoRightFunction
from ld_agents.ld.emergency import write_rule_function, writer_backend_spec
from ld_agents.ld.rule_writer import check_rule_function
from ld_agents.ld.teach import teach
from ld_agents.llm.base import check_spec
from ld_envs.errors import InvalidArgument, InvalidObservation, UnknownKeyword, UnknownName

BAND = {"kind": "band", "axis": "row", "span": [3, 5]}


@pytest.mark.parametrize("seed", [-1, "x", 1.5, True])
def test_bad_policy_seed_is_named(seed: object) -> None:
    with pytest.raises(InvalidArgument, match="seed must be a non-negative int"):
        ld_agents.make("random", "Pursuit-v0", seed=seed)
    policy = ld_agents.make("random", "Pursuit-v0", seed=0)
    with pytest.raises(InvalidArgument, match="seed"):
        policy.reset(seed=seed)


@pytest.mark.parametrize(("env_size", "policy_size"), [(27, 21), (21, 15)])
def test_scripted_refuses_another_board(env_size: int, policy_size: int) -> None:
    env = gym.make("Pursuit-v0", size=env_size)
    policy = ld_agents.make("scripted", "Pursuit-v0", size=policy_size)
    with pytest.raises(InvalidArgument, match=f"off this policy's {policy_size}x"):
        for episode in range(5):  # a larger board's pieces reach past the policy's in time
            obs, _ = env.reset(seed=episode)
            done = False
            while not done:
                obs, _, term, trunc, _ = env.step(policy.act(obs))
                done = term or trunc


def test_matching_board_plays_on() -> None:
    env = gym.make("Pursuit-v0", size=15)
    policy = ld_agents.make("scripted", "Pursuit-v0", size=15)
    obs, _ = env.reset(seed=0)
    done = False
    while not done:
        obs, _, term, trunc, info = env.step(policy.act(obs))
        done = term or trunc
    assert info["outcome"] == "success"


def test_oracle_refuses_uncovered_rule_when_made() -> None:
    with pytest.raises(NoRightFunction, match=r"constraints.*extensions"):
        ld_agents.make("ld_oracle", "Pursuit-v0", rules=[BAND])
    # without a new rule the same base is fine
    assert ld_agents.make("ld_oracle", "Pursuit-v0").rule_text is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("hf:embedded?dtyp=auto", "did you mean 'dtype'"),
        ("hf:embedded?dtype=int8", "dtype must be one of"),
        ("hf:embedded?batch_size=0", "batch_size"),
        ("hf:embedded?device=gpu", "device must be"),
        ("hf:embedded?adapter=/", "holds no adapter_config.json"),
        ("hf:/no/such/model", "does not exist"),
        ("nonsense", "SCHEME:TARGET"),
        ("vllm:embedded?dtype=int8", "dtype must be one of"),
        ("vllm:embedded?max_model_len=0", "max_model_len"),
    ],
)
def test_bad_model_spec_refused_without_loading(spec: str, message: str) -> None:
    with pytest.raises((InvalidArgument, UnknownKeyword), match=message):
        check_spec(spec)


def test_unknown_scheme_and_good_specs() -> None:
    with pytest.raises(UnknownName, match="known: hf"):
        check_spec("foo:bar")
    assert check_spec("hf:embedded?dtype=auto") == ("hf", "embedded", {"dtype": "auto"})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"boards": 0}, "boards must be"),
        ({"samples": 0}, "samples must be"),
        ({"temperature": -1}, "temperature"),
        ({"seed": -1}, "seed"),
        ({"name": "bad name/x"}, "Python identifier"),
        ({"model": "hf:embedded?dtype=int8"}, "dtype"),
    ],
)
def test_rule_writer_options_refused_before_loading(options: dict, message: str) -> None:
    # the model would take many seconds to load: the error comes first
    with pytest.raises(InvalidArgument, match=message):
        write_rule_function("No pursuer may enter column 3.", None, **options)


def test_writer_keeps_a_dtype_the_user_asked_for() -> None:
    assert "dtype=bfloat16" in writer_backend_spec("hf:embedded?dtype=bfloat16")
    assert "float32" not in writer_backend_spec("hf:embedded?dtype=bfloat16")
    assert writer_backend_spec("hf:embedded").endswith("&dtype=float32")


def test_rule_check_needs_boards() -> None:
    with pytest.raises(InvalidArgument, match="n_boards"):
        check_rule_function("def f(state, prev):\n    return 42\n", "f", None, n_boards=0)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"n_states": 0}, "n_states"), ({"seed": -1}, "seed"), ({"model": "nonsense"}, "SCHEME")],
)
def test_teach_options_refused_first(options: dict, message: str) -> None:
    kwargs = {"model": "hf:embedded", **options}
    answer = None if "model" in options else "no functions here"  # None: the model is asked
    with pytest.raises(InvalidArgument, match=message):
        teach("pursuit", answer=answer, **kwargs)


class _StayPut:
    """A plain object with act(obs) and reset, no name: not an ld_agents.Policy."""

    def __init__(self) -> None:
        self.seeds: list[object] = []

    def reset(self, seed: object = None) -> None:
        self.seeds.append(seed)

    def act(self, obs: dict) -> np.ndarray:
        return np.zeros(3, dtype=np.int64)


@ld_agents.register("test_stay_put", "pursuit")
def _stay_put(env_id: str, seed: int | None = None) -> _StayPut:
    return _StayPut()


@ld_agents.register("test_returns_none", "pursuit")
def _returns_none(env_id: str) -> None:
    return None


def test_a_plain_act_object_plays_in_a_sweep(tmp_path) -> None:
    from benchmarks.sweep import PolicySpec, RunOptions, SweepSpec, run_sweep

    policy = ld_agents.make("test_stay_put", "Pursuit-v0")
    assert isinstance(policy, ld_agents.Policy) and policy.name == "test_stay_put"
    policy.reset(seed=4)
    assert policy.inner.seeds == [4]
    spec = SweepSpec("Pursuit-v0", [PolicySpec("test_stay_put")], episodes=3, seed=0)
    result = run_sweep(spec, tmp_path / "s", RunOptions(progress=False))
    assert result.ran == 3 and {r["steps"] for r in result.records} == {100}


class _BatchingStayPut(_StayPut):
    def act_batch(self, observations: list) -> list:
        return [self.act(o) for o in observations]


@ld_agents.register("test_batching_stay_put", "pursuit")
def _batching_stay_put(env_id: str, seed: int | None = None) -> _BatchingStayPut:
    return _BatchingStayPut()


def test_a_plain_act_object_plays_one_episode_at_a_time() -> None:
    """The wrapper of an act-only object does not make it a batching policy (it would be
    reset per chunk, not per episode, and its episodes would depend on the chunk size);
    an object with its own act_batch batches."""
    from benchmarks.rollout import wants_batching

    assert not wants_batching(ld_agents.make("test_stay_put", "Pursuit-v0"))
    assert wants_batching(ld_agents.make("test_batching_stay_put", "Pursuit-v0"))


def test_a_factory_returning_no_policy_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="returned NoneType, not a policy"):
        ld_agents.make("test_returns_none", "Pursuit-v0")


@pytest.mark.parametrize("name", ["greedy", "random"])
def test_an_evader_given_the_pursuers_observation_says_so(name: str) -> None:
    obs, _ = gym.make("Pursuit-v0").reset(seed=0)
    evader = ld_agents.make(name, "Pursuit-v0", side="evader")
    with pytest.raises(InvalidObservation, match="plays the evader"):
        evader.act(obs)


@pytest.mark.parametrize(
    ("name", "env_id", "kwargs", "message"),
    [
        ("raw", "Pursuit-v0", {"max_new_tokens": 0}, "max_new_tokens"),
        ("raw", "Pursuit-v0", {"rule_mask": "bogus"}, "rule_mask"),
        ("raw", "Pursuit-v0", {"size": 3}, "size must be"),
        ("kd", "Pursuit-v0", {"max_new_tokens": 0}, "max_new_tokens"),
        ("ld", "Pursuit-v0", {"size": 3}, "size must be"),
        ("ld", "Pursuit-v0", {"top_k": 0}, "top_k"),
        ("ld", "Pursuit-v0", {"retrieval_threshold": -1}, "retrieval_threshold"),
        ("ld", "TwentyOne-v0", {"size": 15}, "pursuit only"),
        ("ld", "TwentyOne-v0", {"emergency": "/nonexistent.json"}, "pursuit only"),
        ("scripted", "Pursuit-v0", {"size": 0}, "size must be"),
        ("random", "Pursuit-v0", {"masked": "no"}, "masked must be"),
    ],
)
def test_llm_and_cheap_policy_arguments_refused_before_loading(
    name: str, env_id: str, kwargs: dict, message: str
) -> None:
    # each would load the model first if the check came after (seconds): it comes first
    with pytest.raises(InvalidArgument, match=message):
        ld_agents.make(name, env_id, **kwargs)


def test_ray_workers_are_told_which_modules_registered_the_policies() -> None:
    """A policy registered by a module of the user's (this test module) is named for Ray
    workers to import, which run none of the driver's code; ld-gym's own are not."""
    from benchmarks.executors import user_policy_modules
    from benchmarks.specs import ChunkTask, PolicySpec

    def task(name: str) -> ChunkTask:
        return ChunkTask("Pursuit-v0", {}, PolicySpec(name), 0, 0, (0,), (0,), "c")

    assert user_policy_modules([task("test_stay_put"), task("scripted")]) == [__name__]
    assert user_policy_modules([task("scripted"), task("random")]) == []
