"""Non-LLM policies: scripted and random players, and the exact 21-points optimum.

- ``pursuit``: random and scripted pursuers, and the evader policies (``greedy``, ...).
- ``twenty_one``: random, dealer and scripted 21-points players, each with ``action_probs``.
- ``optimal``: the exact best response to a known 21-points opponent and its exact value
  (a package: ``model``, the ``fast`` and ``reference`` solvers, ``solution``, ``policy``).
"""
