"""Request and response shapes of knowledge bases, documents, chunks and search."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from nexent.core.schemas import Patch
from nexent.knowledge.models import DocumentStatus

KnowledgeBaseName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=120, pattern=r"^[^\x00-\x1f]+$"),
]
Description = Annotated[str, StringConstraints(max_length=4000)]
MetadataKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")]
MetadataValue = Annotated[str, StringConstraints(max_length=500)] | int | float | bool
# Keys the platform sets on every chunk in the search index; document metadata may not reuse them.
RESERVED_METADATA_KEYS = frozenset({"format", "kind", "page"})
SearchModeName = Literal["hybrid", "bm25", "vector"]


def check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > 20:
        raise ValueError("at most 20 metadata keys")
    reserved = RESERVED_METADATA_KEYS & value.keys()
    if reserved:
        raise ValueError(f"reserved metadata keys: {', '.join(sorted(reserved))}")
    return value


class ChunkingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_chars: int = Field(default=1200, ge=200, le=8000, description="Size a chunk aims for, in characters.")
    overlap_chars: int = Field(default=150, ge=0, le=2000, description="Text repeated between neighbouring chunks.")

    @model_validator(mode="after")
    def _overlap_below_half(self) -> ChunkingIn:
        if self.overlap_chars > self.target_chars // 2:
            raise ValueError("overlap_chars must be at most half of target_chars")
        return self


VectorWeight = Annotated[float, Field(ge=0.0, le=1.0)]
VECTOR_WEIGHT_DESCRIPTION = (
    "Hybrid search: the vector side's weight (BM25 gets the rest); null: chosen per query from the query's "
    "languages and those the embedding model understands."
)


class KnowledgeBaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: KnowledgeBaseName
    description: Description = ""
    embedding_model_id: uuid.UUID | None = Field(
        default=None, description="An embedding model of the tenant; default: the tenant's default embedding model."
    )
    rerank_model_id: uuid.UUID | None = Field(default=None, description="Optional rerank model applied to searches.")
    chunking: ChunkingIn = Field(default_factory=ChunkingIn)
    vector_weight: VectorWeight | None = Field(default=None, description=VECTOR_WEIGHT_DESCRIPTION)


class KnowledgeBaseUpdate(Patch):
    nullable = frozenset({"rerank_model_id", "vector_weight"})  # no reranking; weights chosen per query

    name: KnowledgeBaseName | None = None
    description: Description | None = None
    embedding_model_id: uuid.UUID | None = Field(
        default=None, description="Changing it re-embeds every chunk into a new index; searches go on meanwhile."
    )
    rerank_model_id: uuid.UUID | None = None
    chunking: ChunkingIn | None = Field(default=None, description="Applies to documents indexed from now on.")
    vector_weight: VectorWeight | None = Field(default=None, description=VECTOR_WEIGHT_DESCRIPTION)
    rebuild_index: Literal[True] | None = Field(
        default=None,
        description="Rebuild the search index with the current text analysis (every chunk is embedded again with "
        "the same model, into a new index; searches go on meanwhile).",
    )


class ReembedState(BaseModel):
    embedding_model_id: uuid.UUID | None
    dimension: int | None


class KnowledgeBaseRead(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    summary: str | None = Field(description="What the knowledge base holds, written by a model; agents see it.")
    embedding_model_id: uuid.UUID | None
    embedding_dimension: int
    rerank_model_id: uuid.UUID | None
    chunking: ChunkingIn
    vector_weight: float | None = Field(description=VECTOR_WEIGHT_DESCRIPTION)
    analysis_version: int = Field(description="The text analysis version of the search index.")
    analysis_outdated: bool = Field(description="A newer text analysis exists: rebuild the index to use it.")
    reembedding: ReembedState | None = Field(description="Set while the chunks are re-embedded with a new model.")
    document_counts: dict[str, int] = Field(description="Documents by status.")
    can_edit: bool
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class DocumentError(BaseModel):
    code: str
    message: str


class DocumentRow(BaseModel):
    """Where a document imported one per row came from."""

    source: str = Field(description="The CSV or JSON Lines file's name.")
    id: str = Field(description="The row's id (its id column, else its line number).")
    line: int = Field(description="The line the row starts on in the file (1 is the first line).")


class DocumentRead(BaseModel):
    id: uuid.UUID
    knowledge_base_id: uuid.UUID
    file_name: str
    content_type: str | None
    size: int
    content_hash: str
    format: str | None
    status: DocumentStatus
    progress: float = Field(description="0 to 1.")
    error: DocumentError | None
    chunk_count: int
    page_count: int | None
    attempts: int
    metadata: dict[str, Any]
    row: DocumentRow | None = Field(description="Set for a row of a structured import (`split=rows`).")
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    indexed_at: datetime | None


class UploadedDocument(BaseModel):
    document: DocumentRead
    duplicate: bool = Field(description="The same content was already in this knowledge base; nothing new was added.")
    replaced: bool = Field(
        default=False, description="A row whose id an earlier import of the same file had: its document was updated."
    )


class RejectedFile(BaseModel):
    file_name: str
    error: DocumentError


class RejectedRow(BaseModel):
    file_name: str
    line: int = Field(description="The line the row starts on (1 is the first line, a CSV file's header).")
    id: str | None = Field(description="The row's id, when it could be read.")
    error: DocumentError


class UploadResult(BaseModel):
    documents: list[UploadedDocument]
    rejected: list[RejectedFile] = Field(description="Files refused before storage (size, type), with the reason.")
    rejected_rows: list[RejectedRow] = Field(
        default_factory=list, description="Rows of a structured import (`split=rows`) left out, with the reason."
    )


class DocumentMetadataIn(BaseModel):
    """Metadata given with an upload (the multipart field `metadata`, a JSON object)."""

    model_config = ConfigDict(extra="forbid")

    metadata: dict[MetadataKey, MetadataValue] = Field(default_factory=dict)

    @field_validator("metadata")
    @classmethod
    def _not_reserved(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_metadata(value)


class ChunkRead(BaseModel):
    id: uuid.UUID
    document_id: uuid.UUID
    position: int
    text: str
    kind: str
    page: int | None
    page_end: int | None
    heading_path: list[str]
    source: str | None
    start_offset: int
    end_offset: int
    edited: bool
    caption: str | None = Field(description="The caption of the table the chunk holds, when the document gives one.")
    box: list[float] | None = Field(
        default=None,
        min_length=4,
        max_length=4,
        description="Where the text is on its first page (PDFs with a text layer): `[x0, y0, x1, y1]`, fractions "
        "of the page's width and height from its top left corner.",
    )
    updated_at: datetime


class DocumentTable(BaseModel):
    """One table of a document, rebuilt from its table chunks (a long table's pieces joined again)."""

    index: int = Field(description="The table's order in the document, from 0.")
    page: int | None = Field(description="The page (or slide) the table starts on.")
    page_end: int | None = Field(description="The page it ends on.")
    caption: str | None = Field(description='Its caption ("Table 4. ..."), when the document gives one.')
    heading_path: list[str] = Field(description="The headings the table sits under.")
    source: str | None = Field(description="The archive member or sheet the table comes from.")
    header: list[str] = Field(description="The header row's cells.")
    rows: list[list[str]] = Field(description="The body rows' cells, the header not repeated.")
    chunk_ids: list[uuid.UUID] = Field(description="The chunks that hold the table, in order.")


class ChunkDetail(ChunkRead):
    """One chunk with what a citation shows: its knowledge base, its document's file name and metadata."""

    knowledge_base_id: uuid.UUID
    file_name: str = Field(description="The file name of the chunk's document.")
    content_type: str | None = Field(description="The document's stored content type, as uploaded.")
    document_status: DocumentStatus = Field(description="The document's processing status.")
    document_metadata: dict[str, Any] = Field(
        description="The metadata given with the document's upload (also copied onto its chunks for searches)."
    )


class ChunkUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]


class SearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    top_k: int = Field(default=5, ge=1, le=100)
    mode: SearchModeName = "hybrid"
    document_ids: list[uuid.UUID] | None = Field(default=None, max_length=100)
    metadata: dict[MetadataKey, MetadataValue] | None = Field(default=None, description="Equality filters, ANDed.")
    rerank: bool = Field(default=True, description="Apply the knowledge base's rerank model, when it has one.")
    vector_weight: VectorWeight | None = Field(
        default=None,
        description="Hybrid mode: the vector side's weight for this search; default: the knowledge "
        "base's, else chosen per query.",
    )


class SearchHitRead(BaseModel):
    chunk_id: uuid.UUID
    document_id: uuid.UUID
    knowledge_base_id: uuid.UUID
    file_name: str
    page: int | None
    heading_path: list[str]
    source: str | None
    text: str
    score: float
    bm25_rank: int | None
    vector_rank: int | None
    metadata: dict[str, Any] = Field(default_factory=dict, description="The document's metadata (upload, row).")
    box: list[float] | None = Field(
        default=None,
        min_length=4,
        max_length=4,
        description="Where the text is on its first page (PDFs with a text layer): `[x0, y0, x1, y1]`, fractions "
        "of the page's width and height from its top left corner.",
    )


class SearchTimings(BaseModel):
    embedding_ms: float
    search_ms: float
    rerank_ms: float


class SearchWeights(BaseModel):
    """How one knowledge base's lists were weighed."""

    knowledge_base_id: uuid.UUID
    bm25_weight: float
    vector_weight: float
    source: Literal["mode", "request", "knowledge_base", "languages"] = Field(
        description="Where the weights come from: the mode (bm25 or vector alone), the request, the knowledge "
        "base's setting, or the query's languages and the embedding model's."
    )
    query_languages: dict[str, float] = Field(description="Each language's share of the query.")
    model_languages: list[str] | None = Field(description="The embedding model's languages; null: every language.")


class SearchResult(BaseModel):
    hits: list[SearchHitRead]
    mode: SearchModeName
    weights: list[SearchWeights]
    timings: SearchTimings


class DocumentEvent(BaseModel):
    """A document's state as the progress stream sends it."""

    document_id: uuid.UUID
    status: DocumentStatus
    progress: float
    error: DocumentError | None
    chunk_count: int


class PreviewError(BaseModel):
    code: str = Field(description="`corrupt_file`, `encrypted`, `too_large`, `file_missing` or `preview_failed`.")
    message: str


class PreviewRead(BaseModel):
    """What can be seen of a document: page images (PDFs, images), a thumbnail, its parsed text."""

    document_id: uuid.UUID
    kind: Literal["pdf", "image", "text"] | None = Field(
        description="`pdf` and `image`: page images and a thumbnail; `text`: the parsed text only; null until "
        "the document is indexed."
    )
    page_count: int = Field(description="Page images available (`.../preview/pages/{page}`, from 1).")
    page_width: int | None = Field(description="The page images' width in pixels.")
    thumbnail: bool = Field(description="Whether `.../preview/thumbnail` has an image.")
    text: bool = Field(description="Whether `.../preview/text` has the parsed text.")
    error: PreviewError | None = Field(description="Why the background job could not make the page images.")
