"""Fusion of the BM25 and the vector list into one hybrid ranking, shared by every engine.

Methods:
- `minmax` (the default, chosen by measurement, see docs/search.md): each list's scores are min-max normalised
  to [0, 1] over the candidates it returned, and the fused score is
  `vector_weight * vector + (1 - vector_weight) * bm25`, a chunk missing from a list counting 0 there.
- `dbsf`: distribution-based score fusion: each list normalised over mean +- 3 standard deviations, clipped to
  [0, 1], then combined like `minmax`.
- `rrf`: reciprocal rank fusion, `sum 1 / (rrf_k + rank)`, divided by its largest possible value so that it lies in
  [0, 1]; weights scale each list's term.

Every fused score lies in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

FusionMethod = Literal["minmax", "dbsf", "rrf"]
FUSION_METHODS: tuple[FusionMethod, ...] = ("minmax", "dbsf", "rrf")
DEFAULT_VECTOR_WEIGHT = 0.4
DEFAULT_RRF_K = 60


@dataclass(frozen=True)
class Fused:
    id: str
    score: float
    bm25_rank: int | None
    vector_rank: int | None


def _minmax(scores: Sequence[float]) -> list[float]:
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if high - low <= 1e-12:
        return [1.0] * len(scores)
    return [(score - low) / (high - low) for score in scores]


def _dbsf(scores: Sequence[float]) -> list[float]:
    if not scores:
        return []
    mean = sum(scores) / len(scores)
    deviation = math.sqrt(sum((score - mean) ** 2 for score in scores) / len(scores))
    if deviation <= 1e-12:
        return [1.0] * len(scores)
    low, high = mean - 3 * deviation, mean + 3 * deviation
    return [min(1.0, max(0.0, (score - low) / (high - low))) for score in scores]


def fuse(
    bm25: Sequence[tuple[str, float]],
    vector: Sequence[tuple[str, float]],
    *,
    method: FusionMethod = "minmax",
    vector_weight: float = DEFAULT_VECTOR_WEIGHT,
    rrf_k: int = DEFAULT_RRF_K,
    top_k: int | None = None,
) -> list[Fused]:
    """Fuses two lists of `(id, score)`, each best first; returns the fused list, best first (ties: the better
    rank in either list, then the id, so the order is deterministic)."""
    if not 0.0 <= vector_weight <= 1.0:
        raise ValueError("vector_weight must lie in [0, 1]")
    weights = (1.0 - vector_weight, vector_weight)
    fused: dict[str, float] = {}
    ranks: dict[str, list[int | None]] = {}
    # A list with weight 0 has no say: it adds no candidates and breaks no ties (so that a weight of 0 gives the
    # other list's ranking exactly), though its ranks are still reported for the candidates it shares.
    for which in sorted((0, 1), key=lambda index: weights[index] == 0):
        hits = (bm25, vector)[which]
        if method == "rrf":
            contributions = [1.0 / (rrf_k + rank) for rank in range(1, len(hits) + 1)]
        elif method == "dbsf":
            contributions = _dbsf([score for _, score in hits])
        else:
            contributions = _minmax([score for _, score in hits])
        for rank, ((chunk_id, _), value) in enumerate(zip(hits, contributions, strict=True), start=1):
            if weights[which] == 0 and chunk_id not in fused:
                continue
            entry = ranks.setdefault(chunk_id, [None, None])
            if entry[which] is not None:
                continue  # the same id twice in one list: keep its best place
            entry[which] = rank
            fused[chunk_id] = fused.get(chunk_id, 0.0) + weights[which] * value
    if method == "rrf":
        # The best possible RRF score: first in both lists (weights sum to 1).
        ceiling = 1.0 / (rrf_k + 1)
        fused = {chunk_id: score / ceiling for chunk_id, score in fused.items()}

    counted = [which for which in (0, 1) if weights[which] > 0]

    def order(chunk_id: str) -> tuple[float, int, str]:
        places = [ranks[chunk_id][which] for which in counted]
        best = min((rank for rank in places if rank is not None), default=0)
        return (-fused[chunk_id], best, chunk_id)

    ordered = sorted(fused, key=order)
    if top_k is not None:
        ordered = ordered[:top_k]
    return [
        Fused(
            id=chunk_id,
            score=min(1.0, max(0.0, fused[chunk_id])),
            bm25_rank=ranks[chunk_id][0],
            vector_rank=ranks[chunk_id][1],
        )
        for chunk_id in ordered
    ]
