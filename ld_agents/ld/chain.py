"""A policy that plays by running a function base's stages (LD's execution half).

:class:`FunctionChainPolicy` turns an observation into the base's state, lets a chooser
pick one function per stage, runs the chosen functions one after the other in a
long-lived sandbox worker, and turns the last stage's output into the env action. The LD
student (``ld``) is this policy with a chooser that scores candidates with the small
model; ``ld_oracle`` is it with the ground-truth labeller as chooser: LD with a perfect
student, i.e. the ceiling a function base allows.

A stage that fails (the function raises, hangs, returns a wrong type) ends the
decision: pursuit plays ``NO_CHOICE`` for every pursuer (the env counts the
violations), 21 points stands (the game has no illegal action). ``last_trace`` keeps the
last decision's :class:`~ld_agents.ld.base.ChainTrace` (candidates, choices,
results) for logs and rendering. The ground-truth chooser raises
:class:`~ld_agents.ld.base.NoRightFunction` when no function of a stage fits the
state (``ld_oracle`` on ``PursuitRestricted-v0`` with ``emergency=False``).

Policies pickle (for process-pool sweeps): the sandbox worker travels as its limits and
loaded sources and starts its own process on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ld_agents.base import Policy, game_of, register
from ld_agents.ld.base import (
    ChainTrace,
    Chooser,
    FunctionBase,
    NoRightFunction,
    read_base_file,
    shipped_base,
)
from ld_agents.ld.games import game_spec
from ld_agents.ld.sandbox import Limits, SandboxWorker
from ld_envs import pursuit as pu
from ld_envs import pursuit_rules

logger = logging.getLogger(__name__)


class FunctionChainPolicy(Policy):
    """Play a game by running a function base's chain, one function per stage."""

    def __init__(
        self,
        base: FunctionBase,
        chooser: Chooser | None = None,
        worker: SandboxWorker | None = None,
        size: int = pu.DEFAULT_SIZE,
        seed: int | None = None,
        rule_text: str | None = None,
    ) -> None:
        super().__init__(seed)
        self.base = base
        #: the new rule in force, as the policy is told it (``state["rule"]``; None: none)
        self.rule_text = rule_text or None
        #: the chooser given (``None``: the ground-truth labeller)
        self.custom_chooser = chooser
        self.worker = worker or SandboxWorker(Limits())
        self.size = size
        self.last_trace: ChainTrace | None = None
        #: decisions whose chain failed (a stage errored or chose badly)
        self.failures = 0
        base.load_into(self.worker)

    @property
    def chooser(self) -> Chooser:
        """The function picking one candidate per stage."""
        return self.custom_chooser or self.base.ground_truth_chooser()

    def state(self, obs: Any) -> dict[str, Any]:
        """The function-base state of an observation (with the new rule's text, if any)."""
        state = self.base.spec.state_from_obs(obs, size=self.size)
        if self.rule_text is not None:
            state["rule"] = self.rule_text
        return state

    def decide(self, obs: Any) -> tuple[Any, ChainTrace]:
        """Run the chain on one observation: ``(action, trace)``."""
        state = self.state(obs)
        trace = self.base.run_chain(self.worker, state, self.chooser)
        if not trace.ok:
            self.failures += 1
            failed = trace.steps[-1]
            logger.debug("stage %s (%s) failed: %s", failed.stage, failed.chosen, failed.result)
        action = self.base.decision_to_action(trace.decision, state)
        if action is None:  # an unreadable decision in a game without an illegal action
            action = self.base.spec.fallback_action(state)
        return action, trace

    def act(self, obs: Any) -> Any:
        action, self.last_trace = self.decide(obs)
        return action

    def action_probs(self, obs: Any) -> tuple[float, float]:
        """21 points: ``(p_stand, p_hit)`` of this deterministic policy (for the exact
        evaluation in :func:`ld_agents.baselines.optimal.evaluate`)."""
        action, _ = self.decide(obs)
        return (0.0, 1.0) if int(action) == 1 else (1.0, 0.0)

    def act_batch(self, observations: Sequence[Any]) -> list[Any]:
        return [self.act(o) for o in observations]

    def close(self) -> None:
        """Stop the sandbox worker (safe to call twice)."""
        self.worker.close()


def collect_states(
    env_id: str, episodes: int, seed: int = 0, policy: Policy | None = None, **env_kwargs: Any
) -> list[dict[str, Any]]:
    """Function-base states met while ``policy`` (default: ``ld_oracle``) plays
    ``episodes`` seeded episodes: the distribution the student really sees in play.

    Episode ``i`` uses env seed ``seed + i``; pick seeds apart from the benchmark's.
    """
    import gymnasium as gym

    import ld_envs  # noqa: F401  (registers the ids)

    own = policy is None
    player = policy if policy is not None else _oracle(env_id)
    env = gym.make(env_id, **env_kwargs)
    size = getattr(env.unwrapped, "size", pu.DEFAULT_SIZE)
    spec = game_spec(game_of(env_id))
    states = []
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            player.reset(seed=seed + i)
            while True:
                states.append(spec.state_from_obs(obs, size=size))
                obs, _, term, trunc, _ = env.step(player.act(obs))
                if term or trunc:
                    break
    finally:
        env.close()
        if own:
            player.close()
    return states


def rule_text_of(rules: Any, size: int = pu.DEFAULT_SIZE) -> str | None:
    """The text a policy is told for new rules: rule specs (as ``gym.make`` takes them,
    with fixed parameters) become their texts; ``None`` or ``[]``: no new rule."""
    specs = pursuit_rules.parse_rules(rules)
    if not specs:
        return None
    return pursuit_rules.rules_text([pursuit_rules.make_rule(s, size) for s in specs])


def oracle_base(env_id: str, emergency: bool = True) -> FunctionBase:
    """The shipped base for an env; ``PursuitRestricted-v0`` gets the shipped emergency
    function for the restricted area when ``emergency`` is true."""
    game = game_of(env_id)
    emergencies = ["restricted_area"] if emergency and env_id == "PursuitRestricted-v0" else []
    return shipped_base(game, emergencies)


def _oracle(
    env_id: str,
    size: int = pu.DEFAULT_SIZE,
    emergency: bool = True,
    base: FunctionBase | None = None,
    seed: int | None = None,
    rules: Any = None,
    extensions: Sequence[str | Path] = (),
) -> FunctionChainPolicy:
    fb = base or oracle_base(env_id, emergency)
    for path in extensions:
        fb.extend(read_base_file(path), origin=str(path))
    rule_text = rule_text_of(rules, size)
    if rule_text is not None:
        check_rule_covered(fb, rule_text)
    return FunctionChainPolicy(fb, size=size, seed=seed, rule_text=rule_text)


def check_rule_covered(base: FunctionBase, rule_text: str, probes: int = 8) -> None:
    """Refuse, before any move, a new rule that some stage of ``base`` has no right
    function for (the oracle would fail on its first move): states drawn by the game's
    spec, told the rule, must each have a right function at every stage."""
    import numpy as np

    rng = np.random.default_rng(0)
    for _ in range(probes):
        state = {**base.spec.sample_state(rng), "rule": rule_text}
        for stage in base.stage_names:
            if not base.right_functions(stage, state):
                raise NoRightFunction(
                    f"no function of stage {stage!r} handles the new rule {rule_text!r}: pass "
                    "the function written for it (extensions=[FILE], from `ld-gym emergency`)"
                )


register("ld_oracle", "pursuit")(_oracle)
register("ld_oracle", "twentyone")(_oracle)
