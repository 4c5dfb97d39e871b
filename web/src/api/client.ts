import createClient from "openapi-fetch";
import { loadConfig, serviceBase } from "./config";
import { ApiError, NETWORK_PROBLEM, problemOf, type Problem } from "./problem";
import { clearSession, getSession, saveTokens, type Session, type TokenPair } from "./session";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];

// Refresh a little before expiry, so that a request does not leave with a token about to lapse.
const EARLY_REFRESH_MS = 30_000;
let refreshing: Promise<Session | null> | null = null;

/** Trade the refresh token for a new pair, once for all callers of this tab at a time. Null: signed out. */
export function refreshSession(): Promise<Session | null> {
  refreshing ??= (async () => {
    const session = getSession();
    if (!session) return null;
    await loadConfig();
    const response = await fetch(`${serviceBase("POST", "/api/auth/refresh")}/api/auth/refresh`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: session.refreshToken }),
    });
    if (response.ok) return saveTokens((await response.json()) as TokenPair);
    // Another tab may have rotated it a moment ago and saved the new pair.
    const latest = getSession();
    if (latest && latest.refreshToken !== session.refreshToken) return latest;
    if (response.status === 401) clearSession();
    return null;
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

export async function validAccessToken(): Promise<string | null> {
  let session = getSession();
  if (session && session.expiresAt - EARLY_REFRESH_MS < Date.now()) session = await refreshSession();
  return session?.accessToken ?? null;
}

/**
 * fetch for every API call: sends it to the service that answers the route (the runtime configuration), with the
 * caller's token, and retries once with a refreshed token when the access token was refused.
 */
export async function apiFetch(input: Request): Promise<Response> {
  await loadConfig();
  const url = new URL(input.url, window.location.origin);
  const base = serviceBase(input.method, url.pathname);
  const target = base ? `${base}${url.pathname}${url.search}` : url.toString();
  const body = input.body ? await input.arrayBuffer() : undefined;
  const send = async (token: string | null): Promise<Response> => {
    const headers = new Headers(input.headers);
    if (token && !headers.has("Authorization")) headers.set("Authorization", `Bearer ${token}`);
    return fetch(target, { method: input.method, headers, body, signal: input.signal });
  };
  // The routes that trade credentials for tokens take none; switching tenants is done by a signed-in caller.
  const isAuthRoute = url.pathname.startsWith("/api/auth/") && url.pathname !== "/api/auth/switch-tenant";
  let response = await send(isAuthRoute ? null : await validAccessToken());
  if (response.status === 401 && !isAuthRoute && getSession()) {
    const refreshed = await refreshSession();
    if (refreshed) response = await send(refreshed.accessToken);
  }
  return response;
}

export const api = createClient<paths>({ fetch: apiFetch });

/** The data of an openapi-fetch result, or its problem document thrown as an ApiError. */
export async function unwrap<T>(
  pending: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await pending;
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiError(NETWORK_PROBLEM);
  }
  if (!result.response.ok) {
    // openapi-fetch has read the body already: its parsed error is the problem document when there is one.
    const error = result.error;
    if (error && typeof error === "object" && !Array.isArray(error)) {
      throw new ApiError({ ...(error as Partial<Problem>), status: (error as Partial<Problem>).status ?? result.response.status });
    }
    throw new ApiError(await problemOf(result.response));
  }
  return result.data as T;
}
