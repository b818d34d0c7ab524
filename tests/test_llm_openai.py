"""OpenAI-compatible backend against small real HTTP servers started here (standard library).

These need no model and no vLLM: retries, backoff, timeouts, concurrency, key handling and
the parsing of echoed log-probs. The tests against vLLM's real server are in
``test_llm_vllm.py`` (marker ``vllm``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ld_agents.errors import BackendError
from ld_agents.llm import GenerationRequest, make_backend
from ld_agents.llm.openai_backend import OpenAIBackend, continuation_logprob
from ld_envs.errors import InvalidArgument

#: what a handler returns: (status, JSON body or text, extra headers)
Reply = tuple[int, Any, dict[str, str]]
Handler = Callable[[str, dict[str, Any], dict[str, str]], Reply]

SECRET = "sk-test-very-secret-0123456789"


class _Server:
    """A threaded HTTP server that answers every POST/GET with ``handler``; records calls."""

    def __init__(self, handler: Handler) -> None:
        self.calls: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        lock = threading.Lock()
        outer = self

        class _H(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(size) or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                with lock:
                    outer.calls.append((self.path, body, headers))
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    status, payload, extra = handler(self.path, body, headers)
                finally:
                    with lock:
                        outer.in_flight -= 1
                data = payload if isinstance(payload, str) else json.dumps(payload)
                raw = data.encode()
                try:
                    self.send_response(status)
                    ctype = "text/plain" if isinstance(payload, str) else "application/json"
                    self.send_header("content-type", ctype)
                    self.send_header("content-length", str(len(raw)))
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            do_POST = _serve
            do_GET = _serve

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], _Server]]:
    """Start a local server with a given handler; stopped after the test."""
    servers: list[_Server] = []

    def start(handler: Handler) -> _Server:
        servers.append(_Server(handler))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _completion(text: str) -> dict[str, Any]:
    return {
        "choices": [{"index": 0, "text": text}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
    }


def _backend(url: str, **options: Any) -> OpenAIBackend:
    options.setdefault("model", "m")
    options.setdefault("backoff", 0.01)
    backend = OpenAIBackend(url, **options)
    return backend


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_retries_429_then_succeeds(serve: Callable[[Handler], _Server]) -> None:
    """Two 429 answers are retried and the third answer is returned."""
    count = {"n": 0}

    def handler(path: str, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        count["n"] += 1
        if count["n"] <= 2:
            return 429, {"error": "slow down"}, {}
        return 200, _completion(" done"), {}

    server = serve(handler)
    out = _backend(server.url).generate_until([GenerationRequest("Say", max_new_tokens=4)])
    assert out == [" done"]
    assert len(server.calls) == 3


def test_backoff_doubles(
    serve: Callable[[Handler], _Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Waits between retries double from ``backoff`` (plus at most 10% jitter)."""
    waits: list[float] = []
    monkeypatch.setattr("ld_agents.llm.openai_backend.time.sleep", waits.append)
    server = serve(lambda p, b, h: (503, {"error": "busy"}, {}))
    with pytest.raises(BackendError):
        _backend(server.url, retries=3, backoff=0.5).generate_until([GenerationRequest("x")])
    assert len(waits) == 3
    for got, want in zip(waits, [0.5, 1.0, 2.0], strict=True):
        assert want <= got <= want * 1.1


def test_retry_after_header_is_honoured(
    serve: Callable[[Handler], _Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 429 with ``Retry-After: 3`` waits 3 s, not the shorter exponential wait."""
    waits: list[float] = []
    monkeypatch.setattr("ld_agents.llm.openai_backend.time.sleep", waits.append)
    answers = iter([(429, {}, {"Retry-After": "3"}), (200, _completion("ok"), {})])
    server = serve(lambda p, b, h: next(answers))
    assert _backend(server.url).generate_until([GenerationRequest("x")]) == ["ok"]
    assert waits == [3.0]


def test_gives_up_with_url_and_last_status(serve: Callable[[Handler], _Server]) -> None:
    """After the retries, the error names the URL, the attempts and the last status."""
    server = serve(lambda p, b, h: (503, {"error": "overloaded"}, {}))
    with pytest.raises(BackendError) as info:
        _backend(server.url, retries=2).generate_until([GenerationRequest("x")])
    msg = str(info.value)
    assert f"{server.url}/completions" in msg
    assert "503" in msg and "3 attempts" in msg
    assert len(server.calls) == 3


def test_connection_refused_names_url() -> None:
    """An endpoint with nothing listening fails after the retries with the URL."""
    url = f"http://127.0.0.1:{_free_port()}/v1"
    with pytest.raises(BackendError) as info:
        _backend(url, retries=1).generate_until([GenerationRequest("x")])
    msg = str(info.value)
    assert url in msg and "connection error" in msg and "no HTTP status" in msg


def test_timeout_is_retried_then_fails(serve: Callable[[Handler], _Server]) -> None:
    """A server slower than ``timeout`` fails with a timeout error after the retries."""

    def slow(path: str, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        time.sleep(0.5)
        return 200, _completion("late"), {}

    server = serve(slow)
    with pytest.raises(BackendError, match="timeout"):
        _backend(server.url, timeout=0.1, retries=1).generate_until([GenerationRequest("x")])
    assert len(server.calls) == 2


def test_client_error_is_not_retried(serve: Callable[[Handler], _Server]) -> None:
    """A 400 fails at once and carries the server's message."""
    server = serve(lambda p, b, h: (400, {"error": {"message": "prompt too long"}}, {}))
    with pytest.raises(BackendError, match="prompt too long"):
        _backend(server.url).generate_until([GenerationRequest("x")])
    assert len(server.calls) == 1


def test_concurrency_limit_and_order(serve: Callable[[Handler], _Server]) -> None:
    """At most ``concurrency`` requests are in flight, and results keep request order."""

    def handler(path: str, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        i = int(body["prompt"])
        time.sleep(0.02 * (8 - i))  # later requests answer first
        return 200, _completion(f"<{i}>"), {}

    server = serve(handler)
    backend = _backend(server.url, concurrency=3)
    out = backend.generate_until([GenerationRequest(str(i)) for i in range(8)])
    assert out == [f"<{i}>" for i in range(8)]
    assert 2 <= server.max_in_flight <= 3
    assert backend.stats.forward_passes == 8
    assert backend.stats.tokens_generated == 16


def test_stop_strings_sent_and_enforced(serve: Callable[[Handler], _Server]) -> None:
    """Stop strings go to the server, and text past one is cut even if the server kept it."""
    server = serve(lambda p, b, h: (200, _completion("(3, 4)\nNext"), {}))
    out = _backend(server.url).generate_until(
        [GenerationRequest("Move:", until=("\n",), max_new_tokens=9)]
    )
    assert out == ["(3, 4)"]
    body = server.calls[0][1]
    assert body["stop"] == ["\n"] and body["max_tokens"] == 9 and body["temperature"] == 0.0


def test_chat_api_sends_messages(serve: Callable[[Handler], _Server]) -> None:
    """``api=chat`` posts one user message to /chat/completions and reads its content."""
    reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}]}
    server = serve(lambda p, b, h: (200, reply, {}))
    out = _backend(server.url, api="chat").generate_until([GenerationRequest("Hello")])
    assert out == ["hi"]
    path, body, _ = server.calls[0]
    assert path == "/v1/chat/completions"
    assert body["messages"] == [{"role": "user", "content": "Hello"}]


def test_chat_without_template_explains(serve: Callable[[Handler], _Server]) -> None:
    """A 400 about a missing chat template says to use completions or --chat-template."""
    msg = "default chat template is no longer allowed; the tokenizer defines none"
    server = serve(lambda p, b, h: (400, {"error": {"message": msg}}, {}))
    with pytest.raises(BackendError, match="--chat-template"):
        _backend(server.url, api="chat").generate_until([GenerationRequest("Hello")])


def _echo_handler(path: str, body: dict[str, Any], headers: dict[str, str]) -> Reply:
    """Echo the prompt split into words, with a leading <bos> that shifts the offsets."""
    assert body["echo"] is True and body["logprobs"] == 1 and body["max_tokens"] == 0
    prompt = body["prompt"]
    words = prompt.replace(" ", "\0 ").split("\0")
    tokens = ["<bos>", *[w for w in words if w]]
    offsets, pos = [], 0
    for t in tokens:
        offsets.append(pos)
        pos += len(t)
    logprobs = [None] + [-float(i) for i in range(1, len(tokens))]
    choice = {
        "text": prompt,
        "logprobs": {"tokens": tokens, "token_logprobs": logprobs, "text_offset": offsets},
    }
    return 200, {"choices": [choice], "usage": {"prompt_tokens": len(tokens)}}, {}


def test_scoring_sums_continuation_tokens(serve: Callable[[Handler], _Server]) -> None:
    """Scoring sums the log-probs of the continuation's tokens, found from the offsets."""
    server = serve(_echo_handler)
    backend = _backend(server.url)
    # tokens: <bos> "The"(-1) " cat"(-2) " sat"(-3) " down"(-4)
    out = backend.loglikelihood([("The cat", " sat down"), ("The cat sat", " down")])
    assert out == [-7.0, -4.0]


def test_scoring_without_logprobs_is_a_clear_error(
    serve: Callable[[Handler], _Server],
) -> None:
    """A server that echoes no log-probs fails with an error saying it cannot score."""
    server = serve(lambda p, b, h: (200, {"choices": [{"text": b["prompt"]}]}, {}))
    with pytest.raises(BackendError, match="cannot score"):
        _backend(server.url).loglikelihood([("a", " b")])


def test_scoring_rejected_by_server_is_a_clear_error(
    serve: Callable[[Handler], _Server],
) -> None:
    """A server that refuses echo (400) fails with an error saying it cannot score."""
    server = serve(lambda p, b, h: (400, {"error": "echo is not supported"}, {}))
    with pytest.raises(BackendError, match="cannot score"):
        _backend(server.url).loglikelihood([("a", " b")])


def _generated_not_echoed(path: str, body: dict[str, Any], headers: dict[str, str]) -> Reply:
    """A server that ignores echo and max_tokens=0: one generated token, not the prompt."""
    lp = {"tokens": [" x"], "token_logprobs": [-1.0], "text_offset": [0]}
    return 200, {"choices": [{"text": " x", "logprobs": lp}]}, {}


@pytest.mark.parametrize(
    "logprobs",
    [
        [],
        {"tokens": ["a", " b"], "token_logprobs": ["x", "y"], "text_offset": [0, 1]},
        {"tokens": ["a", " b"], "token_logprobs": [None, -1.0], "text_offset": [None, 1]},
        {"tokens": ["a", " b"], "token_logprobs": [None, float("nan")], "text_offset": [0, 1]},
        {"tokens": ["a", " b"], "token_logprobs": [None, 5.0], "text_offset": [0, 1]},
    ],
)
def test_scoring_refuses_log_probs_that_are_not_the_prompts(
    serve: Callable[[Handler], _Server], logprobs: Any
) -> None:
    """A server that generated instead of echoing, or answered malformed log-probs
    (strings, null offsets, NaN, positive), is a BackendError, never a number."""

    def malformed(path: str, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        return 200, {"choices": [{"text": "a b", "logprobs": logprobs}]}, {}

    for handler in (_generated_not_echoed, malformed):
        with pytest.raises(BackendError):
            _backend(serve(handler).url).loglikelihood([("a", " b")])


def test_straddling_token_counts_for_continuation() -> None:
    """A token across the context/continuation boundary is counted with the continuation."""
    tokens, lps, offs = ["<bos>", "ab", "cd"], [None, -1.0, -2.0], [0, 5, 7]
    assert continuation_logprob(tokens, lps, offs, 1) == (-2.0, 1)
    assert continuation_logprob(tokens, lps, offs, 3) == (-3.0, 2)


def test_key_sent_but_never_logged_or_shown(
    serve: Callable[[Handler], _Server],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The key goes in the Authorization header only: not in logs, errors or repr."""
    monkeypatch.setenv("LD_TEST_KEY", SECRET)

    def handler(path: str, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        # a hostile server that echoes the header back in its error body
        return 503, {"error": f"bad auth {headers.get('authorization')}"}, {}

    server = serve(handler)
    caplog.set_level(logging.DEBUG)
    backend = make_backend(f"openai:{server.url}?model=m&key_env=LD_TEST_KEY&retries=1&backoff=0")
    with pytest.raises(BackendError) as info:
        backend.generate_until([GenerationRequest("x")])
    assert server.calls[0][2]["authorization"] == f"Bearer {SECRET}"
    assert "bad auth" in str(info.value)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)
    assert SECRET not in caplog.text
    assert SECRET not in repr(backend)
    backend.close()


def test_missing_key_env_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """``key_env`` naming an unset variable fails naming the variable."""
    monkeypatch.delenv("LD_TEST_NO_KEY", raising=False)
    with pytest.raises(InvalidArgument, match="LD_TEST_NO_KEY"):
        make_backend("openai:http://127.0.0.1:9/v1?model=m&key_env=LD_TEST_NO_KEY")


def test_no_key_sends_no_authorization(
    serve: Callable[[Handler], _Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a key in the environment no Authorization header is sent."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server = serve(lambda p, b, h: (200, _completion("ok"), {}))
    _backend(server.url).generate_until([GenerationRequest("x")])
    assert "authorization" not in server.calls[0][2]


def test_model_from_models_listing(serve: Callable[[Handler], _Server]) -> None:
    """Without ``model=``, the first model of GET /models is used."""

    def handler(path: str, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        if path == "/v1/models":
            return 200, {"data": [{"id": "served-model"}]}, {}
        return 200, _completion(body["model"]), {}

    server = serve(handler)
    out = make_backend(f"openai:{server.url}").generate_until([GenerationRequest("x")])
    assert out == ["served-model"]


def test_spec_options_and_extra_query(serve: Callable[[Handler], _Server]) -> None:
    """Spec options configure the backend; unknown ones stay on the URL's query."""
    server = serve(lambda p, b, h: (200, _completion("ok"), {}))
    backend = make_backend(f"openai:{server.url}?model=m&concurrency=2&api-version=7")
    assert isinstance(backend, OpenAIBackend) and backend.concurrency == 2
    backend.generate_until([GenerationRequest("x")])
    assert server.calls[0][0] == "/v1/completions?api-version=7"


@pytest.mark.parametrize(
    "query",
    ["api=stream", "concurrency=0", "timeout=abc", "retries=-1", "timeout=nan", "backoff=inf"],
)
def test_bad_options_are_clear_errors(query: str) -> None:
    """Out-of-range options fail with InvalidArgument naming the option."""
    with pytest.raises(InvalidArgument, match=query.split("=")[0]):
        make_backend(f"openai:http://127.0.0.1:9/v1?model=m&{query}")


def test_url_without_scheme_is_a_clear_error() -> None:
    """A target that is not an http(s) URL fails with an example of a good spec."""
    with pytest.raises(InvalidArgument, match="http://"):
        make_backend("openai:localhost:8000?model=m")


@pytest.mark.parametrize(
    "kwargs,words",
    [({"until": ", 8"}, "tuple of stop strings"), ({"max_new_tokens": 1.5}, "must be an int")],
)
def test_generation_requests_refuse_a_stop_string_or_a_fractional_length(
    kwargs: dict[str, Any], words: str
) -> None:
    """until=", 8" would stop at each character (every backend returned ''), and 1.5
    tokens is no length: both refused when the request is made."""
    with pytest.raises(InvalidArgument, match=words):
        GenerationRequest("x", **kwargs)
