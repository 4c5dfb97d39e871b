"""Request and response shapes of agent drafts and their versions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from nexent.agents.models import A2aExposure, AgentType
from nexent.core.schemas import Patch

AgentName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=80, pattern=r"^[^\x00-\x1f]+$"),
]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=120, pattern=r"^[^\x00-\x1f]*$")]
PassRate = Annotated[float, Field(ge=0, le=1)]
LongText = Annotated[str, StringConstraints(max_length=20_000)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


class Example(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    answer: Annotated[str, StringConstraints(min_length=1, max_length=8000)]


class Instructions(BaseModel):
    """What the agent is told: its duty, its limits, and example exchanges (few-shot)."""

    model_config = ConfigDict(extra="forbid")

    duty: LongText = ""
    constraints: LongText = ""
    examples: list[Example] = Field(default_factory=list, max_length=20)


class ToolUse(BaseModel):
    """A tool the agent may call, with its settings for this agent."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    settings: dict[str, Any] = Field(default_factory=dict)


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: AgentName
    display_name: DisplayName = Field(default="", description="The name people see; `name` when empty.")
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    instructions: Instructions = Field(default_factory=Instructions)
    model_id: uuid.UUID | None = Field(default=None, description="An LLM of the tenant; default: the tenant default.")
    agent_type: AgentType = AgentType.TOOL_CALLING
    tools: list[ToolUse] = Field(default_factory=list, max_length=50)
    sub_agent_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)
    knowledge_base_ids: list[uuid.UUID] = Field(
        default_factory=list, max_length=20, description="Knowledge bases the agent searches (knowledge_base_search)."
    )
    skill_ids: list[uuid.UUID] = Field(
        default_factory=list, max_length=20, description="Skills the agent may load on demand (docs/skills.md)."
    )
    max_steps: int = Field(default=10, ge=1, le=50)
    greeting: Annotated[str, StringConstraints(max_length=2000)] = ""
    example_questions: list[ShortText] = Field(default_factory=list, max_length=10)
    min_pass_rate: PassRate | None = Field(
        default=None, description="Publishing needs an evaluation of the draft passing at least this share of cases."
    )


class AgentUpdate(Patch):
    # the tenant's default model; no instructions; no evaluation needed to publish
    nullable = frozenset({"model_id", "instructions", "min_pass_rate"})

    name: AgentName | None = None
    display_name: DisplayName | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    instructions: Instructions | None = None
    model_id: uuid.UUID | None = None
    agent_type: AgentType | None = None
    tools: list[ToolUse] | None = Field(default=None, max_length=50)
    sub_agent_ids: list[uuid.UUID] | None = Field(default=None, max_length=20)
    knowledge_base_ids: list[uuid.UUID] | None = Field(default=None, max_length=20)
    skill_ids: list[uuid.UUID] | None = Field(default=None, max_length=20)
    max_steps: int | None = Field(default=None, ge=1, le=50)
    greeting: Annotated[str, StringConstraints(max_length=2000)] | None = None
    example_questions: list[ShortText] | None = Field(default=None, max_length=10)
    min_pass_rate: PassRate | None = None
    a2a_exposure: A2aExposure | None = Field(
        default=None, description="Serve the published version over A2A: off, to API keys, or publicly."
    )


class AgentRead(BaseModel):
    id: uuid.UUID
    name: str
    display_name: str
    description: str
    instructions: Instructions
    model_id: uuid.UUID | None
    agent_type: AgentType
    tools: list[ToolUse]
    sub_agent_ids: list[uuid.UUID]
    knowledge_base_ids: list[uuid.UUID]
    skill_ids: list[uuid.UUID] = Field(default_factory=list)
    max_steps: int
    greeting: str
    example_questions: list[str]
    min_pass_rate: float | None
    a2a_exposure: A2aExposure = Field(description="Whether the published version is served over A2A, and to whom.")
    published_version: int | None = Field(description="The version chat and the APIs run; None: never published.")
    can_edit: bool = Field(
        description="Whether the caller may change this agent. Those who may not see its published version, not its "
        "draft."
    )
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class ToolSourceRead(BaseModel):
    """Where a tool comes from: the platform (`builtin`), one of the tenant's MCP servers or OpenAPI imports, or
    one of its remote A2A agents (`a2a`: the tool is that agent, used as a sub-agent)."""

    kind: Literal["builtin", "mcp", "openapi", "a2a"]
    id: uuid.UUID | None = Field(
        default=None, description="The MCP server, OpenAPI import or remote agent; None for built-ins."
    )
    name: str = Field(description="`builtin`, or the server's or import's name (the tool name's prefix).")


class ToolRead(BaseModel):
    """A tool an agent may be given, as the catalog describes it."""

    name: str = Field(
        description="What an agent's `tools` entry names: a built-in tool's name, or `<source>__<tool>` for a tool of "
        "one of the tenant's sources."
    )
    description: str = Field(description="What the tool does (the model reads it too).")
    parameters: dict[str, Any] = Field(
        description="JSON schema of the arguments the model passes (the OpenAI function-tool `parameters`)."
    )
    settings_schema: dict[str, Any] = Field(
        description="JSON schema of the per-agent `settings` an agent's `tools` entry accepts."
    )
    managed_settings: list[str] = Field(
        description="Settings the platform fills in from the agent itself (e.g. `knowledge_base_ids` from the "
        "agent's knowledge bases); whatever an entry gives for them is replaced."
    )
    source: ToolSourceRead = Field(description="Where the tool comes from.")


class SubAgentPin(BaseModel):
    """A sub-agent as a version uses it: pinned to the sub-agent's version published when this one was."""

    model_config = ConfigDict(extra="forbid")

    agent_id: uuid.UUID
    version: int | None = Field(description="None in a draft: its sub-agents are not pinned.")


class SkillUse(BaseModel):
    """A skill as a version uses it: pinned to the skill's newest version when this one was published."""

    model_config = ConfigDict(extra="forbid")

    skill_id: uuid.UUID
    name: str = Field(default="", description="The skill's name when published.")
    version: int | None = Field(default=None, description="None in a draft: the skill's newest version is used.")


class ToolSnapshot(BaseModel):
    """A tenant tool as a version keeps it: what the model was told and where calls go."""

    name: str
    description: str
    parameters: dict[str, Any]
    remote_name: str = Field(description="The tool's own name at its source.")
    source: ToolSourceRead
    extra: dict[str, Any] = Field(default_factory=dict, description="What the source needs to call it.")


class AgentConfig(BaseModel):
    """What a version holds: the draft's fields when it was published, the model resolved (the tenant's default
    then, when the draft named none) and sub-agents pinned."""

    name: str
    display_name: str
    description: str
    instructions: Instructions
    model_id: uuid.UUID | None = Field(description="Always set in a version; None in a draft on the tenant default.")
    agent_type: AgentType
    tools: list[ToolUse]
    knowledge_base_ids: list[uuid.UUID]
    sub_agents: list[SubAgentPin]
    skills: list[SkillUse] = Field(default_factory=list)
    max_steps: int
    greeting: str
    example_questions: list[str]
    tool_schemas: list[ToolSnapshot] = Field(
        default_factory=list,
        description="In a version: each tenant tool (MCP, OpenAPI) as it was when published, which runs of the "
        "version use; empty in a draft.",
    )


class PublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = Field(
        default="", description="What changed, for whoever reads the version list."
    )


class VersionRead(BaseModel):
    agent_id: uuid.UUID
    number: int
    note: str
    disabled: bool = Field(description="A disabled version is not run; the newest enabled one is the published one.")
    published: bool = Field(description="Whether this is the version chat and the APIs run now.")
    config: AgentConfig
    created_by: uuid.UUID | None
    created_at: datetime


class VersionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disabled: bool


VersionNumber = Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]
VersionRef = VersionNumber | Literal["draft"]


class FieldChange(BaseModel):
    """One field that differs between two sides of a comparison; `lines` is a unified diff of long texts."""

    field: str = Field(description="A dotted path, such as `instructions.duty` or `tools.web_search`.")
    before: Any
    after: Any
    lines: list[str] | None = None


class VersionDiff(BaseModel):
    base: VersionRef
    target: VersionRef
    changes: list[FieldChange]


# --- import and export --------------------------------------------------------------------------------------------

DOCUMENT_FORMAT = "nexent.agent"
MAX_DOCUMENT_AGENTS = 50

TransferRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]


class ModelRef(BaseModel):
    """A model by what another tenant can find it by; null in a document: the tenant's default."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
    kind: Literal["llm", "vlm"]
    model: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class KnowledgeBaseRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120, pattern=r"^[^\x00-\x1f]+$")
    ]
    description: Annotated[str, StringConstraints(max_length=4000)] = ""


class ExportedTool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    settings: dict[str, Any] = Field(default_factory=dict)
    redacted: list[Annotated[str, StringConstraints(max_length=200)]] = Field(
        default_factory=list, max_length=50, description="Settings left out on export as secrets: set them again."
    )


class ExportedAgent(BaseModel):
    """One agent of a document: the draft's fields, with names instead of the tenant's ids."""

    model_config = ConfigDict(extra="forbid")

    ref: TransferRef = Field(description="The agent's name inside the document (`sub_agents` point at it).")
    name: AgentName
    display_name: DisplayName = ""
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    instructions: Instructions = Field(default_factory=Instructions)
    agent_type: AgentType = AgentType.TOOL_CALLING
    tools: list[ExportedTool] = Field(default_factory=list, max_length=50)
    max_steps: int = Field(default=10, ge=1, le=50)
    greeting: Annotated[str, StringConstraints(max_length=2000)] = ""
    example_questions: list[ShortText] = Field(default_factory=list, max_length=10)
    min_pass_rate: PassRate | None = None
    model: ModelRef | None = Field(default=None, description="None: the tenant's default model.")
    knowledge_bases: list[KnowledgeBaseRef] = Field(default_factory=list, max_length=20)
    skills: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=20, description="The skills the agent uses, by name."
    )
    sub_agents: list[TransferRef] = Field(default_factory=list, max_length=20)


class AgentDocument(BaseModel):
    """An agent with its sub-agents (each once) and tool settings: what export writes and import reads."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["nexent.agent"]
    format_version: Literal[1]
    exported_at: datetime | None = None
    root: TransferRef = Field(description="The ref of the exported agent.")
    agents: list[ExportedAgent] = Field(min_length=1, max_length=MAX_DOCUMENT_AGENTS)

    @model_validator(mode="after")
    def _check_graph(self) -> AgentDocument:
        refs = [agent.ref for agent in self.agents]
        duplicates = sorted({ref for ref in refs if refs.count(ref) > 1})
        if duplicates:
            raise ValueError(f"Refs must be unique; repeated: {', '.join(duplicates)}.")
        if self.root not in refs:
            raise ValueError(f"The root {self.root!r} is not an agent of the document.")
        graph = {agent.ref: agent.sub_agents for agent in self.agents}
        for agent in self.agents:
            dangling = [sub for sub in agent.sub_agents if sub not in graph]
            if dangling:
                raise ValueError(f"Agent {agent.ref!r} names sub-agents not in the document: {', '.join(dangling)}.")
            tools = [tool.name for tool in agent.tools]
            if len(set(tools)) != len(tools):
                raise ValueError(f"Agent {agent.ref!r} lists a tool twice.")
        cycle = find_cycle(graph)
        if cycle:
            raise ValueError(f"Sub-agents make a cycle: {' -> '.join(cycle)}.")
        return self


class AgentImport(AgentDocument):
    """A document to import, with new names for some of its agents."""

    names: dict[TransferRef, AgentName] = Field(
        default_factory=dict, max_length=MAX_DOCUMENT_AGENTS, description="New names by ref; taken ones get ` (2)`."
    )

    @model_validator(mode="after")
    def _check_names(self) -> AgentImport:
        unknown = sorted(set(self.names) - {agent.ref for agent in self.agents})
        if unknown:
            raise ValueError(f"`names` names refs not in the document: {', '.join(unknown)}.")
        return self


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A path that leads back to where it started, following sub-agents (None when there is none)."""
    done: set[str] = set()
    for start in graph:
        path: list[str] = []
        on_path: set[str] = set()
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            node, index = stack.pop()
            if index == 0:
                if node in on_path:
                    return [*path[path.index(node) :], node]
                if node in done:
                    continue
                path.append(node)
                on_path.add(node)
            subs = graph.get(node, [])
            if index < len(subs):
                stack.append((node, index + 1))
                stack.append((subs[index], 0))
            else:
                done.add(node)
                on_path.discard(path.pop())
    return None


class ModelMapping(BaseModel):
    status: Literal["mapped", "default", "unmapped"] = Field(
        description="`default`: the document names none; `unmapped`: no such model here, the tenant default is used."
    )
    model_id: uuid.UUID | None = None
    name: str | None = Field(description="The model the document names.")


class KnowledgeBaseMapping(BaseModel):
    name: str
    status: Literal["mapped", "unmapped"] = Field(description="`unmapped`: none you may read by that name; left out.")
    knowledge_base_id: uuid.UUID | None = None


class SkillMapping(BaseModel):
    name: str
    status: Literal["mapped", "unmapped"] = Field(description="`unmapped`: none you may read by that name; left out.")
    skill_id: uuid.UUID | None = None


class ToolCheck(BaseModel):
    name: str
    status: Literal["ok", "unknown", "invalid_settings"] = Field(description="Anything but `ok` is left out.")
    message: str | None = None


class AgentPreview(BaseModel):
    ref: str
    name: str
    action: Literal["create"]
    final_name: str = Field(description="The name it gets: `name (2)` when the name is taken.")
    model: ModelMapping
    knowledge_bases: list[KnowledgeBaseMapping]
    skills: list[SkillMapping] = Field(default_factory=list)
    tools: list[ToolCheck]
    sub_agents: list[str]


class ImportPreview(BaseModel):
    agents: list[AgentPreview] = Field(description="In the order they are created: sub-agents first.")
    warnings: list[str]


class ImportedAgent(BaseModel):
    ref: str
    id: uuid.UUID
    name: str


class ImportResult(BaseModel):
    root_agent_id: uuid.UUID
    agents: list[ImportedAgent]
    warnings: list[str]


# --- Generation: an agent drafted by a model from a description (`agents/generation.py`) ------------------------

GeneratedField = Literal[
    "name", "display_name", "description", "duty", "constraints", "examples", "tools", "knowledge_base_ids"
]
Language = Literal["en", "zh"]
Brief = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class AgentDraft(BaseModel):
    """Fields of an agent as a model drafted them (only those it produced validly), or a partial draft given as
    context. `tools` are names from the tool catalog; nothing here is stored."""

    model_config = ConfigDict(extra="forbid")

    name: AgentName | None = None
    display_name: DisplayName | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    duty: LongText | None = None
    constraints: LongText | None = None
    examples: list[Example] | None = Field(default=None, max_length=20)
    tools: list[Annotated[str, StringConstraints(min_length=1, max_length=80)]] | None = Field(
        default=None, max_length=50
    )
    knowledge_base_ids: list[uuid.UUID] | None = Field(default=None, max_length=20)


class GeneratedDraft(AgentDraft):
    """The fields a model drafted validly (the others are left out)."""


class GenerateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: Brief = Field(description="What the agent should do, in plain language.")
    language: Language | None = Field(
        default=None, description="The language of the draft; default: from `Accept-Language`, else `en`."
    )
    fields: list[GeneratedField] | None = Field(
        default=None, min_length=1, max_length=8, description="The fields to (re)generate; default: all of them."
    )
    current: AgentDraft | None = Field(default=None, description="The draft so far, as context for the model.")
    model_id: uuid.UUID | None = Field(
        default=None, description="An LLM of the tenant that writes the draft; default: the tenant's default LLM."
    )


class ImproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: uuid.UUID | None = Field(
        default=None, description="A conversation of the caller with this agent: its messages are the evidence."
    )
    note: Brief = Field(description="What went wrong.")
    language: Language | None = None


class BaseGenerationEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str


class FieldDelta(BaseGenerationEvent):
    """Text of a field as the model writes it (the raw section text)."""

    type: Literal["field.delta"] = "field.delta"
    field: GeneratedField
    delta: str


class FieldCompleted(BaseGenerationEvent):
    """A field the model finished, validated: its value is what `draft` will hold."""

    type: Literal["field.completed"] = "field.completed"
    field: GeneratedField
    value: Any


class DraftCompleted(BaseGenerationEvent):
    """The end: the fields produced validly, those asked for that were not, and what was changed or dropped."""

    type: Literal["draft.completed"] = "draft.completed"
    draft: GeneratedDraft
    missing: list[GeneratedField]
    notes: list[str]
    prompt_version: int = Field(description="The version of the prompt template used.")


class GenerationFailed(BaseGenerationEvent):
    """The end, when the model could not be used or wrote nothing usable; `draft` holds the fields completed
    before that."""

    type: Literal["generation.failed"] = "generation.failed"
    code: str = Field(description="A model error code (`network`, `timeout`, `auth`, ...), or `bad_output`.")
    message: str
    draft: GeneratedDraft
    missing: list[GeneratedField]


GENERATION_EVENTS: dict[str, type[BaseGenerationEvent]] = {
    "field.delta": FieldDelta,
    "field.completed": FieldCompleted,
    "draft.completed": DraftCompleted,
    "generation.failed": GenerationFailed,
}
