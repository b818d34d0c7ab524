"""A new rule for an RL agent: the paper's section 4.3 argument, measured.

The pursuit model trained on ``Pursuit-v0`` (no restricted area) meets
``PursuitRestricted-v0``:

1. **Zero-shot**, on the sweep's benchmark starts (episode ``i`` resets with
   ``benchmarks.sweep.episode_seed(seed, i)``, as ``ld-gym bench`` does), two ways:

   * *rule-blind*: the model sees exactly what it was trained on (no ``"restricted"``
     entry, the legal-move mask computed without the area), while the env enforces the
     area and counts every move into it as a violation: how an agent that was never told
     the rule behaves;
   * *env mask*: the env's own mask, which already excludes the area, and the area's
     coordinates in the features (all zero in training): the rule handed to the agent
     through its action mask, so no violation can come from the area, only a loss of
     success or of steps from a state it never saw.

2. **Fine-tuning** the same model on ``PursuitRestricted-v0`` (the env mask) with
   MaskablePPO, evaluating on fixed starts every ``--eval-freq`` env steps, until its
   success rate reaches the model's own success on ``Pursuit-v0`` (or the budget ends):
   the env steps and wall time that the new rule costs RL. Then the fine-tuned model on
   the benchmark starts of both envs (did it forget the open board?).

3. Beside it, what Logic Distillation needs for the same change: one new function
   (a filter that drops the cells of the area) added to the function base, validated in
   the sandbox, no retraining, no env step. Its measured figures (success, steps) come
   from the LD sweep; this report leaves a placeholder for them.

    python -m benchmarks.rl_new_rule --out benchmarks/results/rl

Writes ``new_rule.json`` and ``new_rule.md`` (and the fine-tuning run under
``<out>/new_rule_finetune/``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ld_agents.base import Policy
from ld_envs.pursuit import DEFAULT_SIZE, pursuer_action_mask

logger = logging.getLogger(__name__)

#: what the LD row says until the LD sweep fills it in
LD_PLACEHOLDER = "(LD figure: from the LD sweep on PursuitRestricted-v0, to be filled in)"


class RuleBlind(Policy):
    """Run a pursuit policy as if there were no restricted area.

    Drops ``obs["restricted"]`` and replaces the mask by the one computed without the
    area (``pursuer_action_mask(..., area=None)``): the observations the model was
    trained on. The env still enforces the area and counts violations.
    """

    def __init__(self, inner: Any, size: int = DEFAULT_SIZE) -> None:
        super().__init__()
        self.inner = inner
        self.size = size
        self.name = f"{getattr(inner, 'name', 'policy')} (rule-blind)"

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        if hasattr(self.inner, "reset"):
            self.inner.reset(seed=seed)

    def _blind(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {k: v for k, v in obs.items() if k != "restricted"}
        pursuers = [(int(p[0]), int(p[1])) for p in obs["pursuers"]]
        out["action_mask"] = pursuer_action_mask(pursuers, self.size, None)
        return out

    def act(self, obs: dict[str, np.ndarray]) -> Any:
        return self.inner.act(self._blind(obs))

    def act_batch(self, observations: Sequence[dict[str, np.ndarray]]) -> list[Any]:
        return self.inner.act_batch([self._blind(o) for o in observations])


def bench_seeds(seed: int, episodes: int) -> list[int]:
    """The env seeds of episodes 0..episodes-1 of an ``ld-gym bench`` sweep seeded ``seed``."""
    from benchmarks.sweep import episode_seed

    return [episode_seed(seed, i) for i in range(episodes)]


def _row(label: str, summary: dict[str, float]) -> str:
    def pct(key: str) -> str:
        return f"{100 * summary[key]:.1f}%"

    steps = summary.get("mean_steps_success", math.nan)
    bound = summary.get("mean_lower_bound_success", math.nan)
    return (
        f"| {label} | {pct('success')} | {pct('failure_without_violation')} | "
        f"{pct('failure_with_violation')} | "
        f"{'—' if math.isnan(steps) else f'{steps:.2f}'} | "
        f"{'—' if math.isnan(bound) else f'{bound:.2f}'} | "
        f"{summary['mean_violations']:.2f} | {pct('episodes_with_violation')} |"
    )


def first_reaching(rows: Sequence[dict[str, Any]], target: float) -> dict[str, Any] | None:
    """The first evaluation row whose success is >= target (``None`` if none)."""
    for r in rows:
        if float(r.get("success", 0.0)) >= target:
            return r
    return None


def _read_eval_csv(path: Path) -> list[dict[str, Any]]:
    import csv

    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as fh:
        return [
            {k: float(v) for k, v in r.items() if v not in ("", None)} for r in csv.DictReader(fh)
        ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the experiment and write ``new_rule.json`` / ``new_rule.md`` under ``args.out``."""
    from ld_agents.rl import RLPolicy, default_model_path
    from ld_agents.rl_train import RLConfig, evaluate, summarize, train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_path = Path(args.model) if args.model else default_model_path("pursuit")
    seeds = bench_seeds(args.seed, args.episodes)
    model = RLPolicy("pursuit", model_path)
    size = model.size

    logger.info("1. the open-board model on both envs (%d starts)", len(seeds))
    open_board = summarize(evaluate(model, "Pursuit-v0", {}, seeds))
    blind = summarize(evaluate(RuleBlind(model, size), "PursuitRestricted-v0", {}, seeds))
    masked = summarize(evaluate(model, "PursuitRestricted-v0", {}, seeds))
    target = open_board["success"] if args.target is None else args.target

    logger.info("2. fine-tuning on PursuitRestricted-v0 up to success %.3f", target)
    meta = json.loads(model_path.with_suffix(".json").read_text(encoding="utf-8"))
    trained = dict(meta["config"])
    for derived in ("game", "size"):
        trained.pop(derived, None)
    trained.update(
        env_id="PursuitRestricted-v0",
        init_model=str(model_path),
        total_timesteps=args.budget_steps,
        max_wall_s=args.max_wall_s,
        eval_freq=args.eval_freq,
        eval_episodes=args.eval_episodes,
        stop_success=target,
        seed=args.train_seed,
        progress_bar=not args.no_progress,
    )
    config = RLConfig.from_json(trained)
    t0 = time.time()
    result = train(config, out / "new_rule_finetune", model_name="rl_pursuit_restricted")
    wall = time.time() - t0
    tuned = RLPolicy("pursuit", result.model_path)
    tuned_restricted = summarize(evaluate(tuned, "PursuitRestricted-v0", {}, seeds))
    tuned_open = summarize(evaluate(tuned, "Pursuit-v0", {}, seeds))

    # the cost of training the original model to the same success, from its own curve
    original_rows = _read_eval_csv(Path(args.original_eval)) if args.original_eval else []
    original_hit = first_reaching(original_rows, target)

    report: dict[str, Any] = {
        "model": str(model_path),
        "episodes": len(seeds),
        "sweep_seed": args.seed,
        "target_success": target,
        "open_board": open_board,
        "zero_shot_rule_blind": blind,
        "zero_shot_env_mask": masked,
        "fine_tune": {
            "reached": result.reached_at is not None,
            "env_steps": result.reached_at["timesteps"] if result.reached_at else result.timesteps,
            "wall_s": result.reached_at["wall_s"] if result.reached_at else round(result.wall_s, 1),
            "total_wall_s": round(wall, 1),
            "stop_reason": result.stop_reason,
            "budget_steps": args.budget_steps,
            "max_wall_s": args.max_wall_s,
            "eval_episodes": args.eval_episodes,
            "eval_freq": args.eval_freq,
            "curve": result.evals,
            "model": str(result.model_path),
        },
        "fine_tuned_restricted": tuned_restricted,
        "fine_tuned_open_board": tuned_open,
        "original_training_to_target": original_hit,
        "original_training_total": {
            "env_steps": meta.get("timesteps"),
            "wall_s": meta.get("wall_s"),
        },
        "ld": {
            "new_functions": 1,
            "env_steps": 0,
            "gradient_steps": 0,
            "note": "one generated filter function, validated in the sandbox; no retraining",
            "success": None,
            "steps": None,
        },
        "versions": meta.get("versions"),
    }
    from benchmarks.results_io import git_commit

    report["git_commit"] = git_commit()
    (out / "new_rule.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "new_rule.md").write_text(render(report), encoding="utf-8")
    return report


def render(r: dict[str, Any]) -> str:
    """The Markdown report of :func:`run`'s dict."""
    ft = r["fine_tune"]
    orig = r["original_training_to_target"]
    total = r["original_training_total"]
    head = (
        "| policy | success | failure w/o violation | failure with violation | "
        "avg steps (success) | steps lower bound (same episodes) | violations / episode | "
        "episodes with a violation |\n|---|---|---|---|---|---|---|---|"
    )
    lines = [
        "# A new rule (the restricted area): what it costs RL, what it costs LD",
        "",
        f"Model: `{r['model']}` (MaskablePPO trained on Pursuit-v0, no area). "
        f"{r['episodes']} benchmark starts (`ld-gym bench` seed {r['sweep_seed']}), greedy "
        f"evader. Commit `{r['git_commit']}`.",
        "",
        "## 1. Zero-shot",
        "",
        head,
        _row("RL on Pursuit-v0 (the env it was trained on)", r["open_board"]),
        _row("RL on PursuitRestricted-v0, rule-blind (trained view)", r["zero_shot_rule_blind"]),
        _row("RL on PursuitRestricted-v0, env mask (area masked)", r["zero_shot_env_mask"]),
        "",
        "*Rule-blind*: the model sees what it was trained on (no area, the mask without it);",
        "every move into the area is a violation. *Env mask*: the env's mask already forbids",
        "the area, so the rule reaches the agent through its mask; what is left is a state",
        "distribution it never trained on.",
        "",
        "## 2. Fine-tuning to the same success",
        "",
        f"Target: success >= {100 * r['target_success']:.1f}% (the model's own success on",
        f"Pursuit-v0), measured every {ft['eval_freq']:,} env steps on {ft['eval_episodes']}",
        "fixed restricted starts (not the benchmark starts).",
        "",
        "| | env steps | wall time |",
        "|---|---|---|",
    ]
    reached = "reached" if ft["reached"] else "NOT reached within the budget"
    lines.append(
        f"| RL fine-tuning on PursuitRestricted-v0 ({reached}) | {ft['env_steps']:,} | "
        f"{ft['wall_s']:.0f} s |"
    )
    if orig is not None:
        lines.append(
            f"| RL original training on Pursuit-v0 up to the same success (from its curve) | "
            f"{int(orig['timesteps']):,} | {orig['wall_s']:.0f} s |"
        )
    if total.get("env_steps"):
        lines.append(
            f"| RL original training, whole run | {int(total['env_steps']):,} | "
            f"{float(total['wall_s']):.0f} s |"
        )
    lines += [
        "| LD: one new function (area filter), validated in the sandbox, no retraining | 0 | "
        "seconds (one generation + validation) |",
        "",
        f"Budget: {ft['budget_steps']:,} env steps or {ft['max_wall_s']:.0f} s wall, whichever "
        f"first; stop reason: {ft['stop_reason']}. Wall times are on a shared 2-core CPU "
        "(torch 1 thread, one process, 8 envs in a DummyVecEnv), evaluations included.",
        "",
        "## 3. After fine-tuning",
        "",
        head,
        _row("RL fine-tuned, on PursuitRestricted-v0", r["fine_tuned_restricted"]),
        _row("RL fine-tuned, back on Pursuit-v0", r["fine_tuned_open_board"]),
        f"| LD on PursuitRestricted-v0 | {LD_PLACEHOLDER} | | | | | | |",
        "",
        "The paper (Table 2, GLM4-9B-LD) reports 100% success and 14.65 steps for LD with the",
        "area (paper's figure, not ours).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rl_new_rule", description=__doc__)
    parser.add_argument("--model", help="pursuit model (default: the shipped one)")
    parser.add_argument("--original-eval", help="eval.csv of the model's own training run")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="sweep seed of the benchmark starts")
    parser.add_argument("--target", type=float, help="success to reach (default: open-board's)")
    parser.add_argument("--budget-steps", type=int, default=2_000_000)
    parser.add_argument("--max-wall-s", type=float, default=1800.0)
    parser.add_argument("--eval-freq", type=int, default=50_000)
    parser.add_argument("--eval-episodes", type=int, default=100)
    parser.add_argument("--train-seed", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/rl")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    report = run(args)
    logger.info("wrote %s", Path(args.out) / "new_rule.md")
    logger.info("fine-tune: %s", {k: v for k, v in report["fine_tune"].items() if k != "curve"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
