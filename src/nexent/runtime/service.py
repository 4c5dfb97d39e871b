"""Runs as a caller sees them: starting one (its record stored, its execution handed to the run manager),
listing and reading them, stopping one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.agents.schemas import VersionRef
from nexent.agents.service import AgentService
from nexent.agents.versions import AgentSpec, spec_for_run
from nexent.core.batch import Write, writer_for
from nexent.core.db import utcnow
from nexent.core.errors import NotFound
from nexent.core.pagination import Page, PageParams
from nexent.engines.container import Engines
from nexent.identity.auth import Caller
from nexent.providers.models import ModelKind
from nexent.providers.service import ProviderService
from nexent.runtime.attachments import AttachmentRef, AttachmentService
from nexent.runtime.builder import ModelSnapshot, Turn
from nexent.runtime.conversations import (
    ConversationBusy,
    ConversationService,
    message_row,
    provisional_title,
    reach_of,
)
from nexent.runtime.execution import NewRun, RunManager, cancel_key
from nexent.runtime.models import FINISHED_RUN_STATUSES, Attachment, Conversation, Message, Run, RunStatus
from nexent.runtime.repository import AttachmentRepository, RunEventRepository, RunRepository, no_unfinished_run
from nexent.runtime.schemas import RunRead, RunTimeline
from nexent.runtime.timeline import TIMELINE_EVENTS, LoggedEvent, build_timeline


class RunNotFound(NotFound):
    code = "run_not_found"


# An agent with its model and the model's endpoints, in one query (built once; run with the tenant and agent ids).
class RuntimeService:
    """What a caller does with runs; a caller sees only their own, and an API key limited to some agents only
    those of these agents (any other answers 404, as an absent one)."""

    def __init__(self, session: AsyncSession, engines: Engines, caller: Caller) -> None:
        self.session = session
        self.engines = engines
        self.caller = caller
        self.runs = RunRepository(session, caller.tenant_id)
        self.conversations = ConversationService(session, caller)

    async def start(
        self,
        manager: RunManager,
        agent_id: uuid.UUID,
        message: str,
        conversation_id: uuid.UUID | None,
        version: VersionRef | None = None,
        attachment_ids: Sequence[uuid.UUID] = (),
    ) -> NewRun:
        """Start a run: its record (the user's message and a queued run, with the conversation) is committed
        by the process's batch writer while the run already builds its agent and calls the model; this returns once
        the record is stored (raising if it could not be: the run then stops without a trace)."""
        run, record = await self.prepare(
            manager, agent_id, message, conversation_id, version=version, attachment_ids=attachment_ids
        )
        await self._launch(manager, run, record)
        return run

    async def start_stateless(
        self,
        manager: RunManager,
        agent_id: uuid.UUID,
        message: str,
        history: Sequence[Turn],
        version: VersionRef | None = None,
    ) -> NewRun:
        """Start a run outside any conversation (the OpenAI-compatible API): the agent's version is picked and
        checked as by `start`, only the run's record is stored (no conversation, no messages), and the agent gets
        `history` (earlier `(role, content)` turns, oldest first) as the conversation so far."""
        manager.check_capacity()
        agent, model = await self._agent_and_model(agent_id, version)
        run_id, write = uuid.uuid4(), Write()
        write.insert(Run, self._run_row(manager, run_id, agent, None, message))
        await self.session.commit()  # the reads are done
        run = NewRun(
            id=run_id,
            conversation_id=None,
            agent=agent,
            model=model,
            message=message,
            new_conversation=False,
            history=tuple(history),
        )
        await self._launch(manager, run, write)
        return run

    async def regenerate(self, manager: RunManager, conversation_id: uuid.UUID) -> NewRun:
        """Run the conversation's agent again on its last user message: a new run whose answer replaces the last
        turn (its messages leave the conversation, and are not fed back to the model; the old run stays readable).
        Refused while a run of the conversation is unfinished, checked again when the new run is stored (a claim:
        of two regenerations at once, one starts)."""
        conversation, agent_id, turn = await self.conversations.last_turn(conversation_id)
        seen = conversation.updated_at  # every run started in the conversation moves it
        # The agent as the replaced answer had it: the same version, or its draft (in the studio's test chat).
        replaced = await self.runs.get(turn[0].run_id) if turn[0].run_id is not None else None
        version: VersionRef | None = None
        if replaced is not None:
            version = replaced.agent_version if replaced.agent_version is not None else "draft"
        # The replaced message's attachments go with the new one.
        carried = await AttachmentRepository(self.session, self.caller.tenant_id).of_message(turn[0].id)
        run, record = await self.prepare(
            manager, agent_id, turn[0].content, conversation.id, replacing=turn, version=version, carried=carried
        )
        # Stored only if no run started in the conversation since it was read (the claims of one batch all run
        # before their rows go in, so the unfinished-run check alone would let two of one batch through).
        record.claim(
            update(Conversation)
            .where(
                Conversation.tenant_id == self.caller.tenant_id,
                Conversation.id == conversation.id,
                Conversation.updated_at == seen,
                no_unfinished_run(self.caller.tenant_id, conversation.id),
            )
            .values(updated_at=utcnow())
        )
        await self._launch(manager, run, record)
        return run

    async def _launch(self, manager: RunManager, run: NewRun, record: Write) -> None:
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        manager.submit(self.caller, run, stored=stored)
        commit = asyncio.ensure_future(writer_for(self.engines).store(record))
        commit.add_done_callback(lambda done: _settle(stored, done, record))
        # Shielded: a client that goes away now does not undo the commit (the run goes on, as it would later).
        await asyncio.shield(commit)
        if record.claimed is False:
            raise _busy()

    async def prepare(
        self,
        manager: RunManager,
        agent_id: uuid.UUID,
        message: str,
        conversation_id: uuid.UUID | None,
        *,
        replacing: Sequence[Message] = (),
        version: VersionRef | None = None,
        attachment_ids: Sequence[uuid.UUID] = (),
        carried: Sequence[Attachment] = (),
    ) -> tuple[NewRun, Write]:
        """Read what a new run needs and build its record (not stored yet); `replacing` are messages of the
        conversation the run replaces (deleted with the record); `version` the agent's version to run (see
        `agents.versions.spec_for_run`)."""
        manager.check_capacity()
        # Loaded here, in the request's session: the run then needs no database read to start.
        agent, model = await self._agent_and_model(agent_id, version)
        attachments = [
            *carried,
            *await AttachmentService(self.session, self.engines, self.caller).for_run(attachment_ids),
        ]
        tenant_id, now = self.caller.tenant_id, utcnow()
        new_conversation = conversation_id is None
        write = Write()
        if conversation_id is not None:
            conversation = await self.conversations.to_continue(conversation_id, agent.id)
            write.execute(update(Conversation).where(Conversation.id == conversation.id).values(updated_at=now))
        else:
            conversation_id = uuid.uuid4()
            write.insert(
                Conversation,
                {
                    "id": conversation_id,
                    "tenant_id": tenant_id,
                    "user_id": self.caller.user_id,
                    "agent_id": agent.id,
                    "title": provisional_title(message),
                    "summary": None,
                    "summarized_messages": 0,
                    "created_at": now,
                    "updated_at": now,
                },
            )
        run_id = uuid.uuid4()
        write.insert(Run, self._run_row(manager, run_id, agent, conversation_id, message, now))
        user_message = message_row(tenant_id, conversation_id, run_id, "user", message, now)
        write.insert(Message, user_message)
        if attachments:  # after the inserts (a batch inserts first): the conversation exists by then
            write.execute(
                update(Attachment)
                .where(
                    Attachment.tenant_id == tenant_id,
                    Attachment.id.in_(sorted(a.id for a in attachments)),
                    # Not taken meanwhile by another message (a regenerated turn's are in this conversation).
                    Attachment.conversation_id.is_(None) | (Attachment.conversation_id == conversation_id),
                )
                .values(conversation_id=conversation_id, message_id=user_message["id"])
            )
        replaced = frozenset(m.id for m in replacing)
        if replaced:
            write.execute(
                delete(Message).where(
                    Message.tenant_id == tenant_id,
                    Message.conversation_id == conversation_id,
                    Message.id.in_(sorted(replaced)),
                )
            )
        # The reads are done: the request's connection goes back to the pool while the run starts.
        await self.session.commit()
        run = NewRun(
            id=run_id,
            conversation_id=conversation_id,
            agent=agent,
            model=model,
            message=message,
            new_conversation=new_conversation,
            replaced_messages=replaced,
            attachments=tuple(AttachmentRef.of(a) for a in attachments),
        )
        return run, write

    def _run_row(
        self,
        manager: RunManager,
        run_id: uuid.UUID,
        agent: AgentSpec,
        conversation_id: uuid.UUID | None,
        message: str,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """A queued run's `runs` row with every column (rows of one batch are inserted with one statement)."""
        return {
            "id": run_id,
            "tenant_id": self.caller.tenant_id,
            "agent_id": agent.id,
            "agent_version": agent.version,
            "conversation_id": conversation_id,
            "user_id": self.caller.user_id,
            "status": RunStatus.QUEUED.value,
            "input": message,
            "final_answer": None,
            "error_code": None,
            "error_message": None,
            "usage": {},
            "created_at": now or utcnow(),
            "started_at": None,
            "finished_at": None,
            "owner_id": manager.owner_id,
        }

    async def _agent_and_model(
        self, agent_id: uuid.UUID, wanted: VersionRef | None
    ) -> tuple[AgentSpec, ModelSnapshot | None]:
        """What the run runs (the agent's draft or a version, if the caller may use it, as
        `AgentService.get_usable`), and its model with endpoints (the tenant's default model when a draft names
        none; None when there is no such model: the run reports it). A caller who sees every agent of the tenant
        gets all of it in one query."""
        agents = AgentService(self.session, self.caller)
        providers = ProviderService(self.session, self.engines, self.caller)
        if not agents.sees_all:  # shared agents only: the access check is a query of its own
            granted = await agents.get_usable(agent_id)
            version = await agents.version_for_run(agent_id, wanted)
            spec = spec_for_run(granted.resource, version, wanted, can_edit=granted.can_edit)
            return spec, await providers.config_with_endpoints(spec.model_id, ModelKind.LLM)
        number = 0 if wanted == "draft" else wanted  # 0: no version (the draft's model)
        agent, version, config, endpoints = await agents.with_model(agent_id, number)
        spec = spec_for_run(agent, version, wanted, can_edit=True)  # their role edits every agent
        if config is not None:
            return spec, (config, endpoints)
        if spec.model_id is None:
            return spec, await providers.config_with_endpoints(None, ModelKind.LLM)
        return spec, None

    async def _run(self, run_id: uuid.UUID) -> Run:
        run = await self.runs.reachable(run_id, reach_of(self.caller))
        if run is None:
            raise RunNotFound(f"No run {run_id} of yours.")
        return run

    async def list_runs(
        self, page: PageParams, *, conversation_id: uuid.UUID | None, status: RunStatus | None
    ) -> Page[RunRead]:
        rows, total = await self.runs.list_page(
            reach=reach_of(self.caller),
            conversation_id=conversation_id,
            status=status,
            limit=page.limit,
            offset=page.offset,
        )
        return Page[RunRead](
            items=[RunRead.model_validate(r) for r in rows], total=total, limit=page.limit, offset=page.offset
        )

    async def get(self, run_id: uuid.UUID) -> RunRead:
        return RunRead.model_validate(await self._run(run_id))

    async def timeline(self, run_id: uuid.UUID) -> RunTimeline:
        """The run's steps, model calls and tool calls with their durations and tokens, from its stored events."""
        run = await self._run(run_id)
        events = await RunEventRepository(self.session, self.caller.tenant_id).of_types(run.id, TIMELINE_EVENTS)
        return build_timeline(run.id, (LoggedEvent(e.type, e.data, e.created_at) for e in events))

    async def stop(self, run_id: uuid.UUID) -> RunRead:
        """Ask the process executing the run to stop it; it ends with `run.stopped` within about a second."""
        run = await self._run(run_id)
        if run.status not in FINISHED_RUN_STATUSES:
            await self.engines.bus.request_cancel(cancel_key(run.id))
        return RunRead.model_validate(run)


def _busy() -> ConversationBusy:
    return ConversationBusy(
        "Another run of this conversation started meanwhile (or it changed); try again once that run has ended."
    )


def _settle(future: asyncio.Future[None], done: asyncio.Future[None], record: Write) -> None:
    if future.done():
        return
    if done.cancelled():
        future.cancel()
    elif (error := done.exception()) is not None:
        future.set_exception(error)
    elif record.claimed is False:  # not stored: the run stops without a trace
        future.set_exception(_busy())
    else:
        future.set_result(None)
