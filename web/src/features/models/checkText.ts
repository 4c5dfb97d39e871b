import type { Translate } from "@/i18n";
import type { MessageKey } from "@/i18n/messages";
import "./messages";

const CODES = new Set([
  "auth",
  "not_found",
  "rate_limited",
  "context_length",
  "invalid_request",
  "server_error",
  "network",
  "timeout",
  "bad_response",
  "endpoint_not_allowed",
]);

/** A check's error in plain words: the sentence of its class, else the server's own message. */
export function checkErrorText(error: { code: string; message: string } | null | undefined, t: Translate): string {
  if (!error) return "";
  if (CODES.has(error.code)) return t(`models.error.${error.code}` as MessageKey);
  return error.message || error.code;
}
