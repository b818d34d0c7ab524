"""Extra pursuit rules as data (ld_envs.pursuit_rules): semantics, enforcement, capture."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ld_agents
import ld_envs  # noqa: F401
from ld_agents.seeding import episode_seed
from ld_envs import pursuit as pu
from ld_envs import pursuit_rules as pr
from ld_envs.errors import InvalidStart, UnknownName

KINDS = list(pr.KINDS)


def test_at_least_eight_kinds_besides_the_block_and_two_move_with_the_state():
    others = [k for k in KINDS if k != "block"]
    assert len(others) >= 8
    assert sum(pr.KINDS[k].moving for k in KINDS) >= 2
    for kind in ("blocks", "wall", "band", "edge", "distance", "parity"):
        assert kind in pr.KINDS


@pytest.mark.parametrize("kind", KINDS)
def test_scripted_pursuers_capture_the_greedy_evader_on_all_200_starts(kind):
    """Placements drawn from the seed never make capture impossible (the pursuers know
    the rules); and following the rules, they make no violation."""
    env = gym.make("Pursuit-v0", rules=[kind])
    policy = ld_agents.make("scripted", "Pursuit-v0")
    outcomes, violations = [], 0
    for ep in range(200):
        obs, _ = env.reset(seed=episode_seed(0, ep))
        policy.reset(seed=ep)
        done = False
        while not done:
            obs, _, term, trunc, info = env.step(policy.act(obs))
            done = term or trunc
        outcomes.append(info["outcome"])
        violations += info["violations"]
    assert outcomes.count("success") == 200, [i for i, o in enumerate(outcomes) if o != "success"]
    assert violations == 0


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    seed=st.integers(0, 10_000),
    p_illegal=st.floats(0.0, 0.5),
)
def test_violations_are_counted_exactly_and_a_masked_move_never_enters_a_forbidden_cell(
    kind, seed, p_illegal
):
    """Each step: a pursuer whose target the rules forbid (judged on the board at the start
    of the step) stays and counts one violation; a move the mask allows never lands on a
    forbidden cell; the evader, bound by an every-piece rule, never enters one either."""
    env = gym.make("Pursuit-v0", rules=[kind], max_violations=10_000)
    base = env.unwrapped
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    for _ in range(25):
        mask = obs["action_mask"]
        action = []
        for i in range(3):
            legal = np.flatnonzero(mask[i])
            pick = rng.integers(13) if rng.random() < p_illegal else rng.choice(legal)
            action.append(int(pick))
        before = [tuple(p) for p in base.pursuers]
        forbidden = base.forbidden_now()
        targets = pu.decode_action(before, action)
        cells = list(before)
        expected = 0
        for i, t in enumerate(targets):
            blocked = [cells[j] for j in range(3) if j != i]
            ok = pu.pursuer_move_legal(
                cells[i], t, base.size, base.area, blocked, forbidden[pu.PURSUER_NAMES[i]]
            )
            if ok:
                cells[i] = t
            expected += not ok
            if mask[i, action[i]] and t is not None and t != before[i]:
                assert t not in forbidden[pu.PURSUER_NAMES[i]]
        n0 = base.violations
        obs, _, term, trunc, _ = env.step(action)
        assert base.violations - n0 == expected
        assert [tuple(p) for p in base.pursuers] == cells
        if "evader" in base.rules[0].pieces:
            evader_forbidden = base.rules[0].forbidden(
                pr.Board.of(cells, base.history[-2][1], base.size), "evader"
            )
            assert base.evader_cell == base.history[-2][1] or (
                base.evader_cell not in evader_forbidden
            )
        if term or trunc:
            break


def test_an_every_piece_rule_binds_the_evader():
    rule = {"kind": "block", "cells": [5, 5, 7, 7]}
    env = gym.make("Pursuit-v0", rules=[rule])
    env.reset(options={"pursuers": [(0, 0), (0, 2), (0, 4)], "evader": (4, 6)})
    mask = env.unwrapped.evader_observation()["action_mask"]
    assert mask[pu.EVADER_MOVES.index((1, 0))] == 0  # (5, 6) is in the block
    assert mask[pu.EVADER_MOVES.index((-1, 0))] == 1
    pursuers_only = {"kind": "block", "cells": [5, 6, 5, 6], "pieces": "pursuers"}
    env = gym.make("Pursuit-v0", rules=[pursuers_only])
    env.reset(options={"pursuers": [(0, 0), (0, 2), (0, 4)], "evader": (4, 6)})
    assert env.unwrapped.evader_observation()["action_mask"][1] == 1


def test_several_rules_at_once_and_the_observation_holds_their_cells():
    rules = [{"kind": "edge", "width": 1}, {"kind": "diagonal"}, "wall"]
    env = gym.make("Pursuit-v0", rules=rules)
    obs, _ = env.reset(seed=4)
    grid = obs["forbidden"]
    assert grid.shape == (4, 21, 21) and grid.dtype == np.int8
    assert env.observation_space.contains(obs)
    assert grid[0, 0, 0] == 1 and grid[3, 0, 0] == 1  # the edge binds every piece
    ex, ey = obs["evader"].tolist()
    assert grid[0, ex + 1, ey + 1] == 1 and grid[3, ex + 1, ey + 1] in (0, 1)
    assert len(env.unwrapped.rules) == 3
    assert "diagonally next to the evader" in env.unwrapped.rules_text()


def test_drawn_placements_follow_the_seed():
    a = gym.make("Pursuit-v0", rules=["wall", "distance"])
    b = gym.make("Pursuit-v0", rules=["wall", "distance"])
    oa, _ = a.reset(seed=11)
    ob, _ = b.reset(seed=11)
    assert a.unwrapped.rules == b.unwrapped.rules
    assert np.array_equal(oa["forbidden"], ob["forbidden"])
    a.reset(seed=12)
    assert a.unwrapped.rules != b.unwrapped.rules


def test_env_without_rules_draws_exactly_as_before():
    """Rules change nothing for the envs that have none: the same starts from a seed."""
    plain = gym.make("Pursuit-v0")
    obs, _ = plain.reset(seed=5)
    assert "forbidden" not in obs
    rng = np.random.default_rng(5)
    assert [tuple(p) for p in obs["pursuers"].tolist()] == pu.draw_start(rng, 21, None)[0]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"kind": "block", "cells": [0, 3, 4, 6]}, "cells"),
        ({"kind": "block", "cells": [3, 3, 30, 6]}, "cells"),
        ({"kind": "wall", "axis": "row", "at": 5, "span": [2, 12], "gap": [1, 3]}, "gap"),
        ({"kind": "distance", "center": [2, 9], "radius": 3}, "center"),
        ({"kind": "edge", "width": 9}, "width"),
        ({"kind": "band", "axis": "diagonal", "span": [3, 4]}, "axis"),
        ({"kind": "guard", "pursuer": "A", "other": "A", "axis": "row"}, "other"),
        ({"kind": "block", "cells": [3, 3, 5, 5], "pieces": "D"}, "pieces"),
        ({"kind": "block", "cells": [3, 3, 5, 5], "colour": "red"}, "colour"),
        ({"kind": "parity", "x": 0, "y": 1}, "no capture possible"),
        ({"kind": "block", "cells": [True, 3, 5, 5]}, "cells"),
    ],
)
def test_a_rule_that_contradicts_the_board_is_refused_naming_the_field(spec, field):
    with pytest.raises(pr.InvalidRule, match=field):
        gym.make("Pursuit-v0", rules=[spec])


def test_unknown_kind_lists_the_known_ones():
    with pytest.raises(UnknownName, match=r"known: .*wall"):
        gym.make("Pursuit-v0", rules=["walls_of_fire"])


def test_a_rule_covering_a_given_start_is_refused():
    env = gym.make("Pursuit-v0", rules=[{"kind": "block", "cells": [3, 3, 5, 5]}])
    with pytest.raises(InvalidStart, match="forbid"):
        env.reset(options={"pursuers": [(4, 4), (0, 2), (0, 4)], "evader": (10, 10)})


def test_rules_round_trip_through_the_schema():
    rng = np.random.default_rng(0)
    for kind in KINDS:
        rule = pr.make_rule(kind, 21, rng)
        again = pr.make_rule(rule.to_dict(), 21)
        assert again == rule
        assert again.text == rule.text


@pytest.mark.parametrize("mode", ["ansi", "rgb_array"])
def test_rules_have_a_look_in_every_render_mode(mode):
    rules = [{"kind": "block", "cells": [8, 8, 10, 10]}]
    plain = gym.make("Pursuit-v0", render_mode=mode)
    ruled = gym.make("Pursuit-v0", render_mode=mode, rules=rules)
    start = {"pursuers": [(0, 0), (0, 2), (0, 4)], "evader": (15, 15)}
    plain.reset(options=start)
    ruled.reset(options=start)
    a, b = plain.render(), ruled.render()
    if mode == "ansi":
        assert "%" in b and "%" not in a
    else:
        assert not np.array_equal(a, b)
        y = pu.DEFAULT_SIZE - 1 - 9  # row of cell (9, 9) from the top
        from ld_envs.pursuit_render import CELL_PX, HEADER_PX, RULE_EVERY

        px = b[HEADER_PX + y * CELL_PX + CELL_PX // 2, 9 * CELL_PX + 3]
        assert tuple(px) == RULE_EVERY
