"""Search on Milvus (the distributed shape), through pymilvus' `MilvusClient`; Milvus Lite (a local `.db` file)
speaks the same API and is what the tests run.

Each index is one collection. BM25 is Milvus' own: a `BM25` function turns the `terms` field (our analysed terms,
joined by spaces, split again by Milvus' `whitespace` tokenizer) into a sparse vector, and Milvus keeps the corpus
statistics (document frequencies, average length) itself, across every writer. So both engines score the same
terms with the same formula (k1 = 1.2, b = 0.75). Dense vectors use the COSINE metric (`AUTOINDEX`: HNSW on a
cluster, a flat scan on Milvus Lite). Metadata filters match opaque hashed terms in an ARRAY field, so no user
string is ever quoted into a filter expression.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from nexent.engines.search.analysis import analyze, analyze_joined
from nexent.engines.search.base import (
    MAX_METADATA_KEYS,
    MAX_TEXT_BYTES,
    DimensionMismatch,
    IndexedChunk,
    IndexNotFound,
    SearchHit,
    SearchRequest,
    candidate_depth,
    check_chunks,
    check_dimension,
    check_id,
    check_index_name,
    check_request,
    is_valid_id,
    metadata_terms,
)
from nexent.engines.search.fusion import DEFAULT_RRF_K, DEFAULT_VECTOR_WEIGHT, FusionMethod, fuse
from nexent.engines.search.memory import BM25_B, BM25_K1

T = TypeVar("T")

INSERT_BATCH = 500  # Milvus Lite refuses larger inserts
_DELETE_BATCH = 500
_TIMEOUT = 60.0
_OUTPUT = ["document_id", "text", "metadata"]

logger = logging.getLogger("nexent.search.milvus")


class MilvusSearch:
    """Hybrid search over Milvus collections, one per index."""

    def __init__(
        self,
        uri: str,
        *,
        token: str | None = None,
        fusion: FusionMethod = "minmax",
        vector_weight: float = DEFAULT_VECTOR_WEIGHT,
        rrf_k: int = DEFAULT_RRF_K,
        threads: int = 4,
    ) -> None:
        self.uri = uri
        self._token = token
        self.fusion: FusionMethod = fusion
        self.vector_weight = vector_weight
        self.rrf_k = rrf_k
        self._threads = threads
        self._client: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._dimensions: dict[str, int] = {}
        self._nonempty: set[str] = set()  # indexes known to hold a chunk (BM25 on an empty one fails)
        self._lock = threading.Lock()

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError("the search engine is not started")
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    async def start(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="nexent-milvus")
        await self._run(self._connect)

    def _connect(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # milvus-lite imports the deprecated pkg_resources
            from pymilvus import MilvusClient  # type: ignore[import-untyped]

            if "://" not in self.uri:  # Milvus Lite: a local file, whose folder must exist
                Path(self.uri).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self._client = MilvusClient(uri=self.uri, token=self._token or "", timeout=_TIMEOUT)

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
            executor.shutdown(wait=True)
        self._dimensions.clear()
        self._nonempty.clear()

    def _disconnect(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def health(self) -> None:
        await self._run(self._client.list_collections)

    # Indexes

    def _dimension(self, name: str) -> int | None:
        check_index_name(name)
        with self._lock:
            known = self._dimensions.get(name)
        if known is not None:
            return known
        if not self._client.has_collection(name, timeout=_TIMEOUT):
            return None
        fields = self._client.describe_collection(name, timeout=_TIMEOUT)["fields"]
        dimension = int(next(f for f in fields if f["name"] == "dense")["params"]["dim"])
        self._client.load_collection(name, timeout=_TIMEOUT)  # after a server restart collections start released
        with self._lock:
            self._dimensions[name] = dimension
        return dimension

    def _require(self, name: str) -> int:
        dimension = self._dimension(name)
        if dimension is None:
            raise IndexNotFound(f"No search index {name!r}.")
        return dimension

    def _forget(self, name: str) -> None:
        with self._lock:
            self._dimensions.pop(name, None)
            self._nonempty.discard(name)

    def _call(self, name: str, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A client call on an index; an index dropped meanwhile (by any process) becomes `IndexNotFound`."""
        from pymilvus import MilvusException

        try:
            return func(*args, timeout=_TIMEOUT, **kwargs)
        except MilvusException:
            self._forget(name)
            if not self._client.has_collection(name, timeout=_TIMEOUT):
                raise IndexNotFound(f"No search index {name!r}.") from None
            raise

    async def create_index(self, name: str, dimension: int) -> None:
        check_index_name(name)
        check_dimension(dimension)
        await self._run(self._create, name, dimension)

    def _create(self, name: str, dimension: int) -> None:
        existing = self._dimension(name)
        if existing is None:
            try:
                self._create_collection(name, dimension)
            except Exception:
                if self._dimension(name) is None:  # not made by a concurrent creator either
                    raise
            existing = self._require(name)
        if existing != dimension:
            raise DimensionMismatch(f"Index {name!r} exists with {existing}-dimension vectors, not {dimension}.")

    def _create_collection(self, name: str, dimension: int) -> None:
        from pymilvus import DataType, Function, FunctionType

        client = self._client
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("document_id", DataType.VARCHAR, max_length=64)
        schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT_BYTES)
        schema.add_field(
            "terms",
            DataType.VARCHAR,
            max_length=MAX_TEXT_BYTES,
            enable_analyzer=True,
            analyzer_params={"tokenizer": "whitespace"},
        )
        schema.add_field("metadata", DataType.JSON)
        schema.add_field(
            "metadata_terms",
            DataType.ARRAY,
            element_type=DataType.VARCHAR,
            max_capacity=MAX_METADATA_KEYS,
            max_length=32,
        )
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dimension)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name="bm25",
                function_type=FunctionType.BM25,
                input_field_names=["terms"],
                output_field_names=["sparse"],
            )
        )
        indexes = client.prepare_index_params()
        indexes.add_index("dense", index_type="AUTOINDEX", metric_type="COSINE")
        indexes.add_index(
            "sparse",
            index_type="SPARSE_INVERTED_INDEX",
            metric_type="BM25",
            params={"bm25_k1": BM25_K1, "bm25_b": BM25_B},
        )
        client.create_collection(
            name, schema=schema, index_params=indexes, consistency_level="Strong", timeout=_TIMEOUT
        )

    async def drop_index(self, name: str) -> None:
        check_index_name(name)
        await self._run(self._drop, name)

    def _drop(self, name: str) -> None:
        self._forget(name)
        if self._client.has_collection(name, timeout=_TIMEOUT):
            self._client.drop_collection(name, timeout=_TIMEOUT)

    async def index_dimension(self, name: str) -> int | None:
        return await self._run(self._dimension, name)

    # Writes

    async def upsert(self, name: str, chunks: Sequence[IndexedChunk]) -> None:
        await self._run(self._upsert, name, chunks)

    def _upsert(self, name: str, chunks: Sequence[IndexedChunk]) -> None:
        dimension = self._require(name)
        check_chunks(chunks, dimension, name)
        for start in range(0, len(chunks), INSERT_BATCH):
            rows = [
                {
                    "id": chunk.id,
                    "document_id": chunk.document_id,
                    "text": chunk.text,
                    "terms": analyze_joined(chunk.text, MAX_TEXT_BYTES, chunk.analysis),
                    "metadata": dict(chunk.metadata),
                    "metadata_terms": metadata_terms(chunk.metadata),
                    "dense": [float(value) for value in chunk.vector],
                }
                for chunk in chunks[start : start + INSERT_BATCH]
            ]
            self._call(name, self._client.upsert, name, rows)
        if chunks:
            with self._lock:
                self._nonempty.add(name)

    async def delete(self, name: str, *, document_id: str | None = None, chunk_ids: Sequence[str] | None = None) -> int:
        if document_id is not None:
            check_id(document_id, "document id")
        ids = sorted({chunk_id for chunk_id in (chunk_ids or []) if is_valid_id(chunk_id)})
        return await self._run(self._delete, name, document_id, ids)

    def _delete(self, name: str, document_id: str | None, ids: list[str]) -> int:
        self._require(name)
        expressions = [f'document_id == "{document_id}"'] if document_id else []  # ids are [A-Za-z0-9_-]
        for start in range(0, len(ids), _DELETE_BATCH):
            expressions.append("id in [" + ", ".join(f'"{i}"' for i in ids[start : start + _DELETE_BATCH]) + "]")
        deleted = 0
        for expression in expressions:
            matching = self._count_where(name, expression)
            if matching:
                self._call(name, self._client.delete, name, filter=expression)
                deleted += matching
        if deleted:
            with self._lock:
                self._nonempty.discard(name)
        return deleted

    async def count(self, name: str, *, document_id: str | None = None) -> int:
        if document_id is not None and not is_valid_id(document_id):
            return 0
        return await self._run(self._count, name, document_id)

    def _count(self, name: str, document_id: str | None) -> int:
        self._require(name)
        return self._count_where(name, f'document_id == "{document_id}"' if document_id else "")

    def _count_where(self, name: str, expression: str) -> int:
        rows = self._call(name, self._client.query, name, filter=expression, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    # Search

    async def search(self, name: str, request: SearchRequest) -> list[SearchHit]:
        dimension = await self._run(self._require, name)
        check_request(request, dimension, name)
        expression = self._filter(request)
        if expression is None:
            return []
        depth = candidate_depth(request.top_k)
        bm25: list[dict[str, Any]] = []
        vector: list[dict[str, Any]] = []
        if request.mode == "bm25":
            bm25 = await self._run(self._bm25, name, request, expression, request.top_k)
        elif request.mode == "vector":
            vector = await self._run(self._vector, name, request.vector, expression, request.top_k)
        else:
            bm25, vector = await asyncio.gather(
                self._run(self._bm25, name, request, expression, depth),
                self._run(self._vector, name, request.vector, expression, depth),
            )
        if request.mode == "bm25":
            return [_hit(entry, entry["distance"], rank, None) for rank, entry in enumerate(bm25, 1)]
        if request.mode == "vector":
            return [_hit(entry, entry["distance"], None, rank) for rank, entry in enumerate(vector, 1)]
        entries = {entry["id"]: entry for entry in [*bm25, *vector]}
        fused = fuse(
            [(entry["id"], float(entry["distance"])) for entry in bm25],
            [(entry["id"], float(entry["distance"])) for entry in vector],
            method=self.fusion,
            vector_weight=self.vector_weight if request.vector_weight is None else request.vector_weight,
            rrf_k=self.rrf_k,
            top_k=request.top_k,
        )
        return [_hit(entries[hit.id], hit.score, hit.bm25_rank, hit.vector_rank) for hit in fused]

    @staticmethod
    def _filter(request: SearchRequest) -> str | None:
        """The filter expression ("" for none); None when nothing can match."""
        parts = []
        if request.document_ids is not None:
            ids = sorted({value for value in request.document_ids if is_valid_id(value)})
            if not ids:
                return None
            parts.append("document_id in [" + ", ".join(f'"{i}"' for i in ids) + "]")
        if request.metadata:
            terms = ", ".join(f'"{term}"' for term in metadata_terms(request.metadata))  # hex digests
            parts.append(f"array_contains_all(metadata_terms, [{terms}])")
        return " and ".join(parts)

    def _bm25(self, name: str, request: SearchRequest, expression: str, limit: int) -> list[dict[str, Any]]:
        terms = " ".join(analyze(request.text, request.analysis))
        if not terms:
            return []
        with self._lock:
            known = name in self._nonempty
        if not known:
            if self._count_where(name, "") == 0:
                return []
            with self._lock:
                self._nonempty.add(name)
        return self._search_field(name, terms, "sparse", expression, limit)

    def _vector(self, name: str, vector: Sequence[float] | None, expression: str, limit: int) -> list[dict[str, Any]]:
        return self._search_field(name, [float(value) for value in vector or []], "dense", expression, limit)

    def _search_field(self, name: str, query: Any, field: str, expression: str, limit: int) -> list[dict[str, Any]]:
        results = self._call(
            name,
            self._client.search,
            name,
            data=[query],
            anns_field=field,
            limit=limit,
            filter=expression,
            output_fields=_OUTPUT,
        )
        return [dict(entry) for entry in results[0]] if results else []


def _hit(entry: dict[str, Any], score: float, bm25_rank: int | None, vector_rank: int | None) -> SearchHit:
    fields = entry.get("entity", {})
    return SearchHit(
        id=str(entry["id"]),
        document_id=str(fields.get("document_id", "")),
        text=str(fields.get("text", "")),
        score=float(score),
        metadata=dict(fields.get("metadata") or {}),
        bm25_rank=bm25_rank,
        vector_rank=vector_rank,
    )
