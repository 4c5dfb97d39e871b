import type { Schemas } from "@/api/client";
import type { RunEvent } from "@/api/stream";
import { applyAttachmentEvent, type AttachmentState } from "./attachments/events";

export type Citation = Schemas["CitationData"];
export type Usage = Schemas["Usage"];
/** A memory as a run's events show it (`memory.recalled`, `memory.saved`). */
export type RememberedFact = Extract<RunEvent, { type: "memory.recalled" }>["memories"][number];
type SavedEvent = Extract<RunEvent, { type: "memory.saved" }>;

/** What the extraction after a run saved: facts added, and facts whose text it replaced. */
export interface Learned {
  added: RememberedFact[];
  updated: RememberedFact[];
}

export function learnedOf(event: SavedEvent): Learned {
  return { added: event.added ?? [], updated: event.updated ?? [] };
}

/** A tool call (or a sub-agent call) and what came of it; a sub-agent's own events nest in `inner`. */
export interface Step {
  callId: string;
  name: string;
  arguments: unknown;
  code?: string;
  output?: string;
  error?: string | null;
  status: "running" | "done" | "error";
  inner: Turn;
}

/** What an agent produced for one message: text, thinking, steps and citations, built from the run's events. */
export interface Turn {
  text: string;
  thinking: string;
  steps: Step[];
  citations: Citation[];
  /** The memories added to the run's context before it started. */
  recalled: RememberedFact[];
  /** How the message's attachments were prepared before the agent started (`attachment.*` events). */
  attachments?: AttachmentState[];
  /** What memory learned from the turn (it comes after the run's end). */
  learned?: Learned;
  usage?: Usage | null;
  status: "running" | "completed" | "failed" | "stopped";
  error?: string | null;
  runId?: string;
  conversationId?: string;
  lastSeq: number;
}

export function emptyTurn(): Turn {
  return { text: "", thinking: "", steps: [], citations: [], recalled: [], status: "running", lastSeq: 0 };
}

function stringify(value: unknown): string {
  if (value == null) return "";
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

/** The step of `callId` anywhere in the tree. */
function findStep(turn: Turn, callId: string): Step | undefined {
  for (const step of turn.steps) {
    if (step.callId === callId) return step;
    const inner = findStep(step.inner, callId);
    if (inner) return inner;
  }
  return undefined;
}

/**
 * Apply one event to the turn (mutating a copy-on-write clone is left to the caller: this mutates `turn`).
 * Events of a sub-agent carry the `parent_call_id` of the call that started it and go into that step's `inner`.
 * An event already applied (its `seq` not above `lastSeq`) is ignored, so a resumed stream never duplicates text.
 */
export function applyEvent(turn: Turn, event: RunEvent): void {
  if (event.seq && event.seq <= turn.lastSeq) return;
  if (event.seq) turn.lastSeq = event.seq;
  const parent = "parent_call_id" in event && event.parent_call_id ? findStep(turn, event.parent_call_id) : undefined;
  const target = parent ? parent.inner : turn;
  switch (event.type) {
    case "run.started":
      turn.runId = event.run_id;
      turn.conversationId = event.conversation_id ?? undefined;
      break;
    case "thinking.delta":
      target.thinking += event.text;
      break;
    case "message.delta":
      target.text += event.text;
      break;
    case "tool.call":
      target.steps.push({
        callId: event.call_id,
        name: event.name,
        arguments: event.arguments,
        status: "running",
        inner: emptyTurn(),
      });
      break;
    case "code": {
      const step = findStep(turn, event.call_id);
      if (step) step.code = stringify(event.code);
      else target.steps.push({ callId: event.call_id, name: "code", arguments: null, code: stringify(event.code), status: "running", inner: emptyTurn() });
      break;
    }
    case "tool.result": {
      const step = findStep(turn, event.call_id);
      if (step) {
        step.output = stringify(event.output);
        step.error = event.error;
        step.status = event.error ? "error" : "done";
      }
      break;
    }
    case "citation":
      turn.citations.push(event);
      break;
    case "memory.recalled":
      target.recalled = [...target.recalled, ...event.memories];
      break;
    case "memory.saved":
      turn.learned = learnedOf(event);
      break;
    case "attachment.processing":
    case "attachment.ready":
    case "attachment.failed":
      turn.attachments = applyAttachmentEvent(turn.attachments ?? [], event);
      break;
    case "agent.completed":
      if (parent) {
        parent.inner.status = "completed";
        parent.inner.usage = event.usage;
        if (!parent.inner.text && typeof event.answer === "string") parent.inner.text = event.answer;
      }
      break;
    case "run.completed":
      if (parent) break;
      turn.status = "completed";
      turn.usage = event.usage;
      // The answer is the run's own word for the final text (the deltas may also carry text between steps).
      if (event.answer != null) turn.text = stringify(event.answer);
      finishSteps(turn);
      break;
    case "run.failed":
      if (parent) break;
      turn.status = "failed";
      turn.error = event.message || event.code;
      turn.usage = event.usage ?? turn.usage;
      finishSteps(turn);
      break;
    case "run.stopped":
      if (parent) break;
      turn.status = "stopped";
      turn.usage = event.usage ?? turn.usage;
      finishSteps(turn);
      break;
    default:
      break;
  }
}

function finishSteps(turn: Turn): void {
  for (const step of turn.steps) {
    if (step.status === "running") step.status = "done";
    finishSteps(step.inner);
  }
}

/** A turn from a stored message (its steps without outputs: the run's events give the rest). */
export function turnFromMessage(message: Schemas["MessageRead"]): Turn {
  return {
    text: message.content,
    thinking: "",
    steps: message.tool_calls.map((call) => ({
      callId: String(call.id ?? ""),
      name: String(call.name ?? ""),
      arguments: call.arguments,
      status: "done" as const,
      inner: emptyTurn(),
    })),
    citations: message.citations as Citation[],
    recalled: [],
    usage: (message.usage as Usage | undefined) ?? null,
    status: "completed",
    runId: message.run_id ?? undefined,
    lastSeq: 0,
  };
}
