"use client";

import { Alert } from "antd";
import { ApiError, fieldErrors } from "@/api/problem";
import { useT, type Translate } from "@/i18n";

/** The message a person reads for an error: the problem document's `detail`, in plain words. */
export function errorMessage(error: unknown, t: Translate): string {
  if (error instanceof ApiError) {
    if (error.status === 0) return t("error.network");
    const fields = fieldErrors(error.problem);
    const detail = error.problem.detail || error.problem.title || t("error.unexpected", { status: error.status });
    return fields.length ? `${detail} ${fields.join("; ")}` : detail;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}

export function ErrorAlert({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const t = useT();
  if (!error) return null;
  return (
    <Alert
      type="error"
      showIcon
      role="alert"
      title={errorMessage(error, t)}
      action={
        onRetry ? (
          <a onClick={onRetry} role="button" tabIndex={0} onKeyDown={(e) => e.key === "Enter" && onRetry()}>
            {t("common.retry")}
          </a>
        ) : undefined
      }
      style={{ marginBottom: 16 }}
    />
  );
}
