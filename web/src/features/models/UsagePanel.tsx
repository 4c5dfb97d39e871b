"use client";

import { Flex, Select, Space, Table, theme } from "antd";
import { useMemo, useState } from "react";
import { ScrollRegion } from "@/features/team/ScrollRegion";
import { useLocale } from "@/i18n";
import type { MessageKey } from "@/i18n/messages";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import { agentNames, listModels, readUsage, readUsageSeries } from "./api";
import { BarChart } from "./BarChart";
import "./messages";

const RANGES = ["1", "7", "30", "90"] as const;
type Range = (typeof RANGES)[number];
type View = "time" | "model" | "agent";

/** One row of the charts and the table: a time bucket, a model or an agent. */
interface Row {
  key: string;
  label: string;
  calls: number;
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  avg_latency_ms: number | null;
  p95_latency_ms?: number | null;
  avg_ttft_ms: number | null;
}

/** Tokens and latency over time, per model and per agent, as charts with the table of the same numbers. */
export function UsagePanel() {
  const { t, locale } = useLocale();
  const { token } = theme.useToken();
  const [range, setRange] = useState<Range>("7");
  const [view, setView] = useState<View>("time");
  const [modelId, setModelId] = useState<string | undefined>();
  const [agentId, setAgentId] = useState<string | undefined>();
  const interval = range === "1" ? "hour" : "day";
  const from = useMemo(() => {
    const start = new Date();
    if (range === "1") {
      start.setUTCMinutes(0, 0, 0);
      start.setUTCHours(start.getUTCHours() - 23);
    } else {
      start.setUTCHours(0, 0, 0, 0);
      start.setUTCDate(start.getUTCDate() - (Number(range) - 1));
    }
    return start.toISOString();
  }, [range]);
  const models = useAsync(listModels, []);
  const agents = useAsync(() => agentNames().catch(() => ({}) as Record<string, string>), []);
  const modelNames = useMemo(
    () => Object.fromEntries((models.data ?? []).map((model) => [model.id, model.name])),
    [models.data],
  );
  const lang = locale === "zh" ? "zh-CN" : "en-US";
  const usage = useAsync(async (): Promise<Row[]> => {
    if (view === "time") {
      const series = await readUsageSeries({ interval, from, modelId, agentId });
      return series.buckets.map((bucket) => ({ ...bucket, key: bucket.start, label: bucket.start }));
    }
    const rows = await readUsage({ groupBy: view, from, modelId });
    return rows.map((row) => ({ ...row, label: row.key }));
  }, [view, interval, from, modelId, agentId]);

  const labelOf = (row: Row): string => {
    if (view === "model") return modelNames[row.key] ?? t("usage.deletedModel");
    if (view === "agent") return row.key === "None" || !row.key ? t("usage.noAgent") : (agents.data?.[row.key] ?? row.key.slice(0, 8));
    const start = new Date(row.key);
    return interval === "hour"
      ? start.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" })
      : start.toLocaleDateString(lang, { month: "short", day: "numeric", timeZone: "UTC" });
  };
  const rows = usage.data ?? [];
  const labels = rows.map(labelOf);
  const byKey: MessageKey = view === "time" ? (interval === "hour" ? "usage.by.hour" : "usage.by.day") : `usage.by.${view}`;
  const by = t(byKey).toLowerCase();
  const number = (value: number) => value.toLocaleString(lang);
  const withCalls = rows.map((row, i) => ({ row, label: labels[i] })).filter(({ row }) => row.calls > 0);
  const tokenSummary =
    withCalls.map(({ row, label }) => `${label}: ${number(row.prompt_tokens)} + ${number(row.completion_tokens)}`).join("; ") ||
    t("usage.emptyTitle");
  const latencySummary =
    withCalls.map(({ row, label }) => `${label}: ${number(Math.round(row.avg_latency_ms ?? 0))} ms`).join("; ") ||
    t("usage.emptyTitle");
  const empty = !usage.loading && !usage.error && withCalls.length === 0;
  // The table lists the buckets with calls; the charts show every bucket, so that time reads evenly.
  const tableRows = view === "time" ? withCalls.map(({ row }) => row) : rows;

  return (
    <Flex vertical gap={16}>
      <Space wrap>
        <Select
          aria-label={t("usage.range")}
          value={range}
          onChange={setRange}
          style={{ width: 150 }}
          options={RANGES.map((value) => ({ value, label: t(`usage.range.${value}` as MessageKey) }))}
        />
        <Select
          aria-label={t("usage.by")}
          value={view}
          onChange={setView}
          style={{ width: 170 }}
          options={(["time", "model", "agent"] as const).map((value) => ({
            value,
            label: `${t("usage.by")}: ${t(`usage.by.${value}` as MessageKey)}`,
          }))}
        />
        <Select
          aria-label={t("usage.model")}
          value={modelId ?? ""}
          onChange={(value: string) => setModelId(value || undefined)}
          style={{ width: 200 }}
          options={[
            { value: "", label: t("usage.allModels") },
            ...(models.data ?? []).map((model) => ({ value: model.id, label: model.name })),
          ]}
        />
        {view === "time" ? (
          <Select
            aria-label={t("usage.agent")}
            value={agentId ?? ""}
            onChange={(value: string) => setAgentId(value || undefined)}
            style={{ width: 200 }}
            options={[
              { value: "", label: t("usage.allAgents") },
              ...Object.entries(agents.data ?? {}).map(([id, name]) => ({ value: id, label: name })),
            ]}
          />
        ) : null}
      </Space>
      <ErrorAlert error={usage.error} onRetry={usage.reload} />
      {empty ? (
        <EmptyState title={t("usage.emptyTitle")} hint={t("usage.emptyHint")} />
      ) : rows.length > 0 ? (
        <>
          <Flex wrap gap={24}>
            <div style={{ minWidth: 0, flex: "1 1 320px" }}>
              <BarChart
                title={t("usage.tokensChart", { by })}
                summary={tokenSummary}
                labels={labels}
                format={number}
                series={[
                  { label: t("usage.promptTokens"), color: token.colorPrimary, values: rows.map((r) => r.prompt_tokens) },
                  {
                    label: t("usage.completionTokens"),
                    color: token.colorSuccess,
                    values: rows.map((r) => r.completion_tokens),
                  },
                ]}
              />
            </div>
            <div style={{ minWidth: 0, flex: "1 1 320px" }}>
              <BarChart
                title={t("usage.latencyChart", { by })}
                summary={latencySummary}
                labels={labels}
                format={number}
                series={[
                  { label: t("usage.latency"), color: token.colorWarning, values: rows.map((r) => r.avg_latency_ms ?? 0) },
                ]}
              />
            </div>
          </Flex>
          <ScrollRegion label={t("usage.table")}>
            <Table<Row>
              rowKey="key"
              size="small"
              loading={usage.loading}
              dataSource={tableRows}
              pagination={false}
              columns={[
                { title: t(byKey), key: "key", render: (_, row) => labelOf(row) },
                { title: t("usage.calls"), dataIndex: "calls", align: "right", render: number },
                { title: t("usage.errors"), dataIndex: "errors", align: "right", render: number },
                { title: t("usage.promptTokens"), dataIndex: "prompt_tokens", align: "right", render: number },
                { title: t("usage.completionTokens"), dataIndex: "completion_tokens", align: "right", render: number },
                {
                  title: t("usage.latency"),
                  dataIndex: "avg_latency_ms",
                  align: "right",
                  render: (value: number | null) => (value == null ? "—" : number(Math.round(value))),
                },
                ...(view === "time"
                  ? [
                      {
                        title: t("usage.p95"),
                        dataIndex: "p95_latency_ms",
                        align: "right" as const,
                        render: (value: number | null) => (value == null ? "—" : number(Math.round(value))),
                      },
                    ]
                  : []),
                {
                  title: t("usage.ttft"),
                  dataIndex: "avg_ttft_ms",
                  align: "right",
                  render: (value: number | null) => (value == null ? "—" : number(Math.round(value))),
                },
              ]}
            />
          </ScrollRegion>
        </>
      ) : null}
    </Flex>
  );
}
