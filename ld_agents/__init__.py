"""ld-gym policies: one ``act(obs)`` protocol, a registry, baselines, LLM/KD/LD pipelines.

>>> import ld_agents
>>> policy = ld_agents.make("scripted", "Pursuit-v0")                        # doctest: +SKIP
>>> best = ld_agents.make("optimal", "TwentyOne-v0", opponent="dealer")      # doctest: +SKIP
"""

from ld_agents.base import Policy, PolicyLike, known_policies, make, register

__all__ = ["Policy", "PolicyLike", "known_policies", "make", "register"]
