"""The other side of a batched chunk, batched too: one ``act_batch`` per round of env steps.

The environments call their evader / opponent one observation at a time from inside
``env.step`` (``evader.act(obs)``). When the agent steps many episodes together
(``act_batch``), an LLM on the other side would still answer them one by one, which costs
a full model call per episode and step. :class:`OpponentBatcher` stands in for that
policy in every lane's env: :meth:`OpponentBatcher.step_all` runs the lanes' ``env.step``
calls in threads; each ``act(obs)`` waits until every lane still stepping is either
waiting for an answer or done, then the waiting observations go to the real policy's
``act_batch`` in one call (in lane order, so a round's batch is the same on every run)
and each lane gets its answer. A lane may ask several times in one step (a 21-point
opponent plays out to the end once the agent stood); every ask is a new round.

Outside ``step_all`` (a plain ``env.step`` in the caller's thread) ``act`` calls the
policy directly, so an env holding a batcher still works on its own.

One policy object serves every lane, and each lane's ``env.reset`` reseeds it (the last
reset wins), so a policy that samples plays differently than when it answers one
episode at a time with its own seed. The LLM policies here decode greedily (their answer
is a function of the prompt), so this only matters for a sampling policy put on the
other side.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_WAIT = 0.25  # seconds between checks while waiting (keeps Ctrl-C responsive)


class _Aborted(RuntimeError):
    """Raised in a lane thread when the round it waits on cannot be answered."""


class OpponentBatcher:
    """A batching stand-in for a policy with ``act_batch``, shared by every lane's env."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.name = getattr(policy, "name", type(policy).__name__)
        self._cv = threading.Condition()
        self._local = threading.local()
        self._live = 0
        self._waiting: dict[tuple[int, int], Any] = {}
        self._answers: dict[tuple[int, int], Any] = {}
        self._error: BaseException | None = None
        #: number of ``act_batch`` calls made and observations answered (for reports)
        self.rounds = 0
        self.answered = 0
        #: when a list, each round's answers are appended (a chunk's step journal)
        self.log: list[list[Any]] | None = None
        #: answers to give instead of asking (a journal being replayed), round by round;
        #: the policy only primes its caches with the observations (``prime``)
        self.script: list[list[Any]] | None = None

    # the env side -------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        """Forwarded to the policy (the env resets its other side with each episode)."""
        reset = getattr(self.policy, "reset", None)
        if callable(reset):
            reset(seed=seed)

    def act(self, obs: Any) -> Any:
        """The answer for ``obs``: batched with the other lanes inside :meth:`step_all`."""
        lane = getattr(self._local, "lane", None)
        if lane is None:
            return self.policy.act(obs)
        self._local.asks += 1
        ticket = (lane, self._local.asks)
        with self._cv:
            self._waiting[ticket] = obs
            self._cv.notify_all()
            while ticket not in self._answers:
                if self._error is not None:
                    raise _Aborted("the batched other side failed") from self._error
                self._cv.wait(_WAIT)
            return self._answers.pop(ticket)

    # the rollout side ---------------------------------------------------------------
    def step_all(self, steps: Sequence[Callable[[], Any]]) -> list[Any]:
        """Run ``steps`` (one ``env.step`` call per lane) with the other side batched.

        Returns their results in order; if steps fail, the failing step with the lowest
        index has its exception raised after every step has finished.
        """
        if not steps:
            return []
        self._live, self._error = len(steps), None
        self._waiting.clear()
        self._answers.clear()
        futures = []
        with ThreadPoolExecutor(max_workers=len(steps), thread_name_prefix="lane") as pool:
            try:
                for i, fn in enumerate(steps):
                    futures.append(pool.submit(self._run_lane, i, fn))
                self._serve()
            except BaseException as exc:  # Ctrl-C or a failing act_batch: free the lanes
                self._error = exc  # set before taking the lock: waiting lanes poll it
                with self._cv:
                    self._cv.notify_all()
                raise
        return [f.result() for f in futures]

    def _run_lane(self, lane: int, fn: Callable[[], Any]) -> Any:
        self._local.lane, self._local.asks = lane, 0
        try:
            return fn()
        finally:
            self._local.lane = None
            with self._cv:
                self._live -= 1
                self._cv.notify_all()

    def _serve(self) -> None:
        """Answer rounds until every lane has finished its step."""
        while True:
            with self._cv:
                while self._live and len(self._waiting) < self._live:
                    self._cv.wait(_WAIT)
                if not self._live:
                    return
                tickets = sorted(self._waiting)
                batch = [self._waiting.pop(t) for t in tickets]
            if self.script is not None:
                answers = self._scripted(batch)
            else:
                answers = list(self.policy.act_batch(batch))
            if len(answers) != len(batch):
                raise RuntimeError(
                    f"{self.name}: act_batch returned {len(answers)} answers for "
                    f"{len(batch)} observations"
                )
            with self._cv:
                self.rounds += 1
                self.answered += len(batch)
                self._answers.update(zip(tickets, answers, strict=True))
                if self.log is not None:
                    self.log.append(answers)
                self._cv.notify_all()

    def take_log(self) -> list[list[Any]]:
        """The rounds logged since the last call (none when not logging); the log restarts."""
        rounds = self.log or []
        if self.log is not None:
            self.log = []
        return rounds

    def _scripted(self, batch: list[Any]) -> list[Any]:
        """The next recorded round's answers; the policy primes its caches with ``batch``."""
        if not self.script:
            raise RuntimeError(f"{self.name}: the journal has no answers left for this round")
        self.policy.prime(batch)
        return list(self.script.pop(0))
