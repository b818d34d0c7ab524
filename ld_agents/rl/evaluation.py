"""Evaluation of a policy on fixed seeds: :func:`evaluate` (one record per episode, many
envs stepped together through one batched ``act_batch``) and :func:`summarize` (rates and
means of the records)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from ld_agents.base import game_of
from ld_envs.pursuit import steps_lower_bound


def evaluate(
    policy: Any,
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    seeds: Sequence[int] = range(200),
    batch: int = 50,
) -> list[dict[str, Any]]:
    """Play one episode per seed (``env.reset(seed=s)``) and return one record each.

    ``policy`` is any ld-gym policy (``act_batch`` is called on up to ``batch`` envs at
    once). Records: ``seed``, ``outcome`` (pursuit) or ``result`` (21: win/loss/draw),
    ``steps``, ``violations``, ``reward`` (the env's own), and for pursuit ``lower_bound``
    (:func:`ld_envs.pursuit.steps_lower_bound` of the start).
    """
    env_kwargs = dict(env_kwargs or {})
    game = game_of(env_id)
    seeds = list(seeds)
    records: list[dict[str, Any]] = []
    for lo in range(0, len(seeds), batch):
        chunk = seeds[lo : lo + batch]
        envs = [gym.make(env_id, **env_kwargs) for _ in chunk]
        obs = []
        recs: list[dict[str, Any]] = []
        for env, s in zip(envs, chunk, strict=True):
            o, _ = env.reset(seed=int(s))
            obs.append(o)
            rec: dict[str, Any] = {"seed": int(s), "steps": 0, "violations": 0, "reward": 0.0}
            if game == "pursuit":
                base = env.unwrapped
                rec["lower_bound"] = steps_lower_bound(base.pursuers, base.evader_cell)
            recs.append(rec)
        if hasattr(policy, "reset"):
            policy.reset(seed=int(chunk[0]))
        live = list(range(len(chunk)))
        while live:
            actions = policy.act_batch([obs[i] for i in live])
            still = []
            for i, a in zip(live, actions, strict=True):
                o, r, term, trunc, info = envs[i].step(a)
                obs[i] = o
                recs[i]["reward"] += float(r)
                recs[i]["steps"] = int(info.get("steps", recs[i]["steps"] + 1))
                recs[i]["violations"] = int(info.get("violations", 0))
                if term or trunc:
                    if game == "pursuit":
                        recs[i]["outcome"] = info["outcome"]
                    else:
                        rw = recs[i]["reward"]
                        recs[i]["result"] = "win" if rw > 0 else "loss" if rw < 0 else "draw"
                else:
                    still.append(i)
            live = still
        for env in envs:
            env.close()
        records.extend(recs)
    return records


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Rates and means of :func:`evaluate` records (pursuit or 21)."""
    n = len(records)
    if n == 0:
        return {"episodes": 0}
    out: dict[str, float] = {
        "episodes": n,
        "mean_reward": float(np.mean([r["reward"] for r in records])),
    }
    if "outcome" in records[0]:
        wins = [r for r in records if r["outcome"] == "success"]
        out["success"] = len(wins) / n
        out["failure_without_violation"] = (
            sum(r["outcome"] == "failure_without_violation" for r in records) / n
        )
        out["failure_with_violation"] = (
            sum(r["outcome"] == "failure_with_violation" for r in records) / n
        )
        out["mean_steps_success"] = float(np.mean([r["steps"] for r in wins])) if wins else math.nan
        out["mean_lower_bound_success"] = (
            float(np.mean([r["lower_bound"] for r in wins])) if wins else math.nan
        )
        out["mean_violations"] = float(np.mean([r["violations"] for r in records]))
        out["episodes_with_violation"] = sum(r["violations"] > 0 for r in records) / n
    else:
        for k in ("win", "loss", "draw"):
            out[k] = sum(r["result"] == k for r in records) / n
    return out
