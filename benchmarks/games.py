"""What a sweep needs to know about each game, and how it builds one episode's pieces.

:func:`game_hooks` gives a game family's :class:`GameHooks` (the env kwarg naming the other
side, its built-in names, the per-episode record fields). :func:`build_policy`,
:func:`build_env` and :func:`build_opponent` turn a sweep's policy spec and env kwargs into
the objects an episode is played with, the same way for the sweep, the figures and the
studies.

:func:`check_sweep_inputs` checks everything a sweep will build before its first episode
and before it writes anything: every keyword of every policy and of the other side
(:func:`ld_agents.base.check_policy_kwargs`), the env keywords (unknown ones named with the
closest, then the env built once), model specs (form, scheme, the backend's options and
their values, local paths; :func:`check_model_spec`), adapter folders, function-base
extension files and rule specs. A typo fails in a second, not after a sweep, and never
leaves a folder behind.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.specs import PolicySpec
from ld_envs.errors import (
    InvalidArgument,
    LdGymError,
    UnknownName,
    did_you_mean,
    unknown_keyword,
    unknown_name,
)


@dataclass(frozen=True)
class GameHooks:
    """What a sweep needs to know about one game family."""

    #: env kwarg naming the other side (pursuit: ``evader``; 21 points: ``opponent``)
    opponent_key: str
    #: names the env builds itself
    builtin_opponents: tuple[str, ...]
    #: kwargs for ``ld_agents.make`` when a registered policy plays the other side
    opponent_make_kwargs: Mapping[str, Any]
    #: env kwargs that are also passed to every policy factory that accepts them
    shared_kwargs: tuple[str, ...]
    #: extra fields of an episode record, read from the unwrapped env after reset
    start_fields: Callable[[Any], dict[str, Any]]
    #: ``info`` keys copied into the record at the episode's end
    info_fields: tuple[str, ...] = ()

    @property
    def opponent_kwargs_key(self) -> str:
        return f"{self.opponent_key}_kwargs"

    def check_env_kwargs(self, env_id: str, env_kwargs: dict[str, Any]) -> None:
        from ld_agents.base import known_policies

        opponent = env_kwargs.get(self.opponent_key)
        if opponent is not None:
            if not isinstance(opponent, str):
                raise InvalidArgument(
                    f"env kwarg {self.opponent_key!r} must be a name in a sweep, got {opponent!r}"
                )
            known = sorted({*self.builtin_opponents, *known_policies(env_id)})
            if opponent not in known:
                raise unknown_name(self.opponent_key, opponent, known)
        extra = env_kwargs.get(self.opponent_kwargs_key)
        if extra is not None and not isinstance(extra, dict):
            raise InvalidArgument(f"env kwarg {self.opponent_kwargs_key!r} must be a JSON object")
        if extra and (opponent is None or opponent in self.builtin_opponents):
            raise InvalidArgument(
                f"{self.opponent_kwargs_key} is only used when {self.opponent_key} names a "
                f"registered policy (not a built-in: {', '.join(self.builtin_opponents)})"
            )


def _pursuit_start(env: Any) -> dict[str, Any]:
    from ld_envs.pursuit import steps_lower_bound

    return {
        "start": {
            "pursuers": [list(p) for p in env.pursuers],
            "evader": list(env.evader_cell),
            "restricted": None if env.area is None else list(env.area),
        },
        "steps_lower_bound": steps_lower_bound(env.pursuers, env.evader_cell),
    }


def _twentyone_start(env: Any) -> dict[str, Any]:
    from ld_envs.twenty_one import card_name

    return {
        "start": {
            "agent": [card_name(c) for c in env.agent_cards],
            "opponent": [card_name(c) for c in env.opponent_cards],
        }
    }


_HOOKS: dict[str, GameHooks] = {
    "pursuit": GameHooks(
        opponent_key="evader",
        builtin_opponents=("greedy", "random"),
        opponent_make_kwargs={"side": "evader"},
        shared_kwargs=("size",),
        start_fields=_pursuit_start,
        info_fields=("evader_violations",),
    ),
    "twentyone": GameHooks(
        opponent_key="opponent",
        builtin_opponents=("dealer", "random"),
        opponent_make_kwargs={},  # 21-point players see their own side's observation
        shared_kwargs=("opponent", "open_cards"),
        start_fields=_twentyone_start,
        info_fields=("agent_total", "opponent_total", "opponent_invalid"),
    ),
}


def game_hooks(env_id: str) -> GameHooks:
    from ld_agents.base import game_of

    return _HOOKS[game_of(env_id)]


def _accepts(name: str, env_id: str, key: str) -> bool:
    """Whether policy ``name``'s factory names the keyword ``key`` (a forwarding **kwargs
    counts: the factory checks what it forwards)."""
    from ld_agents.base import policy_keywords

    known = policy_keywords(name, env_id)
    return known is None or key in known


def policy_factory(name: str, env_id: str) -> Callable[..., Any]:
    """The factory registered for policy ``name`` in ``env_id``'s game."""
    from ld_agents.base import factory

    return factory(name, env_id)


def build_policy(spec: PolicySpec, env_id: str, env_kwargs: Mapping[str, Any]) -> Any:
    """``ld_agents.make`` with the spec's kwargs, plus env kwargs the policy must share.

    Pursuit policies get the board ``size``; 21-point policies the ``opponent`` (when a
    built-in name) and ``open_cards``, so that e.g. the exact optimum answers the opponent
    the env plays. The spec's own kwargs win.
    """
    from ld_agents.base import make

    hooks = game_hooks(env_id)
    factory = policy_factory(spec.name, env_id)
    kwargs: dict[str, Any] = {}
    for key in hooks.shared_kwargs:
        if key not in env_kwargs:
            continue
        value = env_kwargs[key]
        if key == hooks.opponent_key and value not in hooks.builtin_opponents:
            continue
        params = inspect.signature(factory).parameters
        if key in params:  # only factories that name the argument (not a catch-all **kwargs)
            kwargs[key] = value
    kwargs.update(spec.kwargs)
    policy = make(spec.name, env_id, **kwargs)
    if spec.label != spec.name and getattr(policy, "name", spec.name) == spec.name:
        with contextlib.suppress(AttributeError):
            policy.name = spec.label
    return policy


def build_env(
    env_id: str, env_kwargs: Mapping[str, Any], opponent: Any = None, **extra: Any
) -> Any:
    """``gym.make`` for a sweep: sweep-only kwargs removed, a prepared opponent put in."""
    import gymnasium as gym

    import ld_envs  # noqa: F401  (registers the ids)

    hooks = game_hooks(env_id)
    kwargs = {k: v for k, v in env_kwargs.items() if k != hooks.opponent_kwargs_key}
    if opponent is not None:
        kwargs[hooks.opponent_key] = opponent
    try:
        return gym.make(env_id, **kwargs, **extra)
    except TypeError as exc:
        raise InvalidArgument(
            f"{env_id} rejected the env kwargs {dict(env_kwargs)}: {exc}"
        ) from None


def build_opponent(env_id: str, env_kwargs: Mapping[str, Any]) -> Any:
    """The registered policy named as the other side, or ``None`` for a built-in."""
    from ld_agents.base import make

    name, kwargs = opponent_spec(env_id, env_kwargs)
    return None if name is None else make(name, env_id, **kwargs)


def opponent_spec(env_id: str, env_kwargs: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The registered policy named as the other side and its ``make`` keywords (the side,
    the shared env kwargs its factory names, then ``<other>_kwargs``); ``(None, {})`` for a
    built-in. A policy that cannot play that side (no ``side`` keyword) is refused."""
    hooks = game_hooks(env_id)
    name = env_kwargs.get(hooks.opponent_key)
    if name is None or name in hooks.builtin_opponents:
        return None, {}
    kwargs = dict(hooks.opponent_make_kwargs)
    for key in kwargs:
        if not _accepts(name, env_id, key):
            raise InvalidArgument(
                f"policy {name!r} cannot play the {hooks.opponent_key} of {env_id}: it takes "
                f"no {key!r}; name a policy that plays it (built-in: "
                f"{', '.join(hooks.builtin_opponents)}; or e.g. raw)"
            )
    for key in hooks.shared_kwargs:
        if key in env_kwargs and key != hooks.opponent_key and _accepts(name, env_id, key):
            kwargs[key] = env_kwargs[key]
    kwargs.update(env_kwargs.get(hooks.opponent_kwargs_key) or {})
    return name, kwargs


# ---------------------------------------------------------------------------- checks first

#: ``gym.make``'s own keywords refused as env kwargs: ``max_episode_steps`` would end
#: episodes without an outcome (neither a success nor a failure in the tables);
#: ``disable_env_checker`` is taken (it changes no episode)
_MAKE_KEYWORDS = frozenset({"max_episode_steps"})
_TAKEN_MAKE_KEYWORDS = frozenset({"disable_env_checker"})


def env_keywords(env_id: str) -> frozenset[str] | None:
    """The env's own keywords, as ``gym.make(env_id, ...)`` passes them to its constructor,
    and ``disable_env_checker`` (``None``: any, a ``**kwargs`` env)."""
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    import ld_envs  # noqa: F401  (registers the ids)

    spec = gym.spec(env_id)
    creator = spec.entry_point
    if isinstance(creator, str):
        creator = load_env_creator(creator)
    params = inspect.signature(creator).parameters.values()  # type: ignore[arg-type]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return frozenset(p.name for p in params) | _TAKEN_MAKE_KEYWORDS


def check_env_kwargs(env_id: str, env_kwargs: Mapping[str, Any]) -> None:
    """Refuse env kwargs the env does not take (naming the closest), or that its own checks
    refuse: the env is built once, with a built-in other side in place of a policy."""
    hooks = game_hooks(env_id)
    wrapper = sorted(_MAKE_KEYWORDS & set(env_kwargs))
    if wrapper:
        raise InvalidArgument(
            f"env kwargs go to the {env_id} constructor; {', '.join(map(repr, wrapper))} is "
            "gym.make's TimeLimit keyword, refused in a sweep (a truncated episode has no "
            "outcome to count); set the env's own limit instead (Pursuit: max_steps)"
        )
    hooks.check_env_kwargs(env_id, dict(env_kwargs))
    known = env_keywords(env_id)
    if known is not None:
        known = known | {hooks.opponent_kwargs_key}
        for key in env_kwargs:
            if key not in known:
                raise unknown_keyword(env_id, key, sorted(known))
    kwargs = dict(env_kwargs)
    if kwargs.get(hooks.opponent_key) not in (None, *hooks.builtin_opponents):
        del kwargs[hooks.opponent_key]  # a policy: checked by check_policy_spec
    shared_env(env_id, kwargs)  # kept: a serial sweep's sequential chunks play on it


#: the env :func:`shared_env` built last, by (env id, env kwargs)
_SHARED: dict[str, Any] = {}


def shared_env(env_id: str, env_kwargs: Mapping[str, Any]) -> Any:
    """This process's env for ``env_kwargs`` with a built-in other side, built on first use
    and reused while the kwargs stay the same (the previous one is closed when they change).

    Whoever uses it starts each episode with ``reset(seed=...)``, which starts afresh (as the
    episodes of a chunk already rely on); ``gym.make`` costs as much as a fast episode.
    """
    key = json.dumps([env_id, dict(env_kwargs)], sort_keys=True)
    if key not in _SHARED:
        drop_shared_env()
        _SHARED[key] = build_env(env_id, env_kwargs)
    return _SHARED[key]


def drop_shared_env() -> None:
    """Close and forget the shared env (after an episode stopped midway)."""
    while _SHARED:
        _SHARED.popitem()[1].close()


def check_model_spec(spec: object, what: str = "model spec") -> None:
    """Refuse a model spec that cannot load, without loading it: its form, its scheme (the
    closest one named), then the scheme's own check (:func:`ld_agents.llm.base.check_spec`:
    options, values, local paths, adapter folders).

    ``what`` names the spec in messages (e.g. ``policy 'raw': model``)."""
    from ld_agents.llm.base import BACKENDS, check_spec, parse_spec

    if not isinstance(spec, str):
        raise InvalidArgument(
            f"{what} must be a model spec string such as 'hf:embedded', got {spec!r}"
        )
    if ":" not in spec:
        raise InvalidArgument(
            f"{what} {spec!r} is not of the form SCHEME:TARGET; schemes: "
            f"{', '.join(BACKENDS.names())} (e.g. 'hf:embedded', 'hf:/path/to/folder', "
            f"'openai:http://HOST/v1?model=NAME')"
        )
    if what == "model spec":  # parse_spec's messages name the spec as that
        scheme = parse_spec(spec)[0]
    else:
        scheme = _prefixed(what, lambda: parse_spec(spec))[0]
    if scheme not in BACKENDS:
        known = BACKENDS.names()
        hint = did_you_mean(scheme, known)
        raise UnknownName(
            f"unknown model backend scheme {scheme!r} in {what} {spec!r}{hint} known: "
            f"{', '.join(known)} (e.g. 'hf:embedded')"
        )
    _prefixed(f"{what} {spec!r}", lambda: check_spec(spec))  # the scheme's own check


def _prefixed(what: str, check: Callable[[], Any]) -> Any:
    """Run the library's own check of a value, naming what was checked in its message (the
    error keeps its type)."""
    try:
        return check()
    except LdGymError as exc:
        try:
            named = type(exc)(f"{what}: {exc}")
        except TypeError:  # an error type with other arguments: as it is
            raise exc from None
        raise named from None


def check_adapter_folder(adapter: str | Path, what: str) -> None:
    """Refuse an adapter path that is not a peft adapter folder."""
    path = Path(adapter).expanduser()
    if not (path / "adapter_config.json").is_file():
        problem = "holds no adapter_config.json" if path.is_dir() else "does not exist"
        raise InvalidArgument(
            f"{what}: adapter folder {adapter} {problem}; pass a folder written by "
            f"`ld-gym train-kd` / `ld-gym train-ld` (its adapter/ folder), or leave it out "
            f"for the shipped one"
        )


#: policies whose ``model`` is the base model their adapter is merged into: a local target
#: (``embedded``, a folder, a ``.gguf`` file; ``hf:`` optional), not a spec with options
#: (``ld_agents.kd.policy._kd_backend``, ``ld_agents.ld.policy._make_ld``)
BASE_MODEL_POLICIES = ("kd", "ld")
#: policies that need a ``model`` (no default model: ``ld_agents.raw._teacher_model``)
MODEL_REQUIRED = ("teacher",)


def check_policy_spec(spec: PolicySpec, env_id: str) -> None:
    """Refuse a policy that would fail when built, loading nothing: unknown keywords, a
    model spec (form, scheme, backend options, local paths) or an adapter folder that
    cannot load, function-base extension files that do not exist or do not extend the
    game's base, and rule specs the game does not know."""
    from ld_agents.base import check_policy_kwargs

    check_policy_kwargs(spec.name, env_id, spec.kwargs)
    what = f"policy {spec.label!r}"
    model = spec.kwargs.get("model")
    if model is None:
        if spec.name in MODEL_REQUIRED:
            raise InvalidArgument(
                f"{what} needs a model spec (a larger model than the student's), e.g. "
                f"--model 'openai:URL?model=NAME', 'vllm:/path' or 'hf:/path'"
            )
    elif spec.name in BASE_MODEL_POLICIES:
        _check_base_model(model, f"{what}: model")
    else:
        check_model_spec(model, f"{what}: model")
    adapter = spec.kwargs.get("adapter")
    if isinstance(adapter, str) and adapter not in ("default", "none"):
        check_adapter_folder(adapter, what)
    dtype = spec.kwargs.get("dtype")
    if dtype is not None and spec.name in BASE_MODEL_POLICIES:
        from ld_agents.llm.hf import _DTYPES

        if dtype not in _DTYPES:
            raise InvalidArgument(
                f"{what}: dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}"
            )
    _check_function_files(spec, env_id, what)
    if spec.kwargs.get("rules") is not None:
        from ld_agents.ld.chain import rule_text_of
        from ld_envs.pursuit import DEFAULT_SIZE

        size = spec.kwargs.get("size", DEFAULT_SIZE)
        _prefixed(what, lambda: rule_text_of(spec.kwargs["rules"], size))


def _check_base_model(model: object, what: str) -> None:
    """The base model of an adapter policy (``kd``, ``ld``): a local target, no options."""
    if not isinstance(model, str):
        raise InvalidArgument(f"{what} must be a string such as 'embedded', got {model!r}")
    from ld_agents.llm.models import check_local_target, local_target

    target = local_target(model)
    if target is None:
        raise InvalidArgument(
            f"{what} {model!r} is not a base model for its adapter: give 'embedded' "
            f"(or 'hf:embedded'), a Hugging Face folder or a .gguf file, without options "
            f"(a spec with options such as ?dtype= is for raw and teacher only)"
        )
    _prefixed(f"{what} {model!r}", lambda: check_local_target(target, "hf"))


def _check_function_files(spec: PolicySpec, env_id: str, what: str) -> None:
    """``extensions`` (a list of function-base extension files) and ``emergency`` (a file, or
    a bool): each file exists and extends the game's base (the base is built, nothing
    loaded)."""
    extensions = spec.kwargs.get("extensions")
    emergency = spec.kwargs.get("emergency")
    if extensions is None and not isinstance(emergency, str):
        return
    if extensions is not None and (
        not isinstance(extensions, list) or not all(isinstance(e, str) for e in extensions)
    ):
        raise InvalidArgument(
            f"{what}: extensions must be a list of extension file paths, got {extensions!r}"
        )
    if emergency is not None and not isinstance(emergency, (bool, str)):
        raise InvalidArgument(
            f"{what}: emergency must be true, false or an extension file path, got {emergency!r}"
        )
    files = [("extensions", e) for e in extensions or []]
    if isinstance(emergency, str):
        files.append(("emergency", emergency))
    for key, path in files:
        found = Path(path).expanduser()
        if not found.is_file():
            problem = "is a folder" if found.is_dir() else "does not exist"
            raise InvalidArgument(
                f"{what}: {key} file {path} {problem}; give a function-base extension JSON "
                f"file (e.g. one written by `ld-gym emergency`)"
            )
    from ld_agents.ld.policy import ld_base

    flag = True if emergency is None else emergency
    _prefixed(what, lambda: ld_base(env_id, flag, list(extensions or [])))


def check_sweep_inputs(
    env_id: str, env_kwargs: Mapping[str, Any], policies: Sequence[PolicySpec]
) -> None:
    """Everything a sweep will build, checked before its first episode (see the module
    docstring); raises the first problem found."""
    check_env_kwargs(env_id, env_kwargs)
    for spec in policies:
        check_policy_spec(spec, env_id)
    name, kwargs = opponent_spec(env_id, env_kwargs)
    if name is not None:
        label = f"{game_hooks(env_id).opponent_key} {name}"
        check_policy_spec(PolicySpec(name, kwargs, label.replace(",", " ")), env_id)
        if game_hooks(env_id) is _HOOKS["twentyone"]:
            from ld_envs.twenty_one import check_opponent_seat

            check_opponent_seat(policy_factory(name, env_id), name)
