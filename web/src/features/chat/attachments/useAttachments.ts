"use client";

import { useCallback, useEffect, useRef, useState } from "react";
import { uploadAttachment, type Attachment } from "./api";

/** A file on its way to the next message: uploading (with its progress), uploaded, or refused (with the error). */
export interface PendingFile {
  key: string;
  name: string;
  size: number;
  image: boolean;
  status: "uploading" | "done" | "error";
  progress: number;
  attachment?: Attachment;
  error?: unknown;
}

/** Most files one message carries (the API's limit). */
export const MAX_ATTACHMENTS = 10;

let counter = 0;

/**
 * The files of the message being written: each uploads as soon as it is added (button, paste or drop), one
 * failing alone; `ids()` are those uploaded, sent with the message, after which `clear()` empties the list.
 */
export function useAttachments() {
  const [files, setFiles] = useState<PendingFile[]>([]);
  const controllers = useRef(new Map<string, AbortController>());

  useEffect(() => {
    const running = controllers.current;
    return () => running.forEach((controller) => controller.abort());
  }, []);

  const update = useCallback((key: string, change: Partial<PendingFile>) => {
    setFiles((previous) => previous.map((file) => (file.key === key ? { ...file, ...change } : file)));
  }, []);

  const count = useRef(0);
  count.current = files.length;

  const add = useCallback(
    (incoming: FileList | File[]) => {
      const room = Math.max(0, MAX_ATTACHMENTS - count.current);
      const taken = Array.from(incoming).slice(0, room);
      count.current += taken.length;
      const added = taken.map((file): PendingFile => {
        const key = `f-${++counter}`;
        const controller = new AbortController();
        controllers.current.set(key, controller);
        uploadAttachment(file, (share) => update(key, { progress: share }), controller.signal)
          .then((attachment) => update(key, { status: "done", progress: 1, attachment }))
          .catch((error: unknown) => {
            if (!controller.signal.aborted) update(key, { status: "error", error });
          })
          .finally(() => controllers.current.delete(key));
        return {
          key,
          name: file.name || "file",
          size: file.size,
          image: file.type.startsWith("image/"),
          status: "uploading",
          progress: 0,
        };
      });
      if (added.length) setFiles((previous) => [...previous, ...added]);
    },
    [update],
  );

  const remove = useCallback((key: string) => {
    controllers.current.get(key)?.abort();
    setFiles((previous) => previous.filter((file) => file.key !== key));
  }, []);

  const clear = useCallback(() => setFiles([]), []);

  const ids = files.flatMap((file) => (file.status === "done" && file.attachment ? [file.attachment.id] : []));
  const uploading = files.some((file) => file.status === "uploading");
  return { files, add, remove, clear, ids, uploading, full: files.length >= MAX_ATTACHMENTS };
}
