"""Search on LanceDB in a local directory (the embedded default).

Each index is one LanceDB table: the durable copy of the chunks (text, analysed terms, vector, metadata). Searches
run on a `MemoryIndex` built from the table on first use (exact cosine over a numpy matrix, BM25 over our own
postings): LanceDB's own full-text index must be rebuilt or optimised after writes to see them, and its flat vector
scan took about 80 ms at 100k chunks here, against a few ms in memory (see docs/search.md).

Writes go to the table first, then to the memory index of this process, so a search that starts after an upsert
returned sees it. A write by another process (a separate `nexent worker`) changes the table version, which every
search checks (about 0.2 ms); the memory index is then rebuilt from the table.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]

from nexent.engines.search.analysis import analyze, analyze_joined
from nexent.engines.search.base import (
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
from nexent.engines.search.memory import MemoryIndex, Row, normalize

T = TypeVar("T")

_COLUMNS = ["id", "document_id", "text", "terms", "vector", "metadata", "metadata_terms"]
# Compact the table's small fragments now and then (each upsert adds one).
_OPTIMIZE_EVERY_WRITES = 64
# Rebuild the memory index once this share of its rows are dead (replaced or deleted chunks).
_REBUILD_DEAD_SHARE = 0.3
_DELETE_BATCH = 500
# Table data held in memory indexes, all indexes together; the least recently searched ones are dropped beyond it
# (and rebuilt when searched again). The process holds several times the table data (postings, ids, Python
# objects): 6.2 times for 20k chunks of 150 random words, 384 dimensions.
DEFAULT_MEMORY_BUDGET_BYTES = 256 * 1024 * 1024


def _where(document_id: str | None, ids: Sequence[str]) -> list[str]:
    """Filter expressions (ids are [A-Za-z0-9_-], so quoting them is safe), at most `_DELETE_BATCH` ids each."""
    expressions = [f"document_id = '{document_id}'"] if document_id else []
    for start in range(0, len(ids), _DELETE_BATCH):
        expressions.append(_id_filter(ids[start : start + _DELETE_BATCH]))
    return expressions


def _merge(table: Any, batch: pa.Table) -> None:
    table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(batch)


def _id_filter(ids: Sequence[str]) -> str:
    return "id IN (" + ", ".join(f"'{value}'" for value in ids) + ")"


def _schema(dimension: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("document_id", pa.string(), nullable=False),
            pa.field("text", pa.string(), nullable=False),
            pa.field("terms", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dimension), nullable=False),
            pa.field("metadata", pa.string(), nullable=False),
            pa.field("metadata_terms", pa.list_(pa.string()), nullable=False),
        ]
    )


@dataclass(eq=False)
class _Index:
    table: Any
    dimension: int
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards memory, version, writing
    write_lock: threading.Lock = field(default_factory=threading.Lock)  # one writer at a time
    memory: MemoryIndex | None = None
    version: int = -1  # the table version `memory` reflects
    writing: int = 0
    writes: int = 0
    held_bytes: int = 0  # size of the table data `memory` was built from
    used: float = 0.0  # when a search last used `memory` (monotonic)


class LanceDBSearch:
    """Hybrid search over LanceDB tables under `directory`, one table per index."""

    def __init__(
        self,
        directory: Path,
        *,
        fusion: FusionMethod = "minmax",
        vector_weight: float = DEFAULT_VECTOR_WEIGHT,
        rrf_k: int = DEFAULT_RRF_K,
        threads: int = 4,
        memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
    ) -> None:
        self.directory = directory
        self.memory_budget_bytes = memory_budget_bytes
        self.fusion: FusionMethod = fusion
        self.vector_weight = vector_weight
        self.rrf_k = rrf_k
        self._threads = threads
        self._db: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._indexes: dict[str, _Index] = {}
        self._lock = threading.Lock()  # guards `_indexes`
        self._connect_lock = threading.Lock()

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError("the search engine is not started")
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    async def start(self) -> None:
        if self._executor is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="nexent-lancedb")

    def _database(self) -> Any:
        """The LanceDB connection, opened on first use: a process that never searches or writes (the parent of
        Celery's worker pool) never loads LanceDB, whose runtime does not survive a fork."""
        with self._connect_lock:
            if self._db is None:
                import lancedb

                # Interval 0: every read sees the latest version, including other processes' writes.
                self._db = lancedb.connect(self.directory, read_consistency_interval=datetime.timedelta(0))
            return self._db

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        self._indexes.clear()
        self._db = None

    async def health(self) -> None:
        if self._db is None:
            # Not opened yet: LanceDB is a library over a local folder, so the folder is what can fail. Opening it
            # here would load LanceDB (3 s and more on a busy 2-core machine, beyond a readiness check's limit) in
            # processes that may never search, such as the parent of Celery's worker pool, where it must not load.
            await self._run(self._check_directory)
            return
        await self._run(lambda: self._database().list_tables())

    def _check_directory(self) -> None:
        if not (self.directory.is_dir() and os.access(self.directory, os.R_OK | os.W_OK | os.X_OK)):
            raise OSError(f"the search folder {self.directory} is not a readable and writable folder")

    # Indexes

    def _open(self, name: str) -> _Index:
        check_index_name(name)
        with self._lock:
            index = self._indexes.get(name)
            if index is not None:
                return index
            try:
                table = self._database().open_table(name)
            except ValueError:
                raise IndexNotFound(f"No search index {name!r}.") from None
            index = _Index(table=table, dimension=table.schema.field("vector").type.list_size)
            self._indexes[name] = index
            return index

    async def create_index(self, name: str, dimension: int) -> None:
        check_index_name(name)
        check_dimension(dimension)
        await self._run(self._create, name, dimension)

    def _create(self, name: str, dimension: int) -> None:
        with self._lock:
            try:
                table = self._database().create_table(name, schema=_schema(dimension), exist_ok=True)
            except ValueError:
                table = self._database().open_table(name)
            existing = table.schema.field("vector").type.list_size
            if existing != dimension:
                raise DimensionMismatch(f"Index {name!r} exists with {existing}-dimension vectors, not {dimension}.")
            self._indexes.setdefault(name, _Index(table=table, dimension=dimension))

    async def drop_index(self, name: str) -> None:
        check_index_name(name)
        await self._run(self._drop, name)

    def _drop(self, name: str) -> None:
        with self._lock:
            self._indexes.pop(name, None)
            try:
                self._database().drop_table(name)
            except (ValueError, FileNotFoundError):
                return

    async def index_dimension(self, name: str) -> int | None:
        try:
            index = await self._run(self._open, name)
        except IndexNotFound:
            return None
        return index.dimension

    # Writes

    async def upsert(self, name: str, chunks: Sequence[IndexedChunk]) -> None:
        index = await self._run(self._open, name)
        if chunks:
            await self._run(self._upsert, name, index, chunks)

    def _upsert(self, name: str, index: _Index, chunks: Sequence[IndexedChunk]) -> None:
        check_chunks(chunks, index.dimension, name)
        rows = []
        for chunk in chunks:
            terms = analyze_joined(chunk.text, MAX_TEXT_BYTES, chunk.analysis)
            rows.append(
                Row(
                    id=chunk.id,
                    document_id=chunk.document_id,
                    text=chunk.text,
                    terms=terms.split(),
                    vector=normalize(chunk.vector),
                    metadata_json=json.dumps(dict(chunk.metadata), ensure_ascii=False, sort_keys=True),
                    metadata_terms=metadata_terms(chunk.metadata),
                )
            )
        batch = pa.table(
            {
                "id": [row.id for row in rows],
                "document_id": [row.document_id for row in rows],
                "text": [row.text for row in rows],
                "terms": [" ".join(row.terms) for row in rows],
                "vector": pa.FixedSizeListArray.from_arrays(
                    pa.array(np.asarray([chunk.vector for chunk in chunks], dtype=np.float32).ravel()),
                    index.dimension,
                ),
                "metadata": [row.metadata_json for row in rows],
                "metadata_terms": [list(row.metadata_terms) for row in rows],
            },
            schema=_schema(index.dimension),
        )
        self._write(
            name,
            index,
            lambda: (
                index.table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(batch)
            ),
            lambda memory: memory.add(rows),
        )

    def _write(
        self, name: str, index: _Index, write: Callable[[], object], apply: Callable[[MemoryIndex], object]
    ) -> None:
        """One commit to the table, then the same change to the memory index when it reflected the version just
        before (else it is dropped and rebuilt on the next search)."""
        with index.write_lock:
            with index.lock:
                index.writing += 1
            try:
                before = self._version(name, index)
                write()
                after = self._version(name, index)
                with index.lock:
                    memory = index.memory
                    if memory is not None and index.version == before and after == before + 1:
                        apply(memory)
                        index.version = after
                        if memory.dead > _REBUILD_DEAD_SHARE * max(memory.size, 1) and memory.dead > 1000:
                            index.memory = None
                    else:
                        index.memory = None
                index.writes += 1
                if index.writes % _OPTIMIZE_EVERY_WRITES == 0:
                    self._optimize(name, index)
            finally:
                with index.lock:
                    index.writing -= 1

    def _optimize(self, name: str, index: _Index) -> None:
        before = self._version(name, index)
        index.table.optimize(cleanup_older_than=datetime.timedelta(hours=1))
        after = self._version(name, index)
        with index.lock:
            if index.version == before:
                index.version = after  # compaction keeps the rows: the memory index stays right

    def _version(self, name: str, index: _Index) -> int:
        try:
            return int(index.table.version)
        except (ValueError, FileNotFoundError, OSError):
            with self._lock:
                self._indexes.pop(name, None)
            raise IndexNotFound(f"No search index {name!r}.") from None

    async def delete(self, name: str, *, document_id: str | None = None, chunk_ids: Sequence[str] | None = None) -> int:
        index = await self._run(self._open, name)
        if document_id is not None:
            check_id(document_id, "document id")
        ids = [chunk_id for chunk_id in (chunk_ids or []) if is_valid_id(chunk_id)]
        if document_id is None and not ids:
            return 0
        return await self._run(self._delete, name, index, document_id, ids)

    def _delete(self, name: str, index: _Index, document_id: str | None, ids: list[str]) -> int:
        with index.lock:
            memory = index.memory
            if memory is not None and not index.writing and self._version(name, index) != index.version:
                memory = None
            if memory is not None:
                doomed = set(memory.document_chunk_ids(document_id)) if document_id else set()
                doomed.update(chunk_id for chunk_id in ids if memory.has(chunk_id))
        if memory is None:
            # Not searched in this process (say, a worker): count and delete in the table, without building the
            # memory index.
            doomed = set()
            for where in _where(document_id, ids):
                rows = index.table.search().where(where).select(["id"]).limit(None).to_arrow()
                doomed.update(rows.column("id").to_pylist())
        if not doomed:
            return 0
        ordered = sorted(doomed)
        for start in range(0, len(ordered), _DELETE_BATCH):
            part = ordered[start : start + _DELETE_BATCH]
            self._write(
                name, index, partial(index.table.delete, _id_filter(part)), partial(MemoryIndex.remove, chunk_ids=part)
            )
        return len(doomed)

    async def count(self, name: str, *, document_id: str | None = None) -> int:
        index = await self._run(self._open, name)
        if document_id is not None and not is_valid_id(document_id):
            return 0
        return await self._run(self._count, name, index, document_id)

    def _count(self, name: str, index: _Index, document_id: str | None) -> int:
        memory = self._fresh(name, index)
        with index.lock:
            return len(memory.document_chunk_ids(document_id)) if document_id else memory.count

    # Search

    def _fresh(self, name: str, index: _Index) -> MemoryIndex:
        """The memory index, (re)built from the table when missing or behind another process's write."""
        with index.lock:
            index.used = time.monotonic()
            if index.memory is not None and (index.writing or self._version(name, index) == index.version):
                return index.memory
            while True:
                version = self._version(name, index)
                data = index.table.to_arrow().select(_COLUMNS)
                if self._version(name, index) == version:
                    break
            index.memory = MemoryIndex.from_arrow(index.dimension, data)
            index.version = version
            index.held_bytes = int(data.nbytes)
            memory = index.memory
        self._evict(keep=index)
        return memory

    def _evict(self, *, keep: _Index) -> None:
        """Drop the memory of the least recently searched indexes while all of them hold more than the budget."""
        with self._lock:
            held = [i for i in self._indexes.values() if i.memory is not None and i is not keep]
        total = keep.held_bytes + sum(i.held_bytes for i in held)
        for other in sorted(held, key=lambda i: i.used):
            if total <= self.memory_budget_bytes:
                break
            if not other.lock.acquire(blocking=False):  # in use right now: not the least recently used after all
                continue
            try:
                if other.memory is not None and not other.writing:
                    other.memory, other.version = None, -1
                    total -= other.held_bytes
            finally:
                other.lock.release()

    async def search(self, name: str, request: SearchRequest) -> list[SearchHit]:
        index = await self._run(self._open, name)
        check_request(request, index.dimension, name)
        return await self._run(self._search, name, index, request)

    def _search(self, name: str, index: _Index, request: SearchRequest) -> list[SearchHit]:
        terms = analyze(request.text, request.analysis) if request.mode != "vector" else []
        query = normalize(request.vector) if request.vector is not None and request.mode != "bm25" else None
        document_ids = None
        if request.document_ids is not None:
            document_ids = [value for value in request.document_ids if is_valid_id(value)]
        filter_terms = metadata_terms(request.metadata or {})
        depth = candidate_depth(request.top_k)
        memory = self._fresh(name, index)
        with index.lock:
            allowed = memory.allowed(document_ids, filter_terms)
            bm25 = memory.bm25(terms, allowed, depth) if request.mode != "vector" else []
            vector = memory.vector(query, allowed, depth) if query is not None else []
            ranked: list[tuple[int, float, int | None, int | None]]
            if request.mode == "bm25":
                ranked = [(row, score, rank, None) for rank, (row, score) in enumerate(bm25[: request.top_k], 1)]
            elif request.mode == "vector":
                ranked = [(row, score, None, rank) for rank, (row, score) in enumerate(vector[: request.top_k], 1)]
            else:
                row_of = {memory.chunk_id(row): row for row, _ in [*bm25, *vector]}
                fused = fuse(
                    [(memory.chunk_id(row), score) for row, score in bm25],
                    [(memory.chunk_id(row), score) for row, score in vector],
                    method=self.fusion,
                    vector_weight=self.vector_weight if request.vector_weight is None else request.vector_weight,
                    rrf_k=self.rrf_k,
                    top_k=request.top_k,
                )
                ranked = [(row_of[hit.id], hit.score, hit.bm25_rank, hit.vector_rank) for hit in fused]
            hits = []
            for row, score, bm25_rank, vector_rank in ranked:
                chunk_id, document_id, text, metadata = memory.hit(row)
                hits.append(
                    SearchHit(
                        id=chunk_id,
                        document_id=document_id,
                        text=text,
                        score=score,
                        metadata=metadata,
                        bm25_rank=bm25_rank,
                        vector_rank=vector_rank,
                    )
                )
            return hits
