"""One-off studies, each run as ``python -m benchmarks.studies.NAME`` (``--help`` lists its
options); they write under ``runs/`` unless given another path.

- ``env_speed``: env steps per second against Gymnasium's Blackjack and PettingZoo's pursuit;
- ``sweep_overhead``: the sweep's cost over a bare env loop (CPU and wall time);
- ``llm_speed``: LLM decision cost per method and dtype, against the FLOP bound;
- ``sandbox_speed``: cost of running functions in the sandbox;
- ``ld_selection``: the LD student's selection accuracy and entropy on held-out states;
- ``kd_agreement``: how closely a KD student follows its teacher;
- ``rl_new_rule``, ``rl_exact21``, ``pursuit_parallel_table``: RL under a new rule, RL's
  exact 21-points value, the PettingZoo view's table.
"""
