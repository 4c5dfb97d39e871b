"use client";

import { Flex, Select, Space, Table, theme } from "antd";
import { useMemo, useState } from "react";
import { useLocale } from "@/i18n";
import type { MessageKey } from "@/i18n/messages";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import { agentNames, listModels, readUsage, type UsageQuery, type UsageRow } from "./api";
import { ScrollRegion } from "@/features/team/ScrollRegion";
import { BarChart } from "./BarChart";

const RANGES = [7, 30, 90] as const;

/** Tokens and latency over time, per model and per agent, as charts with the table of the same numbers. */
export function UsagePanel() {
  const { t, locale } = useLocale();
  const { token } = theme.useToken();
  const [days, setDays] = useState<(typeof RANGES)[number]>(30);
  const [groupBy, setGroupBy] = useState<UsageQuery["groupBy"]>("day");
  const [modelId, setModelId] = useState<string | undefined>();
  const from = useMemo(() => {
    const start = new Date();
    start.setUTCHours(0, 0, 0, 0);
    start.setUTCDate(start.getUTCDate() - (days - 1));
    return start.toISOString();
  }, [days]);
  const usage = useAsync(() => readUsage({ groupBy, from, modelId }), [groupBy, from, modelId]);
  const models = useAsync(listModels, []);
  const agents = useAsync(() => (groupBy === "agent" ? agentNames() : Promise.resolve({})), [groupBy]);

  const modelNames = useMemo(
    () => Object.fromEntries((models.data ?? []).map((model) => [model.id, model.name])),
    [models.data],
  );
  const labelOf = (key: string): string => {
    if (groupBy === "model") return modelNames[key] ?? t("usage.deletedModel");
    if (groupBy === "agent") return key === "None" || !key ? t("usage.noAgent") : ((agents.data as Record<string, string>)?.[key] ?? key.slice(0, 8));
    return new Date(`${key}T00:00:00Z`).toLocaleDateString(locale === "zh" ? "zh-CN" : "en-US", {
      month: "short",
      day: "numeric",
      timeZone: "UTC",
    });
  };
  const rows = usage.data ?? [];
  const labels = rows.map((row) => labelOf(row.key));
  const by = t(`usage.by.${groupBy}` as MessageKey).toLowerCase();
  const number = (value: number) => value.toLocaleString(locale === "zh" ? "zh-CN" : "en-US");
  const tokenSummary = rows
    .map((row, i) => `${labels[i]}: ${number(row.prompt_tokens)} + ${number(row.completion_tokens)}`)
    .join("; ");
  const latencySummary = rows.map((row, i) => `${labels[i]}: ${number(Math.round(row.avg_latency_ms))} ms`).join("; ");

  return (
    <Flex vertical gap={16}>
      <Space wrap>
        <Select
          aria-label={t("usage.range")}
          value={days}
          onChange={setDays}
          style={{ width: 150 }}
          options={RANGES.map((value) => ({ value, label: t(`usage.range.${value}` as MessageKey) }))}
        />
        <Select
          aria-label={t("usage.by")}
          value={groupBy}
          onChange={setGroupBy}
          style={{ width: 150 }}
          options={(["day", "model", "agent"] as const).map((value) => ({
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
      </Space>
      <ErrorAlert error={usage.error} onRetry={usage.reload} />
      {!usage.loading && !usage.error && rows.length === 0 ? (
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
                series={[{ label: t("usage.latency"), color: token.colorWarning, values: rows.map((r) => r.avg_latency_ms) }]}
              />
            </div>
          </Flex>
          <ScrollRegion label={t("usage.table")}>
          <Table<UsageRow>
            rowKey="key"
            size="small"
            loading={usage.loading}
            dataSource={rows}
            pagination={false}
            columns={[
              { title: t(`usage.by.${groupBy}` as MessageKey), key: "key", render: (_, row) => labelOf(row.key) },
              { title: t("usage.calls"), dataIndex: "calls", align: "right", render: number },
              { title: t("usage.errors"), dataIndex: "errors", align: "right", render: number },
              { title: t("usage.promptTokens"), dataIndex: "prompt_tokens", align: "right", render: number },
              { title: t("usage.completionTokens"), dataIndex: "completion_tokens", align: "right", render: number },
              {
                title: t("usage.latency"),
                dataIndex: "avg_latency_ms",
                align: "right",
                render: (value: number) => number(Math.round(value)),
              },
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
