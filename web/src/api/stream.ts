import { createParser } from "eventsource-parser";
import { apiFetch } from "./client";
import { ApiError, problemOf } from "./problem";
import type { components } from "./schema";

/** One event of a run, as the OpenAPI document types it (`type` is the SSE event name), with its sequence number. */
export type RunEvent = components["schemas"]["RunStreamEvent"] & { seq: number };
export type RunEventType = RunEvent["type"];

const TERMINAL: ReadonlySet<string> = new Set(["run.completed", "run.failed", "run.stopped"]);

export function isTerminal(event: RunEvent): boolean {
  return TERMINAL.has(event.type) && !("parent_call_id" in event && event.parent_call_id);
}

export interface StreamResult {
  /** Sequence number of the last event received (resume after it). */
  lastSeq: number;
  /** The terminal event, if the stream reached it. */
  terminal: RunEvent | null;
  response: Response;
}

/**
 * Read a run's SSE stream from `request`, calling `onEvent` for every event in order. Ends at the terminal event, when
 * the server closes the stream or when `signal` aborts; a dropped connection returns what arrived so far.
 */
export async function readRunStream(
  request: Request,
  onEvent: (event: RunEvent) => void,
  onResponse?: (response: Response) => void,
): Promise<StreamResult> {
  const response = await apiFetch(request);
  if (!response.ok || !response.body) throw new ApiError(await problemOf(response));
  onResponse?.(response);
  let lastSeq = 0;
  let terminal: RunEvent | null = null;
  const parser = createParser({
    onEvent(message) {
      const seq = Number(message.id ?? 0);
      if (seq && seq <= lastSeq) return; // already seen (a resumed stream starts after lastSeq anyway)
      const event = { ...(JSON.parse(message.data) as object), type: message.event, seq } as RunEvent;
      if (seq) lastSeq = seq;
      onEvent(event);
      if (isTerminal(event)) terminal = event;
    },
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    while (!terminal) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.feed(value);
    }
  } catch (error) {
    if (request.signal.aborted) throw error;
    // The connection dropped: the caller resumes from lastSeq.
  } finally {
    reader.cancel().catch(() => undefined);
  }
  return { lastSeq, terminal, response };
}

/** Follow a run's stored and live events after `afterSeq`, resuming after dropped connections until it ends. */
export async function followRun(
  runId: string,
  afterSeq: number,
  onEvent: (event: RunEvent) => void,
  signal: AbortSignal,
): Promise<RunEvent | null> {
  let last = afterSeq;
  for (let attempt = 0; attempt < 20 && !signal.aborted; attempt++) {
    const request = new Request(`/api/runs/${encodeURIComponent(runId)}/events`, {
      headers: { Accept: "text/event-stream", "Last-Event-ID": String(last) },
      signal,
    });
    const result = await readRunStream(request, onEvent);
    if (result.lastSeq > last) attempt = 0;
    last = Math.max(last, result.lastSeq);
    if (result.terminal) return result.terminal;
    await new Promise((resolve) => setTimeout(resolve, Math.min(500 * 2 ** attempt, 5000)));
  }
  return null;
}

/**
 * Read any SSE stream from `request` (a generation's, say), calling `onEvent` with each event's name and parsed data,
 * until the server closes it. Throws the problem document of a refused request, and an AbortError when `request`'s
 * signal aborts; a dropped connection simply ends it (the caller sees that no final event came).
 */
export async function readEventStream(request: Request, onEvent: (type: string, data: unknown) => void): Promise<void> {
  const response = await apiFetch(request);
  if (!response.ok || !response.body) throw new ApiError(await problemOf(response));
  const parser = createParser({
    onEvent(message) {
      onEvent(message.event ?? "message", JSON.parse(message.data) as unknown);
    },
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.feed(value);
    }
  } catch (error) {
    if (request.signal.aborted) throw error;
  } finally {
    reader.cancel().catch(() => undefined);
  }
}
