"""The A2A server at `/a2a/{agent_id}` (a2a-sdk's JSON-RPC and HTTP+JSON bindings, see docs/a2a.md).

- `GET /a2a/{id}/.well-known/agent-card.json`: the card of an exposed, published agent (no credentials needed:
  it declares how to authenticate).
- `POST /a2a/{id}` and `/a2a/{id}/` (JSON-RPC; the test kit posts to the card's URL with a trailing slash, which
  must not redirect), `/a2a/{id}/rest/...` (HTTP+JSON).
- `A2aGate`, in front of the SDK's routes: finds the exposed agent (404 `agent_not_found` otherwise, also for agents
  not exposed), checks the API key for `api_key` exposure (401/403/429 problems as elsewhere), rate-limits public
  callers by client address, and puts the request's `A2aRequest` where the SDK's call context reads it.
"""

from __future__ import annotations

import uuid
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.server.routes import create_jsonrpc_routes, create_rest_routes
from a2a.server.routes.common import DefaultServerCallContextBuilder
from fastapi import FastAPI
from starlette._utils import get_route_path
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from nexent.a2a_server.service import (
    STATE_KEY,
    A2aRequest,
    RunExecutor,
    agent_card,
    caller_scope,
    capabilities_card,
    public_caller,
    task_store,
)
from nexent.agents.models import A2aExposure
from nexent.agents.service import A2aAgent, exposed_agent
from nexent.core.errors import AppError, NotFound, Unauthorized, problem_response
from nexent.engines.container import Engines
from nexent.identity.auth import Caller, RateLimited, api_key_caller
from nexent.identity.models import Role
from nexent.settings import Settings

A2A_PATH = "/a2a"
CARD_PATH = "/.well-known/agent-card.json"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_MINUTE = 60


class _ContextBuilder(DefaultServerCallContextBuilder):
    """The SDK's call context, with the request's `A2aRequest` (which the task store and the executor read)."""

    def build(self, request: Request) -> ServerCallContext:
        context = super().build(request)
        context.state[STATE_KEY] = request.scope["state"][STATE_KEY]
        return context


def _base_url(scope: Scope, agent_id: uuid.UUID, settings: Settings) -> str:
    if settings.public_url:
        return f"{settings.public_url.rstrip('/')}{A2A_PATH}/{agent_id}"
    headers = Headers(scope=scope)
    host = headers.get("host") or "localhost"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('app_root_path', '')}{A2A_PATH}/{agent_id}"


async def _card(request: Request) -> JSONResponse:
    a2a: A2aRequest = request.scope["state"][STATE_KEY]
    settings: Settings = request.scope["state"]["nexent.settings"]
    card = agent_card(a2a.agent, _base_url(request.scope, a2a.agent.agent_id, settings))
    return JSONResponse(agent_card_to_dict(card), headers={"Cache-Control": "public, max-age=60"})


def sdk_app(engines: Engines) -> Starlette:
    """The SDK's routes for every agent (the agent id a path parameter; the gate has put the agent in the state)."""
    store = task_store(engines)
    handler = DefaultRequestHandler(agent_executor=RunExecutor(store), task_store=store, agent_card=capabilities_card())
    builder = _ContextBuilder()
    agent = "/{agent_id}"
    routes: list[Any] = [
        Route(f"{agent}{CARD_PATH}", _card, methods=["GET"]),
        *create_jsonrpc_routes(handler, agent, context_builder=builder),
        *create_jsonrpc_routes(handler, f"{agent}/", context_builder=builder),
        Mount(f"{agent}/rest", routes=create_rest_routes(handler, context_builder=builder)),
    ]
    return Starlette(routes=routes)


class A2aGate:
    """`/a2a/...`: the exposed agent and its caller checked, then the SDK's routes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sdk: tuple[Engines, Starlette] | None = None  # the SDK's app on the engines of the running lifespan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        parent = scope["app"]
        engines: Engines = parent.state.engines
        path = get_route_path(scope)  # below the mount: "/{agent_id}/..."
        head, _, rest = path.lstrip("/").partition("/")
        try:
            agent_id = uuid.UUID(head)
        except ValueError:
            await problem_response(404, "agent_not_found", "No A2A agent at this URL.")(scope, receive, send)
            return
        try:
            request = await self._authorize(scope, engines, parent, agent_id, is_card=f"/{rest}" == CARD_PATH)
        except AppError as exc:
            await problem_response(exc.status, exc.code, exc.detail, headers=exc.headers)(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state[STATE_KEY] = request
        state["nexent.settings"] = self.settings
        if self.sdk is None or self.sdk[0] is not engines:  # first request, or a new lifespan
            self.sdk = (engines, sdk_app(engines))
        await self.sdk[1](scope, receive, send)

    async def _authorize(
        self, scope: Scope, engines: Engines, parent: Any, agent_id: uuid.UUID, *, is_card: bool
    ) -> A2aRequest:
        async with engines.sessions() as session:
            agent = await exposed_agent(session, agent_id)
        if agent is None:
            raise _not_served()
        if is_card:  # public for every exposed agent: it says how to authenticate
            return A2aRequest(agent, _nobody(agent), "none", engines, parent.state.runs)
        scheme, _, secret = Headers(scope=scope).get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and secret.strip():
            return await self._key_request(engines, parent, agent, secret.strip())
        if agent.exposure is A2aExposure.PUBLIC:
            client = scope.get("client")
            address = client[0] if client else "unknown"
            sent = await engines.bus.hit(f"a2a-public-rate:{address}", window_seconds=_MINUTE)
            if sent > self.settings.a2a_public_rate_per_minute:
                raise RateLimited(
                    f"At most {self.settings.a2a_public_rate_per_minute} requests a minute to public A2A agents.",
                    headers={"Retry-After": str(_MINUTE)},
                )
            try:
                async with engines.sessions() as session:
                    caller = await public_caller(session, agent)
            except AppError:  # the owner is no longer an active member (nor the tenant active)
                caller = None
            if caller is None:
                raise _not_served()
            return A2aRequest(agent, caller, caller_scope(caller, public=True), engines, parent.state.runs)
        raise Unauthorized("Send an API key as 'Authorization: Bearer <key>'.", headers=_CHALLENGE)

    async def _key_request(self, engines: Engines, parent: Any, agent: A2aAgent, secret: str) -> A2aRequest:
        async with engines.sessions() as session, session.begin():
            caller = await api_key_caller(secret, session, engines)
        if caller.tenant_id != agent.tenant_id or not caller.may_use_agent(agent.agent_id):
            raise _not_served()
        return A2aRequest(agent, caller, caller_scope(caller, public=False), engines, parent.state.runs)


def _not_served() -> NotFound:
    return NotFound("No agent is served over A2A at this URL.", code="agent_not_found")


def _nobody(agent: A2aAgent) -> Caller:
    """The caller of an anonymous card read (it starts nothing)."""
    return Caller(user_id=uuid.UUID(int=0), tenant_id=agent.tenant_id, role=Role.USER, allowed_agent_ids=frozenset())


def mount(app: FastAPI, settings: Settings) -> None:
    """Serve the A2A server at `/a2a` in `app` (before any catch-all route)."""
    app.router.routes.append(Mount(A2A_PATH, app=A2aGate(settings)))
