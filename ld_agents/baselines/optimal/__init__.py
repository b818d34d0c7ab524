"""The exact best response to a known 21-points opponent, and its exact value.

The opponent's policy is known, as a function of what it sees: any object with
``action_probs(obs) -> (p_stand, p_hit)`` on the observation of
:func:`ld_envs.twenty_one.observation` (the built-in ``dealer``, ``random`` and
``scripted`` players have it; deterministic ones answer 0/1). The game is then a
one-player decision problem under uncertainty, solved here by expectimax over the unseen
cards:

- A state is what the agent has seen: its cards and the opponent's visible cards, in
  order (the order tells when each was drawn), and whether the opponent has stood.
- The face-down card ``h`` is carried as a belief. Cards are dealt from a uniformly
  shuffled deck, so before any opponent decision P(h = x) is proportional to the number
  of unseen cards of value x. Every opponent decision (hit or stand, given its own cards
  including ``h`` and what it saw then) multiplies it by that decision's probability, and
  every opponent card that did not bust it rules out the ``h`` that would have. So the
  belief is ``unseen_count(x) * L(x)``, with the likelihood ``L`` carried down the tree.
  Removing a drawn card from the unseen counts is exactly the conditioning on the draw.
- The agent's value at a state is the larger of standing (the opponent then plays out,
  averaged over ``h`` and the deck) and hitting (averaged over the next card, the
  opponent's reply and its card). Ties go to standing.

Cards are handled by value class (ace, 2..9, ten-valued): the solver assumes the
opponent's probabilities depend on card values, not on suits or on J/Q/K versus 10 (true
of every built-in player). Two solvers share these rules:

- :class:`FastSolver`, for opponents that declare ``own_cards_only`` and hit with
  probability 0/1 (dealer) or one constant (random): states are card multisets, the
  likelihood is a bit mask, branch weights come in closed form. The full solve from every
  deal takes about 1.5-2.5 s of CPU on this project's machines (100k-230k states).
- :class:`ReferenceSolver`, for any opponent with ``action_probs``: ordered card
  sequences and a float likelihood (exact, much slower for a full solve; acting from an
  observation only solves the subtree below it). The tests check the two agree.

API: ``solve(opponent, open_cards)`` gives the best response's win / loss / draw
probabilities averaged over every deal exactly (no sampling, cached per process);
``evaluate(agent, opponent, open_cards)`` gives the same figures for a fixed policy;
:class:`OptimalPolicy` (``ld_agents.make("optimal", "TwentyOne-v0", opponent=...,
open_cards=...)``) acts from an observation alone by replaying the rounds it implies with
the solver's own transitions and reading the same memoised table.

Modules: ``model`` (hands by value class, the opponent model, observations to and from
value classes: what both solvers share), ``fast`` (:class:`FastSolver`), ``reference``
(:class:`ReferenceSolver`), ``solution`` (:class:`Solution`, ``solve``, ``evaluate``, the
solver choice), ``policy`` (:class:`OptimalPolicy`, registered as ``"optimal"``),
``exact_eval`` (:func:`exact_evaluate`: the exact value of ANY policy that is
deterministic given its observation, LLM policies included, by walking the game tree) and
``answers`` (what that walk may assume about a policy, its answer cache, batching, Ray).
"""

from __future__ import annotations

from ld_agents.baselines.optimal.exact_eval import ExactResult, estimate_queries, exact_evaluate
from ld_agents.baselines.optimal.fast import FastSolver, _fhand, fast_path_table
from ld_agents.baselines.optimal.model import TIE_EPS, OpponentModel
from ld_agents.baselines.optimal.policy import OptimalPolicy
from ld_agents.baselines.optimal.reference import ReferenceSolver
from ld_agents.baselines.optimal.solution import (
    Solution,
    evaluate,
    make_solver,
    solve,
    solver_for,
)

__all__ = [
    "TIE_EPS",
    "ExactResult",
    "FastSolver",
    "OpponentModel",
    "OptimalPolicy",
    "ReferenceSolver",
    "Solution",
    "_fhand",
    "estimate_queries",
    "evaluate",
    "exact_evaluate",
    "fast_path_table",
    "make_solver",
    "solve",
    "solver_for",
]
