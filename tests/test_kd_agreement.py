"""The KD agreement measure: its scores and its held-out teacher decisions (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.studies.kd_agreement import (
    main,
    pursuit_scores,
    teacher_decisions,
    twentyone_scores,
)
from ld_envs.errors import InvalidArgument
from ld_envs.pursuit import NO_CHOICE, encode_targets


def _pursuit_obs(pursuers, evader):
    import gymnasium as gym

    import ld_envs  # noqa: F401

    env = gym.make("Pursuit-v0")
    obs, _ = env.reset(seed=0, options={"pursuers": pursuers, "evader": evader})
    return obs


def test_pursuit_scores_count_same_legal_and_nearer():
    pursuers, evader = [(2, 2), (10, 2), (2, 10)], (10, 10)
    obs = _pursuit_obs(pursuers, evader)
    teacher = encode_targets(pursuers, [(3, 3), (10, 4), (4, 10)])
    # A: the teacher's cell; B: stays (legal, not nearer); C: no readable choice
    student = encode_targets(pursuers, [(3, 3), (10, 2), None])
    assert student[2] == NO_CHOICE
    s = pursuit_scores([(obs, teacher)], [student])
    assert s["pursuer_decisions"] == 3
    assert s["same_as_teacher"] == pytest.approx(1 / 3)
    assert s["legal"] == pytest.approx(2 / 3)
    assert s["nearer_evader"] == pytest.approx(1 / 3)
    assert s["teacher_nearer_evader"] == 1.0


def test_twentyone_scores():
    pairs = [({}, 1), ({}, 0), ({}, 1), ({}, 0)]
    s = twentyone_scores(pairs, [1, 1, 0, 0])
    assert s["same_as_teacher"] == 0.5
    assert s["hit_rate"] == 0.5
    assert s["teacher_hit_rate"] == 0.5


def test_teacher_decisions_are_seeded_and_held_out():
    a = teacher_decisions("Pursuit-v0", "scripted", 10, seed=3)
    b = teacher_decisions("Pursuit-v0", "scripted", 10, seed=3)
    c = teacher_decisions("Pursuit-v0", "scripted", 10, seed=4)
    assert len(a) == 10
    key = lambda pairs: [(o["pursuers"].tolist(), list(t)) for o, t in pairs]  # noqa: E731
    assert key(a) == key(b)
    assert key(a) != key(c)
    # none of them comes from a shipped-trace start (trace seed 0) or a benchmark start
    import gymnasium as gym

    from ld_agents.kd import _benchmark_starts, _start_key, trace_seed

    env = gym.make("Pursuit-v0")
    training = {_start_key(env.reset(seed=trace_seed(0, k))[0]) for k in range(221)}
    bench = _benchmark_starts("Pursuit-v0", 0, 200, {})
    firsts = {_start_key(o) for o, _ in teacher_decisions("Pursuit-v0", "scripted", 40, seed=0)}
    assert not (firsts & training) and not (firsts & bench)
    assert all(np.asarray(t).shape == (3,) for _, t in a)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(InvalidArgument, match="unknown game 'chess'"):
        main(["--games", "chess", "--out", str(tmp_path)])
    with pytest.raises(InvalidArgument, match="--decisions must be >= 1"):
        main(["--decisions", "0", "--out", str(tmp_path)])
    with pytest.raises(InvalidArgument, match="exactly one game"):
        main(["--adapter", str(tmp_path), "--out", str(tmp_path)])
