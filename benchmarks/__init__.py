"""The benchmark layer: the sweep library, the ``python -m`` studies and the command line.

Library (imports ``ld_envs`` and ``ld_agents`` only):

- ``sweep``: :func:`run_sweep` over a :class:`SweepSpec` (resumable, chunked, Ray optional);
- ``specs``, ``games``, ``rollout``, ``replay``, ``journal``, ``opponent_batch``,
  ``executors``: policy specs, per-game hooks, the episode loops, resume checks, the step
  journal of batched chunks, batched opponents, serial/process/Ray executors;
- ``results_io``: episodes.jsonl and sweep.json on disk (append-only, atomic);
- ``stats`` (Wilson and Student-t intervals, paired comparisons), ``paper`` (the paper's
  figures), ``optimum`` (the exact 21-points ceiling), ``tables`` (formatting);
- ``plots``: bar charts, Figure 5 trajectories, GIFs;
- ``bench``, ``reproduce``, ``demo``, ``train_rl``: what the commands of the same name do.

``benchmarks.studies``: one-off studies run as ``python -m benchmarks.studies.NAME``.
``benchmarks.cli``: the ``ld-gym`` command line, the top layer.
``benchmarks/results/``: committed results, indexed by its README.
"""
