"""Bad input, across the API and the command line, gets a message and never a traceback.

Each case names the input, the error it must raise (an :class:`~ld_envs.errors.LdGymError`
subclass that also subclasses the matching builtin) and a phrase of its message: what came,
what was expected, how to fix it. Command-line cases check the exit status (1 for a bad
input found by the library, 2 for one found while parsing the arguments), the message on
stderr and that nothing was written. No case loads a model: each fails before it would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import ld_agents
import ld_envs  # noqa: F401  (registers the ids)
from benchmarks import reproduce
from benchmarks.games import check_model_spec, opponent_spec
from benchmarks.specs import PolicySpec
from benchmarks.sweep import SweepSpec, run_sweep
from ld_agents.files import check_output_file, check_output_folder, output_path
from ld_agents.llm.embedded import dequantized_dir
from ld_envs.errors import (
    InvalidAction,
    InvalidArgument,
    InvalidObservation,
    InvalidStart,
    LdGymError,
    OutputExists,
    UnknownKeyword,
    UnknownName,
)
from ld_envs.twenty_one import DealerPlayer

SHIPPED_BASE = Path(__file__).resolve().parents[1] / "assets" / "function_bases" / "pursuit.json"


def _pursuit(**kwargs: Any) -> Any:
    env = gym.make("Pursuit-v0", **kwargs)
    env.reset(seed=0)
    return env


def _twentyone() -> Any:
    env = gym.make("TwentyOne-v0")
    env.reset(seed=0)
    return env


def _obs(env_id: str) -> Any:
    return gym.make(env_id).reset(seed=0)[0]


# ---------------------------------------------------------------------------- the API

#: (id, call, expected error type, a phrase of its message)
API_CASES: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    # unknown or misspelled names and keywords
    ("policy keyword typo", lambda: ld_agents.make("optimal", "TwentyOne-v0", open_card=True),
     UnknownKeyword, "did you mean 'open_cards'"),
    ("swapped letters", lambda: ld_agents.make("scripted", "Pursuit-v0", sied="evader"),
     UnknownKeyword, "did you mean 'side'"),
    ("keyword of an LLM policy, before any model",
     lambda: ld_agents.make("raw", "TwentyOne-v0", max_new_token=3),
     UnknownKeyword, "did you mean 'max_new_tokens'"),
    ("policy name typo", lambda: ld_agents.make("optimla", "TwentyOne-v0"),
     UnknownName, "did you mean 'optimal'"),
    ("env id typo", lambda: ld_agents.make("scripted", "Pursuit-v1"),
     UnknownName, "did you mean 'Pursuit-v0'"),
    ("built-in evader typo", lambda: gym.make("Pursuit-v0", evader="gredy"),
     UnknownName, "did you mean 'greedy'"),
    ("built-in opponent typo", lambda: gym.make("TwentyOne-v0", opponent="dealr"),
     UnknownName, "did you mean 'dealer'"),
    ("preset typo", lambda: _pursuit().reset(options={"preset": "figure55"}),
     UnknownName, "did you mean 'figure5'"),
    ("reset option typo", lambda: _pursuit().reset(options={"presets": "figure5"}),
     InvalidArgument, "unknown reset option"),
    ("a rule for the evader given to the raw evader",
     lambda: ld_agents.make("raw", "Pursuit-v0", side="evader", rule_text="no diagonals"),
     InvalidArgument, "the raw evader takes neither"),
    ("a pursuers-only policy as the evader",
     lambda: opponent_spec("Pursuit-v0", {"evader": "ld_oracle"}),
     InvalidArgument, "cannot play the evader"),
    # wrong type or length: refused, never cut or truncated
    ("restricted with 3 numbers", lambda: gym.make("Pursuit-v0", restricted=(8, 8, 12)),
     InvalidArgument, "corner (x0, y0)"),
    ("restricted block not 5x5", lambda: gym.make("Pursuit-v0", restricted=(8, 8, 13, 13)),
     InvalidArgument, "(x0, y0, x0 + 4, y0 + 4)"),
    ("restricted with a float", lambda: gym.make("Pursuit-v0", restricted=(8.5, 8)),
     InvalidArgument, "floats and booleans are not cells"),
    ("restricted with a bool", lambda: gym.make("Pursuit-v0", restricted=(True, 8)),
     InvalidArgument, "floats and booleans are not cells"),
    ("max_steps a float", lambda: gym.make("Pursuit-v0", max_steps=2.5),
     InvalidArgument, "must be integers"),
    ("pursuit action of bools", lambda: _pursuit().step([True, 0, 0]),
     InvalidAction, "no bools or floats"),
    ("pursuit action of floats", lambda: _pursuit().step(np.array([0.5, 0.0, 0.0])),
     InvalidAction, "3 ints in [0, 13]"),
    ("pursuit action too short", lambda: _pursuit().step([0, 0]),
     InvalidAction, "3 ints in [0, 13]"),
    ("pursuit reset options a list", lambda: _pursuit().reset(options=["preset"]),
     InvalidArgument, "reset options must be a dict"),
    ("a float start cell",
     lambda: _pursuit().reset(options={"pursuers": [(0, 0), (1, 5), (3.7, 2)], "evader": (9, 9)}),
     InvalidStart, "each two integers"),
    ("a start cell of 3 numbers",
     lambda: _pursuit().reset(options={"pursuers": [(0, 0), (1, 5), (3, 2, 1)], "evader": (9, 9)}),
     InvalidStart, "each two integers"),
    ("two pursuers", lambda: _pursuit().reset(options={"pursuers": [(0, 0), (1, 5)],
                                                       "evader": (9, 9)}),
     InvalidStart, "expected 3 pursuer cells"),
    ("21 points reset options a list", lambda: _twentyone().reset(options=[1]),
     InvalidArgument, "reset options must be a dict"),
    ("a deck of floats", lambda: _twentyone().reset(options={"deck": [0.5, 1, 2, 3]}),
     InvalidArgument, "integer card ids"),
    ("a deck with a bool", lambda: _twentyone().reset(options={"deck": [True, 1, 2, 3]}),
     InvalidArgument, "integer card ids"),
    ("a bool as a 21 points action", lambda: _twentyone().step(True),
     InvalidAction, "0 (stand) or 1 (hit)"),
    # another game's observation
    ("pursuers given a 21 points observation",
     lambda: ld_agents.make("scripted", "Pursuit-v0").act(_obs("TwentyOne-v0")),
     InvalidObservation, "got a TwentyOne-v0 observation"),
    ("the optimum given a pursuit observation",
     lambda: ld_agents.make("optimal", "TwentyOne-v0").act(_obs("Pursuit-v0")),
     InvalidObservation, "got a Pursuit-v0 observation"),
    ("the built-in dealer given a pursuit observation",
     lambda: DealerPlayer().act(_obs("Pursuit-v0")),
     InvalidObservation, "reads TwentyOne-v0 observations"),
    ("a flattened observation",
     lambda: ld_agents.make("scripted", "Pursuit-v0").act(np.zeros(12)),
     InvalidObservation, "got a ndarray"),
    # sweeps, selections, model specs
    ("sweep policy typo", lambda: SweepSpec("Pursuit-v0", [PolicySpec("scriptd")]),
     UnknownName, "did you mean 'scripted'"),
    ("a label with a comma", lambda: PolicySpec("scripted", label="a,b"),
     InvalidArgument, "without commas"),
    ("model scheme typo", lambda: check_model_spec("hff:embedded"),
     UnknownName, "did you mean 'hf'"),
    ("model path missing", lambda: check_model_spec("hf:/no/such/model"),
     InvalidArgument, "does not exist"),
    ("reproduce: --only outside --tables",
     lambda: reproduce.selected(reproduce.ReproduceConfig(tables="1", only="table3-dealer")),
     InvalidArgument, "is not in --tables 1"),
    ("reproduce: a policy typo",
     lambda: reproduce.selected(reproduce.ReproduceConfig(tables="3", policies="optimla")),
     UnknownName, "did you mean 'optimal'"),
    ("reproduce: an empty table list",
     lambda: reproduce.selected(reproduce.ReproduceConfig(tables=" , ")),
     InvalidArgument, "names nothing"),
    # output paths
    ("an empty output path", lambda: output_path(""), InvalidArgument, "is empty"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "phrase"), [c[1:] for c in API_CASES],
                         ids=[c[0] for c in API_CASES])  # fmt: skip
def test_api_refuses_bad_input_with_a_message(call, error, phrase):
    """Each bad input raises its LdGymError subclass, with the key phrase in the message."""
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, LdGymError)
    assert phrase in str(info.value)


@pytest.fixture
def gguf_files(tmp_path: Path) -> dict[str, Path]:
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    text = tmp_path / "text.gguf"
    text.write_text("not a model")
    return {"empty": empty, "text": text}


@pytest.mark.parametrize(
    ("which", "phrase"), [("empty", r"is empty \(0 bytes\)"), ("text", "is not a GGUF file")]
)
def test_a_gguf_file_that_is_no_model_gets_a_message(gguf_files, which, phrase):
    """An empty or non-GGUF .gguf file is refused before transformers reads it."""
    with pytest.raises(InvalidArgument, match=phrase):
        dequantized_dir(gguf_files[which])
    with pytest.raises(InvalidArgument, match=phrase):
        check_model_spec(f"hf:{gguf_files[which]}")


def test_output_checks_refuse_what_they_should(tmp_path):
    """A folder for a file, a file for a folder, and an existing file without overwrite."""
    mine = tmp_path / "mine.json"
    mine.write_text("{}")
    with pytest.raises(InvalidArgument, match="is a folder; give a file path"):
        check_output_file(tmp_path)
    with pytest.raises(InvalidArgument, match="is a file; give a folder"):
        check_output_folder(mine, ["x"])
    with pytest.raises(OutputExists, match="pass --overwrite"):
        check_output_file(mine)
    assert check_output_file(mine, overwrite=True) == mine


# ---------------------------------------------------------------------------- sweeps


def test_a_rejected_sweep_leaves_nothing_and_the_corrected_one_runs(tmp_path):
    """A typo in env or policy keywords fails before any file is written; the corrected
    sweep then runs in the same folder."""
    out = tmp_path / "sweep"
    bad_env = SweepSpec(
        "Pursuit-v0", [PolicySpec("scripted")], episodes=2, env_kwargs={"sizee": 21}
    )
    with pytest.raises(UnknownKeyword, match="did you mean 'size'"):
        run_sweep(bad_env, out)
    bad_policy = SweepSpec("Pursuit-v0", [PolicySpec("scripted", {"sied": "evader"})], episodes=2)
    with pytest.raises(UnknownKeyword, match="did you mean 'side'"):
        run_sweep(bad_policy, out)
    assert not out.exists()
    good = SweepSpec("Pursuit-v0", [PolicySpec("scripted")], episodes=2, env_kwargs={"size": 21})
    assert run_sweep(good, out).ran == 2


def test_a_sweep_rejected_while_building_removes_its_manifest(tmp_path):
    """A policy that fails when built (after the checks) leaves no sweep.json to block the
    corrected run."""
    from ld_agents.base import _POLICIES, register

    @register("_fails_to_build", "pursuit")
    def _fails(env_id: str, ok: bool = False) -> Any:
        if not ok:
            raise InvalidArgument("cannot build this one")
        return ld_agents.make("scripted", env_id)

    try:
        out = tmp_path / "sweep"
        spec = SweepSpec("Pursuit-v0", [PolicySpec("_fails_to_build", label="p")], episodes=2)
        with pytest.raises(InvalidArgument, match="cannot build"):
            run_sweep(spec, out)
        assert not out.exists()
        fixed = SweepSpec(
            "Pursuit-v0", [PolicySpec("_fails_to_build", {"ok": True}, label="p")], episodes=2
        )
        assert run_sweep(fixed, out).ran == 2
    finally:
        _POLICIES["pursuit"].remove("_fails_to_build")


def test_the_manifest_records_exactly_the_keywords_used(tmp_path):
    """What sweep.json records for a policy is what make() was given, nothing ignored."""
    spec = SweepSpec("Pursuit-v0", [PolicySpec("random", {"masked": False})], episodes=1)
    result = run_sweep(spec, tmp_path / "s")
    assert result.manifest["policies"] == [
        {"name": "random", "kwargs": {"masked": False}, "label": "random"}
    ]


# ---------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bad-input") / "sweep"
    run_sweep(SweepSpec("Pursuit-v0", [PolicySpec("scripted")], episodes=1), folder)
    return folder


def _user_files(tmp_path: Path) -> dict[str, Path]:
    """A user's folders and files, for the commands to be asked to write over."""
    made = {
        "table": tmp_path / "mine" / "table.md",
        "traces": tmp_path / "traces" / "traces.jsonl",
        "adapter": tmp_path / "run" / "adapter" / "adapter_config.json",
        "model": tmp_path / "rl" / "model.zip",
        "functions": tmp_path / "teach.json",
        "file": tmp_path / "a-file",
    }
    for path in made.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("the user's")
    return made


#: (id, argv with {tmp}/{sweep} placeholders, exit status, a phrase of the message on stderr)
CLI_CASES: list[tuple[str, list[str], int, str]] = [
    ("policy keyword typo", ["bench", "Pursuit-v0", "--policies", "scripted", "--out", "{tmp}/o",
     "--policy-kwargs", '{"sied": "evader"}'], 1, "did you mean 'side'"),
    ("env keyword typo", ["bench", "Pursuit-v0", "--policies", "scripted", "--out", "{tmp}/o",
     "--env-kwargs", '{"sizee": 21}'], 1, "did you mean 'size'"),
    ("restricted cut short", ["bench", "PursuitRestricted-v0", "--policies", "scripted", "--out",
     "{tmp}/o", "--env-kwargs", '{"restricted": [8, 8, 12]}'], 1, "corner (x0, y0)"),
    ("policy typo", ["bench", "TwentyOne-v0", "--policies", "optimla", "--out", "{tmp}/o"],
     1, "did you mean 'optimal'"),
    ("evader typo", ["bench", "Pursuit-v0", "--policies", "scripted", "--evader", "gredy",
     "--out", "{tmp}/o"], 1, "did you mean 'greedy'"),
    ("--paired a policy not run", ["bench", "Pursuit-v0", "--policies", "scripted", "--out",
     "{tmp}/o", "--paired", "scripted,rnd"], 1, "'rnd'"),
    ("model scheme typo", ["bench", "TwentyOne-v0", "--policies", "raw", "--model",
     "hff:embedded", "--out", "{tmp}/o"], 1, "did you mean 'hf'"),
    ("model path missing", ["bench", "TwentyOne-v0", "--policies", "raw", "--model",
     "hf:/no/such/model", "--out", "{tmp}/o"], 1, "does not exist"),
    ("a user's table.md", ["bench", "Pursuit-v0", "--policies", "scripted", "--out",
     "{tmp}/mine"], 1, "pass --overwrite"),
    ("--out ''", ["bench", "Pursuit-v0", "--policies", "scripted", "--out", ""],
     2, "empty path"),
    ("--out a file", ["bench", "Pursuit-v0", "--policies", "scripted", "--out", "{tmp}/a-file"],
     1, "is a file; give a folder"),
    ("option typo", ["bench", "Pursuit-v0", "--policies", "scripted", "--out", "{tmp}/o",
     "--sed", "1"], 2, "did you mean '--seed'"),
    ("command typo", ["bnech"], 2, "did you mean 'bench'"),
    ("choice typo", ["validate", str(SHIPPED_BASE), "--game", "pursiut"],
     2, "did you mean 'pursuit'"),
    ("reproduce: empty selection", ["reproduce", "--tables", "1", "--only", "table3-dealer",
     "--out", "{tmp}/o"], 1, "is not in --tables 1"),
    ("reproduce: policy typo", ["reproduce", "--tables", "3", "--policies", "optimla",
     "--out", "{tmp}/o"], 1, "did you mean 'optimal'"),
    ("reproduce: a user's README", ["reproduce", "--tables", "3", "--policies", "optimal",
     "--out", "{tmp}/readme"], 1, "README.md already exists"),
    ("traces over traces", ["traces", "Pursuit-v0", "--starts", "1", "--out", "{tmp}/traces"],
     1, "pass --overwrite"),
    ("traces --out a file", ["traces", "Pursuit-v0", "--starts", "1", "--out", "{tmp}/a-file"],
     1, "is a file; give a folder"),
    ("traces: teacher typo", ["traces", "Pursuit-v0", "--teacher", "scriptd", "--out",
     "{tmp}/o"], 1, "did you mean 'scripted'"),
    ("validate --json a folder", ["validate", str(SHIPPED_BASE), "--game", "pursuit", "--json",
     "{tmp}"], 1, "is a folder; give a file path"),
    ("validate a missing file", ["validate", "{tmp}/none.json", "--game", "pursuit"],
     1, "no file at"),
    ("teach --answer-file missing", ["teach", "--game", "pursuit", "--model", "openai:http://x/v1",
     "--answer-file", "{tmp}/none.txt"], 2, "no file at"),
    ("teach over a user's file", ["teach", "--game", "pursuit", "--model", "openai:http://x/v1",
     "--out", "{tmp}/teach.json", "--answer-file", "{tmp}/a-file"], 1, "pass --overwrite"),
    ("plot a folder that is no sweep", ["plot", "{tmp}/mine"], 1, "not a sweep folder"),
    ("plot: label typo", ["plot", "{sweep}", "--policies", "scriptd", "--no-bars"],
     1, "did you mean 'scripted'"),
    ("plot: preset typo", ["plot", "{sweep}", "--preset", "figure55", "--no-bars"],
     1, "did you mean 'figure5'"),
    ("train-kd over a user's adapter", ["train-kd", "{tmp}/traces", "--out", "{tmp}/run"],
     1, "adapter already exists"),
    ("train-kd --ship over an adapter", ["train-kd", "{tmp}/traces", "--out", "{tmp}/o",
     "--ship", "{tmp}/run"], 1, "--ship"),
    ("train-ld over a user's adapter", ["train-ld", "--game", "pursuit", "--run-dir", "{tmp}/run"],
     1, "adapter already exists"),
    ("train-writer over a user's adapter", ["train-writer", "--out", "{tmp}/run"],
     1, "adapter already exists"),
    ("train-writer --ship over an adapter", ["train-writer", "--out", "{tmp}/o", "--ship",
     "{tmp}/run"], 1, "--ship"),
    ("train-writer no rows", ["train-writer", "--out", "{tmp}/o", "--rows", "0"],
     1, "--rows must be a positive integer"),
    ("train-rl over a user's model", ["train-rl", "--game", "pursuit", "--out", "{tmp}/rl"],
     1, "model.zip already exists"),
    ("demo --out a file", ["demo", "--out", "{tmp}/a-file"], 1, "a-file is a file"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "status", "phrase"), [c[1:] for c in CLI_CASES],
                         ids=[c[0] for c in CLI_CASES])  # fmt: skip
def test_cli_refuses_bad_input_with_a_message(
    argv, status, phrase, tmp_path, sweep_folder, cli, monkeypatch
):
    """Exit status 1 or 2, the key phrase on stderr, no traceback, nothing overwritten."""
    monkeypatch.chdir(tmp_path)
    user = _user_files(tmp_path)
    (tmp_path / "readme").mkdir()
    (tmp_path / "readme" / "README.md").write_text("the user's")
    args = [a.replace("{tmp}", str(tmp_path)).replace("{sweep}", str(sweep_folder)) for a in argv]
    rc, err = cli(args)
    assert rc == status, err
    assert phrase in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # rejected before anything was written
    assert not (tmp_path / "runs").exists()
    for path in user.values():
        assert path.read_text() == "the user's"


def test_bench_on_a_users_folder_writes_only_with_overwrite(tmp_path, cli):
    """--overwrite is the one way to replace a table.md that is not the sweep's own."""
    table = tmp_path / "table.md"
    table.write_text("the user's")
    argv = ["bench", "Pursuit-v0", "--policies", "scripted", "--episodes", "1", "--out",
            str(tmp_path), "--no-progress"]  # fmt: skip
    assert cli(argv)[0] == 1 and table.read_text() == "the user's"
    assert cli([*argv, "--overwrite"])[0] == 0
    assert table.read_text() != "the user's"
    assert cli(argv)[0] == 0  # now the sweep's own folder: resumed
    assert json.loads((tmp_path / "sweep.json").read_text())["policies"][0]["name"] == "scripted"


def test_plot_remakes_its_own_figures_but_not_changed_ones(sweep_folder, tmp_path, cli):
    """A second plot replaces the figures the first wrote; an edited one needs --overwrite."""
    argv = ["plot", str(sweep_folder), "--out", str(tmp_path), "--no-bars"]
    assert cli(argv)[0] == 0
    assert cli(argv)[0] == 0
    figure = next(tmp_path.glob("trajectory_*.png"))
    figure.write_bytes(figure.read_bytes() + b"edited")
    rc, err = cli(argv)
    assert rc == 1 and "changed since" in err
    assert cli([*argv, "--overwrite"])[0] == 0


def test_the_table_holds_at_least_forty_bad_inputs():
    """Issue 23 asks for a table of at least 40 bad inputs across the API and the CLI."""
    assert len(API_CASES) + len(CLI_CASES) >= 40
