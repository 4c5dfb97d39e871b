"""The `knowledge_base_search` tool: agents search their knowledge bases and get numbered passages to cite.

The agent's knowledge bases come from its draft (`knowledge_base_ids`); whoever may edit the agent chose them, so
the tool searches them for every user of the agent, within the agent's tenant only.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from nexent.knowledge.schemas import SearchIn, SearchResult
from nexent.knowledge.service import KnowledgeService, acting_caller
from nexent.tools.registry import (
    Citation,
    StrictArguments,
    ToolContext,
    ToolError,
    ToolResult,
    ToolSettings,
    ToolSpec,
    register,
)

NAME = "knowledge_base_search"
_PASSAGE_CHARS = 1500


class KnowledgeSearchArgs(StrictArguments):
    query: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)] = Field(
        description="What to look for, in the words the documents would use."
    )
    top_k: int | None = Field(default=None, ge=1, le=20, description="How many passages to return (default 5).")


class KnowledgeSearchSettings(ToolSettings):
    knowledge_base_ids: list[uuid.UUID] = Field(
        default_factory=list, max_length=20, description="Filled from the agent's knowledge bases."
    )
    top_k: int = Field(default=5, ge=1, le=20)
    mode: Literal["hybrid", "bm25", "vector"] = "hybrid"


def format_passages(result: SearchResult, offset: int = 0) -> tuple[str, list[Citation]]:
    """Numbered passages for the model (from `offset + 1`, so numbers stay unique in a run), one citation each."""
    if not result.hits:
        return "No passage matches the query.", []
    lines, citations = [], []
    for number, hit in enumerate(result.hits, start=offset + 1):
        where = hit.file_name + (f", page {hit.page}" if hit.page else "")
        if hit.heading_path:
            where += " — " + " > ".join(hit.heading_path)
        if hit.metadata:  # an imported row's metadata columns (or the upload's metadata) help the model judge
            where += " (" + ", ".join(f"{key}: {value}" for key, value in hit.metadata.items()) + ")"
        lines.append(f"[{number}] {where}\n{hit.text[:_PASSAGE_CHARS]}")
        citations.append(
            Citation(
                title=hit.file_name,
                snippet=hit.text[:300],
                metadata={
                    "index": number,
                    "knowledge_base_id": str(hit.knowledge_base_id),
                    "document_id": str(hit.document_id),
                    "chunk_id": str(hit.chunk_id),
                    "page": hit.page,
                    "box": hit.box,
                    "heading_path": hit.heading_path,
                    "score": round(hit.score, 4),
                },
            )
        )
    note = "Cite passages by their number in square brackets, like [1]."
    return note + "\n\n" + "\n\n".join(lines), citations


async def _search(args: KnowledgeSearchArgs, context: ToolContext) -> ToolResult:
    settings = context.settings_for(KnowledgeSearchSettings)
    if context.engines is None or not settings.knowledge_base_ids:
        raise ToolError("This agent has no knowledge base to search.", "no_knowledge_base")
    engines = context.engines
    async with engines.sessions() as session:
        service = KnowledgeService(session, engines, acting_caller(context.tenant_id, context.user_id))
        bases = await service.attached(settings.knowledge_base_ids)
        if not bases:
            raise ToolError("The agent's knowledge bases were deleted.", "no_knowledge_base")
        query = SearchIn(query=args.query, top_k=args.top_k or settings.top_k, mode=settings.mode)
        result = await service.search_bases(bases, query)
    output, citations = format_passages(result, context.citation_offset)
    return ToolResult(output=output, citations=citations, data={"hits": len(result.hits)})


KNOWLEDGE_BASE_SEARCH = register(
    ToolSpec(
        name=NAME,
        description="Search the agent's knowledge bases (uploaded documents) and return numbered passages with "
        "their source. Use it for questions the documents may answer, and cite the passages you use by number.",
        arguments=KnowledgeSearchArgs,
        settings_schema=KnowledgeSearchSettings,
        run=_search,
        managed_settings=("knowledge_base_ids",),
    )
)
