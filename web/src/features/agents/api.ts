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

/**
 * One tool of the catalog. TEMPORARY: this mirrors `ToolRead` of `GET /api/tools` (being added on the server);
 * once that route is in web/openapi.json, replace this with `Schemas["ToolRead"]` and `listTools` with
 * `unwrap(api.GET("/api/tools"))`.
 */
export interface ToolInfo {
  name: string;
  description: string;
  settings_schema: JsonSchema;
  /** Settings the platform fills in from the agent itself (not edited in the tool's form). */
  managed_settings: string[];
}

const NO_SETTINGS: JsonSchema = { type: "object", properties: {}, additionalProperties: false };

/** The built-in tools of docs/agents.md, with the settings schemas the server's registry gives them. */
const BUILT_IN_TOOLS: ToolInfo[] = [
  {
    name: "calculator",
    description: "Evaluate an arithmetic expression exactly and safely. Use it for any non-trivial arithmetic.",
    settings_schema: NO_SETTINGS,
    managed_settings: [],
  },
  {
    name: "current_time",
    description: "The current date and time (ISO 8601) and weekday, in a given IANA time zone (default UTC).",
    settings_schema: NO_SETTINGS,
    managed_settings: [],
  },
  {
    name: "fetch_webpage",
    description: "Fetch a web page (http or https) and return its readable text, without scripts or markup.",
    settings_schema: {
      type: "object",
      additionalProperties: false,
      properties: {
        allowed_domains: {
          anyOf: [{ type: "array", items: { type: "string" }, maxItems: 200 }, { type: "null" }],
          default: null,
          description: "If set, only these domains and their subdomains may be fetched (an empty list: none).",
        },
        max_chars: {
          type: "integer",
          default: 20000,
          minimum: 100,
          maximum: 100000,
          description: "The most characters of page text returned.",
        },
      },
    },
    managed_settings: [],
  },
  {
    name: "knowledge_base_search",
    description:
      "Search the agent's knowledge bases (uploaded documents) and return numbered passages with their source. " +
      "Use it for questions the documents may answer, and cite the passages you use by number.",
    settings_schema: {
      type: "object",
      additionalProperties: false,
      properties: {
        knowledge_base_ids: {
          type: "array",
          items: { type: "string", format: "uuid" },
          maxItems: 20,
          description: "Filled from the agent's knowledge bases.",
        },
        top_k: { type: "integer", default: 5, minimum: 1, maximum: 20 },
        mode: { type: "string", default: "hybrid", enum: ["hybrid", "bm25", "vector"] },
      },
    },
    managed_settings: ["knowledge_base_ids"],
  },
  {
    name: "workspace_list",
    description: "List the files in this conversation's workspace, with their sizes.",
    settings_schema: NO_SETTINGS,
    managed_settings: [],
  },
  {
    name: "workspace_read",
    description: "Read a text file from this conversation's workspace.",
    settings_schema: NO_SETTINGS,
    managed_settings: [],
  },
  {
    name: "workspace_write",
    description: "Create or replace a text file in this conversation's workspace.",
    settings_schema: NO_SETTINGS,
    managed_settings: [],
  },
];

/** The tools an agent may be given. The one place the catalog comes from (see `ToolInfo`). */
export async function listTools(): Promise<ToolInfo[]> {
  return BUILT_IN_TOOLS;
}
