"use client";

import { Checkbox, Typography } from "antd";
import { useT } from "@/i18n";
import type { JsonSchema, ToolInfo, ToolUse } from "./api";
import { ToolSettingsForm } from "./ToolSettingsForm";
import "./messages";

const UNKNOWN_SCHEMA: JsonSchema = { type: "object" };

/**
 * The tool catalog as a list to pick from; a picked tool shows the form of its settings for this agent. A form
 * control (`value`/`onChange`) for the agent's `tools`. Tools of the draft the catalog does not know stay listed.
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
  const entries: ToolInfo[] = [
    ...catalog,
    ...value
      .filter((use) => !known.has(use.name))
      .map(
        (use): ToolInfo => ({
          name: use.name,
          description: t("agents.tools.unknown"),
          parameters: {},
          settings_schema: UNKNOWN_SCHEMA,
          managed_settings: [],
        }),
      ),
  ];
  const picked = new Map(value.map((use) => [use.name, use]));
  const toggle = (name: string, on: boolean) =>
    onChange?.(on ? [...value, { name, settings: {} }] : value.filter((use) => use.name !== name));
  const setSettings = (name: string, settings: Record<string, unknown>) =>
    onChange?.(value.map((use) => (use.name === name ? { ...use, settings } : use)));

  return (
    <ul style={{ listStyle: "none", margin: 0, padding: 0 }} aria-label={t("agents.tools.catalog")}>
      {entries.map((tool) => {
        const use = picked.get(tool.name);
        const descriptionId = `tool-${tool.name}-description`;
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
              <Typography.Text code>{tool.name}</Typography.Text>
            </Checkbox>
            <div id={descriptionId} style={{ marginInlineStart: 24 }}>
              <Typography.Text type="secondary">{tool.description}</Typography.Text>
            </div>
            {use ? (
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
  );
}
