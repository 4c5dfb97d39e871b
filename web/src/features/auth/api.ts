import { api, unwrap, type Schemas } from "@/api/client";
import { clearSession, getSession, saveTokens } from "@/api/session";

export type Me = Schemas["MeRead"];

export async function signIn(body: Schemas["LoginRequest"]): Promise<void> {
  saveTokens(await unwrap(api.POST("/api/auth/login", { body })));
}

export async function signUp(body: Schemas["RegisterRequest"]): Promise<void> {
  saveTokens(await unwrap(api.POST("/api/auth/register", { body })));
}

export async function signOut(): Promise<void> {
  const session = getSession();
  if (session) {
    // Ending the session on the server is best effort: the tokens are forgotten here either way.
    await api.POST("/api/auth/logout", { body: { refresh_token: session.refreshToken, everywhere: false } }).catch(() => undefined);
  }
  clearSession();
}

export async function switchTenant(tenantId: string): Promise<void> {
  const session = getSession();
  if (!session) return;
  saveTokens(
    await unwrap(api.POST("/api/auth/switch-tenant", { body: { tenant_id: tenantId, refresh_token: session.refreshToken } })),
  );
}

export function readMe(): Promise<Me> {
  return unwrap(api.GET("/api/me"));
}

export function acceptInvitation(code: string) {
  return unwrap(api.POST("/api/invitations/accept", { body: { code } }));
}

/** A `next` parameter that stays inside this site. */
export function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") && !next.includes("\\") ? next : "/chat";
}
