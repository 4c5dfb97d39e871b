"""An index held in memory: exact cosine search over a numpy matrix and BM25 over inverted postings.

The LanceDB engine keeps one per index it has searched, built from the LanceDB table (the durable copy) and kept
up to date by the writes of this process. Callers hold a lock around every use: it is not thread-safe itself.

Rows are only appended: a replaced or deleted chunk leaves a dead row behind (masked out of every result) until
the index is rebuilt from the table.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from nexent.engines.search.base import Scalar

BM25_K1 = 1.2
BM25_B = 0.75

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]


class _Growable:
    """An int or float array appended to one value at a time, read as a numpy array."""

    __slots__ = ("_array", "_dtype", "_pending")

    def __init__(self, dtype: type[np.generic], initial: npt.NDArray[Any] | None = None) -> None:
        self._dtype = dtype
        self._array: npt.NDArray[Any] = np.asarray(initial if initial is not None else [], dtype=dtype)
        self._pending: list[float] = []

    def append(self, value: float) -> None:
        self._pending.append(value)

    def array(self) -> npt.NDArray[Any]:
        if self._pending:
            self._array = np.concatenate([self._array, np.asarray(self._pending, dtype=self._dtype)])
            self._pending = []
        return self._array


@dataclass
class _Posting:
    rows: _Growable
    tfs: _Growable


@dataclass(frozen=True)
class Row:
    """One chunk as the memory index takes it: terms analysed, vector normalised, metadata as JSON."""

    id: str
    document_id: str
    text: str
    terms: Sequence[str]
    vector: FloatArray
    metadata_json: str
    metadata_terms: Sequence[str]


def normalize(vector: Sequence[float] | FloatArray) -> FloatArray:
    """The unit vector (a zero vector stays zero), so a dot product is the cosine."""
    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return array / norm if norm > 0 else array


class MemoryIndex:
    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self.size = 0
        self.dead = 0
        self._ids: list[str] = []
        self._document_ids: list[str] = []
        self._texts: list[str] = []
        self._metadata: list[str] = []
        self._vectors: FloatArray = np.zeros((0, dimension), dtype=np.float32)
        self._alive: BoolArray = np.zeros(0, dtype=np.bool_)
        self._lengths: FloatArray = np.zeros(0, dtype=np.float32)
        self._total_length = 0.0
        self._row_of: dict[str, int] = {}
        self._postings: dict[str, _Posting] = {}
        self._document_rows: dict[str, _Growable] = {}
        self._metadata_rows: dict[str, _Growable] = {}

    # Building

    @classmethod
    def from_arrow(cls, dimension: int, table: pa.Table) -> MemoryIndex:
        """Builds the index from the columns `id, document_id, text, terms, vector, metadata, metadata_terms` with
        vectorised arrow and numpy work (about a second for 100k chunks), not a Python loop over terms."""
        index = cls(dimension)
        n = table.num_rows
        if n == 0:
            return index
        index.size = n
        index._ids = table.column("id").to_pylist()
        index._document_ids = table.column("document_id").to_pylist()
        index._texts = table.column("text").to_pylist()
        index._metadata = table.column("metadata").to_pylist()
        vectors = table.column("vector").combine_chunks()
        flat = np.asarray(vectors.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
        matrix = flat.reshape(n, dimension)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        index._vectors = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
        index._alive = np.ones(n, dtype=np.bool_)
        index._row_of = {chunk_id: row for row, chunk_id in enumerate(index._ids)}

        split = pc.split_pattern(table.column("terms").combine_chunks(), " ")
        row_of_term, term_codes, terms = _explode(split, n)
        index._lengths = np.bincount(row_of_term, minlength=n).astype(np.float32)
        index._total_length = float(index._lengths.sum())
        if len(term_codes):
            keys = term_codes.astype(np.int64) * n + row_of_term
            unique, counts = np.unique(keys, return_counts=True)
            codes, rows = np.divmod(unique, n)
            rows = rows.astype(np.int32)  # half the memory of int64 postings
            starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
            ends = np.r_[starts[1:], len(codes)]
            tfs = counts.astype(np.float32)
            for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
                index._postings[terms[int(codes[start])]] = _Posting(
                    _Growable(np.int32, rows[start:end]), _Growable(np.float32, tfs[start:end])
                )

        index._document_rows = _groups(pa.array(index._document_ids, pa.string()), np.arange(n))
        meta_rows, meta_codes, meta_terms = _explode(table.column("metadata_terms").combine_chunks(), n)
        if len(meta_codes):
            index._metadata_rows = _groups(pa.array(meta_terms, pa.string()).take(pa.array(meta_codes)), meta_rows)
        return index

    def add(self, rows: Sequence[Row]) -> None:
        """Appends chunks, retiring the rows of chunks with the same ids."""
        self.remove(row.id for row in rows)
        needed = self.size + len(rows)
        if needed > len(self._vectors):
            capacity = max(needed, 2 * len(self._vectors), 1024)
            self._vectors = _grow(self._vectors, capacity)
            self._alive = _grow(self._alive, capacity)
            self._lengths = _grow(self._lengths, capacity)
        for row in rows:
            position = self.size
            self.size += 1
            self._ids.append(row.id)
            self._document_ids.append(row.document_id)
            self._texts.append(row.text)
            self._metadata.append(row.metadata_json)
            self._vectors[position] = row.vector
            self._alive[position] = True
            self._lengths[position] = len(row.terms)
            self._total_length += len(row.terms)
            self._row_of[row.id] = position
            for term, count in Counter(row.terms).items():
                posting = self._postings.get(term)
                if posting is None:
                    posting = self._postings[term] = _Posting(_Growable(np.int32), _Growable(np.float32))
                posting.rows.append(position)
                posting.tfs.append(count)
            self._document_rows.setdefault(row.document_id, _Growable(np.int64)).append(position)
            for term in row.metadata_terms:
                self._metadata_rows.setdefault(term, _Growable(np.int64)).append(position)

    def remove(self, chunk_ids: Iterable[str]) -> int:
        removed = 0
        for chunk_id in chunk_ids:
            row = self._row_of.pop(chunk_id, None)
            if row is not None:
                self._alive[row] = False
                self._total_length -= float(self._lengths[row])
                self.dead += 1
                removed += 1
        return removed

    # Reading

    @property
    def count(self) -> int:
        return len(self._row_of)

    def document_chunk_ids(self, document_id: str) -> list[str]:
        rows = self._document_rows.get(document_id)
        if rows is None:
            return []
        array = rows.array()
        return [self._ids[row] for row in array[self._alive[array]].tolist()]

    def has(self, chunk_id: str) -> bool:
        return chunk_id in self._row_of

    def allowed(self, document_ids: Sequence[str] | None, metadata_terms: Sequence[str]) -> BoolArray | None:
        """The rows that pass the filters (None: no filter)."""
        if document_ids is None and not metadata_terms:
            return None
        mask = np.zeros(self.size, dtype=np.bool_)
        if document_ids is None:
            mask[:] = True
        else:
            for document_id in set(document_ids):
                rows = self._document_rows.get(document_id)
                if rows is not None:
                    mask[rows.array()] = True
        for term in metadata_terms:
            rows = self._metadata_rows.get(term)
            if rows is None:
                return np.zeros(self.size, dtype=np.bool_)
            term_mask = np.zeros(self.size, dtype=np.bool_)
            term_mask[rows.array()] = True
            mask &= term_mask
        return mask

    def bm25(self, terms: Sequence[str], allowed: BoolArray | None, depth: int) -> list[tuple[int, float]]:
        """Okapi BM25 (Lucene's IDF `ln(1 + (N - df + 0.5) / (df + 0.5))`) over the live chunks."""
        live = self.count
        if live == 0 or not terms:
            return []
        alive = self._alive[: self.size]
        average = max(self._total_length / live, 1e-9)
        scores = np.zeros(self.size, dtype=np.float32)
        for term, query_count in Counter(terms).items():
            posting = self._postings.get(term)
            if posting is None:
                continue
            rows = posting.rows.array()
            frequency = int(np.count_nonzero(alive[rows]))
            if frequency == 0:
                continue
            idf = math.log(1.0 + (live - frequency + 0.5) / (frequency + 0.5))
            tfs = posting.tfs.array()
            norms = BM25_K1 * (1.0 - BM25_B + BM25_B * self._lengths[rows] / average)
            scores[rows] += np.float32(query_count * idf) * tfs * (BM25_K1 + 1.0) / (tfs + norms)
        keep = (scores > 0) & alive
        if allowed is not None:
            keep &= allowed
        return _top(np.flatnonzero(keep), scores, depth)

    def vector(self, query: FloatArray, allowed: BoolArray | None, depth: int) -> list[tuple[int, float]]:
        """Exact cosine similarity against every live chunk (the filters applied first)."""
        alive = self._alive[: self.size]
        keep = alive if allowed is None else alive & allowed
        candidates = np.flatnonzero(keep)
        if len(candidates) == 0:
            return []
        if len(candidates) == self.size:
            scores = self._vectors[: self.size] @ query
            return _top(candidates, scores, depth)
        scores = np.zeros(self.size, dtype=np.float32)
        scores[candidates] = self._vectors[candidates] @ query
        return _top(candidates, scores, depth)

    def chunk_id(self, row: int) -> str:
        return self._ids[row]

    def hit(self, row: int) -> tuple[str, str, str, Mapping[str, Scalar]]:
        metadata: dict[str, Scalar] = json.loads(self._metadata[row]) if self._metadata[row] else {}
        return self._ids[row], self._document_ids[row], self._texts[row], metadata


def _top(candidates: IntArray, scores: npt.NDArray[Any], depth: int) -> list[tuple[int, float]]:
    """The `depth` best candidates, best first (ties: the earlier row)."""
    if len(candidates) > depth:
        part = np.argpartition(-scores[candidates], depth - 1)[:depth]
        candidates = np.sort(candidates[part])
    order = np.argsort(-scores[candidates], kind="stable")
    chosen = candidates[order]
    return list(zip(chosen.tolist(), scores[chosen].astype(np.float64).tolist(), strict=True))


def _grow(array: npt.NDArray[Any], capacity: int) -> npt.NDArray[Any]:
    grown = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown


def _explode(lists: pa.ListArray, n: int) -> tuple[IntArray, IntArray, list[str]]:
    """For a list<string> column: each non-empty value's row, its code in the dictionary, and the dictionary."""
    offsets = np.asarray(lists.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    values = lists.flatten()
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(offsets - offsets[0]))
    if len(values) == 0:
        return rows, np.zeros(0, dtype=np.int64), []
    keep = np.asarray(pc.not_equal(values, "").to_numpy(zero_copy_only=False), dtype=np.bool_)
    encoded = values.filter(pa.array(keep)).dictionary_encode()
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return rows[keep], codes, encoded.dictionary.to_pylist()


def _groups(keys: pa.Array, rows: IntArray) -> dict[str, _Growable]:
    """Rows grouped by key."""
    encoded = keys.dictionary_encode()
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    names = encoded.dictionary.to_pylist()
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    ends = np.r_[starts[1:], len(order)]
    return {
        names[int(sorted_codes[start])]: _Growable(np.int64, rows[order[start:end]])
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True)
    }
