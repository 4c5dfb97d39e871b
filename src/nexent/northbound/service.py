"""The OpenAI-compatible API: published agents offered as models, a chat completion as a run of the agent's published
version (stateless unless the caller asks for a stored conversation), and the run's events turned into OpenAI's
answer or chunks. An `Idempotency-Key` maps to the run its first request started: a retry follows that run again."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.agents.models import Agent
from nexent.agents.service import AgentService
from nexent.core.db import utcnow
from nexent.core.errors import AppError, Conflict, NotFound
from nexent.engines.container import Engines
from nexent.identity.auth import Caller
from nexent.northbound.models import IdempotencyKey
from nexent.northbound.repository import IdempotencyRepository
from nexent.northbound.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    ChatMessage,
    Choice,
    CompletionUsage,
    Model,
    ModelList,
)
from nexent.runtime.builder import Turn
from nexent.runtime.events import Event, follow
from nexent.runtime.execution import NewRun, RunManager
from nexent.runtime.service import RuntimeService

IDEMPOTENCY_TTL = timedelta(hours=24)
# How long a retry waits for the run of its key's first request to be started before answering 409.
_CLAIM_WAIT_SECONDS = 10.0
_NEW_CONVERSATION = "new"
_IN_USE = "A request with this Idempotency-Key is being answered; retry shortly."


class ModelNotFound(NotFound):
    code = "model_not_found"


class UnsupportedParameter(AppError):
    """A parameter of OpenAI's API that an agent cannot honour."""

    status, code = 400, "unsupported_parameter"


class InvalidMessages(AppError):
    status, code = 400, "invalid_messages"


class InvalidConversationHeader(AppError):
    status, code = 400, "invalid_conversation_header"


class IdempotencyKeyReused(AppError):
    """The key was used (within 24 h) for a request with another body."""

    status, code = 422, "idempotency_key_reused"


class IdempotencyKeyInUse(Conflict):
    """The key's first request is still starting its run."""

    code = "idempotency_key_in_use"


class AgentRunFailed(AppError):
    """The agent's run failed: what OpenAI answers when the model fails (500, `server_error`)."""

    status, code = 500, "agent_failed"


def _param(name: str) -> dict[str, Any]:
    return {"param": name}


@dataclass(frozen=True)
class Completion:
    """A chat completion being answered: the run that answers it, and what its answer says of itself."""

    run_id: uuid.UUID
    model: str
    created: int
    conversation_id: uuid.UUID | None
    replayed: bool = False

    @property
    def id(self) -> str:
        return f"chatcmpl-{self.run_id.hex}"


def check_supported(body: ChatCompletionRequest) -> None:
    """Refuse what the platform cannot honour (each with the parameter's name); the rest is ignored."""
    if body.n is not None and body.n != 1:
        raise UnsupportedParameter("Only n=1 is supported: an agent gives one answer.", extra=_param("n"))
    for name in ("tools", "functions"):
        if getattr(body, name):
            raise UnsupportedParameter(
                f"'{name}' is not supported: the agent calls its own tools (attach tools to the agent instead).",
                extra=_param(name),
            )
    for name in ("tool_choice", "function_call"):
        value = getattr(body, name)
        if value is not None and value not in ("none", "auto"):
            raise UnsupportedParameter(f"'{name}' is not supported: the agent picks its own tools.", extra=_param(name))
    if body.logprobs or body.top_logprobs:
        raise UnsupportedParameter("Log probabilities are not available.", extra=_param("logprobs"))
    if body.response_format is not None and body.response_format.get("type", "text") != "text":
        raise UnsupportedParameter("Only response_format type 'text' is supported.", extra=_param("response_format"))
    if body.modalities is not None and set(body.modalities) - {"text"}:
        raise UnsupportedParameter("Only the 'text' modality is supported.", extra=_param("modalities"))
    for name in ("audio", "prediction", "web_search_options"):
        if getattr(body, name) is not None:
            raise UnsupportedParameter(f"'{name}' is not supported.", extra=_param(name))


def split_messages(messages: list[ChatMessage]) -> tuple[str, list[Turn]]:
    """The user's last message and the turns before it. System and developer messages become instructions of the
    calling application in the conversation so far (the agent's own instructions stay in force)."""
    last = messages[-1]
    where = f"messages[{len(messages) - 1}]"
    if last.role != "user":
        raise InvalidMessages("The last message must be the user's (role 'user').", extra=_param(where + ".role"))
    if not last.text.strip():
        raise InvalidMessages("The user's last message is empty.", extra=_param(where + ".content"))
    turns: list[Turn] = []
    for index, message in enumerate(messages[:-1]):
        if message.role in ("tool", "function") or message.tool_calls or message.function_call:
            raise UnsupportedParameter(
                "Tool calls and tool results of the caller's tools are not supported: the agent calls its own.",
                extra=_param(f"messages[{index}]"),
            )
        text = message.text
        if not text:
            continue
        role = "system" if message.role in ("system", "developer") else message.role
        turns.append((role, text))
    return last.text, turns


def fingerprint(body: ChatCompletionRequest, conversation: str | None) -> str:
    """What makes two requests the same one: the body (streaming or not aside: a retry may ask either way)."""
    data = body.model_dump(mode="json", exclude_unset=True, exclude={"stream", "stream_options"})
    text = json.dumps({"body": data, "conversation": conversation}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class NorthboundService:
    """What an OpenAI client does: list the agents it may use, and have one answer a conversation."""

    def __init__(self, session: AsyncSession, engines: Engines, caller: Caller) -> None:
        self.session = session
        self.engines = engines
        self.caller = caller
        self.agents = AgentService(session, caller)

    async def models(self) -> ModelList:
        agents = await self.agents.published_usable()
        return ModelList(data=[_model(agent) for agent in agents])

    async def model(self, name: str) -> Model:
        return _model(await self._agent(name))

    async def _agent(self, name: str) -> Agent:
        found = await self.agents.published_usable(name, limit=1)
        if not found:
            raise ModelNotFound(
                f"The model '{name}' does not exist or you do not have access to it.", extra=_param("model")
            )
        return found[0]

    async def start(
        self,
        manager: RunManager,
        body: ChatCompletionRequest,
        *,
        idempotency_key: str | None,
        conversation: str | None,
    ) -> Completion:
        """Start the run that answers `body` (or, for a retried `idempotency_key`, find the first request's)."""
        check_supported(body)
        message, history = split_messages(body.messages)
        conversation_id = _conversation(conversation)
        if idempotency_key is None:
            agent = await self._agent(body.model)
            run = await self._run(manager, agent, message, history, conversation_id)
            return Completion(run.id, agent.name, int(time.time()), _stored(run))
        owner = f"key:{self.caller.api_key_id}" if self.caller.api_key_id else f"user:{self.caller.user_id}"
        digest = fingerprint(body, conversation)
        since = utcnow() - IDEMPOTENCY_TTL
        existing = await self._find(owner, idempotency_key, since)
        if existing is not None:
            return await self._replay(existing, digest)
        agent = await self._agent(body.model)
        record = IdempotencyKey(
            id=uuid.uuid4(),
            tenant_id=self.caller.tenant_id,
            owner=owner,
            key=idempotency_key,
            fingerprint=digest,
            model=agent.name,
            created=int(time.time()),
            created_at=utcnow(),
        )
        record_id, created = record.id, record.created
        # The claim, committed before the run starts (in sessions of their own: the request's starts the run).
        try:
            async with self._keys() as keys:
                await keys.claim(record, expired_before=since)
        except IntegrityError:  # another request holds the key meanwhile
            existing = await self._find(owner, idempotency_key, since)
            if existing is None:
                raise IdempotencyKeyInUse(
                    "A request with this Idempotency-Key is being answered; retry shortly."
                ) from None
            return await self._replay(existing, digest)
        try:
            run = await self._run(manager, agent, message, history, conversation_id)
        except BaseException:
            async with self._keys() as keys:
                await keys.release(record_id)
            raise
        async with self._keys() as keys:
            await keys.set_run(record_id, run.id, _stored(run))
        return Completion(run.id, agent.name, created, _stored(run))

    @contextlib.asynccontextmanager
    async def _keys(self) -> AsyncIterator[IdempotencyRepository]:
        """The idempotency keys, in a transaction of their own (committed when the block ends)."""
        async with self.engines.sessions() as session, session.begin():
            yield IdempotencyRepository(session, self.caller.tenant_id)

    async def _find(self, owner: str, key: str, since: datetime) -> IdempotencyKey | None:
        async with self._keys() as keys:
            return await keys.find(owner, key, since=since)

    async def _run(
        self,
        manager: RunManager,
        agent: Agent,
        message: str,
        history: list[Turn],
        conversation: uuid.UUID | str | None,
    ) -> NewRun:
        runtime = RuntimeService(self.session, self.engines, self.caller)
        version = agent.published_version
        if conversation is None:
            return await runtime.start_stateless(manager, agent.id, message, history, version)
        # A stored conversation is the context: the earlier messages of the request are not read again.
        existing = conversation if isinstance(conversation, uuid.UUID) else None  # else "new"
        return await runtime.start(manager, agent.id, message, existing, version)

    async def _replay(self, record: IdempotencyKey, digest: str) -> Completion:
        if record.fingerprint != digest:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was used for a request with another body; use a new key for a new request.",
                extra=_param("Idempotency-Key"),
            )
        waited = 0.0
        found: IdempotencyKey | None = record
        while found is not None and found.run_id is None:  # the first request is still starting its run
            if waited >= _CLAIM_WAIT_SECONDS:
                break
            await asyncio.sleep(0.1)
            waited += 0.1
            found = await self._find(record.owner, record.key, record.created_at - timedelta(seconds=1))
        if found is None or found.run_id is None:  # its run could not start, or it takes too long
            raise IdempotencyKeyInUse(_IN_USE)
        return Completion(found.run_id, found.model, found.created, found.conversation_id, replayed=True)

    async def answer(self, completion: Completion) -> ChatCompletion:
        """The whole answer, once the run has ended (a failed run raises `AgentRunFailed`)."""
        translator = ChunkTranslator(completion, include_usage=False)
        async for event in follow(self.engines, self.caller.tenant_id, completion.run_id, after=0):
            if event is not None:
                translator.feed(event)
        if translator.error is not None:
            raise AgentRunFailed(translator.error["message"], code=translator.error["code"])
        return ChatCompletion(
            id=completion.id,
            created=completion.created,
            model=completion.model,
            choices=[
                Choice(
                    message=AssistantMessage(content=translator.answer),
                    finish_reason=translator.finish_reason,
                )
            ],
            usage=translator.usage,
        )

    async def chunks(self, completion: Completion, *, include_usage: bool) -> AsyncIterator[str]:
        """The answer as Server-Sent Events in OpenAI's streaming format, ending with `data: [DONE]` (or, when
        the run fails, with an error event, as OpenAI ends a stream that fails)."""
        translator = ChunkTranslator(completion, include_usage=include_usage)
        yield _sse(translator.first())
        async for event in follow(self.engines, self.caller.tenant_id, completion.run_id, after=0):
            if event is None:
                yield ": keep-alive\n\n"
                continue
            for chunk in translator.feed(event):
                yield _sse(chunk)
        if translator.error is not None:
            return
        yield "data: [DONE]\n\n"


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"


def _model(agent: Agent) -> Model:
    return Model(id=agent.name, created=int(agent.created_at.timestamp()), owned_by="nexent")


def _conversation(header: str | None) -> uuid.UUID | str | None:
    if header is None or not header.strip():
        return None
    value = header.strip()
    if value.lower() == _NEW_CONVERSATION:
        return _NEW_CONVERSATION
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidConversationHeader(
            "X-Nexent-Conversation must be 'new' or the id of one of your conversations.",
            extra=_param("X-Nexent-Conversation"),
        ) from None


def _stored(run: NewRun) -> uuid.UUID | None:
    return run.conversation_id


class ChunkTranslator:
    """A run's events as OpenAI's chunks. The top-level agent's text streams as it comes (text it writes before
    calling a tool too, separated from what follows by a blank line); whatever of the final answer was not
    streamed is sent at the end. `answer` (the non-streaming content) is the final answer alone."""

    def __init__(self, completion: Completion, *, include_usage: bool) -> None:
        self.completion = completion
        self.include_usage = include_usage
        self.streamed = False  # any text sent yet
        self.step_text = ""  # the text sent in the current step
        self.separate = False  # a blank line before the next text (an earlier step's text was not the answer)
        self.answer: str | None = None
        self.finish_reason: Any = "stop"
        self.usage = CompletionUsage(prompt_tokens=0, completion_tokens=0, total_tokens=0)
        self.error: dict[str, str] | None = None

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.completion.id,
            "object": "chat.completion.chunk",
            "created": self.completion.created,
            "model": self.completion.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def first(self) -> dict[str, Any]:
        return self._chunk({"role": "assistant", "content": "", "refusal": None})

    def _text(self, text: str) -> list[dict[str, Any]]:
        if not text:
            return []
        if self.separate:
            text, self.separate = "\n\n" + text, False
        self.streamed = True
        self.step_text += text
        return [self._chunk({"content": text})]

    def feed(self, event: Event) -> list[dict[str, Any]]:
        data = event.data
        top_level = data.get("parent_call_id") is None
        if event.type == "message.delta" and top_level:
            return self._text(str(data.get("text") or ""))
        if event.type == "step.completed" and top_level and data.get("kind") == "action":
            if not data.get("is_final_answer"):
                self.separate = self.separate or bool(self.step_text)
                self.step_text = ""
            return []
        if event.type == "run.completed":
            return self._end(str(data.get("answer") if data.get("answer") is not None else ""), data)
        if event.type == "run.stopped":
            return self._end(None, data)
        if event.type == "run.failed":
            self._usage(data)
            code = str(data.get("code") or "agent_failed")
            message = str(data.get("error") or data.get("message") or "The agent's run failed.")
            self.error = {"code": code, "message": message}
            return [{"error": {"message": message, "type": "server_error", "param": None, "code": code}}]
        return []

    def _usage(self, data: dict[str, Any]) -> None:
        usage = data.get("usage") or {}
        prompt, completion = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
        self.usage = CompletionUsage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        )

    def _end(self, answer: str | None, data: dict[str, Any]) -> list[dict[str, Any]]:
        self._usage(data)
        self.answer = answer if answer is not None else ""
        self.finish_reason = "length" if data.get("state") == "max_steps" else "stop"
        chunks: list[dict[str, Any]] = []
        if answer and answer != self.step_text:
            # What of the answer the stream has not carried yet (all of it when the step's text was something else).
            rest = answer[len(self.step_text) :] if answer.startswith(self.step_text) else answer
            if rest is answer and self.step_text:
                self.separate = True
            chunks += self._text(rest)
        chunks.append(self._chunk({}, self.finish_reason))
        if self.include_usage:
            chunks.append({**self._chunk({}), "choices": [], "usage": self.usage.model_dump()})
        return chunks
