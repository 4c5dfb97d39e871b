"""Embedding texts for knowledge bases, written once: batches of `EMBED_BATCH` texts per call, the vectors'
length checked against the index, calls counted, and every failure as one `EmbeddingFailed` that says whether
retrying can help. Callers map it to their own terms: a search answers `502 model_call_failed`, a document fails
with `embedding_failed` or `dimension_mismatch` (or its job retries), a re-embedding job fails."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from nexent.knowledge.metrics import EMBEDDED_TEXTS, EMBEDDING_CALLS
from nexent.providers.types import RETRYABLE, ProviderError

EMBED_BATCH = 256  # texts per embedding call: large batches let the model group texts of similar length
REQUEST_BATCH = 64  # texts per request to the model's endpoint within a call


class EmbeddingFailed(Exception):
    """The model refused, stayed unreachable, or returned vectors of another length than the index's."""

    def __init__(self, code: str, message: str, *, provider_error: ProviderError | None = None) -> None:
        super().__init__(message)
        self.code = code  # "embedding_failed" or "dimension_mismatch"
        self.message = message
        self.provider_error = provider_error

    @property
    def retryable(self) -> bool:
        """Whether a later attempt may succeed (the model was unreachable or rate-limited)."""
        return self.provider_error is not None and self.provider_error.code in RETRYABLE


class Embedder:
    """An embedding model's client, for one purpose (a metrics label) and, when given, one index dimension."""

    def __init__(self, client: Any, *, purpose: str, dimension: int | None = None) -> None:
        self.client = client
        self.purpose = purpose
        self.dimension = dimension

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """The vectors of `texts`, in order."""
        vectors: list[list[float]] = []
        async for _, batch in self.batches(texts):
            vectors += batch
        return vectors

    async def embed_one(self, text: str) -> list[float]:
        return (await self.embed([text]))[0]

    async def batches(self, texts: Sequence[str]) -> AsyncIterator[tuple[int, list[list[float]]]]:
        """`(offset, vectors)` for each batch of `EMBED_BATCH` texts, as it is embedded (for progress)."""
        for offset in range(0, len(texts), EMBED_BATCH):
            part = list(texts[offset : offset + EMBED_BATCH])
            try:
                vectors, _ = await self.client.embed(part, batch_size=REQUEST_BATCH)
            except ProviderError as exc:
                EMBEDDING_CALLS.labels(self.purpose, exc.code.value).inc()
                raise EmbeddingFailed(
                    "embedding_failed", f"The embedding model failed: {exc.message}", provider_error=exc
                ) from exc
            wrong = next((v for v in vectors if self.dimension is not None and len(v) != self.dimension), None)
            if wrong is not None:
                EMBEDDING_CALLS.labels(self.purpose, "dimension_mismatch").inc()
                raise EmbeddingFailed(
                    "dimension_mismatch",
                    f"The embedding model returns {len(wrong)} dimensions; the index has {self.dimension}.",
                )
            EMBEDDING_CALLS.labels(self.purpose, "ok").inc()
            EMBEDDED_TEXTS.labels(self.purpose).inc(len(part))
            yield offset, [list(v) for v in vectors]
