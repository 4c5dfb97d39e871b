"""A tenant's remote (A2A) agents: adding them by the URL of their card, changing and removing them, checking them,
and offering them to local agents as sub-agents through the tool-source seam (`RemoteAgentSource`, kind `a2a`,
wired in `nexent.wiring`): a remote agent is a tool `<name>__agent` taking a `task`, snapshotted by published
versions with its card's name, description and skills, and refused deletion while a version uses it."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.a2a_client import connection
from nexent.a2a_client.connection import A2AFailure, Remote
from nexent.a2a_client.models import RemoteAgent, RemoteStatus
from nexent.a2a_client.repository import RemoteAgentRepository
from nexent.a2a_client.schemas import (
    RemoteAgentCard,
    RemoteAgentCreate,
    RemoteAgentRead,
    RemoteAgentUpdate,
    RemoteCheckResult,
    Skill,
)
from nexent.core.db import utcnow
from nexent.core.errors import AppError, BadRequest, Conflict, NotFound
from nexent.core.netpolicy import AddressPolicy
from nexent.core.pagination import Page, PageParams
from nexent.core.references import refuse_if_used
from nexent.engines.container import Engines
from nexent.identity.auth import Caller
from nexent.identity.services.audit import record
from nexent.identity.services.tenants import tenant_endpoint_policy
from nexent.runtime import event_types
from nexent.tools.registry import ToolContext, ToolError, ToolResult
from nexent.tools.sources import SOURCE_NAME_RE, ExternalTool, SourceRef, external_name

RESOURCE = "remote_agent"
KIND = "a2a"
TOOL_SUFFIX = "agent"
PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "task": {"type": "string", "description": "What the remote agent should do, with everything it needs."}
    },
    "required": ["task"],
}


class RemoteAgentNotFound(NotFound):
    code = "remote_agent_not_found"


class RemoteUrlNotAllowed(BadRequest):
    code = "remote_agent_url_not_allowed"


class RemoteCardInvalid(AppError):
    """The card could not be fetched or is not an A2A 1.0 card (its `status` says which)."""

    status, code = 422, "remote_agent_card_invalid"


class RemoteNameTaken(Conflict):
    code = "remote_agent_name_taken"


async def outbound_policy(session: AsyncSession, engines: Engines, tenant_id: uuid.UUID) -> AddressPolicy:
    """The private addresses a tenant's remote agents may be on: the platform's and the tenant's allow lists (those
    of model endpoints), or every address when private fetches are allowed."""
    if engines.settings.allow_private_fetch:
        return AddressPolicy(allow_all=True)
    return engines.private_endpoints | await tenant_endpoint_policy(session, engines.process, tenant_id)


class RemoteAgentService:
    """The remote agents of the caller's tenant."""

    def __init__(self, session: AsyncSession, engines: Engines, caller: Caller) -> None:
        self.session = session
        self.engines = engines
        self.caller = caller
        self.agents = RemoteAgentRepository(session, caller.tenant_id)

    async def page(self, params: PageParams) -> Page[RemoteAgentRead]:
        rows, total = await self.agents.page(params.limit, params.offset)
        return Page(items=[read(r) for r in rows], total=total, limit=params.limit, offset=params.offset)

    async def get(self, agent_id: uuid.UUID) -> RemoteAgentRead:
        return read(await self._agent(agent_id))

    async def card(self, agent_id: uuid.UUID) -> RemoteAgentCard:
        agent = await self._agent(agent_id)
        return RemoteAgentCard(card=agent.card, fetched_at=agent.card_fetched_at)

    async def _agent(self, agent_id: uuid.UUID) -> RemoteAgent:
        agent = await self.agents.get(agent_id)
        if agent is None:
            raise RemoteAgentNotFound(f"No remote agent {agent_id} in this tenant.")
        return agent

    async def create(self, data: RemoteAgentCreate) -> RemoteAgentRead:
        policy = await self._policy()
        card = await self._fetch(data.card_url, policy)
        headers = _headers(card, data.api_key, data.token)
        name = data.name or _name_of(card.name)
        if await self.agents.name_taken(name):
            raise RemoteNameTaken(f"A remote agent named {name!r} exists; give another `name`.")
        agent = RemoteAgent(
            tenant_id=self.caller.tenant_id,
            name=name,
            card_url=data.card_url,
            card=connection.card_json(card),
            card_fetched_at=utcnow(),
            enabled=data.enabled,
            timeout_seconds=data.timeout_seconds,
            created_by=self.caller.user_id,
        )
        self._set_headers(agent, headers)
        try:
            async with self.session.begin_nested():
                await self.agents.add(agent)
        except IntegrityError:
            raise RemoteNameTaken(f"A remote agent named {name!r} exists.") from None
        await record(self.session, self.caller, "remote_agent.created", RESOURCE, agent.id, name=name)
        return read(agent)

    async def update(self, agent_id: uuid.UUID, data: RemoteAgentUpdate) -> RemoteAgentRead:
        agent = await self._agent(agent_id)
        fields = data.model_fields_set
        card = connection.card_from_json(agent.card)
        if data.card_url is not None and data.card_url != agent.card_url:
            card = await self._fetch(data.card_url, await self._policy())
            agent.card_url, agent.card, agent.card_fetched_at = data.card_url, connection.card_json(card), utcnow()
        if data.name is not None and data.name != agent.name:
            if await self.agents.name_taken(data.name, except_id=agent.id):
                raise RemoteNameTaken(f"A remote agent named {data.name!r} exists.")
            agent.name = data.name
        if data.enabled is not None:
            agent.enabled = data.enabled
        if data.timeout_seconds is not None:
            agent.timeout_seconds = data.timeout_seconds
        if fields & {"api_key", "token"}:
            current = self._secrets(agent)
            kept_key = {k: v for k, v in current.items() if k.lower() != "authorization"}
            kept_token = {k: v for k, v in current.items() if k.lower() == "authorization"}
            if "api_key" in fields:
                kept_key = _headers(card, data.api_key, None)
            if "token" in fields:
                kept_token = _headers(card, None, data.token)
            self._set_headers(agent, {**kept_key, **kept_token})
        agent.status, agent.status_detail = RemoteStatus.UNKNOWN, None
        agent.updated_at = utcnow()
        try:
            async with self.session.begin_nested():
                await self.session.flush()
        except IntegrityError:
            raise RemoteNameTaken(f"A remote agent named {agent.name!r} exists.") from None
        await record(self.session, self.caller, "remote_agent.updated", RESOURCE, agent.id, fields=sorted(fields))
        return read(agent)

    async def delete(self, agent_id: uuid.UUID) -> None:
        agent = await self._agent(agent_id)
        await refuse_if_used(self.session, self.caller.tenant_id, "tool_source", agent.id)
        await self.agents.delete(agent)
        await record(self.session, self.caller, "remote_agent.deleted", RESOURCE, agent.id, name=agent.name)

    async def check(self, agent_id: uuid.UUID) -> RemoteCheckResult:
        """Fetch and validate the card again (stored when valid), then make an authenticated request that changes
        nothing; the classified status is stored."""
        agent = await self._agent(agent_id)
        started = time.perf_counter()
        timeout = self.engines.settings.a2a_card_timeout_seconds
        try:
            remote = await refreshed(self.session, self.engines, agent, seconds=timeout, force=True)
            await connection.probe(remote)
        except A2AFailure as failure:
            agent.status, agent.status_detail = failure.status, failure.message
        else:
            agent.status, agent.status_detail = RemoteStatus.OK, None
        latency = (time.perf_counter() - started) * 1000
        agent.checked_at = utcnow()
        await self.session.flush()
        return RemoteCheckResult(
            status=RemoteStatus(agent.status),
            detail=agent.status_detail,
            latency_ms=round(latency, 1),
            agent=read(agent),
        )

    # --- helpers ------------------------------------------------------------------------------------------------

    async def _policy(self) -> AddressPolicy:
        return await outbound_policy(self.session, self.engines, self.caller.tenant_id)

    async def _fetch(self, url: str, policy: AddressPolicy) -> Any:
        try:
            return await connection.fetch_card(url, policy, {}, self.engines.settings.a2a_card_timeout_seconds)
        except A2AFailure as failure:
            if failure.status == RemoteStatus.UNREACHABLE and "not allowed" in failure.message:
                raise RemoteUrlNotAllowed(
                    f"{failure.message} The platform operator can allow private addresses "
                    "(NEXENT_PRIVATE_ENDPOINTS_ALLOW)."
                ) from None
            raise RemoteCardInvalid(
                f"The agent card at {url} cannot be used ({failure.status.value}): {failure.message}",
                extra={"card_status": failure.status.value},
            ) from None

    def _secrets(self, agent: RemoteAgent) -> dict[str, str]:
        return decrypt(self.engines, agent.headers_encrypted)

    def _set_headers(self, agent: RemoteAgent, headers: dict[str, str]) -> None:
        agent.headers_encrypted = self.engines.keys.box.encrypt(json.dumps(headers)) if headers else None
        agent.header_names = sorted(headers)


def _headers(card: Any, api_key: Any, token: Any) -> dict[str, str]:
    try:
        return connection.credential_headers(
            card,
            api_key.get_secret_value() if api_key is not None else None,
            token.get_secret_value() if token is not None else None,
        )
    except ValueError as exc:
        raise BadRequest(f"The API key cannot be sent: {exc}.", code="remote_agent_credentials_invalid") from None


def _name_of(card_name: str) -> str:
    """A source name from the card's name (`Echo Agent` -> `echo_agent`)."""
    name = re.sub(r"[^a-z0-9]+", "_", card_name.lower()).strip("_")[:30].strip("_")
    if not name or not name[0].isalpha():
        name = f"agent_{name}"[:30].strip("_")
    return name if SOURCE_NAME_RE.match(name) else "remote_agent"


def decrypt(engines: Engines, encrypted: str | None) -> dict[str, str]:
    if not encrypted:
        return {}
    data = json.loads(engines.keys.box.decrypt(encrypted))
    return {str(k): str(v) for k, v in data.items()}


async def refreshed(
    session: AsyncSession, engines: Engines, agent: RemoteAgent, *, seconds: float, force: bool = False
) -> Remote:
    """The agent ready to be called: its card fetched again when `force` or older than the setting (a failed
    refresh of a card that is only old keeps the cached one), its credentials decrypted (in memory only)."""
    policy = await outbound_policy(session, engines, agent.tenant_id)
    headers = decrypt(engines, agent.headers_encrypted)
    max_age = timedelta(seconds=engines.settings.a2a_card_max_age_seconds)
    stale = agent.card_fetched_at is None or utcnow() - agent.card_fetched_at > max_age
    card = None
    if force or stale or not agent.card:
        try:
            card = await connection.fetch_card(agent.card_url, policy, headers, seconds)
        except A2AFailure:
            if force or not agent.card:
                raise
        else:
            agent.card, agent.card_fetched_at = connection.card_json(card), utcnow()
    if card is None:
        card = connection.card_from_json(agent.card)
    return Remote(name=agent.name, card=card, headers=headers, policy=policy, timeout=agent.timeout_seconds)


def skills_of(card: dict[str, Any]) -> list[Skill]:
    return [
        Skill(
            id=str(s.get("id") or ""),
            name=str(s.get("name") or ""),
            description=str(s.get("description") or ""),
            tags=[str(t) for t in s.get("tags") or []],
            examples=[str(e) for e in s.get("examples") or []],
        )
        for s in card.get("skills") or []
        if isinstance(s, dict)
    ]


def read(agent: RemoteAgent) -> RemoteAgentRead:
    card = agent.card or {}
    parsed = connection.card_from_json(card) if card else None
    return RemoteAgentRead(
        id=agent.id,
        name=agent.name,
        tool_name=external_name(agent.name, TOOL_SUFFIX),
        card_url=agent.card_url,
        agent_name=str(card.get("name") or ""),
        description=str(card.get("description") or ""),
        version=str(card.get("version") or ""),
        streaming=bool((card.get("capabilities") or {}).get("streaming")),
        skills=skills_of(card),
        auth=connection.declared_auth(parsed) if parsed is not None else [],
        header_names=list(agent.header_names),
        enabled=agent.enabled,
        timeout_seconds=agent.timeout_seconds,
        status=RemoteStatus(agent.status),
        status_detail=agent.status_detail,
        checked_at=agent.checked_at,
        card_fetched_at=agent.card_fetched_at,
        created_at=agent.created_at,
        updated_at=agent.updated_at,
    )


# --- remote agents as sub-agents (the tool source) -----------------------------------------------------------------


def describe(card: dict[str, Any]) -> str:
    """What the model reads of a remote agent: who it is and its skills (from the card)."""
    lines = [
        f"Remote agent {card.get('name') or ''} (A2A): {str(card.get('description') or '').strip()[:1500]}",
        "Give it a task in plain words; it answers in text.",
    ]
    skills = skills_of(card)
    if skills:
        lines.append("Its skills:")
        lines.extend(f"- {s.name}: {s.description.strip()[:300]}" for s in skills[:20])
    return "\n".join(lines)


class RemoteAgentSource:
    """The tenant's remote agents as sub-agents of local agents (`nexent.tools.sources`, kind `a2a`): one tool
    per enabled remote agent, described from its cached card; a call sends the task over A2A and shows the
    answer as the nested events of a sub-agent (`parent_call_id`: the call's id)."""

    kind = KIND

    async def list_tools(self, session: AsyncSession, tenant_id: uuid.UUID) -> list[ExternalTool]:
        return [
            ExternalTool(
                name=external_name(agent.name, TOOL_SUFFIX),
                description=describe(agent.card),
                parameters=PARAMETERS,
                source=SourceRef(kind=KIND, id=agent.id, name=agent.name),
                remote_name=str(agent.card.get("name") or agent.name),
                extra={
                    "card_url": agent.card_url,
                    "skills": [s.model_dump() for s in skills_of(agent.card)],
                    "version": str(agent.card.get("version") or ""),
                },
            )
            for agent in await RemoteAgentRepository(session, tenant_id).enabled()
            if agent.card
        ]

    async def call(self, tool: ExternalTool, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        engines = context.engines
        if engines is None or tool.source.id is None:
            raise ToolError(f"The remote agent {tool.name} cannot be called here.", "unknown_tool")
        async with engines.sessions() as session, session.begin():
            agent = await RemoteAgentRepository(session, context.tenant_id).get(tool.source.id)
            if agent is None or not agent.enabled:
                raise ToolError(f"The remote agent of {tool.name} was removed or disabled.", "remote_agent_gone")
            timeout = context.timeout(min(agent.timeout_seconds, engines.settings.a2a_card_timeout_seconds))
            try:
                remote = await refreshed(session, engines, agent, seconds=timeout)
            except A2AFailure as failure:
                agent.status, agent.status_detail, agent.checked_at = failure.status, failure.message, utcnow()
                raise ToolError(f"Remote agent {agent.name}: {failure.message}", failure.code) from None
        remote.timeout = context.timeout(remote.timeout)
        label = remote.card.name or remote.name
        emit, parent = context.emit, context.parent_call_id

        def on_text(text: str, status: bool) -> None:
            if emit is None:
                return
            if status:
                emit(event_types.ThinkingDelta(agent=label, parent_call_id=parent, text=text))
            else:
                emit(event_types.MessageDelta(agent=label, parent_call_id=parent, text=text))

        try:
            outcome = await connection.send(remote, str(arguments["task"]), on_text)
        except A2AFailure as failure:
            await _note_status(engines, context.tenant_id, tool.source.id, failure.status, failure.message)
            raise ToolError(f"Remote agent {remote.name}: {failure.message}", failure.code) from None
        if outcome.state in {"failed", "rejected", "canceled"}:
            detail = f": {outcome.answer[:2000]}" if outcome.answer else ""
            raise ToolError(
                f"Remote agent {remote.name} ended its task as {outcome.state}{detail}", "remote_agent_failed"
            )
        answer = outcome.answer
        if outcome.state in {"input_required", "auth_required"}:
            answer = f"(The remote agent stopped and asks for more: {outcome.state}.) {answer}".strip()
        if emit is not None:
            emit(event_types.AgentCompleted(agent=label, parent_call_id=parent, answer=answer))
        await _note_status(engines, context.tenant_id, tool.source.id, RemoteStatus.OK, None)
        return ToolResult(output=answer, data={"task_id": outcome.task_id, "state": outcome.state})


async def _note_status(
    engines: Engines, tenant_id: uuid.UUID, agent_id: uuid.UUID, status: RemoteStatus, detail: str | None
) -> None:
    """Remember what a run found (the list shows it), without failing the call."""
    try:
        async with engines.sessions() as session, session.begin():
            agent = await RemoteAgentRepository(session, tenant_id).get(agent_id)
            if agent is not None and (agent.status, agent.status_detail) != (status, detail):
                agent.status, agent.status_detail, agent.checked_at = status, detail, utcnow()
    except Exception:  # noqa: S110 - only a note; the call's own error is what matters
        pass


remote_agent_source = RemoteAgentSource()
