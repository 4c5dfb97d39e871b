"use client";

import { EditFilled, MinusCircleFilled, PlusCircleFilled } from "@ant-design/icons";
import { Flex, Tag, Typography, theme } from "antd";
import { useT, type Translate } from "@/i18n";
import type { Change } from "./versioning";
import "./messages";

/** What the diff view knows to name ids with: models, knowledge bases and agents by id. */
export interface Names {
  models: Map<string, string>;
  knowledgeBases: Map<string, string>;
  agents: Map<string, string>;
  /** Skills by id (those the caller may see). */
  skills?: Map<string, string>;
}

type Line = { marker: "+" | "-" | "@" | " "; text: string };

const FIELD_LABELS: Record<string, Parameters<Translate>[0]> = {
  name: "common.name",
  display_name: "agents.field.displayName",
  description: "common.description",
  "instructions.duty": "agents.field.duty",
  "instructions.constraints": "agents.field.constraints",
  "instructions.examples": "agents.field.examples",
  model_id: "agents.field.model",
  agent_type: "agents.field.type",
  knowledge_base_ids: "agents.field.knowledgeBases",
  max_steps: "agents.field.maxSteps",
  greeting: "agents.field.greeting",
  example_questions: "agents.field.exampleQuestions",
};

export function fieldLabel(field: string, names: Names, t: Translate): string {
  if (field.startsWith("tools.")) return t("agents.diff.tool", { name: field.slice("tools.".length) });
  if (field.startsWith("skills.")) {
    const id = field.slice("skills.".length);
    return t("agents.diff.skill", { name: names.skills?.get(id) ?? t("agents.diff.unknown", { id }) });
  }
  if (field.startsWith("sub_agents.")) {
    const id = field.slice("sub_agents.".length);
    return t("agents.diff.subAgent", { name: names.agents.get(id) ?? t("agents.diff.unknown", { id }) });
  }
  const key = FIELD_LABELS[field];
  return key ? t(key) : field;
}

/** The changes between two sides, field by field: texts as unified diffs, everything else as removed and added
 * lines, each with its `-` or `+` marker (colour is not the only sign). */
export function VersionDiff({ changes, names }: { changes: Change[]; names: Names }) {
  const t = useT();
  if (!changes.length) {
    return (
      <Typography.Paragraph type="secondary" data-testid="version-diff" style={{ margin: "12px 0" }}>
        {t("agents.compare.none")}
      </Typography.Paragraph>
    );
  }
  return (
    <Flex vertical gap={12} data-testid="version-diff" style={{ marginTop: 12 }}>
      <Typography.Text type="secondary">{t("agents.compare.count", { count: changes.length })}</Typography.Text>
      <ul style={{ listStyle: "none", padding: 0, margin: 0, display: "flex", flexDirection: "column", gap: 16 }}>
        {changes.map((change) => (
          <li key={change.field} data-field={change.field}>
            <Flex gap={8} align="center" wrap style={{ marginBottom: 4 }}>
              <Typography.Text strong>{fieldLabel(change.field, names, t)}</Typography.Text>
              <KindTag kind={change.kind} />
            </Flex>
            <DiffLines lines={linesOf(change, names, t)} />
          </li>
        ))}
      </ul>
    </Flex>
  );
}

/** Added, removed or changed: the word, with the colour on its icon only (coloured tag text is below 4.5:1). */
function KindTag({ kind }: { kind: Change["kind"] }) {
  const t = useT();
  const { token } = theme.useToken();
  const icon =
    kind === "added" ? (
      <PlusCircleFilled aria-hidden style={{ color: token.colorSuccess }} />
    ) : kind === "removed" ? (
      <MinusCircleFilled aria-hidden style={{ color: token.colorError }} />
    ) : (
      <EditFilled aria-hidden style={{ color: token.colorPrimary }} />
    );
  return <Tag icon={icon}>{t(`agents.diff.${kind}`)}</Tag>;
}

function DiffLines({ lines }: { lines: Line[] }) {
  const { token } = theme.useToken();
  if (!lines.length) return null;
  const style = (line: Line): React.CSSProperties => ({
    display: "block",
    textDecoration: "none",
    padding: "0 8px",
    color: line.marker === "@" ? token.colorTextSecondary : token.colorText,
    background: line.marker === "+" ? token.colorSuccessBg : line.marker === "-" ? token.colorErrorBg : undefined,
  });
  return (
    <div
      style={{
        fontFamily: token.fontFamilyCode,
        fontSize: 13,
        whiteSpace: "pre-wrap",
        overflowWrap: "anywhere",
        border: `1px solid ${token.colorBorderSecondary}`,
        borderRadius: token.borderRadius,
        padding: "4px 0",
      }}
    >
      {lines.map((line, index) => {
        const content = (
          <>
            <span style={{ display: "inline-block", width: "1.5ch", userSelect: "none" }}>
              {line.marker === "@" ? "" : line.marker === " " ? "\u00a0" : line.marker}
            </span>
            {line.text || "\u00a0"}
          </>
        );
        if (line.marker === "+") return <ins key={index} style={style(line)}>{content}</ins>;
        if (line.marker === "-") return <del key={index} style={style(line)}>{content}</del>;
        return <span key={index} style={style(line)}>{content}</span>;
      })}
    </div>
  );
}

/** A change as lines: the server's unified diff for long texts, else what went and what came. */
function linesOf(change: Change, names: Names, t: Translate): Line[] {
  const { field, before, after } = change;
  if (change.lines && change.lines.length) {
    return change.lines
      .filter((line, index) => !(index < 2 && (line.startsWith("--- ") || line.startsWith("+++ "))))
      .map((line) => {
        if (line.startsWith("@@")) return { marker: "@", text: line };
        const marker = line[0] === "+" || line[0] === "-" ? line[0] : " ";
        return { marker, text: line.slice(1) };
      });
  }
  const shown = (value: unknown): string => show(field, value, names, t);
  if (field === "knowledge_base_ids" || field === "example_questions") {
    const old = (Array.isArray(before) ? before : []).map(String);
    const now = (Array.isArray(after) ? after : []).map(String);
    const label = (item: string) => (field === "knowledge_base_ids" ? (names.knowledgeBases.get(item) ?? t("agents.diff.unknown", { id: item })) : item);
    return [
      ...old.filter((item) => !now.includes(item)).map((item): Line => ({ marker: "-", text: label(item) })),
      ...now.filter((item) => !old.includes(item)).map((item): Line => ({ marker: "+", text: label(item) })),
    ];
  }
  if (field === "instructions.examples") {
    const key = (example: unknown) => JSON.stringify(example);
    const old = Array.isArray(before) ? before : [];
    const now = Array.isArray(after) ? after : [];
    const oldKeys = old.map(key);
    const nowKeys = now.map(key);
    const example = (marker: "+" | "-") => (item: unknown): Line[] => {
      const { question, answer } = (item ?? {}) as { question?: string; answer?: string };
      return [
        { marker, text: `${t("agents.example.question")}: ${question ?? ""}` },
        { marker, text: `${t("agents.example.answer")}: ${answer ?? ""}` },
      ];
    };
    return [
      ...old.filter((item) => !nowKeys.includes(key(item))).flatMap(example("-")),
      ...now.filter((item) => !oldKeys.includes(key(item))).flatMap(example("+")),
    ];
  }
  const bare = (value: unknown) => field.startsWith("tools.") && (value == null || !Object.keys(value as object).length);
  if (change.kind === "added") return bare(after) ? [] : [{ marker: "+", text: shown(after) }];
  if (change.kind === "removed") return bare(before) ? [] : [{ marker: "-", text: shown(before) }];
  return [
    { marker: "-", text: shown(before) },
    { marker: "+", text: shown(after) },
  ];
}

/** A value as people read it: names for ids, words for kinds, "(empty)" for nothing. */
function show(field: string, value: unknown, names: Names, t: Translate): string {
  if (field === "model_id") {
    if (value == null) return t("agents.model.tenantDefault");
    return names.models.get(String(value)) ?? t("agents.diff.unknown", { id: String(value) });
  }
  if (field === "agent_type") return value === "code" ? t("agents.type.code") : t("agents.type.tool_calling");
  if (field.startsWith("tools.")) {
    const settings = value && typeof value === "object" ? (value as Record<string, unknown>) : {};
    return t("agents.diff.settings", { value: JSON.stringify(settings) });
  }
  if (field.startsWith("sub_agents.")) {
    return typeof value === "number" ? t("agents.diff.pinned", { n: value }) : t("agents.diff.unpinned");
  }
  if (field.startsWith("skills.")) {
    return typeof value === "number" ? t("agents.diff.pinned", { n: value }) : t("agents.diff.newestSkill");
  }
  if (value == null || value === "") return t("agents.diff.empty");
  if (typeof value === "string" || typeof value === "number") return String(value);
  return JSON.stringify(value);
}
