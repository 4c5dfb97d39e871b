import { api, unwrap, type Schemas } from "@/api/client";

export type Agent = Schemas["AgentRead"];
export type AgentCreate = Schemas["AgentCreate"];
export type AgentUpdate = Schemas["AgentUpdate"];
export type ToolUse = Schemas["ToolUse"];
export type Model = Schemas["ModelRead"];
export type KnowledgeBase = Schemas["KnowledgeBaseRead"];
export type Group = Schemas["GroupRead"];
export type Share = Schemas["ShareRead"];
export type SharePermission = Schemas["SharePermission"];
export type AgentPage = Schemas["Page_AgentRead_"];

/** The most items a picker loads at once (the API's page limit). */
const PICKER_LIMIT = 200;

export function listAgents(params: { q?: string; limit: number; offset: number }): Promise<AgentPage> {
  return unwrap(api.GET("/api/agents", { params: { query: { q: params.q || undefined, limit: params.limit, offset: params.offset } } }));
}

/** Every agent the caller sees (for sub-agent pickers), up to the page limit. */
export async function listAllAgents(): Promise<Agent[]> {
  return (await listAgents({ limit: PICKER_LIMIT, offset: 0 })).items;
}

export function getAgent(id: string): Promise<Agent> {
  return unwrap(api.GET("/api/agents/{agent_id}", { params: { path: { agent_id: id } } }));
}

export function createAgent(body: AgentCreate): Promise<Agent> {
  return unwrap(api.POST("/api/agents", { body }));
}

export function updateAgent(id: string, body: AgentUpdate): Promise<Agent> {
  return unwrap(api.PATCH("/api/agents/{agent_id}", { params: { path: { agent_id: id } }, body }));
}

export async function deleteAgent(id: string): Promise<void> {
  await unwrap(api.DELETE("/api/agents/{agent_id}", { params: { path: { agent_id: id } } }));
}

/** The models an agent may use: LLMs and vision LLMs of the tenant. */
export async function listChatModels(): Promise<Model[]> {
  const [llm, vlm] = await Promise.all(
    (["llm", "vlm"] as const).map((kind) =>
      unwrap(api.GET("/api/models", { params: { query: { kind, limit: PICKER_LIMIT } } })),
    ),
  );
  return [...llm.items, ...vlm.items];
}

export async function listKnowledgeBases(): Promise<KnowledgeBase[]> {
  return (await unwrap(api.GET("/api/knowledge-bases", { params: { query: { limit: PICKER_LIMIT } } }))).items;
}

export async function listGroups(): Promise<Group[]> {
  return (await unwrap(api.GET("/api/groups", { params: { query: { limit: PICKER_LIMIT } } }))).items;
}

export function listShares(agentId: string): Promise<Share[]> {
  return unwrap(api.GET("/api/agents/{agent_id}/shares", { params: { path: { agent_id: agentId } } }));
}

export function shareAgent(agentId: string, groupId: string, permission: SharePermission): Promise<Share> {
  return unwrap(
    api.PUT("/api/agents/{agent_id}/shares/{group_id}", {
      params: { path: { agent_id: agentId, group_id: groupId } },
      body: { permission },
    }),
  );
}

export async function unshareAgent(agentId: string, groupId: string): Promise<void> {
  await unwrap(
    api.DELETE("/api/agents/{agent_id}/shares/{group_id}", { params: { path: { agent_id: agentId, group_id: groupId } } }),
  );
}

// --- tool catalog -------------------------------------------------------------------------------------------

/** A JSON schema as the tool catalog gives it (the subset the settings form reads). */
export interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
  format?: string;
  [extra: string]: unknown;
}

/** One tool of the catalog (`GET /api/tools`), its settings schema read as the form generator's JsonSchema. */
export type ToolInfo = Omit<Schemas["ToolRead"], "settings_schema"> & { settings_schema: JsonSchema };

/** The tools an agent can be given, with their settings schemas, from the server's registry. */
export async function listTools(): Promise<ToolInfo[]> {
  return (await unwrap(api.GET("/api/tools"))) as ToolInfo[];
}

// --- versions -----------------------------------------------------------------------------------------------

export type Version = Schemas["VersionRead"];
export type AgentConfig = Schemas["AgentConfig"];
export type VersionDiff = Schemas["VersionDiff"];
export type FieldChange = Schemas["FieldChange"];
/** A side of a comparison: a version's number or the draft. */
export type VersionRef = number | "draft";

/** Publish the saved draft as the next version (the published one from now on). */
export function publishAgent(agentId: string, note: string): Promise<Version> {
  return unwrap(api.POST("/api/agents/{agent_id}/publish", { params: { path: { agent_id: agentId } }, body: { note } }));
}

/** The agent's versions, newest first. */
export function listVersions(agentId: string): Promise<Version[]> {
  return unwrap(api.GET("/api/agents/{agent_id}/versions", { params: { path: { agent_id: agentId } } }));
}

export function getVersion(agentId: string, number: number): Promise<Version> {
  return unwrap(api.GET("/api/agents/{agent_id}/versions/{number}", { params: { path: { agent_id: agentId, number } } }));
}

export function setVersionDisabled(agentId: string, number: number, disabled: boolean): Promise<Version> {
  return unwrap(
    api.PATCH("/api/agents/{agent_id}/versions/{number}", { params: { path: { agent_id: agentId, number } }, body: { disabled } }),
  );
}

/** Make the draft what version `number` was; the published version stays until the draft is published again. */
export function rollbackAgent(agentId: string, number: number): Promise<Agent> {
  return unwrap(
    api.POST("/api/agents/{agent_id}/versions/{number}/rollback", { params: { path: { agent_id: agentId, number } } }),
  );
}

/** What changes, field by field, from `base` to `target`. */
export function compareVersions(agentId: string, base: VersionRef, target: VersionRef): Promise<VersionDiff> {
  return unwrap(
    api.GET("/api/agents/{agent_id}/compare", {
      params: { path: { agent_id: agentId }, query: { base: String(base), target: String(target) } },
    }),
  );
}

export { agentLabel } from "@/features/chat/api";
