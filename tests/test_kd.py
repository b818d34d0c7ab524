"""KD pipeline: traces from seeded starts, a short real LoRA run, the kd policy."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest

import ld_agents
from ld_agents.kd import TraceSet, _benchmark_starts, _start_key, collect_traces, train_kd
from ld_agents.prompts import parse_pursuer_answer
from ld_envs.errors import InvalidArgument


@pytest.fixture(scope="module")
def traces():
    return collect_traces(
        ld_agents.make("scripted", "Pursuit-v0"), "Pursuit-v0", n_starts=6, seed=3
    )


def test_traces_are_reproducible_from_their_seed(traces):
    """The same teacher, env and seed give the same traces; another seed does not."""
    again = collect_traces(
        ld_agents.make("scripted", "Pursuit-v0"), "Pursuit-v0", n_starts=6, seed=3
    )
    other = collect_traces(
        ld_agents.make("scripted", "Pursuit-v0"), "Pursuit-v0", n_starts=6, seed=4
    )
    assert again.fingerprint() == traces.fingerprint() != other.fingerprint()


def test_trace_starts_are_not_benchmark_starts(traces):
    """No trace start is one of the 200 benchmark starts of sweep seed 0."""
    bench = _benchmark_starts("Pursuit-v0", 0, 200, {})
    env = gym.make("Pursuit-v0")
    for s in {r["env_seed"] for r in traces.rows}:
        obs, _ = env.reset(seed=s)
        assert _start_key(obs) not in bench


def test_stand_in_teacher_is_labelled_and_answers_parse(traces):
    """A non-LLM teacher is labelled a stand-in; its answers parse to legal targets."""
    assert traces.meta["teacher_kind"].startswith("stand-in")
    assert traces.meta["decisions"] == len(traces.rows) > 6
    for row in traces.rows[:20]:
        assert None not in parse_pursuer_answer(row["answer"])
        assert row["prompt"].endswith("Answer:")


def test_traces_round_trip_and_malformed_file_is_named(traces, tmp_path):
    """Saved traces load back equal; a broken line is reported with its number."""
    folder = traces.save(tmp_path / "t")
    assert TraceSet.load(folder).fingerprint() == traces.fingerprint()
    with open(folder / "traces.jsonl", "a") as fh:
        fh.write("{not json\n")
    with pytest.raises(InvalidArgument, match=rf"traces.jsonl:{len(traces.rows) + 1}"):
        TraceSet.load(folder)
    with pytest.raises(InvalidArgument, match=r"no traces\.jsonl"):
        TraceSet.load(tmp_path / "missing")


@pytest.mark.llm
def test_kd_student_trains_reloads_and_acts_identically(traces, tmp_path):
    """A short KD run gives an adapter; two kd policies built from it answer alike."""
    from ld_agents.kd import kd_backend_spec
    from ld_agents.llm.base import make_backend

    record = train_kd(
        TraceSet(traces.rows[:2], traces.meta),
        tmp_path / "kd",
        max_steps=1,
        batch_size=2,
        save_steps=1,
        progress=False,
        max_length=1024,
    )
    assert record["global_step"] == 1
    adapter = tmp_path / "kd" / "adapter"
    env = gym.make("Pursuit-v0")
    obs, _ = env.reset(seed=11)
    spec = kd_backend_spec(adapter)
    a = ld_agents.make("kd", "Pursuit-v0", model=make_backend(spec), max_new_tokens=12)
    b = ld_agents.make("kd", "Pursuit-v0", model=make_backend(spec), max_new_tokens=12)
    assert a.act(obs).tolist() == b.act(obs).tolist()
    assert a.last_exchange[0][1] == b.last_exchange[0][1]
    env.step(a.act(obs))


def test_missing_adapter_is_a_clear_error(tmp_path):
    """A kd policy without an adapter folder says how to get one."""
    with pytest.raises(InvalidArgument, match="no KD adapter"):
        ld_agents.make("kd", "Pursuit-v0", adapter=tmp_path)


def test_twentyone_traces_render_the_teachers_choice_and_skip_benchmark_deals():
    """21-point traces: the raw prompt, the teacher's hit/stand as the answer (the optimal
    policy's own choice on that observation), reproducible, no benchmark deal."""
    from ld_agents.kd import trace_seed
    from ld_agents.prompts import parse_hit_stand

    teacher = ld_agents.make("optimal", "TwentyOne-v0")
    traces = collect_traces(teacher, "TwentyOne-v0", n_starts=12, seed=5)
    again = collect_traces(
        ld_agents.make("optimal", "TwentyOne-v0"), "TwentyOne-v0", n_starts=12, seed=5
    )
    assert traces.fingerprint() == again.fingerprint()
    assert traces.meta["teacher_kind"].startswith("stand-in")
    assert {r["answer"] for r in traces.rows} <= {" hit", " stand"}
    assert len(traces.rows) >= 12
    bench = _benchmark_starts("TwentyOne-v0", 0, 200, {})
    assert not {("seed", r["env_seed"]) for r in traces.rows} & bench
    # replay the first start: the recorded answers are the teacher's actions
    env = gym.make("TwentyOne-v0")
    obs, _ = env.reset(seed=trace_seed(5, 0))
    for row in (r for r in traces.rows if r["start"] == 0):
        assert parse_hit_stand(row["answer"]) == teacher.act(obs)
        assert "Do you hit or stand?" in row["prompt"]
        obs, *_ = env.step(teacher.act(obs))


def test_kd_is_registered_for_both_games(tmp_path):
    """`kd` exists for pursuit and 21 points and names the missing adapter for each."""
    for env_id in ("Pursuit-v0", "TwentyOne-v0"):
        assert "kd" in ld_agents.known_policies(env_id)
        with pytest.raises(InvalidArgument, match="no KD adapter"):
            ld_agents.make("kd", env_id, adapter=tmp_path)


def _shipped(env_id: str) -> bool:
    from ld_agents.kd import default_adapter

    return (default_adapter(env_id) / "adapter_config.json").is_file()


@pytest.mark.llm
@pytest.mark.parametrize("env_id", ["Pursuit-v0", "TwentyOne-v0"])
def test_shipped_kd_students_load_with_their_record_and_answer_readably(env_id):
    """The shipped KD adapters load on the embedded model (checked against it), carry their
    traces' record (stand-in teacher, fingerprint), and answer in the teacher's form."""
    import json

    from ld_agents.kd import default_adapter
    from ld_agents.lora import RUN_FILE

    if not _shipped(env_id):
        pytest.skip(f"no shipped KD adapter for {env_id}")
    record = json.loads((default_adapter(env_id).parent / RUN_FILE).read_text())
    traces = record["train_config"]["extra"]["traces"]
    assert traces["teacher_kind"].startswith("stand-in") and traces["fingerprint"]
    assert record["global_step"] >= 1 and record["base_model"]
    policy = ld_agents.make("kd", env_id, max_new_tokens=30)
    env = gym.make(env_id)
    observations = [env.reset(seed=s)[0] for s in range(4)]
    policy.act_batch(observations)
    assert policy.unreadable == 0
    for _, answer in policy.last_exchange:
        if env_id == "TwentyOne-v0":
            assert answer.strip() in ("hit", "stand")
        else:
            assert None not in parse_pursuer_answer(answer)


def test_traces_command_writes_under_runs_by_default(tmp_path, monkeypatch, capsys):
    """`ld-gym traces` without --out writes runs/traces-ENV-TEACHER-seedN in the current
    folder (never assets/); train-kd's default run folder follows from its name."""
    from benchmarks.cli.main import main
    from ld_agents.kd import default_kd_dir

    monkeypatch.chdir(tmp_path)
    assert main(["traces", "TwentyOne-v0", "--teacher", "optimal", "--starts", "2"]) == 0
    folder = tmp_path / "runs" / "traces-TwentyOne-v0-optimal-seed0"
    assert TraceSet.load(folder).meta["n_starts"] == 2
    assert "traces-TwentyOne-v0-optimal-seed0/traces.jsonl" in capsys.readouterr().out
    assert default_kd_dir(folder) == Path("runs/kd-TwentyOne-v0-optimal-seed0")


def test_command_options_all_have_help():
    """Every option of `ld-gym traces` and `ld-gym train-kd` says what it does."""
    import argparse

    from benchmarks.cli import traces as traces_cli
    from benchmarks.cli import train_kd as train_kd_cli

    for module in (traces_cli, train_kd_cli):
        parser = argparse.ArgumentParser()
        module.configure(parser)
        undocumented = [a.dest for a in parser._actions if not a.help]
        assert undocumented == [], f"{module.__name__}: {undocumented}"
