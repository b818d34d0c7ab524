"""Inputs are checked before any episode runs, any model loads or any file is written.

A new user's trial found inputs caught only after work had been done (a bad model spec after
the other policies of a sweep had played, the emergency suite's options after its writer had
loaded, another game's env id after training started), numpy tracebacks for a negative
``--seed``, a folder left that could not be resumed, and help texts with lost line
continuations and Sphinx markup. Each test here names the case; none loads a model.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest

from benchmarks import emergency_suite
from benchmarks.cli.main import build_parser, terminal_text
from benchmarks.games import check_model_spec, check_policy_spec
from benchmarks.results_io import SweepMismatch
from benchmarks.specs import PolicySpec
from benchmarks.sweep import RunOptions, SweepSpec, run_sweep
from ld_envs.errors import InvalidArgument, LdGymError, UnknownKeyword, UnknownName

SERIAL = RunOptions(progress=False)


def _one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---------------------------------------------------------------------------- model specs

#: (id, spec, error type, a phrase of the message)
BAD_SPECS: list[tuple[str, str, type[Exception], str]] = [
    ("unknown hf option", "hf:embedded?bogus=1", UnknownKeyword, "takes no option 'bogus'"),
    ("hf option typo", "hf:embedded?dtyp=auto", UnknownKeyword, "did you mean 'dtype'"),
    ("hf dtype", "hf:embedded?dtype=int8", InvalidArgument, "dtype must be one of"),
    ("hf batch size", "hf:embedded?batch_size=0", InvalidArgument, "batch_size must be"),
    ("hf device", "hf:embedded?device=gpu", InvalidArgument, "'auto', 'cpu' or 'cuda[:N]'"),
    ("hf bf16_matmul", "hf:embedded?bf16_matmul=fast", InvalidArgument, "bf16_matmul must be"),
    ("hf adapter missing", "hf:embedded?adapter=/no/such", InvalidArgument, "does not exist"),
    ("no scheme", "nonsense", InvalidArgument, "not of the form SCHEME:TARGET"),
    ("scheme typo", "hff:embedded", UnknownName, "did you mean 'hf'"),
    ("vllm option", "vllm:embedded?max_len=9", UnknownKeyword, "did you mean 'max_model_len'"),
    ("vllm number", "vllm:embedded?max_model_len=abc", InvalidArgument, "is not a int"),
    ("vllm flag", "vllm:embedded?enforce_eager=maybe", InvalidArgument, "not a boolean"),
    ("vllm gguf", "vllm:model.gguf", InvalidArgument, "cannot load the GGUF file"),
    ("openai url", "openai:ftp://host/v1", InvalidArgument, "http:// or https://"),
    ("openai api", "openai:http://host/v1?api=chatty", InvalidArgument, "api must be one of"),
    ("openai number", "openai:http://host/v1?retries=-1", InvalidArgument, "retries must be"),
    ("openai key", "openai:http://host/v1?key_env=LD_GYM_TEST_NO_SUCH_KEY", InvalidArgument,
     "is not set"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "error", "phrase"), [c[1:] for c in BAD_SPECS],
                         ids=[c[0] for c in BAD_SPECS])  # fmt: skip
def test_a_bad_model_spec_is_refused_without_loading(spec, error, phrase, monkeypatch):
    """The whole spec is checked: scheme, the backend's option names and values, paths."""
    monkeypatch.delenv("LD_GYM_TEST_NO_SUCH_KEY", raising=False)
    with pytest.raises(error) as info:
        check_model_spec(spec)
    assert isinstance(info.value, LdGymError)
    assert phrase in str(info.value) and spec in str(info.value)


@pytest.mark.parametrize(
    "spec", ["hf:embedded", "hf:embedded?dtype=auto&batch_size=8&device=cpu", "vllm:embedded",
             "openai:http://127.0.0.1:8000/v1?model=m&api-version=1"],
)  # fmt: skip
def test_good_model_specs_pass(spec):
    check_model_spec(spec)


#: (id, policy, env id, error type, a phrase of the message)
BAD_POLICIES: list[tuple[str, PolicySpec, str, type[Exception], str]] = [
    ("raw: no scheme", PolicySpec("raw", {"model": "nonsense"}), "Pursuit-v0",
     InvalidArgument, "policy 'raw': model 'nonsense' is not of the form"),
    ("kd: a spec with options as its base model",
     PolicySpec("kd", {"model": "hf:embedded?dtype=auto"}), "TwentyOne-v0",
     InvalidArgument, "not a base model for its adapter"),
    ("ld: dtype", PolicySpec("ld", {"dtype": "int8"}), "Pursuit-v0",
     InvalidArgument, "dtype must be one of"),
    ("teacher without a model", PolicySpec("teacher"), "Pursuit-v0",
     InvalidArgument, "needs a model spec"),
    ("missing extension file", PolicySpec("ld_oracle", {"extensions": ["nope.json"]}),
     "Pursuit-v0", InvalidArgument, "extensions file nope.json does not exist"),
    ("extensions a string", PolicySpec("ld_oracle", {"extensions": "nope.json"}),
     "Pursuit-v0", InvalidArgument, "must be a list"),
    ("missing emergency file", PolicySpec("ld", {"emergency": "nope.json"}),
     "PursuitRestricted-v0", InvalidArgument, "emergency file nope.json does not exist"),
    ("rule kind typo", PolicySpec("ld_oracle", {"rules": [{"kind": "edgy"}]}), "Pursuit-v0",
     UnknownName, "did you mean 'edge'"),
]  # fmt: skip


@pytest.mark.parametrize(("policy", "env_id", "error", "phrase"), [c[1:] for c in BAD_POLICIES],
                         ids=[c[0] for c in BAD_POLICIES])  # fmt: skip
def test_a_bad_policy_argument_is_refused_before_building(policy, env_id, error, phrase):
    with pytest.raises(error, match=re.escape(phrase)):
        check_policy_spec(policy, env_id)


def test_an_extension_that_is_no_extension_is_refused(tmp_path):
    """An extension file that exists but does not extend the game's base fails up front."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"functions": 3}))
    with pytest.raises(LdGymError, match="policy 'ld_oracle'"):
        check_policy_spec(PolicySpec("ld_oracle", {"extensions": [str(bad)]}), "Pursuit-v0")


@pytest.mark.parametrize("model", ["hf:embedded?bogus=1", "hf:embedded?dtype=int8", "nonsense"])
def test_bench_refuses_a_bad_model_before_the_other_policies_play(model, tmp_path, cli):
    """The trial: scripted played, sweep.json recorded raw with the bad spec, then it
    failed, and the folder could never be resumed. Now nothing runs and nothing is left."""
    out = tmp_path / "b5"
    argv = ["bench", "Pursuit-v0", "--policies", "scripted,raw", "--model", model,
            "--episodes", "1", "--out", str(out), "--no-progress"]  # fmt: skip
    rc, err = cli(argv)
    assert rc == 1
    assert model in _one_line_error(err)
    assert not out.exists()


def test_demo_refuses_a_bad_model_before_any_sweep(tmp_path, cli):
    out = tmp_path / "d1"
    rc, err = cli(["demo", "--out", str(out), "--model", "hf:embedded?dtype=int8"])
    assert rc == 1 and "dtype must be one of" in _one_line_error(err)
    assert not out.exists()


def test_a_sweep_with_a_missing_extension_fails_before_scripted_plays(tmp_path):
    out = tmp_path / "s"
    spec = SweepSpec(
        "Pursuit-v0",
        [PolicySpec("scripted"), PolicySpec("ld_oracle", {"extensions": ["nope.json"]})],
        episodes=1,
    )
    with pytest.raises(InvalidArgument, match=r"nope\.json does not exist"):
        run_sweep(spec, out, SERIAL)
    assert not out.exists()


# ---------------------------------------------------------------------------- folders


def _bench(out: Path, *extra: str) -> list[str]:
    return ["bench", "Pursuit-v0", "--episodes", "2", "--out", str(out), "--no-progress", *extra]


def test_a_policy_recorded_with_other_settings_gets_advice_the_cli_can_follow(tmp_path, cli):
    """bench cannot give labels: the message names another --out or --overwrite, and
    --overwrite drops the old row and plays it again (the other rows kept)."""
    out = tmp_path / "b"
    rc, _ = cli(_bench(out, "--policies", "random", "--policy-kwargs", '{"masked": false}'))
    assert rc == 0
    rc, err = cli(_bench(out, "--policies", "scripted,random"))
    line = _one_line_error(err)
    assert rc == 1 and "another --out folder" in line and "--overwrite" in line
    assert "another label" not in line
    rc, err = cli(_bench(out, "--policies", "scripted,random", "--overwrite"))
    assert rc == 0, err
    manifest = json.loads((out / "sweep.json").read_text())
    assert [p["kwargs"] for p in manifest["policies"]] == [{}, {}]
    lines = (out / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == 4  # two episodes each, the old random ones dropped


def test_a_policy_named_twice_gets_advice_the_cli_can_follow(tmp_path, cli):
    rc, err = cli(_bench(tmp_path / "b", "--policies", "scripted,scripted"))
    assert rc == 1 and "name each policy once" in _one_line_error(err)
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("content", ['{"x": 1}', "[1, 2]", "not json"])
def test_a_sweep_json_of_another_tool_is_named_so(content, tmp_path, cli):
    """Not "holds another sweep (env_id: the folder has null...)": it is not a sweep record;
    --overwrite replaces it."""
    out = tmp_path / "x6"
    out.mkdir()
    (out / "sweep.json").write_text(content)
    rc, err = cli(_bench(out, "--policies", "scripted"))
    line = _one_line_error(err)
    assert rc == 1 and "is not a sweep record of ld-gym" in line
    assert "another --out" in line and "--overwrite" in line and "null" not in line
    assert (out / "sweep.json").read_text() == content
    assert cli(_bench(out, "--policies", "scripted", "--overwrite"))[0] == 0
    assert json.loads((out / "sweep.json").read_text())["env_id"] == "Pursuit-v0"


def test_the_library_refuses_a_foreign_sweep_json_too(tmp_path):
    (tmp_path / "sweep.json").write_text('{"x": 1}')
    spec = SweepSpec("Pursuit-v0", [PolicySpec("scripted")], episodes=1)
    with pytest.raises(SweepMismatch, match="not a sweep record"):
        run_sweep(spec, tmp_path, SERIAL)
    assert run_sweep(spec, tmp_path, SERIAL, overwrite=True).ran == 1


# ---------------------------------------------------------------------------- emergency suite


@pytest.fixture
def no_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writing stage (which loads the model) must not be reached."""

    def loaded(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the writing stage ran before the inputs were checked")

    monkeypatch.setattr(emergency_suite, "write_functions", loaded)


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ({"episodes": 0}, "episodes must be >= 1"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"chunk_size": 0}, "chunk_size must be >= 1"),
        ({"samples": 0}, "samples (--samples) must be"),
        ({"seeds": ()}, "names no seed"),
        ({"seeds": (0, -5)}, "each seed of --seeds"),
        ({"model": "hf:embedded?dtype=int8"}, "dtype must be one of"),
        ({"model": "nonsense"}, "not of the form SCHEME:TARGET"),
        ({"policies": ("raw", "scriptd")}, "unknown suite policies"),
    ],
)
def test_the_suite_checks_every_input_before_loading(change, phrase, tmp_path, no_writer):
    config = emergency_suite.SuiteConfig(out=tmp_path / "suite", **change)
    with pytest.raises(InvalidArgument) as info:
        emergency_suite.run_suite(config)
    assert phrase in str(info.value)
    assert not (tmp_path / "suite").exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [("--episodes", "0"), ("--seed", "-1"), ("--chunk-size", "0"), ("--samples", "0"),
     ("--seeds", ""), ("--seeds", "0,-1"), ("--seeds", "a")],
)  # fmt: skip
def test_the_suite_command_refuses_bad_numbers_while_parsing(
    option, value, tmp_path, cli, no_writer
):
    rc, err = cli(["emergency-suite", "--out", str(tmp_path / "s"), option, value])
    assert rc == 2 and option in _one_line_error(err)
    assert not (tmp_path / "s").exists()


def test_the_suite_command_refuses_a_bad_raw_model_before_loading(tmp_path, cli, no_writer):
    argv = ["emergency-suite", "--out", str(tmp_path / "s"), "--model", "hf:embedded?bogus=1"]
    rc, err = cli(argv)
    assert rc == 1 and "takes no option 'bogus'" in _one_line_error(err)
    assert not (tmp_path / "s").exists()


# ---------------------------------------------------------------------------- train-rl


def test_train_rl_refuses_an_env_of_another_game(tmp_path, cli, monkeypatch):
    import benchmarks.train_rl as train_rl

    def trained(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("training started")

    monkeypatch.setattr(train_rl, "train_run", trained)
    for extra in (["--env-id", "TwentyOne-v0"], ["--set", 'env_id="TwentyOne-v0"']):
        argv = ["train-rl", "--game", "pursuit", *extra, "--out", str(tmp_path / "rl1")]
        rc, err = cli(argv)
        line = _one_line_error(err)
        assert rc == 1 and "is a twentyone env, not a pursuit one" in line
        assert "--game twentyone" in line
    assert not (tmp_path / "rl1").exists()
    config = train_rl.build_config("pursuit", [], env_id="PursuitRestricted-v0")
    assert config.env_id == "PursuitRestricted-v0"


# ---------------------------------------------------------------------------- seeds


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _seed_commands() -> list[str]:
    return [
        name
        for name, parser in _subparsers().items()
        if any("--seed" in a.option_strings for a in parser._actions)
    ]


def test_every_command_with_a_seed_is_covered():
    assert len(_seed_commands()) >= 12


@pytest.mark.parametrize("name", _seed_commands())
def test_every_seed_option_refuses_a_negative_seed_while_parsing(name, capsys):
    parser = _subparsers()[name]
    with pytest.raises(SystemExit) as exc:
        parser.parse_known_args(["--seed", "-1"])
    assert exc.value.code == 2
    assert "a seed must be an integer >= 0, got -1" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["traces", "Pursuit-v0", "--starts", "3", "--seed", "-1", "--out", "{tmp}/tr5"],
        ["validate", "assets/function_bases/pursuit.json", "--game", "pursuit", "--seed", "-1"],
        ["teach", "--game", "pursuit", "--model", "hf:embedded", "--answer-file", "{tmp}/ans",
         "--seed", "-1", "--out", "{tmp}/t1/base.json"],
    ],
)  # fmt: skip
def test_the_trials_negative_seeds_get_one_line(argv, tmp_path, cli, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    (tmp_path / "ans").write_text("{}")
    rc, err = cli([a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert rc == 2 and "--seed: a seed must be an integer >= 0" in _one_line_error(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ans"]


# ---------------------------------------------------------------------------- help


def _help(name: str) -> str:
    return _subparsers()[name].format_help()


@pytest.mark.parametrize("name", ["train-ld", "train-kd", "train-writer"])
def test_help_keeps_the_examples_line_continuations(name):
    text = _help(name)
    assert "\\\n        --" in text
    assert not re.search(r"\S {3,}--", text)  # "ld-pursuit         --overwrite"


def test_help_shows_no_sphinx_markup():
    for name in _subparsers():
        text = _help(name)
        for mark in ("``", ":mod:", ":func:", ":class:", ":data:", ":meth:"):
            assert mark not in text, f"ld-gym {name} --help shows {mark!r}"


def test_terminal_text_strips_roles_and_literals():
    text = "``ld-gym x``: see :func:`~a.b.run` and :mod:`benchmarks.sweep` (:class:`A <a.A>`)"
    assert terminal_text(text) == "ld-gym x: see run and benchmarks.sweep (A)"


def test_help_says_each_thing_once():
    bench = _help("bench")
    assert bench.count("run or resume") == 1
    demo = _help("demo")
    assert demo.count("hf:embedded?dtype=auto") == 1
    for name in _subparsers():
        assert "(default: [])" not in _help(name)


@pytest.mark.parametrize("flags", [["-v"], ["--debug"], ["-v", "--debug"]])
def test_debug_and_verbose_work_after_the_subcommand(flags):
    parser = build_parser()
    args = parser.parse_args(["bench", "Pursuit-v0", "--policies", "scripted", "--out", "o",
                              *flags])  # fmt: skip
    assert args.verbose == ("-v" in flags) and args.debug == ("--debug" in flags)
    before = parser.parse_args([*flags, "bench", "Pursuit-v0", "--policies", "s", "--out", "o"])
    assert before.verbose == ("-v" in flags) and before.debug == ("--debug" in flags)
