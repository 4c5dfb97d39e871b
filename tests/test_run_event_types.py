"""The typed events of a run: each survives the SSE encoder and a client's parsing unchanged, the OpenAPI
document publishes their union, and docs/runs.md lists every one of them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nexent.runtime import event_types as et
from nexent.runtime.events import Event, parse_sse, sse_frame
from nexent.runtime.models import TERMINAL_EVENTS
from nexent.server import create_app

USAGE = et.Usage(input_tokens=12, output_tokens=34)
NESTED = {"agent": "researcher", "parent_call_id": "call_1"}

# One event of each type, as producers build them (nested ones as a sub-agent's).
SAMPLES: list[et.BaseRunEvent] = [
    et.RunStarted(run_id="r", agent_id="a", conversation_id="c"),
    et.ThinkingDelta(agent=None, parent_call_id=None, text="Let me think… ünïcode"),
    et.ThinkingDelta(**NESTED, text="A plan", kind="plan"),
    et.MessageDelta(agent=None, parent_call_id=None, text="Hello\nworld"),
    et.MessageDelta(**NESTED, text="The answer", final=True),
    et.ToolCall(**NESTED, call_id="call_2", name="calculator", arguments={"expression": "2+2"}),
    et.ToolResult(agent=None, parent_call_id=None, call_id="call_2", name="calculator", output="4", error=None),
    et.ToolResult(**NESTED, call_id="call_3", name="fetch", output=None, error="timed out"),
    et.Code(agent=None, parent_call_id=None, call_id="call_4", code="print(1)"),
    et.StepCompleted(**NESTED, kind="action", step=1, usage=USAGE, error=None, is_final_answer=False, duration=0.25),
    et.StepCompleted(agent=None, parent_call_id=None, kind="planning", plan="1. look", usage=None),
    et.Citation(tool="webpage", title="A page", url="https://example.com", snippet="text", metadata={"n": 1}),
    et.SkillLoaded(name="csv-summary", version=2),
    et.MemoryRecalled(memories=[et.RememberedFact(id="m1", level="user", text="The user likes tea.")]),
    et.MemorySaved(
        added=[et.RememberedFact(id="m2", level="user_agent", text="The user's project is Apollo.")],
        updated=[et.RememberedFact(id="m1", level="user", text="The user likes coffee.")],
    ),
    et.AttachmentProcessing(attachment_id="f1", name="notes.pdf", kind="document"),
    et.AttachmentReady(attachment_id="f1", name="notes.pdf", kind="document", mode="context", tokens=120),
    et.AttachmentReady(attachment_id="f2", name="photo.png", kind="image", mode="ocr", note="OCR text stands in."),
    et.AttachmentFailed(attachment_id="f3", name="bad.docx", kind="document", code="corrupt_file", reason="Broken."),
    et.AgentCompleted(**NESTED, answer="sub answer", state="success", usage=USAGE),
    et.RunCompleted(agent="main", parent_call_id=None, answer="done", state="max_steps", usage=USAGE),
    et.RunFailed(code="worker_lost", message="The process stopped."),
    et.RunFailed(agent="main", code="agent_failed", message="boom", error="ValueError: boom", usage=USAGE),
    et.RunStopped(reason="stopped before it started"),
    et.RunStopped(agent="main", error="interrupted", usage=USAGE),
]


def test_the_samples_cover_every_event_type() -> None:
    assert {event.type for event in SAMPLES} == set(et.EVENT_MODELS)
    assert {t for t, model in et.EVENT_MODELS.items() if model.terminal} == TERMINAL_EVENTS


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type)
def test_every_event_round_trips_through_the_sse_encoder(event: et.BaseRunEvent) -> None:
    frame = sse_frame(Event.of(7, event))
    assert frame.startswith(f"id: 7\nevent: {event.type}\ndata: {{") and frame.endswith("}\n\n")
    assert "\n" not in frame.split("data: ", 1)[1].rstrip("\n")  # one data line, whatever the text
    seq, parsed = parse_sse(frame)
    assert seq == 7 and parsed == event and type(parsed) is type(event)
    # Only what the producer set goes on the wire (a thinking delta has `kind` only for planning text).
    assert parsed.model_fields_set - {"type"} == event.model_fields_set - {"type"}


def test_unset_fields_are_left_out_of_the_wire_data() -> None:
    assert et.ThinkingDelta(agent=None, parent_call_id=None, text="x").wire_data() == {
        "agent": None,
        "parent_call_id": None,
        "text": "x",
    }
    assert et.RunFailed(code="interrupted", message="m").wire_data() == {"code": "interrupted", "message": "m"}


def test_the_openapi_document_publishes_the_event_union() -> None:
    document = create_app().openapi()
    schemas = document["components"]["schemas"]
    union = schemas["RunStreamEvent"]
    assert union["discriminator"]["propertyName"] == "type"
    mapping = union["discriminator"]["mapping"]
    assert set(mapping) == set(et.EVENT_MODELS)
    for ref in mapping.values():
        assert ref.removeprefix("#/components/schemas/") in schemas
    frames = schemas["RunStreamFrame"]["oneOf"]
    assert sorted(frame["properties"]["event"]["const"] for frame in frames) == sorted(et.EVENT_MODELS)
    for frame in frames:
        data = schemas[frame["properties"]["data"]["contentSchema"]["$ref"].removeprefix("#/components/schemas/")]
        assert "type" not in data["properties"]
    stream = {"schema": {"$ref": "#/components/schemas/RunStreamFrame"}}
    for path, method in (("/api/agents/{agent_id}/runs", "post"), ("/api/runs/{run_id}/events", "get")):
        assert document["paths"][path][method]["responses"]["200"]["content"] == {"text/event-stream": stream}


def test_docs_list_every_event_type() -> None:
    text = (Path(__file__).parents[1] / "docs" / "runs.md").read_text(encoding="utf-8")
    section = text.split("## Event schema", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-z.]+)` \|", section, flags=re.MULTILINE)
    assert sorted(documented) == sorted(et.EVENT_MODELS)
