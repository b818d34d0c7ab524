"""The seeds of a sweep: one env seed per episode, shared by every policy and every tool.

Sweeps (``benchmarks``), teacher traces (``ld_agents.kd``, which keeps the benchmark starts
out of training) and RL evaluations all derive seeds here, so episode ``i`` of a sweep seeded
``s`` is the same start wherever it is asked for. Seeds come from numpy's ``SeedSequence``
spawn keys: independent streams, stable across numpy versions.
"""

from __future__ import annotations

import numpy as np


def _derive(seed: int, *key: int) -> int:
    """A 31-bit seed from ``seed`` and a key path (numpy's SeedSequence spawn keys)."""
    state = np.random.SeedSequence(seed, spawn_key=key).generate_state(1, dtype=np.uint32)
    return int(state[0] >> 1)


def episode_seed(seed: int, episode: int) -> int:
    """The env seed of episode ``episode`` of a sweep seeded ``seed`` (same for every policy)."""
    return _derive(seed, 0, episode)


def policy_seed(seed: int, episode: int) -> int:
    """The seed a non-batching policy is reset with at the start of episode ``episode``."""
    return _derive(seed, 1, episode)


def chunk_seed(seed: int, chunk: int) -> int:
    """The seed a batching policy is reset with at the start of chunk ``chunk``."""
    return _derive(seed, 2, chunk)
