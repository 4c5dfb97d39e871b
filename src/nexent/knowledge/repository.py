"""Knowledge queries, always within one tenant (but for the platform's own recovery sweep, at the end)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.db import utcnow
from nexent.core.repository import TenantScopedRepository
from nexent.knowledge.models import DocumentStatus, KnowledgeBase, KnowledgeChunk, KnowledgeDocument


class KnowledgeBaseRepository(TenantScopedRepository[KnowledgeBase]):
    model = KnowledgeBase

    async def name_taken(self, name: str, *, except_id: uuid.UUID | None = None) -> bool:
        conditions = [func.lower(KnowledgeBase.name) == name.lower()]
        if except_id is not None:
            conditions.append(KnowledgeBase.id != except_id)
        return await self.count(*conditions) > 0

    async def of_ids(
        self, ids: Collection[uuid.UUID], *, where: ColumnElement[bool] | None = None
    ) -> list[KnowledgeBase]:
        """The knowledge bases of `ids` in this tenant (that also meet `where`, when given)."""
        if not ids:
            return []
        query = self.select().where(KnowledgeBase.id.in_(list(ids)))
        if where is not None:
            query = query.where(where)
        return list(await self.session.scalars(query))

    async def meeting(self, where: ColumnElement[bool]) -> list[KnowledgeBase]:
        """The knowledge bases of this tenant that meet `where`, by name."""
        rows = await self.session.scalars(self.select().where(where).order_by(KnowledgeBase.name, KnowledgeBase.id))
        return list(rows)

    async def of_conversation(self, conversation_id: uuid.UUID) -> KnowledgeBase | None:
        """The conversation's index of its attachments, if it has one."""
        result: KnowledgeBase | None = await self.session.scalar(
            self.select().where(KnowledgeBase.conversation_id == conversation_id).order_by(KnowledgeBase.created_at)
        )
        return result

    async def lock(self, kb_id: uuid.UUID) -> KnowledgeBase | None:
        """The knowledge base, locked for update where the database can (PostgreSQL)."""
        result: KnowledgeBase | None = await self.session.scalar(
            self.select().where(KnowledgeBase.id == kb_id).with_for_update()
        )
        return result


class DocumentRepository(TenantScopedRepository[KnowledgeDocument]):
    model = KnowledgeDocument

    async def list_page(
        self, kb_id: uuid.UUID, *, status: DocumentStatus | None, query: str | None, limit: int, offset: int
    ) -> tuple[list[KnowledgeDocument], int]:
        conditions: list[ColumnElement[bool]] = [KnowledgeDocument.knowledge_base_id == kb_id]
        if status is not None:
            conditions.append(KnowledgeDocument.status == status)
        if query:
            conditions.append(KnowledgeDocument.file_name.icontains(query, autoescape=True))
        rows = await self.session.scalars(
            self.select()
            .where(*conditions)
            .order_by(KnowledgeDocument.created_at.desc(), KnowledgeDocument.id)
            .limit(limit)
            .offset(offset)
        )
        return list(rows), await self.count(*conditions)

    async def in_kb(self, kb_id: uuid.UUID, doc_id: uuid.UUID) -> KnowledgeDocument | None:
        result: KnowledgeDocument | None = await self.session.scalar(
            self.select().where(KnowledgeDocument.id == doc_id, KnowledgeDocument.knowledge_base_id == kb_id)
        )
        return result

    async def by_hashes(self, kb_id: uuid.UUID, hashes: Collection[str]) -> dict[str, KnowledgeDocument]:
        """The knowledge base's documents with these content hashes, by hash."""
        if not hashes:
            return {}
        rows = await self.session.scalars(
            self.select().where(
                KnowledgeDocument.knowledge_base_id == kb_id, KnowledgeDocument.content_hash.in_(list(hashes))
            )
        )
        return {doc.content_hash: doc for doc in rows}

    async def rows_of(self, kb_id: uuid.UUID, source: str, row_ids: Collection[str]) -> dict[str, KnowledgeDocument]:
        """The knowledge base's documents imported from rows of the file `source` with these ids, by id."""
        found: dict[str, KnowledgeDocument] = {}
        ids = list(row_ids)
        for offset in range(0, len(ids), 500):
            rows = await self.session.scalars(
                self.select().where(
                    KnowledgeDocument.knowledge_base_id == kb_id,
                    KnowledgeDocument.row_source == source,
                    KnowledgeDocument.row_id.in_(ids[offset : offset + 500]),
                )
            )
            found.update({doc.row_id: doc for doc in rows if doc.row_id is not None})
        return found

    async def add_all(self, docs: Sequence[KnowledgeDocument]) -> None:
        for doc in docs:
            if doc.tenant_id != self.tenant_id:
                raise ValueError("refusing to write a row of another tenant")
        self.session.add_all(docs)
        await self.session.flush()

    async def of_kb(self, kb_id: uuid.UUID, *, statuses: Collection[str] | None = None) -> list[KnowledgeDocument]:
        conditions: list[ColumnElement[bool]] = [KnowledgeDocument.knowledge_base_id == kb_id]
        if statuses is not None:
            conditions.append(KnowledgeDocument.status.in_(list(statuses)))
        return list(await self.session.scalars(self.select().where(*conditions).order_by(KnowledgeDocument.id)))

    async def of_ids(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, KnowledgeDocument]:
        if not ids:
            return {}
        rows = await self.session.scalars(self.select().where(KnowledgeDocument.id.in_(list(ids))))
        return {doc.id: doc for doc in rows}

    async def indexed_of(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, KnowledgeDocument]:
        """The documents among `ids` that are indexed (searches show nothing of the others)."""
        if not ids:
            return {}
        rows = await self.session.scalars(
            self.select().where(KnowledgeDocument.id.in_(list(ids)), KnowledgeDocument.status == DocumentStatus.INDEXED)
        )
        return {doc.id: doc for doc in rows}

    async def status_counts(self, kb_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
        counts: dict[uuid.UUID, dict[str, int]] = {kb_id: {} for kb_id in kb_ids}
        if not kb_ids:
            return counts
        rows = await self.session.execute(
            select(KnowledgeDocument.knowledge_base_id, KnowledgeDocument.status, func.count())
            .where(KnowledgeDocument.tenant_id == self.tenant_id, KnowledgeDocument.knowledge_base_id.in_(list(kb_ids)))
            .group_by(KnowledgeDocument.knowledge_base_id, KnowledgeDocument.status)
        )
        for kb_id, status, count in rows:
            counts[kb_id][status] = int(count)
        return counts


class ChunkRepository(TenantScopedRepository[KnowledgeChunk]):
    model = KnowledgeChunk

    async def of_document(self, doc_id: uuid.UUID, *, limit: int, offset: int) -> tuple[list[KnowledgeChunk], int]:
        condition = KnowledgeChunk.document_id == doc_id
        rows = await self.session.scalars(
            self.select().where(condition).order_by(KnowledgeChunk.position).limit(limit).offset(offset)
        )
        return list(rows), await self.count(condition)

    async def tables_of(self, doc_id: uuid.UUID) -> list[KnowledgeChunk]:
        """The document's table chunks, in order."""
        rows = await self.session.scalars(
            self.select()
            .where(KnowledgeChunk.document_id == doc_id, KnowledgeChunk.kind == "table")
            .order_by(KnowledgeChunk.position)
        )
        return list(rows)

    async def in_kb(self, kb_id: uuid.UUID, chunk_id: uuid.UUID) -> KnowledgeChunk | None:
        result: KnowledgeChunk | None = await self.session.scalar(
            self.select().where(KnowledgeChunk.id == chunk_id, KnowledgeChunk.knowledge_base_id == kb_id)
        )
        return result

    async def of_ids(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, KnowledgeChunk]:
        if not ids:
            return {}
        rows = await self.session.scalars(self.select().where(KnowledgeChunk.id.in_(list(ids))))
        return {chunk.id: chunk for chunk in rows}

    async def batch_of_kb(self, kb_id: uuid.UUID, *, after: uuid.UUID | None, limit: int) -> list[KnowledgeChunk]:
        """Chunks of a knowledge base in id order, `limit` at a time (keyset pagination for re-embedding)."""
        conditions: list[ColumnElement[bool]] = [KnowledgeChunk.knowledge_base_id == kb_id]
        if after is not None:
            conditions.append(KnowledgeChunk.id > after)
        rows = await self.session.scalars(self.select().where(*conditions).order_by(KnowledgeChunk.id).limit(limit))
        return list(rows)

    async def first_of_kb(self, kb_id: uuid.UUID, *, limit: int) -> list[KnowledgeChunk]:
        """The opening chunks of the knowledge base's documents, for its summary."""
        rows = await self.session.scalars(
            self.select()
            .where(KnowledgeChunk.knowledge_base_id == kb_id, KnowledgeChunk.position < 2)
            .order_by(KnowledgeChunk.created_at, KnowledgeChunk.position)
            .limit(limit)
        )
        return list(rows)

    async def add_all(self, chunks: Sequence[KnowledgeChunk]) -> None:
        for chunk in chunks:
            if chunk.tenant_id != self.tenant_id:
                raise ValueError("refusing to write a row of another tenant")
        self.session.add_all(chunks)
        await self.session.flush()

    async def delete_of_documents(self, doc_ids: Collection[uuid.UUID]) -> None:
        await self.session.execute(
            delete(KnowledgeChunk).where(
                KnowledgeChunk.tenant_id == self.tenant_id, KnowledgeChunk.document_id.in_(list(doc_ids))
            )
        )


_BUSY = [DocumentStatus.QUEUED.value, DocumentStatus.PARSING.value, DocumentStatus.EMBEDDING.value]


class StuckDocumentRepository:
    """Documents of every tenant left in processing: only for the platform's own recovery (the knowledge sweep of
    `jobs/sweeps.py`), never for a request."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def stuck(self, *, before: datetime, limit: int) -> list[KnowledgeDocument]:
        """Documents in processing that nothing has changed since `before`, oldest first."""
        rows = await self.session.scalars(
            select(KnowledgeDocument)
            .where(KnowledgeDocument.status.in_(_BUSY), KnowledgeDocument.updated_at < before)
            .order_by(KnowledgeDocument.updated_at)
            .limit(limit)
        )
        return list(rows)

    async def claim(
        self, doc_id: uuid.UUID, *, token: uuid.UUID | None, before: datetime, changes: dict[str, Any]
    ) -> bool:
        """Apply `changes` to the document if it is still stuck with the processing token `token` (a conditional
        update: of several processes sweeping at once, one wins)."""
        same_token = KnowledgeDocument.job_id.is_(None) if token is None else KnowledgeDocument.job_id == token
        result = await self.session.execute(
            update(KnowledgeDocument)
            .where(
                KnowledgeDocument.id == doc_id,
                KnowledgeDocument.status.in_(_BUSY),
                KnowledgeDocument.updated_at < before,
                same_token,
            )
            .values(**changes, updated_at=utcnow())
        )
        assert isinstance(result, CursorResult)
        return int(result.rowcount) == 1
