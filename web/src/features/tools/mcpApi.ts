import { api, unwrap, type Schemas } from "@/api/client";

export type McpServer = Schemas["McpServerRead"];
export type McpServerCreate = Schemas["McpServerCreate"];
export type McpServerUpdate = Schemas["McpServerUpdate"];
export type McpTool = Schemas["McpToolRead"];
export type McpStatus = McpServer["status"];

export async function listServers(): Promise<McpServer[]> {
  const items: McpServer[] = [];
  for (let offset = 0; ; offset += 200) {
    const page = await unwrap(api.GET("/api/mcp-servers", { params: { query: { limit: 200, offset } } }));
    items.push(...page.items);
    if (items.length >= page.total || page.items.length === 0) return items;
  }
}

export function createServer(body: McpServerCreate): Promise<McpServer> {
  return unwrap(api.POST("/api/mcp-servers", { body }));
}

export function updateServer(id: string, body: McpServerUpdate): Promise<McpServer> {
  return unwrap(api.PATCH("/api/mcp-servers/{server_id}", { params: { path: { server_id: id } }, body }));
}

export async function deleteServer(id: string): Promise<void> {
  await unwrap(api.DELETE("/api/mcp-servers/{server_id}", { params: { path: { server_id: id } } }));
}

/** Connect now and list the tools: the classified status, the latency and the tools found. */
export function checkServer(id: string) {
  return unwrap(api.POST("/api/mcp-servers/{server_id}/check", { params: { path: { server_id: id } } }));
}

export type McpCheck = Awaited<ReturnType<typeof checkServer>>;

export function serverTools(id: string): Promise<McpTool[]> {
  return unwrap(api.GET("/api/mcp-servers/{server_id}/tools", { params: { path: { server_id: id } } }));
}

export function serverLogs(id: string) {
  return unwrap(api.GET("/api/mcp-servers/{server_id}/logs", { params: { path: { server_id: id }, query: { limit: 200 } } }));
}

export type McpLogLine = Awaited<ReturnType<typeof serverLogs>>[number];
