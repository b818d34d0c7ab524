"""The writer's training data: many wordings, the held-out ones kept out, answers that run."""

from __future__ import annotations

import argparse
import re

import numpy as np
import pytest

from benchmarks.emergency_suite import suite_rules
from ld_agents.ld import rule_writer as rw
from ld_agents.ld import writer_grammar as grammar
from ld_agents.ld.rule_writer import HELD_OUT_KINDS

HELD_OUT_SUBJECTS = ("no one can", "no hunter can", " cannot ")


@pytest.fixture(scope="module")
def data() -> rw.WriterData:
    return rw.training_rows(3000, seed=0)


def _rule_line(prompt: str) -> str:
    return prompt.split("\n", 1)[0].removeprefix("# Rule in force: ")


def test_no_training_text_holds_a_held_out_wording(data):
    """The suite's texts (numbers and piece letters masked) appear in no training prompt, nor
    do the held-out wording's subjects; the held-out kinds have no row."""
    texts = [grammar.skeleton(_rule_line(r["prompt"])) for r in data.rows]
    for rule in suite_rules():
        held = grammar.skeleton(rule.text)
        assert not any(held in t for t in texts), rule.label
    assert not any(s in t for t in texts for s in HELD_OUT_SUBJECTS)
    assert not set(HELD_OUT_KINDS) & set(data.kinds)


def test_the_grammar_words_each_rule_many_ways_and_keeps_its_numbers():
    rng = np.random.default_rng(0)
    for kind in grammar.PARAPHRASED:
        rule = rw.random_rule(kind, rng)
        texts = {grammar.paraphrase(rule, rng) for _ in range(60)}
        assert len({grammar.skeleton(t) for t in texts}) >= 5, kind
        numbers = {int(v) for v in re.findall(r"\d+", str(dict(rule.params)))}
        numbers -= {0, 1} if kind == "parity" else set()  # parity may say odd/even
        for text in texts:
            said = {int(v) for v in re.findall(r"\d+", text)}
            assert numbers <= said or kind == "parity", (kind, text)


def _run(body: str, state: dict, prev: list) -> list:
    scope: dict = {}
    exec("def f(state, prev):\n" + body, scope)  # the project's own answer, not model code
    return scope["f"](state, prev)


def test_every_training_answer_runs_and_only_drops_cells(data):
    boards = rw.sample_boards(6, seed=1)
    for row in data.rows[::7]:
        for state, prev in boards:
            out = _run(row["answer"], state, prev)
            assert len(out) == 3
            assert all(c in given for got, given in zip(out, prev, strict=True) for c in got)


def test_primitives_name_the_pursuer_their_guard_binds():
    """A primitive that binds one pursuer says so in its text, and only then has a guard."""
    rng = np.random.default_rng(3)
    for kind in rw.PRIMITIVES:
        for _ in range(30):
            text, cond = grammar.primitive(kind, rng, 21)
            guard = re.match(r"i == (\d) and ", cond)
            if guard:
                letter = "ABC"[int(guard.group(1))]
                assert re.search(rf"\b[Pp]ursuer {letter}\b|^{letter} ", text), (kind, text)


def test_train_writer_options_all_have_help():
    from benchmarks.cli import train_writer

    parser = argparse.ArgumentParser()
    train_writer.configure(parser)
    assert [a.dest for a in parser._actions if not a.help] == []
