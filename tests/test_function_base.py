"""Function bases: schema, shipped bases, validator reports, labeller, chains, CLI."""

from __future__ import annotations

import copy
import json

import gymnasium as gym
import numpy as np
import pytest

import ld_agents
import ld_envs  # noqa: F401  (registers the env ids)
from benchmarks.cli.main import main as cli_main
from ld_agents.ld.base import (
    FunctionBase,
    NoRightFunction,
    bases_dir,
    read_base_file,
    shipped_base,
)
from ld_agents.ld.chain import FunctionChainPolicy, collect_states, oracle_base
from ld_agents.ld.games import FULL_DECK, sample_states
from ld_agents.ld.sandbox import Limits, SandboxWorker
from ld_agents.ld.schema import SchemaError
from ld_agents.ld.training_data import training_examples
from ld_agents.ld.validation import validate_base, validate_function
from ld_envs.pursuit import NO_CHOICE


@pytest.fixture(scope="module")
def worker():
    w = SandboxWorker()
    w.start()
    yield w
    w.close()


@pytest.fixture(scope="module")
def pursuit_data():
    return read_base_file(bases_dir() / "pursuit.json")


@pytest.fixture
def pursuit():
    return shipped_base("pursuit", ["restricted_area"])


def far_state(area=None):
    return {
        "size": 21,
        "pursuers": [[3, 8], [14, 19], [17, 2]],
        "evader": [20, 18],
        "restricted": area,
    }


def near_state(area=None):
    return {"size": 10, "pursuers": [[2, 2], [6, 4], [4, 8]], "evader": [4, 5], "restricted": area}


# --------------------------------------------------------------------------- shipped bases


@pytest.mark.parametrize(
    "game,stages",
    [
        ("pursuit", ["candidates", "filter", "constraints", "select"]),
        ("twentyone", ["hand", "risk", "opponent", "decide"]),
    ],
)
def test_shipped_bases_load_with_alternatives_at_every_stage(game, stages):
    """Each shipped base has its stages in order and at least three functions per stage."""
    base = shipped_base(game)
    assert base.stage_names == stages
    assert all(len(base.stage_candidates(s)) >= 3 for s in stages)
    assert base.provenance.stand_in and "stand-in" in base.provenance.note


def test_emergency_function_ships_separately():
    """The restricted-area filter is not in the base; the extension adds it at constraints."""
    assert "drop_restricted_cells" not in [f.name for f in shipped_base("pursuit").functions]
    base = shipped_base("pursuit", ["restricted_area"])
    entry = base.function("drop_restricted_cells")
    assert entry.stage == "constraints" and entry.role == "emergency"
    assert entry.handles_rule == "restricted_area" and entry.provenance.stand_in
    assert base.stage_candidates("constraints")[-1].name == "drop_restricted_cells"


@pytest.mark.parametrize("game", ["pursuit", "twentyone"])
def test_shipped_bases_pass_validation(game, worker):
    """Every shipped function passes the sandbox contract tests."""
    base = shipped_base(game, ["restricted_area"] if game == "pursuit" else [])
    report = validate_base(base, worker, n_states=15)
    assert report.ok, report.format()
    assert len(report.kept) == len(base.functions)


def test_round_trip_keeps_the_base(pursuit_data):
    """from_dict(to_dict()) gives the same data back."""
    base = FunctionBase.from_dict(pursuit_data)
    again = FunctionBase.from_dict(json.loads(json.dumps(base.to_dict())))
    assert again.to_dict() == base.to_dict()


def test_manual_text_hides_the_answer_key(pursuit):
    """What a student sees names rule, stage and example but not role or right_when."""
    text = pursuit.function("move_away_from_evader").manual_text()
    assert "move_away_from_evader" in text and "when to call" in text and "example" in text
    assert "distractor" not in text and "never" not in text.split("when to call")[0]
    assert "right_when" not in text


# --------------------------------------------------------------------------- schema errors


def _break(data, path, value):
    data = copy.deepcopy(data)
    *keys, last = path
    node = data
    for k in keys:
        node = node[k]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return data


SCHEMA_CASES = {
    "missing source": (["functions", 0, "source"], KeyError, "functions[0].source is missing"),
    "bad stage": (["functions", 2, "stage"], "move", "functions[2].stage"),
    "bad predicate": (["functions", 0, "right_when"], "sometimes", "functions[0].right_when"),
    "bad role": (["functions", 1, "role"], "decoy", "functions[1].role"),
    "bad property": (
        ["functions", 0, "properties"],
        [{"name": "cells_within_distance", "distance": "two"}],
        "functions[0].properties[0]",
    ),
    "unknown field": (["funtions"], [], "funtions"),
    "stage chain": (["stages", 1, "consumes"], "targets", "stages[1].consumes"),
    "example type": (
        ["functions", 0, "examples", 0, "expected"],
        {"a": 1},
        "functions[0].examples[0].expected",
    ),
    "example state": (
        ["functions", 0, "examples", 0, "state", "size"],
        "big",
        "functions[0].examples[0].state",
    ),
    "provenance type": (["provenance", "stand_in"], "yes", "provenance.stand_in"),
    "schema version": (["schema_version"], 99, "schema_version"),
    "name not identifier": (["functions", 0, "name"], "moves-2", "functions[0].name"),
    "name not NFKC": (["functions", 0, "name"], "\uff4b\uff45\uff45\uff50", "functions[0].name"),
    "name a ligature": (["functions", 0, "name"], "\ufb01lter_cells", "functions[0].name"),
}


@pytest.mark.parametrize("case", sorted(SCHEMA_CASES))
def test_schema_errors_name_the_field(case, pursuit_data):
    """A broken file fails with a SchemaError whose message names the bad field."""
    path, value, field = SCHEMA_CASES[case]
    with pytest.raises(SchemaError) as err:
        FunctionBase.from_dict(_break(pursuit_data, path, value))
    assert field in str(err.value)


def test_duplicate_function_names_are_refused(pursuit):
    """add_function refuses a name already in the base."""
    with pytest.raises(SchemaError, match="already in the base"):
        pursuit.add_function(pursuit.function("approach_evader"))


def test_a_refused_extension_adds_nothing(pursuit):
    """An extension whose second function clashes with the base is refused whole: its
    first function is not left behind in the base."""
    first = _entry(pursuit, "stay_in_place", name="stay_put_v2")
    first["source"] = first["source"].replace("def stay_in_place", "def stay_put_v2")
    clash = pursuit.function("approach_evader").to_dict()
    ext = read_base_file(bases_dir() / "pursuit_restricted_emergency.json")
    ext["functions"] = [first, clash]
    before = [f.name for f in pursuit.functions]
    with pytest.raises(SchemaError, match=r"approach_evader.*nothing was added"):
        pursuit.extend(ext)
    assert [f.name for f in pursuit.functions] == before


@pytest.mark.parametrize(
    "suffix,content,words",
    [
        (".json", b'{"game": "pursuit", "rules": "caf\xe9"}', "not UTF-8"),
        (
            ".json",
            b'{"game": "pursuit", "functions": ' + b"[" * 100000 + b"]" * 100000 + b"}",
            "nested",
        ),
        (".py", b"# stage: filter\n# caf\xe9\ndef f(state, prev):\n    return prev\n", "not UTF-8"),
    ],
)
def test_unreadable_base_files_are_schema_errors(tmp_path, suffix, content, words):
    """A file in another encoding, or JSON too deep to read, is a SchemaError naming the
    file (the CLI prints it in one line), not a UnicodeDecodeError or RecursionError."""
    from ld_agents.ld.base import load_function_base, load_source_entry

    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(SchemaError, match=words) as err:
        if suffix == ".json":
            load_function_base(path)
        else:
            load_source_entry(path, shipped_base("pursuit"))
    assert str(path) in str(err.value)


def test_extension_for_another_game_is_refused():
    """An extension's game must match the base's."""
    ext = read_base_file(bases_dir() / "pursuit_restricted_emergency.json")
    with pytest.raises(SchemaError, match="game"):
        shipped_base("twentyone").extend(ext)


# --------------------------------------------------------------------------- validator


def _entry(base, like, **changes):
    """The schema dict of function ``like``, renamed ``<like>_v2`` unless ``name`` is given."""
    data = base.function(like).to_dict()
    data["name"] = like + "_v2"
    data.update(changes)
    return data


def _validate(base, data, worker):
    trial = base.copy()
    entry = trial.add_function(data, require_examples=False)
    return validate_function(trial, entry, worker, n_states=25)


def test_wrong_output_type_is_rejected_with_type_check(pursuit, worker):
    """A candidates function returning a dict is rejected by the 'type' check."""
    src = "def cand_v2(state, prev):\n    return {'cells': []}\n"
    data = _entry(pursuit, "moves_within_two", name="cand_v2", source=src, examples=[])
    rep = _validate(pursuit, data, worker)
    assert not rep.passed and "type" in rep.checks_failed()
    fail = next(f for f in rep.failures if f.check == "type")
    assert fail.function == "cand_v2" and fail.input is not None and fail.got == {"cells": []}


def test_property_violation_is_rejected_with_input_and_output(pursuit, worker):
    """Leaving out 'stay' breaks cells_within_distance; the report shows input and got."""
    src = pursuit.function("moves_within_two").source.replace(
        "abs(dx) + abs(dy) <= 2", "0 < abs(dx) + abs(dy) <= 2"
    )
    data = _entry(
        pursuit,
        "moves_within_two",
        source=src.replace("moves_within_two", "m2_v2"),
        name="m2_v2",
        examples=[],
    )
    rep = _validate(pursuit, data, worker)
    fails = [f for f in rep.failures if f.check == "property"]
    assert fails and "cells_within_distance" in fails[0].message and "missing" in fails[0].message
    assert fails[0].input["state"]["pursuers"] and fails[0].got is not None


def test_a_huge_distance_parameter_is_checked_at_the_board_cost(pursuit, worker):
    """A base file's ``distance`` may be any int; the trusted property check scans only the
    board (10**9 used to spin its (2d+1)^2 loop outside the sandbox for ever)."""
    data = _entry(
        pursuit,
        "moves_within_two",
        source=pursuit.function("moves_within_two").source.replace("moves_within_two", "m9"),
        name="m9",
        examples=[],
        properties=[{"name": "cells_within_distance", "distance": 10**9}],
    )
    rep = _validate(pursuit, data, worker)
    fails = [f for f in rep.failures if f.check == "property"]
    assert fails and "cells within 1000000000" in fails[0].message


def test_failing_usage_example_is_rejected_with_expected_and_got(pursuit, worker):
    """An example whose expected output is wrong fails the 'example' check."""
    data = _entry(pursuit, "stay_in_place")
    data["source"] = data["source"].replace("def stay_in_place", "def stay_in_place_v2")
    data["examples"][0]["expected"] = [[0, 0], [0, 1], [0, 2]]
    rep = _validate(pursuit, data, worker)
    fail = next(f for f in rep.failures if f.check == "example")
    assert fail.expected == [[0, 0], [0, 1], [0, 2]] and fail.got != fail.expected


def test_nondeterministic_function_is_rejected(pursuit, worker):
    """Hidden state that changes the answer between calls fails 'deterministic'."""
    src = (
        "CALLS = []\n\ndef keep_v2(state, prev):\n    CALLS.append(1)\n"
        "    if len(CALLS) % 2:\n        return [list(c) for c in prev]\n"
        "    return [list(c)[:1] for c in prev]\n"
    )
    data = _entry(pursuit, "keep_all_cells", name="keep_v2", source=src, examples=[], properties=[])
    rep = _validate(pursuit, data, worker)
    assert "deterministic" in rep.checks_failed()


def test_situation_the_labeller_disagrees_with_is_rejected(pursuit, worker):
    """A manual that calls a far state 'near' fails the 'situation' check."""
    data = _entry(pursuit, "encircle_evader")
    data["source"] = data["source"].replace("def encircle_evader", "def encircle_evader_v2")
    data["situations"] = [{"state": far_state(), "prev": None, "note": "wrong"}]
    data["stage"] = "select"
    data["situations"][0]["prev"] = data["examples"][0]["prev"]
    rep = _validate(pursuit, data, worker)
    assert "situation" in rep.checks_failed()


def test_hostile_function_in_a_base_is_rejected_statically(pursuit, worker):
    """Validation of a function importing os stops at 'static' and runs nothing."""
    src = "import os\n\ndef evil_v2(state, prev):\n    os.remove('/x')\n    return prev\n"
    data = _entry(pursuit, "keep_all_cells", name="evil_v2", source=src, examples=[])
    rep = _validate(pursuit, data, worker)
    assert rep.checks_failed() == ["static"] and rep.calls == 0


def test_hanging_function_in_a_base_is_reported_and_validation_goes_on(pursuit, worker):
    """A function that loops is rejected with a 'run' failure; the rest still validate."""
    src = "def slow_v2(state, prev):\n    while True:\n        pass\n"
    data = _entry(pursuit, "keep_all_cells", name="slow_v2", source=src, examples=[])
    trial = pursuit.copy()
    trial.add_function(data, require_examples=False)
    with SandboxWorker(Limits(wall_seconds=2.0, cpu_seconds=1.0)) as quick:
        rep = validate_function(trial, trial.function("slow_v2"), quick, n_states=10)
    assert [f.check for f in rep.failures] == ["run"] and "stopped" in rep.failures[0].message
    assert rep.calls == 1
    assert validate_function(trial, trial.function("keep_all_cells"), worker, n_states=3).passed


def test_labeller_notes_the_gap_the_emergency_fills(worker):
    """Without the emergency function, restricted states have no right 'constraints'."""
    report = validate_base(shipped_base("pursuit"), worker, n_states=5)
    assert any("stage constraints: no function is right" in n for n in report.notes)


# --------------------------------------------------------------------------- labeller


def test_select_depends_on_the_evader_distance(pursuit):
    """approach when the evader is far, encircle when it is near."""
    assert pursuit.right_function("select", far_state()) == "approach_evader"
    assert pursuit.right_function("select", near_state()) == "encircle_evader"


def test_constraints_depend_on_the_rule_in_force(pursuit):
    """The restricted filter is right only when an area is in force."""
    area = [5, 5, 9, 9]
    assert pursuit.right_function("constraints", far_state()) == "no_extra_rule"
    assert pursuit.right_function("constraints", far_state(area)) == "drop_restricted_cells"
    with pytest.raises(NoRightFunction, match="emergency"):
        shipped_base("pursuit").right_function("constraints", far_state(area))


def test_twentyone_decide_depends_on_the_opponent():
    """Stood / strong / weak opponents each have their own right decide function."""
    base = shipped_base("twentyone")

    def st(opp, stood):
        return {
            "my_cards": ["10", "6"],
            "opponent_cards": opp,
            "opponent_hidden": 1,
            "opponent_stood": stood,
            "deck": dict(FULL_DECK),
        }

    assert base.right_function("decide", st(["5"], False)) == "play_against_weak_card"
    assert base.right_function("decide", st(["9"], False)) == "play_against_strong_card"
    assert base.right_function("decide", st(["9"], True)) == "beat_stood_opponent"


def test_training_examples_vary_the_answer_at_select(pursuit, worker):
    """Held-out labelled states give both select answers, with real stage inputs."""
    rng = np.random.default_rng(123)
    states = [pursuit.spec.sample_state(rng) for _ in range(40)]
    items = training_examples(pursuit, worker, states, stages=["select"])
    answers = {i.answer for i in items}
    assert answers == {"approach_evader", "encircle_evader"}
    assert all(len(i.prev) == 3 and i.candidates[0] == "approach_evader" for i in items)


# --------------------------------------------------------------------------- chains


def _play(env_id, policy, seeds):
    env = gym.make(env_id)
    infos = []
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        policy.reset(seed=seed)
        while True:
            obs, _, term, trunc, info = env.step(policy.act(obs))
            if term or trunc:
                break
        infos.append(info)
    return infos


@pytest.mark.parametrize("env_id", ["Pursuit-v0", "PursuitRestricted-v0"])
def test_ground_truth_chain_captures_from_every_start(env_id, worker):
    """LD with the labeller as student succeeds on every seeded start, without violations."""
    policy = FunctionChainPolicy(oracle_base(env_id), worker=worker)
    infos = _play(env_id, policy, range(25))
    assert all(i["outcome"] == "success" for i in infos)
    assert sum(i["violations"] for i in infos) == 0 and policy.failures == 0


def test_failing_stage_becomes_no_choice_for_the_env(pursuit, worker):
    """A chosen function that raises makes every pursuer's entry NO_CHOICE."""
    trial = pursuit.copy()
    bad = _entry(
        pursuit,
        "approach_evader",
        name="crash_v2",
        source="def crash_v2(state, prev):\n    return prev[7]\n",
        examples=[],
        properties=[],
    )
    trial.add_function(bad, require_examples=False)
    truth = trial.ground_truth_chooser()

    def choose(stage, cands, state, prev):
        return "crash_v2" if stage.name == "select" else truth(stage, cands, state, prev)

    policy = FunctionChainPolicy(trial, chooser=choose, worker=worker)
    env = gym.make("Pursuit-v0")
    obs, _ = env.reset(seed=0)
    action = policy.act(obs)
    assert action.tolist() == [NO_CHOICE] * 3
    assert policy.last_trace.failed_stage == "select" and policy.failures == 1
    _, _, _, _, info = env.step(action)
    assert info["violations"] == 3


def test_twentyone_chain_agrees_with_the_optimum(worker):
    """The ground-truth 21-points chain takes the optimal action on most decisions."""
    chain = FunctionChainPolicy(oracle_base("TwentyOne-v0"), worker=worker)
    best = ld_agents.make("optimal", "TwentyOne-v0")
    env = gym.make("TwentyOne-v0")
    agree = total = 0
    for seed in range(30):
        obs, _ = env.reset(seed=seed)
        while True:
            a = chain.act(obs)
            agree += int(a) == int(best.act(obs))
            total += 1
            obs, _, term, trunc, _ = env.step(a)
            if term or trunc:
                break
    assert agree / total >= 0.9, (agree, total)


def test_ld_oracle_is_registered_for_both_games():
    """make('ld_oracle', ...) builds a chain policy for pursuit and 21 points."""
    for env_id in ("PursuitRestricted-v0", "TwentyOne-v0"):
        policy = ld_agents.make("ld_oracle", env_id)
        assert isinstance(policy, FunctionChainPolicy) and policy.name == "ld_oracle"
        policy.close()


# --------------------------------------------------------------------------- CLI


def test_validate_cli_passes_shipped_base(capsys):
    """`ld-gym validate` exits 0 on a shipped base and lists what it kept."""
    path = str(bases_dir() / "twentyone.json")
    assert cli_main(["validate", path, "--game", "twentyone", "--states", "5"]) == 0
    assert "16 kept, 0 rejected" in capsys.readouterr().out


def test_validate_cli_rejects_a_broken_extension(tmp_path, capsys):
    """A wrong restricted filter fails with exit 1 and a report naming it and the check."""
    ext = read_base_file(bases_dir() / "pursuit_restricted_emergency.json")
    fn = ext["functions"][0]
    fn["source"] = fn["source"].replace("x0 <= c[0] <= x1", "x0 < c[0] < x1")
    path = tmp_path / "ext.json"
    path.write_text(json.dumps(ext))
    out_json = tmp_path / "report.json"
    code = cli_main(
        ["validate", str(path), "--game", "pursuit", "--states", "20", "--json", str(out_json)]
    )
    out = capsys.readouterr().out
    assert code == 1 and "REJECTED constraints/drop_restricted_cells" in out
    assert "[property] removes_exactly" in out or "[example]" in out
    assert json.loads(out_json.read_text())["rejected"]["drop_restricted_cells"]


def test_validate_cli_checks_a_python_source_file(tmp_path, capsys):
    """A .py file with a '# stage:' header is checked against that stage's contract."""
    path = tmp_path / "pick.py"
    path.write_text("# stage: select\ndef pick(state, prev):\n    return [None, None, None]\n")
    assert cli_main(["validate", str(path), "--game", "pursuit", "--states", "10"]) == 1
    assert "choice_from_input" in capsys.readouterr().out


def test_validate_cli_reports_schema_errors_with_exit_1(tmp_path, capsys):
    """A schema error prints the field and exits 1."""
    data = read_base_file(bases_dir() / "twentyone.json")
    del data["stages"][0]["produces"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    assert cli_main(["validate", str(path), "--game", "twentyone"]) == 1
    assert "stages[0].produces is missing" in capsys.readouterr().err


def test_held_out_splits_do_not_overlap():
    """train and test states come from disjoint seed streams (and are reproducible)."""
    train = sample_states("pursuit", 30, "train")
    test = sample_states("pursuit", 30, "test")
    assert train == sample_states("pursuit", 30, "train")
    assert not any(s in train for s in test)


def test_collect_states_records_play(worker):
    """States met in play are valid base states, one per decision."""
    states = collect_states("PursuitRestricted-v0", 2, seed=9000)
    spec = shipped_base("pursuit").spec
    assert len(states) >= 2 and all(spec.check_state(s) is None for s in states)
    assert all(s["restricted"] is not None for s in states)


def test_chain_policy_pickles_and_plays():
    """An ld_oracle policy survives pickling (process-pool sweeps) and still acts."""
    import pickle

    policy = ld_agents.make("ld_oracle", "Pursuit-v0")
    clone = pickle.loads(pickle.dumps(policy))
    obs, _ = gym.make("Pursuit-v0").reset(seed=3)
    try:
        assert clone.act(obs).tolist() == policy.act(obs).tolist()
    finally:
        policy.close()
        clone.close()


def test_bust_reference_matches_the_env_rule():
    """The validator's exact bust probability equals ld_envs.twenty_one's on real hands."""
    from ld_agents.ld.games.twenty_one import _ref_risk
    from ld_envs import twenty_one as to

    def ids(ranks):
        used: dict[str, int] = {}
        out = []
        for r in ranks:
            out.append(to.RANKS.index(r) + to.N_RANKS * used.get(r, 0))
            used[r] = used.get(r, 0) + 1
        return out

    for state in sample_states("twentyone", 200, "contract"):
        seen = ids(state["my_cards"] + state["opponent_cards"])
        own, visible = seen[: len(state["my_cards"])], seen[len(state["my_cards"]) :]
        want = to.bust_probability(own, to.unseen_cards(own, visible))
        assert _ref_risk(state)["p_bust"] == pytest.approx(want)
