import type { components } from "./schema";

export type TokenPair = components["schemas"]["TokenPair"];

export interface Session {
  accessToken: string;
  refreshToken: string;
  /** Milliseconds since the epoch when the access token expires. */
  expiresAt: number;
}

const KEY = "nexent.session";
const listeners = new Set<() => void>();
let cached: Session | null | undefined;

function read(): Session | null {
  if (typeof window === "undefined") return null;
  try {
    const raw = window.localStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

export function getSession(): Session | null {
  if (cached === undefined) cached = read();
  return cached;
}

function emit(): void {
  for (const listener of listeners) listener();
}

export function saveTokens(pair: { access_token: string; refresh_token: string; expires_in: number }): Session {
  const session = {
    accessToken: pair.access_token,
    refreshToken: pair.refresh_token,
    expiresAt: Date.now() + pair.expires_in * 1000,
  };
  window.localStorage.setItem(KEY, JSON.stringify(session));
  cached = session;
  emit();
  return session;
}

export function clearSession(): void {
  window.localStorage.removeItem(KEY);
  cached = null;
  emit();
}

export function subscribeSession(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

if (typeof window !== "undefined") {
  // Another tab signed in, out, or rotated the tokens: follow it.
  window.addEventListener("storage", (event) => {
    if (event.key === KEY) {
      cached = read();
      emit();
    }
  });
}
