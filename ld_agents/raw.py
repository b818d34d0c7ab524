"""Raw LLM policies: the model reads rules, state and legal choices and answers in free text.

These are the paper's "S-LLM" rows (the embedded small model) and, on a larger model
behind an endpoint or a local path, its "L-LLM" teacher rows (``teacher``). The answer is
generated (never scored), then parsed leniently; what cannot be read is an illegal choice
that the environment counts (pursuit: ``NO_CHOICE``; the evader: an unreadable move, so it
stays). ``act_batch`` sends the prompts of many episodes to the backend in one call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ld_agents.base import Policy, check_count, register
from ld_agents.baselines.pursuit import check_board, check_board_size
from ld_agents.llm.base import Backend, GenerationRequest, get_backend
from ld_agents.prompts import (
    parse_cell,
    parse_hit_stand,
    parse_pursuer_answer,
    pursuit_evader_prompt,
    pursuit_pursuers_prompt,
    twentyone_prompt,
)
from ld_envs.errors import InvalidArgument
from ld_envs.pursuit import DEFAULT_SIZE, EVADER_MOVES, encode_targets

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "hf:embedded"
STOP = ("\n\n", "\nQuestion", "\nYou control", "\nCurrent state")


class LLMPolicy(Policy):
    """Shared plumbing of LLM-backed policies: the backend, generation and cost counters."""

    max_new_tokens = 40

    def __init__(
        self,
        model: str | Backend = DEFAULT_MODEL,
        seed: int | None = None,
        max_new_tokens: int | None = None,
    ) -> None:
        super().__init__(seed)
        if max_new_tokens is not None:  # checked before the model loads
            self.max_new_tokens = check_count("max_new_tokens", max_new_tokens)
        self.backend = get_backend(model)
        self.decisions = 0
        self.unreadable = 0
        self.seconds = 0.0
        #: the last prompts and answers, for debugging and rendering
        self.last_exchange: list[tuple[str, str]] = []

    def prompts(self, observations: Sequence[Any]) -> list[str]:
        """The prompt of each observation (subclasses: the game's prompt builder)."""
        raise NotImplementedError

    def _requests(self, prompts: Sequence[str]) -> list[GenerationRequest]:
        return [
            GenerationRequest(p, until=STOP, max_new_tokens=self.max_new_tokens) for p in prompts
        ]

    def generate(self, prompts: Sequence[str]) -> list[str]:
        """Generate one answer per prompt in one batched backend call."""
        start = time.perf_counter()
        answers = self.backend.generate_until(self._requests(prompts))
        self.seconds += time.perf_counter() - start
        self.decisions += len(prompts)
        self.last_exchange = list(zip(prompts, answers, strict=True))
        return answers

    def cost_counters(self) -> dict[str, float]:
        """Cumulative cost since construction: decisions, backend counters, wall seconds."""
        return {
            "decisions": self.decisions,
            "unreadable": self.unreadable,
            "policy_seconds": self.seconds,
            **self.backend.stats.snapshot(),
        }

    def act(self, obs: Any) -> Any:
        return self.act_batch([obs])[0]

    def prime(self, observations: Sequence[Any]) -> None:
        """Bring the backend's caches to where ``act_batch(observations)`` would leave
        them, without deciding: the answers are greedy, a function of the prompt, so a
        rollout may replay recorded decisions instead of asking again."""
        self.backend.prime(self._requests(self.prompts(observations)))


class RawPursuers(LLMPolicy):
    """The three pursuers, one free-text answer naming the three target cells (the paper)."""

    def __init__(
        self,
        model: str | Backend = DEFAULT_MODEL,
        size: int = DEFAULT_SIZE,
        seed: int | None = None,
        max_new_tokens: int | None = None,
        rule_text: str | None = None,
        rule_mask: str = "env",
    ) -> None:
        if rule_mask not in ("env", "base"):  # checked before the model loads
            raise InvalidArgument(f"rule_mask must be 'env' or 'base', got {rule_mask!r}")
        check_board_size(size)
        super().__init__(model, seed, max_new_tokens)
        self.size = size
        #: a new rule told as text, and which legal cells the prompt lists (see the prompt)
        self.rule_text = rule_text
        self.rule_mask = rule_mask

    def prompts(self, observations: Sequence[dict[str, np.ndarray]]) -> list[str]:
        for o in observations:
            check_board(o, self.size)
        return [
            pursuit_pursuers_prompt(o, self.size, self.rule_text, self.rule_mask)
            for o in observations
        ]

    def act_batch(self, observations: Sequence[dict[str, np.ndarray]]) -> list[np.ndarray]:
        answers = self.generate(self.prompts(observations))
        actions = []
        for obs, text in zip(observations, answers, strict=True):
            cells = parse_pursuer_answer(text)
            self.unreadable += sum(c is None for c in cells)
            pursuers = [tuple(p) for p in obs["pursuers"].tolist()]
            actions.append(encode_targets(pursuers, cells))
        return actions


class RawEvader(LLMPolicy):
    """The evader as the raw model (the paper's Table 1 set-up): it names one cell."""

    max_new_tokens = 12

    def __init__(
        self,
        model: str | Backend = DEFAULT_MODEL,
        size: int = DEFAULT_SIZE,
        seed: int | None = None,
        max_new_tokens: int | None = None,
    ) -> None:
        check_board_size(size)
        super().__init__(model, seed, max_new_tokens)
        self.size = size

    def prompts(self, observations: Sequence[dict[str, np.ndarray]]) -> list[str]:
        for o in observations:
            check_board(o, self.size)
        return [pursuit_evader_prompt(o, self.size) for o in observations]

    def act_batch(self, observations: Sequence[dict[str, np.ndarray]]) -> list[int]:
        answers = self.generate(self.prompts(observations))
        moves = []
        for obs, text in zip(observations, answers, strict=True):
            cell = parse_cell(text)
            ex, ey = obs["evader"].tolist()
            offset = None if cell is None else (cell[0] - ex, cell[1] - ey)
            if offset in EVADER_MOVES:
                moves.append(EVADER_MOVES.index(offset))
            else:  # unreadable or out of reach: an illegal choice, the evader stays
                self.unreadable += 1
                moves.append(-1)
        return moves


class RawTwentyOne(LLMPolicy):
    """The 21-point player: answers hit or stand in free text.

    TwentyOne has no "no readable choice" action, so an answer that names neither word is
    played as a stand (the safe choice) and counted in ``unreadable``.
    """

    max_new_tokens = 6

    def prompts(self, observations: Sequence[dict[str, Any]]) -> list[str]:
        return [twentyone_prompt(o) for o in observations]

    def act_batch(self, observations: Sequence[dict[str, Any]]) -> list[int]:
        answers = self.generate(self.prompts(observations))
        actions = []
        for text in answers:
            choice = parse_hit_stand(text)
            if choice is None:
                self.unreadable += 1
                choice = 0
            actions.append(choice)
        return actions


@register("raw", "twentyone")
def _raw_twentyone(
    env_id: str,
    model: str | Backend = DEFAULT_MODEL,
    seed: int | None = None,
    max_new_tokens: int | None = None,
) -> Policy:
    return RawTwentyOne(model=model, seed=seed, max_new_tokens=max_new_tokens)


@register("teacher", "twentyone")
def _teacher_twentyone(
    env_id: str,
    model: str | Backend | None = None,
    seed: int | None = None,
    max_new_tokens: int | None = None,
) -> Policy:
    return _raw_twentyone(env_id, _teacher_model(model), seed, max_new_tokens)


@register("raw", "pursuit")
def _raw_pursuit(
    env_id: str,
    side: str = "pursuers",
    model: str | Backend = DEFAULT_MODEL,
    size: int = DEFAULT_SIZE,
    seed: int | None = None,
    max_new_tokens: int | None = None,
    rule_text: str | None = None,
    rule_mask: str = "env",
) -> Policy:
    if side == "evader":
        if rule_text is not None or rule_mask != "env":
            raise InvalidArgument(
                "rule_text and rule_mask tell the pursuers a new rule; the raw evader takes neither"
            )
        return RawEvader(model=model, size=size, seed=seed, max_new_tokens=max_new_tokens)
    if side != "pursuers":
        raise InvalidArgument(f"side must be 'pursuers' or 'evader', got {side!r}")
    return RawPursuers(
        model=model,
        size=size,
        seed=seed,
        max_new_tokens=max_new_tokens,
        rule_text=rule_text,
        rule_mask=rule_mask,
    )


def _teacher_model(model: str | Backend | None) -> str | Backend:
    if model is None:
        raise InvalidArgument(
            "the teacher is the raw policy on a larger model: pass model='openai:URL?model=NAME', "
            "'vllm:/path' or 'hf:/path' (e.g. --model on the command line)"
        )
    return model


@register("teacher", "pursuit")
def _teacher_pursuit(
    env_id: str,
    side: str = "pursuers",
    model: str | Backend | None = None,
    size: int = DEFAULT_SIZE,
    seed: int | None = None,
    max_new_tokens: int | None = None,
    rule_text: str | None = None,
    rule_mask: str = "env",
) -> Policy:
    model = _teacher_model(model)
    return _raw_pursuit(env_id, side, model, size, seed, max_new_tokens, rule_text, rule_mask)
