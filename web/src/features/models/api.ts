import { api, unwrap, type Schemas } from "@/api/client";

export type Model = Schemas["ModelRead"];
export type ModelCreate = Schemas["ModelCreate"];
export type ModelUpdate = Schemas["ModelUpdate"];
export type ModelSettings = Schemas["ModelSettings"];
export type CheckResult = Schemas["CheckResult"];
export type UsageRow = Schemas["UsageRow"];
export type ModelKind = Model["kind"];

export const KINDS: ModelKind[] = ["llm", "embedding", "rerank", "vlm", "stt"];

/** The built-in offline models (docs/models.md): the API has no list of them, their names are fixed. */
export const BUILTIN_MODELS: { kind: ModelKind; model: string }[] = [
  { kind: "llm", model: "SmolLM2-135M-Instruct" },
  { kind: "embedding", model: "all-MiniLM-L6-v2" },
];

export async function listModels(): Promise<Model[]> {
  const items: Model[] = [];
  for (let offset = 0; ; offset += 200) {
    const page = await unwrap(api.GET("/api/models", { params: { query: { limit: 200, offset } } }));
    items.push(...page.items);
    if (items.length >= page.total || page.items.length === 0) return items;
  }
}

export function createModel(body: ModelCreate): Promise<Model> {
  return unwrap(api.POST("/api/models", { body }));
}

export function updateModel(id: string, body: ModelUpdate): Promise<Model> {
  return unwrap(api.PATCH("/api/models/{model_id}", { params: { path: { model_id: id } }, body }));
}

export async function deleteModel(id: string): Promise<void> {
  await unwrap(api.DELETE("/api/models/{model_id}", { params: { path: { model_id: id } } }));
}

export function checkModel(id: string): Promise<CheckResult> {
  return unwrap(api.POST("/api/models/{model_id}/check", { params: { path: { model_id: id } } }));
}

export function checkDraft(body: ModelSettings): Promise<CheckResult> {
  return unwrap(api.POST("/api/models/check", { body }));
}

export interface UsageQuery {
  groupBy: "model" | "agent" | "day";
  from?: string;
  to?: string;
  modelId?: string;
}

/** Usage sums; the one place that knows the shape of GET /api/usage. */
export function readUsage(query: UsageQuery): Promise<UsageRow[]> {
  return unwrap(
    api.GET("/api/usage", {
      params: {
        query: { group_by: query.groupBy, from: query.from, to: query.to, model_id: query.modelId },
      },
    }),
  );
}

/** Names of the tenant's agents, for the usage by agent and its filter (the first 200). */
export async function agentNames(): Promise<Record<string, string>> {
  const page = await unwrap(api.GET("/api/agents", { params: { query: { limit: 200 } } }));
  return Object.fromEntries(page.items.map((agent) => [agent.id, agent.name]));
}

export type UsageSeries = Schemas["UsageSeries"];
export type UsageBucket = Schemas["UsageBucket"];

export interface SeriesQuery {
  interval: "hour" | "day";
  from?: string;
  modelId?: string;
  agentId?: string;
}

/** Usage per hour or day, every bucket present (GET /api/usage/series). */
export function readUsageSeries(query: SeriesQuery): Promise<UsageSeries> {
  return unwrap(
    api.GET("/api/usage/series", {
      params: {
        query: { interval: query.interval, from: query.from, model_id: query.modelId, agent_id: query.agentId },
      },
    }),
  );
}
