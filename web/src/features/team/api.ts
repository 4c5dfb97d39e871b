import { api, unwrap, type Schemas } from "@/api/client";

export type Member = Schemas["MemberRead"];
export type Role = Schemas["Role"];
export type Group = Schemas["GroupRead"];
export type Invitation = Schemas["InvitationRead"];
export type InvitationCreated = Schemas["InvitationCreated"];
export type ApiKey = Schemas["ApiKeyRead"];
export type ApiKeyCreated = Schemas["ApiKeyCreated"];
export type AuditEvent = Schemas["AuditEventRead"];

export const ROLES: Role[] = ["owner", "admin", "developer", "user"];

/** Every page of a list route, 200 at a time. */
async function all<T>(load: (offset: number) => Promise<{ items: T[]; total: number }>): Promise<T[]> {
  const items: T[] = [];
  for (let offset = 0; ; offset += 200) {
    const page = await load(offset);
    items.push(...page.items);
    if (items.length >= page.total || page.items.length === 0) return items;
  }
}

export const listMembers = () =>
  all((offset) => unwrap(api.GET("/api/members", { params: { query: { limit: 200, offset } } })));

export const updateMember = (userId: string, body: Schemas["MemberUpdate"]) =>
  unwrap(api.PATCH("/api/members/{user_id}", { params: { path: { user_id: userId } }, body }));

export const removeMember = (userId: string) =>
  unwrap(api.DELETE("/api/members/{user_id}", { params: { path: { user_id: userId } } }));

export const listGroups = () =>
  all((offset) => unwrap(api.GET("/api/groups", { params: { query: { limit: 200, offset } } })));

export const createGroup = (body: Schemas["GroupCreate"]) => unwrap(api.POST("/api/groups", { body }));

export const updateGroup = (groupId: string, body: Schemas["GroupUpdate"]) =>
  unwrap(api.PATCH("/api/groups/{group_id}", { params: { path: { group_id: groupId } }, body }));

export const deleteGroup = (groupId: string) =>
  unwrap(api.DELETE("/api/groups/{group_id}", { params: { path: { group_id: groupId } } }));

export const addGroupMember = (groupId: string, userId: string) =>
  unwrap(api.PUT("/api/groups/{group_id}/members/{user_id}", { params: { path: { group_id: groupId, user_id: userId } } }));

export const removeGroupMember = (groupId: string, userId: string) =>
  unwrap(
    api.DELETE("/api/groups/{group_id}/members/{user_id}", { params: { path: { group_id: groupId, user_id: userId } } }),
  );

export const listInvitations = () =>
  all((offset) => unwrap(api.GET("/api/invitations", { params: { query: { limit: 200, offset } } })));

export const createInvitation = (body: Schemas["InvitationCreate"]) => unwrap(api.POST("/api/invitations", { body }));

export const revokeInvitation = (id: string) =>
  unwrap(api.DELETE("/api/invitations/{invitation_id}", { params: { path: { invitation_id: id } } }));

export const listApiKeys = () =>
  all((offset) => unwrap(api.GET("/api/api-keys", { params: { query: { limit: 200, offset } } })));

export const createApiKey = (body: Schemas["ApiKeyCreate"]) => unwrap(api.POST("/api/api-keys", { body }));

export const revokeApiKey = (id: string) =>
  unwrap(api.DELETE("/api/api-keys/{key_id}", { params: { path: { key_id: id } } }));

export const listAudit = (limit: number, offset: number) =>
  unwrap(api.GET("/api/audit-log", { params: { query: { limit, offset } } }));

/** The tenant's agents, to limit an API key to some of them (the first 200). */
export async function listAgents(): Promise<{ id: string; name: string }[]> {
  const page = await unwrap(api.GET("/api/agents", { params: { query: { limit: 200 } } }));
  return page.items.map((agent) => ({ id: agent.id, name: agent.name }));
}

export type Tenant = Schemas["TenantRead"];

export const getTenant = () => unwrap(api.GET("/api/tenant"));

export const updateTenant = (body: Schemas["TenantSettingsUpdate"]) => unwrap(api.PATCH("/api/tenant", { body }));
