"""The Hugging Face transformers backend (scheme ``hf``), CPU or GPU.

Spec strings::

    hf:embedded                         the embedded Gemma-3-270M (see ld_agents.llm.embedded)
    hf:/path/to/folder                  any local Hugging Face causal-LM folder
    hf:/path/to/model.gguf              a GGUF file (de-quantized once into the cache)
    hf:embedded?dtype=bfloat16&device=cpu&adapter=/path/to/lora&batch_size=32

Options: ``dtype`` (``float32`` default, ``bfloat16``, ``float16``, or ``auto``: bfloat16
on a CPU with bfloat16 instructions or a CUDA device with it, float32 elsewhere, see
:func:`ld_agents.llm.hardware.auto_dtype`), ``device`` (``auto`` default: CUDA when
available, else CPU), ``adapter`` (a peft LoRA folder, merged into the weights on load),
``batch_size`` (rows per forward, default 32), ``draft_tokens`` (guesses fed per greedy
decoding step, default 8; 0: none), ``answer_history`` (earlier greedy answers kept as
a draft source, default 16; 0: none), ``prefix_cache_tokens`` (budget of the key-value prefix
cache, default 16384 tokens), ``bf16_matmul`` (``auto`` default: on a CPU without bfloat16
instructions, and on one whose bfloat16 products measure more than 1.1x slower than float32
ones (:mod:`ld_agents.llm.product_speed`, measured once per machine), bfloat16 linear layers
multiply their widened inputs in float32 and round the result to bfloat16, the numbers a
bfloat16 CPU gives, at float32 speed; ``float32`` always; ``native`` never; see
:mod:`ld_agents.llm.hardware`), ``attention`` (``auto`` default: ``matmul``, bf16 products
with the scores rounded to bf16, for a bfloat16 model with native bf16 products on a CPU
with bfloat16 instructions, else ``kernel``, torch's SDPA kernel; see
:mod:`ld_agents.llm.cpu_attention`), ``head`` (``auto`` default: ``transposed``, the output
layer as ``(W @ rows.T).T``, for float32 products on a CPU with AVX2 and without AVX-512,
where it was measured up to 3x faster on a few rows, else ``linear``; see
:mod:`ld_agents.llm.float32_products`).

**Prompts are plain completions.** The embedded model is the *base* Gemma-3-270M, not an
instruction-tuned model, and its GGUF carries no chat template, so no template is applied:
the context string is fed as it is (after the tokenizer's BOS token) and the model continues
it. Write prompts as documents that the answer completes (``...\\nAnswer: (``).

**Exact scoring, fast.** ``loglikelihood`` returns the summed log-probability of each
continuation's tokens, where (as in lm-evaluation-harness) the continuation's tokens are
those of ``tokenize(context + continuation)`` beyond the longest common prefix with
``tokenize(context)``. Its default ``method="cached"`` is exact and takes these shortcuts:

* requests sharing a context are grouped: the context runs once, and its continuations run
  on its key-value cache as one token tree (each shared continuation prefix computed once,
  ``ld_agents.llm.tree_attention``), or as one batch with the cache repeated along it where
  the tree's scores are found to differ on this machine;
* the final layer (262k rows for Gemma) is applied only at the positions whose next token is
  scored, once per distinct token prefix (13 cells "(3, 8)", "(3, 9)"... share "(3, ");
* contexts' key-value states go into an LRU **prefix cache** keyed by token ids: a later
  context reuses the longest cached token prefix (e.g. the rules part shared by every
  decision of a game) and runs only its new tokens. :meth:`HFBackend.cache_prefix` pins a
  static prefix (rules, manual) so it is never evicted;
* single-token continuations (labelled choices: ``choice_logprobs(ctx, [" A", " B"])``)
  need one forward of the context and the next-token log-softmax read at the labels.

The other methods (``naive``: one full forward per request with every position's logits;
``keep``: one forward per request with ``logits_to_keep``; ``batch``: all requests in one
right-padded batch) exist as references for tests and ``benchmarks/studies/llm_speed.py``.

Generation (``generate_until``) is greedy (or sampled, per request), batched (``batch_size``
rows after the rows' shared token prefix, which comes from the prefix cache), stops at any
stop string (excluded from the result), at EOS, or after ``max_new_tokens``. Batches of
greedy requests are decoded with prompt-lookup drafts (``draft_tokens``, default 8, see
:mod:`ld_agents.llm.speculative`; the guesses are also looked up in the backend's latest
answers, ``answer_history``, default 16): the greedy text in fewer forwards, and (in exact
arithmetic) independent of the batch and of the answers before it. A batch with a sampled
request, ``draft_tokens=0``, a model that refuses custom 4D masks, or a prompt + answer past
:func:`~ld_agents.llm.speculative.draft_context` decodes token by token with rows
left-padded; there, past the model's sliding window (512 tokens for Gemma-3), padding shifts
which tokens a sliding layer sees, so batched output can differ slightly from unbatched.
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ld_agents.errors import BackendError
from ld_agents.llm.base import (
    Backend,
    GenerationRequest,
    register_backend,
    register_spec_check,
)
from ld_agents.llm.cpu_attention import ATTENTION_MODES, attention_mode, attention_products
from ld_agents.llm.float32_products import (
    HEAD_PRODUCTS,
    float32_matmuls,
    head_product_mode,
    head_weight,
    transposed_logits,
)
from ld_agents.llm.hardware import (
    BF16_MATMUL_MODES,
    auto_dtype,
    bf16_matmul_mode,
    cpu_info,
    describe_cpu,
    slow_bf16_warning,
)
from ld_agents.llm.models import (
    check_choice,
    check_local_target,
    check_options,
    offline,
    resolve_model,
)
from ld_agents.llm.prefix_cache import (
    PrefixState,
    PrefixStore,
    additive_mask,
    attention_kinds,
    cache_from,
    common_prefix,
    concat_rows,
)
from ld_agents.llm.speculative import (
    ANSWER_HISTORY,
    DEFAULT_DRAFT_TOKENS,
    SlotPositions,
    draft_context,
    full_cache,
    guesses_per_row,
    lookup_draft,
)
from ld_agents.llm.threads import configure_torch
from ld_agents.llm.tree_attention import plan_tree, tree_plan, use_tree_attention
from ld_envs.errors import InvalidArgument

logger = logging.getLogger(__name__)

_DTYPES = ("float32", "bfloat16", "float16", "auto")

_TOKENIZERS: dict[str, Any] = {}


def shared_tokenizer(folder: Path) -> Any:
    """The tokenizer of a model folder, loaded once per process: the embedded model's
    262k-token tokenizer takes about 3 s to load, and the raw, KD and LD policies of a sweep
    (base model, adapters on it) share one. Backends only read it."""
    from transformers import AutoTokenizer

    key = str(Path(folder).resolve())
    if key not in _TOKENIZERS:
        _TOKENIZERS[key] = AutoTokenizer.from_pretrained(key)
    return _TOKENIZERS[key]


_OPTIONS = (
    "dtype",
    "device",
    "adapter",
    "batch_size",
    "prefix_cache_tokens",
    "bf16_matmul",
    "draft_tokens",
    "answer_history",
    "attention",
    "head",
)
_METHODS = ("cached", "naive", "keep", "batch")
#: tokens a generation batch's first forward feeds at once: 20 KD prompts of ~400 new
#: tokens each took 7.3 s in one forward and 5.0 s in groups of 5 rows on a 2-core CPU
PREFILL_TOKENS = 2048


@dataclass
class _Request:
    """A tokenised scoring request: score ``ids[start:]`` given ``ids[:start]``."""

    ids: list[int]
    start: int


class HFBackend(Backend):
    """A causal LM through transformers: exact batched scoring and greedy generation.

    See the module docstring for the spec options, the plain-completion prompt convention and
    the fast scoring paths.
    """

    def __init__(
        self,
        target: str = "embedded",
        *,
        dtype: str = "float32",
        device: str = "auto",
        adapter: str | None = None,
        batch_size: int | str = 32,
        prefix_cache_tokens: int | str = 16384,
        bf16_matmul: str = "auto",
        draft_tokens: int | str = DEFAULT_DRAFT_TOKENS,
        answer_history: int | str = ANSWER_HISTORY,
        attention: str = "auto",
        head: str = "auto",
    ) -> None:
        super().__init__()
        offline()  # before transformers is imported
        import torch
        from transformers import AutoModelForCausalLM

        if dtype not in _DTYPES:
            raise InvalidArgument(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
        self.batch_size = _positive_int("batch_size", batch_size)
        cache_tokens = _positive_int("prefix_cache_tokens", prefix_cache_tokens)
        #: prompt-lookup guesses fed per row and greedy decoding step (0: one token a step)
        self.draft_tokens = _count_int("draft_tokens", draft_tokens)
        self._drafts_ok: bool | None = None  # None until drafted decoding first ran
        #: earlier greedy answers kept as a draft source (0: the row's own text only)
        self.answer_history = _count_int("answer_history", answer_history)
        self._answers: collections.deque[tuple[int, ...]] = collections.deque()
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise InvalidArgument(f"device {device!r} asked for, but CUDA is not available")
        if device != "cpu" and not device.startswith("cuda"):
            raise InvalidArgument(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
        #: why this dtype (``dtype=auto`` picks the fastest exact-enough one for the device)
        self.dtype_reason = "asked for"
        if dtype == "auto":
            dtype, self.dtype_reason = auto_dtype(device)
        #: torch threads of this process (ld_agents.llm.threads: physical cores, or a
        #: worker's share of them)
        self.threads = configure_torch()
        self.bf16_matmul = bf16_matmul_mode(bf16_matmul, dtype, device)
        #: how CPU attention multiplies (ld_agents.llm.cpu_attention): ``matmul`` (bf16
        #: products, scores rounded to bf16) or ``kernel`` (torch's SDPA kernel)
        self.attention = attention_mode(
            attention, dtype, device, self.bf16_matmul, cpu_info()["bf16_native"]
        )
        #: how the output layer multiplies: ``linear`` or ``transposed`` (``head`` option,
        #: ld_agents.llm.float32_products)
        self.head_product = head_product_mode(
            head, dtype, device, self.bf16_matmul, cpu_info().get("flags", ())
        )
        #: the matmul path chosen for this CPU: native bf16 (AMX / AVX-512-BF16), float32
        #: products rounded to bf16 (CPUs without bf16), or plain float32
        logger.info(
            "hf backend: dtype %s (%s), bf16 products %s, attention %s, head %s, "
            "%s torch threads on %s",
            dtype,
            self.dtype_reason,
            self.bf16_matmul,
            self.attention,
            self.head_product,
            self.threads,
            describe_cpu(cpu_info()),
        )
        slow = slow_bf16_warning(dtype, device, self.bf16_matmul)
        if slow:
            logger.warning(slow)
        adapter_dir = None
        if adapter:
            adapter_dir = Path(adapter).expanduser()
            if not (adapter_dir / "adapter_config.json").is_file():
                raise InvalidArgument(
                    f"adapter {adapter!r} is not a peft adapter folder (no adapter_config.json)"
                )

        t0 = time.perf_counter()
        folder = resolve_model(target)
        self.model_dir = folder
        self.device = torch.device(device)
        self.dtype = getattr(torch, dtype)
        self.tokenizer = shared_tokenizer(folder)
        load_dtype = torch.float32 if adapter_dir is not None else self.dtype
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=load_dtype)
        if adapter_dir is not None:
            from peft import PeftModel

            # merged in float32 (exact up to rounding), then cast: inference pays no LoRA cost
            model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
            model = model.to(self.dtype)
        self.model = model.to(self.device).eval()
        if self.bf16_matmul == "float32":
            n = float32_matmuls(self.model)
            logger.info("%d bfloat16 linear layers multiply in float32 (bf16_matmul)", n)
        self.adapter = str(adapter_dir) if adapter_dir is not None else None
        self.body = self.model.get_decoder()
        #: the decoder's keyword for a key-value cache: ``cache`` in recent transformers
        #: (5.25 here), ``past_key_values`` in earlier 5.x (the vLLM venv's 5.19)
        self._cache_arg = cache_keyword(self.body)
        self.head = self.model.get_output_embeddings()
        self._head_weight = head_weight(self.head) if self.head_product == "transposed" else None
        if self.head_product == "transposed" and self._head_weight is None:
            if head == "transposed":
                raise InvalidArgument(
                    f"head=transposed needs a bias-free linear output layer multiplying in "
                    f"float32; {folder} has {type(self.head).__name__} in {dtype}"
                )
            self.head_product = "linear"
        self.config = self.model.config.get_text_config(decoder=True)
        self.max_length = int(getattr(self.config, "max_position_embeddings", 0) or 1 << 30)
        self.load_seconds = time.perf_counter() - t0

        tok = self.tokenizer
        plain = tok("a", add_special_tokens=False)["input_ids"]
        special = tok("a")["input_ids"]
        self._bos: int | None = None
        if tok.bos_token_id is not None and special[:1] == [tok.bos_token_id] != plain[:1]:
            self._bos = int(tok.bos_token_id)
        start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        self._start_id = int(start) if start is not None else 0
        self._pad_id = int(tok.pad_token_id if tok.pad_token_id is not None else self._start_id)
        eos = self.model.generation_config.eos_token_id
        eos = tok.eos_token_id if eos is None else eos
        self._eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        self._store = PrefixStore(cache_tokens)
        self._kv_ok = self._check_cache_layers()
        #: score continuations as one token tree (True) or as a batch on the repeated cache
        self.tree_attention = True
        self._tree_ok: bool | None = None  # checked against the batched path on first use
        #: token trees' attention split into prefix and per-subtree parts
        #: (``ld_agents.llm.tree_attention``; CPU models on SDPA attention)
        self.tree_split = use_tree_attention(self.model)
        if self.attention == "matmul" and not self.tree_split:
            logger.info("attention: the model does not run SDPA on CPU; torch's kernel")
            self.attention = "kernel"
        #: token-tree nodes per forward (a batch's trees are split at this size)
        self.tree_nodes = 1024
        self._layer_kinds, self._window = attention_kinds(self.config)
        self._softcap = getattr(self.config, "final_logit_softcapping", None)
        self._check_head()
        logger.info(
            "loaded %s (%s, %s%s) in %.1f s",
            folder,
            dtype,
            self.device,
            f", adapter {self.adapter}" if self.adapter else "",
            self.load_seconds,
        )

    # ------------------------------------------------------------------ set-up checks
    def _check_cache_layers(self) -> bool:
        """Whether this model's KV cache has only plain or sliding layers (prefix reuse)."""
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

        layers = DynamicCache(config=self.model.config).layers
        kinds = (DynamicLayer, DynamicSlidingWindowLayer)
        ok = bool(layers) and all(type(layer) in kinds for layer in layers)
        if not ok:
            logger.warning("prefix key-value reuse disabled: unsupported cache layers")
        return ok

    def _check_head(self) -> None:
        """Check that our own output head reproduces the model's logits."""
        import torch

        ids = torch.tensor([[self._start_id, self._encode(["Hello"])[0][-1]]], device=self.device)
        with torch.inference_mode():
            ref = self.model(input_ids=ids).logits[0].float()
            hidden = self.body(input_ids=ids).last_hidden_state[0]
            ours = self._logits(hidden).float()
        err = (ref - ours).abs().max().item()
        # up to two roundings in the model's dtype apart (``head=transposed`` sums in
        # another order, so a bf16 logit can round to its neighbour)
        rel = max(1e-3, 2 * torch.finfo(self.dtype).eps)
        if err > rel * max(1.0, ref.abs().max().item()):
            raise BackendError(
                f"{self.model_dir}: the output layer is not a plain linear head (logits differ "
                f"by {err:.3g}); HFBackend supports causal LMs whose logits are lm_head(hidden), "
                "optionally soft-capped"
            )

    # ------------------------------------------------------------------ primitives
    def _forward(self, cache: Any, **inputs: Any) -> Any:
        """The decoder on ``inputs``, reading and extending the key-value ``cache``, its
        attention computed the backend's way (:attr:`attention`)."""
        with attention_products(self.attention):
            return self.body(**inputs, **{self._cache_arg: cache}, use_cache=True)

    def _logits(self, hidden: Any) -> Any:
        """The output layer on some final hidden states (soft-capped where the model is)."""
        import torch

        if self._head_weight is not None:
            logits = transposed_logits(hidden, self._head_weight)
        else:
            logits = self.head(hidden)
        if self._softcap:
            logits = torch.tanh(logits / self._softcap) * self._softcap
        return logits

    def _log_softmax_rows(self, hidden: Any, chunk: int = 64) -> Any:
        """float32 log-softmax of the logits of a few hidden rows [U, d] -> [U, V]."""
        import torch

        out = []
        for i in range(0, hidden.shape[0], chunk):
            rows = hidden[i : i + chunk]
            out.append(torch.log_softmax(self._logits(rows).float(), dim=-1))
            self.stats.extra["logit_rows"] = self.stats.extra.get("logit_rows", 0) + rows.shape[0]
        return torch.cat(out) if len(out) > 1 else out[0]

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of texts, BOS first where the tokenizer adds one."""
        enc = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        head = [self._bos] if self._bos is not None else []
        return [head + list(ids) for ids in enc]

    def _check_length(self, n: int, what: str) -> None:
        if n > self.max_length:
            raise BackendError(
                f"{what} is {n} tokens long, longer than the model's context of "
                f"{self.max_length} tokens; shorten the prompt"
            )

    def _requests(self, requests: Sequence[tuple[str, str]]) -> list[_Request]:
        """Tokenise (context, continuation) pairs at the boundary, as lm-eval does."""
        for item in requests:
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise InvalidArgument(
                    f"loglikelihood wants (context, continuation) pairs of strings, got {item!r}"
                )
        contexts = self._encode([c for c, _ in requests])
        fulls = self._encode([c + x for c, x in requests])
        out = []
        for ctx, full in zip(contexts, fulls, strict=True):
            if not ctx:  # no BOS and an empty context: condition on the start token
                ctx, full = [self._start_id], [self._start_id, *full]
            start = common_prefix(ctx, full)
            if start == 0:
                ctx, full, start = [self._start_id], [self._start_id, *full], 1
            self._check_length(len(full), "a scoring request (context + continuation)")
            out.append(_Request(full, start))
        return out

    def _count(self, passes: int, tokens: int, seconds: float) -> None:
        self.stats.forward_passes += passes
        self.stats.tokens_processed += tokens
        self.stats.seconds += seconds

    # ------------------------------------------------------------------ key-value cache
    def _cache_from(self, state: PrefixState | None, n: int, batch: int, record: bool) -> Any:
        """A DynamicCache of the first ``n`` tokens of ``state``, repeated ``batch`` times
        (:func:`ld_agents.llm.prefix_cache.cache_from`)."""
        return cache_from(self.model.config, state, n, batch, record)

    def _prefill(self, ids: Sequence[int], pin: bool = False) -> PrefixState:
        """Key-value and hidden states of a token prefix, reusing the longest cached one."""
        import torch

        ids = tuple(ids)
        state, n = self._store.longest(ids)
        if state is not None and n == len(ids):
            self.stats.extra["prefix_tokens_reused"] = (
                self.stats.extra.get("prefix_tokens_reused", 0) + n
            )
            if state.n_tokens == n:
                if pin:
                    self._store.put(state, pin=True)
                return state
            cropped = _cropped(state, n)
            self._store.put(cropped, pin=pin)
            return cropped
        if n:
            self.stats.extra["prefix_tokens_reused"] = (
                self.stats.extra.get("prefix_tokens_reused", 0) + n
            )
        cache = self._cache_from(state, n, 1, record=True)
        hiddens = [state.hidden[:n]] if state is not None and n else []
        t0 = time.perf_counter()
        chunk = 1024
        with torch.inference_mode():
            for i in range(n, len(ids), chunk):
                piece = torch.tensor([ids[i : i + chunk]], device=self.device)
                out = self._forward(cache, input_ids=piece)
                hiddens.append(out.last_hidden_state[0])
                self._count(1, piece.shape[1], 0.0)
        self.stats.seconds += time.perf_counter() - t0
        new = PrefixState(
            ids,
            [layer.keys for layer in cache.layers],
            [layer.values for layer in cache.layers],
            torch.cat(hiddens) if len(hiddens) > 1 else hiddens[0],
        )
        self._store.put(new, pin=pin)
        return new

    def cache_prefix(self, text: str) -> int:
        """Pin the key-value states of ``text`` (a static prompt start: rules, manual).

        Every later context that starts with the same tokens reuses them and runs only its
        remaining tokens (exact: the states are those a full forward would compute). Returns
        the number of tokens cached. The prefix should end at a token boundary that later
        prompts share (end it with a newline, say).
        """
        ids = self._encode([text])[0] or [self._start_id]
        self._check_length(len(ids), "the prefix")
        if not self._kv_ok:
            return 0
        return self._prefill(ids, pin=True).n_tokens

    def clear_prefix_cache(self, pinned: bool = True) -> None:
        """Drop cached prefix states (the pinned ones too unless ``pinned=False``) and the
        earlier answers kept as draft sources (:meth:`forget_answers`)."""
        self._store.clear(pinned=pinned)
        self.forget_answers()

    def forget_answers(self) -> None:
        """Drop the earlier greedy answers kept as draft sources (``answer_history``): the
        next drafts come from each row's own text, as for a fresh backend."""
        self._answers.clear()

    # ------------------------------------------------------------------ scoring
    def loglikelihood(
        self, requests: Sequence[tuple[str, str]], *, method: str = "cached"
    ) -> list[float]:
        """Summed log-probability of each continuation given its context, in request order.

        ``method``: ``cached`` (default; exact, fastest), or the references ``naive``,
        ``keep`` and ``batch`` (see the module docstring). All agree within float rounding.
        """
        if method not in _METHODS:
            raise InvalidArgument(f"method must be one of {', '.join(_METHODS)}, got {method!r}")
        if not requests:
            return []
        reqs = self._requests(requests)
        if method == "naive":
            return [self._score_naive(r, keep=False) for r in reqs]
        if method == "keep":
            return [self._score_naive(r, keep=True) for r in reqs]
        if method == "batch" or not self._kv_ok:
            return self._score_batch(reqs)
        return self._score_cached(reqs)

    def choice_logprobs(self, context: str, choices: Sequence[str]) -> list[float]:
        """Log-probabilities of options after one context: one forward of the context.

        Options that are single tokens after the context (labels such as ``" A"``, ``" 3"``)
        cost one forward of the context and one row of the output layer; longer options run
        as one batch on the context's key-value cache. Exact (equal to ``loglikelihood``).
        """
        return self.loglikelihood([(context, c) for c in choices])

    def choice_logprobs_batch(
        self, contexts: Sequence[str], choices: Sequence[str]
    ) -> list[list[float]]:
        """Single-token options (labels) after many contexts: the contexts' uncached tails
        after their longest cached prefix (the pinned static prompt), as one token tree
        (tails that share a start, such as one state's several stage cues, run it once)
        or, where token trees are off or unavailable, in right-padded batches; one output
        row per context. Exact up to float rounding; other options go through
        :meth:`choice_logprobs` one context at a time."""
        import torch

        if not contexts:
            return []
        k = len(choices)
        reqs = self._requests([(c, x) for c in contexts for x in choices])
        ctx_ids: list[tuple[int, ...]] = []
        label_ids: list[list[int]] = []
        for i in range(len(contexts)):
            group = reqs[i * k : (i + 1) * k]
            ctx = tuple(group[0].ids[: group[0].start])
            if not self._kv_ok or any(
                len(r.ids) != r.start + 1 or tuple(r.ids[: r.start]) != ctx for r in group
            ):
                return [self.choice_logprobs(c, choices) for c in contexts]
            ctx_ids.append(ctx)
            label_ids.append([r.ids[-1] for r in group])
        hidden: list[Any] = [None] * len(contexts)
        groups: dict[tuple[int, int], list[int]] = {}
        states: dict[int, PrefixState | None] = {}
        for i, ids in enumerate(ctx_ids):
            state, n = self._store.longest(ids)
            if state is not None and n == len(ids):
                hidden[i] = state.hidden[n - 1]
                continue
            states[id(state)] = state
            groups.setdefault((id(state), n), []).append(i)
        t0 = time.perf_counter()
        with torch.inference_mode():
            for (sid, n), members in groups.items():
                state = states[sid]
                tails = [ctx_ids[i][n:] for i in members]
                if state is not None and n < state.n_tokens:  # shares only its first n
                    state = _cropped(state, n) if n else None
                if state is not None and self.tree_attention and self._tree_ok is None:
                    self._tree_ok = self._check_tree(state, tails[:8])
                if state is not None and self.tree_attention and self._tree_ok:
                    # one token tree: tails sharing a start (a state scored at several
                    # stages) compute it once, and many episodes go in one forward
                    found = self._tree_hidden(state, tails)
                    for i, tail in zip(members, tails, strict=True):
                        hidden[i] = found[tail]
                    continue
                for b in range(0, len(members), self.batch_size):
                    chunk = members[b : b + self.batch_size]
                    tails = [ctx_ids[i][n:] for i in chunk]
                    batch = torch.full(
                        (len(chunk), max(map(len, tails))), self._pad_id, dtype=torch.long
                    )
                    for row, tail in enumerate(tails):
                        batch[row, : len(tail)] = torch.tensor(tail)
                    cache = self._cache_from(state, n, len(chunk), record=False)
                    out = self._forward(cache, input_ids=batch.to(self.device))
                    self._count(1, sum(map(len, tails)), 0.0)
                    for row, i in enumerate(chunk):
                        hidden[i] = out.last_hidden_state[row, len(tails[row]) - 1]
            logp = self._log_softmax_rows(torch.stack(hidden))
            rows = torch.arange(len(contexts))[:, None]
            values = logp[rows, torch.tensor(label_ids)].tolist()
        self.stats.seconds += time.perf_counter() - t0
        return values

    def _score_naive(self, req: _Request, keep: bool) -> float:
        """One full forward over context + continuation (all logits, or only needed ones)."""
        import torch

        n_cont = len(req.ids) - req.start
        if n_cont == 0:
            return 0.0
        t0 = time.perf_counter()
        with torch.inference_mode():
            ids = torch.tensor([req.ids], device=self.device)
            keep_n = n_cont + 1 if keep else 0
            logits = self.model(input_ids=ids, logits_to_keep=keep_n, use_cache=False).logits[0]
            logp = torch.log_softmax(logits.float(), dim=-1)
            rows = logp[-n_cont - 1 : -1]
            target = ids[0, req.start :]
            score = rows.gather(1, target[:, None]).sum().item()
        rows_computed = logits.shape[0]
        self.stats.extra["logit_rows"] = self.stats.extra.get("logit_rows", 0) + rows_computed
        self._count(1, len(req.ids), time.perf_counter() - t0)
        return score

    def _score_batch(self, reqs: list[_Request]) -> list[float]:
        """All requests in right-padded batches, the output layer only where scored."""
        import torch

        scores = [0.0] * len(reqs)
        todo = [i for i, r in enumerate(reqs) if len(r.ids) > r.start]
        t0 = time.perf_counter()
        with torch.inference_mode():
            for b in range(0, len(todo), self.batch_size):
                chunk = todo[b : b + self.batch_size]
                width = max(len(reqs[i].ids) for i in chunk)
                batch = torch.full((len(chunk), width), self._pad_id, dtype=torch.long)
                for row, i in enumerate(chunk):
                    batch[row, : len(reqs[i].ids)] = torch.tensor(reqs[i].ids)
                hidden = self.body(input_ids=batch.to(self.device), use_cache=False)
                hidden = hidden.last_hidden_state
                self._count(1, sum(len(reqs[i].ids) for i in chunk), 0.0)
                rows, index, targets = [], [], []
                for row, i in enumerate(chunk):
                    r = reqs[i]
                    for t in range(r.start, len(r.ids)):
                        rows.append((row, t - 1))
                        index.append(i)
                        targets.append(r.ids[t])
                sel = hidden[[p[0] for p in rows], [p[1] for p in rows]]
                logp = self._log_softmax_rows(sel)
                vals = logp[torch.arange(len(rows)), torch.tensor(targets, device=self.device)]
                for i, v in zip(index, vals.tolist(), strict=True):
                    scores[i] += v
        self.stats.seconds += time.perf_counter() - t0
        return scores

    def _score_cached(self, reqs: list[_Request]) -> list[float]:
        """Group by context: context once (prefix cache), continuations batched on its cache."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, r in enumerate(reqs):
            groups.setdefault(tuple(r.ids[: r.start]), []).append(i)
        scores = [0.0] * len(reqs)
        for ctx, members in groups.items():
            state = self._prefill(ctx)
            for i, v in zip(
                members, self._score_on_state(state, [reqs[i] for i in members]), strict=True
            ):
                scores[i] = v
        return scores

    def _batched_hidden(
        self, state: PrefixState, rows: list[tuple[int, ...]]
    ) -> dict[tuple[int, ...], Any]:
        """Final hidden states of every prefix of ``rows``: rows batched on the repeated cache."""
        import torch

        n = state.n_tokens
        found: dict[tuple[int, ...], Any] = {}
        for b in range(0, len(rows), self.batch_size):
            chunk = rows[b : b + self.batch_size]
            width = max(len(s) for s in chunk)
            batch = torch.full((len(chunk), width), self._pad_id, dtype=torch.long)
            for row, s in enumerate(chunk):
                batch[row, : len(s)] = torch.tensor(s)
            cache = self._cache_from(state, n, len(chunk), record=False)
            out = self._forward(cache, input_ids=batch.to(self.device))
            hidden = out.last_hidden_state
            self._count(1, sum(len(s) for s in chunk), 0.0)
            for row, s in enumerate(chunk):
                for t in range(1, len(s) + 1):
                    found.setdefault(s[:t], hidden[row, t - 1])
        return found

    def _tree_hidden(
        self, state: PrefixState, rows: list[tuple[int, ...]], max_nodes: int | None = None
    ) -> dict[tuple[int, ...], Any]:
        """Final hidden states of every prefix of ``rows``, as one token tree per forward.

        The distinct prefixes become the nodes of a trie packed into one sequence after the
        context; a 4D attention mask lets each node see the context and its own ancestors,
        and its position is the context length plus its depth. Shared prefixes (" (1" in
        " (13, 8)" and " (14, 8)") run once, and the context's key-value cache is not
        repeated. Exact: every node sees what it would see in its own sequence.
        """
        import torch

        n = state.n_tokens
        max_nodes = self.tree_nodes if max_nodes is None else max_nodes
        found: dict[tuple[int, ...], Any] = {}
        trees: list[list[tuple[int, ...]]] = [[]]
        seen: set[tuple[int, ...]] = set()
        for s in rows:
            new = [s[:t] for t in range(1, len(s) + 1) if s[:t] not in seen]
            if trees[-1] and len(trees[-1]) + len(new) > max_nodes:
                trees.append([])
                seen = set()  # a new tree holds every node its rows need
                new = [s[:t] for t in range(1, len(s) + 1)]
            trees[-1].extend(new)
            seen.update(new)
        for tree in trees:
            nodes, plan = plan_tree(tree)
            index = {p: i for i, p in enumerate(nodes)}
            u = len(nodes)
            depth = torch.tensor([len(p) for p in nodes])
            allowed = torch.zeros((u, u), dtype=torch.bool)
            for i, p in enumerate(nodes):
                if len(p) > 1:
                    allowed[i] = allowed[index[p[:-1]]]
                allowed[i, i] = True
            pos = n - 1 + depth  # absolute positions of the nodes
            masks = {}
            for kind in self._layer_kinds:
                if kind == "sliding_attention":
                    m = min(n, self._window - 1)
                    key_pos = torch.cat([torch.arange(n - m, n), pos])
                    window = key_pos[None, :] > pos[:, None] - self._window
                    vis = torch.cat([torch.ones((u, m), dtype=torch.bool), allowed], 1) & window
                else:
                    vis = torch.cat([torch.ones((u, n), dtype=torch.bool), allowed], 1)
                masks[kind] = additive_mask(vis, self.dtype)[None, None].to(self.device)
            mask: Any = masks if len(masks) > 1 else next(iter(masks.values()))
            ids = torch.tensor([[p[-1] for p in nodes]], device=self.device)
            cache = self._cache_from(state, n, 1, record=False)
            split = tree_plan(plan) if self.tree_split else contextlib.nullcontext()
            with split:
                out = self._forward(
                    cache,
                    input_ids=ids,
                    attention_mask=mask,
                    position_ids=pos[None].to(self.device),
                )
            self._count(1, u, 0.0)
            hidden = out.last_hidden_state[0]
            for p, i in index.items():
                found.setdefault(p, hidden[i])
        return found

    def _check_tree(self, state: PrefixState, rows: list[tuple[int, ...]]) -> bool:
        """First use: check the token-tree path against the batched one on a few rows (else
        disable it)."""
        if not self._layer_kinds:
            return False
        try:
            tree = self._tree_hidden(state, rows)
        except Exception as exc:  # any model that refuses a custom 4D mask
            logger.warning("token-tree scoring unavailable (%s); batching instead", exc)
            return False
        ref = self._batched_hidden(state, rows)
        err = max(float((tree[p].float() - ref[p].float()).abs().max()) for p in ref)
        scale = max(float(ref[p].float().abs().max()) for p in ref)
        tol = 1e-4 if self.dtype.itemsize >= 4 else 5e-2
        if err > tol * max(1.0, scale):
            logger.warning("token-tree scoring differs by %.3g here; batching instead", err)
            return False
        return True

    def _score_on_state(self, state: PrefixState, reqs: list[_Request]) -> list[float]:
        """Score continuations after a prefix state (all ``r.ids[:n] == state.ids``)."""
        import torch

        n = state.n_tokens
        suffixes = [tuple(r.ids[n:]) for r in reqs]
        # every scored token is predicted from a distinct token prefix (suffix[:t]);
        # compute each distinct prefix's output row once
        prefix_row: dict[tuple[int, ...], int] = {}
        for s in suffixes:
            for t in range(len(s)):
                prefix_row.setdefault(s[:t], len(prefix_row))
        # body rows: the suffixes without their last token, minus those another one extends
        bodies = sorted({s[:-1] for s in suffixes if len(s) > 1}, key=len, reverse=True)
        kept: list[tuple[int, ...]] = []
        for s in bodies:
            if not any(k[: len(s)] == s for k in kept):
                kept.append(s)
        if not prefix_row:  # only empty continuations
            return [0.0] * len(reqs)
        t0 = time.perf_counter()
        hidden_rows: list[Any] = [None] * len(prefix_row)
        if () in prefix_row:
            hidden_rows[prefix_row[()]] = state.hidden[n - 1]
        with torch.inference_mode():
            if kept and self.tree_attention and self._tree_ok is None:
                self._tree_ok = self._check_tree(state, kept[:8])
            if kept and self.tree_attention and self._tree_ok:
                found = self._tree_hidden(state, kept)
            else:
                found = self._batched_hidden(state, kept)
            for prefix, row in found.items():
                u = prefix_row.get(prefix)
                if u is not None:
                    hidden_rows[u] = row
            logp = self._log_softmax_rows(torch.stack(hidden_rows))
            pairs = [(prefix_row[s[:t]], s[t]) for s in suffixes for t in range(len(s))]
            vals = logp[[p[0] for p in pairs], [p[1] for p in pairs]].tolist()
        self.stats.seconds += time.perf_counter() - t0
        scores, k = [], 0
        for s in suffixes:
            scores.append(math.fsum(vals[k : k + len(s)]))
            k += len(s)
        return scores

    # ------------------------------------------------------------------ generation
    def generate_until(self, requests: Sequence[GenerationRequest]) -> list[str]:
        """Continuations, batched, in request order (stop strings excluded): greedy, or
        sampled where a request sets a temperature (from its own seeded generator)."""
        reqs = [r if isinstance(r, GenerationRequest) else _as_request(r) for r in requests]
        results: list[str] = [""] * len(reqs)
        for chunk, ids in self._generation_batches(reqs):
            texts = self._generate_batch(ids, [reqs[i] for i in chunk])
            for i, text in zip(chunk, texts, strict=True):
                results[i] = text
        return results

    def prime(self, requests: Sequence[GenerationRequest]) -> None:
        """Fill the prefix store exactly as :meth:`generate_until` would (the shared prefix
        of each batch, in the same order), without decoding."""
        reqs = [r if isinstance(r, GenerationRequest) else _as_request(r) for r in requests]
        for _, ids in self._generation_batches(reqs):
            self._shared_prefix_state(ids)

    def _generation_batches(
        self, reqs: Sequence[GenerationRequest]
    ) -> list[tuple[list[int], list[list[int]]]]:
        """(request indices, token ids) of each generation batch: longest prompts first."""
        if not reqs:
            return []
        ids = self._encode([r.context for r in reqs])
        for i, row in enumerate(ids):
            if not row:
                ids[i] = [self._start_id]
            self._check_length(len(ids[i]), "the prompt")
        order = sorted(range(len(reqs)), key=lambda i: -len(ids[i]))
        batches = []
        for b in range(0, len(order), self.batch_size):
            chunk = order[b : b + self.batch_size]
            batches.append((chunk, [ids[i] for i in chunk]))
        return batches

    def _shared_prefix_state(self, ids: list[list[int]]) -> tuple[PrefixState | None, int]:
        """The cached state of a batch's shared token prefix (all but one token of the
        shortest row at most) and its length; ``(None, 0)`` when there is none."""
        shared = min(len(x) for x in ids) - 1
        for x in ids[1:]:
            shared = common_prefix(ids[0], x, shared)
        state = self._prefill(ids[0][:shared]) if self._kv_ok and shared > 0 else None
        return state, shared if state is not None else 0

    def _generate_batch(self, ids: list[list[int]], reqs: list[GenerationRequest]) -> list[str]:
        """Decode one batch: drafted greedy decoding where every request is greedy, the
        model takes 4D masks and (on a CPU) the batch is small enough for guesses to be fed
        (:mod:`ld_agents.llm.speculative`), else token by token."""
        limits = [
            min(r.max_new_tokens, self.max_length - len(x)) for r, x in zip(reqs, ids, strict=True)
        ]
        longest = max(len(x) + n for x, n in zip(ids, limits, strict=True))
        # on a CPU a batch too big for any guess gains nothing from drafts (speculative.py)
        rows = len(ids) if self.device.type == "cpu" else 1
        drafted = (
            guesses_per_row(rows, self.draft_tokens) > 0
            and bool(self._layer_kinds)
            and self._drafts_ok is not False
            and longest <= draft_context(self._window)
            and all(r.temperature == 0 for r in reqs)
        )
        if drafted:
            stats = dict(vars(self.stats), extra=dict(self.stats.extra))
            answers = list(self._answers)
            try:
                return self._generate_drafted(ids, reqs, limits)
            except Exception as exc:  # a model that refuses a custom 4D mask
                if self._drafts_ok is not None:
                    raise
                logger.warning("drafted decoding unavailable (%s); token by token", exc)
                self._drafts_ok = False
                vars(self.stats).update(stats)  # the failed try counts nothing
                self._answers = collections.deque(answers)  # and keeps nothing
        return self._generate_padded(ids, reqs, limits)

    def _forward_rows(self, make_cache: Any, inputs: dict[str, Any]) -> tuple[Any, Any]:
        """A batch's first forward (its prompts' rest) on a CPU in groups of rows of at most
        ``PREFILL_TOKENS`` tokens, each on its own ``make_cache(rows)``; the caches joined
        along the batch, and the last hidden states of all rows. Each row is computed as in
        one forward (up to the rounding of other shapes in bf16); a whole batch of long
        prompts in one forward is slower on a CPU: its activations spill the caches and
        are allocated and freed page by page. Elsewhere, and for caches with other layers
        than plain and sliding ones, one forward."""
        import torch

        rows, width = inputs["input_ids"].shape
        # CPU only (measured there), and only caches whose rows are their keys and values
        grouped = self.device.type == "cpu" and self._kv_ok
        step = max(1, PREFILL_TOKENS // width) if grouped else rows
        caches, hidden = [], []
        for s in range(0, rows, step):
            cache = make_cache(min(step, rows - s))
            part = {k: _row_slice(v, s, s + step) for k, v in inputs.items()}
            hidden.append(self._forward(cache, **part).last_hidden_state)
            caches.append(cache)
            self._count(1, 0, 0.0)
        return concat_rows(caches), torch.cat(hidden) if len(hidden) > 1 else hidden[0]

    def _take(self, tokens: list[int], tok: int, req: GenerationRequest, limit: int) -> str | None:
        """Add a generated token to a row's ``tokens``; the row's text when it is done (EOS,
        a stop string, or its token limit), else None."""
        if tok in self._eos_ids:
            return self.tokenizer.decode(tokens, skip_special_tokens=True)
        tokens.append(tok)
        self.stats.tokens_generated += 1
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        cut = _find_stop(text, req.until)
        if cut is not None:
            return text[:cut]
        return text if len(tokens) >= limit else None

    def _generate_drafted(
        self, ids: list[list[int]], reqs: list[GenerationRequest], limits: list[int]
    ) -> list[str]:
        """Greedy decoding of one batch, each step feeding every row's last token and up to
        ``draft_tokens`` prompt-lookup guesses; keeps the guesses the model confirms."""
        import torch

        t0 = time.perf_counter()
        bsz = len(ids)
        state, n = self._shared_prefix_state(ids)
        feed = [x[n:] for x in ids]  # tokens each row feeds next (first: its prompt's rest)
        guesses = [0] * bsz  # how many of them are guesses (at the end of the feed)
        start = [n] * bsz  # position of each row's first fed token
        generated: list[list[int]] = [[] for _ in range(bsz)]
        texts: list[str | None] = [None] * bsz
        slots = SlotPositions(n, bsz)
        active = list(range(bsz))  # original row of each live batch row
        dev = self.device
        with torch.inference_mode():
            cache = None
            while active:
                width = max(len(feed[r]) for r in active)
                inputs = torch.full((len(active), width), self._pad_id, dtype=torch.long)
                qpos = torch.full((len(active), width), -1, dtype=torch.long)
                for j, r in enumerate(active):
                    m = len(feed[r])
                    inputs[j, :m] = torch.tensor(feed[r])
                    qpos[j, :m] = torch.arange(start[r], start[r] + m)
                first_slot = slots.pos.shape[1]
                slots.extend(qpos)
                mask = slots.masks(qpos, self._layer_kinds, self._window, self.dtype, dev)
                inputs = {
                    "input_ids": inputs.to(dev),
                    "attention_mask": mask,
                    "position_ids": qpos.clamp(min=0).to(dev),
                }
                if cache is None:  # the prompts' rest
                    cache, hidden = self._forward_rows(lambda b: full_cache(state, n, b), inputs)
                else:
                    hidden = self._forward(cache, **inputs).last_hidden_state
                    self._count(1, 0, 0.0)
                self._count(0, sum(len(feed[r]) for r in active), 0.0)
                # the model's next token after the last non-guess and after every guess
                picks = [
                    (j, t)
                    for j, r in enumerate(active)
                    for t in range(len(feed[r]) - 1 - guesses[r], len(feed[r]))
                ]
                hidden = hidden[[p[0] for p in picks], [p[1] for p in picks]]
                # float32 first: argmax over bf16 rows is ~4x slower on CPU, same ids
                nxt = self._logits(hidden).float().argmax(dim=-1).tolist()
                self.stats.extra["logit_rows"] = self.stats.extra.get("logit_rows", 0) + len(nxt)
                keep: list[int] = []
                k = kept = 0
                fed = sum(guesses[r] for r in active)
                most = guesses_per_row(len(active), self.draft_tokens)
                for j, r in enumerate(active):
                    m, g = len(feed[r]), guesses[r]
                    said, k = nxt[k : k + g + 1], k + g + 1
                    a = 0  # guesses confirmed
                    while a < g and feed[r][m - g + a] == said[a]:
                        a += 1
                    kept += a
                    if a < g:
                        slots.reject(j, first_slot + m - g + a)
                    for tok in said[: a + 1]:
                        texts[r] = self._take(generated[r], tok, reqs[r], limits[r])
                        if texts[r] is not None:
                            break
                    if texts[r] is not None:
                        self._remember(generated[r])
                        continue
                    keep.append(j)
                    start[r] += m - g + a
                    room = limits[r] - len(generated[r]) - 1
                    draft = lookup_draft(
                        ids[r] + generated[r],
                        min(most, room),
                        answer_start=len(ids[r]),
                        history=self._answers,
                    )
                    feed[r], guesses[r] = [said[a], *draft], len(draft)
                extra = self.stats.extra
                extra["draft_tokens"] = extra.get("draft_tokens", 0) + fed
                extra["draft_accepted"] = extra.get("draft_accepted", 0) + kept
                if len(keep) < len(active) and keep:
                    idx = torch.tensor(keep)
                    cache.batch_select_indices(idx.to(dev))
                    slots.select(idx)
                active = [active[j] for j in keep]
        self._drafts_ok = True
        self.stats.seconds += time.perf_counter() - t0
        return [t or "" for t in texts]

    def _remember(self, answer: list[int]) -> None:
        """Keep a finished greedy answer as a draft source (the latest
        ``answer_history``, most recent first)."""
        self._answers.appendleft(tuple(answer))
        while len(self._answers) > max(0, self.answer_history):
            self._answers.pop()

    def _generate_padded(
        self, ids: list[list[int]], reqs: list[GenerationRequest], limits: list[int]
    ) -> list[str]:
        """Token-by-token decoding of one batch (greedy or sampled): shared prefix from the
        cache, rows left-padded."""
        import torch

        t0 = time.perf_counter()
        bsz = len(ids)
        state, n = self._shared_prefix_state(ids)
        suffixes = [x[n:] for x in ids]
        width = max(len(s) for s in suffixes)
        pads = [width - len(s) for s in suffixes]
        input_ids = torch.full((bsz, width), self._pad_id, dtype=torch.long)
        mask = torch.ones((bsz, n + width), dtype=torch.long)
        for row, s in enumerate(suffixes):
            input_ids[row, pads[row] :] = torch.tensor(s)
            mask[row, n : n + pads[row]] = 0
        pos = (n + torch.arange(width)[None, :] - torch.tensor(pads)[:, None]).clamp(min=0)
        generated: list[list[int]] = [[] for _ in range(bsz)]
        texts: list[str | None] = [None] * bsz
        samplers = [
            torch.Generator().manual_seed(int(r.seed)) if r.temperature > 0 else None for r in reqs
        ]
        active = list(range(bsz))  # original row of each live batch row
        with torch.inference_mode():
            dev = self.device
            mask = mask.to(dev)
            pos = pos.to(dev)
            first = {"input_ids": input_ids.to(dev), "attention_mask": mask, "position_ids": pos}
            cache, hidden = self._forward_rows(
                lambda b: self._cache_from(state, n, b, record=False), first
            )
            self._count(0, sum(len(s) for s in suffixes), 0.0)
            last_pos = pos[:, -1]
            hidden = hidden[:, -1]
            while active:
                logits = self._logits(hidden)
                self.stats.extra["logit_rows"] = (
                    self.stats.extra.get("logit_rows", 0) + logits.shape[0]
                )
                nxt = _next_tokens(
                    logits.float(), [reqs[r] for r in active], [samplers[r] for r in active]
                )
                keep: list[int] = []
                for j, row in enumerate(active):
                    texts[row] = self._take(generated[row], int(nxt[j]), reqs[row], limits[row])
                    if texts[row] is None:
                        keep.append(j)
                    elif samplers[row] is None:  # a greedy answer: a draft source later
                        self._remember(generated[row])
                if not keep:
                    break
                if len(keep) < len(active):
                    idx = torch.tensor(keep, device=dev)
                    cache.batch_select_indices(idx)
                    nxt, mask, last_pos = nxt[idx], mask[idx], last_pos[idx]
                    active = [active[j] for j in keep]
                mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
                last_pos = last_pos + 1
                out = self._forward(
                    cache,
                    input_ids=nxt[:, None],
                    attention_mask=mask,
                    position_ids=last_pos[:, None],
                )
                self._count(1, len(active), 0.0)
                hidden = out.last_hidden_state[:, -1]
        self.stats.seconds += time.perf_counter() - t0
        return [t or "" for t in texts]

    def close(self) -> None:
        """Drop the prefix cache and the model (safe to call twice)."""
        self._store.clear(pinned=True)
        for name in ("model", "body", "head"):
            if hasattr(self, name):
                delattr(self, name)


def cache_keyword(decoder: Any) -> str:
    """The keyword a decoder's ``forward`` takes its key-value cache under: ``cache`` in
    recent transformers, ``past_key_values`` in earlier 5.x."""
    params = inspect.signature(decoder.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _row_slice(value: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of a batch tensor, or of each tensor of a dict of them."""
    if isinstance(value, dict):
        return {k: v[start:stop] for k, v in value.items()}
    return value[start:stop]


def _cropped(state: PrefixState, n: int) -> PrefixState:
    """The first ``n`` tokens of a prefix state."""
    return PrefixState(
        state.ids[:n],
        [k[:, :, :n] for k in state.keys],
        [v[:, :, :n] for v in state.values],
        state.hidden[:n],
    )


def _next_tokens(logits: Any, reqs: Sequence[GenerationRequest], samplers: Sequence[Any]) -> Any:
    """Per row, the argmax (temperature 0) or a token sampled at the row's temperature."""
    import torch

    nxt = logits.argmax(dim=-1)
    for j, (req, gen) in enumerate(zip(reqs, samplers, strict=True)):
        if gen is not None:
            probs = torch.softmax(logits[j].cpu() / req.temperature, dim=-1)
            nxt[j] = int(torch.multinomial(probs, 1, generator=gen))
    return nxt


def _find_stop(text: str, until: Sequence[str]) -> int | None:
    """Index of the earliest stop string in ``text``, or None."""
    hits = [i for i in (text.find(s) for s in until if s) if i >= 0]
    return min(hits) if hits else None


def _as_request(item: object) -> GenerationRequest:
    if isinstance(item, str):
        return GenerationRequest(item)
    raise InvalidArgument(f"generate_until wants GenerationRequest objects, got {item!r}")


def _count_int(name: str, value: int | str) -> int:
    try:
        out = int(value)
    except (TypeError, ValueError):
        out = -1
    if out < 0 or str(value).strip() != str(out):
        raise InvalidArgument(f"{name} must be a whole number >= 0, got {value!r}")
    return out


def _positive_int(name: str, value: int | str) -> int:
    try:
        out = int(value)
    except (TypeError, ValueError):
        out = 0
    if out < 1:
        raise InvalidArgument(f"{name} must be a positive integer, got {value!r}")
    return out


@register_spec_check("hf")
def check_hf_spec(target: str, options: dict[str, Any]) -> None:
    """Refuse an ``hf:`` spec's unknown options, bad values and missing files (and CUDA
    asked for where there is none), loading nothing."""
    check_options(options, _OPTIONS, "hf")
    check_choice("dtype", options.get("dtype", "float32"), _DTYPES)
    check_choice("bf16_matmul", options.get("bf16_matmul", "auto"), BF16_MATMUL_MODES)
    check_choice("attention", options.get("attention", "auto"), ATTENTION_MODES)
    check_choice("head", options.get("head", "auto"), HEAD_PRODUCTS)
    for name in ("batch_size", "prefix_cache_tokens"):
        if name in options:
            _positive_int(name, options[name])
    for name in ("draft_tokens", "answer_history"):
        if name in options:
            _count_int(name, options[name])
    device = str(options.get("device", "auto"))
    if device not in ("auto", "cpu") and not re.fullmatch(r"cuda(:\d+)?", device):
        raise InvalidArgument(f"option device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise InvalidArgument(f"device {device!r} asked for, but CUDA is not available")
    check_local_target(target, "hf")
    adapter = options.get("adapter")
    path = Path(str(adapter)).expanduser()
    if adapter and not (path / "adapter_config.json").is_file():
        problem = "holds no adapter_config.json" if path.is_dir() else "does not exist"
        raise InvalidArgument(f"adapter folder {adapter} {problem}: not a peft adapter folder")


@register_backend("hf")
def _make_hf(target: str, **options: Any) -> HFBackend:
    check_hf_spec(target, options)
    return HFBackend(target, **options)


#: older name of :func:`ld_agents.llm.models.resolve_model` (``ld_agents.ld.policy`` uses it)
_resolve_target = resolve_model

__all__ = ["HFBackend", "float32_matmuls"]
