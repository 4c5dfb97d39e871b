import { api, unwrap, type Schemas } from "@/api/client";

export type RemoteAgent = Schemas["RemoteAgentRead"];
export type RemoteAgentCreate = Schemas["RemoteAgentCreate"];
export type RemoteStatus = RemoteAgent["status"];

export async function listRemoteAgents(): Promise<RemoteAgent[]> {
  const items: RemoteAgent[] = [];
  for (let offset = 0; ; offset += 200) {
    const page = await unwrap(api.GET("/api/remote-agents", { params: { query: { limit: 200, offset } } }));
    items.push(...page.items);
    if (items.length >= page.total || page.items.length === 0) return items;
  }
}

export function createRemoteAgent(body: RemoteAgentCreate): Promise<RemoteAgent> {
  return unwrap(api.POST("/api/remote-agents", { body }));
}

export async function deleteRemoteAgent(id: string): Promise<void> {
  await unwrap(api.DELETE("/api/remote-agents/{remote_agent_id}", { params: { path: { remote_agent_id: id } } }));
}

/** Fetch the card again and make an authenticated request: the classified status and the latency. */
export function checkRemoteAgent(id: string) {
  return unwrap(api.POST("/api/remote-agents/{remote_agent_id}/check", { params: { path: { remote_agent_id: id } } }));
}

export type RemoteCheck = Awaited<ReturnType<typeof checkRemoteAgent>>;

export function remoteAgentCard(id: string) {
  return unwrap(api.GET("/api/remote-agents/{remote_agent_id}/card", { params: { path: { remote_agent_id: id } } }));
}
