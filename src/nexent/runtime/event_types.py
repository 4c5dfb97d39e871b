"""The events of a run, as one typed set: a pydantic model per event type, and their union discriminated by `type`.

Every producer builds these (the smolagents bridge, the run execution, the end of a lost or interrupted run), and
the SSE stream sends them: `event: <type>` and `data: <the event without its type>`. Fields a producer did not set
are left out of the data (a `thinking.delta` has `kind` only for planning text), so the wire format is the one the
events had before they were typed. The union is published in the OpenAPI document as `RunStreamEvent`, and
docs/runs.md lists its members (a test compares the two).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, TypeAdapter


class Usage(BaseModel):
    """Tokens used so far (of the whole run, or of the sub-agent or step the event is about)."""

    input_tokens: int
    output_tokens: int


class BaseRunEvent(BaseModel):
    """What every event has: its type. Fields not set by the producer are not sent."""

    model_config = ConfigDict(extra="forbid")

    type: str

    # Data fields a producer may leave unset and the wire leaves out (see `wire_data`).
    terminal: ClassVar[bool] = False

    def __getitem__(self, key: str) -> Any:
        """Mapping-style reading (`event["type"]`), as the bridge's events were read before they were typed."""
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def wire_data(self) -> dict[str, Any]:
        """The event's data as sent and stored: JSON values, without `type`, without fields nobody set."""
        return self.model_dump(mode="json", exclude_unset=True, exclude=_TYPE, fallback=str)


_TYPE = {"type"}


class AgentEvent(BaseRunEvent):
    """An event of an agent: `agent` is None (or the top-level agent's name) for the run's agent, else the
    sub-agent's tool name; `parent_call_id` is the `call_id` of the parent's `tool.call` that started the
    sub-agent (None at the top level)."""

    agent: str | None = None
    parent_call_id: str | None = None


class RunStarted(BaseRunEvent):
    """First event of every run."""

    type: Literal["run.started"] = "run.started"
    run_id: str
    agent_id: str
    agent_version: int | None = Field(default=None, description="The agent's version that runs; None: its draft.")
    conversation_id: str | None = Field(
        default=None, description="The run's conversation; None: a stateless run (the OpenAI-compatible API)."
    )
    trace_id: str | None = Field(
        default=None, description="The run's OpenTelemetry trace (32 hex digits); None when tracing is off."
    )


class ThinkingDelta(AgentEvent):
    """Reasoning text (`reasoning_content`) as it streams; `kind` is `plan` for planning text."""

    type: Literal["thinking.delta"] = "thinking.delta"
    text: str
    kind: Literal["plan"] | None = None


class MessageDelta(AgentEvent):
    """Answer text as it streams; `final` is true when it is the final answer's text."""

    type: Literal["message.delta"] = "message.delta"
    text: str
    final: bool | None = None


class ToolCall(AgentEvent):
    """The model called a tool (or a sub-agent, by its name)."""

    type: Literal["tool.call"] = "tool.call"
    call_id: str
    name: str
    arguments: Any = None


class ToolResult(AgentEvent):
    """A tool's output; `error` is set when it failed."""

    type: Literal["tool.result"] = "tool.result"
    call_id: str
    name: str
    output: Any = None
    error: str | None = None


class Code(AgentEvent):
    """A code agent's code step (its output arrives as `tool.result`)."""

    type: Literal["code"] = "code"
    call_id: str
    code: Any = None


class StepCompleted(AgentEvent):
    """End of a step: an action step (`step`, `error`, `is_final_answer`, `duration`) or a planning step
    (`plan`)."""

    type: Literal["step.completed"] = "step.completed"
    kind: Literal["action", "planning"]
    step: int | None = None
    plan: str | None = None
    usage: Usage | None = None
    error: str | None = None
    is_final_answer: bool | None = None
    duration: float | None = None


class Citation(BaseRunEvent):
    """A source a tool's output relies on (a web page, a workspace file, a document chunk), sent after the
    tool's event; kept with the answer's message."""

    type: Literal["citation"] = "citation"
    tool: str
    title: str
    url: str | None = None
    snippet: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class SkillLoaded(BaseRunEvent):
    """The agent loaded a skill's instructions (`load_skill`, docs/skills.md): which one, at which version."""

    type: Literal["skill.loaded"] = "skill.loaded"
    name: str
    version: int


Answer = str | int | float | bool | None


class AgentCompleted(AgentEvent):
    """A sub-agent finished (nested under its parent call)."""

    type: Literal["agent.completed"] = "agent.completed"
    answer: Answer = None
    state: Literal["success", "max_steps"] = "success"
    usage: Usage | None = None


class RunCompleted(AgentEvent):
    """Terminal: the run's answer; `state` is `max_steps` when the agent ran out of steps."""

    terminal: ClassVar[bool] = True
    type: Literal["run.completed"] = "run.completed"
    answer: Answer = None
    state: Literal["success", "max_steps"] = "success"
    usage: Usage | None = None


class RunFailed(AgentEvent):
    """Terminal: `agent_failed` (the model or agent failed; `error` says how), `internal_error`, `interrupted` (the
    embedded platform restarted), `worker_lost` (the process executing it died), or a classified start error such
    as `no_default_model`."""

    terminal: ClassVar[bool] = True
    type: Literal["run.failed"] = "run.failed"
    code: str | None = None
    message: str | None = None
    error: str | None = None
    usage: Usage | None = None


class RunStopped(AgentEvent):
    """Terminal: stopped on request."""

    terminal: ClassVar[bool] = True
    type: Literal["run.stopped"] = "run.stopped"
    reason: str | None = None
    error: str | None = None
    usage: Usage | None = None


class RememberedFact(BaseModel):
    """A memory as a run's events show it."""

    id: str
    level: Literal["tenant", "agent", "user", "user_agent"]
    text: str


class MemoryRecalled(BaseRunEvent):
    """The memories added to the run's context before the agent started (docs/memory.md); right after
    `run.started`, only when there are some."""

    type: Literal["memory.recalled"] = "memory.recalled"
    memories: list[RememberedFact]


class MemorySaved(BaseRunEvent):
    """What the extraction after the run saved: memories added, and memories whose text it replaced. It comes
    after the terminal event (a stream still following the run gets it live; it is stored in the run's log)."""

    type: Literal["memory.saved"] = "memory.saved"
    added: list[RememberedFact] = Field(default_factory=list)
    updated: list[RememberedFact] = Field(default_factory=list)


AttachmentMode = Literal["context", "index", "image", "ocr"]


class AttachmentProcessing(BaseRunEvent):
    """An attachment of the run's message is being prepared (parsed, read by OCR) before the agent starts
    (docs/attachments.md); one per attachment, right after `run.started`."""

    type: Literal["attachment.processing"] = "attachment.processing"
    attachment_id: str
    name: str
    kind: Literal["document", "image"]


class AttachmentReady(BaseRunEvent):
    """An attachment is ready, and how the agent gets it (`mode`): `context` (its text in the agent's context),
    `index` (too long for that: searched through the conversation's index), `image` (sent to the model as an image),
    `ocr` (the model takes no images: the image's OCR text and a caption stand in; `note` says so)."""

    type: Literal["attachment.ready"] = "attachment.ready"
    attachment_id: str
    name: str
    kind: Literal["document", "image"]
    mode: AttachmentMode
    tokens: int | None = Field(default=None, description="About how many tokens of text the agent gets from it.")
    note: str | None = None


class AttachmentFailed(BaseRunEvent):
    """An attachment could not be prepared (`code`: `corrupt_file`, `encrypted`, `empty`, `too_large`,
    `unsupported_format`, `missing`); the run goes on with the others and tells the agent so."""

    type: Literal["attachment.failed"] = "attachment.failed"
    attachment_id: str
    name: str
    kind: Literal["document", "image"]
    code: str
    reason: str


AnyRunEvent = Annotated[
    RunStarted
    | ThinkingDelta
    | MessageDelta
    | ToolCall
    | ToolResult
    | Code
    | StepCompleted
    | Citation
    | SkillLoaded
    | AgentCompleted
    | RunCompleted
    | RunFailed
    | RunStopped
    | MemoryRecalled
    | MemorySaved
    | AttachmentProcessing
    | AttachmentReady
    | AttachmentFailed,
    Field(discriminator="type"),
]
TerminalEvent = RunCompleted | RunFailed | RunStopped
DeltaEvent = ThinkingDelta | MessageDelta


class RunStreamEvent(RootModel[AnyRunEvent]):
    """One event of a run's stream (`text/event-stream`): the SSE `event:` field is `type`, the `data:` field is
    the JSON of the other fields (those the producer set), and `id:` is the event's sequence number."""


RUN_EVENT = TypeAdapter[AnyRunEvent](AnyRunEvent)

EVENT_MODELS: dict[str, type[BaseRunEvent]] = {
    model.model_fields["type"].default: model
    for model in (
        RunStarted,
        ThinkingDelta,
        MessageDelta,
        ToolCall,
        ToolResult,
        Code,
        StepCompleted,
        Citation,
        SkillLoaded,
        AgentCompleted,
        RunCompleted,
        RunFailed,
        RunStopped,
        MemoryRecalled,
        MemorySaved,
        AttachmentProcessing,
        AttachmentReady,
        AttachmentFailed,
    )
}


def parse_event(type_: str, data: dict[str, Any]) -> AnyRunEvent:
    """An event from its type and data (as sent or stored); raises `pydantic.ValidationError` if it is not one."""
    return RUN_EVENT.validate_python({**data, "type": type_})
