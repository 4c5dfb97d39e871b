"use client";

import { App } from "antd";
import { useCallback } from "react";
import { useT } from "@/i18n";
import { errorMessage } from "./ErrorAlert";

/**
 * Run a change a person asked for: on success say so (when `done` is given) and refresh what shows it (`after`); on
 * failure show the problem document's message. Resolves to whether it succeeded.
 */
export function useAction(after?: () => void) {
  const t = useT();
  const { message } = App.useApp();
  return useCallback(
    async (work: () => Promise<unknown>, done?: string): Promise<boolean> => {
      try {
        await work();
        if (done) message.success(done);
        after?.();
        return true;
      } catch (error) {
        message.error(errorMessage(error, t));
        return false;
      }
    },
    [after, message, t],
  );
}
