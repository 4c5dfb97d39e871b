"use client";

import { Checkbox, Typography } from "antd";
import { useT } from "@/i18n";
import { SchemaView } from "@/features/tools/SchemaView";
import type { JsonSchema, ToolInfo, ToolUse } from "./api";
import { ToolSettingsForm } from "./ToolSettingsForm";
import "./messages";

const UNKNOWN_SCHEMA: JsonSchema = { type: "object" };

interface Group {
  key: string;
  title: string;
  tools: ToolInfo[];
}

/**
 * The tool catalog as a list to pick from, grouped by where the tools come from (built-in, then each of the
 * tenant's MCP servers and OpenAPI imports); a picked built-in tool shows the form of its settings for this agent,
 * a tenant tool its arguments. A form control (`value`/`onChange`) for the agent's `tools`. Tools of the draft the
 * catalog does not know stay listed, in a group of their own.
 */
export function ToolPicker({
  catalog,
  value = [],
  onChange,
  disabled,
}: {
  catalog: ToolInfo[];
  value?: ToolUse[];
  onChange?: (tools: ToolUse[]) => void;
  disabled?: boolean;
}) {
  const t = useT();
  const known = new Set(catalog.map((tool) => tool.name));
  const missing = value
    .filter((use) => !known.has(use.name))
    .map(
      (use): ToolInfo => ({
        name: use.name,
        description: t("agents.tools.unknown"),
        parameters: {},
        settings_schema: UNKNOWN_SCHEMA,
        managed_settings: [],
        source: { kind: "builtin", name: "builtin" },
      }),
    );
  const groups: Group[] = [];
  const byKey = new Map<string, Group>();
  for (const tool of catalog) {
    const key = tool.source.kind === "builtin" ? "builtin" : `${tool.source.kind}:${tool.source.id ?? tool.source.name}`;
    let group = byKey.get(key);
    if (!group) {
      const title =
        tool.source.kind === "builtin"
          ? t("tools.source.builtin")
          : t(tool.source.kind === "mcp" ? "tools.source.mcp" : "tools.source.openapi", { name: tool.source.name });
      group = { key, title, tools: [] };
      byKey.set(key, group);
      groups.push(group);
    }
    group.tools.push(tool);
  }
  if (missing.length) groups.push({ key: "missing", title: t("tools.source.missing"), tools: missing });

  const picked = new Map(value.map((use) => [use.name, use]));
  const toggle = (name: string, on: boolean) =>
    onChange?.(on ? [...value, { name, settings: {} }] : value.filter((use) => use.name !== name));
  const setSettings = (name: string, settings: Record<string, unknown>) =>
    onChange?.(value.map((use) => (use.name === name ? { ...use, settings } : use)));

  return (
    <div aria-label={t("agents.tools.catalog")} role="group">
      {groups.map((group) => (
        <section key={group.key} aria-labelledby={`tool-group-${group.key}`} data-testid={`tool-group-${group.key}`}>
          {groups.length > 1 ? (
            <Typography.Title level={5} id={`tool-group-${group.key}`} style={{ margin: "12px 0 0" }}>
              {group.title}
            </Typography.Title>
          ) : (
            <span id={`tool-group-${group.key}`} hidden>
              {group.title}
            </span>
          )}
          <ul style={{ listStyle: "none", margin: 0, padding: 0 }}>
            {group.tools.map((tool) => {
              const use = picked.get(tool.name);
              const descriptionId = `tool-${tool.name}-description`;
              const external = tool.source.kind !== "builtin";
              return (
                <li
                  key={tool.name}
                  style={{ padding: "10px 0", borderBottom: "1px solid rgba(128,128,128,.2)" }}
                  data-testid={`tool-${tool.name}`}
                >
                  <Checkbox
                    checked={Boolean(use)}
                    disabled={disabled}
                    aria-describedby={descriptionId}
                    onChange={(event) => toggle(tool.name, event.target.checked)}
                  >
                    <Typography.Text code style={{ wordBreak: "break-all" }}>
                      {tool.name}
                    </Typography.Text>
                  </Checkbox>
                  <div id={descriptionId} style={{ marginInlineStart: 24 }}>
                    <Typography.Text type="secondary">{tool.description}</Typography.Text>
                  </div>
                  {external ? (
                    <details style={{ marginInlineStart: 24, marginTop: 4 }}>
                      <summary style={{ cursor: "pointer" }}>{t("tools.parameters")}</summary>
                      <SchemaView schema={tool.parameters} />
                    </details>
                  ) : use ? (
                    <div style={{ marginInlineStart: 24, marginTop: 8 }}>
                      <ToolSettingsForm
                        toolName={tool.name}
                        schema={tool.settings_schema}
                        managed={tool.managed_settings}
                        value={(use.settings ?? {}) as Record<string, unknown>}
                        onChange={(settings) => setSettings(tool.name, settings)}
                        disabled={disabled}
                      />
                    </div>
                  ) : null}
                </li>
              );
            })}
          </ul>
        </section>
      ))}
    </div>
  );
}
