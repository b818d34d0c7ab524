"""OpenAI-compatible HTTP backend (``openai:URL?model=NAME&...``): hosted teachers, vLLM's server.

Spec options (query string of the spec, or keyword arguments of ``make_backend``)::

    model=NAME          model name sent with every request (default: the first of GET /models)
    api=completions     generation endpoint: ``completions`` (plain prompts) or ``chat``
                        (the prompt becomes one user message); scoring always uses completions
    key_env=VAR         environment variable holding the API key (default OPENAI_API_KEY;
                        no key -> no Authorization header, as local servers want)
    concurrency=8       requests in flight at once (batches are sent as concurrent requests)
    timeout=60          seconds per request (connect: at most 10)
    retries=4           retries after the first attempt on 429, 5xx and connection errors
    backoff=0.5         first wait in seconds; doubled each retry, capped by max_backoff=20;
                        a ``Retry-After`` header, when sent, is honoured (within the cap)

Any other option stays a query parameter of the URL (e.g. ``api-version=...``).

Scoring (``loglikelihood``) posts ``context + continuation`` to ``/completions`` with
``echo: true, logprobs: 1, max_tokens: 0`` and sums the log-probs of the tokens that end
after the context's last character (a token straddling the boundary counts for the
continuation). A server that returns no prompt log-probs gets a :class:`BackendError` that
says so. The API key is sent only as a header; it never appears in logs, errors or reprs.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ld_agents.errors import BackendError
from ld_agents.llm.base import (
    Backend,
    GenerationRequest,
    register_backend,
    register_spec_check,
)
from ld_agents.llm.models import check_choice
from ld_envs.errors import InvalidArgument

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: statuses worth another try: rate limits and server-side failures
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
APIS = ("completions", "chat")


def _as_int(name: str, value: object, low: int) -> int:
    try:
        out = int(str(value))
    except ValueError:
        raise InvalidArgument(f"option {name}={value!r} is not an integer") from None
    if out < low:
        raise InvalidArgument(f"option {name} must be >= {low}, got {out}")
    return out


def _as_float(name: str, value: object, low: float) -> float:
    try:
        out = float(str(value))
    except ValueError:
        raise InvalidArgument(f"option {name}={value!r} is not a number") from None
    if not math.isfinite(out):
        raise InvalidArgument(f"option {name} must be a finite number, got {value!r}")
    if out < low:
        raise InvalidArgument(f"option {name} must be >= {low}, got {out}")
    return out


def _redact_url(url: str) -> str:
    """The URL with the values of query parameters that look secret replaced by ***."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (k, "***" if any(s in k.lower() for s in ("key", "token", "secret")) else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def truncate_at_stop(text: str, until: Sequence[str]) -> str:
    """``text`` cut before the earliest occurrence of any stop string (servers may keep it)."""
    cut = len(text)
    for stop in until:
        if stop:
            i = text.find(stop)
            if 0 <= i < cut:
                cut = i
    return text[:cut]


def continuation_logprob(
    tokens: Sequence[str],
    token_logprobs: Sequence[float | None],
    text_offset: Sequence[int],
    continuation_chars: int,
) -> tuple[float, int]:
    """Sum of the log-probs of the tokens that end inside the last ``continuation_chars``.

    Offsets are taken back from the end of the echoed prompt, so a special token that the
    server prepends (``<bos>``, which shifts every offset) does not matter; a token that
    straddles the boundary counts for the continuation. Returns (sum, tokens summed).
    """
    if not tokens:
        return 0.0, 0
    ends = [off + len(tok) for off, tok in zip(text_offset, tokens, strict=True)]
    boundary = ends[-1] - continuation_chars
    total, count = 0.0, 0
    for tok_end, lp in zip(ends, token_logprobs, strict=True):
        if tok_end > boundary:
            if lp is None:
                raise BackendError("the server returned no log-prob for a continuation token")
            total += float(lp)
            count += 1
    return total, count


class _HttpError(Exception):
    """Internal: a final HTTP failure, turned into a BackendError with context."""

    def __init__(self, status: int | None, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class OpenAIBackend(Backend):
    """A model behind an OpenAI-compatible HTTP endpoint (completions and chat).

    Batches are sent as concurrent requests (at most ``concurrency`` in flight); results
    come back in request order. Transient failures (429, 5xx, connection errors, timeouts)
    are retried with exponential backoff; the last failure becomes a :class:`BackendError`
    naming the URL and the last status.
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api: str = "completions",
        key_env: str | None = None,
        concurrency: int = 8,
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        extra_query: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        import httpx

        if not base_url.startswith(("http://", "https://")):
            raise InvalidArgument(
                f"openai backend URL {base_url!r} must start with http:// or https:// "
                "(e.g. 'openai:http://127.0.0.1:8000/v1?model=NAME')"
            )
        if api not in APIS:
            raise InvalidArgument(f"option api={api!r} is not one of {', '.join(APIS)}")
        self.base_url = base_url.rstrip("/")
        self.api = api
        self.concurrency = _as_int("concurrency", concurrency, 1)
        self.timeout = _as_float("timeout", timeout, 0.001)
        self.retries = _as_int("retries", retries, 0)
        self.backoff = _as_float("backoff", backoff, 0.0)
        self.max_backoff = _as_float("max_backoff", max_backoff, 0.0)
        self._query = dict(extra_query or {})

        env_name = key_env or "OPENAI_API_KEY"
        key = os.environ.get(env_name)
        if key_env and not key:
            raise InvalidArgument(
                f"environment variable {key_env} (option key_env) is not set or empty; "
                "export the API key there, or drop key_env for a server without one"
            )
        self.key_env = env_name
        # the key lives only in the client's headers and in _secret (for redaction)
        self._secret = key or ""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
            limits=httpx.Limits(
                max_connections=self.concurrency, max_keepalive_connections=self.concurrency
            ),
        )
        self._lock = threading.Lock()
        self._model = model

    def __repr__(self) -> str:
        return (
            f"OpenAIBackend(url={_redact_url(self.base_url)!r}, model={self._model!r}, "
            f"api={self.api!r}, key_env={self.key_env!r})"
        )

    # -- plumbing -----------------------------------------------------------------------

    def _url(self, path: str) -> str:
        url = f"{self.base_url}/{path.lstrip('/')}"
        if self._query:
            url += ("&" if "?" in url else "?") + urlencode(self._query)
        return url

    def _scrub(self, text: str) -> str:
        """Remove the API key from text that may reach a user (server bodies echo headers)."""
        return text.replace(self._secret, "***") if self._secret else text

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        """One call with retries; returns the decoded JSON or raises BackendError."""
        import httpx

        url = self._url(path)
        shown = _redact_url(url)
        last = "no attempt"
        status: int | None = None
        for attempt in range(self.retries + 1):
            retry_after: float | None = None
            try:
                response = self._client.request(method, url, json=payload)
            except httpx.TimeoutException as exc:
                status, last = None, f"timeout after {self.timeout:g} s ({type(exc).__name__})"
            except httpx.TransportError as exc:
                status, last = None, f"connection error ({type(exc).__name__})"
            else:
                status = response.status_code
                if status < 400:
                    try:
                        return response.json()
                    except ValueError:
                        raise BackendError(
                            f"{method} {shown} answered {status} with a body that is not JSON"
                        ) from None
                body = self._scrub(response.text.strip())[:500]
                if status not in RETRY_STATUSES:
                    raise _HttpError(status, body)
                last = f"HTTP {status}: {body}" if body else f"HTTP {status}"
                retry_after = _parse_retry_after(response.headers.get("retry-after"))
            if attempt == self.retries:
                break
            wait = min(self.max_backoff, self.backoff * 2**attempt)
            wait *= 1.0 + 0.1 * random.random()
            if retry_after is not None:
                wait = min(self.max_backoff, max(wait, retry_after))
            logger.warning(
                "%s %s failed (%s); retry %d/%d in %.2f s",
                method,
                shown,
                last[:120],
                attempt + 1,
                self.retries,
                wait,
            )
            time.sleep(wait)
        shown_status = status if status is not None else "no HTTP status"
        raise BackendError(
            f"{method} {shown} failed after {self.retries + 1} attempts; "
            f"last status: {shown_status} ({last}). Check that the server is up and the URL "
            "is right (the spec's URL ends with the API root, e.g. http://127.0.0.1:8000/v1)"
        )

    def _post(self, path: str, payload: dict[str, Any], purpose: str) -> dict[str, Any]:
        try:
            out: dict[str, Any] = self._request("POST", path, payload)
        except _HttpError as exc:
            raise BackendError(self._explain(path, exc, purpose)) from None
        return out

    def _explain(self, path: str, exc: _HttpError, purpose: str) -> str:
        url = _redact_url(self._url(path))
        msg = f"POST {url} ({purpose}) answered {exc.status}: {exc.detail or '(empty body)'}"
        low = exc.detail.lower()
        if path == "chat/completions" and exc.status == 400 and "template" in low:
            msg += (
                ". The model has no chat template (a base model): use api=completions, or start "
                "the server with --chat-template FILE"
            )
        elif purpose == "scoring" and exc.status in (400, 404, 422):
            msg += (
                ". This server cannot score: it needs /completions with echo=true, logprobs=1, "
                "max_tokens=0 (vLLM's server does; most hosted chat APIs do not). Use an hf: or "
                "vllm: backend for selection by scoring"
            )
        elif exc.status in (401, 403):
            msg += f". Check the API key in the environment variable {self.key_env}"
        elif exc.status == 404:
            msg += ". Check the URL (it should end with the API root, e.g. .../v1) and the model"
        return msg

    @property
    def model(self) -> str:
        """The model name sent with requests (asked from ``GET /models`` when not given)."""
        with self._lock:
            if self._model is None:
                try:
                    listing = self._request("GET", "models")
                except _HttpError as exc:
                    raise BackendError(
                        f"GET {_redact_url(self._url('models'))} answered {exc.status}: "
                        f"{exc.detail}; name the model in the spec (?model=NAME)"
                    ) from None
                data = listing.get("data") if isinstance(listing, dict) else None
                if not (
                    isinstance(data, list)
                    and data
                    and isinstance(data[0], dict)
                    and data[0].get("id")
                ):
                    raise BackendError(
                        f"{_redact_url(self._url('models'))} lists no model (no "
                        f"data[0].id in {str(listing)[:120]}); name one in the spec (?model=NAME)"
                    )
                self._model = str(data[0]["id"])
                logger.info("openai backend: using model %r", self._model)
            return self._model

    def _map(self, fn: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
        """``fn`` over ``items`` with at most ``concurrency`` in flight, results in order."""
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            futures = [pool.submit(fn, x) for x in items]
            try:
                return [f.result() for f in futures]
            finally:
                for f in futures:
                    f.cancel()

    def _count(self, usage: dict[str, Any] | None, calls: int = 1) -> None:
        with self._lock:
            self.stats.forward_passes += calls
            if usage:
                self.stats.tokens_processed += int(usage.get("prompt_tokens") or 0)
                self.stats.tokens_generated += int(usage.get("completion_tokens") or 0)

    # -- the protocol -------------------------------------------------------------------

    def generate_until(self, requests: Sequence[GenerationRequest]) -> list[str]:
        """Completions (greedy unless a request sets a temperature, then with its seed), cut at
        the first stop string, in order."""
        start = time.perf_counter()
        model = self.model
        out = self._map(lambda r: self._generate_one(model, r), list(requests))
        self.stats.seconds += time.perf_counter() - start
        return out

    def _generate_one(self, model: str, req: GenerationRequest) -> str:
        payload: dict[str, Any] = {
            "model": model,
            "max_tokens": req.max_new_tokens,
            "temperature": float(req.temperature),
            **({"seed": req.seed} if req.seed is not None else {}),
        }
        if req.until:
            payload["stop"] = list(req.until)
        if self.api == "chat":
            payload["messages"] = [{"role": "user", "content": req.context}]
            data = self._post("chat/completions", payload, "generation")
            message = _first_choice(data, self._url("chat/completions")).get("message") or {}
            if not isinstance(message, dict):
                raise BackendError(
                    f"{_redact_url(self._url('chat/completions'))} answered a message that is "
                    f"not an object: {str(message)[:120]}"
                )
            text = message.get("content") or ""
        else:
            payload["prompt"] = req.context
            data = self._post("completions", payload, "generation")
            text = _first_choice(data, self._url("completions")).get("text") or ""
        self._count(data.get("usage"))
        return truncate_at_stop(str(text), req.until)

    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[float]:
        """Summed log-prob of each continuation, from the server's echoed prompt log-probs."""
        start = time.perf_counter()
        model = self.model
        out = self._map(lambda r: self._score_one(model, r), list(requests))
        self.stats.seconds += time.perf_counter() - start
        return out

    def _score_one(self, model: str, request: tuple[str, str]) -> float:
        context, continuation = request
        if not continuation:
            return 0.0
        prompt = context + continuation
        payload = {
            "model": model,
            "prompt": prompt,
            "echo": True,
            "logprobs": 1,
            "max_tokens": 0,
            "temperature": 0.0,
        }
        data = self._post("completions", payload, "scoring")
        url = _redact_url(self._url("completions"))
        choice = _first_choice(data, url)
        try:
            total = _echo_score(choice, prompt, continuation, url)
        except (TypeError, ValueError, AttributeError) as exc:  # a malformed logprobs object
            raise BackendError(f"POST {url} returned malformed log-probs: {exc}") from None
        self._count(data.get("usage"))
        return total

    def close(self) -> None:
        """Close the HTTP connections (safe to call twice)."""
        self._client.close()


def _echo_score(choice: dict[str, Any], prompt: str, continuation: str, url: str) -> float:
    """The continuation's summed log-prob from a choice's echoed prompt log-probs, checked:
    the echo must be the prompt (its tokens' text ends with the continuation; a server that
    ignored ``echo`` and generated instead fails here) and each log-prob a number <= 0."""
    lp = choice.get("logprobs") or {}
    tokens, values, offsets = (lp.get(k) for k in ("tokens", "token_logprobs", "text_offset"))
    if not tokens or values is None or offsets is None or len(values) != len(tokens):
        raise BackendError(
            f"POST {url} returned no prompt log-probs for echo=true, logprobs=1: this server "
            "cannot score continuations. Use an hf: or vllm: backend for selection by "
            "scoring, or a server that supports echo with logprobs (vLLM's does)"
        )
    tokens, offsets = [str(t) for t in tokens], [int(o) for o in offsets]
    # a server that generated anyway: drop tokens past the echoed prompt's text
    text = str(choice.get("text") or "")
    extra = len(text) - len(prompt) if text.startswith(prompt) else 0
    ends = [o + len(t) for o, t in zip(offsets, tokens, strict=True)]
    keep = len(tokens)
    if extra > 0:
        limit = ends[-1] - extra
        keep = sum(1 for e in ends if e <= limit)
    if not "".join(tokens[:keep]).endswith(continuation):
        raise BackendError(
            f"POST {url}: the log-probs are not those of the prompt (its tokens do not end with "
            f"the continuation {continuation[:40]!r}): the server did not echo the prompt, so "
            "it cannot score"
        )
    for v in values[:keep]:
        if v is not None and not (math.isfinite(float(v)) and float(v) <= 1e-6):
            raise BackendError(f"POST {url} returned a log-prob that is not a number <= 0: {v!r}")
    total, count = continuation_logprob(
        tokens[:keep], values[:keep], offsets[:keep], len(continuation)
    )
    if count == 0:
        raise BackendError(f"POST {url}: no token of the continuation found in the echo")
    return total


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: ignored, the exponential backoff applies


def _first_choice(data: dict[str, Any], url: str) -> dict[str, Any]:
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise BackendError(f"{_redact_url(url)} answered without choices: {str(data)[:200]}")
    return choices[0]


_OWN_OPTIONS = (
    "model",
    "api",
    "key_env",
    "concurrency",
    "timeout",
    "retries",
    "backoff",
    "max_backoff",
)


@register_spec_check("openai")
def check_openai_spec(target: str, options: dict[str, Any]) -> None:
    """Refuse an ``openai:`` spec that cannot work, contacting nothing: a URL that is not
    http(s), a bad ``api`` or number, an API key variable (``key_env``) that is not set.
    Options it does not name stay query parameters of the URL."""
    if not target.startswith(("http://", "https://")):
        raise InvalidArgument(
            "the URL must start with http:// or https:// "
            "(e.g. 'openai:http://127.0.0.1:8000/v1?model=NAME')"
        )
    if "api" in options:
        check_choice("api", options["api"], APIS)
    for name, low in (("concurrency", 1), ("retries", 0)):
        if name in options:
            _as_int(name, options[name], low)
    for name, lowf in (("timeout", 0.001), ("backoff", 0.0), ("max_backoff", 0.0)):
        if name in options:
            _as_float(name, options[name], lowf)
    key_env = options.get("key_env")
    if key_env and not os.environ.get(str(key_env)):
        raise InvalidArgument(
            f"environment variable {key_env} (option key_env) is not set or empty; export "
            "the API key there, or drop key_env for a server without one"
        )


@register_backend("openai")
def _make_openai(target: str, **options: object) -> OpenAIBackend:
    """Factory for ``openai:URL?model=NAME&...`` (see the module docstring)."""
    own = {k: options.pop(k) for k in _OWN_OPTIONS if k in options}
    extra = {k: str(v) for k, v in options.items()}
    if extra:
        logger.info("openai backend: passing %s as URL query parameters", sorted(extra))
    model = own.get("model")
    return OpenAIBackend(
        target,
        model=str(model) if model else None,
        api=str(own.get("api", "completions")),
        key_env=str(own["key_env"]) if own.get("key_env") else None,
        concurrency=_as_int("concurrency", own.get("concurrency", 8), 1),
        timeout=_as_float("timeout", own.get("timeout", 60.0), 0.001),
        retries=_as_int("retries", own.get("retries", 4), 0),
        backoff=_as_float("backoff", own.get("backoff", 0.5), 0.0),
        max_backoff=_as_float("max_backoff", own.get("max_backoff", 20.0), 0.0),
        extra_query=extra,
    )
