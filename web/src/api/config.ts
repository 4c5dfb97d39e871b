import type { components } from "./schema";

export type UIConfig = components["schemas"]["UIConfig"];

let config: UIConfig | null = null;
let loading: Promise<UIConfig> | null = null;

/** The runtime configuration the server serves (`/api/ui/config`): where each service answers. Loaded once. */
export function loadConfig(): Promise<UIConfig> {
  if (config) return Promise.resolve(config);
  loading ??= fetch("/api/ui/config", { headers: { Accept: "application/json" } })
    .then((response) => {
      if (!response.ok) throw new Error(`ui config: ${response.status}`);
      return response.json() as Promise<UIConfig>;
    })
    .then((loaded) => {
      config = loaded;
      return loaded;
    })
    .finally(() => {
      loading = null;
    });
  return loading;
}

export function currentConfig(): UIConfig | null {
  return config;
}

function templateMatches(template: string, path: string): boolean {
  const parts = template.split("/");
  const actual = path.split("/");
  return parts.length === actual.length && parts.every((part, i) => part.startsWith("{") || part === actual[i]);
}

/** The base URL of the service that answers `method path` ("" for the UI's own origin). */
export function serviceBase(method: string, path: string): string {
  if (!config) return "";
  for (const endpoint of Object.values(config.services)) {
    if (!endpoint.url) continue;
    if ((endpoint.routes ?? []).some(([m, template]) => m === method && templateMatches(template, path))) {
      return endpoint.url.replace(/\/$/, "");
    }
  }
  return "";
}
