"""A run's timeline, derived from its stored events and the time each was logged: every step with its duration
and tokens, the model call that opened it, and each tool call with its duration (from its `tool.call` to its
`tool.result`). The events carry no times of their own; the log's `created_at` is when the run's execution logged
each one, a few milliseconds after the agent produced it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nexent.runtime.event_types import Usage
from nexent.runtime.models import TERMINAL_EVENTS
from nexent.runtime.schemas import ModelCallTiming, RunTimeline, TimelineStep, ToolCallTiming

# The events a timeline reads (deltas, citations and the like say nothing about where the time went).
TIMELINE_EVENTS = frozenset({"run.started", "tool.call", "code", "tool.result", "step.completed", *TERMINAL_EVENTS})


@dataclass(frozen=True)
class LoggedEvent:
    """A stored event: its type, data, and when the run's execution logged it."""

    type: str
    data: dict[str, Any]
    at: datetime


def _seconds(start: datetime, end: datetime) -> float:
    return round(max((end - start).total_seconds(), 0.0), 3)


def _usage(value: Any) -> Usage | None:
    return Usage.model_validate(value) if isinstance(value, dict) else None


def build_timeline(run_id: uuid.UUID, events: Iterable[LoggedEvent]) -> RunTimeline:
    """The timeline of the run whose events (of `TIMELINE_EVENTS`, in order) are `events`.

    Each agent of the run (the run's own, and each sub-agent under the call that started it) is a sequence of steps.
    A step is the model call that opens it, then the tool calls the model asked for: the step starts its `duration`
    before it completed (not before the agent's previous step ended; without a duration, when that step ended or
    the agent started), its model call ends at the step's first tool call (else at the step's end: an answer or a
    failure), and its tokens are the step's. Calls not yet answered have no end; those of steps still under way are
    `open_tool_calls`. The run starts at its first step if that began before `run.started` was logged (the agent's
    first model call goes out while the run's start is still being recorded).
    """
    started_at: datetime | None = None
    finished_at: datetime | None = None
    calls: dict[str, ToolCallTiming] = {}
    pending: dict[tuple[str | None, str | None], list[ToolCallTiming]] = {}
    ends: dict[tuple[str | None, str | None], datetime] = {}  # when each agent's previous step ended
    steps: list[TimelineStep] = []
    for event in events:
        data = event.data
        agent_key = (data.get("agent"), data.get("parent_call_id"))
        if event.type == "run.started":
            started_at = event.at
        elif event.type in TERMINAL_EVENTS:
            finished_at = event.at
        elif event.type in ("tool.call", "code"):
            call = ToolCallTiming(
                call_id=str(data.get("call_id")),
                kind="code" if event.type == "code" else "tool",
                name=str(data.get("name") or "python_interpreter"),
                arguments=data.get("code") if event.type == "code" else data.get("arguments"),
                started_at=event.at,
            )
            calls[call.call_id] = call
            pending.setdefault(agent_key, []).append(call)
        elif event.type == "tool.result":
            known = calls.get(str(data.get("call_id")))
            if known is not None and known.finished_at is None:
                known.output, known.error = data.get("output"), data.get("error")
                known.finished_at, known.duration = event.at, _seconds(known.started_at, event.at)
        elif event.type == "step.completed":
            own = pending.pop(agent_key, [])
            previous_end = ends.get(agent_key)
            duration = data.get("duration")
            if isinstance(duration, int | float) and duration >= 0:
                # Not before the agent's previous step ended: the step's own measure and the log's times are taken
                # a few milliseconds apart.
                step_start = event.at - timedelta(seconds=float(duration))
                step_start = max(step_start, previous_end) if previous_end is not None else step_start
            else:
                step_start = previous_end or _agent_start(agent_key, started_at, calls) or event.at
            model_end = min((call.started_at for call in own), default=event.at)
            usage = _usage(data.get("usage"))
            steps.append(
                TimelineStep(
                    agent=agent_key[0],
                    parent_call_id=agent_key[1],
                    kind=data.get("kind", "action"),
                    step=data.get("step"),
                    started_at=step_start,
                    finished_at=event.at,
                    duration=_seconds(step_start, event.at),
                    usage=usage,
                    error=data.get("error"),
                    is_final_answer=data.get("is_final_answer"),
                    model_call=ModelCallTiming(
                        started_at=step_start,
                        finished_at=max(model_end, step_start),
                        duration=_seconds(step_start, model_end),
                        usage=usage,
                    ),
                    tool_calls=own,
                )
            )
            ends[agent_key] = event.at
    open_calls = [call for own in pending.values() for call in own]
    if started_at is not None and steps:
        started_at = min(started_at, *(step.started_at for step in steps))
    return RunTimeline(
        run_id=run_id, started_at=started_at, finished_at=finished_at, steps=steps, open_tool_calls=open_calls
    )


def _agent_start(
    agent_key: tuple[str | None, str | None], run_started: datetime | None, calls: dict[str, ToolCallTiming]
) -> datetime | None:
    """When an agent started: the run's start for the run's own agent, the parent's call for a sub-agent."""
    parent = agent_key[1]
    if parent is None:
        return run_started
    call = calls.get(parent)
    return call.started_at if call is not None else run_started
