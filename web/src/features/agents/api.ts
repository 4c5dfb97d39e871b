import { api, apiFetch, unwrap, type Schemas } from "@/api/client";
import { ApiError, problemOf } from "@/api/problem";
import { readEventStream } from "@/api/stream";

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

/** The skills the caller may use, for naming them (the diff names a skill by its id). */
export async function listSkillNames(): Promise<Map<string, string>> {
  const page = await unwrap(api.GET("/api/skills", { params: { query: { limit: 200 } } }));
  return new Map(page.items.map((skill) => [skill.id, skill.name]));
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

// --- generation ---------------------------------------------------------------------------------------------

export type GeneratedField = Schemas["FieldDelta"]["field"];
export type GeneratedDraft = Schemas["GeneratedDraft"];
export type GenerateBody = Schemas["GenerateIn"];
export type ImproveBody = Schemas["ImproveIn"];
/** One event of a generation's stream, `type` being the SSE event name. */
export type GenerationEvent =
  | (Schemas["FieldDelta"] & { type: "field.delta" })
  | (Schemas["FieldCompleted"] & { type: "field.completed" })
  | (Schemas["DraftCompleted"] & { type: "draft.completed" })
  | (Schemas["GenerationFailed"] & { type: "generation.failed" });

export const GENERATED_FIELDS: GeneratedField[] = [
  "name",
  "display_name",
  "description",
  "duty",
  "constraints",
  "examples",
  "tools",
  "knowledge_base_ids",
];

function generationRequest(path: string, body: unknown, signal: AbortSignal): Request {
  return new Request(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify(body),
    signal,
  });
}

/** Draft an agent (or some of its fields) from a description: the stream's events, in order. Nothing is stored. */
export function streamGenerate(body: GenerateBody, onEvent: (event: GenerationEvent) => void, signal: AbortSignal) {
  return readEventStream(generationRequest("/api/agents/generate", body, signal), (type, data) =>
    onEvent({ ...(data as object), type } as GenerationEvent),
  );
}

/** Better duty, constraints and examples for an agent from a note (and a conversation): the stream's events. */
export function streamImprove(
  agentId: string,
  body: ImproveBody,
  onEvent: (event: GenerationEvent) => void,
  signal: AbortSignal,
) {
  return readEventStream(
    generationRequest(`/api/agents/${encodeURIComponent(agentId)}/improve`, body, signal),
    (type, data) => onEvent({ ...(data as object), type } as GenerationEvent),
  );
}

/** The caller's recent conversations with the agent (the newest page of conversations, filtered here). */
export async function listAgentConversations(agentId: string): Promise<Schemas["ConversationRead"][]> {
  const page = await unwrap(api.GET("/api/conversations", { params: { query: { limit: 100 } } }));
  return page.items.filter((conversation) => conversation.agent_id === agentId);
}

// --- export and import --------------------------------------------------------------------------------------

export type AgentDocument = Schemas["AgentDocument"];
export type ImportPreview = Schemas["ImportPreview"];
export type AgentPreview = Schemas["AgentPreview"];
export type ImportResult = Schemas["ImportResult"];

/** The agent (its draft, or version `version`) as a document, saved by the browser as a download. */
export async function downloadExport(agentId: string, version?: number): Promise<void> {
  const query = version ? `?version=${version}` : "";
  const response = await apiFetch(new Request(`/api/agents/${encodeURIComponent(agentId)}/export${query}`));
  if (!response.ok) throw new ApiError(await problemOf(response));
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const match = /filename\*=UTF-8''([^;]+)|filename="([^"]+)"/i.exec(disposition);
  const filename = match ? decodeURIComponent(match[1] ?? match[2]) : "agent.nexent-agent.json";
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** What importing `document` would create here (with `names` as new names by ref); writes nothing. */
export function previewImport(document: AgentDocument, names: Record<string, string>): Promise<ImportPreview> {
  return unwrap(api.POST("/api/agents/import/preview", { body: { ...document, names } }));
}

export function importAgents(document: AgentDocument, names: Record<string, string>): Promise<ImportResult> {
  return unwrap(api.POST("/api/agents/import", { body: { ...document, names } }));
}

// --- test cases and evaluations -----------------------------------------------------------------------------

export type TestCase = Schemas["CaseRead"];
export type TestCaseBody = Schemas["CaseIn"];
export type Check = TestCaseBody["checks"][number];
export type Evaluation = Schemas["EvaluationRead"];
export type EvaluationSummary = Schemas["EvaluationSummary"];
export type EvaluationComparison = Schemas["EvaluationComparison"];
export type CaseComparison = Schemas["CaseComparison"];
/** A side of an evaluation comparison: an evaluation's id, `draft` or a version number (its newest evaluation). */
export type EvaluationRef = string | number;

export function listTestCases(agentId: string): Promise<TestCase[]> {
  return unwrap(api.GET("/api/agents/{agent_id}/test-cases", { params: { path: { agent_id: agentId } } }));
}

export function addTestCase(agentId: string, body: TestCaseBody): Promise<TestCase> {
  return unwrap(api.POST("/api/agents/{agent_id}/test-cases", { params: { path: { agent_id: agentId } }, body }));
}

export function updateTestCase(agentId: string, caseId: string, body: TestCaseBody): Promise<TestCase> {
  return unwrap(
    api.PATCH("/api/agents/{agent_id}/test-cases/{case_id}", {
      params: { path: { agent_id: agentId, case_id: caseId } },
      body,
    }),
  );
}

export async function deleteTestCase(agentId: string, caseId: string): Promise<void> {
  await unwrap(
    api.DELETE("/api/agents/{agent_id}/test-cases/{case_id}", { params: { path: { agent_id: agentId, case_id: caseId } } }),
  );
}

/** Evaluate the draft or a version (202: queued; it runs in the background). */
export function startEvaluation(agentId: string, target: VersionRef): Promise<Evaluation> {
  return unwrap(
    api.POST("/api/agents/{agent_id}/evaluations", { params: { path: { agent_id: agentId } }, body: { target } }),
  );
}

export async function listEvaluations(agentId: string): Promise<EvaluationSummary[]> {
  const page = await unwrap(
    api.GET("/api/agents/{agent_id}/evaluations", { params: { path: { agent_id: agentId }, query: { limit: 50 } } }),
  );
  return page.items;
}

export function getEvaluation(agentId: string, evaluationId: string): Promise<Evaluation> {
  return unwrap(
    api.GET("/api/agents/{agent_id}/evaluations/{evaluation_id}", {
      params: { path: { agent_id: agentId, evaluation_id: evaluationId } },
    }),
  );
}

export function compareEvaluations(agentId: string, base: EvaluationRef, target: EvaluationRef): Promise<EvaluationComparison> {
  return unwrap(
    api.GET("/api/agents/{agent_id}/evaluations/compare", {
      params: { path: { agent_id: agentId }, query: { base: String(base), target: String(target) } },
    }),
  );
}

/** Set (0..1) or clear (null) the pass rate publishing requires. */
export function setMinPassRate(agentId: string, minPassRate: number | null): Promise<Agent> {
  return updateAgent(agentId, { min_pass_rate: minPassRate });
}
