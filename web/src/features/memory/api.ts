import { api, unwrap, type Schemas } from "@/api/client";

export type Memory = Schemas["MemoryRead"];
export type MemoryLevel = Schemas["MemoryLevel"];
export type MemoryCreate = Schemas["MemoryCreate"];
export type MemorySettings = Schemas["MemorySettingsRead"];
export type MemorySettingsUpdate = Schemas["MemorySettingsUpdate"];
export type AgentSummary = Pick<Schemas["AgentRead"], "id" | "name" | "display_name">;

export const LEVELS: MemoryLevel[] = ["user", "user_agent", "agent", "tenant"];
/** The levels that need an agent. */
export const AGENT_LEVELS: ReadonlySet<MemoryLevel> = new Set(["agent", "user_agent"]);

/** The caller's memories (newest first), or with `q` the most relevant first. */
export async function listMemories(filter: { level?: MemoryLevel; agentId?: string; q?: string }): Promise<Memory[]> {
  const page = await unwrap(
    api.GET("/api/memories", {
      params: {
        query: {
          limit: 200,
          ...(filter.level ? { level: filter.level } : {}),
          ...(filter.agentId ? { agent_id: filter.agentId } : {}),
          ...(filter.q ? { q: filter.q } : {}),
        },
      },
    }),
  );
  return page.items;
}

export function createMemory(body: MemoryCreate): Promise<Memory> {
  return unwrap(api.POST("/api/memories", { body }));
}

export function updateMemory(id: string, text: string): Promise<Memory> {
  return unwrap(api.PATCH("/api/memories/{memory_id}", { params: { path: { memory_id: id } }, body: { text } }));
}

export async function deleteMemory(id: string): Promise<void> {
  await unwrap(api.DELETE("/api/memories/{memory_id}", { params: { path: { memory_id: id } } }));
}

export function memorySettings(): Promise<MemorySettings> {
  return unwrap(api.GET("/api/memory/settings"));
}

export function updateMemorySettings(body: MemorySettingsUpdate): Promise<MemorySettings> {
  return unwrap(api.PUT("/api/memory/settings", { body }));
}

/** Whether an agent's runs use memory (managers). */
export function agentMemory(agentId: string) {
  return unwrap(api.GET("/api/memory/agents/{agent_id}", { params: { path: { agent_id: agentId } } }));
}

export function setAgentMemory(agentId: string, enabled: boolean) {
  return unwrap(api.PUT("/api/memory/agents/{agent_id}", { params: { path: { agent_id: agentId } }, body: { enabled } }));
}

export async function listAgentSummaries(): Promise<AgentSummary[]> {
  const page = await unwrap(api.GET("/api/agents", { params: { query: { limit: 200 } } }));
  return page.items.map(({ id, name, display_name }) => ({ id, name, display_name }));
}

export function agentName(agent: AgentSummary | undefined, fallback: string): string {
  return agent ? agent.display_name || agent.name : fallback;
}
