"""Document progress on the event bus: every state change of a document is published on its knowledge base's
channel, so a progress stream in any process (API server or worker) sees it live."""

from __future__ import annotations

import logging
import uuid

from nexent.engines.container import Engines
from nexent.knowledge.models import KnowledgeDocument

logger = logging.getLogger("nexent.knowledge")


def channel(tenant_id: uuid.UUID, kb_id: uuid.UUID) -> str:
    return f"knowledge:{tenant_id}:{kb_id}"


def document_event(doc: KnowledgeDocument) -> dict[str, object]:
    return {
        "document_id": str(doc.id),
        "file_name": doc.file_name,
        "status": doc.status,
        "progress": round(doc.progress, 3),
        "error": {"code": doc.error_code, "message": doc.error_message or ""} if doc.error_code else None,
        "chunk_count": doc.chunk_count,
    }


async def publish_document(engines: Engines, doc: KnowledgeDocument) -> None:
    """Tell progress streams about the document's state; a bus hiccup never fails the processing itself."""
    try:
        await engines.bus.publish(channel(doc.tenant_id, doc.knowledge_base_id), document_event(doc))
    except Exception:
        logger.warning("could not publish document progress", extra={"document_id": str(doc.id)}, exc_info=True)
