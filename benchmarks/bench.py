"""One sweep as ``ld-gym bench`` asks for it: the spec from its choices, and its report.

:func:`bench_spec` turns the command's choices (policy names, one model spec for every
policy and the other side that takes one, env and policy kwargs) into a
:class:`~benchmarks.sweep.SweepSpec`; :func:`bench_report` builds the tables of the folder
once the sweep has run (:func:`benchmarks.sweep.run_sweep`). :func:`check_bench` runs
the command's cross-checks before the first episode: the output folder
(:func:`benchmarks.outputs.check_sweep_folder`) and the ``--paired`` labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.games import game_hooks
from benchmarks.outputs import check_sweep_folder
from benchmarks.paper import DEFAULT_FAMILY, paper_column
from benchmarks.results_io import manifest_problem, read_manifest
from benchmarks.specs import PolicySpec
from benchmarks.sweep import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_EPISODES,
    SweepResult,
    SweepSpec,
    check_resume,
)
from benchmarks.tables import Report, build_report
from ld_envs.errors import InvalidArgument, unknown_name


def takes(name: str, env_id: str, key: str) -> bool:
    """Whether policy ``name``'s factory names the argument ``key`` (not just **kwargs)."""
    from ld_agents.base import policy_keywords

    try:
        known = policy_keywords(name, env_id)
    except KeyError:  # an unknown name: the sweep's spec names it with the known ones
        return False
    return known is not None and key in known


def content_pin(name: str, env_id: str, kwargs: Mapping[str, Any]) -> dict[str, str]:
    """The fingerprint of the file a policy loads, as the keyword that pins it: ``rl``'s
    model (``model_sha256``), ``kd``'s and ``ld``'s adapter (``adapter_sha256``). Recorded
    in the sweep's manifest, it stops a resume after the file changed (retrained, or
    replaced with ``--ship --overwrite``) from mixing two models' episodes. Nothing where
    the keyword is given, the policy takes none, or the file is missing (the policy then
    says so)."""
    from ld_agents.base import game_of

    key = {"rl": "model_sha256", "kd": "adapter_sha256", "ld": "adapter_sha256"}.get(name)
    if key is None or key in kwargs or not takes(name, env_id, key):
        return {}
    if name == "rl":
        from ld_agents.llm.embedded import file_sha256
        from ld_agents.rl.policy import default_model_path

        path = Path(kwargs.get("path") or default_model_path(game_of(env_id)))
        return {key: file_sha256(path)} if path.is_file() else {}
    from ld_agents.kd import default_adapter as kd_adapter
    from ld_agents.ld.policy import default_adapter as ld_adapter
    from ld_agents.lora import adapter_sha256

    given = kwargs.get("adapter", "default")
    if name == "kd" and given is None:  # kd's None is its shipped adapter
        given = "default"
    if given in (None, "", "none"):  # no adapter loaded: nothing to pin
        return {}
    if given == "default":
        given = kd_adapter(env_id) if name == "kd" else ld_adapter(game_of(env_id))
    folder = Path(str(given))
    return {key: adapter_sha256(folder)} if (folder / "adapter_config.json").is_file() else {}


def bench_spec(
    env_id: str,
    policies: Sequence[str],
    out: Path,
    *,
    episodes: int = DEFAULT_EPISODES,
    seed: int = 0,
    model: str | None = None,
    opponent: str | None = None,
    opponent_model: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    policy_kwargs: Mapping[str, Any] | None = None,
    chunk_size: int | None = None,
) -> SweepSpec:
    """The sweep of ``policies`` on ``env_id`` into the folder ``out``.

    ``model`` goes to every policy (and the other side) whose factory takes one;
    ``opponent_model`` (default ``model``) to an LLM other side only. ``chunk_size``
    defaults to the folder's own when it holds a sweep, else to the library default.
    """
    hooks = game_hooks(env_id)  # unknown env id fails here, listing the known
    env_kwargs = dict(env_kwargs or {})
    if opponent is not None:
        env_kwargs[hooks.opponent_key] = opponent
    other_model = opponent_model or model
    other = env_kwargs.get(hooks.opponent_key)
    if (
        other_model
        and other not in (None, *hooks.builtin_opponents)
        and takes(other, env_id, "model")
    ):
        extra = dict(env_kwargs.get(hooks.opponent_kwargs_key) or {})
        extra.setdefault("model", other_model)
        env_kwargs[hooks.opponent_kwargs_key] = extra
    elif opponent_model:  # the other side takes no model: it would be dropped unseen
        raise InvalidArgument(
            f"--evader-model needs --evader naming an LLM policy, not {other or 'the default'}"
        )
    old = read_manifest(out) if out.is_dir() and manifest_problem(out) is None else None
    recorded = {p["label"]: p.get("kwargs") or {} for p in (old or {}).get("policies", [])}
    specs = []
    for name in policies:
        kwargs = dict(policy_kwargs or {})
        if model and takes(name, env_id, "model"):
            kwargs.setdefault("model", model)
        pin = content_pin(name, env_id, kwargs)
        if name in recorded and not set(pin) & set(recorded[name]):
            pin = {}  # a row recorded before bench pinned files resumes as it was recorded
        kwargs.update(pin)
        specs.append(PolicySpec(name, kwargs))
    if chunk_size is None:
        chunk_size = int(old.get("chunk_size", DEFAULT_CHUNK_SIZE)) if old else DEFAULT_CHUNK_SIZE
    return SweepSpec(
        env_id=env_id,
        policies=specs,
        episodes=episodes,
        seed=seed,
        env_kwargs=env_kwargs,
        chunk_size=chunk_size,
    )


def check_bench(
    spec: SweepSpec,
    out: Path | str | None,
    paired: Sequence[tuple[str, str]] = (),
    *,
    overwrite: bool = False,
) -> Path:
    """The cross-checks of ``ld-gym bench``, before its first episode: the output folder may
    be written (a sweep of its own, or no file a sweep writes; ``overwrite`` allows
    replacing them), the folder's sweep can take this one (:func:`check_resume`), and each
    ``--paired`` label is a policy of this run or of the folder's sweep. Returns the
    folder."""
    folder = check_sweep_folder(out, overwrite=overwrite)
    check_resume(spec, folder, overwrite)
    old = read_manifest(folder) if folder.is_dir() and manifest_problem(folder) is None else None
    known = {p.label for p in spec.policies} | {p["label"] for p in (old or {}).get("policies", [])}
    for a, b in paired:
        for name in (a, b):
            if name not in known:
                raise unknown_name(f"--paired {a},{b}: policy label", name, known)
    return folder


def paper_family(name: str, env_id: str) -> str | None:
    """The paper's model family for the paper column (``none``: no column); an unknown
    family fails here, before a sweep runs."""
    if name.lower() == "none":
        return None
    paper_column(env_id, name)
    return name


def bench_report(
    result: SweepResult,
    paired: Sequence[tuple[str, str]] = (),
    family: str | None = DEFAULT_FAMILY,
) -> Report:
    """The tables of a sweep's folder, with paired comparisons of policies in it."""
    known = set(result.policies)
    for a, b in paired:
        for name in (a, b):
            if name not in known:
                raise InvalidArgument(
                    f"--paired {a},{b}: no policy {name!r} in {result.folder}; "
                    f"known: {', '.join(sorted(known))}"
                )
    return build_report(result.manifest, result.records, paired=paired, family=family)
