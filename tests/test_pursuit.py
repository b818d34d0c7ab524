"""Rules, contract and errors of Pursuit-v0 / PursuitRestricted-v0 (SPEC sections 2 and 6)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ld_envs  # noqa: F401  (registers the ids)
from ld_envs.errors import InvalidAction, InvalidArgument, InvalidStart, UnknownName
from ld_envs.pursuit import (
    EVADER_MOVES,
    MOVES,
    NO_CHOICE,
    GreedyEvader,
    PursuitEnv,
    area_from_corner,
    captured,
    encode_targets,
    evader_targets,
    in_area,
    manhattan,
    pursuer_action_mask,
    resolve_pursuers,
    steps_lower_bound,
)

STAY = np.zeros(3, dtype=np.int64)


class Scripted:
    """An evader that replays a fixed list of EVADER_MOVES indices and counts its calls."""

    def __init__(self, moves: list[int] | None = None) -> None:
        self.moves = list(moves or [])
        self.calls = 0

    def act(self, obs: dict) -> int:
        self.calls += 1
        return self.moves.pop(0) if self.moves else 0


def start(env: PursuitEnv, pursuers, evader, **extra):
    return env.reset(seed=0, options={"pursuers": pursuers, "evader": evader, **extra})


def move_index(dx: int, dy: int) -> int:
    return MOVES.index((dx, dy))


# ----------------------------------------------------------------------- moves and board


def test_moves_are_the_13_offsets_within_two_stay_first():
    """MOVES lists every offset with |dx|+|dy| <= 2 once, (0, 0) first; NO_CHOICE is 13."""
    expected = {(dx, dy) for dx in range(-2, 3) for dy in range(-2, 3) if abs(dx) + abs(dy) <= 2}
    assert MOVES[0] == (0, 0)
    assert len(MOVES) == 13 and set(MOVES) == expected
    assert NO_CHOICE == 13


def test_pursuer_cannot_leave_the_board():
    """A move off the board is illegal: the pursuer stays and one violation counts."""
    cells, illegal = resolve_pursuers([(0, 0), (5, 5), (9, 9)], [(-1, 0), (5, 5), (9, 9)], 21, None)
    assert cells[0] == (0, 0) and illegal == [True, False, False]


def test_pursuer_cannot_move_further_than_two():
    """A target at distance 3 is illegal."""
    cells, illegal = resolve_pursuers(
        [(5, 5), (9, 9), (12, 12)], [(7, 6), (9, 9), (12, 12)], 21, None
    )
    assert cells[0] == (5, 5) and illegal[0]


def test_resolution_order_a_checked_against_current_cells_of_b_and_c():
    """A may not enter B's current cell even if B moves away in the same step."""
    cells, illegal = resolve_pursuers(
        [(5, 5), (6, 5), (10, 10)], [(6, 5), (8, 5), (10, 10)], 21, None
    )
    assert illegal == [True, False, False] and cells[:2] == [(5, 5), (8, 5)]


def test_resolution_order_b_may_enter_the_cell_a_just_left():
    """B is checked against A's new cell, so A's vacated cell is free for B."""
    cells, illegal = resolve_pursuers(
        [(5, 5), (6, 5), (10, 10)], [(3, 5), (5, 5), (10, 10)], 21, None
    )
    assert illegal == [False, False, False] and cells[:2] == [(3, 5), (5, 5)]


def test_resolution_order_b_checked_against_c_current_cell():
    """B may not enter C's current cell even if C then moves away."""
    cells, illegal = resolve_pursuers([(1, 1), (5, 5), (6, 5)], [(1, 1), (6, 5), (8, 5)], 21, None)
    assert illegal == [False, True, False] and cells[1:] == [(5, 5), (8, 5)]


def test_resolution_order_c_checked_against_both_new_cells():
    """C may not enter the cell A moved into."""
    cells, illegal = resolve_pursuers(
        [(3, 5), (12, 12), (6, 5)], [(5, 5), (12, 12), (5, 5)], 21, None
    )
    assert illegal == [False, False, True] and cells == [(5, 5), (12, 12), (6, 5)]


def test_pursuer_may_enter_the_evader_cell():
    """Pursuers never share a cell, but a pursuer may stand on the evader's cell."""
    env = PursuitEnv(evader=Scripted())
    start(env, [(3, 3), (10, 10), (15, 15)], (4, 4))
    _, _, _, _, info = env.step(np.array([move_index(1, 1), 0, 0]))
    assert env.pursuers[0] == (4, 4) == env.evader_cell
    assert info["violations"] == 0


def test_cornered_evader_is_captured():
    """An evader in a corner is caught with one pursuer on its cell (only 2 cells touch it)."""
    env = PursuitEnv(evader=Scripted())
    start(env, [(2, 0), (0, 2), (1, 1)], (0, 0))
    action = env.encode_targets([(1, 0), (0, 1), (0, 0)])
    _, reward, terminated, _, info = env.step(action)
    assert terminated and info["outcome"] == "success" and reward == pytest.approx(1.0)


def test_evader_may_always_stay_even_on_a_shared_cell():
    """Staying is legal for the evader even when a pursuer shares its cell."""
    targets = evader_targets((4, 4), [(4, 4), (5, 4), (10, 10)], 21, None)
    assert targets[0] == (4, 4)
    assert targets[EVADER_MOVES.index((1, 0))] is None  # onto pursuer B: illegal


def test_evader_cannot_enter_restricted_area_or_leave_board():
    """Evader moves off the board or into the area are illegal."""
    area = area_from_corner((5, 5))
    targets = evader_targets((4, 5), [(10, 15), (15, 15), (0, 15)], 21, area)
    assert targets[EVADER_MOVES.index((1, 0))] is None
    assert (
        evader_targets((0, 0), [(9, 9), (9, 8), (8, 9)], 21, None)[EVADER_MOVES.index((-1, 0))]
        is None
    )


# ----------------------------------------------------------------------- violations


@pytest.mark.parametrize(
    ("kind", "target_a"),
    [("off board", (-1, 0)), ("onto pursuer", (2, 0)), ("no choice", None), ("into area", (1, 1))],
)
def test_illegal_choice_stays_and_counts_one_violation(kind, target_a):
    """Each kind of illegal pursuer choice leaves it in place and counts one violation."""
    env = PursuitEnv(evader=Scripted(), restricted=(1, 1))
    pursuers = [(0, 0), (2, 0), (15, 15)]
    if kind == "into area":
        pursuers = [(0, 1), (7, 0), (15, 15)]
    start(env, pursuers, (18, 18))
    _, reward, _, _, info = env.step(env.encode_targets([target_a, None, None]))
    assert env.pursuers[0] == pursuers[0]
    assert info["violations"] == 3  # A's illegal choice + B and C sent NO_CHOICE
    assert reward == pytest.approx(-0.3)


def test_seven_violations_do_not_end_the_episode_eight_do():
    """More than 7 violations ends the episode with failure_with_violation."""
    env = PursuitEnv(evader=Scripted())
    start(env, [(0, 0), (10, 10), (15, 15)], (18, 18))
    _, _, term, _, info = env.step(np.array([NO_CHOICE, NO_CHOICE, NO_CHOICE]))
    _, _, term, _, info = env.step(np.array([NO_CHOICE, NO_CHOICE, NO_CHOICE]))
    assert info["violations"] == 6 and not term
    _, _, term, _, info = env.step(np.array([NO_CHOICE, 0, 0]))
    assert info["violations"] == 7 and not term and info["outcome"] is None
    _, reward, term, trunc, info = env.step(np.array([NO_CHOICE, 0, 0]))
    assert term and not trunc and info["outcome"] == "failure_with_violation"
    assert reward == pytest.approx(-1.1)


def test_violation_limit_is_checked_before_capture():
    """A move that captures while pushing violations past 7 is a failure, not a success."""
    env = PursuitEnv(evader=Scripted())
    start(env, [(3, 4), (10, 10), (4, 6)], (4, 4))
    env.violations = 7
    action = env.encode_targets([(4, 4), None, (4, 5)])  # B unreadable: violation 8
    # B is far, so no capture anyway; make B adjacent first to test the order properly
    env.pursuers[1] = (5, 4)
    action = env.encode_targets([(4, 4), (9, 9), (4, 5)])  # B's target too far
    _, _, term, _, info = env.step(action)
    assert captured(env.pursuers, env.evader_cell)
    assert term and info["outcome"] == "failure_with_violation"


# ----------------------------------------------------------------------- capture and end


def test_capture_after_pursuers_move_ends_before_the_evader_moves():
    """A capture by the pursuers' move ends the step: the evader is not asked to move."""
    evader = Scripted([1])
    env = PursuitEnv(evader=evader)
    start(env, [(2, 4), (6, 4), (4, 7)], (4, 4))
    evader.calls = 0
    _, _, term, _, info = env.step(env.encode_targets([(3, 4), (5, 4), (4, 5)]))
    assert term and info["outcome"] == "success" and info["steps"] == 1
    assert evader.calls == 0


def test_capture_after_the_evader_move():
    """An evader that walks into the pursuers is captured after its move."""
    env = PursuitEnv(evader=Scripted([EVADER_MOVES.index((1, 0))]))
    start(env, [(6, 4), (5, 5), (5, 3)], (4, 4))
    _, _, term, _, info = env.step(STAY)
    assert env.evader_cell == (5, 4)
    assert term and info["outcome"] == "success"


def test_truncation_at_100_steps_is_failure_without_violation():
    """100 steps without capture truncate the episode."""
    env = PursuitEnv(evader=Scripted())
    start(env, [(0, 0), (0, 20), (20, 0)], (10, 10))
    for step in range(1, 101):
        _, _, term, trunc, info = env.step(STAY)
        assert info["steps"] == step
        if step < 100:
            assert not (term or trunc)
    assert trunc and not term and info["outcome"] == "failure_without_violation"
    with pytest.raises(InvalidAction, match="reset"):
        env.step(STAY)


# ----------------------------------------------------------------------- starts


def test_starts_from_seed_are_distinct_uncaptured_and_reproducible():
    """Seeded starts have 4 distinct cells, no immediate capture, and repeat per seed."""
    env = PursuitEnv()
    seen = set()
    for seed in range(50):
        obs, _ = env.reset(seed=seed)
        cells = [tuple(p) for p in obs["pursuers"].tolist()] + [tuple(obs["evader"].tolist())]
        assert len(set(cells)) == 4
        assert not captured(cells[:3], cells[3])
        again, _ = env.reset(seed=seed)
        assert np.array_equal(again["pursuers"], obs["pursuers"])
        seen.add(tuple(cells))
    assert len(seen) == 50


def test_figure5_preset():
    """The figure5 preset loads the paper's Figure 5 start."""
    env = gym.make("Pursuit-v0")
    obs, _ = env.reset(seed=0, options={"preset": "figure5"})
    assert obs["pursuers"].tolist() == [[3, 8], [14, 19], [17, 2]]
    assert obs["evader"].tolist() == [20, 18]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"pursuers": [(0, 0), (1, 5), (30, 2)], "evader": (9, 9)}, "off the 21x21 board"),
        ({"pursuers": [(0, 0), (0, 0), (3, 2)], "evader": (9, 9)}, "distinct"),
        ({"pursuers": [(0, 0), (1, 5), (3, 2)], "evader": (1, 5)}, "distinct"),
        ({"pursuers": [(0, 0), (1, 5)], "evader": (9, 9)}, "3 pursuer cells"),
        ({"pursuers": [(0, 0), (1, 5), (3, 3)]}, "both"),
        ({"pursuers": [(4, 5), (5, 4), (5, 6)], "evader": (5, 5)}, "already a capture"),
    ],
)
def test_bad_starts_are_refused_clearly(options, match):
    """Off-board, shared, incomplete or already-captured starts raise InvalidStart."""
    with pytest.raises(InvalidStart, match=match):
        PursuitEnv().reset(seed=0, options=options)


def test_unknown_preset_and_option_are_refused():
    """An unknown preset lists the known ones; an unknown option key is named."""
    env = PursuitEnv()
    with pytest.raises(UnknownName, match="figure5"):
        env.reset(options={"preset": "figure9"})
    with pytest.raises(InvalidArgument, match="speed"):
        env.reset(options={"speed": 3})


# ----------------------------------------------------------------------- restricted area


def test_restricted_area_drawn_per_episode_is_5x5_off_edge_and_holds_no_start():
    """Drawn areas are 5x5, do not touch the edge, hold no start cell, and show in obs."""
    env = gym.make("PursuitRestricted-v0")
    areas = set()
    for seed in range(100):
        obs, _ = env.reset(seed=seed)
        x0, y0, x1, y1 = (int(v) for v in obs["restricted"])
        assert (x1 - x0, y1 - y0) == (4, 4)
        assert x0 >= 1 and y0 >= 1 and x1 <= 19 and y1 <= 19
        cells = [*obs["pursuers"].tolist(), obs["evader"].tolist()]
        assert not any(in_area(c, (x0, y0, x1, y1)) for c in cells)
        areas.add((x0, y0))
    assert len(areas) > 20


def test_restricted_area_by_argument_and_errors():
    """A fixed corner is used; an edge-touching or start-overlapping area is refused."""
    env = gym.make("PursuitRestricted-v0", restricted=(6, 7))
    obs, _ = env.reset(seed=1)
    assert obs["restricted"].tolist() == [6, 7, 10, 11]
    with pytest.raises(InvalidArgument, match="touches the edge"):
        gym.make("PursuitRestricted-v0", restricted=(0, 7))
    with pytest.raises(InvalidStart, match="restricted area"):
        env.reset(options={"pursuers": [(6, 7), (0, 0), (1, 0)], "evader": (20, 20)})
    with pytest.raises(InvalidArgument, match="PursuitRestricted-v0"):
        gym.make("Pursuit-v0").reset(options={"restricted": (5, 5)})


def test_figure5_in_restricted_env_draws_an_area_clear_of_the_start():
    """The figure5 preset works in the restricted env; the drawn area avoids its cells."""
    env = gym.make("PursuitRestricted-v0")
    for seed in range(20):
        obs, _ = env.reset(seed=seed, options={"preset": "figure5"})
        area = tuple(obs["restricted"].tolist())
        assert not any(in_area(c, area) for c in [(3, 8), (14, 19), (17, 2), (20, 18)])


# ----------------------------------------------------------------------- evaders


def test_greedy_evader_maximises_distance_to_nearest_pursuer():
    """The greedy evader steps away from a pursuer approaching from the left."""
    env = PursuitEnv(evader="greedy")
    start(env, [(8, 10), (0, 0), (0, 20)], (10, 10))
    env.step(STAY)
    assert env.evader_cell == (11, 10)


def test_greedy_evader_breaks_ties_reproducibly_from_the_seed():
    """Tie-breaking comes from the episode seed: same seed, same trajectory."""

    def run(seed: int) -> list:
        env = PursuitEnv(evader="greedy")
        env.reset(seed=seed, options={"pursuers": [(10, 0), (0, 20), (20, 20)], "evader": (10, 10)})
        for _ in range(10):
            env.step(STAY)
        return [h[1] for h in env.history]

    runs = {seed: run(seed) for seed in range(8)}
    assert run(3) == runs[3]
    assert len({tuple(r) for r in runs.values()}) > 1  # ties really are broken randomly


def test_illegal_evader_choice_stays_and_is_counted_separately():
    """An illegal or unreadable evader choice leaves it in place; pursuer violations unchanged."""
    env = PursuitEnv(evader=Scripted([EVADER_MOVES.index((-1, 0)), 99]))
    start(env, [(10, 10), (10, 15), (15, 10)], (0, 5))
    _, _, _, _, info = env.step(STAY)
    assert env.evader_cell == (0, 5) and info["evader_violations"] == 1
    _, _, _, _, info = env.step(STAY)
    assert info["evader_violations"] == 2 and info["violations"] == 0


def test_evader_policy_object_gets_its_own_mask():
    """An injected evader sees the board and a (5,) int8 mask over EVADER_MOVES."""
    seen = []

    class Spy:
        def act(self, obs):
            seen.append(obs)
            return 0

    env = gym.make("PursuitRestricted-v0", evader=Spy())
    env.reset(seed=2)
    env.step(STAY)
    assert seen[0]["action_mask"].shape == (5,) and seen[0]["action_mask"].dtype == np.int8
    assert seen[0]["action_mask"][0] == 1 and "restricted" in seen[0]


def test_bad_evader_and_size_are_refused():
    """Unknown evader names list the built-ins; a non-policy object and tiny boards fail."""
    with pytest.raises(UnknownName, match="greedy"):
        gym.make("Pursuit-v0", evader="smart")
    with pytest.raises(InvalidArgument, match="act"):
        gym.make("Pursuit-v0", evader=object())
    with pytest.raises(InvalidArgument, match="size"):
        gym.make("Pursuit-v0", size=4)


# ----------------------------------------------------------------------- contract


def test_spaces_and_info_follow_the_contract():
    """Action space, observation keys/dtypes and info keys are as SPEC section 6 says."""
    env = gym.make("PursuitRestricted-v0")
    assert env.action_space == gym.spaces.MultiDiscrete([14, 14, 14])
    obs, info = env.reset(seed=0)
    assert obs["pursuers"].shape == (3, 2) and obs["evader"].shape == (2,)
    assert obs["restricted"].shape == (4,)
    assert info["action_mask"].dtype == np.int8 and info["action_mask"].shape == (3, 14)
    assert (info["action_mask"][:, NO_CHOICE] == 0).all()
    assert {"violations", "outcome", "steps"} <= set(info)
    assert info["outcome"] is None and info["steps"] == 0
    flat = env.unwrapped.action_masks()
    assert flat.shape == (42,) and np.array_equal(flat, info["action_mask"].reshape(-1))
    assert "restricted" not in gym.make("Pursuit-v0").reset(seed=0)[0]


def test_mask_matches_the_rule_function_and_its_moves_are_legal():
    """The env's fast mask equals the pure rule function; masked moves alone are legal."""
    env = gym.make("PursuitRestricted-v0")
    rng = np.random.default_rng(0)
    for seed in range(30):
        _, info = env.reset(seed=seed)
        u = env.unwrapped
        for _ in range(5):
            mask = info["action_mask"]
            assert np.array_equal(mask, pursuer_action_mask(u.pursuers, u.size, u.area))
            i = int(rng.integers(3))
            legal = np.flatnonzero(mask[i])
            action = np.zeros(3, dtype=np.int64)
            action[i] = rng.choice(legal)
            before = info["violations"]
            _, _, term, trunc, info = env.step(action)
            assert info["violations"] == before
            if term or trunc:
                break


def test_encode_targets_round_trip_and_unexpressible_targets():
    """encode_targets inverts the offsets; a far target or None becomes NO_CHOICE."""
    pursuers = [(5, 5), (10, 10), (15, 15)]
    action = encode_targets(pursuers, [(6, 6), (10, 8), (15, 15)])
    assert action.tolist() == [move_index(1, 1), move_index(0, -2), 0]
    assert encode_targets(pursuers, [(9, 9), None, (15, 15)]).tolist()[:2] == [NO_CHOICE] * 2


@pytest.mark.parametrize(
    "bad",
    [[0, 1], [0, 1, 14], [0.5, 1, 2], "abc", np.zeros((3, 1)), None, {5: 0, 6: 0, 7: 0}, {1, 2, 3}],
)
def test_action_of_wrong_shape_or_range_is_refused(bad):
    """Actions must be 3 ints in [0, 13]."""
    env = PursuitEnv()
    env.reset(seed=0)
    with pytest.raises(InvalidAction, match="3 ints"):
        env.step(bad)


def test_a_policy_class_or_a_board_too_large_is_refused_at_make():
    """A class where a policy object is wanted (its act() would be unbound at reset), and a
    board past MAX_SIZE (its tables would not fit in memory), fail at make, saying why."""
    from ld_envs.pursuit import MAX_SIZE, GreedyEvader
    from ld_envs.twenty_one import DealerPlayer

    with pytest.raises(InvalidArgument, match="not the class GreedyEvader"):
        gym.make("Pursuit-v0", evader=GreedyEvader)
    with pytest.raises(InvalidArgument, match="not the class DealerPlayer"):
        gym.make("TwentyOne-v0", opponent=DealerPlayer)
    with pytest.raises(InvalidArgument, match=f"size must be an int in \\[8, {MAX_SIZE}\\]"):
        gym.make("Pursuit-v0", size=MAX_SIZE + 1)


def test_steps_lower_bound():
    """The stationary-evader bound is ceil((max distance - 1) / 2), at least 1."""
    assert steps_lower_bound([(0, 0), (5, 5), (6, 5)], (5, 6)) == 5  # farthest at 11
    assert steps_lower_bound([(4, 5), (5, 4), (7, 5)], (5, 5)) == 1


# ----------------------------------------------------------------------- properties


class LegalityOracle:
    """Independent statement of the pursuer rule, written once more for the property test."""

    @staticmethod
    def count_illegal(pursuers, action, size, area):
        cells = list(pursuers)
        illegal = 0
        for i in range(3):
            if action[i] == NO_CHOICE:
                illegal += 1
                continue
            dx, dy = MOVES[action[i]]
            t = (cells[i][0] + dx, cells[i][1] + dy)
            ok = 0 <= t[0] < size and 0 <= t[1] < size and not in_area(t, area)
            ok = ok and all(t != cells[j] for j in range(3) if j != i)
            if ok:
                cells[i] = t
            else:
                illegal += 1
        return illegal


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    restricted=st.booleans(),
    actions=st.lists(st.tuples(*[st.integers(0, 13)] * 3), min_size=1, max_size=40),
)
def test_property_pieces_stay_legal_and_violations_are_counted(seed, restricted, actions):
    """Pieces stay on the board, distinct, out of the area; violations = illegal choices."""
    env = PursuitEnv(restricted="random" if restricted else None, evader="random")
    env.reset(seed=seed)
    expected = 0
    for a in actions:
        expected += LegalityOracle.count_illegal(env.pursuers, a, env.size, env.area)
        _, _, term, trunc, info = env.step(np.array(a))
        assert info["violations"] == expected
        cells = [*env.pursuers, env.evader_cell]
        assert all(0 <= x < env.size and 0 <= y < env.size for x, y in cells)
        assert len(set(env.pursuers)) == 3
        assert not any(in_area(c, env.area) for c in cells)
        if term or trunc:
            break


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), evader=st.sampled_from(["greedy", "random"]))
def test_property_every_episode_ends_by_step_100_and_seed_repeats(seed, evader):
    """Any episode ends by step 100; the same seed and actions give the same episode."""

    def play() -> list:
        env = gym.make("PursuitRestricted-v0", evader=evader)
        obs, info = env.reset(seed=seed)
        env.action_space.seed(seed)
        rng = np.random.default_rng(seed)
        trace = []
        for _ in range(200):
            action = (
                env.action_space.sample(mask=tuple(info["action_mask"]))
                if rng.random() < 0.9
                else rng.integers(0, 14, 3)
            )
            obs, _, term, trunc, info = env.step(action)
            trace.append((obs["pursuers"].tolist(), obs["evader"].tolist(), info["violations"]))
            if term or trunc:
                return [*trace, info["outcome"], info["steps"]]
        raise AssertionError("episode ran past 100 steps")

    first = play()
    assert first[-1] <= 100 and first[-2] is not None
    assert play() == first


def test_greedy_evader_never_moves_closer_to_its_nearest_pursuer_when_it_can_avoid_it():
    """Greedy objective: the chosen move's nearest-pursuer distance is the best available."""
    evader = GreedyEvader(seed=0)
    env = PursuitEnv(evader=evader)
    for seed in range(40):
        env.reset(seed=seed)
        obs = env.evader_observation()
        choice = evader.act(obs)
        e = env.evader_cell

        cells = [(e[0] + dx, e[1] + dy) for dx, dy in EVADER_MOVES]
        nearest = [min(manhattan(c, p) for p in env.pursuers) for c in cells]
        legal = np.flatnonzero(obs["action_mask"])
        assert nearest[choice] == max(nearest[k] for k in legal)
