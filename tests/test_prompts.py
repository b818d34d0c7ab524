"""Prompts show the rules, state and legal cells; answers are parsed leniently."""

from __future__ import annotations

import gymnasium as gym
import pytest

import ld_envs  # noqa: F401
from ld_agents.prompts import (
    parse_cell,
    parse_pursuer_answer,
    pursuer_targets_from_mask,
    pursuit_evader_prompt,
    pursuit_pursuers_prompt,
)
from ld_envs.pursuit import NO_CHOICE, encode_targets, legal_pursuer_targets


def test_pursuer_prompt_lists_exactly_the_legal_cells():
    """Each pursuer's listed targets are the rule function's legal targets."""
    env = gym.make("PursuitRestricted-v0", restricted=(5, 5))
    obs, _ = env.reset(seed=0, options={"pursuers": [(4, 5), (5, 4), (12, 12)], "evader": (15, 15)})
    u = env.unwrapped
    listed = pursuer_targets_from_mask(obs)
    for i in range(3):
        assert listed[i] == legal_pursuer_targets(u.pursuers, i, u.size, u.area)
    text = pursuit_pursuers_prompt(obs, u.size)
    assert "5 <= x <= 9 and 5 <= y <= 9" in text
    assert (
        "Pursuer A is at (4, 5)" in text
        and "(6, 5)" not in text.split("Pursuer A")[1].split("\n")[0]
    )
    assert text.rstrip().endswith("Answer:")


def test_prompt_without_area_has_no_area_rule():
    """Pursuit-v0's prompt does not mention a restricted area."""
    env = gym.make("Pursuit-v0")
    obs, _ = env.reset(seed=0)
    assert "restricted" not in pursuit_pursuers_prompt(obs, 21)


def test_evader_prompt_lists_its_moves():
    """The evader prompt lists staying first and no cell of a pursuer."""
    env = gym.make("Pursuit-v0")
    env.reset(seed=0, options={"pursuers": [(5, 4), (12, 12), (0, 20)], "evader": (4, 4)})
    text = pursuit_evader_prompt(env.unwrapped.evader_observation(), 21)
    moves = text.split("You may move to: ")[1].split("\n")[0]
    assert moves.startswith("(4, 4)") and "(5, 4)" not in moves


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (" A: (3, 4); B: (5, 6); C: (7, 8)", [(3, 4), (5, 6), (7, 8)]),
        ("A -> 3,4\nB moves to (5, 6)\nC: (7,8)", [(3, 4), (5, 6), (7, 8)]),
        (" C: (7, 8); A: (3, 4)", [(3, 4), None, (7, 8)]),
        (" (3, 4), (5, 6) and (7, 8)", [(3, 4), (5, 6), (7, 8)]),
        (" I think the pursuers should chase the evader.", [None, None, None]),
        ("", [None, None, None]),
        (" (1, 2)", [(1, 2), None, None]),
    ],
)
def test_parse_pursuer_answer(answer, expected):
    """Labelled, unlabelled, partial and unreadable answers parse as expected."""
    assert parse_pursuer_answer(answer) == expected


def test_unreadable_and_unreachable_answers_become_no_choice():
    """A missing or out-of-reach target is encoded as NO_CHOICE for the env to count."""
    cells = parse_pursuer_answer("A: (3, 4); C: (19, 19)")
    action = encode_targets([(3, 3), (8, 8), (10, 10)], cells)
    assert action.tolist()[1:] == [NO_CHOICE, NO_CHOICE] and action[0] != NO_CHOICE


def test_parse_cell():
    """The first pair is read; none gives None."""
    assert parse_cell(" (4, 5) because it is far") == (4, 5)
    assert parse_cell(" stay here") is None


def test_twentyone_prompt_shows_what_the_player_sees():
    """The 21-point prompt names own cards and total, hides the face-down card, says who stood."""
    from ld_agents.prompts import twentyone_prompt

    env = gym.make("TwentyOne-v0")
    obs, _ = env.reset(seed=0)
    text = twentyone_prompt(obs)
    assert f"(total {int(obs['own_total'])})" in text
    assert "one face down" in text and "has not stood" in text
    assert f"Cards left in the deck: {int(obs['deck_left'])}." in text


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (" hit", 1),
        (" Stand.", 0),
        (" I would hit, not stand", 1),
        (" standing", None),
        (" 17", None),
    ],
)
def test_parse_hit_stand(answer, expected):
    """The first whole word hit/stand decides; anything else is unreadable."""
    from ld_agents.prompts import parse_hit_stand

    assert parse_hit_stand(answer) == expected
