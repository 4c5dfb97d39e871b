import { apiFetch, validAccessToken, type Schemas } from "@/api/client";
import { loadConfig, serviceBase } from "@/api/config";
import { ApiError, NETWORK_PROBLEM, type Problem } from "@/api/problem";

export type Attachment = Schemas["AttachmentRead"];

/**
 * Upload one file for the next message (`POST /api/attachments`), reporting the share sent so far (0 to 1). An
 * XMLHttpRequest, since fetch reports no upload progress; a refusal is thrown as the problem document it answered.
 */
export async function uploadAttachment(
  file: File,
  onProgress: (share: number) => void,
  signal: AbortSignal,
): Promise<Attachment> {
  await loadConfig();
  const token = await validAccessToken();
  const url = `${serviceBase("POST", "/api/attachments")}/api/attachments`;
  const form = new FormData();
  form.append("file", file, file.name);
  return new Promise<Attachment>((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", url);
    if (token) request.setRequestHeader("Authorization", `Bearer ${token}`);
    request.responseType = "json";
    request.upload.onprogress = (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    };
    request.onload = () => {
      const body = request.response as unknown;
      if (request.status === 201) resolve(body as Attachment);
      else {
        const problem = body && typeof body === "object" ? (body as Partial<Problem>) : {};
        reject(new ApiError({ ...problem, status: problem.status ?? request.status } as Problem));
      }
    };
    request.onerror = () => reject(new ApiError(NETWORK_PROBLEM));
    request.onabort = () => reject(new DOMException("aborted", "AbortError"));
    signal.addEventListener("abort", () => request.abort());
    request.send(form);
  });
}

/** An attachment's file as an object URL (the caller revokes it): images are shown, documents downloaded. */
export async function attachmentUrl(id: string): Promise<string> {
  const response = await apiFetch(new Request(`/api/attachments/${encodeURIComponent(id)}`));
  if (!response.ok) throw new ApiError({ status: response.status, code: "attachment_not_found" });
  return URL.createObjectURL(await response.blob());
}

/** Download an attachment under its own name. */
export async function downloadAttachment(attachment: Attachment): Promise<void> {
  const url = await attachmentUrl(attachment.id);
  const link = document.createElement("a");
  link.href = url;
  link.download = attachment.name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** "12 KB", "3.4 MB": a file's size for people. */
export function sizeLabel(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
