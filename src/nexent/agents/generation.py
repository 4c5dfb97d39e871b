"""An agent drafted by the tenant's LLM from a plain-language description, or its instructions improved from a
user's note, streamed field by field. Nothing is stored: the caller edits the draft and creates (or changes) the
agent with the ordinary routes.

The model answers in sections (`### name`, then the value; see `prompts/`), which `SectionParser` splits while the
text arrives; each finished section is checked and coerced (`_Coercer`) before its `field.completed`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from nexent.agents.models import Agent
from nexent.agents.repository import AgentRepository
from nexent.agents.schemas import (
    AgentDraft,
    BaseGenerationEvent,
    DraftCompleted,
    Example,
    FieldCompleted,
    FieldDelta,
    GeneratedDraft,
    GeneratedField,
    GenerateIn,
    GenerationFailed,
    Language,
)
from nexent.agents.service import tool_catalog
from nexent.core.errors import AppError
from nexent.engines.container import Engines
from nexent.identity.auth import Caller
from nexent.identity.services.sharing import Granted
from nexent.knowledge.service import KnowledgeBaseLabel, readable_knowledge_bases
from nexent.providers.models import ModelKind
from nexent.providers.service import ProviderService, model_facts
from nexent.providers.types import ChatModel, Message, ProviderError

logger = logging.getLogger("nexent.agents.generation")

FIELDS: tuple[GeneratedField, ...] = get_args(GeneratedField)
IMPROVE_FIELDS: tuple[GeneratedField, ...] = ("duty", "constraints", "examples")
LANGUAGES: tuple[Language, ...] = get_args(Language)

GENERATION_SECONDS = 180.0  # the whole answer, whatever the model's own timeout per read
MAX_KNOWLEDGE_BASES = 50  # offered to the model, by name
MAX_TRANSCRIPT_CHARS = 12_000  # the newest part of an improve's conversation
_LIMITS: dict[str, int] = {"name": 80, "display_name": 120, "description": 2000, "duty": 20_000, "constraints": 20_000}
_MAX_EXAMPLES = 20


class InvalidGeneration(AppError):
    """A generation request that points at something unfit (such as a model that is not an LLM)."""

    status, code = 422, "invalid_generation"


# --- Prompt templates ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    """A versioned prompt template of `prompts/` (front matter `version: N`), with `{{placeholders}}`."""

    name: str
    language: Language
    version: int
    body: str

    def render(self, **values: str) -> str:
        return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], self.body)


@lru_cache
def load_prompt(name: str, language: Language) -> Prompt:
    text = resources.files("nexent.agents").joinpath("prompts", f"{name}.{language}.md").read_text(encoding="utf-8")
    meta: dict[str, str] = {}
    if text.startswith("---\n"):
        head, _, text = text[4:].partition("\n---\n")
        for line in head.splitlines():
            key, _, value = line.partition(":")
            meta[key.strip()] = value.strip()
    return Prompt(name, language, int(meta.get("version", "1")), text.strip() + "\n")


def language_of(explicit: Language | None, accept_language: str | None) -> Language:
    """The language asked for, else the first of `Accept-Language` (by weight) that there are templates for, else
    English."""
    if explicit is not None:
        return explicit
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        match = re.search(r"q=([0-9.]+)", params)
        if match:
            try:
                weight = float(match.group(1))
            except ValueError:
                weight = 0.0
        ranked.append((-weight, position, tag.strip().lower().split("-")[0]))
    for weight, _, primary in sorted(ranked):
        if weight < 0 and primary in LANGUAGES:
            return primary
    return "en"


# --- Parsing the sectioned answer, while it streams ------------------------------------------------------------

# Section labels as the model may write them (lowercase, spaces and hyphens as underscores) -> fields.
_LABELS: dict[str, GeneratedField] = {
    **{f: f for f in FIELDS},
    "display": "display_name",
    "displayname": "display_name",
    "instructions": "duty",
    "duties": "duty",
    "example": "examples",
    "constraint": "constraints",
    "tool": "tools",
    "knowledge_bases": "knowledge_base_ids",
    "knowledge_base": "knowledge_base_ids",
    "knowledge": "knowledge_base_ids",
    "名称": "name",
    "显示名称": "display_name",
    "描述": "description",
    "职责": "duty",
    "约束": "constraints",
    "示例": "examples",
    "工具": "tools",
    "知识库": "knowledge_base_ids",
}
_FENCE = re.compile(r"^\s*(```|~~~)")


def _label(text: str) -> str:
    return re.sub(r"[\s\-]+", "_", text.strip().strip("*_`").strip().rstrip(":\uff1a").strip().lower())


@dataclass(frozen=True)
class Header:
    field: GeneratedField | None  # None: a section the draft has no field for
    label: str
    rest: str  # a value written on the header's own line (`**name:** Travel planner`)
    level: int  # the number of `#`s; 0 for a bold label


def parse_header(line: str) -> Header | None:
    """The section a line opens: a markdown heading (`### duty`, any level, any label) or a line that starts with a
    known label in bold (`**duty**`, `**Name:** value`). Anything else is text."""
    stripped = line.strip()
    if stripped.startswith("#"):
        text = stripped.lstrip("#").strip()
        label, _, rest = text.replace("\uff1a", ":").partition(":")
        if not label.strip().strip("*_`"):
            return None
        name = _label(label)
        level = len(stripped) - len(stripped.lstrip("#"))
        return Header(_LABELS.get(name), name, rest.strip().strip("*_").strip(), level)
    match = re.match(r"^(\*\*|__)(.+?)(\*\*|__)\s*[:\uff1a]?\s*(.*)$", stripped)
    if match:
        inner = match.group(2).replace("\uff1a", ":")
        label, _, inline = inner.partition(":")
        name = _label(label)
        if name in _LABELS:
            rest = " ".join(part for part in (inline.strip(), match.group(4).strip()) if part)
            return Header(_LABELS[name], name, rest, 0)
    return None


@dataclass
class SectionText:
    field: GeneratedField
    text: str


@dataclass
class SectionEnd:
    field: GeneratedField
    text: str  # the section's whole text, as streamed


@dataclass
class SectionSkipped:
    label: str


ParseEvent = SectionText | SectionEnd | SectionSkipped


class SectionParser:
    """Splits streamed text into the sections of `wanted` fields. Text reaches the caller as soon as it cannot be a
    section heading; blank lines and code fences are held until more text of the same section follows (so that
    neither leading or trailing blank lines nor a fence around the whole answer become part of a value)."""

    def __init__(self, wanted: Collection[GeneratedField]) -> None:
        self.wanted = set(wanted)
        self.buffer = ""
        self.emitted = 0  # characters of `buffer` (an unfinished line) already given out
        self.current: GeneratedField | None = None
        self.level = 0  # of the heading that opened the current section
        self.started = False
        self.pending: list[str] = []
        self.text: list[str] = []
        self.seen: set[GeneratedField] = set()

    def feed(self, chunk: str) -> list[ParseEvent]:
        events: list[ParseEvent] = []
        self.buffer += chunk.replace("\r\n", "\n").replace("\r", "\n")
        while "\n" in self.buffer:
            line, self.buffer = self.buffer.split("\n", 1)
            events.extend(self._line(line))
            self.emitted = 0
        events.extend(self._partial())
        return events

    def finish(self) -> list[ParseEvent]:
        events = self._line(self.buffer) if self.buffer else []
        self.buffer, self.emitted = "", 0
        return events + self._close()

    def _partial(self) -> list[ParseEvent]:
        """Give out an unfinished line once it is clearly text of the open section."""
        if self.current is None:
            return []
        if self.emitted:
            new = self.buffer[self.emitted :]
            self.emitted = len(self.buffer)
            return self._out(new) if new else []
        head = self.buffer.lstrip()
        if not head or head[0] in "#*_`~":
            return []  # may still turn out a heading or a fence: wait for the whole line
        self.emitted = len(self.buffer)
        return self._out(self._line_start() + self.buffer)

    def _line(self, line: str) -> list[ParseEvent]:
        if self.emitted:
            rest = line[self.emitted :]
            return self._out(rest) if rest else []
        header = parse_header(line)
        if header is not None and header.field is None and self.current is not None and header.level > self.level:
            header = None  # a heading inside a section's text (`#### Steps` under `### duty`)
        if header is not None:
            events = self._close()
            if header.field is None or header.field not in self.wanted or header.field in self.seen:
                self.current = None
                events.append(SectionSkipped(header.label))
                return events
            # A bold label counts as the usual `###`: only deeper headings can be part of its text.
            self.current, self.level = header.field, header.level or 3
            self.seen.add(header.field)
            if header.rest:
                events.extend(self._out(self._line_start() + header.rest))
            return events
        if self.current is None:
            return []
        if not line.strip():
            if self.started:
                self.pending.append("")
            return []
        if _FENCE.match(line):
            if self.started:
                self.pending.append(line)
            return []
        return self._out(self._line_start() + line)

    def _line_start(self) -> str:
        """What goes before a new line of text: the line break and the held lines, if the section has text."""
        prefix = "\n" + "".join(held + "\n" for held in self.pending) if self.started else ""
        self.pending, self.started = [], True
        return prefix

    def _out(self, text: str) -> list[ParseEvent]:
        assert self.current is not None
        self.text.append(text)
        return [SectionText(self.current, text)]

    def _close(self) -> list[ParseEvent]:
        events: list[ParseEvent] = []
        if self.current is not None:
            events.append(SectionEnd(self.current, "".join(self.text)))
        self.current, self.started, self.pending, self.text = None, False, [], []
        return events


# --- Checking each field ---------------------------------------------------------------------------------------

# Full-width punctuation (Chinese text) is written as escapes: \uff1a is the full-width colon, and so on.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BULLET = re.compile(r"^\s*(?:[-*•+]|\d+[.)、])\s+")
_NONE = frozenset({"none", "n/a", "na", "no", "-", "无", "没有", "不需要", "暂无", "\uff08无\uff09", "(none)"})
_LIST_SPLIT = re.compile(r"[,\uff0c、;\uff1b]")
_QUESTION = re.compile(
    r"^\s*(?:[-*•]\s+|\d+[.)]\s+)?(?:\*\*|__)?\s*(?:question|q|问题|问)\s*\d*\s*(?:\*\*|__)?\s*[:\uff1a]\s*(?:\*\*|__)?\s*"
    r"(?P<text>.*)$",
    re.IGNORECASE,
)
_ANSWER = re.compile(
    r"^\s*(?:[-*•]\s+)?(?:\*\*|__)?\s*(?:answer|a|回答|答)\s*\d*\s*(?:\*\*|__)?\s*[:\uff1a]\s*(?:\*\*|__)?\s*(?P<text>.*)$",
    re.IGNORECASE,
)


def _one_line(text: str) -> str:
    """The first line of a value, without markdown decoration, quotes or control characters."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    first = _BULLET.sub("", first).strip().strip("*_`").strip().strip("\"'“”「」『』").strip()
    return " ".join(_CONTROL.sub(" ", unicodedata.normalize("NFC", first)).split())


def _item(text: str) -> str:
    """A listed name without bullets, decoration or extra spaces."""
    return " ".join(_BULLET.sub("", text).strip().strip("*_`\"'“”").strip().split())


def _name_part(item: str) -> str:
    """`calculator: does maths` or `calculator - maths` -> `calculator`."""
    head = re.split(r"\s*[:\uff1a(\uff08]\s*|\s+[-\u2013\u2014]\s+", item, maxsplit=1)[0]
    return head.strip().strip("*_`\"'").strip()


def parse_examples(text: str) -> tuple[list[Example], list[str]]:
    """`Q:`/`A:` pairs (also `Question:`, `问:`, full-width colons, bold, bullets, numbers); a question or an answer
    runs over lines until the next marker."""
    pairs: list[list[list[str]]] = []
    part = -1  # 0: in a question, 1: in an answer
    for line in text.splitlines():
        question, answer = _QUESTION.match(line), _ANSWER.match(line)
        if question:
            pairs.append([[question.group("text")], []])
            part = 0
        elif answer and pairs:
            pairs[-1][1].append(answer.group("text"))
            part = 1
        elif pairs and part >= 0:
            pairs[-1][part].append(line)
    examples: list[Example] = []
    dropped = 0
    for question_lines, answer_lines in pairs:
        q, a = "\n".join(question_lines).strip(), "\n".join(answer_lines).strip()
        if not q or not a or len(q) > 4000 or len(a) > 8000:
            dropped += 1
            continue
        examples.append(Example(question=q, answer=a))
    notes = [f"{dropped} example(s) without a question and an answer (or too long) were left out."] if dropped else []
    if len(examples) > _MAX_EXAMPLES:
        notes.append(f"Only the first {_MAX_EXAMPLES} of {len(examples)} examples were kept.")
        examples = examples[:_MAX_EXAMPLES]
    return examples, notes


@dataclass
class Context:
    """What a generation checks the model's answer against."""

    tools: dict[str, str]  # catalog name (lowercase) -> name
    knowledge_bases: list[KnowledgeBaseLabel]
    taken_names: Callable[[str], Awaitable[set[str]]]  # (prefix) -> lowercase names of the tenant's agents


class _Coercer:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.notes: list[str] = []

    async def value(self, name: GeneratedField, text: str) -> Any:
        """The field's value from its section's text, or None when the text does not make a valid one."""
        if name in ("name", "display_name"):
            line = _one_line(text)
            if not line:
                return None
            if len(line) > _LIMITS[name]:
                self.notes.append(f"The {name} the model wrote is longer than {_LIMITS[name]} characters.")
                return None
            return await self._unique(line) if name == "name" else line
        if name in ("description", "duty", "constraints"):
            value = _CONTROL.sub(lambda m: m.group() if m.group() in "\n\t" else "", text).strip()
            if not value:
                return None
            if len(value) > _LIMITS[name]:
                self.notes.append(f"The {name} the model wrote is longer than {_LIMITS[name]} characters.")
                return None
            return value
        if name == "examples":
            examples, notes = parse_examples(text)
            self.notes.extend(notes)
            return [e.model_dump() for e in examples] or None
        if name == "tools":
            return self._choose(text, "tool", self.context.tools, limit=50)
        kbs = self.context.knowledge_bases
        by_name = {" ".join(kb.name.lower().split()): str(kb.id) for kb in kbs} | {str(kb.id): str(kb.id) for kb in kbs}
        return self._choose(text, "knowledge base", by_name, limit=20)

    def _choose(self, text: str, what: str, known: dict[str, str], *, limit: int) -> list[str] | None:
        """The known items the text names (one a line, or separated by commas), in order; [] when it says none;
        None when it names only unknown ones."""

        def match(item: str) -> str | None:
            return known.get(item.lower()) or known.get(_name_part(item).lower())

        chosen: list[str] = []
        unknown: list[str] = []
        for line in text.splitlines():
            # A line that names one item as a whole stays whole (a knowledge base's name may hold a comma).
            items = [_item(line)] if match(_item(line)) else [_item(piece) for piece in _LIST_SPLIT.split(line)]
            for item in items:
                if not item or item.lower() in _NONE:
                    continue
                found = match(item)
                if found is None:
                    unknown.append(_name_part(item)[:80])
                elif found not in chosen:
                    chosen.append(found)
        if unknown:
            self.notes.append(f"Left out what is no {what} here: {', '.join(dict.fromkeys(unknown))}.")
        if not chosen and unknown:
            return None
        return chosen[:limit]

    async def _unique(self, name: str) -> str:
        """`name`, or with " 2", " 3", ... when an agent of the tenant has it (ignoring case)."""
        taken = await self.context.taken_names(name)
        if name.lower() not in taken:
            return name
        looked_up = {name}
        for number in range(2, 1000):
            suffix = f" {number}"
            base = name[: _LIMITS["name"] - len(suffix)].rstrip()
            if base not in looked_up:  # shortened to fit: its namesakes need not start with the whole name
                taken |= await self.context.taken_names(base)
                looked_up.add(base)
            candidate = base + suffix
            if candidate.lower() not in taken:
                self.notes.append(f"An agent named {name!r} exists; the draft is named {candidate!r}.")
                return candidate
        return name  # a thousand namesakes: creating the agent will say that the name is taken


# --- The stream ------------------------------------------------------------------------------------------------


@dataclass
class Generation:
    """One prepared generation: the model, its messages and what its answer is checked against."""

    model: ChatModel
    messages: list[Message]
    fields: tuple[GeneratedField, ...]
    context: Context
    prompt: Prompt
    draft: dict[str, Any] = field(default_factory=dict)

    async def events(self) -> AsyncIterator[BaseGenerationEvent]:
        """`field.delta`s and `field.completed`s as the model writes, then `draft.completed` or
        `generation.failed`."""
        parser = SectionParser(self.fields)
        coercer = _Coercer(self.context)
        try:
            async with asyncio.timeout(GENERATION_SECONDS):
                async for chunk in self.model.stream(self.messages):
                    if chunk.content:
                        for event in parser.feed(chunk.content):
                            async for out in self._handle(event, coercer):
                                yield out
            for event in parser.finish():
                async for out in self._handle(event, coercer):
                    yield out
        except ProviderError as exc:
            yield self._failed(exc.code.value, exc.message)
            return
        except TimeoutError:
            yield self._failed("timeout", f"The model did not finish within {GENERATION_SECONDS:.0f} seconds.")
            return
        except Exception:
            logger.exception("agent generation failed")
            yield self._failed("internal_error", "The draft could not be made.")
            return
        if not self.draft:
            message = (
                "The model's answer had none of the expected sections."
                if not parser.seen
                else "The model wrote none of the fields validly."
            )
            yield self._failed("bad_output", message)
            return
        yield DraftCompleted(
            draft=GeneratedDraft.model_validate(self.draft),
            missing=self._missing(),
            notes=coercer.notes,
            prompt_version=self.prompt.version,
        )

    async def _handle(self, event: ParseEvent, coercer: _Coercer) -> AsyncIterator[BaseGenerationEvent]:
        if isinstance(event, SectionText):
            yield FieldDelta(field=event.field, delta=event.text)
        elif isinstance(event, SectionSkipped):
            if event.label not in _LABELS:
                coercer.notes.append(f"Left out a section the draft has no field for: {event.label!r}.")
        else:
            value = await coercer.value(event.field, event.text)
            if value is not None:
                self.draft[event.field] = value
                yield FieldCompleted(field=event.field, value=value)

    def _missing(self) -> list[GeneratedField]:
        return [f for f in self.fields if f not in self.draft]

    def _failed(self, code: str, message: str) -> GenerationFailed:
        return GenerationFailed(
            code=code, message=message, draft=GeneratedDraft.model_validate(self.draft), missing=self._missing()
        )


def sse_frames(events: AsyncIterator[BaseGenerationEvent]) -> AsyncIterator[str]:
    """Server-Sent Events: `id: <n>`, `event: <type>`, `data: <the event without its type, as JSON>`."""

    async def frames() -> AsyncIterator[str]:
        seq = 0
        async for event in events:
            seq += 1
            data = event.model_dump_json(exclude={"type"}, exclude_none=True)  # a draft holds only what was made
            yield f"id: {seq}\nevent: {event.type}\ndata: {data}\n\n"

    return frames()


# --- The service -----------------------------------------------------------------------------------------------


class GenerationService:
    """Prepares generations: everything that can refuse the request (the model, the caller's knowledge bases) is
    checked here, before any stream starts."""

    def __init__(self, session: AsyncSession, engines: Engines, caller: Caller) -> None:
        self.session = session
        self.engines = engines
        self.caller = caller
        self.providers = ProviderService(session, engines, caller)

    async def generate(self, data: GenerateIn, language: Language) -> Generation:
        """A draft of a new agent from `data.description` (the route's `AgentManager` checked the caller's role)."""
        fields = tuple(f for f in FIELDS if data.fields is None or f in data.fields)
        model = await self._model(data.model_id)
        kbs = (await readable_knowledge_bases(self.session, self.caller))[:MAX_KNOWLEDGE_BASES]
        catalog = tool_catalog()
        prompt = load_prompt("generate", language)
        system = prompt.render(
            sections=", ".join(_section_name(f) for f in fields),
            tools=_lines(f"- {t.name}: {_first_sentence(t.description)}" for t in catalog),
            knowledge_bases=_lines(f"- {kb.name}: {_first_sentence(kb.about) or '-'}" for kb in kbs),
            current=_render_draft(data.current, kbs) if data.current is not None else "(none)",
        )
        messages: list[Message] = [{"role": "system", "content": system}, {"role": "user", "content": data.description}]
        return Generation(model, messages, fields, self._context(kbs), prompt)

    async def improve(self, agent: Granted[Agent], note: str, transcript: str, language: Language) -> Generation:
        """Better instructions (duty, constraints, examples) for an agent the caller may edit, from their note and
        a conversation's transcript, written by the agent's own model."""
        resource = agent.resource
        model = await self._model(resource.model_id, agent_id=resource.id)
        prompt = load_prompt("improve", language)
        current = AgentDraft(
            duty=resource.duty,
            constraints=resource.constraints,
            examples=[Example.model_validate(e) for e in resource.examples],
        )
        system = prompt.render(
            sections=", ".join(_section_name(f) for f in IMPROVE_FIELDS),
            name=resource.display_name or resource.name,
            description=resource.description or "-",
            tools=", ".join(str(t.get("name")) for t in resource.tools) or "-",
            current=_render_draft(current, []),
            transcript=transcript[-MAX_TRANSCRIPT_CHARS:] or "(none)",
        )
        messages: list[Message] = [{"role": "system", "content": system}, {"role": "user", "content": note}]
        return Generation(model, messages, IMPROVE_FIELDS, self._context([]), prompt)

    async def _model(self, model_id: uuid.UUID | None, *, agent_id: uuid.UUID | None = None) -> ChatModel:
        if model_id is not None:
            facts = await model_facts(self.session, self.caller.tenant_id, model_id)
            if facts is None or facts.kind not in (ModelKind.LLM, ModelKind.VLM):
                problem = "No such model in this tenant." if facts is None else f"The model is an {facts.kind} model."
                raise InvalidGeneration(
                    f"{problem} A draft is written by an llm or vlm model of the tenant.",
                    extra={"errors": [{"loc": ["body", "model_id"], "msg": problem, "type": "invalid_reference"}]},
                )
        # A person waits for the draft: over the model's per-minute limit it fails at once, it does not wait a minute.
        client, _ = await self.providers.client_and_config(
            model_id, ModelKind.LLM, agent_id=agent_id, wait_for_rate=False
        )
        model: ChatModel = client
        return model

    def _context(self, kbs: list[KnowledgeBaseLabel]) -> Context:
        engines, tenant_id = self.engines, self.caller.tenant_id

        async def taken_names(prefix: str) -> set[str]:
            # The request's transaction has ended when the stream runs: a short one of its own.
            async with engines.sessions() as session:
                return await AgentRepository(session, tenant_id).names_starting_with(prefix)

        return Context({t.name.lower(): t.name for t in tool_catalog()}, kbs, taken_names)


def _section_name(name: GeneratedField) -> str:
    return "knowledge_bases" if name == "knowledge_base_ids" else name


def _lines(lines: Iterable[str]) -> str:
    return "\n".join(lines) or "(none)"


def _first_sentence(text: str) -> str:
    flat = " ".join(text.split())
    match = re.match(r"(.{1,300}?[.。!?\uff01\uff1f])(\s|$)", flat)
    return match.group(1) if match else flat[:300]


def _render_draft(draft: AgentDraft, kbs: Sequence[KnowledgeBaseLabel]) -> str:
    """A draft in the sectioned format the model answers in."""
    names = {kb.id: kb.name for kb in kbs}
    parts: list[str] = []
    for name in FIELDS:
        value = getattr(draft, name)
        if value is None or value == "" or value == []:
            continue
        if name == "examples":
            text = "\n".join(f"Q: {e.question}\nA: {e.answer}" for e in value)
        elif name == "tools":
            text = "\n".join(value)
        elif name == "knowledge_base_ids":
            text = "\n".join(names[i] for i in value if i in names)  # only those the caller may read
        else:
            text = str(value)
        if text:
            parts.append(f"### {_section_name(name)}\n{text}")
    return "\n\n".join(parts) or "(none)"


def transcript_of(turns: Iterable[tuple[str, str, Sequence[dict[str, Any]]]]) -> str:
    """A conversation as text for the model: `role: content`, with the tools each answer called."""
    lines: list[str] = []
    for role, content, tool_calls in turns:
        calls = ", ".join(str(call.get("name")) for call in tool_calls if isinstance(call, dict))
        lines.append(f"{role}: {content}" + (f"\n[tools called: {calls}]" if calls else ""))
    return "\n\n".join(lines)
