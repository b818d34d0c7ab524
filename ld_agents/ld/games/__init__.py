"""Per-game vocabularies that give a function base its meaning.

A function base (``ld_agents.ld.base``) is data a teacher writes; this package is
the trusted project code that the loader, the validator, the ground-truth labeller and
the LD policy read it with. For each game a :class:`GameSpec` holds:

- the **state** the functions receive (a JSON dict, built from an env observation by
  :meth:`GameSpec.state_from_obs`) and a checker for it;
- the **value types** a stage may consume or produce (``"cell_lists"``, ``"hand"``...),
  each with a checker and a sampler of realistic values (used to test a stage's
  functions on inputs that do not depend on the base's other functions);
- the **predicates** a manual entry's ``right_when`` may name: the machine-readable form
  of "when to call it", from which the ground-truth labeller picks the right function;
- the **properties** a stage or a function may claim (``cells_within_distance``,
  ``bust_probability``...), checked on sampled inputs by the validator;
- how the last stage's output becomes an env action (:meth:`GameSpec.decision_to_action`).

Modules: :mod:`~ld_agents.ld.games.spec` (the framework: :class:`GameSpec`,
:class:`ValueType`, :class:`Predicate`, :class:`Property`, the common predicates),
:mod:`~ld_agents.ld.games.pursuit` (:data:`PURSUIT`) and
:mod:`~ld_agents.ld.games.twenty_one` (:data:`TWENTYONE`); this package's top level holds
the registry (:data:`GAMES`, :func:`game_spec`) and the seeded state splits
(:data:`SPLITS`, :func:`sample_states`).

Everything here calls the rule functions of ``ld_envs.pursuit`` / ``ld_envs.twenty_one``
(never a copy). To support a new predicate or property, add it to the game's table in its
module and document it in ``docs/function_bases.md``.
"""

from __future__ import annotations

import numpy as np

from ld_agents.ld.games.pursuit import (
    NEAR_DISTANCE,
    PURSUIT,
    pursuit_state_from_obs,
    sample_pursuit_state,
)
from ld_agents.ld.games.spec import (
    COMMON_PREDICATES,
    Check,
    GameSpec,
    Predicate,
    Property,
    State,
    ValueType,
    split_property,
)
from ld_agents.ld.games.twenty_one import (
    DECISIONS,
    FULL_DECK,
    TWENTYONE,
    WEAK_UPCARD_MAX,
    best_total,
    bust_probability,
    opponent_distribution,
    rank_value,
    sample_twentyone_state,
    soft_hand,
    twentyone_state_from_obs,
    unseen_counts,
)
from ld_envs.errors import InvalidArgument, unknown_name

GAMES: dict[str, GameSpec] = {"pursuit": PURSUIT, "twentyone": TWENTYONE}

#: disjoint seed streams for sampled states: train the student on one, measure on another
SPLITS: dict[str, int] = {"train": 0, "validation": 1, "test": 2, "contract": 3}


def sample_states(game: str, n: int, split: str = "train", seed: int = 0) -> list[State]:
    """``n`` sampled states of ``game`` from the ``split``'s own seed stream.

    Streams never overlap across splits (``np.random.default_rng([split_id, seed])``), so
    a student trained on ``"train"`` is measured on held-out ``"test"`` states.
    """
    if split not in SPLITS:
        raise unknown_name("split", split, list(SPLITS))
    if n < 0:
        raise InvalidArgument(f"n must be >= 0, got {n}")
    rng = np.random.default_rng([SPLITS[split], seed])
    spec = game_spec(game)
    return [spec.sample_state(rng) for _ in range(n)]


def game_spec(name: str) -> GameSpec:
    """The :class:`GameSpec` of ``"pursuit"`` or ``"twentyone"``."""
    if not isinstance(name, str):
        raise InvalidArgument(f"a game name is a string, got {name!r}")
    try:
        return GAMES[name]
    except KeyError:
        raise unknown_name("game", name, list(GAMES)) from None


__all__ = [
    "COMMON_PREDICATES",
    "DECISIONS",
    "FULL_DECK",
    "GAMES",
    "NEAR_DISTANCE",
    "PURSUIT",
    "SPLITS",
    "TWENTYONE",
    "WEAK_UPCARD_MAX",
    "Check",
    "GameSpec",
    "Predicate",
    "Property",
    "State",
    "ValueType",
    "best_total",
    "bust_probability",
    "game_spec",
    "opponent_distribution",
    "pursuit_state_from_obs",
    "rank_value",
    "sample_pursuit_state",
    "sample_states",
    "sample_twentyone_state",
    "soft_hand",
    "split_property",
    "twentyone_state_from_obs",
    "unseen_counts",
]
