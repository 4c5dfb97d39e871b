"use client";

import { Typography } from "antd";
import { useT } from "@/i18n";
import "./messages";

interface Schema {
  type?: unknown;
  description?: unknown;
  properties?: Record<string, Schema>;
  required?: unknown;
  items?: Schema;
  [extra: string]: unknown;
}

function typeOf(schema: Schema): string {
  if (Array.isArray(schema.type)) return schema.type.join(" | ");
  if (typeof schema.type === "string") return schema.type === "array" && schema.items ? `${typeOf(schema.items)}[]` : schema.type;
  if (schema.properties) return "object";
  return "any";
}

/** A tool's parameters (a JSON schema) as a short list: each argument, its type, whether it is required, what it is. */
export function SchemaView({ schema }: { schema: unknown }) {
  const t = useT();
  const root = (schema ?? {}) as Schema;
  const properties = Object.entries(root.properties ?? {});
  const required = new Set(Array.isArray(root.required) ? (root.required as string[]) : []);
  if (properties.length === 0) return <Typography.Text type="secondary">{t("tools.noArguments")}</Typography.Text>;
  return (
    <ul style={{ margin: 0, paddingInlineStart: 18 }}>
      {properties.map(([name, prop]) => (
        <li key={name}>
          <Typography.Text code>{name}</Typography.Text>{" "}
          <Typography.Text type="secondary">
            {typeOf(prop)}
            {required.has(name) ? ` · ${t("tools.required")}` : ""}
          </Typography.Text>
          {typeof prop.description === "string" && prop.description ? (
            <div>
              <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                {prop.description}
              </Typography.Text>
            </div>
          ) : null}
        </li>
      ))}
    </ul>
  );
}
