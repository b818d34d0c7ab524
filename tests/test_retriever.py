"""Dense retrieval over manual entries with the packaged MiniLM encoder (real model)."""

from __future__ import annotations

import numpy as np
import pytest

from ld_agents.ld.retriever import Entry, Retriever
from ld_envs.errors import InvalidArgument

ENTRIES = [
    Entry(
        "manhattan_distance", "Compute the Manhattan distance |x1-x2| + |y1-y2| between two cells."
    ),
    Entry(
        "filter_restricted",
        "Remove every cell inside the restricted 5x5 area from the list of moves.",
    ),
    Entry(
        "bust_probability", "Probability that drawing one more card takes the hand total over 21."
    ),
    Entry("encircle", "When the evader is near, send each pursuer to a different neighbour cell."),
]


@pytest.fixture(scope="module")
def retriever(tmp_path_factory):
    return Retriever(ENTRIES, cache_dir=tmp_path_factory.mktemp("emb"), threshold=2)


def test_query_retrieves_the_matching_entry(retriever):
    """Queries about cards, the forbidden area and distances find their entries first."""
    assert retriever.top_k("what is the chance my cards exceed 21 if I hit", 1) == [
        "bust_probability"
    ]
    assert retriever.top_k("new rule: moves into the restricted area are not allowed", 1) == [
        "filter_restricted"
    ]
    assert retriever.top_k("how far apart are two cells on the grid", 1) == ["manhattan_distance"]


def test_embeddings_are_normalised_and_cached(retriever, tmp_path_factory):
    """Entry embeddings are unit vectors; a second retriever reads them from the cache."""
    assert np.allclose(np.linalg.norm(retriever.embeddings, axis=1), 1.0, atol=1e-5)
    cache = tmp_path_factory.mktemp("emb2")
    Retriever(ENTRIES, cache_dir=cache)
    files = list(cache.glob("manual-*.npy"))
    assert len(files) == 1
    np.save(files[0], np.zeros_like(retriever.embeddings))  # poison: proves the cache is read
    assert not Retriever(ENTRIES, cache_dir=cache).embeddings.any()


def test_small_stage_uses_all_candidates_large_stage_top_k(retriever):
    """Stages at or under the threshold pass whole; larger ones are cut to the top k."""
    assert retriever.candidates("cards", ["encircle", "bust_probability"], k=1) == [
        "encircle",
        "bust_probability",
    ]
    names = [e.name for e in ENTRIES]
    assert retriever.candidates("cards over 21", names, k=2)[0] == "bust_probability"
    assert len(retriever.candidates("cards over 21", names, k=2)) == 2


def test_bad_input_is_refused():
    """Empty bases, duplicate names and k < 1 are clear errors."""
    with pytest.raises(InvalidArgument, match="at least one"):
        Retriever([])
    with pytest.raises(InvalidArgument, match="unique"):
        Retriever([ENTRIES[0], ENTRIES[0]])
    with pytest.raises(InvalidArgument, match="k must be"):
        Retriever(ENTRIES).top_k("x", 0)
