"""Search engine protocol: one index per knowledge base, hybrid BM25 + dense vector search.

Every engine analyses text with `nexent.engines.search.analysis` (so BM25 sees the same terms everywhere) and
fuses its two ranked lists with `nexent.engines.search.fusion` (so hybrid scores mean the same everywhere).

Scores of a `SearchHit`, by mode:
- `bm25`: the Okapi BM25 score (k1 = 1.2, b = 0.75) of the chunk for the analysed query, >= 0, unbounded.
- `vector`: the cosine similarity of the chunk's vector and the query vector, in [-1, 1].
- `hybrid`: the fused score in [0, 1] (see `fusion.py`); `bm25_rank` and `vector_rank` give the chunk's place in
  each list (None when it was not in that list).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from nexent.core.errors import BadRequest, Conflict, NotFound
from nexent.engines.search.analysis import ANALYSIS_VERSION, ANALYSIS_VERSIONS

Scalar = str | int | float | bool
SearchMode = Literal["hybrid", "bm25", "vector"]
SEARCH_MODES: tuple[SearchMode, ...] = ("hybrid", "bm25", "vector")

MAX_TOP_K = 1000
MAX_TEXT_BYTES = 65_535  # Milvus' VARCHAR limit; the same for every engine so they accept the same chunks.
MAX_METADATA_KEYS = 64
MAX_STRING_VALUE_CHARS = 1024
MAX_DIMENSION = 32_768
# Candidates taken from each list before fusion: the fused order of the first `top_k` is stable as long as the
# lists are deeper than `top_k`.
MIN_CANDIDATES = 100

_INDEX_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_METADATA_KEY = re.compile(r"^[a-z0-9_]{1,64}$")


class IndexNotFound(NotFound):
    code = "search_index_not_found"


class DimensionMismatch(Conflict):
    code = "dimension_mismatch"


class InvalidSearchInput(BadRequest):
    code = "invalid_search_input"


@dataclass(frozen=True)
class IndexedChunk:
    """A chunk as indexed: `text` is shown to users and analysed for BM25 by the engine."""

    id: str  # chunk id (uuid hex, 32 chars)
    document_id: str  # uuid hex
    text: str
    vector: Sequence[float]
    metadata: Mapping[str, Scalar] = field(default_factory=dict)  # filterable by equality; keys [a-z0-9_]{1,64}
    analysis: int = ANALYSIS_VERSION  # the index's text analysis version (see analysis.py)


@dataclass(frozen=True)
class SearchRequest:
    text: str
    vector: Sequence[float] | None  # required for vector and hybrid
    mode: SearchMode = "hybrid"
    top_k: int = 10
    document_ids: Sequence[str] | None = None
    metadata: Mapping[str, Scalar] | None = None  # equality filters, ANDed
    analysis: int = ANALYSIS_VERSION  # the index's text analysis version (see analysis.py)
    vector_weight: float | None = None  # hybrid: the vector list's weight in fusion; None: the engine's default


@dataclass(frozen=True)
class SearchHit:
    id: str
    document_id: str
    text: str
    score: float  # see the module docstring for each mode
    metadata: Mapping[str, Scalar]
    bm25_rank: int | None = None  # 1-based ranks in each list, None if absent
    vector_rank: int | None = None


class SearchEngine(Protocol):
    """Where knowledge-base chunks are indexed and searched. An upsert that returned is visible to every later
    search, count and delete (read-your-writes)."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def health(self) -> None: ...

    async def create_index(self, name: str, dimension: int) -> None:
        """Idempotent for the same dimension; `DimensionMismatch` when the index exists with another."""
        ...

    async def drop_index(self, name: str) -> None:
        """Idempotent."""
        ...

    async def index_dimension(self, name: str) -> int | None:
        """The index's vector dimension, None when it does not exist."""
        ...

    async def upsert(self, name: str, chunks: Sequence[IndexedChunk]) -> None:
        """Adds chunks, replacing those with the same ids; `DimensionMismatch` on a wrong vector length."""
        ...

    async def delete(self, name: str, *, document_id: str | None = None, chunk_ids: Sequence[str] | None = None) -> int:
        """Deletes the chunks of a document and/or the given chunks (both given: either matches); returns how many
        were deleted."""
        ...

    async def count(self, name: str, *, document_id: str | None = None) -> int: ...
    async def search(self, name: str, request: SearchRequest) -> list[SearchHit]: ...


# Validation shared by the engines, so that they accept and refuse the same input.


def check_index_name(name: str) -> str:
    if not _INDEX_NAME.match(name):
        raise InvalidSearchInput(f"Invalid search index name {name[:80]!r}.")
    return name


def check_dimension(dimension: int) -> int:
    if isinstance(dimension, bool) or not isinstance(dimension, int) or not 1 <= dimension <= MAX_DIMENSION:
        raise InvalidSearchInput(f"Invalid vector dimension {dimension!r}.")
    return dimension


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and _ID.match(value) is not None


def check_id(value: str, what: str) -> str:
    if not is_valid_id(value):
        raise InvalidSearchInput(f"Invalid {what} {str(value)[:80]!r}.")
    return value


def check_vector(vector: Sequence[float], dimension: int, name: str) -> None:
    if len(vector) != dimension:
        raise DimensionMismatch(f"Index {name!r} holds {dimension}-dimension vectors; got {len(vector)}.")
    try:
        finite = bool(np.isfinite(np.asarray(vector, dtype=np.float64)).all())
    except (TypeError, ValueError):
        finite = False
    if not finite:
        raise InvalidSearchInput("Vectors must hold finite numbers.")


def check_metadata(metadata: Mapping[str, Scalar]) -> None:
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidSearchInput(f"At most {MAX_METADATA_KEYS} metadata keys per chunk.")
    for key, value in metadata.items():
        if not isinstance(key, str) or not _METADATA_KEY.match(key):
            raise InvalidSearchInput(f"Invalid metadata key {str(key)[:80]!r}: use [a-z0-9_], 1 to 64 characters.")
        if not isinstance(value, str | int | float | bool):
            raise InvalidSearchInput(f"Metadata value of {key!r} must be a string, number or boolean.")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidSearchInput(f"Metadata value of {key!r} must be a finite number.")
        if isinstance(value, str) and len(value) > MAX_STRING_VALUE_CHARS:
            raise InvalidSearchInput(f"Metadata value of {key!r} is longer than {MAX_STRING_VALUE_CHARS} characters.")


def check_chunks(chunks: Sequence[IndexedChunk], dimension: int, name: str) -> None:
    """Refuses a batch with an invalid chunk (before anything is written) or with one id twice."""
    seen: set[str] = set()
    for chunk in chunks:
        check_id(chunk.id, "chunk id")
        check_id(chunk.document_id, "document id")
        if chunk.id in seen:
            raise InvalidSearchInput(f"Chunk {chunk.id} appears twice in one upsert.")
        seen.add(chunk.id)
        if len(chunk.text.encode("utf-8", errors="surrogatepass")) > MAX_TEXT_BYTES:
            raise InvalidSearchInput(f"Chunk {chunk.id} is longer than {MAX_TEXT_BYTES} bytes.")
        check_vector(chunk.vector, dimension, name)
        check_metadata(chunk.metadata)
        check_analysis(chunk.analysis)


def check_request(request: SearchRequest, dimension: int, name: str) -> None:
    if request.mode not in SEARCH_MODES:
        raise InvalidSearchInput(f"Unknown search mode {request.mode!r}; use hybrid, bm25 or vector.")
    if isinstance(request.top_k, bool) or not 1 <= request.top_k <= MAX_TOP_K:
        raise InvalidSearchInput(f"top_k must be between 1 and {MAX_TOP_K}.")
    if request.mode != "bm25":
        if request.vector is None:
            raise InvalidSearchInput(f"A {request.mode} search needs the query vector.")
        check_vector(request.vector, dimension, name)
    if request.metadata:
        check_metadata(request.metadata)
    check_analysis(request.analysis)
    weight = request.vector_weight
    if weight is not None and (isinstance(weight, bool) or not 0.0 <= weight <= 1.0):
        raise InvalidSearchInput("vector_weight must lie between 0 and 1.")


def check_analysis(version: int) -> None:
    if version not in ANALYSIS_VERSIONS:
        raise InvalidSearchInput(f"Unknown text analysis version {version!r}.")


def candidate_depth(top_k: int) -> int:
    """How many hits each list contributes to a hybrid search."""
    return max(MIN_CANDIDATES, top_k)


def metadata_terms(metadata: Mapping[str, Scalar]) -> list[str]:
    """Each key-value pair as one opaque term (hex), so filters never quote user strings into an expression.

    Typed: `3` and `"3"` differ, `True` and `1` differ, `3` and `3.0` are equal."""
    terms = []
    for key, value in metadata.items():
        if isinstance(value, bool):
            encoded = f"b:{int(value)}"
        elif isinstance(value, int | float):
            number = float(value)
            encoded = f"n:{int(number)}" if number.is_integer() and abs(number) < 2**63 else f"n:{number!r}"
        else:
            encoded = f"s:{value}"
        digest = hashlib.blake2b(f"{key}\x1f{encoded}".encode("utf-8", errors="surrogatepass"), digest_size=12)
        terms.append(digest.hexdigest())
    return terms
