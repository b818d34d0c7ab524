"""The LD student's training recipe: LDTrainConfig, its command line, its data."""

from __future__ import annotations

import dataclasses
import json

import pytest

from benchmarks.cli.main import build_parser
from benchmarks.cli.train_ld import config_from_args
from ld_agents.ld.policy import default_adapter
from ld_agents.ld.prompts import LABELS
from ld_agents.ld.train import LDTrainConfig, build_rows
from ld_agents.lora import RUN_FILE
from ld_envs.errors import InvalidArgument


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("game", "chess"),
        ("states", -1),
        ("rule_rows", -2),
        ("focus", 1.5),
        ("steps", 0),
        ("batch_size", 0),
        ("learning_rate", 0.0),
        ("learning_rate", 2.0),
        ("r", 0),
        ("target_modules", ()),
        ("dtype", "float16"),
        ("threads", 0),
        ("seed", -1),
        ("max_length", 4),
    ],
)
def test_config_rejects_a_bad_field_naming_it(field, value):
    """An out-of-range value fails with LDTrainConfig.<field> in the message."""
    kwargs = {"game": "pursuit", field: value}
    with pytest.raises(InvalidArgument, match=rf"LDTrainConfig\.{field} must be"):
        LDTrainConfig(**kwargs)


def test_every_field_has_help():
    """Each recipe knob documents itself (metadata["help"], shown by `ld-gym train-ld -h`)."""
    for f in dataclasses.fields(LDTrainConfig):
        assert f.metadata.get("help"), f"LDTrainConfig.{f.name} has no help text"


def test_command_line_defaults_are_the_config_defaults():
    """`ld-gym train-ld --game G` builds the dataclass's default recipe; outputs stay in runs/."""
    args = build_parser().parse_args(["train-ld", "--game", "twentyone"])
    assert config_from_args(args) == LDTrainConfig("twentyone")
    assert args.run_dir is None and args.ship is None


def test_options_map_to_fields():
    """--lr, --r and --targets fill learning_rate, r and target_modules."""
    argv = ["train-ld", "--game", "pursuit", "--lr", "0.0005", "--r", "16", "--targets", "a,b"]
    config = config_from_args(build_parser().parse_args(argv))
    assert (config.learning_rate, config.r, config.target_modules) == (5e-4, 16, ("a", "b"))
    assert config.cue_stages is None and config.effective_cue_stages == ("constraints",)
    for given, want in (("none", ()), ("constraints,select", ("constraints", "select"))):
        more = ["--cue-stages", given, "--rule-listings", "3", "--max-length", "1536"]
        more += ["--cue-listings", "4"]
        config = config_from_args(build_parser().parse_args([*argv, *more]))
        assert config.cue_stages == want
        assert (config.rule_listings, config.max_length, config.cue_listings) == (3, 1536, 4)
        again = config_from_args(build_parser().parse_args(config.command().split()[1:]))
        assert again == config


@pytest.mark.skipif(
    not (default_adapter("pursuit").parent / RUN_FILE).is_file(), reason="no shipped adapter"
)
def test_recorded_command_rebuilds_the_same_command():
    """The shipped pursuit adapter's recorded command parses into a recipe that prints it
    back unchanged (the run record's config fingerprint includes it)."""
    record = json.loads((default_adapter("pursuit").parent / RUN_FILE).read_text())
    command = record["train_config"]["extra"]["command"]
    config = config_from_args(build_parser().parse_args(command.split()[1:]))
    assert config.command() == command


def test_rows_are_deterministic_and_answer_with_a_label():
    """Two builds with one seed give the same rows; every answer is one candidate label;
    a row is one state with each labelled stage's cue as a branch (the policy's layout)."""
    from ld_agents.ld.base import shipped_base
    from ld_agents.ld.prompts import stage_cue

    config = LDTrainConfig("pursuit", states=2, rule_rows=3, synthetic_rule_rows=2, pool=20)
    rows = build_rows(config)
    assert rows == build_rows(config)
    answers = [a for r in rows for _, a in r["branches"]]
    assert answers and all(a.strip() in LABELS for a in answers)
    assert sum("extra rule in force: none." not in r["prompt"] for r in rows) >= 3
    base = shipped_base("pursuit")
    # pursuit's rule stage is listed in its cue by default, the others are listed once
    cues = {stage_cue(base, s) for s in base.stage_names if s != "constraints"}
    for row in rows:
        assert "Stage 3, constraints: " in row["prompt"]
        assert "(its functions are listed with the question)" in row["prompt"]
        for cue, answer in row["branches"]:
            if cue.startswith("Stage 3, constraints, functions:\n"):
                listed = [line[0] for line in cue.splitlines()[1:-1]]
                assert cue.endswith("\nAnswer:") and answer.strip() in listed
            else:
                assert cue in cues
    assert all(r["prompt"].count("State: ") == 1 for r in rows)
    assert max(len(r["branches"]) for r in rows) >= 3  # one row holds several stages
    with pytest.raises(InvalidArgument, match=r"cue_stages.*not stages of pursuit"):
        build_rows(dataclasses.replace(config, cue_stages=("nope",)))


def test_a_cue_listed_stage_gets_one_branch_per_listing():
    """``cue_listings``: a cue-listed stage's branch comes in N orders, each label naming
    the state's right function; the stages listed once keep one branch each."""
    from ld_agents.ld.base import shipped_base

    config = LDTrainConfig(
        "twentyone", states=3, focus=2, pool=30, cue_stages=("decide",), cue_listings=3
    )
    rows = build_rows(config)
    assert rows == build_rows(config)
    base = shipped_base("twentyone")
    for row in rows:
        listed = [b for b in row["branches"] if b[0].startswith("Stage 4, decide, functions:")]
        assert len(listed) == 3
        assert len(row["branches"]) == 3 + 3  # hand, risk, opponent once each
        named = {
            next(x for x in cue.splitlines()[1:-1] if x.startswith(ans.strip() + ": ")).split()[1]
            for cue, ans in listed
        }
        assert len(named) == 1 and named <= {f.name for f in base.stage_candidates("decide")}
    orders = {tuple(c.splitlines()[1:-1]) for r in rows for c, _ in r["branches"] if "decide" in c}
    assert len(orders) > 1


def test_rule_rows_with_several_listings_keep_one_answer_per_row():
    """``listings``: each branch of a synthetic rule row lists the stage anew (other
    distractors, other order) and its label always names the same function; more than
    one listing needs the rule stage listed in its cue."""
    from ld_agents.ld.base import shipped_base
    from ld_agents.ld.games import sample_states
    from ld_agents.ld.training_data import synthetic_rule_rows

    base, states = shipped_base("pursuit"), sample_states("pursuit", 16, "train", 3)
    rows = synthetic_rule_rows(base, states, cue_stages=("constraints",), listings=3)
    assert rows and all(len(r["branches"]) == 3 for r in rows)
    orders = set()
    for row in rows:
        named = set()
        for cue, answer in row["branches"]:
            lines = cue.splitlines()[1:-1]
            orders.add(tuple(lines))
            named.add(next(x for x in lines if x.startswith(answer.strip() + ": ")).split()[1])
        assert len(named) == 1
    assert len(orders) > len(rows)  # the listings differ
    with pytest.raises(InvalidArgument, match="listings"):
        synthetic_rule_rows(base, states, listings=2)


def test_near_miss_rows_answer_the_function_that_repeats_the_rule_in_force():
    """Each near-miss row lists two or more invented functions of one family (differing only
    in a number or a piece); the label names the one whose manual line quotes the rule in
    the state line, never a same-topic decoy; the suite's held-out texts are not used."""
    from benchmarks.emergency_suite import suite_rules
    from ld_agents.ld.base import shipped_base
    from ld_agents.ld.games import sample_states
    from ld_agents.ld.training_data import near_miss_rule_rows
    from ld_agents.ld.writer_grammar import skeleton

    base, states = shipped_base("pursuit"), sample_states("pursuit", 24, "train", 5)
    rows = near_miss_rule_rows(base, states, cue_stages=("constraints",), listings=2)
    assert len(rows) >= 8  # states with the restricted area are skipped
    held = [skeleton(r.text) for r in suite_rules()]
    for row in rows:
        rule = row["prompt"].split("extra rule in force: ")[-1].split("\n")[0].rstrip(".")
        for cue, answer in row["branches"]:
            lines = cue.splitlines()[1:-1]
            quoting = [x for x in lines if x.endswith(f"in force: {rule}")]
            family = [x for x in lines if "when this rule is in force" in x]
            assert len(quoting) == 1 and len(family) >= 2
            assert quoting[0].startswith(answer.strip() + ": ")
        assert not any(h in skeleton(rule) or skeleton(rule) in h for h in held)
    with pytest.raises(InvalidArgument, match="listings"):
        near_miss_rule_rows(base, states, listings=2)


def test_ruled_rows_sway_only_the_rule_stage():
    """Each ruled row asks every stage with an invented rule in force: at the rule stage
    the label names the function whose manual line quotes the state's rule; at every other
    stage, the ground truth without it. No suite text is used."""
    from benchmarks.emergency_suite import suite_rules
    from ld_agents.ld.base import shipped_base
    from ld_agents.ld.games import sample_states
    from ld_agents.ld.prompts import state_text
    from ld_agents.ld.sandbox import SandboxWorker
    from ld_agents.ld.training_data import RULE_STAGE, ruled_selection_rows, training_examples
    from ld_agents.ld.writer_grammar import skeleton

    base = shipped_base("pursuit")
    with SandboxWorker() as worker:
        examples = training_examples(base, worker, sample_states("pursuit", 16, "train", 9))
    sizes = {ex.state["size"] for ex in examples}
    assert min(sizes) < 16 <= max(sizes)  # small boards get the student's own families
    rows = ruled_selection_rows(base, examples, seed=3, cue_stages=(RULE_STAGE,))
    truth: dict[str, dict[str, str]] = {}
    for ex in examples:  # keyed by where the state's pieces stand, as the state line says
        key = state_text("pursuit", ex.state).split("; distance")[0]
        truth.setdefault(key, {})[ex.stage] = ex.answer
    assert len(rows) >= 8
    held = [skeleton(r.text) for r in suite_rules()]
    texts = set()
    for row in rows:
        rule = row["prompt"].split("extra rule in force: ")[-1].split("\n")[0].rstrip(".")
        texts.add(rule)
        mine = truth[row["prompt"].split("State: ")[-1].split("; distance")[0]]
        assert rule != "none" and not any(h == skeleton(rule) for h in held)
        stages = [cue.split(",")[1].split(".")[0].strip() for cue, _ in row["branches"]]
        assert stages == list(base.stage_names)
        for (cue, answer), stage in zip(row["branches"], stages, strict=True):
            label = answer.strip()
            if stage == RULE_STAGE:
                lines = cue.splitlines()[1:-1]
                (line,) = [x for x in lines if x.startswith(label + ": ")]
                assert line.endswith(f"when this rule is in force: {rule}")
            else:
                section = row["prompt"].split(f", {stage}: ")[1].split("\nStage ")[0]
                (line,) = [x for x in section.splitlines() if x.startswith(label + ": ")]
                name = line.split()[1]
                assert name == mine[stage]
    assert len(texts) > len(rows) // 2  # the rules vary


def test_wrong_states_lists_each_state_with_a_wrong_pick_once_in_order():
    from ld_agents.ld.train import wrong_states
    from ld_agents.ld.training_data import SelectionExample

    s1, s2, s3 = {"n": 1}, {"n": 2}, {"n": 3}
    exs = [SelectionExample(s, st, None, ("f", "g"), "f")
           for s in (s1, s2, s3) for st in ("a", "b")]  # fmt: skip
    picked = ["f", "f", "g", "g", "f", "f"]  # s2 wrong at both stages, s1 and s3 right
    assert wrong_states(exs, picked) == [id(s2)]
    assert wrong_states(exs, ["g"] * 6) == [id(s1), id(s2), id(s3)]
    with pytest.raises(InvalidArgument, match="picks for"):
        wrong_states(exs, ["f"])


def test_contrast_states_are_the_other_side_of_each_mistake():
    from ld_agents.ld.train import contrast_states
    from ld_agents.ld.training_data import SelectionExample

    states = [{"n": k} for k in range(6)]
    answers = ["weak", "strong", "strong", "weak", "weak", "strong"]
    exs = [SelectionExample(s, "decide", None, ("weak", "strong"), a)
           for s, a in zip(states, answers, strict=True)]  # fmt: skip
    # states 1 and 2 are strong but the student said weak; state 0 is right
    picked = ["weak", "weak", "weak", "weak", "weak", "strong"]
    wrong = [id(states[1]), id(states[2])]
    # one weak state per mistake, never a wrong one, a taken one or the same one twice
    assert contrast_states(exs, picked, wrong) == [id(states[0]), id(states[3])]
    assert contrast_states(exs, picked, wrong, taken={id(states[0])}) == [
        id(states[3]),
        id(states[4]),
    ]
    assert contrast_states(exs, picked, wrong[:1]) == [id(states[0])]
    with pytest.raises(InvalidArgument, match="picks for"):
        contrast_states(exs, picked[:2], wrong)


def test_contrast_rows_need_mistake_rows():
    with pytest.raises(InvalidArgument, match=r"contrast_rows needs mistake_rows"):
        LDTrainConfig("twentyone", contrast_rows=4, init_adapter="x", pool=8)


def test_mistake_rows_need_an_init_adapter_and_a_pool():
    with pytest.raises(InvalidArgument, match=r"mistake_rows needs init_adapter"):
        LDTrainConfig("twentyone", mistake_rows=4)
    with pytest.raises(InvalidArgument, match=r"mistake_rows needs init_adapter"):
        LDTrainConfig("twentyone", mistake_rows=4, init_adapter="x", pool=0)


def test_mistake_and_contrast_rows_come_from_the_init_adapters_real_picks():
    """Real scoring on the embedded model: the added rows are exactly the pool states the
    init adapter answers wrongly at some stage (capped at mistake_rows), and beside them
    states whose right answer is one of its wrong picks. The init adapter is one that errs
    often as a selector, the 21-points KD adapter (the shipped LD student errs on ~1% of
    states, too few for a 40-state pool)."""
    from ld_agents.kd.policy import default_adapter as kd_adapter
    from ld_agents.ld.base import shipped_base
    from ld_agents.ld.games import sample_states
    from ld_agents.ld.prompts import twentyone_state_text
    from ld_agents.ld.sandbox import SandboxWorker
    from ld_agents.ld.train import contrast_states, student_picks, wrong_states
    from ld_agents.ld.training_data import training_examples

    adapter = str(kd_adapter("TwentyOne-v0"))
    config = LDTrainConfig("twentyone", states=0, focus=0, pool=40, mistake_rows=3,
                           contrast_rows=3, shuffled_copies=0, init_adapter=adapter,
                           dtype="bfloat16")  # fmt: skip
    base = shipped_base("twentyone")
    with SandboxWorker() as worker:
        pool = sample_states("twentyone", 40, "train", 0)
        exs = training_examples(base, worker, pool)
    picked = student_picks(base, exs, adapter, "bfloat16")
    wrong = wrong_states(exs, picked)[:3]
    assert len(wrong) == 3, "the KD adapter, scored as a selector, errs on 3 of 40 states"
    other = contrast_states(exs, picked, wrong)[:3]
    assert other and not set(other) & set(wrong)
    wrong_picks = {(ex.stage, p) for ex, p in zip(exs, picked, strict=True)
                   if id(ex.state) in wrong and p != ex.answer}  # fmt: skip
    assert all(any((ex.stage, ex.answer) in wrong_picks for ex in exs if id(ex.state) == sid)
               for sid in other)  # fmt: skip
    expected = {twentyone_state_text(ex.state) for ex in exs if id(ex.state) in wrong + other}
    rows = build_rows(config)
    assert len(rows) == len(expected)
    for row in rows:
        assert any(line in row["prompt"] for line in expected)
