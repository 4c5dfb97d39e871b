import type { FieldChange } from "./api";

/** One difference as the diff view shows it: the server's field change, with whether something came or went. */
export interface Change {
  field: string;
  before: unknown;
  after: unknown;
  lines: string[] | null;
  kind: "added" | "removed" | "changed";
}

/**
 * The server's changes with whether something came or went. The server compares the draft as publishing it would
 * make it (its default model named, sub-agents pinned), so a fresh version equals its draft.
 */
export function changesOf(changes: FieldChange[]): Change[] {
  return changes.map(({ field, before, after, lines }) => ({
    field,
    before,
    after,
    lines: lines ?? null,
    kind: /^(tools|sub_agents|skills)\./.test(field) ? presence(before, after) : "changed",
  }));
}

function presence(before: unknown, after: unknown): Change["kind"] {
  if (before == null) return "added";
  if (after == null) return "removed";
  return "changed";
}
