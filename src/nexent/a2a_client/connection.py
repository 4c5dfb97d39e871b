"""Talking to a remote A2A agent with the official SDK (`a2a-sdk` 1.x): fetching and validating its card, sending it
a task (streaming when its card says it can), cancelling that task, and classifying what went wrong.

Every request goes through the platform's outbound address policy (`netpolicy.GuardedBackend`): a host on a
private address is refused unless the operator allowed it, as for model endpoints and OpenAPI tools."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.client.card_resolver import parse_agent_card
from a2a.types import (
    AgentCard,
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    TaskState,
)
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from a2a.utils.errors import TaskNotFoundError
from google.protobuf.json_format import MessageToDict, ParseError  # type: ignore[import-untyped]

from nexent.a2a_client.models import RemoteStatus
from nexent.core.netpolicy import AddressPolicy, AddressRefused, GuardedBackend

BINDINGS = ["JSONRPC", "HTTP+JSON"]  # what we speak, in this order of preference
_TERMINAL = {
    TaskState.TASK_STATE_COMPLETED,
    TaskState.TASK_STATE_FAILED,
    TaskState.TASK_STATE_CANCELED,
    TaskState.TASK_STATE_REJECTED,
}
_STOPPED = {  # the task ended, or waits for what a sub-agent call cannot give
    *_TERMINAL,
    TaskState.TASK_STATE_INPUT_REQUIRED,
    TaskState.TASK_STATE_AUTH_REQUIRED,
}
MAX_ANSWER_CHARS = 100_000


class A2AFailure(Exception):
    """What went wrong with a remote agent, classified (`status`), with a message for people and models."""

    def __init__(self, status: RemoteStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def code(self) -> str:
        return f"remote_agent_{self.status.value}"


class _Transport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: AddressPolicy) -> None:
        super().__init__()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False), network_backend=GuardedBackend(policy)
        )


def http_client(policy: AddressPolicy, headers: dict[str, str], timeout: float) -> httpx.AsyncClient:
    """An httpx client whose connections obey `policy`, sending `headers` (the credentials) with every request."""
    return httpx.AsyncClient(
        transport=_Transport(policy),
        trust_env=False,
        follow_redirects=False,
        headers=headers,
        timeout=httpx.Timeout(timeout),
    )


def card_location(url: str) -> str:
    """The card's URL: the URL as given when it names a JSON document, else the well-known path under it."""
    path = urlsplit(url).path
    if path.endswith(".json"):
        return url
    return url.rstrip("/") + AGENT_CARD_WELL_KNOWN_PATH


def classify(exc: BaseException) -> A2AFailure:
    """An exception of the SDK or of httpx as a classified failure (the first recognised cause wins)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, A2AFailure):
            return seen
        if isinstance(seen, AddressRefused):
            return A2AFailure(RemoteStatus.UNREACHABLE, f"The address is not allowed here: {seen}.")
        if isinstance(seen, httpx.TimeoutException | TimeoutError):
            return A2AFailure(RemoteStatus.TIMEOUT, "The remote agent did not answer in time.")
        if isinstance(seen, httpx.HTTPStatusError):
            code = seen.response.status_code
            if code in (401, 403):
                return A2AFailure(RemoteStatus.AUTH, f"The remote agent refused the credentials (HTTP {code}).")
            return A2AFailure(RemoteStatus.PROTOCOL, f"The remote agent answered HTTP {code}.")
        if isinstance(seen, httpx.ConnectError | httpcore.ConnectError | ConnectionError):
            return A2AFailure(RemoteStatus.UNREACHABLE, "The remote agent cannot be reached (no connection).")
        if isinstance(seen, httpx.RequestError):
            return A2AFailure(RemoteStatus.UNREACHABLE, f"The remote agent cannot be reached ({type(seen).__name__}).")
        seen = seen.__cause__ or seen.__context__
    text = str(exc).strip()[:300] or type(exc).__name__
    return A2AFailure(RemoteStatus.PROTOCOL, f"The remote agent does not speak A2A 1.0 as expected: {text}")


def validate_card(data: Any) -> AgentCard:
    """The card parsed with the SDK, refused unless it is an A2A 1.0 card we can talk to."""
    try:
        card = parse_agent_card(data)
    except (ParseError, TypeError, ValueError) as exc:
        raise A2AFailure(RemoteStatus.PROTOCOL, f"The agent card is not valid: {str(exc)[:300]}") from None
    if not card.name.strip():
        raise A2AFailure(RemoteStatus.PROTOCOL, "The agent card has no name.")
    if not any(_usable(i.protocol_binding, i.protocol_version) for i in card.supported_interfaces):
        raise A2AFailure(
            RemoteStatus.PROTOCOL,
            "The agent card declares no A2A 1.0 interface over JSON-RPC or HTTP+JSON (an older card, or another "
            "binding only).",
        )
    return card


def _usable(binding: str, version: str) -> bool:
    return binding in BINDINGS and (version.split(".")[:2] == ["1", "0"])


def card_json(card: AgentCard) -> dict[str, Any]:
    """The card as stored and shown: the A2A JSON form (camelCase)."""
    data: dict[str, Any] = MessageToDict(card)
    return data


def card_from_json(data: dict[str, Any]) -> AgentCard:
    return parse_agent_card(dict(data))


async def fetch_card(url: str, policy: AddressPolicy, headers: dict[str, str], seconds: float) -> AgentCard:
    """Fetch the card at `url` (its own URL or its agent's base URL) and validate it."""
    async with http_client(policy, headers, seconds) as client:
        try:
            async with asyncio.timeout(seconds):
                response = await client.get(card_location(url))
        except Exception as exc:
            raise classify(exc) from None
        if response.status_code in (401, 403):
            raise A2AFailure(RemoteStatus.AUTH, f"The card needs credentials (HTTP {response.status_code}).")
        if response.status_code != 200:
            raise A2AFailure(RemoteStatus.PROTOCOL, f"No agent card there (HTTP {response.status_code}).")
        try:
            data = response.json()
        except ValueError:
            raise A2AFailure(RemoteStatus.PROTOCOL, "The agent card is not JSON.") from None
    return validate_card(data)


def credential_headers(card: AgentCard, api_key: str | None, token: str | None) -> dict[str, str]:
    """The headers that carry the credentials the way the card declares them: an API key in the header its
    `apiKey` scheme names, a token as `Authorization: Bearer`."""
    headers: dict[str, str] = {}
    if api_key:
        names = [
            s.api_key_security_scheme.name
            for s in card.security_schemes.values()
            if s.HasField("api_key_security_scheme") and s.api_key_security_scheme.location.lower() == "header"
        ]
        if not names:
            raise ValueError("the agent card declares no API key sent in a header")
        headers[names[0]] = api_key
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def declared_auth(card: AgentCard) -> list[str]:
    """What the card asks for, in words: `api_key:<header>`, `bearer`, or another scheme's kind."""
    found = []
    for scheme in card.security_schemes.values():
        if scheme.HasField("api_key_security_scheme"):
            found.append(f"api_key:{scheme.api_key_security_scheme.location}:{scheme.api_key_security_scheme.name}")
        elif scheme.HasField("http_auth_security_scheme"):
            found.append(scheme.http_auth_security_scheme.scheme.lower() or "http")
        else:
            found.append(scheme.WhichOneof("scheme") or "unknown")
    return sorted(set(found))


@dataclass
class Remote:
    """One remote agent as a call needs it: its validated card and its credential headers (in memory only)."""

    name: str
    card: AgentCard
    headers: dict[str, str]
    policy: AddressPolicy
    timeout: float


async def probe(remote: Remote) -> None:
    """An authenticated request that changes nothing (`GetTask` of a task that does not exist): the agent must
    answer "no such task", which shows it accepts our credentials and speaks A2A."""
    async with _client(remote) as client:
        try:
            async with asyncio.timeout(remote.timeout):
                await client.get_task(GetTaskRequest(id=f"nexent-probe-{uuid.uuid4().hex}"))
        except TaskNotFoundError:
            return
        except Exception as exc:
            raise classify(exc) from None


@contextlib.asynccontextmanager
async def _client(remote: Remote) -> AsyncIterator[Any]:
    http = http_client(remote.policy, remote.headers, remote.timeout)
    try:
        config = ClientConfig(
            streaming=remote.card.capabilities.streaming, httpx_client=http, supported_protocol_bindings=BINDINGS
        )
        try:
            client = ClientFactory(config).create(remote.card)
        except ValueError as exc:
            raise A2AFailure(RemoteStatus.PROTOCOL, f"No interface of the card can be used: {exc}") from None
        yield client
    finally:
        await http.aclose()


@dataclass
class Outcome:
    """What a remote agent answered to one task."""

    answer: str
    state: str
    task_id: str | None = None


OnText = Callable[[str, bool], None]  # (text, is a status message rather than the answer)


async def send(remote: Remote, task: str, on_text: OnText) -> Outcome:
    """Send `task` as a new message (SendStreamingMessage, or SendMessage when the card says it cannot stream);
    `on_text` sees the answer's text as it arrives. When this is cancelled, the remote task is cancelled too."""
    message = Message(role=Role.ROLE_USER, message_id=uuid.uuid4().hex, parts=[Part(text=task)])
    artifacts: dict[str, str] = {}
    task_id: str | None = None
    state = "unknown"
    answer_message: str | None = None
    async with _client(remote) as client:
        try:
            async with asyncio.timeout(remote.timeout):
                async for event in client.send_message(SendMessageRequest(message=message)):
                    if not isinstance(event, StreamResponse):
                        raise A2AFailure(RemoteStatus.PROTOCOL, "The remote agent answered something else than A2A.")
                    kind = event.WhichOneof("payload")
                    if kind == "message":
                        answer_message = _text(event.message.parts)
                        on_text(answer_message, False)
                        state = "completed"
                        break
                    if kind == "task":
                        task_id = event.task.id or task_id
                        state = _state(event.task.status.state)
                        for artifact in event.task.artifacts:
                            text = _text(artifact.parts, "")
                            if text and artifacts.get(artifact.artifact_id) != text:
                                artifacts[artifact.artifact_id] = text
                                on_text(text, False)
                        if event.task.status.state in _STOPPED:
                            status_text = _text(event.task.status.message.parts)
                            if status_text and not artifacts:
                                answer_message = status_text
                            break
                    elif kind == "artifact_update":
                        update = event.artifact_update
                        task_id = update.task_id or task_id
                        text = _text(update.artifact.parts, "")
                        key = update.artifact.artifact_id
                        artifacts[key] = (artifacts.get(key, "") + text) if update.append else text
                        if text:
                            on_text(text, False)
                    elif kind == "status_update":
                        update_status = event.status_update
                        task_id = update_status.task_id or task_id
                        state = _state(update_status.status.state)
                        status_text = _text(update_status.status.message.parts)
                        if update_status.status.state in _STOPPED:
                            if status_text and not artifacts:
                                answer_message = status_text
                            break
                        if status_text:
                            on_text(status_text, True)
                    else:
                        raise A2AFailure(RemoteStatus.PROTOCOL, "The remote agent sent an empty event.")
        except asyncio.CancelledError:
            if task_id:
                await _cancel_quietly(client, task_id)
            raise
        except TimeoutError:
            if task_id:
                await _cancel_quietly(client, task_id)
            raise A2AFailure(
                RemoteStatus.TIMEOUT, f"The remote agent did not finish within {remote.timeout:g} seconds."
            ) from None
        except A2AFailure:
            raise
        except Exception as exc:
            raise classify(exc) from None
    answer = "\n".join(t for t in artifacts.values() if t) or answer_message or ""
    return Outcome(answer=answer[:MAX_ANSWER_CHARS], state=state, task_id=task_id)


async def _cancel_quietly(client: Any, task_id: str) -> None:
    """CancelTask, shielded from the cancellation that asked for it, bounded, and without failing."""

    async def cancel() -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await client.cancel_task(CancelTaskRequest(id=task_id))

    with contextlib.suppress(BaseException):
        await asyncio.shield(asyncio.ensure_future(cancel()))


def _state(state: int) -> str:
    name: str = TaskState.Name(state)
    return name.removeprefix("TASK_STATE_").lower()


def _text(parts: Any, separator: str = "\n") -> str:
    return separator.join(p.text for p in parts if p.WhichOneof("content") == "text")
