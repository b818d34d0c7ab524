"""RL baselines: sb3-contrib ``MaskablePPO`` models on the ld-gym envs, and the ``rl`` policy.

- ``features``: feature functions, a game's ``Dict`` observation as the vector a model reads.
- ``wrappers``: ``FeatureObservation``, ``PursuitShaping`` (training only), ``AreaBlindMask``.
- ``policy``: the ``rl`` policy (``RLPolicy``) and where the shipped models live.
- ``config``: ``RLConfig``, everything one training run depends on.
- ``envs``: the training envs (``make_env``, ``make_vec_env``).
- ``evaluation``: episodes on fixed seeds (``evaluate``) and their rates (``summarize``).
- ``train``: the training run (``train``, ``run_name``, ``TrainResult``).
- ``curve``: the training-curve plot of a run (``plot_curve``).
"""
