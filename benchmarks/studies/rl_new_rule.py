"""A new rule for an RL agent: the paper's section 4.3 argument, measured.

The pursuit model trained on ``Pursuit-v0`` (no restricted area) meets
``PursuitRestricted-v0``:

1. **Zero-shot**, on the sweep's benchmark starts (episode ``i`` resets with
   ``benchmarks.sweep.episode_seed(seed, i)``, as ``ld-gym bench`` does), two ways:

   * *rule-blind*: the model sees exactly what it was trained on (no ``"restricted"``
     entry, the legal-move mask computed without the area), while the env enforces the
     area and counts every move into it as a violation: how an agent that was never told
     the rule behaves;
   * *coordinates only*: the area's coordinates reach the features (all zero in
     training), its cells stay in the mask;
   * *env mask*: the env's own mask, which already excludes the area, and the area's
     coordinates in the features: the rule handed to the agent through its action mask,
     so no violation can come from the area, only a loss of success or of steps from a
     state it never saw.

2. **Fine-tuning** the same model on ``PursuitRestricted-v0`` with MaskablePPO, in one of
   two modes: ``env_mask`` (the env's mask excludes the area) or ``penalty`` (the area's
   coordinates are in the features but its cells stay in the mask, so the agent learns
   the rule from the violation penalty), evaluating on fixed starts every ``--eval-freq``
   env steps until its success rate reaches the model's own success on ``Pursuit-v0`` (or
   the budget ends): the env steps and wall time the new rule costs RL. Then the
   fine-tuned model on the benchmark starts of both envs (did it forget the open board?).

3. Beside it, what Logic Distillation needs for the same change: one new function
   (a filter that drops the cells of the area) added to the function base, validated in
   the sandbox, no retraining, no env step. Its measured figures (success, steps) come
   from the LD sweep; this report leaves a placeholder for them.

    python -m benchmarks.studies.rl_new_rule zero-shot
    python -m benchmarks.studies.rl_new_rule finetune --mode env_mask     # the two can run at once
    python -m benchmarks.studies.rl_new_rule finetune --mode penalty
    python -m benchmarks.studies.rl_new_rule report --original-eval RUN/eval.csv

Each step writes a JSON under ``--out`` (default ``runs/rl_new_rule``; the committed results:
``--out benchmarks/results/rl``): ``new_rule_zero_shot.json``,
``new_rule_finetune_<mode>.json`` with the run in ``new_rule_finetune_<mode>/``;
``report`` merges them into ``new_rule.json`` and ``new_rule.md``.
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
from ld_agents.rl.policy import area_blind
from ld_envs.pursuit import DEFAULT_SIZE

logger = logging.getLogger(__name__)

#: default output folder, under the current directory
OUT = Path("runs") / "rl_new_rule"
#: what the LD row says until the LD sweep fills it in
LD_PLACEHOLDER = "(LD figure: from the LD sweep on PursuitRestricted-v0, to be filled in)"


class RuleBlind(Policy):
    """Run a pursuit policy with the restricted area left out of its mask.

    ``keep_area=False`` (the default) also drops ``obs["restricted"]``: the model sees
    exactly what it was trained on without the area. ``keep_area=True`` shows the area's
    coordinates (they reach the features) but still leaves its cells in the mask. The env
    enforces the area either way and counts every move into it as a violation.
    """

    def __init__(self, inner: Any, size: int = DEFAULT_SIZE, keep_area: bool = False) -> None:
        super().__init__()
        self.inner = inner
        self.size = size
        self.keep_area = keep_area
        self.name = f"{getattr(inner, 'name', 'policy')} (area not masked)"

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        if hasattr(self.inner, "reset"):
            self.inner.reset(seed=seed)

    def act(self, obs: dict[str, np.ndarray]) -> Any:
        return self.inner.act(area_blind(obs, self.size, self.keep_area))

    def act_batch(self, observations: Sequence[dict[str, np.ndarray]]) -> list[Any]:
        return self.inner.act_batch(
            [area_blind(o, self.size, self.keep_area) for o in observations]
        )


def bench_seeds(seed: int, episodes: int) -> list[int]:
    """The env seeds of episodes 0..episodes-1 of an ``ld-gym bench`` sweep seeded ``seed``."""
    from ld_agents.seeding import episode_seed

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


MODES = {
    "env_mask": "the env's mask (the area's cells masked, its coordinates in the features)",
    "penalty": "the area's coordinates in the features, its cells NOT masked: learnt from "
    "violations",
}


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def zero_shot(args: argparse.Namespace) -> dict[str, Any]:
    """Step 1: the open-board model, unchanged, on both envs (``new_rule_zero_shot.json``)."""
    from ld_agents.rl.policy import RLPolicy, default_model_path
    from ld_agents.rl.train import evaluate, summarize

    model_path = Path(args.model) if args.model else default_model_path("pursuit")
    seeds = bench_seeds(args.seed, args.episodes)
    model = RLPolicy("pursuit", model_path)
    size = model.size
    t0 = time.time()
    report = {
        "model": str(model_path),
        "episodes": len(seeds),
        "sweep_seed": args.seed,
        "open_board": summarize(evaluate(model, "Pursuit-v0", {}, seeds)),
        "rule_blind": summarize(
            evaluate(RuleBlind(model, size), "PursuitRestricted-v0", {}, seeds)
        ),
        "coordinates_only": summarize(
            evaluate(RuleBlind(model, size, keep_area=True), "PursuitRestricted-v0", {}, seeds)
        ),
        "env_mask": summarize(evaluate(model, "PursuitRestricted-v0", {}, seeds)),
    }
    report["wall_s"] = round(time.time() - t0, 1)
    _write(Path(args.out) / "new_rule_zero_shot.json", report)
    return report


def finetune(args: argparse.Namespace) -> dict[str, Any]:
    """Step 2: fine-tune on PursuitRestricted-v0 in one mode (``new_rule_finetune_<mode>.json``)."""
    from ld_agents.rl.policy import RLPolicy, default_model_path
    from ld_agents.rl.train import RLConfig, evaluate, summarize, train

    if args.mode not in MODES:
        raise SystemExit(f"--mode must be one of {', '.join(MODES)}, got {args.mode!r}")
    out = Path(args.out)
    model_path = Path(args.model) if args.model else default_model_path("pursuit")
    seeds = bench_seeds(args.seed, args.episodes)
    target = args.target
    if target is None:
        zs = out / "new_rule_zero_shot.json"
        if zs.is_file():
            target = json.loads(zs.read_text(encoding="utf-8"))["open_board"]["success"]
        else:
            model = RLPolicy("pursuit", model_path)
            target = summarize(evaluate(model, "Pursuit-v0", {}, seeds))["success"]
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
        mask_area=args.mode == "env_mask",
        progress_bar=not args.no_progress,
    )
    config = RLConfig.from_json(trained)
    logger.info("fine-tuning (%s) up to success %.3f", args.mode, target)
    run_dir = out / f"new_rule_finetune_{args.mode}"
    t0 = time.time()
    result = train(config, run_dir, model_name=f"rl_pursuit_restricted_{args.mode}")
    wall = time.time() - t0
    tuned = RLPolicy("pursuit", result.model_path)
    report = {
        "mode": args.mode,
        "mode_means": MODES[args.mode],
        "target_success": target,
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
        "restricted": summarize(evaluate(tuned, "PursuitRestricted-v0", {}, seeds)),
        "open_board": summarize(evaluate(tuned, "Pursuit-v0", {}, seeds)),
    }
    _write(out / f"new_rule_finetune_{args.mode}.json", report)
    return report


def report(args: argparse.Namespace) -> dict[str, Any]:
    """Step 3: merge the parts into ``new_rule.json`` and ``new_rule.md``."""
    from ld_agents.rl.policy import default_model_path

    out = Path(args.out)
    zs = json.loads((out / "new_rule_zero_shot.json").read_text(encoding="utf-8"))
    tunes = {}
    for path in sorted(out.glob("new_rule_finetune_*.json")):  # every run kept in the folder
        tunes[path.stem.removeprefix("new_rule_finetune_")] = json.loads(
            path.read_text(encoding="utf-8")
        )
    model_path = Path(zs["model"]) if zs.get("model") else default_model_path("pursuit")
    meta = json.loads(model_path.with_suffix(".json").read_text(encoding="utf-8"))
    target = zs["open_board"]["success"]
    original_rows = _read_eval_csv(Path(args.original_eval)) if args.original_eval else []
    from ld_agents.files import git_commit

    merged: dict[str, Any] = {
        "zero_shot": zs,
        "fine_tune": tunes,
        "target_success": target,
        "original_training_to_target": first_reaching(original_rows, target),
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
            "avg_steps": None,
        },
        "versions": meta.get("versions"),
        "git_commit": git_commit(),
    }
    _write(out / "new_rule.json", merged)
    text = render(merged)
    notes = out / "new_rule_notes.md"  # a hand-written reading of the figures, when there is one
    if notes.is_file():
        text += "\n" + notes.read_text(encoding="utf-8")
    (out / "new_rule.md").write_text(text, encoding="utf-8")
    return merged


def render(r: dict[str, Any]) -> str:
    """The Markdown report of :func:`report`'s dict."""
    zs = r["zero_shot"]
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
        f"Model: `{zs['model']}` (MaskablePPO trained on Pursuit-v0, no area). "
        f"{zs['episodes']} benchmark starts (the starts of `ld-gym bench` seed "
        f"{zs['sweep_seed']}), greedy evader. Commit `{r['git_commit']}`.",
        "",
        "## 1. Zero-shot: the open-board model meets the area",
        "",
        head,
        _row("RL on Pursuit-v0 (the env it was trained on)", zs["open_board"]),
        _row("RL on the area, rule-blind (its trained view: no area at all)", zs["rule_blind"]),
        _row("RL on the area, coordinates shown, cells not masked", zs["coordinates_only"]),
        _row("RL on the area, env mask (the area's cells masked)", zs["env_mask"]),
        "",
        "*Rule-blind*: the model sees what it was trained on; every move into the area is a",
        "violation. *Coordinates shown*: the area's corners reach its features (all zero in",
        "training) but its cells stay legal in its mask: the rule given as data, not as a",
        "constraint. *Env mask*: the env's legal-move mask already excludes the area, so the",
        "rule reaches the agent as a constraint someone coded into the environment; no",
        "violation can come from the area, only from two pursuers naming one cell.",
        "",
        f"## 2. Fine-tuning on the area to the same success ({100 * r['target_success']:.1f}%)",
        "",
        "| what | env steps | wall time | budget | reached? |",
        "|---|---|---|---|---|",
    ]
    for mode, ft in r["fine_tune"].items():
        reached = "yes" if ft["reached"] else f"no ({ft['stop_reason']})"
        lines.append(
            f"| RL fine-tuning `{mode}`: {ft['mode_means']}; stop at the target on "
            f"{ft['eval_episodes']} evaluation starts | {ft['env_steps']:,} | "
            f"{ft['wall_s']:.0f} s | {ft['budget_steps']:,} steps or {ft['max_wall_s']:.0f} s | "
            f"{reached} |"
        )
    if orig is not None:
        lines.append(
            f"| RL original training on Pursuit-v0 up to the same success (its own curve) | "
            f"{int(orig['timesteps']):,} | {orig['wall_s']:.0f} s | | yes |"
        )
    if total.get("env_steps"):
        lines.append(
            f"| RL original training, the whole shipped run | {int(total['env_steps']):,} | "
            f"{float(total['wall_s']):.0f} s | | |"
        )
    lines += [
        "| LD: one new function (an area filter) added to the base, validated in the sandbox, "
        f"no retraining | 0 | {LD_PLACEHOLDER} | | |",
        "",
    ]
    if r["fine_tune"]:
        ft0 = next(iter(r["fine_tune"].values()))
        lines += [
            f"Success is measured every {ft0['eval_freq']:,} env steps on fixed restricted "
            "starts (evaluation seeds, not the benchmark starts); the first evaluation at or "
            "above the target stops the run, so steps are known to that granularity. "
            "Wall times are "
            "on a shared 2-core CPU (one process per run, 8 envs in a DummyVecEnv, torch on one "
            "thread), evaluations included.",
            "",
            "## 3. After fine-tuning, on the benchmark starts",
            "",
            head,
        ]
        for mode, ft in r["fine_tune"].items():
            lines.append(_row(f"RL fine-tuned `{mode}`, on PursuitRestricted-v0", ft["restricted"]))
            lines.append(_row(f"RL fine-tuned `{mode}`, back on Pursuit-v0", ft["open_board"]))
    lines += [
        f"| LD on PursuitRestricted-v0 | {LD_PLACEHOLDER} | | | | | | |",
        "",
        "The paper (Table 2) reports 100% success and 14.65 steps for GLM4-9B-LD with the area",
        "(the paper's figure, not ours).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.studies.rl_new_rule", description=__doc__
    )
    parser.add_argument(
        "step", choices=["zero-shot", "finetune", "report"], help="which step to run (in order)"
    )
    parser.add_argument("--mode", default="env_mask", help=f"finetune: {', '.join(MODES)}")
    parser.add_argument("--model", help="pursuit model (default: the shipped one)")
    parser.add_argument("--original-eval", help="report: eval.csv of the model's own training")
    parser.add_argument("--episodes", type=int, default=200, help="benchmark starts per env")
    parser.add_argument("--seed", type=int, default=0, help="sweep seed of the benchmark starts")
    parser.add_argument("--target", type=float, help="success to reach (default: open-board's)")
    parser.add_argument(
        "--budget-steps", type=int, default=2_000_000, help="finetune: env steps at most"
    )
    parser.add_argument(
        "--max-wall-s", type=float, default=1800.0, help="finetune: seconds at most"
    )
    parser.add_argument(
        "--eval-freq", type=int, default=50_000, help="finetune: env steps between evaluations"
    )
    parser.add_argument(
        "--eval-episodes", type=int, default=100, help="finetune: starts per evaluation"
    )
    parser.add_argument("--train-seed", type=int, default=1, help="finetune: training seed")
    parser.add_argument(
        "--out",
        default=str(OUT),
        help=f"output folder (default {OUT}; the committed results: benchmarks/results/rl)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    step = {"zero-shot": zero_shot, "finetune": finetune, "report": report}[args.step]
    result = step(args)
    logger.info("%s done: %s", args.step, {k: v for k, v in result.items() if k != "curve"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
