"""TwentyOne-v0: every rule of SPEC section 3, the observation contract, rendering."""

from __future__ import annotations

import copy
import pickle
from collections import Counter
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

import ld_envs  # noqa: F401  (registers the ids)
from ld_envs.errors import InvalidAction, InvalidArgument, UnknownName
from ld_envs.twenty_one import (
    AGENT,
    CLASS_COUNTS,
    DECK,
    EMPTY,
    HIDDEN,
    HIT,
    MAX_HAND,
    N_CARDS,
    OPPONENT,
    RANKS,
    STAND,
    SUITS,
    DealerPlayer,
    RandomPlayer,
    TwentyOneEnv,
    bust_probability,
    card_class,
    card_name,
    card_value,
    compare_totals,
    dealer_action,
    decode_hand,
    hand_value,
    is_bust,
    is_soft,
    make_deck,
    observation,
    unseen_cards,
)
from ld_envs.twenty_one_render import BACK, FACE, card_rect


def C(name: str) -> int:
    """Card id from a name like ``"AS"``, ``"10H"``, ``"KS"``."""
    return SUITS.index(name[-1]) * len(RANKS) + RANKS.index(name[:-1])


def cards(*names: str) -> list[int]:
    return [C(n) for n in names]


def stacked(*names: str) -> list[int]:
    """A deck dealt in order: agent, opponent, agent, opponent, then draws."""
    return cards(*names)


class Scripted:
    """A test opponent: answers from a list (then stands) and records what it saw."""

    def __init__(self, answers: list[Any] | None = None) -> None:
        self.answers = list(answers or [])
        self.seen: list[dict[str, Any]] = []

    def act(self, obs: dict[str, Any]) -> Any:
        self.seen.append(copy.deepcopy(obs))
        return self.answers.pop(0) if self.answers else STAND


def make(opponent: Any = "dealer", **kwargs: Any) -> TwentyOneEnv:
    return gym.make("TwentyOne-v0", opponent=opponent, **kwargs).unwrapped


# ----------------------------------------------------------------------------- cards


def test_deck_is_26_cards_ace_to_king_in_two_suits():
    """The deck holds A, 2-10, J, Q, K once in each of two suits: 26 distinct cards."""
    deck = make_deck()
    assert len(deck) == N_CARDS == 26 and sorted(deck) == list(DECK)
    names = [card_name(c) for c in deck]
    assert len(set(names)) == 26
    assert Counter(n[:-1] for n in names) == {r: 2 for r in RANKS}
    assert Counter(n[-1] for n in names) == {"S": 13, "H": 13}


def test_value_classes_count_the_deck():
    """CLASS_COUNTS matches the deck: two of each of A..9 and eight ten-valued cards."""
    assert Counter(card_class(c) for c in DECK) == dict(enumerate(CLASS_COUNTS))


def test_card_values_pips_faces_and_ace():
    """2-10 count their pips, J, Q, K count 10, an ace counts 1 as a hard value."""
    for rank in ["2", "3", "4", "5", "6", "7", "8", "9", "10"]:
        assert card_value(C(rank + "S")) == int(rank)
    for face in ["J", "Q", "K"]:
        assert card_value(C(face + "H")) == 10
    assert card_value(C("AS")) == 1


@pytest.mark.parametrize(
    ("hand", "total"),
    [
        (["AS", "9S"], 20),  # ace as 11
        (["AS", "KS"], 21),
        (["AS", "9S", "5H"], 15),  # 11 would bust: ace as 1
        (["AS", "AH"], 12),  # only one ace can count 11
        (["AS", "AH", "9S"], 21),
        (["AS", "AH", "KS", "9H"], 21),
        (["KS", "QH", "2S"], 22),
        (["JS", "QS", "KH"], 30),
        (["10S", "JH"], 20),
        ([], 0),
    ],
)
def test_ace_counts_11_unless_that_busts(hand, total):
    """A hand's total is its best total: an ace is 11 unless that goes over 21."""
    assert hand_value(cards(*hand)) == total


def test_soft_and_bust():
    """is_soft says when an ace counts 11; is_bust when the total is over 21."""
    assert is_soft(cards("AS", "6S")) and not is_soft(cards("AS", "6S", "KS"))
    assert is_bust(cards("KS", "QH", "2S")) and not is_bust(cards("KS", "AH", "QS"))


def test_compare_totals_higher_wins_equal_draws():
    """The showdown: higher total +1, lower -1, equal 0."""
    assert (compare_totals(20, 19), compare_totals(18, 19), compare_totals(17, 17)) == (1, -1, 0)


def test_dealer_rule_hits_below_17():
    """dealer_action hits on 16 and stands on 17, soft 17 included."""
    assert dealer_action(cards("10S", "6S")) == HIT
    assert dealer_action(cards("10S", "7S")) == STAND
    assert dealer_action(cards("AS", "6S")) == STAND


def test_unseen_cards_and_bust_probability():
    """Unseen cards exclude own and visible cards; bust probability counts busting ones."""
    own, visible = cards("KS", "5S"), cards("KH")
    unseen = unseen_cards(own, visible)
    assert len(unseen) == 23 and not set(unseen) & {*own, *visible}
    # 15 busts with 7, 8, 9, 10, J, Q, K: 2+2+2 + (8 ten-valued - 2 seen) = 12 of 23
    assert bust_probability(own, unseen) == pytest.approx(12 / 23)
    assert bust_probability(cards("2S", "3S"), unseen_cards(cards("2S", "3S"), [])) == 0.0


# ----------------------------------------------------------------------------- deal


def test_deal_is_agent_opponent_agent_opponent():
    """Each player gets two cards, dealt alternately from the top of the deck."""
    env = make()
    env.reset(options={"deck": stacked("2S", "3S", "4S", "5S", "6S")})
    assert env.agent_cards == cards("2S", "4S")
    assert env.opponent_cards == cards("3S", "5S")
    assert env.deck == cards("6S")


def test_deck_is_shuffled_from_the_seed():
    """One seed gives one deck order; another seed gives another; no card is lost."""
    a, b, c = make(), make(), make()
    a.reset(seed=11)
    b.reset(seed=11)
    c.reset(seed=12)
    order = a.agent_cards + a.opponent_cards + a.deck
    assert order == b.agent_cards + b.opponent_cards + b.deck
    assert order != c.agent_cards + c.opponent_cards + c.deck
    assert sorted(order) == list(DECK)


# ----------------------------------------------------------------------------- observation


def test_hidden_first_card_is_not_in_the_observation():
    """The opponent's first card is HIDDEN and not counted in its visible total."""
    env = make()
    obs, _ = env.reset(options={"deck": stacked("2S", "AS", "4S", "9S", "6S")})
    assert obs["opponent"][0] == HIDDEN
    assert C("AS") not in obs["opponent"].tolist()
    assert obs["opponent_visible_total"] == 9
    assert decode_hand(obs["own"]) == cards("2S", "4S") and obs["own_total"] == 6


def test_hidden_card_leaks_nowhere():
    """Two deals differing only in the face-down card give identical observations and info."""
    rest = ["6S", "7S", "8S", "2H"]
    one, two = make(opponent=Scripted()), make(opponent=Scripted())
    o1, i1 = one.reset(options={"deck": stacked("2S", "AS", "4S", "9S", *rest, "KH")})
    o2, i2 = two.reset(options={"deck": stacked("2S", "KH", "4S", "9S", *rest, "AS")})
    assert o1.keys() == o2.keys()
    assert all(np.array_equal(o1[k], o2[k]) for k in o1)
    assert i1 == i2
    r1, r2 = one.step(HIT), two.step(HIT)  # the opponent stands: nothing revealed yet
    assert all(np.array_equal(r1[0][k], r2[0][k]) for k in o1) and r1[4] == r2[4]


def test_open_cards_shows_the_first_card():
    """With open_cards=True the opponent's first card is in the observation."""
    env = make(open_cards=True)
    obs, _ = env.reset(options={"deck": stacked("2S", "AS", "4S", "9S")})
    assert decode_hand(obs["opponent"]) == cards("AS", "9S")
    assert obs["opponent_visible_total"] == 20


def test_observation_encoding_and_space():
    """Hands are MAX_HAND card codes padded with EMPTY; every observation is in the space."""
    env = make()
    obs, _ = env.reset(seed=3)
    assert obs["own"].shape == (MAX_HAND,) and obs["own"].dtype == np.int64
    assert obs["own"][2:].tolist() == [EMPTY] * (MAX_HAND - 2)
    assert obs["stood"].tolist() == [0, 0] and obs["deck_left"] == 22
    assert env.observation_space.contains(obs)


def test_observation_function_matches_the_env():
    """The module-level observation() is what the env returns for either side."""
    env = make()
    obs, _ = env.reset(seed=4)
    expected = observation(env.agent_cards, env.opponent_cards, False, False, len(env.deck))
    assert all(np.array_equal(obs[k], expected[k]) for k in obs)
    mirror = env.opponent_observation()
    expected = observation(env.opponent_cards, env.agent_cards, False, False, len(env.deck))
    assert all(np.array_equal(mirror[k], expected[k]) for k in mirror)


# ----------------------------------------------------------------------------- rounds


def test_opponent_acts_after_the_agent_and_sees_the_mirrored_observation():
    """In a round the agent acts first; the opponent then sees its own cards and the
    agent's cards (the agent's first face down), the agent's new card included."""
    opp = Scripted([HIT])
    env = make(opponent=opp)
    env.reset(options={"deck": stacked("2S", "3S", "4S", "5S", "6S", "7S")})
    obs, reward, terminated, _, _ = env.step(HIT)
    seen = opp.seen[0]
    assert decode_hand(seen["own"]) == cards("3S", "5S") and seen["own"][0] == C("3S")
    assert seen["opponent"][0] == HIDDEN
    assert decode_hand(seen["opponent"]) == cards("4S", "6S")  # the agent's hit came first
    assert seen["stood"].tolist() == [0, 0] and seen["deck_left"] == 1
    assert env.agent_cards == cards("2S", "4S", "6S")
    assert env.opponent_cards == cards("3S", "5S", "7S")
    assert not terminated and reward == 0.0
    assert decode_hand(obs["opponent"]) == cards("5S", "7S")


def test_opponent_sees_the_stood_flags_from_its_side():
    """After the agent stands, the opponent's observation says [own 0, other 1]."""
    opp = Scripted([HIT, STAND])
    env = make(opponent=opp)
    env.reset(options={"deck": stacked("2S", "3S", "4S", "5S", "6S", "7S")})
    env.step(STAND)
    assert [s["stood"].tolist() for s in opp.seen] == [[0, 1], [0, 1]]
    assert [len(decode_hand(s["own"])) for s in opp.seen] == [2, 3]


def test_standing_is_final_and_a_stood_opponent_is_not_asked_again():
    """After the opponent stands it never acts again; the agent keeps hitting alone."""
    opp = Scripted([STAND, HIT, HIT])
    env = make(opponent=opp)
    env.reset(options={"deck": stacked("2S", "3S", "4S", "5S", "2H", "3H", "4H")})
    obs, *_ = env.step(HIT)
    assert obs["stood"].tolist() == [0, 1]
    env.step(HIT)
    assert len(opp.seen) == 1 and len(env.opponent_cards) == 2


def test_agent_stand_plays_the_opponent_out_in_one_step():
    """Once the agent stands, that step plays the opponent to the end (dealer: to 17+)."""
    env = make(opponent="dealer")
    env.reset(options={"deck": stacked("KS", "4S", "9S", "5S", "2S", "3S", "4H", "KH")})
    _, reward, terminated, _, info = env.step(STAND)
    assert terminated
    assert env.opponent_cards == cards("4S", "5S", "2S", "3S", "4H")  # 9 -> 11 -> 14 -> 18
    assert info["opponent_total"] == 18 and info["agent_total"] == 19
    assert reward == 1.0 and info["outcome"] == "win"


def test_agent_bust_ends_at_once():
    """A hit that takes the agent over 21 loses at once; the opponent does not act."""
    opp = Scripted([HIT])
    env = make(opponent=opp)
    env.reset(options={"deck": stacked("KS", "2S", "QS", "3S", "5S", "KH")})
    _, reward, terminated, truncated, info = env.step(HIT)
    assert terminated and not truncated and reward == -1.0 and info["outcome"] == "loss"
    assert opp.seen == [] and info["agent_total"] == 25


def test_opponent_bust_ends_at_once():
    """An opponent hit over 21 wins for the agent at once."""
    env = make(opponent=Scripted([HIT]))
    env.reset(options={"deck": stacked("2S", "KS", "3S", "QS", "4S", "5S", "6S")})
    _, reward, terminated, _, info = env.step(HIT)
    assert terminated and reward == 1.0 and info["outcome"] == "win"
    assert info["opponent_total"] == 25 and env.agent_cards == cards("2S", "3S", "4S")


def test_agent_hit_from_an_empty_deck_is_a_stand():
    """With no card left, the agent's hit counts as a stand (the opponent then plays out)."""
    env = make(opponent="dealer")
    env.reset(options={"deck": stacked("KS", "2S", "9S", "3S")})
    obs, reward, terminated, _, info = env.step(HIT)
    assert terminated and env.agent_cards == cards("KS", "9S")
    assert obs["stood"].tolist() == [1, 1]
    assert reward == 1.0 and info["opponent_total"] == 5


def test_opponent_hit_from_an_empty_deck_is_a_stand():
    """With no card left, the opponent's hit counts as a stand."""
    env = make(opponent=Scripted([HIT]))
    env.reset(options={"deck": stacked("KS", "2S", "5S", "3S", "2H")})
    obs, _, terminated, _, _ = env.step(HIT)
    assert not terminated and obs["stood"].tolist() == [0, 1] and obs["deck_left"] == 0
    assert env.opponent_cards == cards("2S", "3S")


@pytest.mark.parametrize(
    ("agent", "opponent", "reward", "outcome"),
    [
        (["KS", "9S"], ["KH", "8S"], 1.0, "win"),
        (["KS", "7S"], ["KH", "8S"], -1.0, "loss"),
        (["KS", "8H"], ["KH", "8S"], 0.0, "draw"),
    ],
)
def test_both_stood_higher_total_wins_equal_draws(agent, opponent, reward, outcome):
    """When both stand the higher total wins +1, lower -1, equal totals draw 0."""
    env = make(opponent=Scripted())
    env.reset(options={"deck": stacked(agent[0], opponent[0], agent[1], opponent[1], "2S")})
    _, r, terminated, _, info = env.step(STAND)
    assert terminated and r == reward and info["outcome"] == outcome


def test_rewards_are_zero_until_the_end():
    """Every non-final step gives 0; the final one +1, -1 or 0 matching the outcome."""
    env = gym.make("TwentyOne-v0", opponent="random")
    rng = np.random.default_rng(0)
    for seed in range(200):
        env.reset(seed=seed)
        while True:
            _, reward, terminated, truncated, info = env.step(int(rng.integers(2)))
            assert not truncated
            if not terminated:
                assert reward == 0.0 and info["outcome"] is None
                continue
            assert {1.0: "win", -1.0: "loss", 0.0: "draw"}[reward] == info["outcome"]
            break


def test_dealer_opponent_hits_exactly_below_17():
    """The built-in dealer hits on 16 and stands on 17."""
    env = make(opponent="dealer")
    env.reset(options={"deck": stacked("2S", "KS", "3S", "6S", "4S", "AH", "5S")})
    obs, *_ = env.step(HIT)  # dealer on 16 hits: 17
    assert env.opponent_cards == cards("KS", "6S", "AH") and obs["stood"][1] == 0
    obs, *_ = env.step(HIT)  # dealer on 17 stands
    assert obs["stood"][1] == 1 and len(env.opponent_cards) == 3
    player = DealerPlayer()
    assert player.action_probs({"own_total": 16}) == (0.0, 1.0)
    assert player.action_probs({"own_total": 17}) == (1.0, 0.0)


def test_random_opponent_follows_the_seed():
    """The random opponent draws from a generator seeded by the env's seed."""
    plays = set()
    for seed in [21, 21, 22, 23, 24, 25]:
        env = make(opponent="random")
        env.reset(options={"deck": list(range(1, 26))}, seed=seed)
        env.step(STAND)  # the opponent plays out from one deck; only its coin flips differ
        plays.add((seed, tuple(env.opponent_cards)))
    assert len({s for s, _ in plays}) == len(plays) == 5  # seed 21 twice: one play
    assert len({c for _, c in plays}) > 1
    assert RandomPlayer().action_probs({}) == (0.5, 0.5)


def test_a_policy_object_can_play_either_side():
    """One policy class plays as the agent and as the opponent (same observation format)."""
    env = make(opponent=DealerPlayer())
    agent = DealerPlayer()
    for seed in range(50):
        obs, _ = env.reset(seed=seed)
        terminated = False
        while not terminated:
            obs, _, terminated, _, info = env.step(agent.act(obs))
        if obs["stood"][0]:  # the agent stood: by the dealer rule, on 17 or more
            assert info["agent_total"] >= 17


def test_unreadable_opponent_answer_counts_as_a_stand():
    """An opponent answer that is not 0/1 is a stand and is counted in info."""
    env = make(opponent=Scripted(["hit please"]))
    env.reset(options={"deck": stacked("2S", "3S", "4S", "5S", "6S", "7S")})
    obs, _, _, _, info = env.step(HIT)
    assert obs["stood"][1] == 1 and info["opponent_invalid"] == 1


def test_info_reveals_the_opponent_only_at_the_end():
    """info hides the opponent's total and cards while running and reveals them at the end."""
    env = make(opponent=Scripted())
    _, info = env.reset(options={"deck": stacked("KS", "AS", "9S", "8S", "2S")})
    assert info["opponent_total"] == -1 and info["opponent_cards"] == []
    _, _, terminated, _, info = env.step(STAND)
    assert terminated and info["opponent_total"] == 19
    assert info["opponent_cards"] == cards("AS", "8S")


# ----------------------------------------------------------------------------- bad input


def test_unknown_opponent_lists_the_known_ones():
    """An unknown opponent name fails with the list of known names."""
    with pytest.raises(UnknownName, match="dealer, random"):
        gym.make("TwentyOne-v0", opponent="croupier")


def test_opponent_without_act_is_rejected():
    """An opponent object without act(obs) is rejected with a clear error."""
    with pytest.raises(InvalidArgument, match="act"):
        gym.make("TwentyOne-v0", opponent=object())


@pytest.mark.parametrize("action", [2, -1, "hit", 1.5, None, True, np.array([0, 1])])
def test_wrong_action_is_rejected(action):
    """Anything but 0/1 (int, numpy int or 0-d array) is an InvalidAction."""
    env = make()
    env.reset(seed=0)
    with pytest.raises(InvalidAction, match="0 \\(stand\\) or 1 \\(hit\\)"):
        env.step(action)


def test_numpy_actions_are_accepted():
    """numpy integers and size-1 arrays are valid actions."""
    env = make()
    for action in (np.int64(STAND), np.array(STAND), np.array([HIT], dtype=np.int32)):
        env.reset(seed=0)
        env.step(action)


def test_step_after_the_end_is_an_error():
    """Stepping a finished episode asks for reset()."""
    env = make()
    env.reset(seed=0)
    env.step(STAND)
    with pytest.raises(InvalidAction, match="reset"):
        env.step(STAND)


@pytest.mark.parametrize(
    ("kwargs", "options"),
    [
        ({"render_mode": "pixels"}, None),
        ({"open_cards": "yes"}, None),
        ({}, {"deck": [1, 2, 3]}),
        ({}, {"deck": [1, 1, 2, 3]}),
        ({}, {"deck": [0, 1, 2, 26]}),
        ({}, {"shoe": [0, 1, 2, 3]}),
    ],
)
def test_bad_arguments_are_rejected(kwargs, options):
    """Bad constructor arguments and reset options fail with InvalidArgument."""
    with pytest.raises(InvalidArgument):
        env = TwentyOneEnv(**kwargs)
        env.reset(options=options)


# ----------------------------------------------------------------------------- conformance


@pytest.mark.parametrize(
    "kwargs", [{}, {"open_cards": True}, {"opponent": "random"}, {"opponent": Scripted()}]
)
def test_check_env(kwargs):
    """Gymnasium's env checker accepts every variant."""
    check_env(make(**kwargs), skip_render_check=True)


def test_two_envs_with_one_seed_step_in_lockstep():
    """Two envs with one seed and one action sequence give identical transitions."""
    a, b = gym.make("TwentyOne-v0", opponent="random"), gym.make("TwentyOne-v0", opponent="random")
    actions = np.random.default_rng(1).integers(0, 2, size=400)
    a.reset(seed=9)
    b.reset(seed=9)
    for action in actions:
        ra, rb = a.step(int(action)), b.step(int(action))
        assert all(np.array_equal(ra[0][k], rb[0][k]) for k in ra[0])
        assert ra[1:] == rb[1:]
        if ra[2]:
            a.reset()
            b.reset()


def test_pickled_env_continues_identically():
    """A pickled env (random opponent) resumes exactly where the original is."""
    env = gym.make("TwentyOne-v0", opponent="random")
    env.reset(options={"deck": list(range(1, 26))})
    env.step(HIT)
    clone = pickle.loads(pickle.dumps(env))
    r1, r2 = env.step(HIT), clone.step(HIT)
    assert all(np.array_equal(r1[0][k], r2[0][k]) for k in r1[0]) and r1[1:] == r2[1:]


# ----------------------------------------------------------------------------- properties


def run_episode(seed: int, actions: list[int], opponent: str) -> list[Any]:
    env = make(opponent=opponent)
    obs, info = env.reset(seed=seed)
    trace: list[Any] = [({k: np.asarray(v).tolist() for k, v in obs.items()}, info)]
    for action in actions:
        obs, reward, terminated, _, info = env.step(action)
        trace.append(({k: np.asarray(v).tolist() for k, v in obs.items()}, reward, info))
        if terminated:
            break
    return trace


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    actions=st.lists(st.integers(0, 1), min_size=1, max_size=10),
    opponent=st.sampled_from(["dealer", "random"]),
)
def test_same_seed_same_episode(seed, actions, opponent):
    """One seed and one action sequence always give one episode."""
    assert run_episode(seed, actions, opponent) == run_episode(seed, actions, opponent)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    actions=st.lists(st.integers(0, 1), min_size=1, max_size=10),
    open_cards=st.booleans(),
)
def test_cards_are_conserved_and_observations_agree(seed, actions, open_cards):
    """Hands plus deck are always the 26 cards; the observation shows exactly the visible ones."""
    env = make(opponent="random", open_cards=open_cards)
    obs, _ = env.reset(seed=seed)
    for action in [*actions, STAND]:
        everything = env.agent_cards + env.opponent_cards + env.deck
        assert sorted(everything) == list(DECK)
        assert decode_hand(obs["own"]) == env.agent_cards
        shown = env.opponent_cards if open_cards else env.opponent_cards[1:]
        assert decode_hand(obs["opponent"]) == shown
        assert obs["deck_left"] == len(env.deck)
        assert obs["own_total"] == hand_value(env.agent_cards)
        assert env.opponent_observation()["own_total"] == hand_value(env.opponent_cards)
        assert env.observation_space.contains(obs)
        obs, _, terminated, _, _ = env.step(action)
        if terminated:
            break
    assert len(env.agent_cards) <= MAX_HAND and len(env.opponent_cards) <= MAX_HAND


# ----------------------------------------------------------------------------- rendering


def pixel(frame: np.ndarray, player: int, slot: int) -> tuple[int, ...]:
    """A pixel inside a card, clear of its border, diagonals and labels."""
    left, top, w, h = card_rect(player, slot)
    return tuple(int(v) for v in frame[top + h - 20, left + w - 12])


def test_rgb_frame_draws_the_hidden_card_face_down():
    """rgb_array gives an HxWx3 uint8 frame; the hidden card shows its back, others faces."""
    env = make(render_mode="rgb_array")
    env.reset(options={"deck": stacked("2S", "AS", "4S", "9S", "6S")})
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8
    assert pixel(frame, OPPONENT, 0) == BACK
    assert pixel(frame, OPPONENT, 1) == FACE
    assert pixel(frame, AGENT, 0) == FACE and pixel(frame, AGENT, 1) == FACE
    env.close()
    env.close()


def test_hidden_card_is_turned_over_at_the_end():
    """When the episode ends the face-down card is drawn face up."""
    env = make(render_mode="rgb_array")
    env.reset(options={"deck": stacked("KS", "AS", "9S", "9H", "6S")})
    env.step(STAND)
    assert pixel(env.render(), OPPONENT, 0) == FACE


def test_open_cards_renders_every_card_face_up():
    """With open_cards the opponent's first card is drawn face up."""
    env = make(render_mode="rgb_array", open_cards=True)
    env.reset(options={"deck": stacked("2S", "AS", "4S", "9S", "6S")})
    assert pixel(env.render(), OPPONENT, 0) == FACE


def test_ansi_hides_the_face_down_card():
    """The text view shows ?? for the hidden card until the end."""
    env = make(render_mode="ansi")
    env.reset(options={"deck": stacked("2S", "AS", "4S", "9S", "6S")})
    text = env.render()
    assert "??" in text and "AS" not in text and "9S" in text
    env.step(STAND)
    assert "??" not in env.render() and "AS" in env.render()


def test_human_mode_opens_a_window_headless():
    """human mode draws into a pygame window (dummy driver) and closes twice safely."""
    env = make(render_mode="human")
    env.reset(seed=0)
    assert env.render() is None
    env.close()
    env.close()
