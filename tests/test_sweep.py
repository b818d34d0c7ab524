"""Benchmark sweeps: seeds, records, resume after kill -9 / Ctrl-C, mismatches, executors, CLI."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from benchmarks.cli.main import main
from benchmarks.opponent_batch import OpponentBatcher
from benchmarks.results_io import (
    EPISODES_FILE,
    MANIFEST_FILE,
    RecordWriter,
    SweepMismatch,
    load_records,
)
from benchmarks.sweep import (
    PolicySpec,
    RunOptions,
    SweepSpec,
    episode_seed,
    load_sweep,
    policy_seed,
    record_key,
    run_sweep,
)
from ld_agents import base
from ld_agents.base import Policy
from ld_agents.baselines.pursuit import ScriptedPursuers
from ld_agents.llm.threads import plan_threads
from ld_envs.errors import InvalidArgument, UnknownName
from ld_envs.pursuit import EVADER_MOVES, steps_lower_bound

CHILD = Path(__file__).with_name("sweep_child.py")
SERIAL = RunOptions(progress=False)


def spec(*names: str, episodes: int = 6, seed: int = 0, chunk: int = 3, **env: Any) -> SweepSpec:
    return SweepSpec(
        "Pursuit-v0", [PolicySpec(n) for n in names], episodes, seed, env, chunk_size=chunk
    )


def keys(records: list[dict]) -> list[tuple]:
    return sorted(record_key(r) for r in records)


def lines(folder: Path) -> list[str]:
    path = folder / EPISODES_FILE
    return path.read_text().splitlines(keepends=True) if path.exists() else []


@pytest.fixture
def registered() -> Iterator[list[str]]:
    """Register test-only policies; remove them afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        for game in ("pursuit", "twentyone"):
            base._registry(game).remove(name)


class Batcher(Policy):
    """A batching test policy: random legal moves, logs its batch sizes, reports costs."""

    batch_sizes: list[int]

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed)
        self.batch_sizes = []
        self.calls = 0

    def act_batch(self, observations: list[Any]) -> list[np.ndarray]:
        self.batch_sizes.append(len(observations))
        self.calls += len(observations)
        out = []
        for obs in observations:
            legal = [np.flatnonzero(row) for row in obs["action_mask"]]
            out.append(np.array([row[self.np_random.integers(len(row))] for row in legal]))
        return out

    def act(self, obs: Any) -> Any:
        return self.act_batch([obs])[0]

    def cost_counters(self) -> dict[str, float]:
        return {"decisions": self.calls}

    def episode_summary(self) -> dict[str, Any]:
        return {"decisions_so_far": self.calls, "mode": "test"}


# --------------------------------------------------------------------------- seeds, records


def test_episode_seeds_are_stable_and_distinct():
    """Episode seeds depend only on (sweep seed, episode) and differ between episodes."""
    seeds = [episode_seed(0, i) for i in range(200)]
    assert seeds == [episode_seed(0, i) for i in range(200)]
    assert len(set(seeds)) == 200
    assert episode_seed(1, 0) != episode_seed(0, 0)
    assert policy_seed(0, 0) != episode_seed(0, 0)


def test_every_policy_meets_the_same_starts(tmp_path):
    """Episode i has the same env seed and start for every policy."""
    result = run_sweep(spec("scripted", "random", "random_blind"), tmp_path, SERIAL)
    starts: dict[int, set[str]] = {}
    for r in result.records:
        starts.setdefault(r["episode"], set()).add(json.dumps([r["env_seed"], r["start"]]))
    assert sorted(starts) == list(range(6))
    assert all(len(s) == 1 for s in starts.values())
    assert len({next(iter(s)) for s in starts.values()}) == 6  # and starts differ by episode


def test_records_hold_the_documented_fields(tmp_path):
    """One line per episode with outcome, steps, violations, reward, commit and the bound."""
    result = run_sweep(spec("scripted", "random_blind"), tmp_path, SERIAL)
    assert len(lines(tmp_path)) == 12
    for r in result.records:
        for key in ("policy", "episode", "env_seed", "outcome", "steps", "violations",
                    "reward", "wall_s", "commit", "start", "steps_lower_bound"):  # fmt: skip
            assert key in r
        start = r["start"]
        bound = steps_lower_bound([tuple(p) for p in start["pursuers"]], tuple(start["evader"]))
        assert r["steps_lower_bound"] == bound
    blind = [r for r in result.records if r["policy"] == "random_blind"]
    assert any(r["outcome"] == "failure_with_violation" and r["violations"] > 7 for r in blind)
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert manifest["env_id"] == "Pursuit-v0" and manifest["episodes"] == 6
    assert [p["label"] for p in manifest["policies"]] == ["scripted", "random_blind"]


def test_sweep_records_match_a_bare_loop(tmp_path):
    """A sweep's episode equals playing the env by hand with the documented seeds."""
    import gymnasium as gym

    import ld_agents

    result = run_sweep(spec("random", episodes=3), tmp_path, SERIAL)
    env = gym.make("Pursuit-v0")
    policy = ld_agents.make("random", "Pursuit-v0")
    for r in result.records:
        obs, _ = env.reset(seed=episode_seed(0, r["episode"]))
        policy.reset(seed=policy_seed(0, r["episode"]))
        total, done = 0.0, False
        while not done:
            obs, reward, term, trunc, info = env.step(policy.act(obs))
            total, done = total + reward, term or trunc
        assert (info["outcome"], info["steps"], info["violations"]) == (
            r["outcome"], r["steps"], r["violations"],
        )  # fmt: skip
        assert r["reward"] == pytest.approx(total)


def test_sequential_chunks_share_one_env_and_play_as_on_fresh_ones(tmp_path, monkeypatch):
    """A serial sweep of sequential chunks builds its env once (the input check's, shared
    by every chunk), and its records equal one-chunk and process-worker runs'."""
    from benchmarks import games

    games.drop_shared_env()
    built: list[str] = []
    real = games.build_env
    monkeypatch.setattr(games, "build_env", lambda *a, **k: built.append(a[0]) or real(*a, **k))

    def six(chunk: int) -> SweepSpec:
        return spec("random", "scripted", episodes=6, chunk=chunk, size=9)

    shared = run_sweep(six(2), tmp_path / "a", SERIAL)
    assert built == ["Pursuit-v0"]
    one_chunk = run_sweep(six(6), tmp_path / "b", SERIAL)
    fresh = run_sweep(six(2), tmp_path / "c", RunOptions("process", workers=2, progress=False))
    assert len(shared.records) == 12
    assert keys(shared.records) == keys(one_chunk.records) == keys(fresh.records)


# --------------------------------------------------------------------------- resume


def test_rerun_runs_nothing_and_keeps_the_file(tmp_path):
    """Running a finished sweep again plays no episode and leaves the file as it was."""
    run_sweep(spec("scripted"), tmp_path, SERIAL)
    before = (tmp_path / EPISODES_FILE).read_bytes()
    again = run_sweep(spec("scripted"), tmp_path, SERIAL)
    assert again.ran == 0 and len(again.records) == 6
    assert (tmp_path / EPISODES_FILE).read_bytes() == before


def test_adding_a_policy_runs_only_the_new_one(tmp_path):
    """A new policy joins an existing sweep; the old policy's episodes are not replayed."""
    run_sweep(spec("scripted"), tmp_path, SERIAL)
    result = run_sweep(spec("scripted", "random"), tmp_path, SERIAL)
    assert result.ran == 6
    assert result.policies == ["scripted", "random"]
    assert len(lines(tmp_path)) == 12


def test_torn_last_line_is_dropped_and_rewritten(tmp_path):
    """A last line cut short (kill -9 mid-write) is removed and its episode run again."""
    full = run_sweep(spec("random"), tmp_path, SERIAL).records
    text = lines(tmp_path)
    (tmp_path / EPISODES_FILE).write_text("".join(text[:-1]) + text[-1][:25])
    result = run_sweep(spec("random"), tmp_path, SERIAL)
    assert result.report.torn_bytes == 25 and result.ran == 1
    assert all(line.endswith("}\n") for line in lines(tmp_path))
    assert keys(result.records) == keys(full)


def test_corrupt_line_is_reported_with_its_number_and_the_rest_kept(tmp_path):
    """A corrupt middle line is reported by line number; the other lines are kept."""
    run_sweep(spec("scripted"), tmp_path, SERIAL)
    text = lines(tmp_path)
    text[2] = '{"policy": "scripted", "episo\n'
    (tmp_path / EPISODES_FILE).write_text("".join(text))
    records, report = load_records(tmp_path / EPISODES_FILE)
    assert [n for n, _ in report.corrupt] == [3]
    assert len(records) == 5
    assert "line 3" in report.messages(tmp_path / EPISODES_FILE)[0]
    result = run_sweep(spec("scripted"), tmp_path, SERIAL)
    assert result.ran == 1 and sorted(r["episode"] for r in result.records) == list(range(6))


def test_batched_resume_replays_the_whole_chunk_identically(tmp_path, registered):
    """A batching policy's chunk is re-run whole on resume; records equal the first run."""
    base.register("batcher", "pursuit")(lambda env_id, seed=None, **_: Batcher(seed))
    registered.append("batcher")
    first = run_sweep(spec("batcher", chunk=3), tmp_path / "a", SERIAL).records
    text = lines(tmp_path / "a")
    (tmp_path / "a" / EPISODES_FILE).write_text("".join(text[:4]))  # chunk 1 half done
    resumed = run_sweep(spec("batcher", chunk=3), tmp_path / "a", SERIAL)
    assert resumed.ran == 2
    assert keys(resumed.records) == keys(first)
    assert all(r["batched"] for r in first)


def test_batched_resume_checks_its_replay_against_the_records_on_disk(tmp_path, registered, caplog):
    """The episodes a resumed batched chunk replays but does not need are compared with
    their records: equal ones are tallied, a record that differs is named in a warning."""
    base.register("batcher", "pursuit")(lambda env_id, seed=None, **_: Batcher(seed))
    registered.append("batcher")
    run_sweep(spec("batcher", chunk=3), tmp_path / "a", SERIAL)
    recs = [json.loads(line) for line in lines(tmp_path / "a")]
    kept = [r for r in recs if r["chunk"] == 0] + [r for r in recs if r["chunk"] == 1][:2]
    path = tmp_path / "a" / EPISODES_FILE
    path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    with caplog.at_level("INFO", logger="benchmarks.replay"):
        assert run_sweep(spec("batcher", chunk=3), tmp_path / "a", SERIAL).ran == 1
    assert "batcher chunk 1: replayed 2 episodes already on disk: 2 match" in caplog.text
    assert "WARNING" not in [r.levelname for r in caplog.records]

    altered = kept[-1] | {"steps": kept[-1]["steps"] + 1}
    path.write_text("".join(json.dumps(r) + "\n" for r in [*kept[:-1], altered]))
    caplog.clear()
    with caplog.at_level("INFO", logger="benchmarks.replay"):
        run_sweep(spec("batcher", chunk=3), tmp_path / "a", SERIAL)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and f"replayed episode {altered['episode']} gave" in warned[0]
    assert "2 episodes already on disk: 1 match their records, 1 differ" in caplog.text


def test_batching_policy_gets_the_running_episodes_together(tmp_path, registered):
    """act_batch receives every running episode of the chunk; costs are shared out."""
    made: list[Batcher] = []

    def factory(env_id: str, seed: int | None = None, **_: Any) -> Batcher:
        made.append(Batcher(seed))
        return made[-1]

    base.register("batcher", "pursuit")(factory)
    registered.append("batcher")
    result = run_sweep(spec("batcher", episodes=4, chunk=4), tmp_path, SERIAL)
    sizes = made[0].batch_sizes
    assert sizes[0] == 4 and sizes == sorted(sizes, reverse=True)
    decisions = sum(r["cost"]["decisions"] for r in result.records)
    assert decisions == pytest.approx(made[0].calls)
    assert all(r["summary"]["mode"] == "test" for r in result.records)


def test_sequential_policy_summary_and_costs_are_per_episode(tmp_path, registered):
    """A non-batching policy's cost_counters() delta and episode_summary() land per record."""

    class Counting(Policy):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def act(self, obs: Any) -> np.ndarray:
            self.calls += 1
            return np.zeros(3, dtype=np.int64)  # everyone stays

        def cost_counters(self) -> dict[str, float]:
            return {"calls": self.calls}

        def episode_summary(self) -> dict[str, Any]:
            return {"note": np.int64(7)}

    base.register("counting", "pursuit")(lambda env_id, **_: Counting())
    registered.append("counting")
    result = run_sweep(spec("counting", episodes=2), tmp_path, SERIAL)
    for r in result.records:
        assert r["cost"]["calls"] == r["steps"]
        assert r["summary"] == {"note": 7}


def test_registered_evader_plays_like_the_builtin(tmp_path):
    """evader='scripted' (make(..., side='evader')) replays the built-in greedy evader."""
    builtin = run_sweep(spec("random", evader="greedy"), tmp_path / "a", SERIAL).records
    named = run_sweep(spec("random", evader="scripted"), tmp_path / "b", SERIAL).records
    assert keys(builtin) == keys(named)


def test_twentyone_policies_meet_the_same_decks(tmp_path):
    """21 points: game i deals the same opening hands to every policy."""
    small = SweepSpec("TwentyOne-v0", [PolicySpec("dealer"), PolicySpec("random")], 6, 3)
    result = run_sweep(small, tmp_path, SERIAL)
    hands: dict[int, set[str]] = {}
    for r in result.records:
        assert r["outcome"] in ("win", "loss", "draw") and r["reward"] in (1.0, -1.0, 0.0)
        assert r["steps"] >= 1 and "agent_total" in r
        hands.setdefault(r["episode"], set()).add(json.dumps(r["start"]))
    assert all(len(h) == 1 for h in hands.values()) and len(hands) == 6


def test_optimal_answers_the_opponent_the_env_plays():
    """The exact optimum is built for the sweep's opponent and card visibility."""
    from benchmarks.games import build_policy

    kwargs = {"opponent": "random", "open_cards": True}
    policy = build_policy(PolicySpec("optimal"), "TwentyOne-v0", kwargs)
    assert (policy.opponent, policy.open_cards) == ("random", True)
    assert build_policy(PolicySpec("optimal"), "TwentyOne-v0", {}).opponent == "dealer"


# --------------------------------------------------------------------------- the other side


class Fleeing(Policy):
    """A deterministic evader: the legal move farthest from the nearest pursuer (first wins)."""

    def __init__(self) -> None:
        super().__init__()
        self.batch_sizes: list[int] = []

    def act(self, obs: Any) -> int:
        ex, ey = obs["evader"].tolist()
        best, best_d = 0, -1
        for k, (dx, dy) in enumerate(EVADER_MOVES):
            if obs["action_mask"][k]:
                d = min(abs(ex + dx - px) + abs(ey + dy - py) for px, py in obs["pursuers"])
                best, best_d = (k, d) if d > best_d else (best, best_d)
        return best


class Hitter(Policy):
    """A deterministic 21-point player: hit below 17."""

    def __init__(self) -> None:
        super().__init__()
        self.batch_sizes: list[int] = []

    def act(self, obs: Any) -> int:
        return int(obs["own_total"] < 17)


class _RecordsBatches:
    """Mixin: an act_batch (so the sweep batches the policy) that logs its batch sizes."""

    batch_sizes: list[int]

    def act_batch(self, observations: list[Any]) -> list[int]:
        self.batch_sizes.append(len(observations))
        return [self.act(o) for o in observations]  # type: ignore[attr-defined]


class BatchedFleeing(_RecordsBatches, Fleeing):
    pass


class BatchedHitter(_RecordsBatches, Hitter):
    pass


class Stander(Policy):
    """A batching 21-point agent that always stands (the opponent then plays out)."""

    def act_batch(self, observations: list[Any]) -> list[int]:
        return [0] * len(observations)


def _outcomes(records: list[dict]) -> list[tuple]:
    fields = ("outcome", "steps", "reward", "violations", "agent_total", "opponent_total")
    return sorted((r["episode"], *(r.get(f) for f in fields)) for r in records)


@pytest.mark.parametrize("agent_batches", [True, False])
@pytest.mark.parametrize("game", ["pursuit", "twentyone"])
def test_a_batching_other_side_answers_every_running_lane_in_one_call(
    tmp_path, registered, game, agent_batches
):
    """An other side with act_batch gets each round's observations together (one call per
    round, not per episode), whether the agent batches or not (then the episodes step in
    lockstep, each with its own copy of the agent), and every episode ends exactly as with
    the same policy answering one observation at a time."""
    made: list[Any] = []
    plain, batched = (Fleeing, BatchedFleeing) if game == "pursuit" else (Hitter, BatchedHitter)
    for name, cls in (("other_plain", plain), ("other_batched", batched)):
        base.register(name, game)(
            lambda env_id, _c=cls, side=None, **_: made.append(_c()) or made[-1]
        )
        registered.append(name)
    if game == "pursuit":
        base.register("agent", game)(lambda env_id, seed=None, **_: Batcher(seed))
        env_id, key = "Pursuit-v0", "evader"
    else:
        base.register("agent", game)(lambda env_id, seed=None, **_: Stander(seed))
        env_id, key = "TwentyOne-v0", "opponent"
    registered.append("agent")
    agent = "agent" if agent_batches else "random"  # the registered random: not batching
    runs = {}
    for name in ("other_plain", "other_batched"):
        sweep = SweepSpec(env_id, [PolicySpec(agent)], 8, 0, {key: name}, chunk_size=8)
        runs[name] = run_sweep(sweep, tmp_path / name, SERIAL).records
    assert all(r["batched"] is agent_batches for r in runs["other_batched"])
    assert _outcomes(runs["other_batched"]) == _outcomes(runs["other_plain"])
    sizes = made[-1].batch_sizes
    assert made[0].batch_sizes == []  # the plain one was asked one observation at a time
    assert sizes and max(sizes) > 1
    if agent_batches:  # the standing agent: every lane asks in the first round
        assert sizes[0] == 8
    assert all(r.get("opponent_batched") for r in runs["other_batched"])
    assert not any(r.get("opponent_batched") for r in runs["other_plain"])


def test_opponent_batcher_surfaces_a_failing_act_batch_and_acts_directly_outside_a_round():
    """A failing act_batch is raised from step_all (no lane left waiting); a plain call
    outside step_all goes straight to the policy."""

    class Broken(Policy):
        def act(self, obs: Any) -> int:
            return 7

        def act_batch(self, observations: list[Any]) -> list[int]:
            raise ValueError("model fell over")

    threads = threading.active_count()
    batcher = OpponentBatcher(Broken())
    obs, _ = gym.make("TwentyOne-v0").reset(seed=0)  # an observation the policy reads
    assert batcher.act(obs) == 7
    with pytest.raises(ValueError, match="fell over"):
        batcher.step_all([lambda: batcher.act(obs), lambda: batcher.act(obs)])
    assert threading.active_count() == threads  # no lane left waiting

    def boom() -> None:
        raise KeyError("lane failed")

    # a lane that fails while another waits: the other is still answered
    served = OpponentBatcher(BatchedHitter())
    with pytest.raises(KeyError, match="lane failed"):
        served.step_all([lambda: served.act({"own_total": 20}), boom])
    assert served.answered == 1 and threading.active_count() == threads
    # a lane that never asks finishes normally next to one that asks twice
    ok = OpponentBatcher(BatchedHitter())
    two = {"own_total": 3}
    assert ok.step_all([lambda: 5, lambda: (ok.act(two), ok.act(two))]) == [5, (1, 1)]
    assert ok.rounds == 2 and ok.answered == 2


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("change", "field"),
    [({"seed": 1}, "seed"), ({"episodes": 7}, "episodes"),
     ({"env": {"evader": "random"}}, "env_kwargs")],
)  # fmt: skip
def test_folder_of_another_sweep_fails_naming_the_difference(tmp_path, change, field):
    """A folder holding another sweep raises SweepMismatch naming what differs."""
    run_sweep(spec("scripted"), tmp_path, SERIAL)
    kwargs: dict[str, Any] = {"episodes": 6, "seed": 0}
    kwargs.update({k: v for k, v in change.items() if k != "env"})
    other = spec("scripted", **kwargs, **change.get("env", {}))
    with pytest.raises(SweepMismatch, match=field):
        run_sweep(other, tmp_path, SERIAL)


def test_other_env_in_folder_is_a_mismatch(tmp_path):
    """The same folder cannot hold a Pursuit-v0 and a PursuitRestricted-v0 sweep."""
    run_sweep(spec("scripted"), tmp_path, SERIAL)
    other = SweepSpec("PursuitRestricted-v0", [PolicySpec("scripted")], 6, 0, chunk_size=3)
    with pytest.raises(SweepMismatch, match="env_id"):
        run_sweep(other, tmp_path, SERIAL)


def test_same_label_with_other_kwargs_is_a_mismatch(tmp_path):
    """Re-running a label with different policy kwargs fails instead of mixing results."""
    run_sweep(spec("random"), tmp_path, SERIAL)
    changed = SweepSpec("Pursuit-v0", [PolicySpec("random", {"masked": False})], 6, 0, chunk_size=3)
    with pytest.raises(SweepMismatch, match="random"):
        run_sweep(changed, tmp_path, SERIAL)


def test_folder_in_use_by_a_running_sweep_is_refused(tmp_path):
    """A second sweep cannot write into a folder another running sweep holds."""
    fd = os.open(tmp_path / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(SweepMismatch, match="in use"):
            run_sweep(spec("scripted"), tmp_path, SERIAL)
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("make", "error", "text"),
    [
        (lambda: spec("clever"), UnknownName, "scripted"),
        (lambda: SweepSpec("Chess-v0", [PolicySpec("scripted")]), UnknownName, "Pursuit-v0"),
        (lambda: spec("scripted", episodes=0), InvalidArgument, "episodes must be >= 1"),
        (lambda: spec("scripted", "scripted"), InvalidArgument, "twice"),
        (lambda: spec("scripted", evader="fox"), UnknownName, "greedy"),
        (lambda: RunOptions(executor="dask"), UnknownName, "ray"),
        (lambda: RunOptions(workers=0), InvalidArgument, "workers"),
        (lambda: RunOptions(sync_every=0), InvalidArgument, "sync_every"),
        (lambda: RunOptions(sync_after=0), InvalidArgument, "sync_after"),
        (lambda: RunOptions(threads=0), InvalidArgument, "threads"),
        (lambda: PolicySpec("raw", {"model": object()}), InvalidArgument, "JSON"),
    ],
)
def test_bad_settings_fail_with_a_clear_message(make, error, text):
    """Unknown names list the known ones; out-of-range numbers name the field."""
    with pytest.raises(error, match=text):
        make()


# --------------------------------------------------------------------------- executors


@pytest.mark.parametrize("executor", ["process", "ray"])
def test_executors_give_the_serial_records(tmp_path, executor):
    """Local processes and a local 2-CPU Ray instance reproduce the serial records."""
    if executor == "ray":
        pytest.importorskip("ray")
    small = spec("scripted", "random", episodes=5, chunk=2)
    serial = run_sweep(small, tmp_path / "serial", SERIAL).records
    other = run_sweep(
        small, tmp_path / executor, RunOptions(executor=executor, workers=2, progress=False)
    )
    assert other.ran == 10
    assert keys(other.records) == keys(serial)
    assert len(lines(tmp_path / executor)) == 10
    run = json.loads((tmp_path / executor / MANIFEST_FILE).read_text())["last_run"]
    assert run["executor"] == executor and run["workers"] == 2
    assert run["threads"] == plan_threads(2).to_json()  # each worker: cores // 2 threads
    assert "cpu_model" in run["cpu"]


# --------------------------------------------------------------------------- interruption


#: runs ``sweep_child.py`` with ``os.fsync`` a no-op: every line stays in the page cache only
NO_FSYNC = (
    "import os, runpy, sys; os.fsync = lambda fd: None; sys.argv = sys.argv[1:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


def _child(out: Path, *extra: str, fsync: bool = True) -> list[str]:
    python = [sys.executable] if fsync else [sys.executable, "-c", NO_FSYNC]
    return [
        *python, str(CHILD), "bench", "Pursuit-v0", "--policies", "scripted,slow_random",
        "--episodes", "24", "--chunk-size", "6", "--seed", "5", "--out", str(out), *extra,
    ]  # fmt: skip


def _reference(tmp_path: Path, registered: list[str]) -> list[tuple]:
    import sweep_child

    registered.append("slow_random")
    base.register("slow_random", "pursuit")(sweep_child._slow_random)
    sweep_child.DELAY = 0.0
    ref = SweepSpec(
        "Pursuit-v0", [PolicySpec("scripted"), PolicySpec("slow_random")], 24, 5, chunk_size=6
    )
    return keys(run_sweep(ref, tmp_path / "reference", SERIAL).records)


def _interrupt_midway(out: Path, sig: int, fsync: bool = True) -> subprocess.CompletedProcess:
    # slow enough that the rest of the sweep outlasts a busy parent's polling (a fresh-clone
    # run on a loaded 2-core machine once saw the child finish before the signal landed)
    env = {**os.environ, "CI": "1", "SLOW_RANDOM_DELAY": "0.02"}
    # an ignored SIGINT is inherited through exec, and pytest itself may run with SIGINT
    # ignored (started in the background: `cmd &` in a script, nohup, some CI runners), in
    # which case Python installs no KeyboardInterrupt handler in the child: give the child
    # the default disposition, as a shell does for a foreground command
    proc = subprocess.Popen(
        _child(out, fsync=fsync),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while len(lines(out)) < 30:  # all 24 scripted episodes and some slow_random ones
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(sig)  # the callers check the exit status: killed, not finished
    stdout, stderr = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.parametrize("fsync", [True, False], ids=["batched-fsync", "no-fsync"])
def test_sigkill_midway_then_resume_equals_an_uninterrupted_run(tmp_path, registered, fsync):
    """kill -9 mid-sweep, rerun the same command: every episode once, as if never killed;
    so too when the killed sweep never fsynced (its lines were in the page cache only)."""
    out = tmp_path / "killed"
    killed = _interrupt_midway(out, signal.SIGKILL, fsync)
    assert killed.returncode == -signal.SIGKILL
    done_before = len(lines(out))
    assert 30 <= done_before < 48
    with open(out / EPISODES_FILE, "a") as fh:  # as if the kill had landed mid-write
        fh.write('{"policy": "slow_random", "epi')
    resumed = subprocess.run(
        _child(out, "--no-progress"), capture_output=True, text=True, timeout=120,
        env={**os.environ, "CI": "1", "SLOW_RANDOM_DELAY": "0"},
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "torn" in resumed.stderr
    final = load_sweep(out).records
    assert len(lines(out)) == 48 == len(final)
    assert keys(final) == _reference(tmp_path, registered)


def test_ctrl_c_midway_exits_130_then_resume_equals_an_uninterrupted_run(tmp_path, registered):
    """Ctrl-C stops the sweep with exit 130 and no traceback; a rerun completes it exactly."""
    out = tmp_path / "interrupted"
    stopped = _interrupt_midway(out, signal.SIGINT)
    assert stopped.returncode == 130
    assert b"interrupted" in stopped.stderr and b"Traceback" not in stopped.stderr
    assert len(lines(out)) < 48
    resumed = subprocess.run(
        _child(out), capture_output=True, text=True, timeout=120,
        env={**os.environ, "CI": "1", "SLOW_RANDOM_DELAY": "0"},
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert keys(load_sweep(out).records) == _reference(tmp_path, registered)


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --------------------------------------------------------------------------- batched fsync


def _record(i: int) -> dict[str, Any]:
    return {"policy": "p", "episode": i, "env_seed": i, "outcome": "capture", "steps": 1,
            "violations": 0, "reward": 1.0}  # fmt: skip


@pytest.fixture
def fsyncs(monkeypatch) -> list[int]:
    """``os.fsync`` replaced by a list of the descriptors it was called with."""
    calls: list[int] = []
    monkeypatch.setattr(os, "fsync", calls.append)
    return calls


def test_record_writer_fsyncs_every_n_records_on_demand_and_at_close(tmp_path, fsyncs):
    """Every line is in the file as soon as it is appended; fsync comes after every
    ``sync_every`` lines, with ``sync=True``, and once at close (not twice)."""
    path = tmp_path / "r.jsonl"
    writer = RecordWriter(path, sync_every=3, sync_after=3600)
    for i in range(7):
        writer.append([_record(i)])
        assert len(load_records(path)[0]) == i + 1  # readable before any fsync
    assert len(fsyncs) == 2 and writer.syncs == 2
    writer.append([_record(7)], sync=True)
    assert len(fsyncs) == 3
    writer.append([_record(8)])
    writer.close()
    writer.close()
    assert len(fsyncs) == 4
    assert [r["episode"] for r in load_records(path)[0]] == list(range(9))


def test_record_writer_fsyncs_a_waiting_line_after_sync_after_seconds(tmp_path, fsyncs):
    """A line written between fsyncs is fsynced by a timer ``sync_after`` seconds later,
    once; a close with nothing waiting does not fsync again; no timer thread outlives it."""
    threads = threading.active_count()
    writer = RecordWriter(tmp_path / "r.jsonl", sync_every=100, sync_after=0.05)
    writer.append([_record(0)])
    deadline = time.monotonic() + 30
    while not fsyncs:
        assert time.monotonic() < deadline, "the timer never fsynced"
        time.sleep(0.01)
    time.sleep(0.2)
    writer.append([_record(1)])  # arms a timer again; close fsyncs and stops it
    writer.close()
    assert len(fsyncs) == 2
    assert threading.active_count() == threads


def test_a_sweep_fsyncs_in_batches_not_per_record(tmp_path, fsyncs):
    """A 20-record serial sweep fsyncs its results file once (at the end), not 20 times;
    ``sync_every=1`` brings back one fsync per record."""
    no_timer = RunOptions(progress=False, sync_after=3600)  # however slow the machine
    batched = run_sweep(spec("scripted", "random", episodes=10, chunk=2), tmp_path / "a", no_timer)
    assert batched.syncs == 1
    per_record = RunOptions(progress=False, sync_every=1)
    every = run_sweep(spec("scripted", "random", episodes=10, chunk=2), tmp_path / "b", per_record)
    assert every.syncs == 20
    assert keys(every.records) == keys(batched.records)


KILL_BETWEEN_FSYNCS = """
import os, sys, time
from benchmarks.results_io import RecordWriter
os.fsync = lambda fd: sys.exit("fsync was called")
writer = RecordWriter(sys.argv[1], sync_every=10**9, sync_after=3600)
for i in range(50):
    writer.append([{"policy": "p", "episode": i, "env_seed": i, "outcome": "capture",
                    "steps": 1, "violations": 0, "reward": 1.0}])
print("written", flush=True)
time.sleep(120)
"""


def test_kill_9_between_fsyncs_loses_no_written_line(tmp_path):
    """A process killed with SIGKILL after writing 50 lines and before any fsync leaves all
    50 in the file: written lines live in the page cache, not in the process."""
    path = tmp_path / "r.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_BETWEEN_FSYNCS, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"written\n", proc.communicate(timeout=60)[1]
    proc.kill()
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    records, report = load_records(path)
    assert [r["episode"] for r in records] == list(range(50))
    assert report.torn_bytes == 0 and not report.corrupt


def test_sigkill_of_a_process_pool_sweep_leaves_no_workers_and_resumes(tmp_path):
    """kill -9 of a sweep on local processes: its workers exit; the rerun completes it."""
    out = tmp_path / "pool"
    argv = ["bench", "PursuitRestricted-v0", "--policies", "random", "--episodes", "80",
            "--chunk-size", "5", "--workers", "2", "--no-progress", "--out", str(out)]  # fmt: skip
    cmd = [sys.executable, "-m", "benchmarks.cli.main", *argv]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(lines(out)) < 20:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    workers = _children(proc.pid)
    assert workers
    proc.kill()
    proc.communicate()
    assert len(lines(out)) < 80
    deadline = time.monotonic() + 15
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers)
    assert subprocess.run(cmd, capture_output=True, timeout=120).returncode == 0
    reference = SweepSpec("PursuitRestricted-v0", [PolicySpec("random")], 80, 0, chunk_size=5)
    expected = run_sweep(reference, tmp_path / "reference", SERIAL).records
    assert keys(load_sweep(out).records) == keys(expected)


# --------------------------------------------------------------------------- command line


def test_progress_bar_off_in_ci_and_when_asked(monkeypatch):
    """Progress bars: off with CI set or when switched off, on when asked for."""
    from benchmarks.sweep import progress_enabled

    monkeypatch.setenv("CI", "1")
    assert progress_enabled(None) is False
    assert progress_enabled(False) is False and progress_enabled(True) is True


def test_cli_bench_prints_the_table_and_saves_it(tmp_path, capsys):
    """ld-gym bench runs the sweep, prints the table, and writes Markdown and CSV."""
    rc = main(["bench", "Pursuit-v0", "--policies", "scripted,random", "--episodes", "4",
               "--out", str(tmp_path), "--no-progress", "--paired", "scripted,random"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert "scripted" in out and "100.0% [51.0, 100.0]" in out
    assert "Paired comparisons" in out
    for name in ("table.md", "table.csv", "paired.csv", EPISODES_FILE, MANIFEST_FILE):
        assert (tmp_path / name).exists()


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["--policies", "clever"], "unknown policy for Pursuit-v0 'clever'; known:"),
        (["--policies", "scripted", "--episodes", "0"], "episodes must be >= 1"),
        (["--policies", "scripted", "--evader", "fox"], "unknown evader 'fox'"),
        (["--policies", "scripted", "--paired", "scripted,ghost"], "policy label 'ghost'"),
        (["--policies", "scripted", "--paper-family", "GPT"], "unknown paper model family"),
        (
            ["--policies", "scripted", "--evader", "random", "--evader-model", "hf:embedded"],
            "--evader-model needs --evader naming an LLM policy, not random",
        ),
        (["--policies", "scripted", "--executor", "serial", "--workers", "2"], "one worker"),
    ],
)
def test_cli_bad_input_exits_1_with_a_message_and_no_traceback(tmp_path, capsys, argv, text):
    """Bad input prints one clear error line and exits 1, without a traceback."""
    rc = main(["bench", "Pursuit-v0", "--episodes", "2", "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert rc == 1
    assert text in err and "Traceback" not in err


def test_cli_unknown_env_and_mismatched_folder_exit_1(tmp_path, capsys):
    """An unknown env id and a folder of another sweep both exit 1 with the reason."""
    assert main(["bench", "Chess-v0", "--policies", "scripted", "--out", str(tmp_path)]) == 1
    assert "unknown env id 'Chess-v0'" in capsys.readouterr().err
    common = ["bench", "Pursuit-v0", "--policies", "scripted", "--out", str(tmp_path)]
    assert main([*common, "--episodes", "2", "--no-progress"]) == 0
    capsys.readouterr()
    assert main([*common, "--episodes", "3"]) == 1
    assert "episodes: the folder has 2, this run asks for 3" in capsys.readouterr().err


# --------------------------------------------------------------------------- step journal


class PrimingPursuers(ScriptedPursuers):
    """A deterministic batching agent with ``prime``; Ctrl-C at its ``stop_at``-th call."""

    stop_at: int | None = None

    def __init__(self) -> None:
        super().__init__()
        self.calls = self.decisions = self.primed = 0

    def act_batch(self, observations: list[Any]) -> list[Any]:
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        self.decisions += len(observations)
        return [self.act(o) for o in observations]

    def prime(self, observations: list[Any]) -> None:
        self.primed += 1

    def cost_counters(self) -> dict[str, float]:
        return {"decisions": self.decisions, "primed": self.primed}


class PrimingFleeing(BatchedFleeing):
    def __init__(self) -> None:
        super().__init__()
        self.primed: list[int] = []

    def prime(self, observations: list[Any]) -> None:
        self.primed.append(len(observations))


def _no_wall(records: list[dict]) -> list[dict]:
    return sorted(
        ({k: v for k, v in r.items() if k not in ("wall_s", "commit")} for r in records),
        key=lambda r: r["episode"],
    )


def test_interrupted_batched_chunk_resumes_from_its_journal_at_the_step_it_stopped(
    tmp_path, registered
):
    """A batched chunk whose policy and other side can prime journals each step; after
    Ctrl-C a rerun replays the journaled steps without asking either side (they only
    prime), goes on live, and writes records equal to an uninterrupted run's, costs
    included; the journal is removed when the chunk ends."""
    agents: list[PrimingPursuers] = []
    evaders: list[PrimingFleeing] = []

    def agent(env_id: str, **_: Any) -> PrimingPursuers:
        agents.append(PrimingPursuers())
        return agents[-1]

    def evader(env_id: str, side: str | None = None, **_: Any) -> PrimingFleeing:
        evaders.append(PrimingFleeing())
        return evaders[-1]

    base.register("priming", "pursuit")(agent)
    base.register("priming_evader", "pursuit")(evader)
    registered.extend(["priming", "priming_evader"])
    other = {"evader": "priming_evader"}
    sweep = SweepSpec("Pursuit-v0", [PolicySpec("priming")], 6, 0, other, chunk_size=6)
    whole = run_sweep(sweep, tmp_path / "whole", SERIAL).records
    steps, rounds = agents[-1].calls, len(evaders[-1].batch_sizes)
    assert steps > 4 and not (tmp_path / "whole" / "journal").exists()

    PrimingPursuers.stop_at = 4
    try:
        with pytest.raises(KeyboardInterrupt):
            run_sweep(sweep, tmp_path / "cut", SERIAL)
    finally:
        PrimingPursuers.stop_at = None
    journal = tmp_path / "cut" / "journal" / "priming-chunk0.jsonl"
    assert len(journal.read_text().splitlines()) == 1 + 3  # the header and three steps
    before = len(load_records(tmp_path / "cut" / EPISODES_FILE)[0])

    resumed = run_sweep(sweep, tmp_path / "cut", SERIAL)
    assert (agents[-1].primed, agents[-1].calls) == (3, steps - 3)
    assert len(evaders[-1].primed) == 3  # one round per step here
    assert len(evaders[-1].batch_sizes) == rounds - 3
    assert resumed.ran == 6 - before
    assert _no_wall(resumed.records) == _no_wall(whole)
    assert not journal.exists()


def test_journal_of_another_run_is_set_aside_and_a_torn_step_dropped(tmp_path):
    """A journal whose header names another task starts the chunk over; a torn last line
    is cut off, the steps before it kept."""
    from benchmarks.journal import StepJournal, decode_value, encode_value

    path = tmp_path / "j.jsonl"
    first = StepJournal(path, {"seed": 0})
    action = np.array([3, 1, 12], dtype=np.int64)
    for step in range(2):
        first.append({"step": step, "actions": encode_value([action, np.int64(5)])})
    first.close()
    with open(path, "a") as fh:
        fh.write('{"step": 2, "act')
    again = StepJournal(path, {"seed": 0})
    assert [s["step"] for s in again.steps] == [0, 1]
    got = decode_value(again.steps[1]["actions"])
    assert got[0].dtype == np.int64 and got[0].tolist() == [3, 1, 12] and got[1] == 5
    again.close()
    assert StepJournal(path, {"seed": 1}).steps == []


def test_drop_policy_removes_one_row_so_it_can_be_played_again_with_new_settings(tmp_path):
    """A policy whose settings changed (a re-pinned adapter) is refused in its old folder;
    drop_policy removes its manifest entry and episodes and keeps the others byte for
    byte, and the new settings then play the row again."""
    from benchmarks.sweep import drop_policy

    run_sweep(spec("scripted", "random"), tmp_path, SERIAL)
    before = {
        record_key(r): r
        for r in load_records(tmp_path / EPISODES_FILE)[0]
        if r["policy"] == "scripted"
    }
    changed = SweepSpec("Pursuit-v0", [PolicySpec("random", {"seed": 3})], 6, 0, {}, chunk_size=3)
    with pytest.raises(SweepMismatch, match="policy 'random' was run as"):
        run_sweep(changed, tmp_path, SERIAL)
    assert drop_policy(tmp_path, "random") == 6
    with pytest.raises(UnknownName, match="random_blind"):
        drop_policy(tmp_path, "random_blind")
    result = run_sweep(changed, tmp_path, SERIAL)
    assert result.ran == 6
    after = load_records(tmp_path / EPISODES_FILE)[0]
    assert {record_key(r): r for r in after if r["policy"] == "scripted"} == before
    assert [p["kwargs"] for p in load_sweep(tmp_path).manifest["policies"]] == [{}, {"seed": 3}]


@pytest.mark.parametrize(
    "build,words",
    [
        (lambda: PolicySpec("scripted", label="../../evil"), "slashes"),
        (lambda: SweepSpec("Pursuit-v0", "scripted", 2, 0), "list of PolicySpec"),
        (lambda: SweepSpec("Pursuit-v0", ["scripted"], 10**20, 0), "at most 10,000,000"),
        (lambda: RunOptions(progress="no"), "progress must be"),
        (lambda: RunOptions(executor="serial", workers=2), "serial executor runs one worker"),
    ],
)
def test_sweep_settings_of_the_wrong_kind_are_refused_naming_them(build, words):
    """A label that would name files outside the folder, a policy list given as one string
    (read as its letters), an episode count no sweep could plan and a progress flag that is
    not a bool are refused at once."""
    with pytest.raises(InvalidArgument, match=words):
        build()


def test_run_sweep_refuses_options_of_the_wrong_type_before_writing(tmp_path):
    """A dict where RunOptions is wanted is refused, and nothing is written."""
    spec = SweepSpec("Pursuit-v0", [PolicySpec("scripted")], 2, 0)
    with pytest.raises(InvalidArgument, match="options must be a RunOptions"):
        run_sweep(spec, tmp_path / "s", {"executor": "serial"})  # type: ignore[arg-type]
    assert not (tmp_path / "s").exists()


def test_overwrite_replaces_episodes_that_no_sweep_record_explains(tmp_path):
    """Episodes in a folder without a sweep record are refused with the advice to pass
    --overwrite, and --overwrite then replaces them (it used to refuse again)."""
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "episodes.jsonl").write_text('{"policy": "x", "episode": 0}\n')
    spec = SweepSpec("Pursuit-v0", [PolicySpec("scripted")], 2, 0)
    with pytest.raises(SweepMismatch, match="pass --overwrite"):
        run_sweep(spec, folder, RunOptions(progress=False))
    result = run_sweep(spec, folder, RunOptions(progress=False), overwrite=True)
    assert [r["policy"] for r in result.records] == ["scripted", "scripted"]
