import type { Agent, AgentConfig, FieldChange, Version, VersionRef } from "./api";

/** One difference as the diff view shows it: the server's field change, with whether something came or went. */
export interface Change {
  field: string;
  before: unknown;
  after: unknown;
  lines: string[] | null;
  kind: "added" | "removed" | "changed";
}

/** The draft in a version's shape (its model as it names it, sub-agents not pinned), as the server compares it. */
export function draftConfig(agent: Agent): AgentConfig {
  return {
    name: agent.name,
    display_name: agent.display_name,
    description: agent.description,
    instructions: agent.instructions,
    model_id: agent.model_id,
    agent_type: agent.agent_type,
    tools: agent.tools,
    knowledge_base_ids: agent.knowledge_base_ids,
    sub_agents: agent.sub_agent_ids.map((id) => ({ agent_id: id, version: null })),
    max_steps: agent.max_steps,
    greeting: agent.greeting,
    example_questions: agent.example_questions,
  };
}

/** The configuration of one side of a comparison, when the page has it. */
export function configOf(ref: VersionRef, agent: Agent, versions: Version[] | undefined): AgentConfig | undefined {
  if (ref === "draft") return draftConfig(agent);
  return versions?.find((version) => version.number === ref)?.config;
}

interface Side {
  ref: VersionRef;
  config?: AgentConfig;
}

/**
 * The changes a person cares about. A version has what the draft left open resolved when it was published: the
 * workspace's default model then (a draft on the default names none) and each sub-agent's published version (a
 * draft's sub-agents are not pinned). Against the draft those are not differences when the default is the same
 * model, and the sub-agents are compared by which agents they are (the server reports an unpinned sub-agent added
 * to the draft as no change, and one removed like one merely unpinned).
 */
export function meaningfulChanges(changes: FieldChange[], base: Side, target: Side, defaultModelId: string | null): Change[] {
  const withDraft = base.ref === "draft" || target.ref === "draft";
  const result: Change[] = [];
  for (const change of changes) {
    const { field, before, after } = change;
    if (field === "model_id" && withDraft) {
      const draftSide = base.ref === "draft" ? before : after;
      const versionSide = base.ref === "draft" ? after : before;
      if (draftSide == null && versionSide != null && versionSide === defaultModelId) continue;
    }
    if (field.startsWith("sub_agents.") && withDraft && base.config && target.config) continue; // recomputed below
    const kind = field.startsWith("tools.") || field.startsWith("sub_agents.") ? presence(before, after) : "changed";
    result.push({ field, before, after, lines: change.lines ?? null, kind });
  }
  if (withDraft && base.config && target.config) {
    const older = new Map(base.config.sub_agents.map((pin) => [pin.agent_id, pin.version]));
    const newer = new Map(target.config.sub_agents.map((pin) => [pin.agent_id, pin.version]));
    for (const [id, version] of older) {
      if (!newer.has(id)) result.push({ field: `sub_agents.${id}`, before: version, after: null, lines: null, kind: "removed" });
    }
    for (const [id, version] of newer) {
      if (!older.has(id)) result.push({ field: `sub_agents.${id}`, before: null, after: version, lines: null, kind: "added" });
    }
  }
  return result;
}

function presence(before: unknown, after: unknown): Change["kind"] {
  if (before == null) return "added";
  if (after == null) return "removed";
  return "changed";
}
