import type { RunEvent } from "@/api/stream";

type ReadyEvent = Extract<RunEvent, { type: "attachment.ready" }>;

/** An attachment as the run's events show it: being read, ready (and how the agent gets it), or failed. */
export interface AttachmentState {
  id: string;
  name: string;
  kind: "document" | "image";
  status: "processing" | "ready" | "failed";
  mode?: ReadyEvent["mode"];
  note?: string | null;
  reason?: string;
}

/** The list after one `attachment.*` event (a new list; other events leave it as it is). */
export function applyAttachmentEvent(items: AttachmentState[], event: RunEvent): AttachmentState[] {
  if (event.type !== "attachment.processing" && event.type !== "attachment.ready" && event.type !== "attachment.failed") {
    return items;
  }
  const base = { id: event.attachment_id, name: event.name, kind: event.kind };
  const next: AttachmentState =
    event.type === "attachment.processing"
      ? { ...base, status: "processing" }
      : event.type === "attachment.ready"
        ? { ...base, status: "ready", mode: event.mode, note: event.note }
        : { ...base, status: "failed", reason: event.reason };
  const found = items.some((item) => item.id === next.id);
  return found ? items.map((item) => (item.id === next.id ? next : item)) : [...items, next];
}
