"use client";

import { Form, Input, InputNumber, Select, Switch } from "antd";
import { useState } from "react";
import { useT } from "@/i18n";
import type { JsonSchema } from "./api";
import "./messages";

type Settings = Record<string, unknown>;

interface Field {
  key: string;
  kind: "string" | "number" | "integer" | "boolean" | "enum" | "strings";
  schema: JsonSchema;
}

/** The schema without its `null` alternative (optional settings are `anyOf: [X, null]`). */
function nonNull(schema: JsonSchema): JsonSchema {
  const options = schema.anyOf?.filter((option) => option.type !== "null");
  if (options && options.length === 1) return { ...options[0], description: schema.description, default: schema.default };
  return schema;
}

function fieldOf(key: string, raw: JsonSchema): Field | null {
  const schema = nonNull(raw);
  if (Array.isArray(schema.enum)) return { key, kind: "enum", schema };
  switch (schema.type) {
    case "string":
      return { key, kind: "string", schema };
    case "number":
      return { key, kind: "number", schema };
    case "integer":
      return { key, kind: "integer", schema };
    case "boolean":
      return { key, kind: "boolean", schema };
    case "array":
      return schema.items?.type === "string" && !schema.items.enum ? { key, kind: "strings", schema } : null;
    default:
      return null;
  }
}

/** The fields a form can show for a settings schema, or null when some property needs the JSON editor. */
export function formFields(schema: JsonSchema, managed: string[]): Field[] | null {
  const fields: Field[] = [];
  for (const [key, property] of Object.entries(schema.properties ?? {})) {
    if (managed.includes(key)) continue;
    const field = fieldOf(key, property);
    if (!field) return null;
    fields.push(field);
  }
  return fields;
}

function humanize(key: string): string {
  const words = key.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** `settings` with `key` set to `value`, or without it when the value is empty (the tool's default applies). */
function withValue(settings: Settings, key: string, value: unknown): Settings {
  const next = { ...settings };
  if (value === undefined || value === null || value === "") delete next[key];
  else next[key] = value;
  return next;
}

/**
 * A tool's per-agent settings: a form generated from the settings' JSON schema (strings, numbers, integers,
 * booleans, enums, lists of strings), else a JSON editor. Empty fields are left out, so the tool's default applies.
 */
export function ToolSettingsForm({
  toolName,
  schema,
  managed,
  value,
  onChange,
  disabled,
}: {
  toolName: string;
  schema: JsonSchema;
  managed: string[];
  value: Settings;
  onChange: (settings: Settings) => void;
  disabled?: boolean;
}) {
  const t = useT();
  const fields = formFields(schema, managed);
  if (!fields) return <JsonSettings toolName={toolName} value={value} onChange={onChange} disabled={disabled} />;
  if (!fields.length) return null;
  return (
    <div>
      {fields.map(({ key, kind, schema: property }) => {
        const id = `tool-${toolName}-${key}`;
        const current = value[key];
        const placeholder =
          property.default !== undefined && property.default !== null
            ? t("agents.tools.default", { value: String(property.default) })
            : undefined;
        let control;
        switch (kind) {
          case "enum":
            control = (
              <Select
                id={id}
                allowClear
                disabled={disabled}
                value={current as string | undefined}
                placeholder={placeholder}
                onChange={(next) => onChange(withValue(value, key, next))}
                options={(property.enum ?? []).map((option) => ({ value: String(option), label: String(option) }))}
              />
            );
            break;
          case "boolean":
            control = (
              <Switch
                id={id}
                disabled={disabled}
                checked={Boolean(current ?? property.default)}
                onChange={(next) => onChange(withValue(value, key, next))}
              />
            );
            break;
          case "integer":
          case "number":
            control = (
              <InputNumber
                id={id}
                disabled={disabled}
                style={{ width: "100%", maxWidth: 240 }}
                min={property.minimum}
                max={property.maximum}
                precision={kind === "integer" ? 0 : undefined}
                value={typeof current === "number" ? current : null}
                placeholder={placeholder}
                onChange={(next) => onChange(withValue(value, key, next))}
              />
            );
            break;
          case "strings":
            control = (
              <Select
                id={id}
                mode="tags"
                disabled={disabled}
                open={false}
                suffixIcon={null}
                tokenSeparators={[",", " "]}
                value={Array.isArray(current) ? (current as string[]) : []}
                onChange={(next: string[]) => onChange(withValue(value, key, next.length ? next : undefined))}
              />
            );
            break;
          default:
            control = (
              <Input
                id={id}
                disabled={disabled}
                maxLength={property.maxLength}
                value={typeof current === "string" ? current : ""}
                placeholder={placeholder}
                onChange={(event) => onChange(withValue(value, key, event.target.value))}
              />
            );
        }
        return (
          <Form.Item
            key={key}
            label={humanize(key)}
            htmlFor={id}
            help={kind === "strings" ? [property.description, t("agents.tools.listHint")].filter(Boolean).join(" ") : property.description}
            style={{ marginBottom: 12 }}
          >
            {control}
          </Form.Item>
        );
      })}
    </div>
  );
}

/** Settings as a JSON object, checked as it is typed; only a valid object reaches `onChange`. */
function JsonSettings({
  toolName,
  value,
  onChange,
  disabled,
}: {
  toolName: string;
  value: Settings;
  onChange: (settings: Settings) => void;
  disabled?: boolean;
}) {
  const t = useT();
  const [text, setText] = useState(() => JSON.stringify(value, null, 2));
  const [invalid, setInvalid] = useState(false);
  const id = `tool-${toolName}-json`;
  return (
    <Form.Item
      label={t("agents.tools.json")}
      htmlFor={id}
      validateStatus={invalid ? "error" : undefined}
      help={invalid ? t("agents.tools.jsonInvalid") : undefined}
    >
      <Input.TextArea
        id={id}
        disabled={disabled}
        autoSize={{ minRows: 3, maxRows: 12 }}
        value={text}
        style={{ fontFamily: "monospace" }}
        onChange={(event) => {
          setText(event.target.value);
          try {
            const parsed: unknown = JSON.parse(event.target.value || "{}");
            const ok = typeof parsed === "object" && parsed !== null && !Array.isArray(parsed);
            setInvalid(!ok);
            if (ok) onChange(parsed as Settings);
          } catch {
            setInvalid(true);
          }
        }}
      />
    </Form.Item>
  );
}
