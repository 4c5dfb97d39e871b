"""Chat attachments (docs/attachments.md): files and images uploaded before a message is sent, bound to the user
message of the run that sends them, readable by whoever reads the conversation, removed with it; and their
preparation before the agent starts (parsed documents into the agent's context, images to the model or, for a
model that takes no images, their OCR text and a caption), streamed as `attachment.*` run events."""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.db import utcnow
from nexent.core.errors import AppError, NotFound
from nexent.core.pagination import Page, PageParams
from nexent.engines.container import Engines
from nexent.engines.storage.base import ObjectNotFound
from nexent.identity.auth import Caller
from nexent.knowledge.reading import (
    IMAGE_FORMATS,
    FileRefused,
    FileUnreadable,
    check_file,
    media_type_of,
    read_text,
)
from nexent.knowledge.service import KnowledgeService
from nexent.memory.service import estimate_tokens
from nexent.providers.models import ModelKind
from nexent.providers.service import NoDefaultModel, ProviderService
from nexent.providers.types import ProviderError, complete
from nexent.runtime.builder import ATTACHMENT_SEARCH_TOOL
from nexent.runtime.conversations import ConversationService, reach_of
from nexent.runtime.event_types import AttachmentFailed, AttachmentProcessing, AttachmentReady, BaseRunEvent
from nexent.runtime.models import Attachment, AttachmentKind
from nexent.runtime.repository import AttachmentRepository
from nexent.runtime.schemas import AttachmentRead

logger = logging.getLogger("nexent.runtime")

# The share of the model's context that attached documents may fill together (in tokens), and the budget when the
# model's context window is unknown. A document past what is left is not put in the context.
CONTEXT_SHARE = 0.4
DEFAULT_CONTEXT_BUDGET = 6_000
CAPTION_PROMPT = "Describe this image in one or two sentences, for someone who cannot see it."
OCR_NOTE = "The model takes no images: the image's OCR text (and a caption, where a vision model is set) stand in."


class AttachmentNotFound(NotFound):
    code = "attachment_not_found"


class InvalidAttachment(AppError):
    """A run names attachments that are not the caller's, or that another message carries already."""

    status, code = 422, "invalid_attachment"


def storage_key(tenant_id: uuid.UUID, attachment_id: uuid.UUID) -> str:
    return f"attachments/{tenant_id}/{attachment_id}"


@dataclass(frozen=True)
class AttachmentRef:
    """What preparing an attachment needs, read when its run starts."""

    id: uuid.UUID
    name: str
    kind: str
    format: str
    content_type: str
    storage_key: str

    @classmethod
    def of(cls, row: Attachment) -> AttachmentRef:
        return cls(row.id, row.name, row.kind, row.format, row.content_type, row.storage_key)


@dataclass(frozen=True)
class OpenedAttachment:
    attachment: Attachment
    content: AsyncIterator[bytes]


class AttachmentService:
    """A caller's attachments: an unsent one is its uploader's alone; a sent one belongs to its conversation and is
    reached as the conversation is (its user, and an API key limited to some agents only with these agents)."""

    def __init__(self, session: AsyncSession, engines: Engines, caller: Caller) -> None:
        self.session = session
        self.engines = engines
        self.caller = caller
        self.attachments = AttachmentRepository(session, caller.tenant_id)

    async def upload(self, file_name: str, content_type: str | None, data: bytes) -> AttachmentRead:
        """Store a file for a message to come: the knowledge formats and size limit, refused with their typed
        errors (an image must open as one)."""
        name = _clean_file_name(file_name)
        fmt = check_file(self.engines, data, name, content_type)
        kind = AttachmentKind.IMAGE if fmt in IMAGE_FORMATS else AttachmentKind.DOCUMENT
        if kind == AttachmentKind.IMAGE:
            _check_image(data)
        attachment_id = uuid.uuid4()
        row = Attachment(
            id=attachment_id,
            tenant_id=self.caller.tenant_id,
            user_id=self.caller.user_id,
            conversation_id=None,
            message_id=None,
            name=name,
            content_type=media_type_of(fmt),
            kind=kind.value,
            format=fmt,
            size=len(data),
            storage_key=storage_key(self.caller.tenant_id, attachment_id),
            created_at=utcnow(),
        )
        await self.engines.storage.put(row.storage_key, data)
        await self.attachments.add(row)
        return AttachmentRead.model_validate(row)

    async def _readable(self, attachment_id: uuid.UUID) -> Attachment:
        row = await self.attachments.readable(attachment_id, reach_of(self.caller))
        if row is None:
            raise AttachmentNotFound(f"No attachment {attachment_id} of yours.")
        return row

    async def list_attachments(
        self, page: PageParams, *, conversation_id: uuid.UUID | None, unsent: bool
    ) -> Page[AttachmentRead]:
        rows, total = await self.attachments.list_page(
            reach=reach_of(self.caller),
            conversation_id=conversation_id,
            unsent=unsent,
            limit=page.limit,
            offset=page.offset,
        )
        return Page[AttachmentRead](
            items=[AttachmentRead.model_validate(r) for r in rows], total=total, limit=page.limit, offset=page.offset
        )

    async def open(self, attachment_id: uuid.UUID) -> OpenedAttachment:
        row = await self._readable(attachment_id)
        try:
            content = await self.engines.storage.stream(row.storage_key)
        except ObjectNotFound:
            raise AttachmentNotFound(f"The file of attachment {attachment_id} is gone.", code="file_missing") from None
        return OpenedAttachment(row, content)

    async def for_run(self, ids: Sequence[uuid.UUID]) -> list[Attachment]:
        """The attachments a new message carries, in the order given: each the caller's and not sent before."""
        if not ids:
            return []
        found = {a.id: a for a in await self.attachments.unsent(self.caller.user_id, ids)}
        missing = [i for i in ids if i not in found]
        if missing or len(set(ids)) != len(ids):
            raise InvalidAttachment(
                "Attach only files you uploaded and have not sent yet, each once.",
                extra={
                    "errors": [
                        {
                            "loc": ["body", "attachment_ids", index],
                            "msg": "No unsent attachment of yours with this id (or it is named twice).",
                            "type": "invalid_reference",
                        }
                        for index, i in enumerate(ids)
                        if i not in found or list(ids).index(i) != index
                    ]
                },
            )
        return [found[i] for i in ids]

    async def delete_conversation(self, conversation_id: uuid.UUID) -> None:
        """Delete the caller's conversation with its attachments: their rows go with it (a cascade), their files
        after."""
        conversations = ConversationService(self.session, self.caller)
        conversation = await conversations.owned(conversation_id)
        keys = [a.storage_key for a in await self.attachments.of_conversation(conversation.id)]
        await KnowledgeService(self.session, self.engines, self.caller).delete_conversation_bases(conversation.id)
        await conversations.delete(conversation.id)
        for key in keys:
            with contextlib.suppress(ObjectNotFound):
                await self.engines.storage.delete(key)


# --- preparing a run's attachments ----------------------------------------------------------------------------


@dataclass
class PreparedAttachments:
    """What the agent gets from a message's attachments: text sections for its task, and images for its model."""

    sections: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)  # data URLs
    # The conversation's index and the files it holds, when a document of this message went into it.
    index: tuple[uuid.UUID, list[str]] | None = None

    def task(self, message: str) -> str:
        if not self.sections:
            return message
        return message + "\n\nAttached to this message:\n\n" + "\n\n".join(self.sections)


Emit = Callable[[BaseRunEvent], Awaitable[Any]]


async def prepare_attachments(
    engines: Engines,
    caller: Caller,
    attachments: Sequence[AttachmentRef],
    *,
    accepts_images: bool,
    context_window: int | None,
    emit: Emit,
    conversation_id: uuid.UUID | None = None,
) -> PreparedAttachments:
    """Read each attachment and say how the agent gets it (`attachment.processing`, then `attachment.ready` or
    `attachment.failed`); one that fails fails alone, and the agent is told. A document too long for what is left
    of the budget goes into the conversation's index (when the run has a conversation), searched by a tool."""
    prepared = PreparedAttachments()
    budget = int(context_window * CONTEXT_SHARE) if context_window else DEFAULT_CONTEXT_BUDGET
    for ref in attachments:
        kind = "image" if ref.kind == AttachmentKind.IMAGE else "document"
        await emit(AttachmentProcessing(attachment_id=str(ref.id), name=ref.name, kind=kind))
        try:
            data = await engines.storage.get(ref.storage_key)
            if kind == "image" and accepts_images:
                prepared.images.append(_data_url(ref, data))
                ready = AttachmentReady(attachment_id=str(ref.id), name=ref.name, kind=kind, mode="image")
            elif kind == "image":
                text = await _image_stand_in(engines, caller, ref, data)
                tokens = estimate_tokens(text)
                prepared.sections.append(_section(ref, text))
                ready = AttachmentReady(
                    attachment_id=str(ref.id), name=ref.name, kind=kind, mode="ocr", tokens=tokens, note=OCR_NOTE
                )
            else:
                read = await read_text(engines, data, ref.name, ref.content_type)
                tokens = estimate_tokens(read.text)
                if tokens > budget and conversation_id is not None:
                    prepared.index = await _index(engines, caller, conversation_id, ref, data)
                    prepared.sections.append(
                        f'<attachment name="{_attr(ref.name)}" type="document" mode="index">\n'
                        f"Too long to read whole (about {tokens} tokens): search it with the "
                        f"{ATTACHMENT_SEARCH_TOOL} tool.\n</attachment>"
                    )
                    ready = AttachmentReady(
                        attachment_id=str(ref.id), name=ref.name, kind=kind, mode="index", tokens=tokens
                    )
                    await emit(ready)
                    continue
                if tokens > budget:
                    raise FileUnreadable(
                        "too_large",
                        f"The document is about {tokens} tokens long; at most {budget} fit in the agent's context.",
                    )
                budget -= tokens
                prepared.sections.append(_section(ref, read.text))
                ready = AttachmentReady(
                    attachment_id=str(ref.id), name=ref.name, kind=kind, mode="context", tokens=tokens
                )
        except ObjectNotFound:
            await _failed(prepared, ref, kind, "missing", "The file is no longer in storage.", emit)
        except FileUnreadable as failure:
            await _failed(prepared, ref, kind, failure.code, failure.message, emit)
        except AppError as failure:  # indexing failed (no embedding model, the model's error, a parse failure)
            await _failed(prepared, ref, kind, failure.code, failure.detail, emit)
        else:
            await emit(ready)
    return prepared


async def _index(
    engines: Engines, caller: Caller, conversation_id: uuid.UUID, ref: AttachmentRef, data: bytes
) -> tuple[uuid.UUID, list[str]]:
    """Index the document in the conversation's index and wait until it is searchable: the index and its files."""
    async with engines.sessions() as session:
        service = KnowledgeService(session, engines, caller)
        doc_id = await service.index_conversation_file(conversation_id, ref.name, ref.content_type, data)
        await service.wait_indexed(doc_id)
        index = await service.conversation_index(conversation_id)
    if index is None:
        raise FileUnreadable("not_indexed", "The document was indexed, then deleted.")
    return index


async def _failed(
    prepared: PreparedAttachments, ref: AttachmentRef, kind: Any, code: str, reason: str, emit: Emit
) -> None:
    prepared.sections.append(f'<attachment name="{_attr(ref.name)}" failed="{code}">\n{reason}\n</attachment>')
    await emit(AttachmentFailed(attachment_id=str(ref.id), name=ref.name, kind=kind, code=code, reason=reason))


async def _image_stand_in(engines: Engines, caller: Caller, ref: AttachmentRef, data: bytes) -> str:
    """An image's OCR text and a caption by the tenant's default vision model (each when there is one)."""
    try:
        ocr = (await read_text(engines, data, ref.name, ref.content_type)).text
    except FileUnreadable as failure:
        if failure.code != "empty":
            raise
        ocr = ""
    caption = await _caption(engines, caller, ref, data)
    parts = []
    if caption:
        parts.append(f"Caption: {caption}")
    if ocr:
        parts.append(f"Text in the image (OCR):\n{ocr}")
    if not parts:
        raise FileUnreadable("empty", "No text could be read in the image, and no vision model is set to describe it.")
    return "\n".join(parts)


async def _caption(engines: Engines, caller: Caller, ref: AttachmentRef, data: bytes) -> str | None:
    async with engines.sessions() as session:
        try:
            client, _ = await ProviderService(session, engines, caller).client_and_config(None, ModelKind.VLM)
        except NoDefaultModel:
            return None
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": CAPTION_PROMPT},
            {"type": "image_url", "image_url": {"url": _data_url(ref, data)}},
        ],
    }
    try:
        result = await complete(client, [message], max_tokens=200)
    except ProviderError:
        logger.warning("the vision model could not caption an attachment", extra={"attachment_id": str(ref.id)})
        return None
    return " ".join(result.content.split()) or None


def _section(ref: AttachmentRef, text: str) -> str:
    return f'<attachment name="{_attr(ref.name)}" type="{ref.kind}">\n{text}\n</attachment>'


def _attr(name: str) -> str:
    return name.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _data_url(ref: AttachmentRef, data: bytes) -> str:
    return f"data:{ref.content_type};base64,{base64.b64encode(data).decode('ascii')}"


def _check_image(data: bytes) -> None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except Image.DecompressionBombError:
        raise FileRefused("The image has too many pixels.", code="too_large", status=413) from None
    except Exception:  # Pillow raises many kinds on damaged data (OSError, SyntaxError, struct.error, ...)
        raise FileRefused("The image is damaged or not an image.", code="corrupt_file") from None


def _clean_file_name(name: str) -> str:
    """The base name, without control characters, at most 255 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip()
    return (cleaned or "unnamed")[:255]
