import { api, apiFetch, unwrap, type Schemas } from "@/api/client";
import { ApiError, problemOf } from "@/api/problem";
import { readEventStream } from "@/api/stream";

export type Skill = Schemas["SkillRead"];
export type SkillDetail = Schemas["SkillDetail"];
export type SkillVersion = Schemas["SkillVersionRead"];
export type SkillFile = Schemas["SkillFileRead"];
export type Group = Schemas["GroupRead"];
export type Share = Schemas["ShareRead"];
export type SharePermission = Schemas["SharePermission"];

const path = (skill_id: string) => ({ params: { path: { skill_id } } });

export async function listSkills(): Promise<Skill[]> {
  const items: Skill[] = [];
  for (let offset = 0; ; offset += 200) {
    const page = await unwrap(api.GET("/api/skills", { params: { query: { limit: 200, offset } } }));
    items.push(...page.items);
    if (items.length >= page.total || page.items.length === 0) return items;
  }
}

export const readSkill = (id: string, version?: number) =>
  unwrap(api.GET("/api/skills/{skill_id}", { params: { path: { skill_id: id }, query: version ? { version } : {} } }));
export const deleteSkill = (id: string) => unwrap(api.DELETE("/api/skills/{skill_id}", path(id)));
export const listVersions = (id: string) => unwrap(api.GET("/api/skills/{skill_id}/versions", path(id)));

export const readFile = (id: string, file: string, version?: number) =>
  unwrap(
    api.GET("/api/skills/{skill_id}/files/{path}", {
      params: { path: { skill_id: id, path: file }, query: version ? { version } : {} },
    }),
  );
export const writeFile = (id: string, file: string, content: string, note = "") =>
  unwrap(api.PUT("/api/skills/{skill_id}/files/{path}", { params: { path: { skill_id: id, path: file } }, body: { content, note } }));
export const deleteFile = (id: string, file: string) =>
  unwrap(api.DELETE("/api/skills/{skill_id}/files/{path}", { params: { path: { skill_id: id, path: file } } }));

export const listGroups = () => unwrap(api.GET("/api/groups", { params: { query: { limit: 200 } } }));
export const listShares = (id: string) => unwrap(api.GET("/api/skills/{skill_id}/shares", path(id)));
export const putShare = (id: string, group_id: string, permission: SharePermission) =>
  unwrap(api.PUT("/api/skills/{skill_id}/shares/{group_id}", { params: { path: { skill_id: id, group_id } }, body: { permission } }));
export const deleteShare = (id: string, group_id: string) =>
  unwrap(api.DELETE("/api/skills/{skill_id}/shares/{group_id}", { params: { path: { skill_id: id, group_id } } }));

/** What an upload carries: one ZIP archive, or the files of a folder, each with its path inside it. */
export type SkillUpload = { kind: "archive"; file: File } | { kind: "files"; files: { path: string; file: File }[] };

function uploadForm(upload: SkillUpload, note?: string): FormData {
  const form = new FormData();
  if (upload.kind === "archive") form.append("archive", upload.file, upload.file.name);
  else for (const item of upload.files) form.append("file", item.file, item.path);
  if (note) form.append("note", note);
  return form;
}

/** A new skill (its version 1) from a ZIP or a folder's files. */
export function createSkill(upload: SkillUpload): Promise<SkillDetail> {
  const form = uploadForm(upload);
  // The typed body only names the fields; the FormData carries the files.
  return unwrap(api.POST("/api/skills", { body: {}, bodySerializer: () => form }));
}

/** The skill's files uploaded anew: its next version. */
export function uploadVersion(id: string, upload: SkillUpload, note: string): Promise<SkillDetail> {
  const form = uploadForm(upload, note);
  return unwrap(api.POST("/api/skills/{skill_id}/versions", { ...path(id), body: { note }, bodySerializer: () => form }));
}

/** Download a version (default: the newest) as a ZIP: fetched with the caller's token, saved under the server's name. */
export async function exportSkill(id: string, fallbackName: string, version?: number): Promise<void> {
  const query = version ? `?version=${version}` : "";
  const response = await apiFetch(new Request(`/api/skills/${encodeURIComponent(id)}/export${query}`));
  if (!response.ok) throw new ApiError(await problemOf(response));
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? `${fallbackName}.zip`;
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** `SKILL.md` without its front matter: what the preview renders. */
export function manifestBody(text: string): string {
  const match = /^\ufeff?---[ \t]*\r?\n[\s\S]*?\r?\n---[ \t]*(?:\r?\n|$)/.exec(text);
  return match ? text.slice(match[0].length) : text;
}

/** A size in bytes for people. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const kb = bytes / 1024;
  if (kb < 1024) return `${kb < 10 ? kb.toFixed(1) : Math.round(kb)} KB`;
  const mb = kb / 1024;
  return `${mb < 10 ? mb.toFixed(1) : Math.round(mb)} MB`;
}

export type DraftCompleted = Schemas["SkillDraftCompleted"];
export type DraftFailed = Schemas["SkillDraftFailed"];
export type DraftEvent = Schemas["SkillDraftDelta"] | DraftCompleted | DraftFailed;

/** Draft a SKILL.md from a description with the tenant's LLM: the stream's events, in order. Nothing is stored. */
export function streamDraft(description: string, onEvent: (event: DraftEvent) => void, signal: AbortSignal): Promise<void> {
  const request = new Request("/api/skills/generate", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify({ description }),
    signal,
  });
  return readEventStream(request, (type, data) => onEvent({ ...(data as object), type } as DraftEvent));
}

/** A new skill from one SKILL.md text (a drafted one, say). */
export function createFromManifest(content: string): Promise<SkillDetail> {
  const file = new File([content], "SKILL.md", { type: "text/markdown" });
  return createSkill({ kind: "files", files: [{ path: "SKILL.md", file }] });
}
