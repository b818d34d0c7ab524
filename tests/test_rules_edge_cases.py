"""Edge cases of the extra pursuit rules: impossible starts, parameters drawn around the
given ones, capture checked on the rules together, and the env's documentation."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ld_envs  # noqa: F401
from ld_envs import pursuit as pu
from ld_envs import pursuit_rules as pr

SIZE = pu.DEFAULT_SIZE


@contextlib.contextmanager
def _within(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging the run) when the block takes longer than ``seconds``."""

    def _timeout(signum: int, frame: object) -> None:
        raise AssertionError(f"still running after {seconds} s: a loop that never ends")

    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _start_is_legal(env: gym.Env) -> bool:
    base = env.unwrapped
    area = pr.rect_cells(base.area) if base.area is not None else ()
    problem = pr.start_problem(
        base.rules, base.size, base.pursuers, base.evader_cell, pu.MOVES, area
    )
    cells = [*base.pursuers, base.evader_cell]
    return (
        problem is None
        and len(set(cells)) == 4
        and not pu.captured(base.pursuers, base.evader_cell)
        and not any(pu.in_area(c, base.area) for c in cells)
    )


# --------------------------------------------------------------------------- no legal start


@pytest.mark.parametrize(
    "rules",
    [
        [{"kind": "band", "axis": "row", "span": [0, 20]}],
        [{"kind": "edge", "width": 3}, {"kind": "band", "axis": "column", "span": [3, 17]}],
        [{"kind": "band", "axis": "column", "span": [0, 20], "pieces": "evader"}],
    ],
)
def test_rules_that_leave_no_legal_start_are_refused_at_make(rules):
    """gym.make refuses rules under which no start exists, naming the rules and the pieces."""
    with _within(30), pytest.raises(pr.InvalidRule, match="no legal start") as info:
        gym.make("Pursuit-v0", rules=rules)
    assert repr(rules[0]) in str(info.value)
    assert "evader 0" in str(info.value)  # the free cells per piece


def test_rules_that_leave_too_few_cells_for_distinct_starts_are_refused():
    """The evader held on (10, 10) and the pursuers on it and its four neighbours: no start
    of four distinct cells that is not already a capture; refused at make."""
    evader_only = [
        {"kind": "band", "axis": axis, "span": span, "pieces": "evader"}
        for axis in ("row", "column")
        for span in ([0, 9], [11, 20])
    ]
    pursuers_only = [
        {"kind": "band", "axis": axis, "span": span, "pieces": "pursuers"}
        for axis in ("row", "column")
        for span in ([0, 8], [12, 20])
    ] + [
        {"kind": "block", "cells": [x, y, x, y], "pieces": "pursuers"}
        for x in (9, 11)
        for y in (9, 11)
    ]
    with _within(30), pytest.raises(pr.InvalidRule, match=r"no legal start.*too few free cells"):
        gym.make("Pursuit-v0", rules=evader_only + pursuers_only)


@pytest.mark.parametrize("rules", [["parity"], [{"kind": "edge", "width": 2}]])
def test_a_drawn_area_that_leaves_no_legal_start_is_drawn_again(rules):
    """PursuitRestricted-v0 with rules whose drawn area can leave every start uncatchable
    redraws the area instead of looping forever; every start is legal."""
    env = gym.make("PursuitRestricted-v0", rules=rules)
    with _within(60):
        for seed in range(12):
            env.reset(seed=seed)
            assert _start_is_legal(env), seed
            assert not pu.area_touches_edge(env.unwrapped.area, SIZE)


def test_a_fixed_area_that_leaves_no_start_fails_clearly_at_reset():
    """A corner given in reset options that leaves no start raises InvalidStart, never hangs."""
    env = gym.make("PursuitRestricted-v0", rules=["parity"])
    with _within(60), pytest.raises(pu.InvalidStart, match="no legal start"):
        env.reset(seed=0, options={"restricted": (2, 2)})  # pockets on the block's side


def test_a_start_is_drawn_among_the_legal_cells_after_the_tries(monkeypatch):
    """When the usual draw is refused START_TRIES times, the start comes from the legal
    cells directly: legal, and the same for the same seed."""
    monkeypatch.setattr(pu, "START_TRIES", 3)
    rules = [{"kind": "band", "axis": "row", "span": [2, 18]}]
    a = gym.make("Pursuit-v0", rules=rules)
    b = gym.make("Pursuit-v0", rules=rules)
    for seed in range(10):
        oa, _ = a.reset(seed=seed)
        ob, _ = b.reset(seed=seed)
        assert _start_is_legal(a), seed
        assert np.array_equal(oa["pursuers"], ob["pursuers"])
        assert np.array_equal(oa["evader"], ob["evader"])


@pytest.mark.parametrize(
    ("rules", "restricted", "seed", "pursuers", "evader"),
    [
        ([{"kind": "band", "axis": "row", "span": [2, 18]}], None, 0,
         [[11, 19], [9, 19], [5, 19]], [19, 19]),
        ([{"kind": "band", "axis": "row", "span": [2, 18]}], None, 1,
         [[11, 19], [6, 20], [17, 19]], [4, 19]),
        ([{"kind": "band", "axis": "row", "span": [2, 18]}], "random", 4,
         [[12, 20], [6, 20], [17, 19]], [16, 20]),
        (["wall"], None, 0, [[0, 17], [0, 7], [1, 12]], [3, 14]),
        (["edge"], "random", 1, [[18, 2], [5, 15], [17, 8]], [8, 17]),
    ],
)  # fmt: skip
def test_seeds_keep_their_starts(rules, restricted, seed, pursuers, evader):
    """Golden starts recorded before the start draw was capped: the same seeds, the same
    starts (a rule set that needs many draws included)."""
    env = gym.make("Pursuit-v0", rules=rules, restricted=restricted)
    obs, _ = env.reset(seed=seed)
    assert obs["pursuers"].tolist() == pursuers
    assert obs["evader"].tolist() == evader


# --------------------------------------------------------------------------- drawn parameters


@pytest.mark.parametrize(
    ("spec", "seed", "params"),
    [
        ("wall", 0, {"axis": "row", "at": 15, "span": (4, 17), "gap": (7, 9)}),
        ("wall", 1, {"axis": "row", "at": 10, "span": (4, 18), "gap": (15, 17)}),
        ("distance", 0, {"center": (12, 10), "radius": 3}),
        ("guard", 0, {"pursuer": "B", "other": "C", "axis": "row"}),
        (
            {"kind": "wall", "axis": "row", "at": 10, "span": [2, 18]},
            1,
            {"axis": "row", "at": 10, "span": (2, 18), "gap": (15, 17)},
        ),
    ],
)
def test_drawn_parameters_keep_their_golden_values(spec, seed, params):
    """Parameters drawn from a seed are those drawn before the draws learnt to fit the
    given parameters (golden values from the episodes' first reset)."""
    env = gym.make("Pursuit-v0", rules=[spec])
    env.reset(seed=seed)
    assert dict(env.unwrapped.rules[0].params) == params


@pytest.mark.parametrize("span", [[2, 12], [2, 6], [2, 4], [8, 11]])
def test_a_wall_gap_left_out_is_drawn_inside_the_given_span(span):
    """The reported case: a wall without a gap gets one strictly inside its span, on every
    seed (it used to be drawn for another span and refused on about half of them)."""
    env = gym.make("Pursuit-v0", rules=[{"kind": "wall", "axis": "row", "at": 10, "span": span}])
    for seed in range(30):
        env.reset(seed=seed)
        lo, hi = env.unwrapped.rules[0].param("span")
        g0, g1 = env.unwrapped.rules[0].param("gap")
        assert (lo, hi) == tuple(span) and lo < g0 <= g1 < hi, seed


@settings(max_examples=60, deadline=None)
@given(
    lo=st.integers(0, SIZE - 1),
    width=st.integers(2, SIZE - 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_drawn_gap_always_fits_a_given_span(lo, width, seed):
    """Property: for every span with room for a gap, the drawn gap lies strictly inside."""
    hi = min(lo + width, SIZE - 1)
    if hi - lo < 2:
        return
    spec = {"kind": "wall", "axis": "column", "at": 10, "span": [lo, hi]}
    rule = pr.make_rule(spec, SIZE, np.random.default_rng(seed))
    g0, g1 = rule.param("gap")
    assert lo < g0 <= g1 < hi


@settings(max_examples=60, deadline=None)
@given(g0=st.integers(1, SIZE - 2), width=st.integers(0, 4), seed=st.integers(0, 2**32 - 1))
def test_a_drawn_span_always_holds_a_given_gap(g0, width, seed):
    """Property: a span left out is drawn to hold the given gap strictly inside."""
    g1 = min(g0 + width, SIZE - 2)
    spec = {"kind": "wall", "axis": "row", "at": 10, "gap": [g0, g1]}
    rule = pr.make_rule(spec, SIZE, np.random.default_rng(seed))
    lo, hi = rule.param("span")
    assert 0 <= lo < g0 <= g1 < hi < SIZE


@settings(max_examples=60, deadline=None)
@given(radius=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_a_drawn_center_always_fits_a_given_radius(radius, seed):
    """Property: a distance rule's center left out keeps the given radius off the edge."""
    rule = pr.make_rule({"kind": "distance", "radius": radius}, SIZE, np.random.default_rng(seed))
    cx, cy = rule.param("center")
    assert rule.param("radius") == radius
    assert min(cx, cy) - radius >= 1 and max(cx, cy) + radius <= SIZE - 2


@settings(max_examples=60, deadline=None)
@given(
    center=st.tuples(st.integers(2, SIZE - 3), st.integers(2, SIZE - 3)),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_drawn_radius_always_fits_a_given_center(center, seed):
    """Property: a distance rule's radius left out keeps the given center's cells off the edge."""
    rule = pr.make_rule(
        {"kind": "distance", "center": list(center)}, SIZE, np.random.default_rng(seed)
    )
    r = rule.param("radius")
    assert r >= 1 and min(center) - r >= 1 and max(center) + r <= SIZE - 2


@pytest.mark.parametrize(("field", "given_pursuer"), [("pursuer", "B"), ("other", "A")])
def test_a_drawn_guard_pursuer_never_equals_the_given_one(field, given_pursuer):
    """A guard with one pursuer given draws the other among the two left, on every seed."""
    spec = {"kind": "guard", field: given_pursuer, "axis": "row"}
    rng = np.random.default_rng(0)
    for _ in range(40):
        rule = pr.make_rule(spec, SIZE, rng)
        assert rule.param(field) == given_pursuer
        assert rule.param("pursuer") != rule.param("other")
    gym.make("Pursuit-v0", rules=[{"kind": "guard", "pursuer": "random", "other": "B"}])


WALL = {"kind": "wall", "axis": "row", "at": 10}


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({**WALL, "span": [2, 3]}, r"gap: cannot be drawn for span \[2, 3\]"),
        ({**WALL, "gap": [0, 2]}, r"span: cannot be drawn around gap \[0, 2\]"),
        ({"kind": "distance", "center": [1, 9]}, r"radius: cannot be drawn for center \[1, 9\]"),
        ({"kind": "distance", "center": [10, 20]}, r"radius: cannot be drawn for center"),
        ({**WALL, "span": "wide"}, r"span: must be a range"),
    ],
)
def test_a_parameter_that_cannot_be_drawn_fails_at_make_naming_it(spec, match):
    """No value fits the given ones: a make-time error naming the parameter, never a value
    the user did not give."""
    with pytest.raises(pr.InvalidRule, match=match):
        gym.make("Pursuit-v0", rules=[spec])


def test_a_center_that_cannot_be_drawn_names_the_center():
    """On a small board a large radius leaves no center off the edge: the error says so."""
    with pytest.raises(pr.InvalidRule, match=r"center: cannot be drawn for radius 4"):
        pr.make_rule({"kind": "distance", "radius": 4}, 8, np.random.default_rng(0))


def test_parameters_drawn_on_a_small_board_fit_it_or_fail_clearly():
    """On the smallest board a drawn diamond fits the board; blocks, which fit on few of
    their draws there, are drawn again until they do (they used to crash in numpy or loop
    forever); a radius no center fits fails at make naming the parameter."""
    env = gym.make("Pursuit-v0", size=8, rules=["distance"])
    for seed in range(20):
        env.reset(seed=seed)
        assert env.unwrapped.rules[0].param("radius") <= 2
    with _within(60):
        env = gym.make("Pursuit-v0", size=8, rules=["blocks"])
        for seed in range(5):
            env.reset(seed=seed)
            assert not pr.capture_pockets(env.unwrapped.rules, 8)
    with pytest.raises(pr.InvalidRule, match="center: cannot be drawn for radius 4"):
        gym.make("Pursuit-v0", size=8, rules=[{"kind": "distance", "radius": 4}])


# --------------------------------------------------------------------------- rules together


def test_capture_is_checked_on_the_rules_together():
    """The edge keeps the evader off (0, 0), where parity alone would leave a pocket: the
    pair is accepted, plays, and its starts are legal."""
    rules = [{"kind": "edge", "width": 3}, {"kind": "parity", "x": 0, "y": 0}]
    built = [pr.make_rule(r, SIZE) for r in rules]
    assert pr.capture_pockets(built, SIZE) == []
    env = gym.make("Pursuit-v0", rules=rules)
    for seed in range(5):
        env.reset(seed=seed)
        assert _start_is_legal(env)


def test_rules_that_together_leave_a_pocket_are_refused_naming_the_culprit():
    """A pocket left by the rules together is refused; the rule that leaves one alone is
    named."""
    rules = [{"kind": "block", "cells": [8, 8, 10, 10]}, {"kind": "parity", "x": 0, "y": 1}]
    with pytest.raises(pr.InvalidRule, match=r"no capture possible.*rules\[1\] \(parity\)"):
        gym.make("Pursuit-v0", rules=rules)


# --------------------------------------------------------------------------- docs


def test_the_env_docs_name_the_rules_argument_and_the_forbidden_key():
    """The class docstring (the env's docs page) documents ``rules`` and ``"forbidden"``."""
    doc = pu.PursuitEnv.__doc__ or ""
    arguments = doc.split("## Arguments")[1].split("##")[0]
    observations = doc.split("## Observation Space")[1].split("##")[0]
    assert "``rules``" in arguments and 'rules=[{"kind"' in arguments
    assert '``"forbidden"``' in observations and "(4, size, size)" in observations


@pytest.mark.parametrize(
    ("rule", "phrase"),
    [
        ({"kind": "slow", "pursuer": "A", "speed": 0, "pieces": "C"}, "the slowed pursuer, A"),
        ({"kind": "slow", "pursuer": "A", "pieces": "evader"}, "the slowed pursuer, A"),
        ({"kind": "guard", "pursuer": "A", "other": "B", "pieces": "A"}, "out of the line, B"),
        ({"kind": "diagonal", "pieces": "evader"}, "must include a pursuer"),
        # a pursuer left to be drawn could be one the pieces leave out
        ({"kind": "slow", "pieces": ["B", "C"]}, "pursuer is drawn per episode"),
        ({"kind": "guard", "pieces": ["A", "B"]}, "give other, or bind every pursuer"),
        ({"kind": "slow", "pursuer": "D"}, "pursuer: must be one of"),
        ({"kind": ["block"]}, "kind: must be a kind name"),
    ],
)
def test_rules_that_would_bind_no_piece_they_act_on_are_refused(rule, phrase):
    """A rule whose ``pieces`` leave it nothing to forbid would be read by an agent as a
    rule and never enforced: refused at make, naming the field."""
    with pytest.raises(pr.InvalidRule, match=phrase):
        gym.make("Pursuit-v0", rules=[rule])


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "slow", "pursuer": "B", "pieces": ["B"]},
        {"kind": "guard", "other": "C", "pieces": "C"},
        {"kind": "diagonal", "pieces": ["A", "evader"]},
    ],
)
def test_rules_binding_the_piece_they_act_on_are_enforced(rule):
    """The same kinds bound to the piece they act on: from one start, over a few seeds (the
    parameters left out are drawn), the rule refuses moves the base game allows."""
    start = {"pursuers": [(5, 5), (1, 1), (1, 3)], "evader": (6, 6)}
    env = gym.make("Pursuit-v0", rules=[rule])
    plain, _ = gym.make("Pursuit-v0").reset(seed=0, options=start)
    refused = 0
    for seed in range(5):
        obs, _ = env.reset(seed=seed, options=start)
        assert not np.any(obs["action_mask"] > plain["action_mask"])
        refused += int((plain["action_mask"] - obs["action_mask"]).sum())
    assert refused > 0


def test_rules_whose_draws_seldom_allow_capture_are_refused_or_warned_at_make(caplog):
    """Drawn parameters that keep capture possible on one draw in 200 or fewer would fail a
    third of resets or more: refused at make with the count. A few more: a warning with the
    share of resets expected to fail; the resets that draw in time play."""
    with pytest.raises(pr.InvalidRule, match=r"1 of 200 draws .* about 37% of resets"):
        gym.make("Pursuit-v0", rules=["blocks", "parity"])
    with caplog.at_level("WARNING", logger="ld_envs.pursuit"):
        env = gym.make("Pursuit-v0", rules=["distance", "parity"])
    assert "of resets may find none" in caplog.text
    env.reset(seed=0)
    assert not pr.capture_pockets(env.unwrapped.rules, 21)


def test_a_draw_that_leaves_no_legal_start_is_not_kept():
    """A draw forbidding every cell to some piece has no pocket, yet no game: it is not
    counted as kept at make (all ten kinds on an 8x8 board are refused, not warned about
    and then left to hang at reset), and reset draws again past such draws."""
    kinds = ["block", "blocks", "wall", "band", "edge", "distance", "parity", "slow"]
    with pytest.raises(pr.InvalidRule, match=r"0 of 200 draws .* leave a legal start"):
        gym.make("Pursuit-v0", size=8, rules=[*kinds, "diagonal", "guard"])
    env = gym.make("Pursuit-v0", size=8, rules=["block", "edge", "distance"])
    for seed in range(6):
        env.reset(seed=seed)
        u = env.unwrapped
        assert pu.no_start_reason(u.rules, 8) is None
        assert u._start_problem() is None


def test_rules_that_leave_no_start_beside_any_area_are_refused_at_make():
    """With the area drawn per episode, fixed rules that leave no legal start beside every
    area the board allows are refused at make (they failed at every reset)."""
    with pytest.raises(pr.InvalidRule, match="beside every restricted area"):
        gym.make("PursuitRestricted-v0", size=8, rules=[{"kind": "edge", "width": 1}])
    env = gym.make("PursuitRestricted-v0", rules=[{"kind": "edge", "width": 1}])
    env.reset(seed=0)
    assert env.unwrapped._start_problem() is None


def test_draws_that_cannot_be_made_are_not_blamed_when_others_can():
    """When some draws can be made but none keeps capture possible, the refusal says so
    (and counts the ones that could not be made), not only the first draw's error."""
    with pytest.raises(pr.InvalidRule, match=r"0 of 200 draws .* could not be made: rects"):
        gym.make("Pursuit-v0", size=8, rules=["blocks", "parity"])


def test_a_drawn_area_is_drawn_again_when_no_rule_draw_fits_it():
    """With the area and the rules both drawn per episode, an area beside which no draw of
    the rules keeps capture possible is drawn again, so every seed starts."""
    env = gym.make("PursuitRestricted-v0", rules=["band", "parity"])
    for seed in range(12):
        obs, _ = env.reset(seed=seed)
        assert env.unwrapped.rules and "restricted" in obs


@pytest.mark.parametrize("env_id", ["Pursuit-v0", "TwentyOne-v0"])
def test_step_and_mask_before_the_first_reset_are_refused(env_id):
    from ld_envs.errors import InvalidAction

    env = gym.make(env_id).unwrapped
    with pytest.raises(InvalidAction, match="call reset"):
        env.step(env.action_space.sample())
    with pytest.raises(InvalidAction, match="call reset"):
        env.action_masks()
    env.reset(seed=0)
    assert env.action_masks().any()


def test_a_given_start_keeps_the_area_redraw():
    """With a start given in the reset options, an area beside which no draw of the rules
    keeps capture possible is drawn again, clear of that start."""
    env = gym.make("PursuitRestricted-v0", rules=["band", "parity"])
    start = {"pursuers": [(0, 0), (0, 2), (2, 0)], "evader": (18, 18)}
    for seed in range(8):
        obs, _ = env.reset(seed=seed, options=start)
        x0, y0, x1, y1 = obs["restricted"].tolist()
        for x, y in [*start["pursuers"], start["evader"]]:
            assert not (x0 <= x <= x1 and y0 <= y <= y1)
