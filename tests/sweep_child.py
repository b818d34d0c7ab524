"""A real ``ld-gym`` run for the interruption tests of ``test_sweep.py``.

It registers ``slow_random`` (the mask-aware random pursuers, slowed by
``SLOW_RANDOM_DELAY`` seconds per decision so that a test can interrupt it mid-way), then
runs the command line given as arguments::

    python tests/sweep_child.py bench Pursuit-v0 --policies scripted,slow_random ...
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from ld_agents.base import register
from ld_agents.baselines.pursuit import RandomPursuers

DELAY = float(os.environ.get("SLOW_RANDOM_DELAY", "0.0005"))


class SlowRandom(RandomPursuers):
    """Random pursuers that take ``DELAY`` seconds per decision (same choices as ``random``)."""

    def act(self, obs: Any) -> Any:
        if DELAY:
            time.sleep(DELAY)
        return super().act(obs)


@register("slow_random", "pursuit")
def _slow_random(env_id: str, seed: int | None = None, **_: Any) -> SlowRandom:
    return SlowRandom(seed=seed)


if __name__ == "__main__":
    from benchmarks.cli.main import main

    sys.exit(main(sys.argv[1:]))
