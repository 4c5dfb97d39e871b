"""Sample A2A agents built with the official SDK (`a2a-sdk` 1.x, as `conformance/a2a/ref/echo_agent.py` is), served
together by one uvicorn server in a thread of its own, each under its own path:

- `/echo`: streams its answer (a status message, then the artifact in two appended chunks);
- `/plain`: says in its card that it cannot stream (answers SendMessage with the whole task);
- `/slow`: works until it is cancelled, and records the cancel (`SampleAgents.cancelled`);
- `/guarded`: like `/echo`, but every request except the card needs the header `X-API-Key: sesame` (as its card
  declares);
- `/failing`: ends every task as failed, saying why;
- `/nonsense`: a valid card, but its endpoint answers something that is not A2A;
- `/old/.well-known/agent-card.json`: an A2A 0.3 card (no 1.0 interface); `/broken/...`: not a card at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from a2a.server.agent_execution.agent_executor import AgentExecutor
from a2a.server.agent_execution.context import RequestContext
from a2a.server.events.event_queue import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks.inmemory_task_store import InMemoryTaskStore
from a2a.server.tasks.task_updater import TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    APIKeySecurityScheme,
    Part,
    SecurityScheme,
    StringList,
    Task,
    TaskState,
    TaskStatus,
)
from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import free_port, wait_for_port

API_KEY = "sesame"


@dataclass
class SampleAgents:
    """The running server: its base URL and what its agents saw."""

    base_url: str
    cancelled: set[str] = field(default_factory=set)  # task ids the slow agent was asked to cancel
    started: set[str] = field(default_factory=set)  # task ids the slow agent started
    tasks: list[str] = field(default_factory=list)  # the texts the echo agents received

    def card_url(self, agent: str) -> str:
        return f"{self.base_url}/{agent}/.well-known/agent-card.json"


class _Echo(AgentExecutor):
    def __init__(self, seen: SampleAgents) -> None:
        self.seen = seen

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id, context_id = context.task_id or "", context.context_id or ""
        assert context.message is not None
        await event_queue.enqueue_event(
            Task(
                id=task_id,
                context_id=context_id,
                status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                history=[context.message],
            )
        )
        text = context.get_user_input() or ""
        self.seen.tasks.append(text)
        updater = TaskUpdater(event_queue=event_queue, task_id=task_id, context_id=context_id)
        await updater.start_work(updater.new_agent_message([Part(text="Reading the task")]))
        await updater.add_artifact(parts=[Part(text="echo: ")], artifact_id="answer", name="answer")
        await updater.add_artifact(parts=[Part(text=text)], artifact_id="answer", append=True, last_chunk=True)
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        updater = TaskUpdater(
            event_queue=event_queue, task_id=context.task_id or "", context_id=context.context_id or ""
        )
        await updater.cancel()


class _Slow(AgentExecutor):
    def __init__(self, seen: SampleAgents) -> None:
        self.seen = seen

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id, context_id = context.task_id or "", context.context_id or ""
        assert context.message is not None
        await event_queue.enqueue_event(
            Task(
                id=task_id,
                context_id=context_id,
                status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                history=[context.message],
            )
        )
        updater = TaskUpdater(event_queue=event_queue, task_id=task_id, context_id=context_id)
        await updater.start_work(updater.new_agent_message([Part(text="Working on it")]))
        self.seen.started.add(task_id)
        for _ in range(600):  # until cancelled (the request handler stops this task), at most a minute
            if task_id in self.seen.cancelled:
                return
            await asyncio.sleep(0.1)
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        self.seen.cancelled.add(context.task_id or "")
        updater = TaskUpdater(
            event_queue=event_queue, task_id=context.task_id or "", context_id=context.context_id or ""
        )
        await updater.cancel()


class _Failing(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id, context_id = context.task_id or "", context.context_id or ""
        assert context.message is not None
        await event_queue.enqueue_event(
            Task(
                id=task_id,
                context_id=context_id,
                status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                history=[context.message],
            )
        )
        updater = TaskUpdater(event_queue=event_queue, task_id=task_id, context_id=context_id)
        await updater.failed(updater.new_agent_message([Part(text="The database is on fire.")]))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        return None


def _card(base: str, name: str, *, streaming: bool = True, api_key: bool = False) -> AgentCard:
    card = AgentCard(
        name=name,
        description=f"The sample agent {name}: it repeats the task it is given.",
        version="1.0.0",
        capabilities=AgentCapabilities(streaming=streaming),
        default_input_modes=["text"],
        default_output_modes=["text"],
        skills=[
            AgentSkill(
                id="echo", name="Echo", description="Repeats the text it is given.", tags=["echo"], examples=["hi"]
            )
        ],
        supported_interfaces=[AgentInterface(protocol_binding="JSONRPC", protocol_version="1.0", url=f"{base}/")],
    )
    if api_key:
        card.security_schemes["key"].CopyFrom(
            SecurityScheme(api_key_security_scheme=APIKeySecurityScheme(location="header", name="X-API-Key"))
        )
        card.security_requirements.add().schemes["key"].CopyFrom(StringList())
    return card


def _agent_routes(base_url: str, prefix: str, name: str, executor: AgentExecutor, **card_options: Any) -> list[Any]:
    card = _card(f"{base_url}{prefix}", name, **card_options)
    handler = DefaultRequestHandler(agent_executor=executor, task_store=InMemoryTaskStore(), agent_card=card)
    return [
        *create_agent_card_routes(agent_card=card, card_url=f"{prefix}/.well-known/agent-card.json"),
        *create_jsonrpc_routes(request_handler=handler, rpc_url=f"{prefix}/"),
    ]


def _app(seen: SampleAgents) -> Starlette:
    base = seen.base_url
    nonsense_card = _card(f"{base}/nonsense", "Nonsense")

    async def nonsense(_: Request) -> Response:
        return Response("<html>surprise</html>", media_type="text/html")

    async def old_card(_: Request) -> Response:
        return JSONResponse(
            {"name": "Old", "description": "0.3", "url": f"{base}/old/", "protocolVersion": "0.3.0", "version": "1"}
        )

    async def broken_card(_: Request) -> Response:
        return JSONResponse({"name": ["not", "a", "name"], "skills": "none"})

    routes = [
        *_agent_routes(base, "/echo", "Echo Agent", _Echo(seen)),
        *_agent_routes(base, "/plain", "Plain Agent", _Echo(seen), streaming=False),
        *_agent_routes(base, "/slow", "Slow Agent", _Slow(seen)),
        *_agent_routes(base, "/guarded", "Guarded Agent", _Echo(seen), api_key=True),
        *_agent_routes(base, "/failing", "Failing Agent", _Failing()),
        *create_agent_card_routes(agent_card=nonsense_card, card_url="/nonsense/.well-known/agent-card.json"),
        Route("/nonsense/", nonsense, methods=["POST"]),
        Route("/old/.well-known/agent-card.json", old_card),
        Route("/broken/.well-known/agent-card.json", broken_card),
    ]
    app = Starlette(routes=routes)

    async def require_key(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if path.startswith("/guarded/") and not path.endswith(".json") and request.headers.get("x-api-key") != API_KEY:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        response: Response = await call_next(request)
        return response

    app.add_middleware(BaseHTTPMiddleware, dispatch=require_key)
    return app


@contextlib.contextmanager
def serve_sample_agents() -> Iterator[SampleAgents]:
    """Serve the sample agents on a free loopback port, in a thread with its own event loop."""
    port = free_port()
    seen = SampleAgents(base_url=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(uvicorn.Config(_app(seen), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="a2a-sample-agents", daemon=True)
    thread.start()
    wait_for_port(port)
    try:
        yield seen
    finally:
        server.should_exit = True
        deadline = time.monotonic() + 10
        while thread.is_alive() and time.monotonic() < deadline:
            thread.join(0.1)
