"use client";

import { useCallback, useRef, useState, type DragEvent } from "react";

/** Drag and drop of files onto an element: `handlers` go on it, `over` is true while files are held above it. */
export function useFileDrop(onFiles: (files: FileList) => void) {
  const [over, setOver] = useState(false);
  const depth = useRef(0);
  const carriesFiles = (event: DragEvent) => Array.from(event.dataTransfer?.types ?? []).includes("Files");

  const onDragEnter = useCallback((event: DragEvent) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    depth.current += 1;
    setOver(true);
  }, []);
  const onDragOver = useCallback((event: DragEvent) => {
    if (carriesFiles(event)) event.preventDefault();
  }, []);
  const onDragLeave = useCallback((event: DragEvent) => {
    if (!carriesFiles(event)) return;
    depth.current = Math.max(0, depth.current - 1);
    if (depth.current === 0) setOver(false);
  }, []);
  const onDrop = useCallback(
    (event: DragEvent) => {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      depth.current = 0;
      setOver(false);
      if (event.dataTransfer.files.length) onFiles(event.dataTransfer.files);
    },
    [onFiles],
  );
  return { over, handlers: { onDragEnter, onDragOver, onDragLeave, onDrop } };
}
