import { api, unwrap, type Schemas } from "@/api/client";

export type OpenApiImport = Schemas["OpenAPIImportRead"];
export type OpenApiImportCreate = Schemas["OpenAPIImportCreate"];
export type OpenApiImportUpdate = Schemas["OpenAPIImportUpdate"];
export type OpenApiPreview = Schemas["OpenAPIPreview"];
export type OpenApiOperation = Schemas["OpenAPIOperationRead"];
export type OpenApiAuthIn = Schemas["OpenAPIAuthIn"];

export async function listImports(): Promise<OpenApiImport[]> {
  const items: OpenApiImport[] = [];
  for (let offset = 0; ; offset += 200) {
    const page = await unwrap(api.GET("/api/openapi-tools", { params: { query: { limit: 200, offset } } }));
    items.push(...page.items);
    if (items.length >= page.total || page.items.length === 0) return items;
  }
}

export function previewDocument(document: string): Promise<OpenApiPreview> {
  return unwrap(api.POST("/api/openapi-tools/preview", { body: { document } }));
}

export function createImport(body: OpenApiImportCreate): Promise<OpenApiImport> {
  return unwrap(api.POST("/api/openapi-tools", { body }));
}

export function updateImport(id: string, body: OpenApiImportUpdate): Promise<OpenApiImport> {
  return unwrap(api.PATCH("/api/openapi-tools/{source_id}", { params: { path: { source_id: id } }, body }));
}

export async function deleteImport(id: string): Promise<void> {
  await unwrap(api.DELETE("/api/openapi-tools/{source_id}", { params: { path: { source_id: id } } }));
}
