import { api, unwrap, type Schemas } from "@/api/client";
import { readRunStream, type RunEvent, type StreamResult } from "@/api/stream";

export type Agent = Schemas["AgentRead"];
export type Conversation = Schemas["ConversationRead"];
export type ConversationDetail = Schemas["ConversationDetail"];
export type Run = Schemas["RunRead"];

export function listAgents() {
  return unwrap(api.GET("/api/agents", { params: { query: { limit: 200 } } }));
}

export function readAgent(id: string) {
  return unwrap(api.GET("/api/agents/{agent_id}", { params: { path: { agent_id: id } } }));
}

/** A page of the caller's conversations, latest first; with `q`, only those whose title contains it. */
export function listConversations(params: { q?: string; limit: number; offset: number }) {
  return unwrap(
    api.GET("/api/conversations", {
      params: { query: { q: params.q?.trim() || undefined, limit: params.limit, offset: params.offset } },
    }),
  );
}

export function readConversation(id: string) {
  return unwrap(api.GET("/api/conversations/{conversation_id}", { params: { path: { conversation_id: id } } }));
}

export function renameConversation(id: string, title: string) {
  return unwrap(
    api.PATCH("/api/conversations/{conversation_id}", { params: { path: { conversation_id: id } }, body: { title } }),
  );
}

export function deleteConversation(id: string) {
  return unwrap(api.DELETE("/api/conversations/{conversation_id}", { params: { path: { conversation_id: id } } }));
}

/** The conversation's latest run, to pick up a run that is still going after a reload. */
export async function latestRun(conversationId: string): Promise<Run | undefined> {
  const page = await unwrap(api.GET("/api/runs", { params: { query: { conversation_id: conversationId, limit: 1 } } }));
  return page.items[0];
}

export function stopRun(runId: string) {
  return unwrap(api.POST("/api/runs/{run_id}/stop", { params: { path: { run_id: runId } } }));
}

/** Which of an agent's versions a run runs: a number, `draft`, or (undefined) the published one. */
export type RunVersion = Schemas["RunCreate"]["version"];

/** Start a run and read its stream; `onResponse` sees the headers (run and conversation ids) first. */
export function startRun(
  agentId: string,
  body: Schemas["RunCreate"],
  onEvent: (event: RunEvent) => void,
  signal: AbortSignal,
): Promise<StreamResult> {
  const request = new Request(`/api/agents/${encodeURIComponent(agentId)}/runs`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify(body),
    signal,
  });
  return readRunStream(request, onEvent);
}

/** Answer the conversation's last message again (a new run); its stream, as `startRun`'s. */
export function regenerate(
  conversationId: string,
  onEvent: (event: RunEvent) => void,
  signal: AbortSignal,
): Promise<StreamResult> {
  const request = new Request(`/api/conversations/${encodeURIComponent(conversationId)}/regenerate`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: "{}",
    signal,
  });
  return readRunStream(request, onEvent);
}

/** The name people see: the agent's display name when it has one, else its name. */
export function agentLabel(agent: { name: string; display_name?: string | null }): string {
  return agent.display_name?.trim() || agent.name;
}

/** How long a finished turn waits for memory's `memory.saved` (extraction runs in the background after the end). */
const LEARNED_WAIT_MS = 90_000;

/** Whether the caller's runs may learn memories at all (the platform's switch and the caller's personal levels). */
export async function memoryLearns(): Promise<boolean> {
  const settings = await unwrap(api.GET("/api/memory/settings"));
  return settings.enabled && (settings.levels.user || settings.levels.user_agent);
}

/**
 * Wait for what memory saved from a run that has ended (`memory.saved`, written after the terminal event): its
 * events after `afterSeq`, until that event comes, `signal` aborts or a time limit passes. Resolves to the event, or
 * null when nothing was saved in time.
 */
export async function awaitMemorySaved(
  runId: string,
  afterSeq: number,
  signal: AbortSignal,
): Promise<Extract<RunEvent, { type: "memory.saved" }> | null> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  signal.addEventListener("abort", stop);
  const timer = setTimeout(stop, LEARNED_WAIT_MS);
  let saved: Extract<RunEvent, { type: "memory.saved" }> | null = null;
  try {
    const request = new Request(`/api/runs/${encodeURIComponent(runId)}/events`, {
      headers: { Accept: "text/event-stream", "Last-Event-ID": String(afterSeq) },
      signal: controller.signal,
    });
    await readRunStream(request, (event) => {
      if (event.type === "memory.saved") {
        saved = event;
        controller.abort();
      }
    });
  } catch {
    // aborted (the time limit, the page left) or refused: nothing learned to show
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", stop);
  }
  return saved;
}
